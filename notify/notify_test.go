package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
	"emitop/store"
)

// receiver is a local webhook receiver: it answers each request as answer says, and
// keeps the requests answer reports taken.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	auth   []string
	calls  int
	answer func(call int, w http.ResponseWriter, r *http.Request) (taken bool) // nil: 200, taken
}

func newReceiver(t *testing.T, answer func(int, http.ResponseWriter, *http.Request) bool) *receiver {
	rc := &receiver{t: t, answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.calls++
		call := rc.calls
		rc.mu.Unlock()
		if rc.answer != nil && !rc.answer(call, w, r) {
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.bodies = append(rc.bodies, body)
		rc.auth = append(rc.auth, r.Header.Get("Authorization"))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// messages decodes what the receiver took as webhook messages.
func (rc *receiver) messages() []Message {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]Message, 0, len(rc.bodies))
	for _, b := range rc.bodies {
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			rc.t.Fatalf("not JSON: %s", b)
		}
		out = append(out, m)
	}
	return out
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.bodies)
}

// harness is one notifier over a real store, fed snapshots by hand.
type harness struct {
	t     *testing.T
	st    *store.Store
	n     *Notifier
	snaps chan model.Snapshot
	done  chan struct{}
	log   *bytes.Buffer
}

func entry(kind, url string) config.Notify {
	return config.Notify{Name: "chat", Kind: kind, Secrets: config.NewCredentials(map[string]string{"url": url}),
		Events: config.NotifyEvents, Repeat: time.Hour, MaxPerMinute: 600, Timeout: 2 * time.Second,
		Triage: "ssh -p 2222 ops.example.com"}
}

var fastBackoff = pace.Backoff{Base: 10 * time.Millisecond, Cap: 40 * time.Millisecond, Retries: 4}

