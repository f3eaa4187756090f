package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"emitop/sandbox"
)

// TestConfigModeAtTheCommandLine: a command warns on stderr about a configuration others
// may read while it holds literal secrets, and refuses (exit 2) one others may write;
// both messages name the file and the fix.
func TestConfigModeAtTheCommandLine(t *testing.T) {
	_, cfg := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 2, NoFaults: true}, "5s") // literal credentials
	db := filepath.Join(t.TempDir(), "emitop.db")
	fix := "chmod 600 " + cfg
	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd("poll", "--once", "--config", cfg, "--db", db)
	if code != 0 || !strings.Contains(errs, "emitop: warning: "+cfg+" is readable by others (mode 0644) and holds secrets") || !strings.Contains(errs, fix) {
		t.Fatalf("a world-readable config with secrets: exit %d, stderr %q", code, errs)
	}
	if err := os.Chmod(cfg, 0o666); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("poll", "--once", "--config", cfg, "--db", db)
	if code != 2 || out != "" || !strings.Contains(errs, cfg+" is writable by others (mode 0666)") || !strings.Contains(errs, fix) {
		t.Fatalf("a world-writable config: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
