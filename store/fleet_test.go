package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/model"
)

// names is n account names.
func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("acc-%04d", i)
	}
	return out
}

// holders is who holds each account, as the table says.
func holders(t *testing.T, s *Store) map[string]string {
	t.Helper()
	rows, err := s.read.Query(`SELECT account, holder FROM poll_leases`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var a, h string
		if err := rows.Scan(&a, &h); err != nil {
			t.Fatal(err)
		}
		out[a] = h
	}
	return out
}

func join(t *testing.T, s *Store, holder string, polls bool, ttl time.Duration) {
	t.Helper()
	if err := s.Join(context.Background(), Member{Holder: holder, Host: holder, Polls: polls}, ttl); err != nil {
		t.Fatal(err)
	}
}

func claim(t *testing.T, s *Store, holder string, accounts []string, n int) []string {
	t.Helper()
	got, err := s.Claim(context.Background(), holder, accounts, n)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func renew(t *testing.T, s *Store, holder string, ttl time.Duration) Fleet {
	t.Helper()
	f, err := s.Renew(context.Background(), holder, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPollLeasesOneHolder: two processes on one store. An account is taken by one member
// only; a member's accounts stay its own while it renews, are free once it releases them
// or its registration runs out, and a member whose registration was taken can never
// renew it. Registrations are timed by the database's clock.
func TestPollLeasesOneHolder(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		a, b := openAt(t, loc), openAt(t, loc)
		b.now = func() time.Time { return time.Now().Add(time.Hour) } // another host's clock plays no part
		ctx := context.Background()
		accounts := names(10)
		const ttl = 400 * time.Millisecond
		join(t, a, "a", true, ttl)
		join(t, b, "b", true, time.Minute)
		if got := claim(t, a, "a", accounts, 10); len(got) != 10 {
			t.Fatalf("a took %d of 10 free accounts", len(got))
		}
		if got := claim(t, b, "b", accounts, 10); len(got) != 0 {
			t.Fatalf("b took %v, held by a live member", got)
		}
		if f := renew(t, a, "a", ttl); !f.Alive || f.Pollers != 2 || f.Free != 0 {
			t.Fatalf("a's renewal: %+v", f)
		}
		if err := a.ReleaseAccounts(ctx, "a", accounts[:4]); err != nil {
			t.Fatal(err)
		}
		if f := renew(t, b, "b", time.Minute); f.Free != 4 {
			t.Fatalf("free after a released 4: %+v", f)
		}
		got := claim(t, b, "b", accounts, 10)
		slices.Sort(got)
		if !slices.Equal(got, accounts[:4]) {
			t.Fatalf("b took %v, want the 4 released", got)
		}
		// a stops renewing: once its registration runs out its accounts are b's, and a
		// learns it lost them.
		time.Sleep(ttl + 100*time.Millisecond)
		if got := claim(t, b, "b", accounts, 10); len(got) != 6 {
			t.Fatalf("b took %d of a's 6 once a's registration ran out", len(got))
		}
		if f := renew(t, a, "a", ttl); f.Alive {
			t.Fatalf("a renewed a registration b took over: %+v", f)
		}
		if got := claim(t, a, "a", accounts, 10); len(got) != 0 {
			t.Fatalf("a, no longer a member, took %v", got)
		}
		for acc, h := range holders(t, a) {
			if h != "b" {
				t.Errorf("%s held by %q", acc, h)
			}
		}
		// Leaving frees everything at once.
		if err := b.Leave(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		join(t, a, "a2", false, time.Minute)
		if got := claim(t, a, "a2", accounts[:3], 10); len(got) != 3 {
			t.Fatalf("after b left, a2 took %v", got)
		}
		if f := renew(t, a, "a2", time.Minute); f.Pollers != 0 || f.Free != 7 {
			t.Fatalf("a command's member is no poller: %+v", f)
		}
	})
}

// TestPollLeasesClaimedOnce: members claiming the same accounts at once each get their
// own: no account is taken twice.
func TestPollLeasesClaimedOnce(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		accounts := names(200)
		const members = 4
		got := make([][]string, members)
		var wg sync.WaitGroup
		for i := range members {
			s := openAt(t, loc)
			holder := fmt.Sprintf("m%d", i)
			join(t, s, holder, true, time.Minute)
			wg.Go(func() {
				for range 10 {
					taken, err := s.Claim(context.Background(), holder, accounts, 10)
					if err != nil {
						t.Error(err)
						return
					}
					got[i] = append(got[i], taken...)
				}
			})
		}
		wg.Wait()
		seen := map[string]string{}
		for i, taken := range got {
			for _, acc := range taken {
				if other, dup := seen[acc]; dup {
					t.Fatalf("%s taken by %s and m%d", acc, other, i)
				}
				seen[acc] = fmt.Sprintf("m%d", i)
			}
		}
		if len(seen) != len(accounts) {
			t.Fatalf("%d of %d accounts taken", len(seen), len(accounts))
		}
		for acc, h := range holders(t, openAt(t, loc)) {
			if seen[acc] != h {
				t.Fatalf("%s: claimed by %s, held by %s", acc, seen[acc], h)
			}
		}
	})
}

