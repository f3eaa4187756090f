package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"emitop/internal/tooltest"
	"emitop/model"
	"emitop/poller"
)

// hostile is provider text that must never reach a scrape.
const hostile = "SECRET-tok-9f2\x1b[31m<!channel>"

var accounts = []Account{
	{Name: "sv-main", Provider: "sv-dte", Reserve: 0.1},
	{Name: "alegra-co", Provider: "alegra", Reserve: 0.2},
}

// snapshot is a poller state with every kind of content: known and unknown figures, a
// provider that invents a window name per response and one whose names are hostile,
// documents of every status and problems of several classes.
func snapshot(at time.Time) model.Snapshot {
	rejected := &model.Problem{Class: model.ClassRejected, Verdict: model.VerdictFix, Code: "004", Message: hostile}
	cert := &model.Problem{Class: model.ClassCertificate, Verdict: model.VerdictEscalate, Message: hostile}
	sv := model.AccountState{
		Account: model.Account{Name: "sv-main", Provider: "sv-dte"}, Health: model.HealthDegraded,
		PollInterval: 30 * time.Second, LastPoll: at, Err: hostile, LastError: rejected,
		Windows: []model.Window{
			{Name: "short", Limit: 3, Remaining: 1, Reset: 800 * time.Millisecond, Observed: at, ExhaustsIn: 2 * time.Second},
			{Name: "long", Limit: 100, Remaining: model.Unknown, Reset: -1, Observed: at, ExhaustsIn: -1},
			{Name: "Evil\x1b]8;;x\x07" + hostile, Limit: 5, Remaining: 5, Reset: -1, ExhaustsIn: -1},
			{Name: "also\nevil", Limit: 5, Remaining: 5, Reset: -1, ExhaustsIn: -1},
		},
		Documents: []model.Document{
			{ID: "doc-" + hostile, Status: model.StatusRejected, Problem: rejected},
			{ID: "d2", Status: model.StatusRejected, Problem: cert},
			{ID: "d3", Status: model.StatusPending},
		},
	}
	for i := range 40 {
		sv.Windows = append(sv.Windows, model.Window{Name: fmt.Sprintf("w%d", i), Limit: 10, Remaining: 9, Reset: -1, ExhaustsIn: -1})
	}
	alegra := model.AccountState{Account: model.Account{Name: "alegra-co", Provider: "alegra"}, Health: model.HealthUp,
		Windows: []model.Window{{Name: "", Limit: 150, Remaining: 149, Reset: time.Minute, ExhaustsIn: -1}}}
	stranger := model.AccountState{Account: model.Account{Name: "not-configured", Provider: "x"}, Health: model.HealthDown}
	return model.Snapshot{At: at, Accounts: []model.AccountState{sv, alegra, stranger}, History: "disk full"}
}

// scrape serves m as a scraper sees it.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// families lists the metric names of a text exposition with how many series each has.
func families(text string) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		out[name]++
	}
	return out
}

func fullMetrics(t *testing.T) *Metrics {
	at := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	m := New(Options{Version: "test", Accounts: accounts, WriteErrors: func() uint64 { return 3 }})
	m.CountSessions(func() int { return 2 })
	m.SetSource(func() model.Snapshot { return snapshot(at) })
	m.Exchanged(poller.Exchange{Account: "sv-main", Method: "GET", Path: "/x?token=" + hostile, Status: 200, Latency: 80 * time.Millisecond})
	m.Exchanged(poller.Exchange{Account: "sv-main", Status: 0, Latency: 30 * time.Second})
	m.Exchanged(poller.Exchange{Account: "not-configured", Status: 200})
	m.Polled("sv-main", 2*time.Second, nil)
	m.Polled("alegra-co", time.Second, errors.New(hostile))
	m.Retried(model.RetryReport{Account: "sv-main", Results: []model.RetryResult{
		{Outcome: model.OutcomeAccepted, Sent: true}, {Outcome: model.OutcomeSkipped, ByPolicy: true}}})
	m.Notified("chat", "sent")
	return m
}

// TestEveryFamily: every family the on-call rules and dashboards read is in a scrape,
// with the series the state calls for.
func TestEveryFamily(t *testing.T) {
	got := families(scrape(t, fullMetrics(t)))
	want := map[string]int{
		"emitop_window_limit":                           1 + 1 + 8 - 1, // sv-main capped at 8 names (short, long, invalid, w0…), alegra unnamed
		"emitop_window_remaining":                       1 + 8 - 1,     // long's remaining is unknown
		"emitop_window_reset_seconds":                   2,
		"emitop_window_exhausts_in_seconds":             1,
		"emitop_account_reserve_ratio":                  2,
		"emitop_account_health":                         8,
		"emitop_account_last_poll_timestamp_seconds":    2,
		"emitop_account_last_success_timestamp_seconds": 2,
		"emitop_account_poll_interval_seconds":          2,
		"emitop_documents":                              2 * len(model.Statuses),
		"emitop_problems":                               2,
		"emitop_history_failing":                        1,
		"emitop_requests_total":                         2,
		"emitop_request_duration_seconds_count":         1,
		"emitop_poll_duration_seconds_count":            2,
		"emitop_poll_failures_total":                    2,
		"emitop_rejections_total":                       2,
		"emitop_retry_sends_total":                      2,
		"emitop_retry_documents_total":                  8,
		"emitop_store_write_errors_total":               1,
		"emitop_notifications_total":                    1,
		"emitop_ssh_sessions":                           1,
		"emitop_build_info":                             1,
		"process_start_time_seconds":                    1,
		"go_goroutines":                                 1,
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s: %d series, want %d", name, got[name], n)
		}
	}
}

