package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/notify"
	"emitop/sandbox"
	"emitop/store"
)

// TestPollNotifies runs `emitop poll` with a [[notify]] webhook against a local receiver:
// an account whose key the provider refuses and one the sandbox takes down are announced
// once each, with the triage command, and nothing a receiver gets holds a credential; the
// history records what was sent and the metrics count it.
func TestPollNotifies(t *testing.T) {
	sb, cfgPath := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 6, NoFaults: true}, "300ms")
	var mu sync.Mutex
	var bodies []string
	var auth []string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(b))
		auth = append(auth, r.Header.Get("Authorization"))
	}))
	defer rc.Close()
	t.Setenv("EMITOP_TEST_HOOK_TOKEN", "hook-token-Zq81")
	cfg, _ := os.ReadFile(cfgPath)
	cfg = append(cfg, []byte(`
[[notify]]
name = "hook"
kind = "webhook"
url = "`+rc.URL+`/emitop"
token = "${EMITOP_TEST_HOOK_TOKEN}"
events = ["health", "refused"]
triage = "ssh -p 2222 ops.example.com"
`)...)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	const refused, down = "cf-madrid", "sv-branch"
	sb.SetFaults(refused, sandbox.Faults{KeyExpired: true})
	sb.SetFaults(down, sandbox.Faults{Maintenance: []sandbox.Span{{From: 0, Until: 24 * time.Hour}}})
	poll := startPoll(t, cfgPath)
	metricsURL, log := poll.url, poll.log

	messages := func() map[string]notify.Message {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]notify.Message{}
		for _, b := range bodies {
			var m notify.Message
			if err := json.Unmarshal([]byte(b), &m); err != nil {
				t.Fatalf("not JSON: %s", b)
			}
			if m.Health != nil {
				out[m.Account+" "+string(m.Health.To)] = m
			}
		}
		return out
	}
	if !eventually(40*time.Second, func() bool {
		got := messages()
		_, r := got[refused+" refused"]
		_, d := got[down+" down"]
		return r && d
	}) {
		t.Fatalf("messages: %v\nlog:\n%s", messages(), log.String())
	}
	m := messages()[refused+" refused"]
	if m.Kind != notify.KindRefused || m.Triage != "ssh -p 2222 ops.example.com -t account "+refused ||
		!strings.Contains(strings.Join(m.Details, " "), "auth") {
		t.Errorf("refused message: %+v", m)
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(scrape), `emitop_notifications_total{notifier="hook",outcome="sent"}`) {
		t.Errorf("the scrape does not count the notifications:\n%s", scrape)
	}

	mu.Lock()
	everything := strings.Join(bodies, "\n") + string(scrape)
	for _, a := range auth {
		if a != "Bearer hook-token-Zq81" {
			t.Errorf("Authorization %q", a)
		}
	}
	mu.Unlock()
	for _, a := range sb.Accounts() {
		for k, v := range a.Credentials {
			if len(v) >= 6 && strings.Contains(everything, v) {
				t.Errorf("a message or the scrape holds %s's %s", a.Name, k)
			}
		}
	}
	if strings.Contains(everything, "hook-token-Zq81") {
		t.Error("a message or the scrape holds the webhook's token")
	}

	poll.stop()
	sent := map[string]int{}
	for _, n := range historyOf(t, poll.db) {
		if n.Notifier != "hook" || n.Summary == "" {
			t.Errorf("history: %+v", n)
		}
		if n.Sent() {
			sent[n.Account+" "+n.State]++
		}
		if strings.Contains(n.Summary+n.Outcome, rc.URL) {
			t.Errorf("the history holds the webhook's URL: %+v", n)
		}
	}
	if sent[refused+" refused"] != 1 || sent[down+" down"] != 1 {
		t.Errorf("sent per account and state: %v", sent)
	}
}

// historyOf opens the history at path and lists its notifications.
func historyOf(t *testing.T, path string) []store.Notification {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list, err := st.Notifications(context.Background(), store.NotificationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestReportCommand: `emitop report` reads a history a real poll wrote, in both formats,
// and says clearly what is wrong with its flags or a missing history.
func TestReportCommand(t *testing.T) {
	sb, cfg := sandboxConfig(t, sandbox.Options{Scenario: "demo", Seed: 3, NoFaults: true}, "5s")
	db := filepath.Join(t.TempDir(), "emitop.db")
	sb.SetFaults("sv-main", sandbox.Faults{Maintenance: []sandbox.Span{{From: 0, Until: time.Hour}}})
	// One poll, in its own process: sv-main's first failure makes it degraded (its exit
	// status is poll's business).
	if _, out, errs := runCmd("poll", "--once", "--config", cfg, "--db", db); !strings.Contains(out, "sv-main") {
		t.Fatalf("poll: %s %s", out, errs)
	}
	code, out, errs := runCmd("report", "--config", cfg, "--db", db, "--since", "1h", "-o", "json")
	if code != 0 {
		t.Fatalf("report -o json: %d %s", code, errs)
	}
	var r struct {
		Accounts []struct {
			Name       string                    `json:"name"`
			Health     []struct{ To string }     `json:"health_changes"`
			Rejections []struct{ Documents int } `json:"rejections"`
		} `json:"accounts"`
		Busiest []struct{ Requests int } `json:"busiest_hours"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	health := map[string][]string{}
	rejected := 0
	for _, a := range r.Accounts {
		for _, h := range a.Health {
			health[a.Name] = append(health[a.Name], h.To)
		}
		for _, rj := range a.Rejections {
			rejected += rj.Documents
		}
	}
	if len(r.Accounts) != 14 || strings.Join(health["sv-main"], ",") != "degraded" || rejected == 0 ||
		len(r.Busiest) == 0 || r.Busiest[0].Requests == 0 {
		t.Fatalf("report: %d accounts, health %v, %d rejected, busiest %+v", len(r.Accounts), health, rejected, r.Busiest)
	}
	code, out, _ = runCmd("report", "--db", db)
	if code != 0 || !strings.Contains(out, "## sv-main (sv-dte)") || !strings.Contains(out, "up → degraded (unavailable") {
		t.Fatalf("report: %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-o", "html"}, 2, `-o "html": want markdown or json`},
		{[]string{"--since", "-1h"}, 2, "--since must be positive"},
		{[]string{"--db", filepath.Join(t.TempDir(), "none.db")}, 1, "no history at"},
	} {
		if code, _, errs := runCmd(append([]string{"report"}, c.args...)...); code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("report %v: %d %q, want %d %q", c.args, code, errs, c.code, c.want)
		}
	}
}
