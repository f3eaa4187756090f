package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const pubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIiRAAv5lXf6nLTKRwegI1hs9d/vmUKf9v386PmY0CNx ana@desk"

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// fakeProvider stands for a dialect: config's tests cannot import the poller, whose
// dialects are tested against config in package main.
type fakeProvider struct {
	name, base string
	keys       []Key
}

func (f fakeProvider) Name() string           { return f.name }
func (f fakeProvider) DefaultBaseURL() string { return f.base }
func (f fakeProvider) Keys() []Key            { return f.keys }

// CheckAccount requires every secret key; a setting "mode" of "b" requires "extra" too.
func (f fakeProvider) CheckAccount(settings map[string]string, creds []string) []string {
	var out []string
	for _, k := range f.keys {
		if k.Secret && !contains(creds, k.Name) {
			out = append(out, "missing credential "+k.Name)
		}
	}
	if settings["mode"] == "b" && settings["extra"] == "" {
		out = append(out, "mode b needs extra")
	}
	return out
}

// secrets are credential keys; a name ending in "=id" is an identity (an email).
func secrets(names ...string) []Key {
	keys := make([]Key, len(names))
	for i, n := range names {
		name, id := strings.CutSuffix(n, "=id")
		keys[i] = Key{Name: name, Secret: true, Identity: id}
	}
	return keys
}

var testProviders = []Provider{
	fakeProvider{"alegra", "https://api.alegra.com/api/v1", secrets("email=id", "token")},
	fakeProvider{"sv-dte", "", secrets("api_key")},
	fakeProvider{"certifactu", "", secrets("api_key")},
	fakeProvider{"factus", "", secrets("client_id=id", "client_secret", "username=id", "password")},
	fakeProvider{"alforse", "https://api.alforse.com/api/v1", append(secrets("email=id", "password"),
		Key{Name: "mode", Values: []string{"a", "b"}}, Key{Name: "extra"})},
}

var testEnv = envOf(map[string]string{
	"SV_API_KEY": "sk_user_secret1", "HOME": "/home/op", "EMPTY": "",
})

const good = `[store]
path = "/var/lib/emitop/emitop.db"

[[account]]
name = "sv-main"
provider = "sv-dte"
base_url = "https://dte.example.sv/api/"
api_key = "${SV_API_KEY}"
timeout = "10s"
poll_interval = "1m"
reserve = 0.2
[account.paths]
list = "/factura"

[[account]]
name = "alegra-co"
provider = "alegra"
email = "ops@example.co"
token = "tok-123"
reserve = 0

[[account]]
name = "factus"
provider = "factus"
base_url = "http://127.0.0.1:8080"
client_id = "cid"
client_secret = "csecret"
username = "u@example.co"
password = "pw"

[[operator]]
name = "ana"
role = "operator"
keys = ["` + pubKey + `"]

[[operator]]
name = "ben"
role = "viewer"
keys_file = "/etc/emitop/ben.pub"

[serve]
idle_timeout = "45m"
`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good), testEnv, testProviders)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Path != "/var/lib/emitop/emitop.db" || c.Serve.IdleTimeout != 45*time.Minute {
		t.Errorf("store/serve = %+v %+v", c.Store, c.Serve)
	}
	if len(c.Accounts) != 3 || len(c.Operators) != 2 {
		t.Fatalf("accounts %d operators %d", len(c.Accounts), len(c.Operators))
	}
	sv := c.Accounts[0]
	want := Account{Name: "sv-main", Provider: "sv-dte", BaseURL: "https://dte.example.sv/api", Timeout: 10 * time.Second, PollInterval: time.Minute, Reserve: 0.2, Line: 4}
	if sv.Name != want.Name || sv.Provider != want.Provider || sv.BaseURL != want.BaseURL || sv.Timeout != want.Timeout ||
		sv.PollInterval != want.PollInterval || sv.Reserve != want.Reserve || sv.Line != want.Line {
		t.Errorf("sv = %+v", sv)
	}
	if got := sv.Credentials.Get("api_key"); got != "sk_user_secret1" {
		t.Errorf("api_key = %q", got)
	}
	if sv.Path("list", "/x") != "/factura" || sv.Path("show", "/factura/{id}") != "/factura/{id}" {
		t.Errorf("paths %v", sv.Paths)
	}
	al := c.Accounts[1]
	if al.BaseURL != "https://api.alegra.com/api/v1" || al.Reserve != 0 || al.Timeout != DefaultTimeout || al.PollInterval != DefaultPollInterval {
		t.Errorf("alegra defaults = %+v", al)
	}
	if len(sv.Settings) != 0 || sv.Credentials.Names()[0] != "api_key" {
		t.Errorf("settings %v, credentials %v", sv.Settings, sv.Credentials.Names())
	}
	if c.Accounts[2].Reserve != DefaultReserve {
		t.Errorf("default reserve %v", c.Accounts[2].Reserve)
	}
	if c.Operators[0].Role != RoleOperator || c.Operators[1].KeysFile != "/etc/emitop/ben.pub" {
		t.Errorf("operators %+v", c.Operators)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(nil, testEnv, testProviders)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Path != "/home/op/.local/state/emitop/emitop.db" || c.Serve.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("defaults: %+v %+v", c.Store, c.Serve)
	}
	c, err = Parse(nil, envOf(map[string]string{"XDG_STATE_HOME": "/st"}), testProviders)
	if err != nil || c.Store.Path != "/st/emitop/emitop.db" {
		t.Errorf("xdg state: %v %v", c, err)
	}
}

