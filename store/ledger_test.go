package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"emitop/model"
)

// TestLeasesAreExclusiveAcrossStoresAndExpire: two processes on one store; a lease is
// one holder's until it expires or is released, renewing moves its expiry, and expiry is
// the database's clock (the processes' own clocks, here an hour apart, play no part).
func TestLeasesAreExclusiveAcrossStoresAndExpire(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		a := openAt(t, loc)
		b := openAt(t, loc) // as a second process, or another host, would
		b.now = func() time.Time { return time.Now().Add(time.Hour) }
		ctx := context.Background()
		const ttl = 600 * time.Millisecond
		acquire := func(s *Store, holder string) bool {
			t.Helper()
			ok, err := s.AcquireLease(ctx, "sv-main", "DTE-1", holder, ttl)
			if err != nil {
				t.Fatalf("AcquireLease(%s): %v", holder, err)
			}
			return ok
		}
		steps := []struct {
			name   string
			s      *Store
			holder string
			wait   time.Duration
			want   bool
		}{
			{"a takes it", a, "a", 0, true},
			{"b is refused", b, "b", 0, false},
			{"a renews", a, "a", ttl / 2, true},
			{"b still refused before the renewed expiry", b, "b", ttl * 2 / 3, false},
			{"b takes it once expired", b, "b", ttl / 2, true},
			{"a is refused now", a, "a", 0, false},
		}
		for _, st := range steps {
			time.Sleep(st.wait)
			if got := acquire(st.s, st.holder); got != st.want {
				t.Fatalf("%s: got %v", st.name, got)
			}
		}
		if err := a.ReleaseLease(ctx, "sv-main", "DTE-1", "a"); err != nil {
			t.Fatal(err)
		}
		if acquire(a, "a") {
			t.Fatal("a's release freed b's lease")
		}
		if err := b.ReleaseLease(ctx, "sv-main", "DTE-1", "b"); err != nil {
			t.Fatal(err)
		}
		if !acquire(a, "a") {
			t.Fatal("released lease not free")
		}
		if ok, err := a.AcquireLease(ctx, "sv-main", "DTE-2", "b", time.Minute); err != nil || !ok {
			t.Fatalf("another document's lease: %v, %v", ok, err)
		}
	})
}

