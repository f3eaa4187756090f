package retry

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
	"emitop/poller"
	"emitop/sandbox"
	"emitop/store"
)

// fenceEnv is a retry environment whose database another connection can reach, as a
// second process would: to make a holder's lease lapse, as a stalled process's does.
func fenceEnv(t *testing.T) (*retryEnv, *sql.DB) {
	t.Helper()
	return fenceEnvWith(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true, Limits: fastLimits})
}

// fenceEnvWith is fenceEnv on a sandbox of opts.
func fenceEnvWith(t *testing.T, opts sandbox.Options) (*retryEnv, *sql.DB) {
	t.Helper()
	sb, accounts := sandboxAccounts(t, opts)
	path := filepath.Join(t.TempDir(), "emitop.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &retryEnv{sb: sb, st: st, accounts: map[string]config.Account{}, limits: opts.Limits}
	for _, a := range accounts {
		e.accounts[a.Name] = a
	}
	return e, db
}

// lapse ends holder's leases, as the TTL does when the holder's process stalls.
func lapse(t *testing.T, db *sql.DB, holder string) {
	t.Helper()
	if _, err := db.Exec(`UPDATE leases SET expires = 0 WHERE holder = ?`, holder); err != nil {
		t.Error(err)
	}
}

// waitIntent waits for the first open intent of account.
func waitIntent(t *testing.T, st *store.Store, account string) store.Intent {
	t.Helper()
	for range 2000 {
		open, err := st.OpenIntents(context.Background(), account)
		if err != nil {
			t.Error(err)
			return store.Intent{}
		}
		if len(open) > 0 {
			return open[0]
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("no intent recorded")
	return store.Intent{}
}

// resendOne is the plan of the first target the policy resends.
func resendOne(t *testing.T, r *Retrier, targets []Target) model.RetryPlan {
	t.Helper()
	for _, tg := range targets {
		if p := r.Plan([]Target{tg}); p.Resends() == 1 {
			return p
		}
	}
	t.Fatal("no target to resend")
	return model.RetryPlan{}
}

// TestRetryLeaseLostBeforeSend: a holder whose lease lapses after its intent is on disk
// and another holder takes the document must not send: the other may be emitting it. The
// request waits in the governor meanwhile (a window of one request), and the lease keeper
// would only notice at its next renewal, long after the request left.
func TestRetryLeaseLostBeforeSend(t *testing.T) {
	e, db := fenceEnv(t)
	ctx := context.Background()
	const name = "sv-main"
	e.sb.Fix(name)
	acc := e.accounts[name]
	c, err := poller.NewClient(acc, poller.ClientOptions{Version: "test", Governor: pace.NewGovernor([]pace.Limit{{Max: 1, Per: 400 * time.Millisecond}}, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	targets := rejected(t, c)
	if len(targets) == 0 {
		t.Fatal("nothing rejected")
	}
	r := retrier(t, c, e.st, Options{Holder: "A", LeaseTTL: 8 * time.Second})
	plan := resendOne(t, r, targets)
	before := e.sb.AccountStats(name).Emissions
	stolen := make(chan bool, 1)
	go func() {
		in := waitIntent(t, e.st, name)
		lapse(t, db, "A")
		ok, err := e.st.AcquireLease(ctx, name, in.DocID, "B", time.Minute)
		if err != nil {
			t.Error(err)
		}
		stolen <- ok
	}()
	rep, err := r.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !<-stolen {
		t.Fatal("B could not take the lapsed lease")
	}
	if got := e.sb.AccountStats(name).Emissions - before; got != 0 {
		t.Fatalf("A emitted %d time(s) without its lease: %+v", got, rep.Results[0])
	}
	if res := rep.Results[0]; res.Outcome == model.OutcomeAccepted {
		t.Fatalf("%+v", res)
	}
}

// TestRetryForeignIntentOpen: a document whose lease lapsed while its holder's emission
// was announced but not yet answered (the holder stalled, or died with the request in
// flight) is neither read nor resent before that emission's deadline, which is on disk
// with the intent: here the emission lands just before it, and the read after it finds
// the document accepted.
func TestRetryForeignIntentOpen(t *testing.T) {
	e, db := fenceEnv(t)
	ctx := context.Background()
	const name = "cf-madrid"
	const timeout = 600 * time.Millisecond
	e.sb.Fix(name)
	c := e.client(t, name, timeout)
	b := retrier(t, c, e.st, Options{Holder: "B"})
	plan := resendOne(t, b, rejected(t, c))
	id := announce(t, e, db, name, plan, timeout)
	before := e.sb.AccountStats(name)
	landed := make(chan error, 1)
	go func() {
		time.Sleep(timeout / 2)
		mid := e.sb.AccountStats(name)
		if mid.Requests != before.Requests {
			landed <- fmt.Errorf("B made %d requests before A's deadline", mid.Requests-before.Requests)
			return
		}
		rs, _ := c.BuildResend([]string{id}, nil)
		_, err := c.Do(ctx, pace.Write, rs.Method, rs.Path, nil)
		landed <- err
	}()
	rep, err := b.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-landed; err != nil {
		t.Fatal(err)
	}
	if st := e.sb.AccountStats(name); st.DuplicateEmissions != 0 || st.Emissions != before.Emissions+1 {
		t.Fatalf("B resent over A's open emission: stats %+v, %+v", st, rep.Results[0])
	}
	if res := rep.Results[0]; res.Sent || res.Outcome != model.OutcomeAccepted {
		t.Fatalf("%+v", res)
	}
	in, err := e.st.Intents(ctx, name, id)
	if err != nil || len(in) != 1 || in[0].Outcome != "accepted" {
		t.Fatalf("A's intent: %+v, %v", in, err)
	}
}

// announce is a holder A that leased the plan's document and announced its emission with
// the account's timeout, then stalled or died: its lease lapses.
func announce(t *testing.T, e *retryEnv, db *sql.DB, name string, plan model.RetryPlan, timeout time.Duration) string {
	t.Helper()
	ctx := context.Background()
	id := plan.Items[0].Doc.ID
	if ok, err := e.st.AcquireLease(ctx, name, id, "A", time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := e.st.RecordIntent(ctx, store.Intent{Account: name, DocID: id, Holder: "A", Kind: "retry",
		Deadline: time.Now().Add(timeout)}); err != nil {
		t.Fatal(err)
	}
	lapse(t, db, "A")
	return id
}

// TestRetryForeignIntentDead: when the holder never sent, the document is resent in the
// same run once the account's timeout has passed: an open intent never blocks it.
func TestRetryForeignIntentDead(t *testing.T) {
	e, db := fenceEnv(t)
	ctx := context.Background()
	const name = "cf-madrid"
	e.sb.Fix(name)
	c := e.client(t, name, 300*time.Millisecond)
	b := retrier(t, c, e.st, Options{Holder: "B"})
	plan := resendOne(t, b, rejected(t, c))
	announce(t, e, db, name, plan, 300*time.Millisecond)
	rep, err := b.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if res := rep.Results[0]; !res.Sent || res.Outcome != model.OutcomeAccepted {
		t.Fatalf("%+v", res)
	}
	if st := e.sb.AccountStats(name); st.DuplicateEmissions != 0 || st.Emissions != 1 {
		t.Fatalf("stats %+v", st)
	}
	open, err := e.st.OpenIntents(ctx, name)
	if err != nil || len(open) != 0 {
		t.Fatalf("open intents %+v, %v", open, err)
	}
}