// TestPollLeasesRenewedAtTheLastMoment: a member renews right around the moment its
// registration runs out while another claims as fast as it can. Whenever the renewal
// succeeds, every account of the member is still its own; whenever it fails, the member
// has lost its accounts and joins again under another name. Never two holders.
func TestPollLeasesRenewedAtTheLastMoment(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		a, b := openAt(t, loc), openAt(t, loc)
		accounts := names(20)
		const ttl = 60 * time.Millisecond
		join(t, b, "b", true, time.Minute)
		ctx, stop := context.WithCancel(context.Background())
		var grabbed sync.WaitGroup
		grabbed.Go(func() {
			for ctx.Err() == nil {
				if _, err := b.Claim(ctx, "b", accounts, 5); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
				if err := b.ReleaseAccounts(context.Background(), "b", accounts); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(2 * time.Millisecond) // as often as it likes, but not so as to starve a's lock on SQLite
			}
		})
		defer func() {
			stop()
			grabbed.Wait()
		}()
		holder, lost, kept := "a-0", 0, 0
		join(t, a, holder, true, ttl)
		mine := claim(t, a, holder, accounts, 20)
		for round := 1; round <= 40; round++ {
			time.Sleep(ttl - 10*time.Millisecond + rand.N(20*time.Millisecond))
			f := renew(t, a, holder, ttl)
			if !f.Alive {
				lost++
				holder = fmt.Sprintf("a-%d", round)
				join(t, a, holder, true, ttl)
				mine = claim(t, a, holder, accounts, 20)
				continue
			}
			kept++
			now := holders(t, a)
			for _, acc := range mine {
				if now[acc] != holder {
					t.Fatalf("round %d: %s renewed its registration, but %s is held by %q", round, holder, acc, now[acc])
				}
			}
		}
		t.Logf("renewed in time %d times, lost the registration %d times", kept, lost)
	})
}

// TestAskPoll: a refresh asked in one process reaches the holder's next renewal once.
func TestAskPoll(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		a, b := openAt(t, loc), openAt(t, loc)
		accounts := names(3)
		join(t, a, "a", true, time.Minute)
		claim(t, a, "a", accounts[:2], 2)
		if err := b.AskPoll(context.Background(), accounts); err != nil {
			t.Fatal(err)
		}
		f := renew(t, a, "a", time.Minute)
		slices.Sort(f.Asked)
		if !slices.Equal(f.Asked, accounts[:2]) {
			t.Fatalf("asked: %v", f.Asked)
		}
		if f := renew(t, a, "a", time.Minute); len(f.Asked) != 0 {
			t.Fatalf("asked again: %v", f.Asked)
		}
	})
}

