package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"emitop/model"
	"emitop/poller"
	"emitop/retry"
	"emitop/store"
)

// The kinds of job.
const (
	kindRetry = "retry"
	kindClear = "clear"
)

// awaitEvery is how often whoever asked for a job reads how far it got.
const awaitEvery = 200 * time.Millisecond

// request is what a job is asked to do: the documents as the asker knew them, and who
// asks with what options. The runner plans them again with its own engine, at the
// account's current budget.
type request struct {
	Docs        []model.Document `json:"docs"`
	Operator    string           `json:"operator"`
	Fingerprint string           `json:"fingerprint,omitempty"`
	Force       bool             `json:"force,omitempty"`
	Reason      string           `json:"reason,omitempty"`
}

// progress is how far a job got, as its runner last wrote it.
type progress struct {
	Done      int    `json:"done"`
	Total     int    `json:"total"`
	Current   string `json:"current,omitempty"`
	ETA       int64  `json:"eta"`
	Requests  int    `json:"requests"`
	Cancelled bool   `json:"cancelled,omitempty"`
}

// result is one document's result as job_results keeps it: every field of
// model.RetryResult.
type result struct {
	Doc      model.Document    `json:"doc"`
	Outcome  model.Outcome     `json:"outcome"`
	ByPolicy bool              `json:"by_policy,omitempty"`
	Verdict  model.Verdict     `json:"verdict,omitempty"`
	Why      model.RetryReason `json:"why"`
	Detail   string            `json:"detail"`
	Sent     bool              `json:"sent,omitempty"`
	Forced   bool              `json:"forced,omitempty"`
}

func encodeResult(r model.RetryResult) []byte {
	b, _ := json.Marshal(result{Doc: r.Doc, Outcome: r.Outcome, ByPolicy: r.ByPolicy, Verdict: r.Verdict, Why: r.Why,
		Detail: r.Detail, Sent: r.Sent, Forced: r.Forced})
	return b
}

func decodeResult(b []byte) (model.RetryResult, error) {
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return model.RetryResult{}, err
	}
	return model.RetryResult{Doc: r.Doc, Outcome: r.Outcome, ByPolicy: r.ByPolicy, Verdict: r.Verdict, Why: r.Why,
		Detail: r.Detail, Sent: r.Sent, Forced: r.Forced}, nil
}

// final reports whether a document's result ends its part in a job: a job taken over
// after its runner died carries out again the documents whose result is not final (an
// outcome unknown, a request its fence stopped, a rejection: the status read that starts
// it again says whether the policy resends it). Taking one up again starts, as always,
// with reading its status: the engine never resends blindly.
func final(r model.RetryResult) bool {
	switch r.Outcome {
	case model.OutcomeAccepted, model.OutcomeCleared:
		return true
	case model.OutcomeSkipped:
		return r.ByPolicy
	}
	return false
}

// pickJobs takes the jobs of the accounts this member holds, queued or left by a runner
// that died, and runs each in its own goroutine.
func (m *Member) pickJobs(ctx context.Context) {
	m.mu.Lock()
	holder, ok := m.holder, m.holder != "" && time.Now().Before(m.valid.Add(-m.margin()))
	m.mu.Unlock()
	if !ok {
		return
	}
	jobs, err := m.st.ClaimJobs(ctx, holder, m.host, 0)
	if err != nil {
		m.fail(fmt.Errorf("fleet: take jobs: %w", err))
		return
	}
	for _, j := range jobs {
		m.mu.Lock()
		m.busy[j.Account]++
		m.mu.Unlock()
		m.jobs.Go(func() {
			defer func() {
				m.mu.Lock()
				m.busy[j.Account]--
				m.mu.Unlock()
			}()
			m.run(ctx, holder, j)
		})
	}
}

