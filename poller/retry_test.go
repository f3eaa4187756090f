package poller

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/sandbox"
	"emitop/store"
)

// Scaled-down windows: the sandbox enforces them and the clients' governors know them.
var (
	fastSVDTE = []sandbox.Throttler{{Name: "short", Limit: 10, TTL: 100 * time.Millisecond},
		{Name: "medium", Limit: 60, TTL: time.Second}, {Name: "long", Limit: 300, TTL: 6 * time.Second}}
	fastLimits = sandbox.Limits{
		SVDTE:      fastSVDTE,
		Alegra:     sandbox.Rate{Limit: 150, Period: 3 * time.Second},
		Certifactu: sandbox.Rate{Limit: 100, Period: 2 * time.Second},
	}
)

// governorFor knows the windows the sandbox enforces for provider under limits.
func governorFor(provider string, l sandbox.Limits) *Governor {
	var ls []Limit
	switch provider {
	case "sv-dte":
		for _, t := range l.SVDTE {
			ls = append(ls, Limit{Name: t.Name, Max: t.Limit, Per: t.TTL})
		}
	case "alegra":
		ls = []Limit{{Max: l.Alegra.Limit, Per: l.Alegra.Period}}
	case "certifactu":
		ls = []Limit{{Max: l.Certifactu.Limit, Per: l.Certifactu.Period}}
	default:
		return nil
	}
	return NewGovernorLimits(ls, 0.1, nil)
}

type retryEnv struct {
	sb       *sandbox.Sandbox
	st       *store.Store
	accounts map[string]config.Account
	limits   sandbox.Limits
}

func newRetryEnv(t *testing.T, opts sandbox.Options) *retryEnv {
	t.Helper()
	sb, accounts := sandboxAccounts(t, opts)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "emitop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &retryEnv{sb: sb, st: st, accounts: map[string]config.Account{}, limits: opts.Limits}
	for _, a := range accounts {
		e.accounts[a.Name] = a
	}
	return e
}

