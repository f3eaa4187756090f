package poller

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/sandbox"
	"emitop/store"
)

// offsetClock is the sandbox's clock: the wall clock plus an offset the test moves, so
// that documents change state without waiting for the scenario's steps.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) now() time.Time            { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) advance(d time.Duration)   { c.off.Add(int64(d)) }
func (c *offsetClock) options() func() time.Time { return c.now }

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "emitop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// errorLog collects OnError reports.
type errorLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errorLog) add(account string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, account+": "+err.Error())
}

func (l *errorLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

func newTestPoller(t testing.TB, accounts []config.Account, st *store.Store, errs *errorLog) *Poller {
	t.Helper()
	opts := Options{Version: "test", Backoff: quick}
	if errs != nil {
		opts.OnError = errs.add
	}
	p, err := New(accounts, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func stateOf(s model.Snapshot, name string) model.AccountState {
	for _, a := range s.Accounts {
		if a.Account.Name == name {
			return a
		}
	}
	return model.AccountState{}
}

func TestPollOnceStoresAndPublishes(t *testing.T) {
	clock := &offsetClock{}
	_, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true, Clock: clock.options()})
	st := openStore(t)
	var errs errorLog
	p := newTestPoller(t, accounts, st, &errs)
	snaps, cancel := p.Hub().Subscribe()
	defer cancel()
	ctx := context.Background()

	snap := p.PollOnce(ctx)
	first := snap
	if got := <-snaps; got.At != snap.At || len(got.Accounts) != len(accounts) {
		t.Fatalf("published %d accounts at %v, returned at %v", len(got.Accounts), got.At, snap.At)
	}
	if e := errs.list(); len(e) > 0 {
		t.Fatalf("errors: %v", e)
	}
	for i, a := range snap.Accounts {
		if a.Account.Name != accounts[i].Name || a.Account.Provider != accounts[i].Provider {
			t.Fatalf("account %d is %+v, configured %s", i, a.Account, accounts[i].Name)
		}
		if a.Health != model.HealthUp || a.Err != "" || a.LastPoll.IsZero() || a.PollInterval < accounts[i].PollInterval {
			t.Errorf("%s: health %s err %q last %v interval %v", a.Account.Name, a.Health, a.Err, a.LastPoll, a.PollInterval)
		}
		rejected := 0
		for _, d := range a.Documents {
			if d.FirstSeen.IsZero() || d.Changed.IsZero() {
				t.Errorf("%s: %s first seen %v, changed %v", a.Account.Name, d.ID, d.FirstSeen, d.Changed)
			}
			if d.Status == model.StatusRejected {
				rejected++
				if d.Problem == nil || d.Problem.Class == model.ClassOK {
					t.Errorf("%s: rejected %s without its problem", a.Account.Name, d.ID)
				}
			}
		}
		if rejected == 0 {
			t.Errorf("%s: no rejected document in %d", a.Account.Name, len(a.Documents))
		}
		if a.Account.Provider != "alforse" && len(a.Windows) == 0 {
			t.Errorf("%s: no windows", a.Account.Name)
		}
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Every listed document has its "seen" event with the raw JSON it was listed with.
	for _, a := range snap.Accounts {
		events, err := st.Events(ctx, store.EventFilter{Account: a.Account.Name, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range events {
			if e.Kind == store.KindSeen && len(e.Raw) > 0 {
				seen[e.DocID] = true
			}
		}
		for _, d := range a.Documents {
			if !seen[d.ID] {
				t.Errorf("%s: %s has no seen event with raw bytes", a.Account.Name, d.ID)
			}
		}
	}
	// The request log holds every request, logins included, without queries.
	reqs, err := st.Requests(ctx, store.RequestFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	logins := 0
	for _, r := range reqs {
		if strings.Contains(r.Path, "?") || r.Status/100 != 2 || r.Class != model.ClassOK || r.At.IsZero() {
			t.Errorf("request log row %+v", r)
		}
		if r.Method == "POST" {
			logins++
		}
	}
	if len(reqs) < len(accounts) || logins < 4 { // factus and alforse log in, two accounts each
		t.Errorf("%d requests logged, %d logins", len(reqs), logins)
	}
	// A window is sampled once two polls in a row have seen it.
	if series, err := st.WindowSeries(ctx, "alegra-co", "", time.Time{}, 10); err != nil || len(series) != 0 {
		t.Errorf("alegra-co window samples after one poll %+v, %v", series, err)
	}

	// Nothing changed: a second poll records no event.
	before, _ := st.Events(ctx, store.EventFilter{Limit: 100000})
	snap = p.PollOnce(ctx)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	series, err := st.WindowSeries(ctx, "alegra-co", "", time.Time{}, 10)
	if err != nil || len(series) != 1 || series[0].Limit != 150 {
		t.Errorf("alegra-co window samples %+v, %v", series, err)
	}
	after, _ := st.Events(ctx, store.EventFilter{Limit: 100000})
	if len(after) != len(before) {
		t.Errorf("an unchanged poll added %d events", len(after)-len(before))
	}
	changed := map[string]time.Time{}
	for _, a := range first.Accounts {
		for _, d := range a.Documents {
			changed[d.Account+"/"+d.ID] = d.Changed
		}
	}
	for _, a := range snap.Accounts {
		for _, d := range a.Documents {
			if c, ok := changed[d.Account+"/"+d.ID]; ok && !c.Equal(d.Changed) {
				t.Errorf("%s %s: unchanged, but Changed moved from %v to %v", d.Account, d.ID, c, d.Changed)
			}
		}
	}

	// Ten minutes later pending documents have settled: those that left the listing are
	// read, and their new status reaches the history with the detail's raw JSON.
	pending := map[[2]string]bool{}
	for _, a := range snap.Accounts {
		for _, d := range a.Documents {
			if d.Status == model.StatusPending && a.Account.Provider != "alforse" {
				pending[[2]string{d.Account, d.ID}] = true
			}
		}
	}
	clock.advance(10 * time.Minute)
	snap = p.PollOnce(ctx)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range snap.Accounts {
		for _, d := range a.Documents {
			delete(pending, [2]string{d.Account, d.ID})
		}
	}
	if len(pending) == 0 {
		t.Fatal("no pending document left the listing")
	}
	for k := range pending {
		events, _ := st.Events(ctx, store.EventFilter{Account: k[0], DocID: k[1]})
		if len(events) < 2 || events[0].Kind != store.KindStatus || events[0].Status != model.StatusAccepted || len(events[0].Raw) == 0 {
			t.Errorf("%s %s left the listing; its last event %+v", k[0], k[1], events[0])
		}
	}
	for _, a := range snap.Accounts {
		if a.Health != model.HealthUp {
			t.Errorf("%s: %s after the third poll (%s)", a.Account.Name, a.Health, a.Err)
		}
	}
	if e := errs.list(); len(e) > 0 {
		t.Fatalf("errors: %v", e)
	}
}

func TestHealth(t *testing.T) {
	spent := []model.Window{{Name: "", Limit: 10, Remaining: 0}}
	room := []model.Window{{Name: "", Limit: 10, Remaining: 4}}
	tests := []struct {
		prev         model.Health
		fails, goods int
		windows      []model.Window
		want         model.Health
	}{
		{model.HealthUp, 0, 3, room, model.HealthUp},
		{model.HealthUp, 1, 0, room, model.HealthDegraded},
		{model.HealthDegraded, 2, 0, room, model.HealthDegraded},
		{model.HealthDegraded, 3, 0, room, model.HealthDown},
		{model.HealthDown, 4, 0, room, model.HealthDown},
		{model.HealthDown, 0, 1, room, model.HealthDegraded},
		{model.HealthDegraded, 0, 2, room, model.HealthUp},
		{model.HealthUp, 0, 5, spent, model.HealthDegraded},
		{model.HealthDegraded, 0, 5, spent, model.HealthDegraded},
		{model.HealthDegraded, 0, 6, room, model.HealthUp},
	}
	for _, tt := range tests {
		if got := health(tt.prev, tt.fails, tt.goods, tt.windows); got != tt.want {
			t.Errorf("health(%s, fails %d, goods %d, %v) = %s, want %s", tt.prev, tt.fails, tt.goods, tt.windows, got, tt.want)
		}
	}
}

func TestAccountDownAndBack(t *testing.T) {
	sb, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 3, NoFaults: true})
	var cf []config.Account
	for _, a := range accounts {
		if a.Name == "cf-madrid" {
			cf = append(cf, a)
		}
	}
	st := openStore(t)
	var errs errorLog
	p := newTestPoller(t, cf, st, &errs)
	ctx := context.Background()
	// A maintenance that announces its end: the 503s carry Retry-After (at most 3 s).
	sb.SetFaults("cf-madrid", sandbox.Faults{Maintenance: []sandbox.Span{{From: 0, Until: 3 * time.Second}}})
	var got []model.Health
	poll := func() model.AccountState {
		a := stateOf(p.PollOnce(ctx), "cf-madrid")
		got = append(got, a.Health)
		return a
	}
	first := poll()
	if first.Err == "" || len(first.Documents) != 0 {
		t.Fatalf("a failed poll: err %q, %d documents", first.Err, len(first.Documents))
	}
	if first.LastError == nil || first.LastError.Status != 503 || !first.LastError.HasWait {
		t.Fatalf("the 503's wait is not decoded: %+v", first.LastError)
	}
	// The stated wait holds the account: the next polls send nothing, and say why.
	if held := poll(); !strings.Contains(held.Err, "not polled: the provider asked to wait until") || held.LastError == nil || held.LastError.Status != 503 {
		t.Fatalf("a poll during the stated wait: err %q, last error %+v", held.Err, held.LastError)
	}
	poll()
	sb.SetFaults("cf-madrid", sandbox.Faults{})
	time.Sleep(time.Until(p.Client("cf-madrid").Governor().Held()))
	back := poll()
	if back.Err != "" || len(back.Documents) == 0 {
		t.Fatalf("a good poll: err %q, %d documents", back.Err, len(back.Documents))
	}
	poll()
	want := []model.Health{model.HealthDegraded, model.HealthDegraded, model.HealthDown, model.HealthDegraded, model.HealthUp}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("health over the polls %v, want %v", got, want)
		}
	}
	if len(errs.list()) != 3 {
		t.Errorf("OnError told %d times, want 3: %v", len(errs.list()), errs.list())
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	reqs, _ := st.Requests(ctx, store.RequestFilter{Account: "cf-madrid", Limit: 1000})
	unavailable := 0
	for _, r := range reqs {
		if r.Status == 503 && r.Class == model.ClassUnavailable {
			unavailable++
		}
	}
	if unavailable != 1 {
		t.Errorf("%d requests logged as 503 unavailable, want 1: the wait it stated held the others", unavailable)
	}
}

// runFor runs the poller for d and returns every snapshot it published.
func runFor(t *testing.T, p *Poller, d time.Duration) []model.Snapshot {
	t.Helper()
	snaps, cancel := p.Hub().Subscribe()
	var got []model.Snapshot
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range snaps {
			got = append(got, s)
		}
	}()
	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	return got
}

// TestStormCausesNoRateLimit runs the poller against the storm scenario, where another
// client spends 85% of every account's budget, with windows short enough to roll several
// times: emitop may meet a 429 at most once per window, while it first learns it.
func TestStormCausesNoRateLimit(t *testing.T) {
	limits := sandbox.Limits{
		Alegra:     sandbox.Rate{Limit: 20, Period: 3 * time.Second},
		Certifactu: sandbox.Rate{Limit: 20, Period: 3 * time.Second},
		Factus:     sandbox.Rate{Limit: 20, Period: 3 * time.Second},
		SVDTE: []sandbox.Throttler{
			{Name: "short", Limit: 3, TTL: time.Second},
			{Name: "medium", Limit: 10, TTL: 3 * time.Second},
		},
	}
	sb, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "storm", Seed: 5, Limits: limits})
	for i := range accounts {
		accounts[i].PollInterval = 100 * time.Millisecond
		sb.SetFaults(accounts[i].Name, sandbox.Faults{
			Latency:        20 * time.Millisecond,
			ProductionRate: 0.85 * 20 / 3,
		})
	}
	for _, name := range []string{"sv-main", "sv-branch"} {
		sb.SetFaults(name, sandbox.Faults{Latency: 20 * time.Millisecond, ProductionRate: 0.85 * 3})
	}
	st := openStore(t)
	p := newTestPoller(t, accounts, st, nil)
	snaps := runFor(t, p, 8*time.Second)
	if len(snaps) == 0 {
		t.Fatal("no snapshot published")
	}
	last := snaps[len(snaps)-1]
	for _, a := range accounts {
		s := sb.AccountStats(a.Name)
		windows := max(1, len(stateOf(last, a.Name).Windows))
		t.Logf("%-13s requests %3d  429s %d  production %3d  windows %d", a.Name, s.Requests, s.RateLimited, s.Production, windows)
		if s.Requests < 3 {
			t.Errorf("%s: only %d requests in 8 s", a.Name, s.Requests)
		}
		if s.RateLimited > windows {
			t.Errorf("%s: %d 429s served to emitop, at most %d allowed (one per window)", a.Name, s.RateLimited, windows)
		}
	}
}

