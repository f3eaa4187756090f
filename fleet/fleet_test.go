package fleet

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/config"
	"emitop/internal/pgtest"
	"emitop/internal/sandboxtest"
	"emitop/internal/storetest"
	"emitop/model"
	"emitop/poller"
	"emitop/retry"
	"emitop/sandbox"
	"emitop/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// lease is the tests' lease period: takeovers happen within two of them.
const lease = 1500 * time.Millisecond

// engines are where the processes of a test share their store: a SQLite file (processes
// on one host) and a PostgreSQL server (any number of hosts).
var engines = []struct {
	name  string
	fresh func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "emitop.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.Need(t).Schema(t) }},
}

func forEngines(t *testing.T, test func(t *testing.T, loc string)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { test(t, e.fresh(t)) })
	}
}

// requests counts one process's requests per account (poller.Observer).
type requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *requests) Exchanged(x poller.Exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[x.Account]++
}

func (r *requests) Polled(string, time.Duration, error) {}

func (r *requests) of(account string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[account]
}

// proc is one emitop process as the tests run it: its own connection to the shared
// store, a poller and a member.
type proc struct {
	st    *store.Store
	p     *poller.Poller
	m     *Member
	seen  *requests
	stop  context.CancelFunc
	ended chan struct{}
	once  sync.Once
}

func start(t *testing.T, loc string, accounts []config.Account) *proc {
	t.Helper()
	st, err := store.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	pr := &proc{st: st, seen: &requests{n: map[string]int{}}, ended: make(chan struct{})}
	names := make([]string, len(accounts))
	for i, a := range accounts {
		names[i] = a.Name
	}
	pr.m = New(st, names, Options{Lease: lease, Memory: retry.NewMemory(),
		OnError: func(err error) { t.Logf("fleet: %v", err) }})
	pr.p, err = poller.New(accounts, st, poller.Options{Version: "test", Observer: pr.seen, Share: pr.m})
	if err != nil {
		t.Fatal(err)
	}
	pr.m.Attach(pr.p)
	ctx, cancel := context.WithCancel(context.Background())
	pr.stop = cancel
	go func() {
		defer close(pr.ended)
		var wg sync.WaitGroup
		wg.Go(func() { pr.p.Run(ctx) })
		wg.Go(func() { pr.m.Run(ctx) })
		wg.Wait()
	}()
	t.Cleanup(func() { pr.close() })
	return pr
}

// close stops the process as SIGTERM does: it leaves the fleet, freeing its accounts.
func (pr *proc) close() {
	pr.once.Do(func() {
		pr.stop()
		<-pr.ended
		pr.st.Close()
	})
}

// kill stops the process as SIGKILL would: its connections close at once, nothing more
// reaches the store, and its registration stays until it runs out.
func (pr *proc) kill() {
	pr.once.Do(func() {
		pr.st.Close()
		pr.stop()
		<-pr.ended
	})
}

// owned is the accounts a process holds.
func (pr *proc) owned() map[string]bool {
	pr.m.mu.Lock()
	defer pr.m.mu.Unlock()
	out := map[string]bool{}
	for a := range pr.m.owned {
		out[a] = true
	}
	return out
}

// fleetAccounts starts a sandbox of n accounts per provider, polled every interval.
func fleetAccounts(t *testing.T, n int, interval time.Duration) (*sandbox.Sandbox, []config.Account) {
	t.Helper()
	sb, accounts := sandboxtest.Start(t, sandbox.Options{Scenario: "calm", Seed: 5, NoFaults: true, Accounts: n}, poller.Providers())
	for i := range accounts {
		// A short timeout: an emission a killed process left open keeps its document
		// waiting that long.
		accounts[i].PollInterval, accounts[i].Timeout = interval, 2*time.Second
	}
	return sb, accounts
}