func (e *retryEnv) client(t *testing.T, name string, timeout time.Duration) *Client {
	t.Helper()
	acc := e.accounts[name]
	if timeout > 0 {
		acc.Timeout = timeout
	}
	c, err := NewClient(acc, ClientOptions{Version: "test", Governor: governorFor(acc.Provider, e.limits),
		Backoff: Backoff{Base: 5 * time.Millisecond, Cap: 20 * time.Millisecond, Retries: 2}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rejected lists the account's rejected documents, as `retry --all-rejected` does.
func rejected(t *testing.T, c *Client) []Target {
	t.Helper()
	items, err := OpenDocuments(context.Background(), c, Write)
	if err != nil {
		t.Fatal(err)
	}
	var out []Target
	for _, it := range items {
		if it.Doc.Status == model.StatusRejected {
			out = append(out, Target{Doc: docWith(it)})
		}
	}
	return out
}

func retrier(t *testing.T, c *Client, st *store.Store, opt RetryOptions) *Retrier {
	t.Helper()
	if opt.LeaseTTL == 0 {
		opt.LeaseTTL = 2 * time.Second
	}
	r, err := NewRetrier(c, st, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRetryEveryProvider(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true, Limits: fastLimits})
	ctx := context.Background()
	for _, name := range []string{"alegra-co", "sv-main", "cf-madrid", "factus-bog", "alforse-main"} {
		t.Run(name, func(t *testing.T) {
			c := e.client(t, name, 0)
			e.sb.Fix(name)
			targets := rejected(t, c)
			if len(targets) == 0 {
				t.Fatal("no rejected document")
			}
			r := retrier(t, c, e.st, RetryOptions{})
			plan := r.Plan(targets)
			if c.d.resend == nil {
				// No resend (alforse), or none emitop can make (factus: a bill is made
				// again from its original data, which only its sender holds): the plan
				// says why and what instead, and the run sends nothing.
				want := map[string]string{"alforse": "offers no resend", "factus": "emitop clear"}[c.Account().Provider]
				if plan.Resends() != 0 || !strings.Contains(plan.Items[0].Reason, want) {
					t.Fatalf("plan: %+v", plan.Items[0])
				}
				rep, err := r.Run(ctx, plan)
				if err != nil || !rep.OK() || rep.Requests != 0 {
					t.Fatalf("run: %+v, %v", rep, err)
				}
				return
			}
			for _, it := range plan.Items {
				v := it.Verdict
				want := v == model.VerdictRetry || v == model.VerdictWait || v == model.VerdictVerify || v == model.VerdictEscalate
				if it.Resend != want {
					t.Errorf("%s: verdict %s, resend %v", it.Doc.ID, v, it.Resend)
				}
			}
			if plan.Resends() == 0 {
				t.Fatal("nothing to resend")
			}
			before := e.sb.AccountStats(name)
			rep, err := r.Run(ctx, plan)
			if err != nil {
				t.Fatal(err)
			}
			after := e.sb.AccountStats(name)
			sent := 0
			for _, res := range rep.Results {
				if res.Sent {
					sent++
				}
				if res.Sent && res.Outcome != OutcomeAccepted {
					t.Errorf("%s: %s (%s)", res.Doc.ID, res.Outcome, res.Detail)
				}
				if !res.Sent && res.Outcome != OutcomeSkipped {
					t.Errorf("%s: not sent but %s (%s)", res.Doc.ID, res.Outcome, res.Detail)
				}
			}
			if !rep.OK() || after.Emissions-before.Emissions != sent || after.DuplicateEmissions != 0 || after.RateLimited != 0 {
				t.Fatalf("ok %v, sent %d, stats %+v", rep.OK(), sent, after)
			}
			open, err := e.st.OpenIntents(ctx, name)
			if err != nil || len(open) != 0 {
				t.Fatalf("open intents %v, %v", open, err)
			}
			// A second run reads each resent document as accepted and sends nothing.
			again, err := retrier(t, c, e.st, RetryOptions{}).Run(ctx, plan)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range again.Results {
				if res.Sent {
					t.Errorf("%s resent twice", res.Doc.ID)
				}
			}
			if got := e.sb.AccountStats(name); got.Emissions != after.Emissions {
				t.Fatalf("second run emitted %d", got.Emissions-after.Emissions)
			}
			if err := e.st.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			events, err := e.st.Events(ctx, store.EventFilter{Account: name, DocID: firstSent(rep).Doc.ID})
			if err != nil || !hasKind(events, "emit") {
				t.Fatalf("events %v, %v", events, err)
			}
		})
	}
}

func firstSent(rep Report) DocResult {
	for _, r := range rep.Results {
		if r.Sent {
			return r
		}
	}
	return DocResult{}
}

func hasKind(events []model.Event, kind string) bool {
	for _, ev := range events {
		if ev.Kind == kind {
			return true
		}
	}
	return false
}

// TestRetryForce resends a document whose data must change first only when forced, and
// records the operator's reason.
func TestRetryForce(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true, Limits: fastLimits})
	ctx := context.Background()
	c := e.client(t, "cf-madrid", 0)
	var fix []Target
	for _, tg := range rejected(t, c) {
		if tg.Doc.Problem != nil && tg.Doc.Problem.Verdict == model.VerdictFix {
			fix = append(fix, tg)
		}
	}
	if len(fix) == 0 {
		t.Fatal("no document with verdict fix")
	}
	if _, err := NewRetrier(c, e.st, RetryOptions{Force: true}); err == nil {
		t.Fatal("force without a reason accepted")
	}
	if p := retrier(t, c, e.st, RetryOptions{}).Plan(fix[:1]); p.Resends() != 0 {
		t.Fatal("fix resent without force")
	}
	r := retrier(t, c, e.st, RetryOptions{Operator: "ana", Force: true, Reason: "corrected in the ERP"})
	rep, err := r.Run(ctx, r.Plan(fix[:1]))
	if err != nil || !rep.Results[0].Sent || !rep.Results[0].Forced || rep.Results[0].Outcome != OutcomeRejected {
		t.Fatalf("%+v, %v", rep.Results, err)
	}
	if err := e.st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	acts, err := e.st.Actions(ctx, store.ActionFilter{Account: "cf-madrid"})
	if err != nil || len(acts) != 1 || acts[0].Kind != "force-retry" || acts[0].Reason != "corrected in the ERP" || acts[0].Operator != "ana" {
		t.Fatalf("actions %+v, %v", acts, err)
	}
	in, err := e.st.Intents(ctx, "cf-madrid", fix[0].Doc.ID)
	if err != nil || len(in) != 1 || in[0].Kind != "force-retry" || in[0].Outcome != "rejected" {
		t.Fatalf("intents %+v, %v", in, err)
	}
}

// TestRetryFaults resends well over 200 times across accounts whose emissions time out
// or fail after they commit, while another client spends within the reserve: not one
// document is emitted twice, and emitop never meets a 429.
func TestRetryFaults(t *testing.T) {
	limits := sandbox.Limits{
		SVDTE:      fastSVDTE,
		Alegra:     sandbox.Rate{Limit: 150, Period: time.Second},
		Certifactu: sandbox.Rate{Limit: 100, Period: time.Second},
	}
	e := newRetryEnv(t, sandbox.Options{Scenario: "storm", Seed: 7, NoFaults: true, Limits: limits})
	names := []string{"alegra-co", "alegra-mx", "sv-main", "sv-branch", "cf-madrid", "cf-sevilla"}
	const timeout = 150 * time.Millisecond
	for i, name := range names {
		f := sandbox.Faults{TimeoutAfterCommit: 0.1, TimeoutDelay: 2 * timeout, ServerErrorAfterCommit: 0.15}
		if i%2 == 0 {
			f.ProductionRate = 0.4 * map[string]float64{"alegra": 150, "sv-dte": 50, "certifactu": 100}[e.accounts[name].Provider]
		}
		e.sb.SetFaults(name, f)
	}
	const passes = 9
	var mu sync.Mutex
	resends := 0
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			c := e.client(t, name, timeout)
			targets := rejected(t, c)
			for pass := range passes + 2 {
				if pass == passes {
					e.sb.Fix(name)
				}
				r := retrier(t, c, e.st, RetryOptions{LeaseTTL: time.Second})
				rep, err := r.Run(context.Background(), r.Plan(targets))
				if err != nil {
					t.Error(err)
					return
				}
				for _, res := range rep.Results {
					if res.Sent {
						mu.Lock()
						resends++
						mu.Unlock()
					}
					if pass == passes+1 && res.Sent {
						t.Errorf("%s: %s resent after it was accepted", name, res.Doc.ID)
					}
				}
			}
		})
	}
	wg.Wait()
	emissions := 0
	for _, name := range names {
		st := e.sb.AccountStats(name)
		emissions += st.Emissions
		if st.DuplicateEmissions != 0 || st.RateLimited != 0 {
			t.Errorf("%s: %d duplicate emissions, %d 429s (%d requests)", name, st.DuplicateEmissions, st.RateLimited, st.Requests)
		}
	}
	t.Logf("%d resends, %d emissions", resends, emissions)
	if resends < 200 {
		t.Fatalf("only %d resends", resends)
	}
}