// TestFactusTokenExpires gives factus tokens a life of 1.5 s: the poller renews them
// unseen, every poll succeeds and the accounts stay up.
func TestFactusTokenExpires(t *testing.T) {
	_, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 9, NoFaults: true, FactusTokenTTL: 1500 * time.Millisecond})
	var factus []config.Account
	for _, a := range accounts {
		if a.Provider == "factus" {
			a.PollInterval = 250 * time.Millisecond
			factus = append(factus, a)
		}
	}
	st := openStore(t)
	var errs errorLog
	p := newTestPoller(t, factus, st, &errs)
	snaps := runFor(t, p, 5*time.Second)
	if e := errs.list(); len(e) > 0 {
		t.Fatalf("errors: %v", e)
	}
	polls := map[string]int{}
	for _, s := range snaps {
		for _, a := range s.Accounts {
			if a.LastPoll.IsZero() {
				continue
			}
			polls[a.Account.Name]++
			if a.Health != model.HealthUp || a.Err != "" {
				t.Fatalf("%s: %s %q", a.Account.Name, a.Health, a.Err)
			}
		}
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, a := range factus {
		reqs, _ := st.Requests(context.Background(), store.RequestFilter{Account: a.Name, Limit: 10000})
		tokens := 0
		for _, r := range reqs {
			if r.Path == "/oauth/token" && r.Status == 200 {
				tokens++
			}
		}
		t.Logf("%s: %d polls, %d token grants", a.Name, polls[a.Name], tokens)
		if tokens < 3 {
			t.Errorf("%s: %d token grants in 5 s with a 1.5 s life", a.Name, tokens)
		}
	}
}

