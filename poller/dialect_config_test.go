package poller

import (
	"strings"
	"testing"

	"emitop/config"
)

// TestAccountsCheckedByTheirDialect loads accounts through config with the dialect table:
// each provider's credentials, settings and default base URL come from its dialect.
func TestAccountsCheckedByTheirDialect(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	const factus = "[[account]]\nname = \"f\"\nprovider = \"factus\"\nbase_url = \"https://api-sandbox.factus.com.co\"\n"
	const creds = "client_id = \"i\"\nclient_secret = \"s\"\nusername = \"u\"\npassword = \"p\"\n"
	const gw = "[[account]]\nname = \"g\"\nprovider = \"factus\"\nbase_url = \"http://gw:8000\"\ngateway = \"fastapi\"\nusername = \"u\"\npassword = \"p\"\n"
	for _, c := range []struct{ name, toml, want string }{
		{"factus v1", factus + creds, ""},
		{"factus without base_url", "[[account]]\nname = \"f\"\nprovider = \"factus\"\n" + creds, "missing base_url"},
		{"alegra", "[[account]]\nname = \"a\"\nprovider = \"alegra\"\nemail = \"e\"\ntoken = \"t\"\n", ""},
		{"factus v2", factus + creds + "api_version = \"v2\"\n", ""},
		{"factus v3", factus + creds + "api_version = \"v3\"\n", `api_version`},
		{"factus missing secret", factus + "client_id = \"i\"\nusername = \"u\"\npassword = \"p\"\n", "client_secret"},
		{"factus api_key without gateway", factus + creds + "api_key = \"k\"\n", `only with gateway = "fastapi"`},
		{"gateway with key", gw + "api_key = \"k\"\n", ""},
		{"gateway with login", gw + "gateway_username = \"a\"\ngateway_password = \"b\"\n", ""},
		{"gateway without its credential", gw, "the gateway's api_key"},
		{"gateway with both", gw + "api_key = \"k\"\ngateway_username = \"a\"\ngateway_password = \"b\"\n", "exclude each other"},
		{"gateway half a login", gw + "gateway_username = \"a\"\n", "go together"},
		{"gateway v2", gw + "api_key = \"k\"\napi_version = \"v2\"\n", "speaks Factus v1"},
		{"gateway with the client", gw + "api_key = \"k\"\nclient_id = \"i\"\n", "does not apply with a gateway"},
		{"alforse", "[[account]]\nname = \"a\"\nprovider = \"alforse\"\nbase_url = \"https://x\"\nemail = \"e\"\npassword = \"p\"\ntenant = \"acme\"\n", ""},
		{"alforse without tenant", "[[account]]\nname = \"a\"\nprovider = \"alforse\"\nbase_url = \"https://x\"\nemail = \"e\"\npassword = \"p\"\n", "missing tenant"},
		{"tenant on alegra", "[[account]]\nname = \"a\"\nprovider = \"alegra\"\nemail = \"e\"\ntoken = \"t\"\ntenant = \"acme\"\n", "tenant"},
		{"unknown provider", "[[account]]\nname = \"a\"\nprovider = \"facturama\"\n", "facturama"},
	} {
		cfg, err := config.Parse([]byte(c.toml), env, Providers())
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		case c.name == "alegra":
			d, _ := dialectOf("alegra")
			if a := cfg.Accounts[0]; a.BaseURL != d.baseURL || a.BaseURL == "" {
				t.Errorf("%s: base URL %q, want the documented one", c.name, a.BaseURL)
			}
		}
	}
}