// TestParseProblems checks that each mistake gives one line naming its place, and that
// all of a file's mistakes are reported together.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // each must appear, one per issue, in order
	}{
		{"syntax", "[[account]]\nname = \n", []string{"2: expected value"}},
		{"unknown provider", "[[account]]\nname = \"a\"\nprovider = \"sv-dtee\"\nbase_url = \"https://x\"\n",
			[]string{`3: account "a": unknown provider "sv-dtee" (one of alegra, sv-dte, certifactu, factus, alforse)`}},
		{"unknown keys", "colour = 1\n[[account]]\nname = \"a\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"k\"\n\n[[account]]\nname = \"b\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"k\"\nfrequency = 3\n[extra]\nx = 1\n[serve]\nidel_timeout = \"1m\"\n",
			[]string{`1: unknown key "colour"`, `13: unknown key "account.frequency"`, `14: unknown key "extra"`, `17: unknown key "serve.idel_timeout"`}},
		{"duplicate name", "[[account]]\nname = \"a\"\nprovider = \"alegra\"\nemail = \"e\"\ntoken = \"t\"\n[[account]]\nname = \"a\"\nprovider = \"alegra\"\nemail = \"e\"\ntoken = \"t\"\n",
			[]string{`6: account "a": name already used by the account on line 1`}},
		{"missing credentials", "[[account]]\nname = \"f\"\nprovider = \"factus\"\nbase_url = \"https://x\"\nclient_id = \"c\"\n",
			[]string{`1: account "f": missing credential client_secret`, `1: account "f": missing credential username`, `1: account "f": missing credential password`}},
		{"unset variable", "[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\n\napi_key = \"${NOPE_KEY}\"\n",
			[]string{`6: account "s": api_key: environment variable NOPE_KEY is not set`}},
		{"empty credential", "[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"${EMPTY}\"\n",
			[]string{`5: account "s": api_key is empty`}},
		{"foreign credential", "[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"k\"\npassword = \"p\"\n",
			[]string{`6: account "s": password does not apply to provider sv-dte`}},
		{"bad durations", "[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"k\"\ntimeout = \"30 seconds\"\npoll_interval = 30\n[serve]\nidle_timeout = \"-1m\"\n",
			[]string{`6: account "s": timeout: bad duration "30 seconds"`, `7: account "s": poll_interval: want a duration in quotes`, `9: serve.idle_timeout: duration "-1m" must be positive`}},
		{"reserve", "[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"k\"\nreserve = 1\n[[account]]\nname = \"t\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"k\"\nreserve = -0.1\n",
			[]string{`6: account "s": reserve 1 is outside [0, 1)`, `12: account "t": reserve -0.1 is outside [0, 1)`}},
		{"base_url", "[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"ftp://x\"\napi_key = \"k\"\n[[account]]\nname = \"t\"\nprovider = \"sv-dte\"\napi_key = \"k\"\n[[account]]\nname = \"u\"\nprovider = \"sv-dte\"\nbase_url = \"https://me:hunter2@x\"\napi_key = \"k\"\n",
			[]string{`4: account "s": base_url "ftp://x" is not an http(s) URL`, `6: account "t": missing base_url`, `13: account "u": base_url must not carry user info`}},
		{"paths", "[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"k\"\n[account.paths]\nlist = \"factura\"\n",
			[]string{`7: account "s": paths.list "factura" must start with /`}},
		{"control characters", "[[account]]\nname = \"s\\u001b[2J\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"k\"\n[[operator]]\nname = \"ana\\r\"\nrole = \"viewer\"\nkeys = [\"" + pubKey + "\"]\n",
			[]string{`1: account "s\x1b[2J": name must be plain text`, `6: operator "ana\r": name must be plain text`}},
		{"setting value", "[[account]]\nname = \"x\"\nprovider = \"alforse\"\nemail = \"e\"\npassword = \"p\"\nmode = \"c\"\n",
			[]string{`6: account "x": mode "c" is not one of a, b`}},
		{"provider check", "[[account]]\nname = \"x\"\nprovider = \"alforse\"\nemail = \"e\"\npassword = \"p\"\nmode = \"b\"\n",
			[]string{`1: account "x": mode b needs extra`}},
		{"not a text", "[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = 3\n",
			[]string{`5: account "s": api_key must be a text in quotes`}},
		{"nameless", "[[account]]\nprovider = \"sv-dte\"\nbase_url = \"https://x\"\napi_key = \"k\"\n",
			[]string{`1: account #1: missing name`}},
		{"operators", "[[operator]]\nname = \"ana\"\nrole = \"admin\"\nkeys = [\"ssh-ed25519 nope\"]\n[[operator]]\nname = \"ana\"\nrole = \"viewer\"\n",
			[]string{`3: operator "ana": unknown role "admin"`, `4: operator "ana": keys[0] is not an SSH public key`, `5: operator "ana": no keys and no keys_file`, `5: operator "ana": name already used by the operator on line 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml), testEnv, testProviders)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

// TestSecretsNeverPrinted checks every way a credential could leak into a log line.
func TestSecretsNeverPrinted(t *testing.T) {
	c, err := Parse([]byte(good), testEnv, testProviders)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("loaded", "account", c.Accounts[0], "creds", c.Accounts[0].Credentials)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "creds", c.Accounts[0].Credentials)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", *c), "%#v": fmt.Sprintf("%#v", *c),
		"%s": fmt.Sprintf("%s", c.Accounts[2].Credentials), "%q": fmt.Sprintf("%q", c.Accounts[1].Credentials),
		"json": string(js), "slog": logs.String(),
	}
	for how, out := range outputs {
		for _, secret := range []string{"sk_user_secret1", "tok-123", "csecret", "cid", "ops@example.co"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s leaks %q: %s", how, secret, out)
			}
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s does not say %s: %s", how, redacted, out)
		}
	}
	_, err = Parse([]byte(strings.Replace(good, `token = "tok-123"`, `token = "tok-123"`+"\napi_key = \"tok-456\"", 1)), testEnv, testProviders)
	if err == nil || strings.Contains(err.Error(), "tok-456") {
		t.Errorf("error leaks a value or is missing: %v", err)
	}
	// Errors about the file quote none of what a credential could be: a value written
	// without quotes, a base_url's query or user info.
	for _, tc := range []struct{ toml, secret, want string }{
		{"[[account]]\nname = \"a\"\ntoken = sk_live_abc123\n", "sk", "3: expected value but found text instead (in the value of token: write it in quotes"},
		{"[[account]]\npassword = hunter2 x\n", "hunter", "2: expected value but found text instead (in the value of password"},
		{"[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"https://x.example/api?key=sk_q_123#frag\"\napi_key = \"k\"\n", "sk_q_123",
			`4: account "s": base_url "https://x.example/api" must not have a query or fragment (not shown`},
		{"[[account]]\nname = \"s\"\nprovider = \"sv-dte\"\nbase_url = \"ftp://x/?key=sk_q_456\"\napi_key = \"k\"\n", "sk_q_456", `4: account "s": base_url "ftp://x/" is not an http(s) URL`},
	} {
		_, err := Parse([]byte(tc.toml), testEnv, testProviders)
		if err == nil || strings.Contains(err.Error(), tc.secret) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q without %q", tc.toml, err, tc.want, tc.secret)
		}
	}
}

func TestLocateAndLoad(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("EMITOP_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", dir)
	if p, found := Locate(""); p != filepath.Join(dir, "emitop", "config.toml") || found {
		t.Errorf("Locate = %q %v", p, found)
	}
	file := filepath.Join(dir, "emitop", "config.toml")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("[store]\npath = \"h.db\"\n[[operator]]\nname = \"b\"\nrole = \"viewer\"\nkeys_file = \"b.pub\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, found := Locate(""); p != file || !found {
		t.Errorf("Locate = %q %v", p, found)
	}
	other := filepath.Join(dir, "other.toml")
	t.Setenv("EMITOP_CONFIG", other)
	if p, found := Locate(""); p != other || found {
		t.Errorf("Locate with EMITOP_CONFIG = %q %v", p, found)
	}
	if p, _ := Locate("/flag.toml"); p != "/flag.toml" {
		t.Errorf("Locate with flag = %q", p)
	}
	c, err := Load(file, testProviders)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != file || c.Store.Path != filepath.Join(dir, "emitop", "h.db") || c.Operators[0].KeysFile != filepath.Join(dir, "emitop", "b.pub") {
		t.Errorf("Load: %+v", c)
	}
	if err := os.WriteFile(other, []byte("[[account]]\nname = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(other, testProviders)
	if err == nil || !strings.HasPrefix(err.Error(), other+":1: account \"x\": missing provider") {
		t.Errorf("Load error = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "absent.toml"), testProviders); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

// FuzzParse checks that no input panics and that a rejected one always says why.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("[[account]]\nname = \"a\"\nfoo = 1\n[account.paths]\nx = 1\n"))
	f.Add([]byte("[[account]]\n[[account]]\nname=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse(data, testEnv, testProviders)
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatal("empty error")
		}
	})
}

func TestStorePathExpanded(t *testing.T) {
	env := envOf(map[string]string{"HOME": "/home/op", "STATE": "/srv/state"})
	tests := []struct {
		path, want, issue string
	}{
		{"~/emitop/h.db", "/home/op/emitop/h.db", ""},
		{"~", "/home/op", ""},
		{"${STATE}/emitop.db", "/srv/state/emitop.db", ""},
		{"${NOPE}/emitop.db", "", "2: store.path: $NOPE is not set"},
		{"~ana/h.db", "", `2: store.path: "~ana/h.db": only ~/ is understood`},
		{"/abs/h.db", "/abs/h.db", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c, err := Parse([]byte("[store]\npath = \""+tt.path+"\"\n"), env, testProviders)
			if tt.issue != "" {
				if err == nil || !strings.Contains(err.Error(), tt.issue) || strings.Count(err.Error(), "\n") != 0 {
					t.Fatalf("err %v, want one line with %q", err, tt.issue)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Store.Path != tt.want {
				t.Errorf("store.path %q, want %q", c.Store.Path, tt.want)
			}
		})
	}
}

// TestStoreURL: store.url names the team's PostgreSQL, ${VAR} expanded; a bad one is one
// line that never repeats it (it may hold a password); a password written in the file is
// a secret the file holds; path and url together are refused.
func TestStoreURL(t *testing.T) {
	env := envOf(map[string]string{"PGPW": "s3cret-pw", "HOME": "/home/op"})
	tests := []struct {
		body, want, issue string
		literal           bool
	}{
		{`url = "postgres://emitop@db.example:5432/emitop"`, "postgres://emitop@db.example:5432/emitop", "", false},
		{`url = "postgresql://emitop:${PGPW}@db.example/emitop?sslmode=require"`, "postgresql://emitop:s3cret-pw@db.example/emitop?sslmode=require", "", false},
		{`url = "postgres://emitop:hunter2@db.example/emitop"`, "postgres://emitop:hunter2@db.example/emitop", "", true},
		{`url = "postgres://db.example:5432/emitop"`, "postgres://db.example:5432/emitop", "", false},
		{`url = "postgres://emitop:${NOPE}@db/emitop"`, "", "2: store.url: $NOPE is not set", false},
		{`url = "mysql://emitop:hunter2@db/emitop"`, "", "2: store.url: not a PostgreSQL URL", false},
		{`url = "postgres://emitop:hunter2@db:port/emitop"`, "", "2: store.url: not a PostgreSQL URL", false},
		{"path = \"/srv/h.db\"\nurl = \"postgres://db/emitop\"", "", "3: store: give path", false},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			c, err := Parse([]byte("[store]\n"+tt.body+"\n"), env, testProviders)
			if tt.issue != "" {
				if err == nil || !strings.Contains(err.Error(), tt.issue) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("err %v, want %q, never the password", err, tt.issue)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Store.URL != tt.want {
				t.Errorf("store.url %q, want %q", c.Store.URL, tt.want)
			}
			if got := slices.Contains(c.literal, "store.url password"); got != tt.literal {
				t.Errorf("literal password %v, want %v", got, tt.literal)
			}
		})
	}
}

// TestStoreLease: [store] lease is how long a dead process's accounts wait for another
// to take them; at least a second.
func TestStoreLease(t *testing.T) {
	tests := []struct {
		body  string
		want  time.Duration
		issue string
	}{
		{"", DefaultLease, ""},
		{`lease = "3s"`, 3 * time.Second, ""},
		{`lease = "500ms"`, 0, "2: store.lease: at least 1s"},
		{`lease = 10`, 0, "2: store.lease: want a duration in quotes"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			c, err := Parse([]byte("[store]\n"+tt.body+"\n"), testEnv, testProviders)
			if tt.issue != "" {
				if err == nil || !strings.Contains(err.Error(), tt.issue) {
					t.Fatalf("err %v, want %q", err, tt.issue)
				}
				return
			}
			if err != nil || c.Store.Lease != tt.want {
				t.Fatalf("lease %v (%v), want %v", c.Store.Lease, err, tt.want)
			}
		})
	}
}

func TestTimezone(t *testing.T) {
	tests := []struct {
		text, want, issue string
	}{
		{"", "Local", ""},
		{"timezone = \"local\"\n", "Local", ""},
		{"timezone = \"America/El_Salvador\"\n", "America/El_Salvador", ""},
		{"timezone = \"UTC\"\n", "UTC", ""},
		{"timezone = \"Mars/Olympus\"\n", "", `1: timezone "Mars/Olympus": not a zone name`},
	}
	for _, tt := range tests {
		t.Run(tt.want+tt.issue, func(t *testing.T) {
			c, err := Parse([]byte(tt.text), testEnv, testProviders)
			if tt.issue != "" {
				if err == nil || !strings.Contains(err.Error(), tt.issue) {
					t.Fatalf("err %v, want %q", err, tt.issue)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Location.String() != tt.want {
				t.Errorf("location %v, want %s", c.Location, tt.want)
			}
		})
	}
}

// TestLoadChecksTheFileMode: a configuration anyone but its owner may write is
// refused; one others may read is allowed, with a warning when it holds secrets written in
// it rather than taken from the environment. Every message names the file and the fix.
func TestLoadChecksTheFileMode(t *testing.T) {
	const literal = "[[account]]\nname = \"alegra-co\"\nprovider = \"alegra\"\nemail = \"ops@example.co\"\ntoken = \"tok-123\"\n"
	const fromEnv = "[[account]]\nname = \"sv-main\"\nprovider = \"sv-dte\"\nbase_url = \"https://dte.example.sv\"\napi_key = \"${SV_KEY}\"\n"
	t.Setenv("SV_KEY", "sk_user_1")
	tests := []struct {
		name, body string
		mode       os.FileMode
		err, warn  string // "" when none
	}{
		{"private with literal secrets", literal, 0o600, "", ""},
		{"world-writable", fromEnv, 0o666, "is writable by others (mode 0666): anyone who can write it chooses the accounts", ""},
		{"group-writable", fromEnv, 0o620, "is writable by others (mode 0620)", ""},
		{"world-readable with a literal token", literal, 0o644, "", `is readable by others (mode 0644) and holds secrets written in it (account "alegra-co" token)`},
		{"world-readable, secrets from the environment", fromEnv, 0o644, "", ""},
		{"world-readable with a literal webhook url", fromEnv + "[[notify]]\nname = \"ops\"\nkind = \"slack\"\nurl = \"https://hooks.slack.example/T0/B0/xyz\"\n", 0o644, "",
			`holds secrets written in it (notify "ops" url)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path, testProviders)
			fix := "run chmod 600 " + path
			switch {
			case tc.err != "":
				var ce *Error
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), fix) {
					t.Fatalf("Load = %v, want an *Error with %q and %q", err, tc.err, fix)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			warnings := strings.Join(c.Warnings, "\n")
			if tc.warn == "" && warnings != "" || tc.warn != "" && (!strings.Contains(warnings, tc.warn) || !strings.Contains(warnings, fix)) {
				t.Fatalf("warnings %q, want %q", warnings, tc.warn)
			}
			if strings.Contains(warnings, "tok-123") {
				t.Fatal("the warning quotes the secret")
			}
		})
	}
}