// run carries out one job under the account's governor: a retry of its documents whose
// results are not final yet, or a deletion. Each document's result is written as it
// ends; the job's progress, every jobsEvery, also tells the runner whether whoever asked
// wants it stopped, or whether it lost the job (its registration ran out).
func (m *Member) run(ctx context.Context, holder string, j store.Job) {
	net := context.WithoutCancel(ctx)
	finish := func(state, why string) {
		if err := m.st.Flush(net); err != nil {
			m.fail(fmt.Errorf("fleet: job %d: %w", j.ID, err))
		}
		if err := m.st.FinishJob(net, j.ID, holder, state, why); err != nil && !errors.Is(err, store.ErrJobLost) {
			m.fail(fmt.Errorf("fleet: job %d: %w", j.ID, err))
		}
	}
	var req request
	if err := json.Unmarshal(j.Request, &req); err != nil {
		finish(store.JobFailed, "the job cannot be read: "+err.Error())
		return
	}
	for _, d := range req.Docs {
		if d.Account != j.Account {
			// Never through this account's client, credentials and budget.
			finish(store.JobFailed, fmt.Sprintf("the job of %s asks for document %s of %s", model.Line(j.Account, 80),
				model.Line(d.ID, 80), model.Line(d.Account, 80)))
			return
		}
	}
	var c *poller.Client
	if m.opt.Client != nil {
		c = m.opt.Client(j.Account)
	}
	if c == nil {
		finish(store.JobFailed, "this process does not know account "+model.Line(j.Account, 80))
		return
	}
	done := map[string]bool{}
	earlier, err := m.st.JobResults(net, j.ID, 0)
	if err != nil {
		m.fail(fmt.Errorf("fleet: job %d: %w", j.ID, err))
		return // still this member's: the next holder, or the next try, takes it up
	}
	for _, r := range earlier {
		if res, err := decodeResult(r.Result); err == nil {
			done[r.DocID] = done[r.DocID] || final(res) // a later word never undoes a final one
		}
	}
	var docs []model.Document
	for _, d := range req.Docs {
		if !done[d.ID] {
			docs = append(docs, d)
		}
	}
	jctx, stop := context.WithCancel(ctx)
	defer stop()
	var asked atomic.Bool // whoever asked wants it stopped
	if j.Cancel {
		asked.Store(true)
		stop()
	}
	// handed is whether the job is left to the account's next holder: this member is
	// leaving (ctx ended), or lost the job; what it did not finish is not recorded.
	handed := func() bool { return !asked.Load() && jctx.Err() != nil }
	var (
		mu   sync.Mutex
		last = progress{Total: len(req.Docs), Done: len(req.Docs) - len(docs)}
	)
	record := func(res model.RetryResult) {
		if handed() && !final(res) {
			return
		}
		if err := m.st.Enqueue(net, store.AddJobResult(j.ID, res.Doc.ID, encodeResult(res))); err != nil {
			m.fail(fmt.Errorf("fleet: job %d: %w", j.ID, err))
		}
	}
	heartbeat := make(chan struct{})
	var beating sync.WaitGroup
	beating.Go(func() {
		t := time.NewTicker(jobsEvery)
		defer t.Stop()
		for {
			select {
			case <-heartbeat:
				return
			case <-t.C:
			}
			mu.Lock()
			b, _ := json.Marshal(last)
			mu.Unlock()
			cancel, err := m.st.JobProgress(net, j.ID, holder, b)
			switch {
			case errors.Is(err, store.ErrJobLost):
				stop() // another member carries it out now
			case err != nil:
				m.fail(fmt.Errorf("fleet: job %d: %w", j.ID, err))
			case cancel:
				asked.Store(true)
				stop()
			}
		}
	})
	opt := retry.Options{Operator: req.Operator, Fingerprint: req.Fingerprint, Force: req.Force, Reason: req.Reason,
		Memory: m.opt.Memory}
	var runErr error
	switch j.Kind {
	case kindRetry:
		b := retry.Batch{Client: func(string) *poller.Client { return c }, Ledger: m.st, Memory: m.opt.Memory,
			Retried: m.opt.Retried, Fleet: here{m}}
		if len(docs) == 0 {
			break
		}
		plan, err := b.Plan(docs, opt)
		if err != nil {
			runErr = err
			break
		}
		var rep model.RetryReport
		rep, runErr = b.Run(jctx, plan, func(p model.RetryProgress) {
			mu.Lock()
			last.Done, last.Current, last.ETA = len(req.Docs)-len(docs)+p.Done, p.Current, int64(p.ETA)
			mu.Unlock()
			if p.Result != nil {
				record(*p.Result)
			}
		})
		mu.Lock()
		last.Requests, last.Cancelled = rep.Requests, rep.Cancelled
		mu.Unlock()
	case kindClear:
		if len(docs) == 0 {
			break
		}
		opt.Holding = func() error { return m.Holding(j.Account) }
		var r *retry.Retrier
		if r, runErr = retry.New(c, m.st, opt); runErr != nil {
			break
		}
		var res model.RetryResult
		if jctx.Err() != nil {
			res = model.RetryResult{Doc: docs[0], Outcome: model.OutcomeSkipped, Detail: "cancelled before it was sent"}
		} else if res, runErr = r.Clear(net, docs[0]); runErr != nil {
			break
		}
		record(res)
		mu.Lock()
		last.Done++
		mu.Unlock()
	default:
		runErr = fmt.Errorf("unknown job kind %q", j.Kind)
	}
	close(heartbeat)
	beating.Wait()
	if handed() {
		return // still running in the store, its runner gone: the next holder goes on with it
	}
	mu.Lock()
	b, _ := json.Marshal(last)
	mu.Unlock()
	if _, err := m.st.JobProgress(net, j.ID, holder, b); err != nil {
		if !errors.Is(err, store.ErrJobLost) {
			m.fail(fmt.Errorf("fleet: job %d: %w", j.ID, err))
		}
		return
	}
	if runErr != nil {
		finish(store.JobFailed, model.Line(runErr.Error(), 300))
		return
	}
	if p := m.poller; p != nil {
		p.Retried(j.Account)
		p.Poke(j.Account)
	}
	finish(store.JobDone, "")
}