// TestRetryAfterCrash: an emission that landed while its process died leaves an open
// intent and a lease; the next run waits for the lease, reads the status, settles the
// intent and sends nothing. Open intents of other documents are settled at the start.
func TestRetryAfterCrash(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "storm", Seed: 11, NoFaults: true, Limits: fastLimits})
	ctx := context.Background()
	c := e.client(t, "cf-madrid", 0)
	e.sb.Fix("cf-madrid")
	var targets []Target
	for _, tg := range rejected(t, c) {
		if tg.Doc.Problem != nil && tg.Doc.Problem.Verdict == model.VerdictEscalate {
			targets = append(targets, tg)
		}
	}
	if len(targets) < 2 {
		t.Fatalf("%d documents to escalate", len(targets))
	}
	// The dead process: both documents leased and announced, both emissions landed.
	for _, tg := range targets[:2] {
		if ok, err := e.st.AcquireLease(ctx, "cf-madrid", tg.Doc.ID, "dead", 300*time.Millisecond); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if _, err := e.st.RecordIntent(ctx, store.Intent{Account: "cf-madrid", DocID: tg.Doc.ID, Holder: "dead", Kind: "retry",
			Deadline: time.Now().Add(300 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		rs, _ := certifactuResend(c, []string{tg.Doc.ID}, nil)
		if _, err := c.Do(ctx, Write, rs.Method, rs.Path, nil); err != nil {
			t.Fatal(err)
		}
	}
	emitted := e.sb.AccountStats("cf-madrid").Emissions
	time.Sleep(350 * time.Millisecond) // the dead holder's leases expire, and its deadlines pass
	r := retrier(t, c, e.st, RetryOptions{})
	rep, err := r.Run(ctx, r.Plan(targets[:1]))
	if err != nil {
		t.Fatal(err)
	}
	if res := rep.Results[0]; res.Sent || res.Outcome != OutcomeAccepted {
		t.Fatalf("%+v", res)
	}
	if st := e.sb.AccountStats("cf-madrid"); st.Emissions != emitted || st.DuplicateEmissions != 0 {
		t.Fatalf("stats %+v", st)
	}
	open, err := e.st.OpenIntents(ctx, "cf-madrid")
	if err != nil || len(open) != 0 {
		t.Fatalf("open intents %+v, %v", open, err)
	}
	in, _ := e.st.Intents(ctx, "cf-madrid", targets[1].Doc.ID)
	if len(in) != 1 || in[0].Outcome != "accepted" {
		t.Fatalf("intent outside the batch: %+v", in)
	}
}

// TestRetryLeaseHeld: a document another holder works on is left until its lease is
// released, then read (accepted by the other) and not sent again.
func TestRetryLeaseHeld(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true, Limits: fastLimits})
	ctx := context.Background()
	c := e.client(t, "sv-main", 0)
	e.sb.Fix("sv-main")
	r1 := retrier(t, c, e.st, RetryOptions{Holder: "one"})
	plan := r1.Plan(rejected(t, c))
	if plan.Resends() == 0 {
		t.Fatal("nothing to resend")
	}
	var reps [2]Report
	var wg sync.WaitGroup
	for i, h := range []string{"one", "two"} {
		wg.Go(func() {
			r := retrier(t, c, e.st, RetryOptions{Holder: h})
			rep, err := r.Run(ctx, plan)
			if err != nil {
				t.Error(err)
			}
			reps[i] = rep
		})
	}
	wg.Wait()
	st := e.sb.AccountStats("sv-main")
	if st.DuplicateEmissions != 0 || st.Emissions != plan.Resends() {
		t.Fatalf("%d emissions for %d documents, %d duplicates", st.Emissions, plan.Resends(), st.DuplicateEmissions)
	}
	for _, rep := range reps {
		if !rep.OK() {
			t.Errorf("%+v", rep.Results)
		}
	}
}