// TestSharedStates: what a holder writes of an account reads back whole in another
// process, with its age by the database's clock; a mark reads only what changed (and a
// little before); a holder that lost the account does not overwrite the new holder's.
func TestSharedStates(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		a, b := openAt(t, loc), openAt(t, loc)
		ctx := context.Background()
		join(t, a, "a", true, time.Minute)
		join(t, b, "b", true, time.Minute)
		claim(t, a, "a", []string{"sv-main"}, 1)
		at := time.Unix(1_700_000_000, 123456789)
		state := model.AccountState{
			Account: model.Account{Name: "sv-main", Provider: "sv-dte"}, Health: model.HealthDegraded,
			Windows:      []model.Window{{Name: "short", Limit: 3, Remaining: 1, Reset: 700 * time.Millisecond, Observed: at, ExhaustsIn: -1}},
			PollInterval: 45 * time.Second, BaseInterval: 30 * time.Second, Reserve: 0.1, LastPoll: at, LastGood: at.Add(-time.Minute),
			Err: "GET /factura: 503", LastError: rejection("503", "mantenimiento"),
			Documents: []model.Document{{Account: "sv-main", Provider: "sv-dte", ID: "DTE-1", Number: "DTE-01-0001", Status: model.StatusRejected,
				Problem: rejection("005", "Sello inválido \x1b[31m"), Attempts: 2, FirstSeen: at.Add(-time.Hour), Changed: at}},
			Parked: true, NextLogin: at.Add(5 * time.Minute),
		}
		enqueue(t, a, ShareState("a", "host-a/1", state, true))
		flush(t, a)
		if mine, _, err := a.SharedStates(ctx, 0, "a"); err != nil || len(mine) != 0 {
			t.Fatalf("a reads back its own states: %+v, %v", mine, err)
		}
		got, mark, err := b.SharedStates(ctx, 0, "b")
		if err != nil || len(got) != 1 {
			t.Fatalf("shared states: %+v, %v", got, err)
		}
		if s := got[0]; s.Holder != "a" || s.Host != "host-a/1" || s.Age < 0 || s.Age > 10*time.Second {
			t.Fatalf("who and how fresh: %+v", s)
		}
		if want, have := show(state), show(got[0].State); want != have {
			t.Fatalf("state read back:\n%s\nwant\n%s", have, want)
		}
		// Another account, written later, comes with a mark; b now holds sv-main, and a's
		// late write of it is not taken.
		if err := a.Leave(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		claim(t, b, "b", []string{"sv-main"}, 1)
		other := model.AccountState{Account: model.Account{Name: "cf-madrid", Provider: "certifactu"}, Health: model.HealthUp}
		stale := state
		stale.Health = model.HealthDown
		enqueue(t, a, ShareState("a", "host-a/1", stale, true), ShareState("b", "host-b/2", other, true))
		flush(t, a)
		got, _, err = b.SharedStates(ctx, mark, "")
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]SharedState{}
		for _, s := range got {
			byName[s.State.Account.Name] = s
		}
		if _, ok := byName["cf-madrid"]; !ok {
			t.Fatalf("the later state is missing: %+v", got)
		}
		if s, ok := byName["sv-main"]; ok && s.State.Health == model.HealthDown {
			t.Fatalf("a's write after losing the account was taken: %+v", s)
		}
		// b polls sv-main now; its documents did not change: they are written once.
		saved := statesSlack
		statesSlack = 50 * time.Millisecond
		t.Cleanup(func() { statesSlack = saved })
		polled := state
		polled.Health = model.HealthUp
		enqueue(t, b, ShareState("b", "host-b/2", polled, true))
		flush(t, b)
		time.Sleep(statesSlack + 10*time.Millisecond)
		_, mark, err = a.SharedStates(ctx, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		polled.Documents = nil
		enqueue(t, b, ShareState("b", "host-b/2", polled, false))
		flush(t, b)
		got, _, err = a.SharedStates(ctx, mark, "")
		if err != nil || len(got) != 1 || !got[0].SameDocuments || got[0].State.Documents != nil || got[0].State.Health != model.HealthUp {
			t.Fatalf("a state whose documents did not change: %+v, %v", got, err)
		}
		got, _, err = a.SharedStates(ctx, 0, "")
		if err != nil || len(got) != 2 {
			t.Fatalf("everything: %+v, %v", got, err)
		}
		for _, s := range got {
			if s.State.Account.Name == "sv-main" && (s.SameDocuments || len(s.State.Documents) != 1) {
				t.Fatalf("read whole, sv-main has its documents as last written: %+v", s)
			}
		}
	})
}