// TestScrapeHoldsNoProviderText: nothing a provider wrote (messages, ids, window names,
// paths with queries) and no configuration outside the accounts' names reaches a label
// or a help text; every label value is in its bounded set.
func TestScrapeHoldsNoProviderText(t *testing.T) {
	text := scrape(t, fullMetrics(t))
	for _, bad := range []string{"SECRET", "channel", "\x1b", "Evil", "doc-", "not-configured", "token"} {
		if strings.Contains(text, bad) {
			t.Errorf("the scrape holds %q", bad)
		}
	}
	allowed := map[string]*regexp.Regexp{
		"account":  regexp.MustCompile(`^(sv-main|alegra-co)$`),
		"provider": regexp.MustCompile(`^(sv-dte|alegra)$`),
		"window":   regexp.MustCompile(`^([a-z0-9_.-]{1,32}|\(unnamed\))$`), // model.UnnamedWindow
		"health":   regexp.MustCompile(`^(up|degraded|down|refused)$`),
		"status":   regexp.MustCompile(`^([2-5]xx|none|draft|pending|accepted|rejected|cancelled|unknown)$`),
		"class":    regexp.MustCompile(`^[a-z_]+$`),
		"verdict":  regexp.MustCompile(`^[a-z]+$`),
		"outcome":  regexp.MustCompile(`^(accepted|rejected|skipped|unknown|sent|failed|dropped)$`),
		"notifier": regexp.MustCompile(`^chat$`),
	}
	label := regexp.MustCompile(`([a-z_]+)="([^"]*)"`)
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "emitop_") {
			continue
		}
		for _, m := range label.FindAllStringSubmatch(line, -1) {
			if re, ok := allowed[m[1]]; ok && !re.MatchString(m[2]) {
				t.Errorf("label %s=%q in %s", m[1], m[2], line)
			}
		}
	}
}

// TestPromtoolChecksAScrape runs Prometheus's own linter on a full scrape.
func TestPromtoolChecksAScrape(t *testing.T) {
	promtool := tooltest.Need(t, "promtool", "prometheus")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, fullMetrics(t)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestRejectionsCountsOnlyNewOnes: what was rejected when emitop started is not counted;
// a document that becomes rejected is, once; a failed poll's snapshot changes nothing;
// while another emitop sharing the store polls the account, that one counts.
func TestRejectionsCountsOnlyNewOnes(t *testing.T) {
	m := New(Options{Accounts: accounts})
	at := time.Now()
	state := func(err string, ids ...string) model.Snapshot {
		a := model.AccountState{Account: model.Account{Name: "sv-main", Provider: "sv-dte"}, LastPoll: at, Err: err}
		for _, id := range ids {
			a.Documents = append(a.Documents, model.Document{ID: id, Status: model.StatusRejected})
		}
		return model.Snapshot{Accounts: []model.AccountState{a}}
	}
	elsewhere := func(ids ...string) model.Snapshot {
		s := state("", ids...)
		s.Accounts[0].PolledBy = "box-b/4121"
		return s
	}
	snaps := make(chan model.Snapshot, 16)
	for _, s := range []model.Snapshot{
		{Accounts: []model.AccountState{{Account: model.Account{Name: "sv-main"}}}}, // not polled yet
		state("", "a", "b"),                          // the baseline
		state("", "a", "b", "c"),                     // c is new
		state("timeout", "a"),                        // a failed poll: nothing is learned
		state("", "a", "c", "d"),                     // d is new
		state("", "a", "b", "c", "d"),                // b came back: rejected again
		elsewhere("a", "b", "c", "d", "e"),           // polled by another emitop: counted there
		state("", "a", "b", "c", "d", "e", "f"),      // polled here again: a new baseline
		state("", "a", "b", "c", "d", "e", "f", "g"), // g is new
	} {
		snaps <- s
	}
	close(snaps)
	m.Watch(snaps)
	if n := families(scrape(t, m)); n["emitop_rejections_total"] != 2 {
		t.Fatalf("series: %v", n)
	}
	if got := counter(t, m, "emitop_rejections_total", "sv-main"); got != 4 {
		t.Fatalf("rejections = %v, want 4", got)
	}
}

// counter reads one account's value of a counter family.
func counter(t *testing.T, m *Metrics, family, account string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != family {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "account" && l.GetValue() == account {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s for %s", family, account)
	return 0
}

// TestServeBoundsStrangers: connections that never finish their headers hold every slot,
// yet a scraper gets its answer once they are cut; a header block past the limit is
// refused; the server stops when its context ends.
func TestServeBoundsStrangers(t *testing.T) {
	saved := readHeaderTimeout
	readHeaderTimeout = 300 * time.Millisecond
	t.Cleanup(func() { readHeaderTimeout = saved })
	m := fullMetrics(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, l) }()
	addr := l.Addr().String()

	var hogs []net.Conn
	for range maxConns + 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ") // and never more
		hogs = append(hogs, c)
	}
	defer func() {
		for _, c := range hogs {
			c.Close()
		}
	}()
	start := time.Now()
	client := &http.Client{Timeout: readHeaderTimeout + 10*time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape behind %d stalled connections: %v", len(hogs), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("emitop_account_health")) {
		t.Fatalf("scrape: %d %.200s", resp.StatusCode, body)
	}
	t.Logf("scraped in %v behind %d stalled connections", time.Since(start).Round(time.Millisecond), len(hogs))

	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 2*maxHeaderBytes))
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d-byte header: %d", 2*maxHeaderBytes, resp.StatusCode)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(shutdownTimeout + 2*time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