// TestRetryCancel stops before the next document; what was under way is recorded.
func TestRetryCancel(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true, Limits: fastLimits})
	c := e.client(t, "sv-main", 0)
	e.sb.Fix("sv-main")
	ctx, cancel := context.WithCancel(context.Background())
	var seen []Progress
	r := retrier(t, c, e.st, RetryOptions{OnProgress: func(p Progress) {
		seen = append(seen, p)
		if p.Result != nil && p.Result.Sent {
			cancel()
		}
	}})
	plan := r.Plan(rejected(t, c))
	if plan.Resends() < 2 {
		t.Fatalf("%d to resend", plan.Resends())
	}
	rep, err := r.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, res := range rep.Results {
		if res.Sent {
			sent++
		}
	}
	if !rep.Cancelled || sent != 1 || e.sb.AccountStats("sv-main").Emissions != 1 {
		t.Fatalf("cancelled %v, sent %d: %+v", rep.Cancelled, sent, rep.Results)
	}
	if last := seen[len(seen)-1]; last.Done != last.Total || seen[0].Total != len(plan.Items) || seen[0].Current == "" {
		t.Fatalf("progress %+v", seen)
	}
	open, _ := e.st.OpenIntents(context.Background(), "sv-main")
	if len(open) != 0 {
		t.Fatalf("open intents %+v", open)
	}
}

// TestRetryPlanRedacts shows every request with its credential redacted.
func TestRetryPlanRedacts(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true, Limits: fastLimits})
	for _, sa := range e.sb.Accounts() {
		c := e.client(t, sa.Name, 0)
		if c.d.resend == nil {
			continue
		}
		r := retrier(t, c, e.st, RetryOptions{Force: true, Reason: "test"})
		plan := r.Plan(rejected(t, c))
		b, err := json.Marshal(plan)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range sa.Credentials {
			if strings.Contains(string(b), v) {
				t.Errorf("%s: the plan shows %s", sa.Name, k)
			}
		}
		if plan.Requests == 0 || !strings.Contains(string(b), "[redacted]") {
			t.Errorf("%s: plan %s", sa.Name, b)
		}
		for _, it := range plan.Items {
			if it.Resend && len(it.Requests) != 2 {
				t.Errorf("%s: %s requests %+v", sa.Name, it.Doc.ID, it.Requests)
			}
		}
	}
}

func TestDrainBound(t *testing.T) {
	sv := []Limit{{Max: 3, Per: 100 * time.Millisecond}, {Max: 20, Per: time.Second}, {Max: 100, Per: 6 * time.Second}}
	for _, tc := range []struct {
		limits  []Limit
		reserve float64
		n       int
		want    time.Duration
	}{
		{sv, 0, 1, 0},
		{sv, 0, 3, 0},
		{sv, 0, 4, 100 * time.Millisecond},
		{sv, 0, 20, 600 * time.Millisecond},
		{sv, 0, 21, time.Second},
		{sv, 0, 101, 6 * time.Second},
		{sv, 0.1, 3, 100 * time.Millisecond},   // 2 per 100 ms
		{sv, 0.1, 19, 1000 * time.Millisecond}, // 18 per second
		{[]Limit{{Max: 10, Per: time.Second}}, 0, 25, 2 * time.Second},
	} {
		if got := DrainBound(tc.limits, tc.reserve, tc.n); got != tc.want {
			t.Errorf("%v reserve %v n %d: %v, want %v", tc.limits, tc.reserve, tc.n, got, tc.want)
		}
	}
	g := NewGovernorLimits(sv, 0, nil)
	if got := g.DrainTime(21, 0); got != time.Second {
		t.Errorf("fresh governor: %v", got)
	}
}
