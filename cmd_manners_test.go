package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"emitop/sandbox"
)

// TestCommandLineManners: the command line behaves as users expect of one.
func TestCommandLineManners(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stderr string // a part of stderr; "" when stderr may say anything
	}{
		{[]string{"pol"}, 2, "unknown command \"pol\": did you mean poll?"},
		{[]string{"histroy"}, 2, "did you mean history?"},
		{[]string{"frobnicate"}, 2, "unknown command \"frobnicate\" (emitop help lists them)"},
		{[]string{"--help"}, 0, ""},
		{[]string{"poll", "--help"}, 0, "-once"},
		{[]string{"history", "-h"}, 0, "-account"},
		{[]string{"retry", "--help"}, 0, "-doc"},
		{[]string{"serve", "--help"}, 0, "-listen"},
		{[]string{"dashboard", "--help"}, 0, "-bell"},
	}
	for _, tt := range tests {
		code, _, errs := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", tt.args, code, errs, tt.code, tt.stderr)
		}
	}
}

// TestDashboardNeedsATerminal: without a terminal, or with TERM=dumb, the dashboard says in
// one line what to use instead, with no escape codes.
func TestDashboardNeedsATerminal(t *testing.T) {
	for _, term := range []string{"xterm-256color", "dumb"} {
		t.Setenv("TERM", term)
		code, out, errs := runCmd("--demo")
		if code != 2 || out != "" || strings.Count(errs, "\n") != 1 || strings.Contains(errs, "\x1b") ||
			!strings.Contains(errs, "emitop poll --once") || !strings.Contains(errs, "emitop history") {
			t.Errorf("TERM=%s: exit %d, stdout %q, stderr %q", term, code, out, errs)
		}
	}
}

// TestPollOnceExitsOneWhenNotUp: `poll --once` exits 1 when an account is not up, and its
// JSON carries every window's forecast.
func TestPollOnceExitsOneWhenNotUp(t *testing.T) {
	_, cfg := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 2, NoFaults: true}, "5s")
	db := filepath.Join(t.TempDir(), "h.db")
	code, out, errs := runCmd("poll", "--once", "-o", "json", "--config", cfg, "--db", db)
	if code != 0 {
		t.Fatalf("all up: exit %d: %s", code, errs)
	}
	var got struct {
		Accounts []struct {
			Windows []map[string]any `json:"windows"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	windows := 0
	for _, a := range got.Accounts {
		for _, w := range a.Windows {
			windows++
			if _, ok := w["exhausts_in_seconds"]; !ok {
				t.Errorf("window without exhausts_in_seconds: %v", w)
			}
		}
	}
	if windows == 0 {
		t.Fatal("no window in the output")
	}

	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	down := regexp.MustCompile(`(name = "sv-main"\nprovider = "sv-dte"\nbase_url = )"[^"]*"`).ReplaceAllString(string(text), `$1"http://127.0.0.1:9"`)
	if down == string(text) {
		t.Fatal("the test could not point sv-main elsewhere")
	}
	if err := os.WriteFile(cfg, []byte(down), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd("poll", "--once", "--config", cfg, "--db", db)
	if code != 1 || !regexp.MustCompile(`sv-main\s+sv-dte\s+degraded`).MatchString(out) {
		t.Errorf("sv-main unreachable: exit %d, output:\n%s", code, out)
	}
}

// TestHistoryManners: an unknown account is said to be unknown, and times carry the
// configured zone.
func TestHistoryManners(t *testing.T) {
	_, cfg := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 2, NoFaults: true}, "5s")
	db := filepath.Join(t.TempDir(), "h.db")
	if code, _, errs := runCmd("poll", "--once", "--config", cfg, "--db", db); code != 0 {
		t.Fatalf("poll: exit %d: %s", code, errs)
	}
	code, _, errs := runCmd("history", "--config", cfg, "--db", db, "--account", "nosuch")
	if code != 2 || !strings.Contains(errs, `unknown account "nosuch" (known: alegra-co, alegra-mx,`) || strings.Count(errs, "\n") != 1 {
		t.Errorf("--account nosuch: exit %d, stderr %q", code, errs)
	}
	text, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append([]byte("timezone = \"America/El_Salvador\"\n"), text...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("history", "--config", cfg, "--db", db, "--account", "sv-main", "--limit", "3")
	if code != 0 || !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CST  sv-main`).MatchString(out) {
		t.Errorf("history in El Salvador's zone: exit %d %s\n%s", code, errs, out)
	}
}

// TestStorePathExpanded: ~ in store.path is the home folder, never a folder named "~".
func TestStorePathExpanded(t *testing.T) {
	_, cfg := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 2, NoFaults: true}, "5s")
	home := t.TempDir()
	t.Setenv("HOME", home)
	text, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append([]byte("[store]\npath = \"~/state/emitop.db\"\n\n"), text...), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCmd("poll", "--once", "--config", cfg); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(home, "state", "emitop.db")); err != nil {
		t.Errorf("the history is not in the home folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "~")); err == nil {
		t.Error("a folder named ~ was created")
	}
}
