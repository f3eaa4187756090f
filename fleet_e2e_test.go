package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"emitop/internal/pgtest"
)

// TestFleetOnPostgres, as a team would start: `emitop sandbox --accounts 3 --config-out`
// serves three accounts per provider and writes them all; the configuration names the
// team's PostgreSQL in [store] url; `poll --once` polls every account into it, `history`
// and `report` read it, and `retry` names the store it shares its leases through, never
// with the URL's password.
func TestFleetOnPostgres(t *testing.T) {
	const secret = "hunter2-pw" // the test server trusts every password: it must never show
	url := strings.Replace(pgtest.Need(t).Schema(t), "emitop@", "emitop:"+secret+"@", 1)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	sb := exec.Command(emitopBinary(t), "sandbox", "--scenario", "calm", "--accounts", "3", "--listen", "127.0.0.1:0", "--config-out", cfg)
	out, err := sb.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sb.Stderr = os.Stderr
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sb.Process.Signal(syscall.SIGTERM)
		sb.Wait()
	})
	lines := bufio.NewScanner(out)
	var said []string
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "config written") {
		said = append(said, lines.Text())
	}
	go func() { // keep the pipe drained
		for lines.Scan() {
		}
	}()
	if len(said) == 0 || !strings.Contains(said[0], "serving 15 accounts") {
		t.Fatalf("emitop sandbox said %q", said)
	}
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n[store]\nurl = \"" + url + "\"\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()

	code, stdout, stderr := runCmd("poll", "--once", "-o", "json", "--config", cfg)
	var polled struct {
		Accounts []struct{ Name, Health string }
	}
	if err := json.Unmarshal([]byte(stdout), &polled); err != nil || len(polled.Accounts) != 15 {
		t.Fatalf("poll --once: exit %d, %d accounts (%v)\n%s%s", code, len(polled.Accounts), err, stdout, stderr)
	}
	for _, name := range []string{"alegra-0003", "sv-0003", "cf-0003", "factus-0003", "alforse-0003"} {
		found := false
		for _, a := range polled.Accounts {
			found = found || a.Name == name
		}
		if !found {
			t.Errorf("poll --once did not poll %s", name)
		}
	}
	code, stdout, stderr = runCmd("history", "--config", cfg, "--account", "sv-0003")
	if code != 0 || !strings.Contains(stdout, "sv-0003") {
		t.Fatalf("history from PostgreSQL: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd("report", "--config", cfg, "--since", "1h")
	if code != 0 || !strings.Contains(stdout, "sv-0003") {
		t.Fatalf("report from PostgreSQL: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd("retry", "--config", cfg, "--account", "cf-0003", "--all-rejected", "--dry-run")
	if code != 0 || !strings.Contains(stdout, "store: PostgreSQL emitop@127.0.0.1:") ||
		!strings.Contains(stdout, "leases shared with every emitop using it, on any host") {
		t.Fatalf("retry --dry-run on PostgreSQL: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, s := range []string{stdout, stderr} {
		if strings.Contains(s, secret) {
			t.Fatalf("the store's password was shown:\n%s", s)
		}
	}
}