// here is the member as the fleet of a job it runs: the job's batch runs here, and is
// refused should the account's lease be lost before it starts (its runner then gives it
// up to the next holder).
type here struct{ m *Member }

func (h here) Holding(account string) error { return h.m.Holding(account) }

func (h here) Elsewhere(context.Context, model.RetryPlan, retry.Options) (model.RetryReport, error) {
	return model.RetryReport{}, errors.New("this process no longer holds the account: its next holder carries out the job")
}

// Elsewhere carries out one account's plan in the process that holds the account's
// poll lease, as a job, and waits for it (retry.Fleet). opt.OnProgress is told as the
// engine would: once at the start, then for each document the plan resends, as its
// result arrives. Cancelling ctx asks the runner to stop before its next document.
func (m *Member) Elsewhere(ctx context.Context, plan model.RetryPlan, opt retry.Options) (model.RetryReport, error) {
	req := request{Operator: cmp.Or(plan.Operator, opt.Operator, "local"), Fingerprint: cmp.Or(plan.Fingerprint, opt.Fingerprint),
		Force: plan.Force || opt.Force, Reason: cmp.Or(plan.Reason, opt.Reason)}
	resend := map[string]bool{}
	for _, it := range plan.Items {
		req.Docs = append(req.Docs, it.Doc)
		resend[it.Doc.ID] = it.Resend
	}
	return m.submit(ctx, plan.Account, kindRetry, req, func(res model.RetryResult) bool { return resend[res.Doc.ID] }, opt.OnProgress)
}

// ClearElsewhere deletes a document as Retrier.Clear does, in the process that holds the
// account's poll lease, as a job, and waits for it.
func (m *Member) ClearElsewhere(ctx context.Context, doc model.Document, opt retry.Options) (model.RetryResult, error) {
	req := request{Docs: []model.Document{doc}, Operator: cmp.Or(opt.Operator, "local"), Fingerprint: opt.Fingerprint, Reason: opt.Reason}
	rep, err := m.submit(ctx, doc.Account, kindClear, req, func(model.RetryResult) bool { return true }, nil)
	if err != nil {
		return model.RetryResult{Doc: doc}, err
	}
	return rep.Results[0], nil
}

