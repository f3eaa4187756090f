package fleet

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/config"
	"emitop/internal/pgtest"
	"emitop/model"
	"emitop/retry"
	"emitop/sandbox"
	"emitop/store"
)

// TestAskerWaitsThroughARestart: the team's PostgreSQL restarts while a retry asked for
// in one process runs as a job in another. The asker does not walk away from a job that
// still runs because one reading of its results failed: it waits for the job's end and
// reports what the job did, as it would have without the restart.
func TestAskerWaitsThroughARestart(t *testing.T) {
	c := pgtest.New(t, false)
	loc := c.Schema(t)
	sb, accounts := fleetAccounts(t, 1, time.Second)
	a, b := start(t, loc, accounts), start(t, loc, accounts)
	eventually(t, 6*lease, "the accounts spread over the two", func() bool { return spread([]*proc{a, b}, accounts) })
	const name = "cf-madrid"
	asker := a
	if a.owned()[name] {
		asker = b
	}
	sb.Fix(name)
	var docs []model.Document
	eventually(t, 5*time.Second, "rejected documents shown", func() bool {
		docs = rejectedOf(asker, name)
		return len(docs) >= 3
	})
	sb.SetFaults(name, sandbox.Faults{Latency: 300 * time.Millisecond}) // the job takes a while
	batch := retry.Batch{Client: asker.p.Client, Ledger: asker.st, Fleet: asker.m}
	plan, err := batch.Plan(docs, retry.Options{Operator: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	type outcome struct {
		rep model.RetryReport
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		rep, err := batch.Run(context.Background(), plan, func(p model.RetryProgress) {
			select {
			case started <- struct{}{}:
			default:
			}
		})
		done <- outcome{rep, err}
	}()
	<-started
	time.Sleep(500 * time.Millisecond) // the job is under way in the holder
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	var out outcome
	select {
	case out = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the retry never ended")
	}
	db, err := sql.Open("pgx", loc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var open int
	if err := db.QueryRow(`SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')`).Scan(&open); err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Fatalf("the asker returned (%v) while its job still ran", out.err)
	}
	if len(out.rep.Results) != len(docs) {
		t.Fatalf("report of %d documents for %d asked: %+v (%v)", len(out.rep.Results), len(docs), out.rep, out.err)
	}
	st := sb.AccountStats(name)
	if st.DuplicateEmissions != 0 || st.RateLimited != 0 {
		t.Fatalf("%d duplicate emissions, %d 429s", st.DuplicateEmissions, st.RateLimited)
	}
	t.Logf("report: %d requests, error %v", out.rep.Requests, out.err)
}

// TestEveryAccountPolledWhenConfigurationsDiffer: the processes sharing a store need
// not have the same accounts (the team's `emitop serve` has every account, an
// operator's dashboard only the two they look after, another team shares the server
// with accounts of its own). Every account is still polled by some process that has it:
// none is left to nobody because each process stopped at its share of the live pollers.
func TestEveryAccountPolledWhenConfigurationsDiffer(t *testing.T) {
	forEngines(t, func(t *testing.T, loc string) {
		_, accounts := fleetAccounts(t, 2, 300*time.Millisecond)
		all := start(t, loc, accounts)
		few := start(t, loc, accounts[:2])
		other := start(t, loc, accounts[len(accounts)-1:])
		procs := []*proc{all, few, other}
		time.Sleep(3 * lease) // the three know of each other, and balanced the accounts
		eventually(t, 6*lease, "every account held by one process", func() bool { return heldOnce(procs, accounts) })
	})
}

// TestJobOfAnotherAccountsDocuments: a job names its account, and the documents it asks
// for; a member of another version, or one that lies, may ask for documents of another
// account in it. The runner refuses the job rather than send another account's
// documents through this account's client, credentials and budget.
func TestJobOfAnotherAccountsDocuments(t *testing.T) {
	forEngines(t, func(t *testing.T, loc string) {
		_, accounts := fleetAccounts(t, 1, 300*time.Millisecond)
		pr := start(t, loc, accounts)
		eventually(t, 6*lease, "every account held", func() bool { return len(pr.owned()) == len(accounts) })
		const name = "cf-madrid"
		var other string
		var docs []model.Document
		eventually(t, 5*time.Second, "rejected documents of another account shown", func() bool {
			for _, a := range accounts {
				if docs = rejectedOf(pr, a.Name); a.Name != name && len(docs) > 0 {
					other = a.Name
					return true
				}
			}
			return false
		})
		body, err := json.Marshal(request{Docs: docs, Operator: "mallory"})
		if err != nil {
			t.Fatal(err)
		}
		id, err := pr.st.SubmitJob(context.Background(), name, kindRetry, body, "mallory@elsewhere")
		if err != nil {
			t.Fatal(err)
		}
		var j store.Job
		eventually(t, 10*time.Second, "the job ended", func() bool {
			j, err = pr.st.Job(context.Background(), id)
			return err == nil && (j.State == store.JobDone || j.State == store.JobFailed)
		})
		if j.State != store.JobFailed || !strings.Contains(j.Err, other) {
			t.Fatalf("a job of %s asking for %d documents of %s ended %s (%q)", name, len(docs), other, j.State, j.Err)
		}
		results, err := pr.st.JobResults(context.Background(), id, 0)
		if err != nil || len(results) != 0 {
			t.Fatalf("results of the refused job: %d, %v", len(results), err)
		}
	})
}

// TestJobRunnerThatLostItsRegistration: the process running a job loses its registration
// (another member found it run out and deleted it: the process stalled, or could not
// reach the store) and joins again under a new name; the job goes to whoever holds the
// account next, here the same process under its new name. The run under the old name
// must stop there: what it does or records after that must not count, and the asker's
// report says what the job did (every document accepted or skipped by policy, none
// emitted twice).
func TestJobRunnerThatLostItsRegistration(t *testing.T) {
	forEngines(t, func(t *testing.T, loc string) {
		sb, accounts := fleetAccounts(t, 1, time.Second)
		const name = "cf-madrid"
		var mine []config.Account
		for _, a := range accounts {
			if a.Name == name {
				mine = append(mine, a)
			}
		}
		runner := start(t, loc, accounts)
		eventually(t, 6*lease, "every account held", func() bool { return len(runner.owned()) == len(accounts) })
		asker := start(t, loc, mine[:0:0])
		sb.Fix(name)
		var docs []model.Document
		eventually(t, 5*time.Second, "rejected documents shown", func() bool {
			docs = rejectedOf(runner, name)
			return len(docs) >= 3
		})
		sb.SetFaults(name, sandbox.Faults{Latency: 600 * time.Millisecond}) // the job outlasts the runner's next renewal
		first, _ := runner.m.Member()
		done := make(chan model.RetryReport, 1)
		plan, err := retry.Batch{Client: runner.p.Client, Ledger: runner.st}.Plan(docs, retry.Options{Operator: "ana"})
		if err != nil {
			t.Fatal(err)
		}
		plan.Account = name
		go func() {
			rep, err := asker.m.Elsewhere(context.Background(), plan, retry.Options{Operator: "ana"})
			if err != nil {
				t.Error(err)
			}
			done <- rep
		}()
		eventually(t, 10*time.Second, "the job under way", func() bool { return sb.AccountStats(name).Emissions > 0 })
		driver, dsn := "sqlite", "file:"+loc+"?_pragma=busy_timeout(5000)"
		if store.IsURL(loc) {
			driver, dsn = "pgx", loc
		}
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`DELETE FROM members WHERE holder = $1`, first); err != nil {
			t.Fatal(err)
		}
		eventually(t, 3*lease, "the runner joined again", func() bool {
			again, _ := runner.m.Member()
			return again != first
		})
		var rep model.RetryReport
		select {
		case rep = <-done:
		case <-time.After(time.Minute):
			t.Fatal("the job never ended")
		}
		for _, res := range rep.Results {
			if res.Outcome != model.OutcomeAccepted && !(res.Outcome == model.OutcomeSkipped && res.ByPolicy) {
				t.Errorf("%s ended %s: %s", res.Doc.ID, res.Outcome, res.Detail)
			}
		}
		st := sb.AccountStats(name)
		if st.DuplicateEmissions != 0 || st.RateLimited != 0 {
			t.Fatalf("%d duplicate emissions, %d 429s", st.DuplicateEmissions, st.RateLimited)
		}
	})
}

// TestLateResultOfACutOffRunner: a runner cut off from the store records a document's
// result late ("not sent": it could not renew its lease), after the account's next
// holder recorded that document accepted. Accepted is a fact at the provider: the asker's
// report, and any runner taking the job up, keep it.
func TestLateResultOfACutOffRunner(t *testing.T) {
	forEngines(t, func(t *testing.T, loc string) {
		ctx := context.Background()
		const account = "cf-madrid"
		doc := model.Document{Account: account, Provider: "certifactu", ID: "F-1", Status: model.StatusRejected}
		asker := New(openStore(t, loc), nil, Options{Lease: lease})
		runner := openStore(t, loc)
		if err := runner.Join(ctx, store.Member{Holder: "r", Host: "host-r/1", Polls: true}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if taken, err := runner.Claim(ctx, "r", []string{account}, 1); err != nil || len(taken) != 1 {
			t.Fatalf("claim: %v, %v", taken, err)
		}
		go func() {
			var jobs []store.Job
			for len(jobs) == 0 {
				time.Sleep(20 * time.Millisecond)
				var err error
				if jobs, err = runner.ClaimJobs(ctx, "r", "host-r/1", 0); err != nil {
					t.Error(err)
					return
				}
			}
			id := jobs[0].ID
			accepted := model.RetryResult{Doc: doc, Outcome: model.OutcomeAccepted, Sent: true, Detail: "resent: accepted"}
			late := model.RetryResult{Doc: doc, Outcome: model.OutcomeRejected, Detail: "not sent: lease on F-1: connection refused"}
			if err := runner.Enqueue(ctx, store.AddJobResult(id, doc.ID, encodeResult(accepted)),
				store.AddJobResult(id, doc.ID, encodeResult(late))); err != nil {
				t.Error(err)
			}
			if err := runner.Flush(ctx); err != nil {
				t.Error(err)
			}
			if err := runner.FinishJob(ctx, id, "r", store.JobDone, ""); err != nil {
				t.Error(err)
			}
		}()
		rep, err := asker.Elsewhere(ctx, model.RetryPlan{Account: account, Items: []model.RetryItem{{Doc: doc, Resend: true}}},
			retry.Options{Operator: "ana"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != 1 || rep.Results[0].Outcome != model.OutcomeAccepted {
			t.Fatalf("the report of a document accepted, then reported not sent by a runner cut off: %+v", rep.Results)
		}
	})
}

// finishingStore is a store whose first reading of a job's results is followed, before
// it returns, by between: the runner ending the job right after the asker read its
// results.
type finishingStore struct {
	Store
	once    sync.Once
	between func()
}

func (s *finishingStore) JobResults(ctx context.Context, job, after int64) ([]store.JobResult, error) {
	res, err := s.Store.JobResults(ctx, job, after)
	s.once.Do(s.between)
	return res, err
}

// TestAskerReadsTheLastResults: the runner writes a document's result and ends the job
// between the asker's reading of the results and its reading of the job's state. The
// asker's report has that result: it does not take the job's end for the end of what it
// read.
func TestAskerReadsTheLastResults(t *testing.T) {
	forEngines(t, func(t *testing.T, loc string) {
		ctx := context.Background()
		const account = "cf-madrid"
		doc := model.Document{Account: account, Provider: "certifactu", ID: "F-1", Status: model.StatusRejected}
		runner := openStore(t, loc)
		if err := runner.Join(ctx, store.Member{Holder: "r", Host: "host-r/1", Polls: true}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if taken, err := runner.Claim(ctx, "r", []string{account}, 1); err != nil || len(taken) != 1 {
			t.Fatalf("claim: %v, %v", taken, err)
		}
		st := &finishingStore{Store: openStore(t, loc), between: func() {
			jobs, err := runner.ClaimJobs(ctx, "r", "host-r/1", 0)
			if err != nil || len(jobs) != 1 {
				t.Errorf("claim jobs: %v, %v", jobs, err)
				return
			}
			accepted := model.RetryResult{Doc: doc, Outcome: model.OutcomeAccepted, Sent: true, Detail: "resent: accepted"}
			if err := runner.Enqueue(ctx, store.AddJobResult(jobs[0].ID, doc.ID, encodeResult(accepted))); err != nil {
				t.Error(err)
			}
			if err := runner.Flush(ctx); err != nil {
				t.Error(err)
			}
			if err := runner.FinishJob(ctx, jobs[0].ID, "r", store.JobDone, ""); err != nil {
				t.Error(err)
			}
		}}
		asker := New(st, nil, Options{Lease: lease})
		rep, err := asker.Elsewhere(ctx, model.RetryPlan{Account: account, Items: []model.RetryItem{{Doc: doc, Resend: true}}},
			retry.Options{Operator: "ana"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != 1 || rep.Results[0].Outcome != model.OutcomeAccepted {
			t.Fatalf("the report of a document accepted as the job ended: %+v", rep.Results)
		}
	})
}

// openStore opens the test's store, closed when the test ends.
func openStore(t *testing.T, loc string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
