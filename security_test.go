package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// controls are bytes and runes a terminal obeys rather than shows.
var controls = []string{"\x1b", "\r", "\a", "\u202e", "\u009b"}

func assertNoControls(t *testing.T, what, s string) {
	t.Helper()
	for _, bad := range controls {
		if strings.Contains(s, bad) {
			t.Errorf("%s holds %q: %q", what, bad, s)
		}
	}
}

// TestErrorPrinterSanitizes: a command's error carries whatever its wraps embedded (here
// a path; elsewhere a provider's text); main prints it as text.
func TestErrorPrinterSanitizes(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "\x1b]0;owned\a\x1b[2J\rconfig\u202e.toml")
	code, out, errs := runCmd("retry", "--config", cfg, "--account", "a", "--doc", "1", "--dry-run")
	if code != 2 || !strings.Contains(errs, "no such file") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	assertNoControls(t, "stdout", out)
	assertNoControls(t, "stderr", errs)
	if !strings.Contains(errs, "␍config") {
		t.Errorf("the path is not shown: %q", errs)
	}
}

// TestConfigProblemsSanitized: a configuration's problems quote its values; an escape
// sequence in one is shown, not obeyed, and each problem keeps its line.
func TestConfigProblemsSanitized(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	bad := "[[operator]]\nname = \"ops\\u001b[2J\\r\\u202e\"\nrole = \"operator\"\n\n[[operator]]\nname = \"x\"\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd("poll", "--once", "--config", path)
	if code != 2 || !strings.Contains(errs, "nobody could log in as ops␍") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	assertNoControls(t, "stderr", errs)
	if strings.Count(errs, "\n") < 3 {
		t.Errorf("the problems are not one per line: %q", errs)
	}
}

// TestPollFailedLog: poll and serve log a failed poll through pollFailed, which shows the
// provider's text as the sanitizer renders it, on one line, cut.
func TestPollFailedLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	pollFailed(log)("sv-main", errors.New("GET /factura: REJECTED\rACCEPTED \x1b[8mhidden\x1b[0m\n"+strings.Repeat("x", 400)))
	line := buf.String()
	if !strings.Contains(line, "REJECTED␍ACCEPTED hidden") || strings.Contains(line, `\r`) || strings.Contains(line, `\x1b`) ||
		strings.Count(line, "\n") != 1 || strings.Contains(line, strings.Repeat("x", 300)) {
		t.Errorf("log line %q", line)
	}
	assertNoControls(t, "log", line)
}
