package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

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
	var cfg struct {
		Account []map[string]any `toml:"account"`
	}
	if _, err := toml.Decode(sandboxConfig(sb.Accounts()), &cfg); err != nil {
		t.Fatalf("config does not parse: %v", err)
	}
	if len(cfg.Account) != 10 {
		t.Fatalf("%d accounts in the config, want 10", len(cfg.Account))
	}
	for _, a := range cfg.Account {
		if !strings.HasPrefix(a["base_url"].(string), base+"/") || a["timeout"] != "30s" || a["poll_interval"] != "5s" || a["reserve"] != 0.1 {
			t.Errorf("account %v", a)
		}
		if _, ok := a["store"]; ok {
			t.Errorf("%s: the store path must be left out", a["name"])
		}
		for _, k := range credentialKeys[a["provider"].(string)] {
			if a[k] == "" || a[k] == nil {
				t.Errorf("%s: no %s", a["name"], k)
			}
		}
	}
	// The sv-main key from the config opens sv-main's endpoints.
	for _, a := range cfg.Account {
		if a["name"] != "sv-main" {
			continue
		}
		req, _ := http.NewRequest("GET", a["base_url"].(string)+"/factura", nil)
		req.Header.Set("X-API-Key", a["api_key"].(string))
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
