package sandbox

import (
	"fmt"
	"strconv"
	"strings"
)

// credentialKeys are the config keys of each provider's credentials, in config order.
var credentialKeys = map[string][]string{
	"alegra":     {"email", "token"},
	"sv-dte":     {"api_key"},
	"certifactu": {"api_key"},
	"factus":     {"client_id", "client_secret", "username", "password"},
	"alforse":    {"email", "password"},
}

// ConfigTOML is an emitop config (TOML) for every account of the sandbox, credentials
// included, with the base URLs Start gave them: what `emitop sandbox --config-out`
// writes and what the demo and the tests load.
func (s *Sandbox) ConfigTOML() string {
	var b strings.Builder
	b.WriteString("# emitop config for the sandbox (emitop sandbox --config-out); the credentials are the sandbox's.\n")
	for _, a := range s.Accounts() {
		fmt.Fprintf(&b, "\n[[account]]\nname = %s\nprovider = %s\nbase_url = %s\n",
			strconv.Quote(a.Name), strconv.Quote(a.Provider), strconv.Quote(a.BaseURL))
		for _, k := range credentialKeys[a.Provider] {
			fmt.Fprintf(&b, "%s = %s\n", k, strconv.Quote(a.Credentials[k]))
		}
		b.WriteString("timeout = \"30s\"\npoll_interval = \"5s\"\nreserve = 0.1\n")
	}
	return b.String()
}