func start(t *testing.T, st *store.Store, cfg config.Notify, opt Options) *harness {
	t.Helper()
	if st == nil {
		var err error
		st, err = store.Open(context.Background(), filepath.Join(t.TempDir(), "emitop.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	h := &harness{t: t, st: st, snaps: make(chan model.Snapshot), done: make(chan struct{}), log: &bytes.Buffer{}}
	if opt.Backoff == (pace.Backoff{}) {
		opt.Backoff = fastBackoff
	}
	opt.Log = slog.New(slog.NewTextHandler(&lockedWriter{w: h.log}, nil))
	n, err := New(context.Background(), cfg, st, opt)
	if err != nil {
		t.Fatal(err)
	}
	h.n = n
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(h.done)
		n.Run(ctx, h.snaps)
	}()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

// stop ends the notifier and returns its history.
func (h *harness) stop() []store.Notification {
	h.t.Helper()
	close(h.snaps)
	<-h.done
	if err := h.st.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	list, err := h.st.Notifications(context.Background(), store.NotificationFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	return list
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// state is a snapshot of one account at minute min.
func state(min int, health model.Health, docs ...model.Document) model.Snapshot {
	at := t0.Add(time.Duration(min) * time.Minute)
	a := model.AccountState{Account: model.Account{Name: "sv-main", Provider: "sv-dte"}, Health: health, LastPoll: at, Documents: docs}
	if health != model.HealthUp {
		a.Err = "GET /factura: 503"
		a.LastError = &model.Problem{Class: model.ClassUnavailable, Verdict: model.VerdictRetry, Code: "503"}
	}
	return model.Snapshot{At: at, Accounts: []model.AccountState{a}}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOneMessagePerChange: every change of health is announced once, in order, as JSON a
// webhook reads, and recorded; an unchanged state is not announced again within repeat,
// and up at the start is not news.
func TestOneMessagePerChange(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := entry(config.NotifyWebhook, rc.srv.URL+"/hook")
	cfg.Secrets = config.NewCredentials(map[string]string{"url": rc.srv.URL + "/hook", "token": "tok-s3cr3t"})
	h := start(t, nil, cfg, Options{Version: "test"})
	for _, s := range []model.Snapshot{
		state(0, model.HealthUp), state(1, model.HealthDegraded), state(2, model.HealthDegraded),
		state(3, model.HealthDown), state(4, model.HealthDown), state(5, model.HealthUp), state(6, model.HealthUp),
	} {
		h.snaps <- s
		waitFor(t, "the queue to drain", func() bool { h.n.mu.Lock(); defer h.n.mu.Unlock(); return len(h.n.order) == 0 })
	}
	waitFor(t, "3 messages", func() bool { return rc.count() >= 3 })
	history := h.stop()
	msgs := rc.messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages: %+v", len(msgs), msgs)
	}
	for i, want := range []Health{{model.HealthUp, model.HealthDegraded}, {model.HealthDegraded, model.HealthDown}, {model.HealthDown, model.HealthUp}} {
		m := msgs[i]
		if m.Kind != KindHealth || m.Health == nil || *m.Health != want || m.Account != "sv-main" || m.Reminder || m.ID == "" {
			t.Errorf("message %d: %+v, want %v", i, m, want)
		}
		if m.Triage != "ssh -p 2222 ops.example.com -t account sv-main" {
			t.Errorf("triage %q", m.Triage)
		}
	}
	if !strings.Contains(strings.Join(msgs[1].Details, "\n"), "Meaning: The provider is in maintenance") {
		t.Errorf("the down message does not say what the error means: %q", msgs[1].Details)
	}
	if rc.auth[0] != "Bearer tok-s3cr3t" {
		t.Errorf("Authorization %q", rc.auth[0])
	}
	if len(history) != 3 || !history[0].Sent() || history[0].State != "up" || history[2].State != "degraded" || history[0].Attempts != 1 {
		t.Errorf("history: %+v", history)
	}
}

// TestOnlyThePollerTells: an account another emitop sharing the store polls is told of
// by that one: this one sends nothing of it, whatever its state.
func TestOnlyThePollerTells(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, nil, entry(config.NotifyWebhook, rc.srv.URL+"/hook"), Options{Version: "test"})
	for i, health := range []model.Health{model.HealthUp, model.HealthDown, model.HealthRefused} {
		s := state(i, health)
		for j := range s.Accounts {
			s.Accounts[j].PolledBy = "box-b/4121"
		}
		h.snaps <- s
		waitFor(t, "the queue to drain", func() bool { h.n.mu.Lock(); defer h.n.mu.Unlock(); return len(h.n.order) == 0 })
	}
	if history := h.stop(); rc.count() != 0 || len(history) != 0 {
		t.Fatalf("%d messages, %d recorded for an account another process polls", rc.count(), len(history))
	}
}

// TestReminderAndRestart: a state that lasts is announced again once repeat has passed,
// as a reminder; a restarted notifier over the same history announces nothing it already
// said.
func TestReminderAndRestart(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := entry(config.NotifyWebhook, rc.srv.URL)
	cfg.Repeat = 10 * time.Minute
	h := start(t, nil, cfg, Options{})
	h.snaps <- state(0, model.HealthDown)
	h.snaps <- state(5, model.HealthDown) // within repeat
	waitFor(t, "the first message", func() bool { return rc.count() == 1 })
	h.snaps <- state(11, model.HealthDown)
	waitFor(t, "the reminder", func() bool { return rc.count() == 2 })
	h.stop()
	if m := rc.messages()[1]; !m.Reminder || m.Health.To != model.HealthDown {
		t.Fatalf("reminder: %+v", m)
	}

	again := start(t, h.st, cfg, Options{})
	again.snaps <- state(12, model.HealthDown)
	again.snaps <- state(13, model.HealthDown)
	again.stop()
	if rc.count() != 2 {
		t.Fatalf("a restart announced again: %+v", rc.messages()[2:])
	}

	// Restarted once more after repeat has passed, still down: what is due at once is a
	// reminder of what the receiver heard, not news.
	third := start(t, h.st, cfg, Options{})
	third.snaps <- state(30, model.HealthDown)
	waitFor(t, "the reminder after the restart", func() bool { return rc.count() == 3 })
	third.stop()
	if m := rc.messages()[2]; !m.Reminder || m.Health.From != model.HealthDown || m.Health.To != model.HealthDown {
		t.Fatalf("the state the receiver heard before the restart, still down, came as news: %+v %+v", m, m.Health)
	}
}

// TestFailingReceiver: a receiver that fails twice gets the message on the third attempt;
// one that always fails is given up on after five, recorded as failed, and the state is
// tried again only after the cooldown; a 4xx is not tried again at all.
func TestFailingReceiver(t *testing.T) {
	cases := []struct {
		name     string
		answer   func(call int, w http.ResponseWriter, r *http.Request) bool
		outcome  string
		attempts int
	}{
		{"fails twice", func(call int, w http.ResponseWriter, r *http.Request) bool {
			if call <= 2 {
				w.WriteHeader(http.StatusBadGateway)
				return false
			}
			return true
		}, store.NotificationSent, 3},
		{"always 500", func(_ int, w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusInternalServerError)
			return false
		}, "failed: HTTP 500 (after 5 attempts)", 5},
		{"429 then taken", func(call int, w http.ResponseWriter, r *http.Request) bool {
			if call == 1 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return false
			}
			return true
		}, store.NotificationSent, 2},
		{"400", func(_ int, w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusBadRequest)
			return false
		}, "failed: HTTP 400: permanent", 1},
		{"redirect", func(_ int, w http.ResponseWriter, r *http.Request) bool {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusTemporaryRedirect)
			return false
		}, "failed: HTTP 307: permanent", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := newReceiver(t, c.answer)
			h := start(t, nil, entry(config.NotifyWebhook, rc.srv.URL+"/s3cr3t-path"), Options{Cooldown: time.Hour})
			h.snaps <- state(0, model.HealthDown)
			waitFor(t, "the outcome", func() bool {
				h.n.mu.Lock()
				defer h.n.mu.Unlock()
				_, heard := h.n.heard["health/sv-main"]
				_, failed := h.n.failed["health/sv-main"]
				return heard || failed
			})
			h.snaps <- state(1, model.HealthDown) // within the cooldown, or already heard: nothing more
			history := h.stop()
			if len(history) != 1 || history[0].Outcome != c.outcome || history[0].Attempts != c.attempts {
				t.Fatalf("history: %+v, want %q after %d attempts", history, c.outcome, c.attempts)
			}
			if strings.Contains(h.log.String(), "s3cr3t") || strings.Contains(history[0].Outcome, "127.0.0.1") {
				t.Fatalf("the URL leaked: %s %s", h.log.String(), history[0].Outcome)
			}
		})
	}
}