// show prints a state with what its pointers point to, every time in UTC.
func show(a model.AccountState) string {
	a.LastPoll, a.LastGood, a.NextLogin = a.LastPoll.UTC(), a.LastGood.UTC(), a.NextLogin.UTC()
	p := *a.LastError
	a.LastError = nil
	s := fmt.Sprintf("%+v", p)
	a.Windows, a.Documents = slices.Clone(a.Windows), slices.Clone(a.Documents)
	for i, w := range a.Windows {
		a.Windows[i].Observed = w.Observed.UTC()
	}
	for i, d := range a.Documents {
		s += fmt.Sprintf(" %+v", *d.Problem)
		a.Documents[i].Problem, a.Documents[i].FirstSeen, a.Documents[i].Changed = nil, d.FirstSeen.UTC(), d.Changed.UTC()
	}
	return fmt.Sprintf("%+v %s", a, s)
}

// TestJobs: a job goes to the member holding its account's poll lease, reports progress
// and results, hears a cancel, and ends; a job whose runner's registration ran out goes
// on with the account's next holder, and the old runner learns it lost it.
func TestJobs(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		a, b, asker := openAt(t, loc), openAt(t, loc), openAt(t, loc)
		ctx := context.Background()
		const ttl = 300 * time.Millisecond
		join(t, a, "a", true, ttl)
		join(t, b, "b", true, time.Minute)
		claim(t, a, "a", []string{"cf-madrid"}, 1)
		claim(t, b, "b", []string{"sv-main"}, 1)
		id, err := asker.SubmitJob(ctx, "cf-madrid", "retry", []byte(`{"docs":["INV-1","INV-2"]}`), "ana@laptop")
		if err != nil {
			t.Fatal(err)
		}
		if jobs, err := b.ClaimJobs(ctx, "b", "host-b", 0); err != nil || len(jobs) != 0 {
			t.Fatalf("b, which does not hold cf-madrid, took %+v (%v)", jobs, err)
		}
		jobs, err := a.ClaimJobs(ctx, "a", "host-a", 0)
		if err != nil || len(jobs) != 1 || jobs[0].ID != id || string(jobs[0].Request) != `{"docs":["INV-1","INV-2"]}` ||
			jobs[0].AskedBy != "ana@laptop" || jobs[0].State != JobRunning || jobs[0].Host != "host-a" {
			t.Fatalf("a took %+v (%v)", jobs, err)
		}
		if again, _ := a.ClaimJobs(ctx, "a", "host-a", 0); len(again) != 0 {
			t.Fatalf("a running job taken again: %+v", again)
		}
		enqueue(t, a, AddJobResult(id, "INV-1", []byte(`{"outcome":"accepted"}`)))
		flush(t, a)
		if cancel, err := a.JobProgress(ctx, id, "a", []byte(`{"done":1}`)); err != nil || cancel {
			t.Fatalf("progress: %v %v", cancel, err)
		}
		if err := asker.CancelJob(ctx, id); err != nil {
			t.Fatal(err)
		}
		if cancel, err := a.JobProgress(ctx, id, "a", []byte(`{"done":1}`)); err != nil || !cancel {
			t.Fatalf("the cancel was not heard: %v %v", cancel, err)
		}
		// a dies: b takes cf-madrid and the job with it, where its results end.
		time.Sleep(ttl + 100*time.Millisecond)
		claim(t, b, "b", []string{"cf-madrid"}, 1)
		jobs, err = b.ClaimJobs(ctx, "b", "host-b", 0)
		if err != nil || len(jobs) != 1 || jobs[0].ID != id || jobs[0].Runner != "b" || string(jobs[0].Progress) != `{"done":1}` || !jobs[0].Cancel {
			t.Fatalf("b took over %+v (%v)", jobs, err)
		}
		if _, err := a.JobProgress(ctx, id, "a", []byte(`{}`)); !errors.Is(err, ErrJobLost) {
			t.Fatalf("the dead runner's progress: %v", err)
		}
		if err := a.FinishJob(ctx, id, "a", JobDone, ""); !errors.Is(err, ErrJobLost) {
			t.Fatalf("the dead runner's finish: %v", err)
		}
		enqueue(t, b, AddJobResult(id, "INV-2", []byte(`{"outcome":"skipped"}`)))
		flush(t, b)
		if err := b.FinishJob(ctx, id, "b", JobDone, ""); err != nil {
			t.Fatal(err)
		}
		j, err := asker.Job(ctx, id)
		if err != nil || j.State != JobDone || j.Runner != "b" {
			t.Fatalf("the job as the asker sees it: %+v (%v)", j, err)
		}
		results, err := asker.JobResults(ctx, id, 0)
		if err != nil || len(results) != 2 || results[0].DocID != "INV-1" || results[1].DocID != "INV-2" {
			t.Fatalf("results: %+v (%v)", results, err)
		}
		if later, err := asker.JobResults(ctx, id, results[0].ID); err != nil || len(later) != 1 || later[0].DocID != "INV-2" {
			t.Fatalf("results after the first: %+v (%v)", later, err)
		}
		if _, err := asker.Job(ctx, id+100); !errors.Is(err, ErrNotFound) {
			t.Fatalf("an unknown job: %v", err)
		}
		if n, err := b.Prune(ctx, time.Now().Add(time.Hour), 10); err != nil || n < 3 {
			t.Fatalf("pruning the finished job: %d rows, %v", n, err)
		}
		if _, err := asker.Job(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the finished job was not pruned: %v", err)
		}
	})
}