// Now and Timer make offsetClock a Clock for the poller.
func (c *offsetClock) Now() time.Time { return c.now() }
func (c *offsetClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	return RealClock.Timer(d)
}

func TestSnapshotAttempts(t *testing.T) {
	_, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 4, NoFaults: true})
	var cf []config.Account
	for _, a := range accounts {
		if a.Name == "cf-madrid" {
			cf = append(cf, a)
		}
	}
	st := openStore(t)
	clock := &offsetClock{}
	p, err := New(cf, st, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	doc := stateOf(p.PollOnce(ctx), "cf-madrid").Documents[0]
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.AcquireLease(ctx, "cf-madrid", doc.ID, "test", time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := st.RecordIntent(ctx, store.Intent{Account: "cf-madrid", DocID: doc.ID, Holder: "test", Kind: "retry"}); err != nil {
		t.Fatal(err)
	}
	attempts := func() int {
		for _, d := range stateOf(p.PollOnce(ctx), "cf-madrid").Documents {
			if d.ID == doc.ID {
				return d.Attempts
			}
		}
		t.Fatalf("%s is no longer listed", doc.ID)
		return 0
	}
	if n := attempts(); n != 0 {
		t.Errorf("attempts read again before %v: %d", attemptsEvery, n)
	}
	clock.advance(attemptsEvery)
	if n := attempts(); n != 1 {
		t.Errorf("attempts %d after one recorded intent, want 1", n)
	}
	// A retry that ends says so: the next poll reads the attempts at once.
	if _, err := st.RecordIntent(ctx, store.Intent{Account: "cf-madrid", DocID: doc.ID, Holder: "test", Kind: "retry"}); err != nil {
		t.Fatal(err)
	}
	p.Retried("cf-madrid")
	if n := attempts(); n != 2 {
		t.Errorf("attempts %d right after a retry ended, want 2", n)
	}
}

// TestRefreshWakesTheLoop: a refresh while Run runs polls now, in the account's own loop;
// refreshes that come while one is pending add nothing.
func TestRefreshWakesTheLoop(t *testing.T) {
	_, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 4, NoFaults: true})
	var cf []config.Account
	for _, a := range accounts {
		if a.Name == "cf-madrid" {
			a.PollInterval = time.Hour
			cf = append(cf, a)
		}
	}
	st := openStore(t)
	p := newTestPoller(t, cf, st, nil)
	snaps, cancel := p.Hub().Subscribe()
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- p.Run(ctx) }()
	<-snaps // the first poll
	if err := p.Run(ctx); err == nil {
		t.Error("a second Run started")
	}
	for range 5 {
		p.Refresh()
	}
	<-snaps
	// At most one more wake-up was pending; then the loop waits its hour.
	extra := 0
	for done := false; !done; {
		select {
		case <-snaps:
			extra++
		case <-time.After(300 * time.Millisecond):
			done = true
		}
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if extra > 1 {
		t.Errorf("five refreshes polled %d times", 1+extra)
	}
}