// BenchmarkParseManyAccounts: an integrator's configuration holds thousands of accounts
// (one per client company). Parsing costs about the same per account at 10,000 as at
// 1,000 (per-account-10k/1k near 1): finding an account's lines for its messages does
// not scan the file again for each.
func BenchmarkParseManyAccounts(b *testing.B) {
	config := func(n int) []byte {
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, "[[account]]\nname = \"acc-%05d\"\nprovider = \"alegra\"\nbase_url = \"http://127.0.0.1:1/alegra\"\nemail = \"a%d@example.com\"\ntoken = \"t%d\"\npoll_interval = \"30s\"\n\n", i, i, i)
		}
		return []byte(sb.String())
	}
	small, large := config(1000), config(10000)
	per := func(data []byte, n int) time.Duration {
		start := time.Now()
		if _, err := Parse(data, testEnv, testProviders); err != nil {
			b.Fatal(err)
		}
		return time.Since(start) / time.Duration(n)
	}
	var s, l time.Duration
	for b.Loop() {
		s, l = per(small, 1000), per(large, 10000)
	}
	b.ReportMetric(float64(s.Nanoseconds()), "ns/account-1k")
	b.ReportMetric(float64(l.Nanoseconds()), "ns/account-10k")
	b.ReportMetric(float64(l)/float64(s), "per-account-10k/1k")
}