// TestHangingReceiver: a receiver that never answers costs one timeout per attempt, the
// message is recorded as failed, and the notifier goes on to the next message, which a
// receiver that has come back takes.
func TestHangingReceiver(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(call int, w http.ResponseWriter, r *http.Request) bool {
		if call > 5 {
			return true
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	defer close(release)
	cfg := entry(config.NotifyWebhook, rc.srv.URL)
	cfg.Timeout = 100 * time.Millisecond
	h := start(t, nil, cfg, Options{Cooldown: time.Hour})
	began := time.Now()
	h.snaps <- state(0, model.HealthDown)
	waitFor(t, "the hung message to fail", func() bool {
		h.n.mu.Lock()
		defer h.n.mu.Unlock()
		return len(h.n.failed) == 1
	})
	took := time.Since(began)
	other := state(1, model.HealthDown)
	other.Accounts[0].Account.Name = "sv-branch"
	h.snaps <- other
	waitFor(t, "the next message", func() bool { return rc.count() == 1 })
	history := h.stop()
	if len(history) != 2 || history[1].Outcome != "failed: no answer within 100ms (after 5 attempts)" || !history[0].Sent() {
		t.Fatalf("history: %+v", history)
	}
	if took > 5*time.Second {
		t.Fatalf("five 100 ms attempts took %v", took)
	}
}

// TestRateLimit: ten accounts going down at once with max_per_minute = 2 send two
// messages at once; the others wait their turn, none is lost, and they are dropped and
// recorded when emitop stops.
func TestRateLimit(t *testing.T) {
	rc := newReceiver(t, nil)
	cfg := entry(config.NotifyWebhook, rc.srv.URL)
	cfg.MaxPerMinute = 2
	h := start(t, nil, cfg, Options{})
	s := model.Snapshot{At: t0}
	for i := range 10 {
		a := state(0, model.HealthDown).Accounts[0]
		a.Account.Name = "acct-" + string(rune('a'+i))
		s.Accounts = append(s.Accounts, a)
	}
	h.snaps <- s
	waitFor(t, "two messages", func() bool { return rc.count() == 2 })
	time.Sleep(300 * time.Millisecond)
	if n := rc.count(); n != 2 {
		t.Fatalf("%d messages in 300 ms at 2 a minute", n)
	}
	history := h.stop()
	var sent, dropped int
	for _, n := range history {
		switch {
		case n.Sent():
			sent++
		case strings.HasPrefix(n.Outcome, "dropped: "):
			dropped++
		}
	}
	if sent != 2 || dropped != 8 {
		t.Fatalf("sent %d, dropped %d: %+v", sent, dropped, history)
	}
}

// TestSlackMessageIsCleanAndEscaped: documents whose verdict is escalate reach Slack once,
// with provider text sanitized, Slack's markup characters escaped (no <!channel> ping)
// and a credential a provider echoed redacted; the Slack URL, a credential itself, is in
// neither the history nor the log.
func TestSlackMessageIsCleanAndEscaped(t *testing.T) {
	rc := newReceiver(t, nil)
	url := rc.srv.URL + "/services/T0/B0/s3cr3t-slack"
	h := start(t, nil, entry(config.NotifySlack, url), Options{
		Redact: strings.NewReplacer("sk_live_ECHOED", "[redacted]").Replace,
	})
	cert := &model.Problem{Class: model.ClassCertificate, Verdict: model.VerdictEscalate, Code: "sk_live_ECHOED\x1b[8m", Message: "anything"}
	docs := []model.Document{
		{ID: "d1", Number: "<!channel> FE-1\x1b]8;;http://evil\x07click\x1b]8;;\x07\r", Status: model.StatusRejected, Problem: cert},
		{ID: "d2", Number: "FE-2 *call* _now_ `x`", Status: model.StatusRejected, Problem: cert},
	}
	h.snaps <- state(0, model.HealthUp, docs...)
	h.snaps <- state(1, model.HealthUp, docs...)
	waitFor(t, "the message", func() bool { return rc.count() == 1 })
	h.snaps <- state(2, model.HealthUp, append(docs, model.Document{ID: "d3", Number: "FE-3", Status: model.StatusRejected, Problem: cert})...)
	waitFor(t, "the message about the new document", func() bool { return rc.count() == 2 })
	history := h.stop()
	var body struct{ Text string }
	json.Unmarshal(rc.bodies[0], &body)
	for _, want := range []string{"*sv-main: 2 documents need someone with authority*", "• `&lt;!channel&gt; FE-1", "• `FE-2 *call* _now_ 'x'`: certificate · escalate", "code `[redacted]`", "Triage: `ssh -p 2222 ops.example.com -t account sv-main`"} {
		if !strings.Contains(body.Text, want) {
			t.Errorf("the message lacks %q:\n%s", want, body.Text)
		}
	}
	for _, bad := range []string{"<!channel>", "\x1b", "\r", "sk_live_ECHOED", "evil", "anything"} {
		if strings.Contains(body.Text, bad) {
			t.Errorf("the message holds %q:\n%s", bad, body.Text)
		}
	}
	for _, n := range history {
		if strings.Contains(n.Summary+n.Outcome, "s3cr3t") {
			t.Errorf("the history holds the URL: %+v", n)
		}
	}
	if strings.Contains(h.log.String(), "s3cr3t") {
		t.Errorf("the log holds the URL:\n%s", h.log.String())
	}
}

// TestWindowFlapsAnnouncedOnce: a window about to run out is announced once; while it
// comes and goes within repeat it is not announced again.
func TestWindowFlapsAnnouncedOnce(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, nil, entry(config.NotifyWebhook, rc.srv.URL), Options{Reserve: map[string]float64{"sv-main": 0.1}})
	win := func(min int, exhausts time.Duration, remaining int) model.Snapshot {
		s := state(min, model.HealthUp)
		s.Accounts[0].Windows = []model.Window{{Name: "short", Limit: 100, Remaining: remaining, Reset: -1, ExhaustsIn: exhausts}}
		return s
	}
	for _, s := range []model.Snapshot{
		win(0, -1, 90), win(1, 5*time.Minute, 50), win(2, -1, 90), win(3, 4*time.Minute, 40), win(4, -1, 5),
	} {
		h.snaps <- s
	}
	waitFor(t, "the message", func() bool { return rc.count() >= 1 })
	h.stop()
	msgs := rc.messages()
	if len(msgs) != 1 || msgs[0].Kind != KindWindow || msgs[0].Window == nil || *msgs[0].Window.ExhaustsInSeconds != 300 ||
		msgs[0].Summary != "sv-main: window short runs out in 5m0s" {
		t.Fatalf("messages: %+v", msgs)
	}
}

// TestBriefDegradationIsNotAnnounced: an account degraded for less than a minute (a poll
// that failed once, a window spent for a moment) and up again is not news; down is
// announced at once.
func TestBriefDegradationIsNotAnnounced(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, nil, entry(config.NotifyWebhook, rc.srv.URL), Options{})
	at := func(s model.Snapshot, d time.Duration) model.Snapshot {
		s.At = t0.Add(d)
		return s
	}
	for _, s := range []model.Snapshot{
		at(state(0, model.HealthDegraded), 0), at(state(0, model.HealthDegraded), 30*time.Second), at(state(0, model.HealthUp), 40*time.Second),
		at(state(0, model.HealthDegraded), 2*time.Minute), at(state(0, model.HealthDown), 2*time.Minute+10*time.Second),
	} {
		h.snaps <- s
	}
	waitFor(t, "the down message", func() bool { return rc.count() == 1 })
	h.stop()
	if m := rc.messages()[0]; m.Health.To != model.HealthDown || m.Health.From != model.HealthDegraded {
		t.Fatalf("message: %+v", m.Health)
	}
}