// submit queues a job and waits for it to end, telling progress of the results tell
// selects as they arrive. Cancelling ctx asks the runner to stop; a job no runner has
// taken by the next lease period after that is left queued, cancelled, and what it
// would have done is reported not done.
func (m *Member) submit(ctx context.Context, account, kind string, req request, tell func(model.RetryResult) bool, onProgress func(model.RetryProgress)) (model.RetryReport, error) {
	start := time.Now()
	net := context.WithoutCancel(ctx)
	body, err := json.Marshal(req)
	if err != nil {
		return model.RetryReport{}, err
	}
	id, err := m.st.SubmitJob(net, account, kind, body, req.Operator+"@"+m.host)
	if err != nil {
		return model.RetryReport{}, err
	}
	if onProgress != nil {
		onProgress(model.RetryProgress{Total: len(req.Docs)})
	}
	latest := map[string]model.RetryResult{}
	var after int64
	var gaveUp time.Time
	t := time.NewTicker(awaitEvery)
	defer t.Stop()
	// unread is what to do when a reading fails: the job goes on in its runner, so the
	// asker waits on through a store that blinks, unless it was asked to stop.
	unread := func(err error) error {
		if errors.Is(err, store.ErrNotFound) || ctx.Err() != nil {
			return fmt.Errorf("%s: job %d, which may still run where the account is polled: %w", account, id, err)
		}
		m.fail(fmt.Errorf("fleet: job %d: %w", id, err))
		<-t.C
		return nil
	}
	for {
		// The job's state first, its results after: a runner writes every result before
		// it ends the job, so a job read ended has all its results read here too.
		j, err := m.st.Job(net, id)
		if err != nil {
			if err := unread(err); err != nil {
				return model.RetryReport{}, err
			}
			continue
		}
		results, err := m.st.JobResults(net, id, after)
		if err != nil {
			if err := unread(err); err != nil {
				return model.RetryReport{}, err
			}
			continue
		}
		for _, r := range results {
			after = r.ID
			res, err := decodeResult(r.Result)
			if err != nil {
				continue
			}
			if prev, ok := latest[r.DocID]; ok && final(prev) && !final(res) {
				// A runner cut off from the store wrote it late, after the document's
				// final result (accepted is a fact at the provider): it stands.
				continue
			}
			latest[r.DocID] = res
			if onProgress != nil && tell(res) {
				onProgress(model.RetryProgress{Done: len(latest), Total: len(req.Docs), Result: &res})
			}
		}
		var pr progress
		_ = json.Unmarshal(j.Progress, &pr)
		switch {
		case j.State == store.JobFailed:
			return m.report(account, req, latest, pr, start, true), fmt.Errorf("%s: the retry failed in %s: %s", account, j.Host, j.Err)
		case j.State == store.JobDone:
			return m.report(account, req, latest, pr, start, pr.Cancelled || j.Cancel), nil
		case ctx.Err() != nil && gaveUp.IsZero():
			if err := m.st.CancelJob(net, id); err != nil {
				return model.RetryReport{}, fmt.Errorf("%s: job %d could not be stopped, and may still run where the account is polled: %w", account, id, err)
			}
			gaveUp = time.Now().Add(m.opt.Lease)
		case !gaveUp.IsZero() && j.State == store.JobQueued && time.Now().After(gaveUp):
			return m.report(account, req, latest, pr, start, true), nil
		}
		<-t.C
	}
}

// report is a job's report as whoever asked sees it: each document's latest result, in
// the order asked; a document with none was not done.
func (m *Member) report(account string, req request, latest map[string]model.RetryResult, pr progress, start time.Time, cancelled bool) model.RetryReport {
	rep := model.RetryReport{Account: account, Requests: pr.Requests, Elapsed: time.Since(start), Cancelled: cancelled}
	for _, d := range req.Docs {
		res, ok := latest[d.ID]
		if !ok {
			res = model.RetryResult{Doc: d, Outcome: model.OutcomeSkipped, Detail: "cancelled before it was sent"}
		}
		rep.Results = append(rep.Results, res)
	}
	return rep
}