// A refused credential is not an outage: the account reads "refused" at once, with the
// provider's refusal decoded, for an API key and for a token login alike.
func TestRefusedCredentials(t *testing.T) {
	_, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 5, NoFaults: true})
	var bad []config.Account
	for _, a := range accounts {
		values := map[string]string{}
		for _, n := range a.Credentials.Names() {
			values[n] = a.Credentials.Get(n)
		}
		switch a.Provider {
		case "certifactu":
			values["api_key"] = "not-the-key"
		case "factus":
			values["password"] = "not-the-password"
		default:
			continue
		}
		a.Credentials = config.NewCredentials(values)
		bad = append(bad, a)
	}
	p := newTestPoller(t, bad, openStore(t), nil)
	snap := p.PollOnce(context.Background())
	for _, a := range bad {
		got := stateOf(snap, a.Name)
		if got.Health != model.HealthRefused {
			t.Errorf("%s: health %q, want refused (err %q)", a.Name, got.Health, got.Err)
		}
		if got.LastError == nil || got.LastError.Class != model.ClassAuth || got.LastError.Meaning == "" {
			t.Errorf("%s: last error %+v, want a decoded auth problem", a.Name, got.LastError)
		}
	}
}

func TestSampleWindows(t *testing.T) {
	w := func(name string, limit, remaining int) model.Window {
		return model.Window{Name: name, Limit: limit, Remaining: remaining, Reset: time.Duration(remaining) * time.Second}
	}
	polls := []struct {
		windows []model.Window
		write   []string
	}{
		{[]model.Window{w("a", 100, 90), w("b", 10, 9)}, nil},                // first seen: not yet
		{[]model.Window{w("a", 100, 90), w("b", 10, 9)}, []string{"a", "b"}}, // seen twice
		{[]model.Window{w("a", 100, 90), w("b", 10, 8)}, []string{"b"}},      // only b changed
		{[]model.Window{w("a", 100, 90), w("c", 5, 5)}, nil},                 // c new, b gone
		{[]model.Window{w("a", 100, 80), w("b", 10, 8)}, []string{"a"}},      // b back: new again
	}
	var prev map[string]sample
	for i, p := range polls {
		var got []model.Window
		got, prev = sampleWindows(prev, p.windows)
		var names []string
		for _, g := range got {
			names = append(names, g.Name)
		}
		if strings.Join(names, ",") != strings.Join(p.write, ",") {
			t.Errorf("poll %d wrote %v, want %v", i, names, p.write)
		}
		if len(prev) != len(p.windows) {
			t.Errorf("poll %d remembers %d windows, sees %d", i, len(prev), len(p.windows))
		}
	}
}
