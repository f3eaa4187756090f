package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"emitop/config"
	"emitop/poller"

	"emitop/sandbox"
)

func TestSandboxConfig(t *testing.T) {
	sb, err := sandbox.New(sandbox.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	base, err := sb.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	cfg, err := config.Parse([]byte(sb.ConfigTOML()), func(string) (string, bool) { return "", false }, poller.Providers())
	if err != nil {
		t.Fatalf("config does not load: %v", err)
	}
	// Ten accounts, and the demo's four that each show a case of their own.
	if len(cfg.Accounts) != 14 {
		t.Fatalf("%d accounts in the config, want 14", len(cfg.Accounts))
	}
	settings := map[string]string{}
	for _, a := range cfg.Accounts {
		for _, k := range []string{"api_version", "gateway", "tenant"} {
			if v := a.Setting(k); v != "" {
				settings[a.Name+" "+k] = v
			}
		}
	}
	if settings["factus-cal api_version"] != "v2" || settings["factus-gw gateway"] != "fastapi" || settings["alforse-main tenant"] == "" || settings["alforse-mfa tenant"] == "" {
		t.Errorf("the accounts' settings: %v", settings)
	}
	if cfg.Store.Path != "" && strings.Contains(sb.ConfigTOML(), "[store]") {
		t.Errorf("the store path must be left out")
	}
	for _, a := range cfg.Accounts {
		if !strings.HasPrefix(a.BaseURL, base+"/") || a.Timeout != 30*time.Second || a.PollInterval != 5*time.Second || a.Reserve != 0.1 {
			t.Errorf("account %+v", a)
		}
		if len(a.Credentials.Names()) == 0 {
			t.Errorf("%s: no credentials", a.Name)
		}
		for _, k := range a.Credentials.Names() {
			if a.Credentials.Get(k) == "" {
				t.Errorf("%s: empty %s", a.Name, k)
			}
		}
	}
	// The sv-main key from the config opens sv-main's endpoints.
	for _, a := range cfg.Accounts {
		if a.Name != "sv-main" {
			continue
		}
		req, _ := http.NewRequest("GET", a.BaseURL+"/factura", nil)
		req.Header.Set("X-API-Key", a.Credentials.Get("api_key"))
		res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("sv-main with the config's key: %d", res.StatusCode)
		}
	}
}

func TestSandboxCommandUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"sandbox", "--scenario", "hurricane", "--listen", "127.0.0.1:0"}, nil, &out, &errb); code != 2 {
		t.Errorf("unknown scenario: exit %d, want 2 (%s)", code, errb.String())
	}
	if code := run([]string{"sandbox", "extra"}, nil, &out, &errb); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
	dir := t.TempDir()
	if code := run([]string{"sandbox", "--listen", "256.0.0.1:1", "--config-out", filepath.Join(dir, "c.toml")}, nil, &out, &errb); code != 1 {
		t.Errorf("bad listen address: exit %d, want 1", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.toml")); err == nil {
		t.Error("config written although the sandbox never listened")
	}
}