// eventually waits for ok, failing after within.
func eventually(t *testing.T, within time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > within {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// spread reports whether every account is held by exactly one of procs, each holding
// at most its share.
func spread(procs []*proc, accounts []config.Account) bool {
	share := (len(accounts) + len(procs) - 1) / len(procs)
	for _, pr := range procs {
		if len(pr.owned()) > share {
			return false
		}
	}
	return heldOnce(procs, accounts)
}

// heldOnce reports whether every account is held by exactly one of procs.
func heldOnce(procs []*proc, accounts []config.Account) bool {
	holders := map[string]int{}
	for _, pr := range procs {
		for a := range pr.owned() {
			holders[a]++
		}
	}
	for _, a := range accounts {
		if holders[a.Name] != 1 {
			return false
		}
	}
	return true
}

// TestOnePollerPerAccount: three processes share one store's 15 accounts. Each account
// is polled by one of them, the accounts spread evenly, each process shows the others'
// accounts as their holders last polled them, saying who polls them, and no account
// meets a 429. One process is killed: its accounts are taken over within two lease
// periods and spread again over the two left.
func TestOnePollerPerAccount(t *testing.T) {
	forEngines(t, func(t *testing.T, loc string) {
		sb, accounts := fleetAccounts(t, 3, 300*time.Millisecond)
		procs := []*proc{start(t, loc, accounts), start(t, loc, accounts), start(t, loc, accounts)}
		eventually(t, 6*lease, "the accounts spread over the three", func() bool { return spread(procs, accounts) })
		before := make([]map[string]int, len(procs))
		for i, pr := range procs {
			before[i] = map[string]int{}
			for _, a := range accounts {
				before[i][a.Name] = pr.seen.of(a.Name)
			}
		}
		settled := time.Now()
		eventually(t, 10*time.Second, "every process showing every account polled since", func() bool {
			for _, pr := range procs {
				for _, a := range pr.p.Snapshot().Accounts {
					if a.LastPoll.Before(settled) {
						return false
					}
				}
			}
			return true
		})
		for i, pr := range procs {
			owned := pr.owned()
			for _, a := range pr.p.Snapshot().Accounts {
				name := a.Account.Name
				switch {
				case owned[name] && a.PolledBy != "":
					t.Errorf("process %d polls %s but shows it polled by %s", i, name, a.PolledBy)
				case !owned[name] && a.PolledBy != pr.m.Host():
					// Every process of this test runs on one host, in one OS process.
					t.Errorf("process %d shows %s polled by %q", i, name, a.PolledBy)
				case !owned[name] && pr.seen.of(name) > before[i][name]:
					t.Errorf("process %d made %d requests to %s, which another polls", i, pr.seen.of(name)-before[i][name], name)
				}
			}
		}
		for _, a := range accounts {
			if st := sb.AccountStats(a.Name); st.RateLimited != 0 {
				t.Errorf("%s: %d 429s", a.Name, st.RateLimited)
			}
		}

		dead := procs[0].owned()
		procs[0].kill()
		left := procs[1:]
		took := eventually(t, 3*lease, "the dead process's accounts taken over", func() bool {
			for a := range dead {
				if !left[0].owned()[a] && !left[1].owned()[a] {
					return false
				}
			}
			return true
		})
		if took > 2*lease {
			t.Errorf("the accounts of the dead process were taken over in %v, more than two lease periods", took)
		}
		t.Logf("accounts of the killed process taken over in %v (lease %v)", took.Round(time.Millisecond), lease)
		eventually(t, 4*lease, "the accounts spread over the two left", func() bool { return spread(left, accounts) })
		for _, a := range accounts {
			if st := sb.AccountStats(a.Name); st.RateLimited != 0 {
				t.Errorf("%s: %d 429s, after the takeover", a.Name, st.RateLimited)
			}
		}
	})
}

// rejectedOf lists the account's rejected documents as a process shows them.
func rejectedOf(pr *proc, account string) []model.Document {
	var out []model.Document
	for _, a := range pr.p.Snapshot().Accounts {
		if a.Account.Name != account {
			continue
		}
		for _, d := range a.Documents {
			if d.Status == model.StatusRejected {
				out = append(out, d)
			}
		}
	}
	return out
}

// holderAndAsker starts two processes on one store's accounts, waits until they spread,
// and returns the sandbox, the one holding account, the other, and at least `least` of the
// account's rejected documents as the other shows them (their cause fixed, so that a
// resend is accepted).
func holderAndAsker(t *testing.T, loc, account string, least int) (*sandbox.Sandbox, *proc, *proc, []model.Document) {
	t.Helper()
	sb, accounts := fleetAccounts(t, 1, time.Second)
	a, b := start(t, loc, accounts), start(t, loc, accounts)
	eventually(t, 6*lease, "the accounts spread over the two", func() bool { return spread([]*proc{a, b}, accounts) })
	holder, asker := a, b
	if b.owned()[account] {
		holder, asker = b, a
	}
	sb.Fix(account)
	var docs []model.Document
	eventually(t, 5*time.Second, "rejected documents shown", func() bool {
		docs = rejectedOf(asker, account)
		return len(docs) >= least
	})
	return sb, holder, asker, docs
}

// TestRetryGoesToTheHolder: a retry asked for in a process that does not hold the
// account is carried out by the one that does, as a job: every request of it goes
// through the holder's governor, the asker sees each result as it arrives and the
// report at the end, and every guarantee holds (nothing emitted twice, no 429).
func TestRetryGoesToTheHolder(t *testing.T) {
	forEngines(t, func(t *testing.T, loc string) {
		const name = "cf-madrid"
		sb, holder, asker, docs := holderAndAsker(t, loc, name, 1)
		before := asker.seen.of(name)
		batch := retry.Batch{Client: asker.p.Client, Ledger: asker.st, Fleet: asker.m}
		plan, err := batch.Plan(docs, retry.Options{Operator: "ana"})
		if err != nil || plan.Resends() == 0 {
			t.Fatalf("plan: %+v, %v", plan, err)
		}
		var mu sync.Mutex
		var told []model.RetryProgress
		rep, err := batch.Run(context.Background(), plan, func(p model.RetryProgress) {
			mu.Lock()
			told = append(told, p)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || len(rep.Results) != len(docs) {
			t.Fatalf("report: %+v", rep)
		}
		results := 0
		for _, p := range told {
			if p.Result != nil {
				results++
			}
		}
		if results != len(docs) {
			t.Errorf("the asker was told %d results of %d documents", results, len(docs))
		}
		if n := asker.seen.of(name) - before; n != 0 {
			t.Errorf("the asking process made %d requests to %s", n, name)
		}
		st := sb.AccountStats(name)
		if st.DuplicateEmissions != 0 || st.RateLimited != 0 || st.Emissions != plan.Resends() {
			t.Fatalf("emissions %d for %d resends, %d duplicates, %d 429s", st.Emissions, plan.Resends(), st.DuplicateEmissions, st.RateLimited)
		}
		if holder.seen.of(name) == 0 {
			t.Fatal("the holder made no request")
		}
	})
}

// TestJobTakenOverWhenItsRunnerDies: the process running a bulk retry for another is
// killed in the middle of it. The account and the job are taken over within two lease
// periods, the job goes on where its results end, and every document ends accepted or
// skipped by policy, none emitted twice, with no 429.
func TestJobTakenOverWhenItsRunnerDies(t *testing.T) {
	forEngines(t, func(t *testing.T, loc string) {
		const name = "cf-madrid"
		sb, runner, asker, docs := holderAndAsker(t, loc, name, 3)
		sb.SetFaults(name, sandbox.Faults{Latency: 300 * time.Millisecond}) // a slow provider: the retry takes a while
		batch := retry.Batch{Client: asker.p.Client, Ledger: asker.st, Fleet: asker.m}
		plan, err := batch.Plan(docs, retry.Options{Operator: "ana"})
		if err != nil {
			t.Fatal(err)
		}
		type outcome struct {
			rep model.RetryReport
			err error
		}
		done := make(chan outcome, 1)
		var results sync.WaitGroup
		results.Add(1)
		var once sync.Once
		go func() {
			rep, err := batch.Run(context.Background(), plan, func(p model.RetryProgress) {
				if p.Result != nil && p.Result.Sent {
					once.Do(results.Done)
				}
			})
			done <- outcome{rep, err}
		}()
		results.Wait() // one document done: kill the runner in the middle of the others
		runner.kill()
		killed := time.Now()
		took := eventually(t, 3*lease, "the account taken over", func() bool { return asker.owned()[name] })
		if took > 2*lease {
			t.Errorf("taken over in %v, more than two lease periods", took)
		}
		var out outcome
		select {
		case out = <-done:
		case <-time.After(time.Minute):
			t.Fatal("the job never ended")
		}
		if out.err != nil {
			t.Fatal(out.err)
		}
		for _, res := range out.rep.Results {
			if res.Outcome != model.OutcomeAccepted && !(res.Outcome == model.OutcomeSkipped && res.ByPolicy) {
				t.Errorf("%s ended %s: %s", res.Doc.ID, res.Outcome, res.Detail)
			}
		}
		st := sb.AccountStats(name)
		if st.DuplicateEmissions != 0 || st.RateLimited != 0 {
			t.Fatalf("%d duplicate emissions, %d 429s", st.DuplicateEmissions, st.RateLimited)
		}
		for id, n := range st.Attempts {
			if n > 1 {
				t.Errorf("%s emitted %d times", id, n)
			}
		}
		t.Logf("runner killed; account taken over in %v; job ended %v after the kill", took.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	})
}

// TestDatabaseRestart: the team's PostgreSQL stops in the middle of the polls and starts
// again. While the process can still renew nothing changes; once it cannot, it stops
// polling, saying why, since another process may take its accounts over (no request
// then); when the server is back it joins again on its own and polls every account, and
// every event committed before the stop is still there.
func TestDatabaseRestart(t *testing.T) {
	c := pgtest.New(t, false)
	loc := c.Schema(t)
	sb, accounts := fleetAccounts(t, 1, 300*time.Millisecond)
	pr := start(t, loc, accounts)
	polled := func(since time.Time) bool {
		for _, a := range pr.p.Snapshot().Accounts {
			if !a.LastPoll.After(since) || a.Unpolled != "" || a.PolledBy != "" {
				return false
			}
		}
		return true
	}
	eventually(t, 6*lease, "every account polled", func() bool { return polled(time.Time{}) })
	db, err := sql.Open("pgx", loc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := pr.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := storetest.EventIDs(t, db)
	if len(before) == 0 {
		t.Fatal("no event committed before the stop")
	}
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	eventually(t, 3*lease, "every account let go", func() bool {
		for _, a := range pr.p.Snapshot().Accounts {
			if !strings.Contains(a.Unpolled, "not polled") || !strings.Contains(a.Unpolled, "store") {
				return false
			}
		}
		return true
	})
	t.Logf("polling stopped %v after the server", time.Since(stopped).Round(time.Millisecond))
	time.Sleep(time.Second) // a poll under way ends
	requests := 0
	for _, a := range accounts {
		requests += sb.AccountStats(a.Name).Requests
	}
	time.Sleep(time.Second)
	for _, a := range accounts {
		requests -= sb.AccountStats(a.Name).Requests
	}
	if requests != 0 {
		t.Errorf("%d requests while the accounts were let go", -requests)
	}
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	took := eventually(t, 10*lease, "every account polled again", func() bool { return polled(back) })
	t.Logf("every account polled again %v after the server started", took.Round(time.Millisecond))
	after := storetest.EventIDs(t, db)
	for id := range before {
		if !after[id] {
			t.Errorf("event %d, committed before the stop, is gone", id)
		}
	}
	for _, a := range accounts {
		if st := sb.AccountStats(a.Name); st.RateLimited != 0 {
			t.Errorf("%s: %d 429s", a.Name, st.RateLimited)
		}
	}
}