func TestIntentsNeedTheLeaseAndSurviveReopen(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		path := e.fresh(t)
		s := openAt(t, path)
		s.now = func() time.Time { return t0 } // this host's clock: intents' times are the database's
		ctx := context.Background()
		before, err := s.Clock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		in := Intent{Account: "sv-main", DocID: "DTE-1", Holder: "host:1", Kind: "retry", Request: "POST /dte DTE-01-0001"}
		if _, err := s.RecordIntent(ctx, in); !errors.Is(err, ErrLeaseNotHeld) {
			t.Fatalf("intent without a lease: %v", err)
		}
		if ok, err := s.AcquireLease(ctx, "sv-main", "DTE-1", "host:1", time.Minute); !ok || err != nil {
			t.Fatalf("lease: %v %v", ok, err)
		}
		// The document is stored before the first intent; the second document after it.
		enqueue(t, s, UpsertDocument(model.Document{Account: "sv-main", ID: "DTE-1", Status: model.StatusRejected}, nil, t0))
		flush(t, s)
		first, err := s.RecordIntent(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		second, err := s.RecordIntent(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SettleIntent(ctx, first, "rejected", rejection("005", "Sello inválido"), bytes.Repeat([]byte("r"), model.MaxRaw+1)); err != nil {
			t.Fatal(err)
		}
		if err := s.SettleIntent(ctx, first, "accepted", nil, nil); err == nil {
			t.Fatal("settled twice")
		}
		if ok, _ := s.AcquireLease(ctx, "sv-main", "DTE-9", "host:1", time.Minute); !ok {
			t.Fatal("lease on DTE-9")
		}
		ninth, err := s.RecordIntent(ctx, Intent{Account: "sv-main", DocID: "DTE-9", Holder: "host:1", Kind: "emit"})
		if err != nil {
			t.Fatal(err)
		}
		// The lease expires: no more intents.
		if ok, err := s.AcquireLease(ctx, "sv-main", "DTE-1", "host:1", 50*time.Millisecond); !ok || err != nil {
			t.Fatalf("renewing the lease: %v %v", ok, err)
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := s.RecordIntent(ctx, in); !errors.Is(err, ErrLeaseNotHeld) {
			t.Fatalf("intent on an expired lease: %v", err)
		}
		// Close without settling, as a crash would leave it.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s = openAt(t, path)
		open, err := s.OpenIntents(ctx, "sv-main")
		if err != nil {
			t.Fatal(err)
		}
		after, err := s.Clock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(open) != 2 || open[0].ID != second || open[1].ID != ninth || open[0].Request != in.Request ||
			open[0].At.Before(before) || open[0].At.After(after) || open[0].Holder != "host:1" || open[0].Kind != "retry" {
			t.Fatalf("open intents after reopen (the database's clock went from %v to %v): %+v", before, after, open)
		}
		if all, _ := s.OpenIntents(ctx, ""); len(all) != 2 {
			t.Fatalf("all open intents: %d", len(all))
		}
		hist, err := s.Intents(ctx, "sv-main", "DTE-1")
		if err != nil || len(hist) != 2 || hist[0].Outcome != "rejected" || hist[0].Settled.Before(before) || hist[0].Settled.After(after) ||
			hist[0].Problem == nil || hist[0].Problem.Code != "005" || !hist[1].Settled.IsZero() {
			t.Fatalf("intents of DTE-1: %+v, %v", hist, err)
		}
		var raw []byte
		if err := s.read.QueryRow(`SELECT raw FROM intents WHERE id = $1`, first).Scan(&raw); err != nil || len(raw) != model.MaxRaw {
			t.Fatalf("settled raw: %d bytes, %v", len(raw), err)
		}
		// Attempts count intents, whether the document row came before or after them.
		enqueue(t, s, UpsertDocument(model.Document{Account: "sv-main", ID: "DTE-9", Status: model.StatusPending}, nil, t0))
		flush(t, s)
		for id, want := range map[string]int{"DTE-1": 2, "DTE-9": 1} {
			d, err := s.Document(ctx, "sv-main", id)
			if err != nil || d.Attempts != want {
				t.Errorf("%s: attempts %d, want %d (%v)", id, d.Attempts, want, err)
			}
		}
	})
}

// TestIntentDeadlinesAreDurable: an intent's deadline is on disk when RecordIntent and
// ExtendIntents return, only ever moves later, and is left alone once settled.
func TestIntentDeadlinesAreDurable(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		path := e.fresh(t)
		s := openAt(t, path)
		s.now = func() time.Time { return t0 }
		ctx := context.Background()
		if ok, err := s.AcquireLease(ctx, "cf-madrid", "INV-1", "A", time.Minute); !ok || err != nil {
			t.Fatal(ok, err)
		}
		first, err := s.RecordIntent(ctx, Intent{Account: "cf-madrid", DocID: "INV-1", Holder: "A", Kind: "retry", Deadline: t0.Add(30 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		settled, err := s.RecordIntent(ctx, Intent{Account: "cf-madrid", DocID: "INV-1", Holder: "A", Kind: "retry", Deadline: t0.Add(30 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SettleIntent(ctx, settled, "accepted", nil, nil); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			to, want time.Duration
		}{
			{50 * time.Second, 50 * time.Second}, // the request left late: later
			{40 * time.Second, 50 * time.Second}, // an earlier deadline never shortens the wait
		} {
			if err := s.ExtendIntents(ctx, []int64{first, settled}, t0.Add(step.to)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openAt(t, path)
			all, err := s.Intents(ctx, "cf-madrid", "INV-1")
			if err != nil || len(all) != 2 {
				t.Fatalf("intents: %+v, %v", all, err)
			}
			if got := all[0].Deadline.Sub(t0); got != step.want {
				t.Errorf("after extending to %v: deadline %v, want %v", step.to, got, step.want)
			}
			if got := all[1].Deadline.Sub(t0); got != 30*time.Second {
				t.Errorf("a settled intent's deadline moved to %v", got)
			}
		}
	})
}

// TestLedgerClosesBeforeTheWriter: once Close has begun and the writer takes no more ops,
// the ledger takes no more writes either, however long the writer's backlog takes to
// drain. Otherwise a job runner whose retry met the closing writer marked its job failed
// on the still open ledger (seen in CI as TestJobTakenOverWhenItsRunnerDies failing)
// instead of leaving it to the account's next holder.
func TestLedgerClosesBeforeTheWriter(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		ctx := context.Background()
		// A backlog that takes a while to drain (PostgreSQL commits fewer a second).
		n := 20_000
		if e.name == "postgres" {
			n = 1_000
		}
		for i := range n {
			enqueue(t, s, UpsertDocument(model.Document{Account: "sv-main", ID: fmt.Sprint("DTE-", i), Status: model.StatusPending}, nil, t0))
		}
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		for s.Enqueue(ctx, UpsertDocument(model.Document{Account: "sv-main", ID: "late", Status: model.StatusPending}, nil, t0)) == nil {
			time.Sleep(time.Millisecond)
		}
		if _, err := s.AcquireLease(ctx, "sv-main", "DTE-1", "runner", time.Minute); err == nil {
			t.Error("the ledger took a write after the writer stopped taking ops")
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	})
}