// TestSharedStateUnreadable: one account's shared state that cannot be read (written by
// another version of emitop, or damaged by hand) is shown as such, on its own account;
// it does not hide every other account's state from every process of the fleet.
func TestSharedStateUnreadable(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		a, b := openAt(t, loc), openAt(t, loc)
		ctx := context.Background()
		join(t, a, "a", true, time.Minute)
		claim(t, a, "a", []string{"sv-main", "cf-madrid", "alegra-co"}, 3)
		doc := model.Document{Account: "cf-madrid", ID: "F-1", Status: model.StatusRejected, Problem: rejection("4112", "certificado")}
		enqueue(t, a,
			ShareState("a", "host-a/1", model.AccountState{Account: model.Account{Name: "sv-main", Provider: "sv-dte"}, Health: model.HealthUp}, true),
			ShareState("a", "host-a/1", model.AccountState{Account: model.Account{Name: "cf-madrid", Provider: "certifactu"}, Health: model.HealthUp,
				Documents: []model.Document{doc}}, true),
			ShareState("a", "host-a/1", model.AccountState{Account: model.Account{Name: "alegra-co", Provider: "alegra"}, Health: model.HealthUp}, true))
		flush(t, a)
		for _, q := range []string{
			`UPDATE account_states SET state = '{"health": {"v": 2}}' WHERE account = 'sv-main'`,
			`UPDATE account_states SET documents = '[{"id": 7}]' WHERE account = 'cf-madrid'`,
		} {
			if _, err := a.ledger.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		got, mark, err := b.SharedStates(ctx, 0, "b")
		if err != nil {
			t.Fatalf("one unreadable state fails the reading of all: %v", err)
		}
		if mark == 0 {
			t.Fatal("no mark to read from next time")
		}
		byName := map[string]SharedState{}
		for _, s := range got {
			byName[s.State.Account.Name] = s
		}
		if s := byName["alegra-co"]; s.State.Health != model.HealthUp || s.Host != "host-a/1" {
			t.Fatalf("the readable state: %+v", s)
		}
		for _, name := range []string{"sv-main", "cf-madrid"} {
			s, ok := byName[name]
			if !ok || s.Host != "host-a/1" || !s.SameDocuments || !strings.Contains(s.State.Err, "cannot be read") {
				t.Fatalf("%s, unreadable, is shown as: %+v (present %v)", name, s, ok)
			}
		}
	})
}