// TestInventedWindowNames: a provider that names a new window in every response, with
// control characters and markup in the names, is watched for its first maxWindows windows
// only (what the notifier remembers stays bounded), and the names reach a message
// sanitized, in the summary and in the JSON alike.
func TestInventedWindowNames(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, nil, entry(config.NotifyWebhook, rc.srv.URL), Options{Reserve: map[string]float64{"sv-main": 0.1}})
	var windows []model.Window
	for i := range 200 {
		windows = append(windows, model.Window{Name: fmt.Sprintf("w%d\x1b[8m\r\u202e<!here>", i), Limit: 10, Remaining: 0, Reset: -1, ExhaustsIn: -1})
		s := state(0, model.HealthUp) // within repeat: no reminder
		s.Accounts[0].Windows = slices.Clone(windows)
		h.snaps <- s
	}
	waitFor(t, "the first windows' messages", func() bool { return rc.count() == maxWindows })
	h.n.mu.Lock()
	remembered := len(h.n.observed) + len(h.n.since)
	h.n.mu.Unlock()
	h.stop()
	if remembered > 2*(maxWindows+2) {
		t.Errorf("the notifier remembers %d states for one account", remembered)
	}
	msgs := rc.messages()
	if len(msgs) != maxWindows {
		t.Fatalf("%d messages, want one for each of the first %d windows", len(msgs), maxWindows)
	}
	for _, m := range msgs {
		for _, text := range []string{m.Summary, m.Window.Name} {
			if strings.ContainsAny(text, "\x1b\r\u202e") {
				t.Errorf("provider text reached the message unsanitized: %q", text)
			}
		}
		if !strings.HasPrefix(m.Window.Name, "w") || !strings.Contains(m.Summary, m.Window.Name) {
			t.Errorf("window %q, summary %q", m.Window.Name, m.Summary)
		}
	}
}

// TestStopDuringAnAttempt: emitop stopping while a receiver hangs ends the attempt at once,
// and the history says so in one plain clause.
func TestStopDuringAnAttempt(t *testing.T) {
	arrived := make(chan struct{}, 1)
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) bool {
		arrived <- struct{}{}
		<-r.Context().Done()
		return false
	})
	cfg := entry(config.NotifyWebhook, rc.srv.URL)
	cfg.Timeout = time.Minute
	h := start(t, nil, cfg, Options{})
	h.snaps <- state(0, model.HealthDown)
	<-arrived
	began := time.Now()
	history := h.stop()
	if len(history) != 1 || history[0].Outcome != "failed: emitop stopped during attempt 1" {
		t.Fatalf("history: %+v", history)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("stopping took %v", took)
	}
}
