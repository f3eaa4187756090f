package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"emitop/model"
	"emitop/poller"
	"emitop/store"
	"emitop/ui"
)

// seriesSpan is how far back a sparkline looks: older samples (from before a restart)
// would join unrelated figures.
const seriesSpan = time.Hour

// history is what a dashboard's backend needs of the store (*store.Store, on either
// engine): the reads behind its screens, and the ledger its retries keep.
type history interface {
	poller.Ledger
	Events(ctx context.Context, f store.EventFilter) ([]model.Event, error)
	WindowSeries(ctx context.Context, account, window string, since time.Time, n int) ([]model.Window, error)
	Requests(ctx context.Context, f store.RequestFilter) ([]store.Request, error)
}

// backend is what a dashboard sees of emitop, local or over SSH: the poller's snapshots
// and refreshes, and the history in the store.
type backend struct {
	p  *poller.Poller
	st history
	// retried, when set, is told of each account's finished retry batch (metrics).
	retried func(poller.Report)
}

var _ ui.Backend = backend{}

// newBackend adapts a poller and its store to the dashboard.
func newBackend(p *poller.Poller, st history) ui.Backend { return backend{p: p, st: st} }

// Subscribe hands out the poller's snapshots, newest only, without ever blocking it.
func (b backend) Subscribe() (<-chan model.Snapshot, func()) { return b.p.Hub().Subscribe() }

// Refresh asks for a poll of every account now.
func (b backend) Refresh() { b.p.Refresh() }

// DocumentEvents is one document's history, newest first.
func (b backend) DocumentEvents(ctx context.Context, account, docID string, limit int) ([]model.Event, error) {
	return b.st.Events(ctx, store.EventFilter{Account: account, DocID: docID, Limit: limit})
}

// Events is the history screen's timeline, newest first.
func (b backend) Events(ctx context.Context, f ui.EventFilter) ([]model.Event, error) {
	return b.st.Events(ctx, store.EventFilter{Account: f.Account, DocID: f.DocID, Since: f.Since, Limit: f.Limit})
}

// WindowSeries is what was left of a window at its last n samples of the hour up to asOf
// (up to now when asOf is zero), oldest first; samples that stated no figure are left out.
func (b backend) WindowSeries(ctx context.Context, account, window string, asOf time.Time, n int) ([]int, error) {
	if asOf.IsZero() {
		asOf = time.Now()
	}
	ws, err := b.st.WindowSeries(ctx, account, window, asOf.Add(-seriesSpan), n)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(ws))
	for _, w := range ws {
		if w.Remaining != model.Unknown {
			out = append(out, w.Remaining)
		}
	}
	return out, nil
}

// Requests is an account's request log since a time, newest first.
func (b backend) Requests(ctx context.Context, account string, since time.Time, limit int) ([]ui.Request, error) {
	rs, err := b.st.Requests(ctx, store.RequestFilter{Account: account, Since: since, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]ui.Request, len(rs))
	for i, r := range rs {
		out[i] = ui.Request{At: r.At, Method: r.Method, Path: r.Path, Status: r.Status, Latency: r.Latency, Class: r.Class}
	}
	return out, nil
}

// retryBatch is the backend's side of a ui.RetryPlan: each account's plan, in the order
// of the accounts' first documents, and the options every account's engine is made with.
type retryBatch struct {
	opt   poller.RetryOptions
	plans []poller.Plan
}

// PlanRetry plans each account's documents with that account's engine, on the poller's
// client (so the ETA is at the account's current budget). The accounts run side by side,
// so the batch takes as long as its slowest account.
func (b backend) PlanRetry(ctx context.Context, req ui.RetryRequest) (ui.RetryPlan, error) {
	if req.Force && strings.TrimSpace(req.Reason) == "" {
		return ui.RetryPlan{}, errors.New("forcing a resend requires a reason")
	}
	opt := poller.RetryOptions{Operator: cmp.Or(req.Operator, "local"), Fingerprint: req.Fingerprint,
		Force: req.Force, Reason: strings.TrimSpace(req.Reason)}
	var order []string
	targets := map[string][]poller.Target{}
	for _, d := range req.Docs {
		if _, ok := targets[d.Account]; !ok {
			order = append(order, d.Account)
		}
		targets[d.Account] = append(targets[d.Account], poller.Target{Doc: d})
	}
	batch := retryBatch{opt: opt}
	out := ui.RetryPlan{Force: opt.Force, Reason: opt.Reason}
	for _, acc := range order {
		r, err := b.retrier(acc, opt)
		if err != nil {
			return ui.RetryPlan{}, err
		}
		p := r.Plan(targets[acc])
		batch.plans = append(batch.plans, p)
		for _, it := range p.Items {
			out.Items = append(out.Items, retryItem(it))
		}
		out.Requests += p.Requests
		out.ETA = max(out.ETA, p.ETA)
	}
	out.Batch = batch
	return out, nil
}

func (b backend) retrier(account string, opt poller.RetryOptions) (*poller.Retrier, error) {
	c := b.p.Client(account)
	if c == nil {
		return nil, fmt.Errorf("no account %q is polled", model.Line(account, 40))
	}
	return poller.NewRetrier(c, b.st, opt)
}

// cliForce is how the engine's reasons tell a command-line user to force a resend; the
// dashboard forces with f.
var cliForce = strings.NewReplacer("(--force --reason to resend anyway)", "(f forces it, with a reason)")

func retryItem(it poller.PlanItem) ui.RetryItem {
	out := ui.RetryItem{Doc: it.Doc, Verdict: it.Verdict, Resend: it.Resend, Forced: it.Forced, Reason: cliForce.Replace(it.Reason)}
	for _, rq := range it.Requests {
		out.Requests = append(out.Requests, ui.PlannedRequest{Method: rq.Method, URL: rq.URL, Header: rq.Header, Body: rq.Body})
	}
	return out
}

func retryResult(r poller.DocResult) ui.RetryResult {
	return ui.RetryResult{Doc: r.Doc, Outcome: string(r.Outcome), Verdict: r.Verdict, Detail: r.Detail, Sent: r.Sent, Forced: r.Forced}
}

// RunRetry runs every account's plan at once, each through its own engine and the
// account's client (its own governor and budget), so one account's slow windows hold up
// none of the others. Progress counts every document of the batch; the documents the
// plan skips are reported at the start. Each sent document is recorded by the engine; the
// batch records, per account, the documents it did not send and a summary. At the end it
// asks for a poll, so the next snapshot shows the new states.
func (b backend) RunRetry(ctx context.Context, plan ui.RetryPlan, progress func(ui.RetryProgress)) (ui.RetryReport, error) {
	batch, ok := plan.Batch.(retryBatch)
	if !ok {
		return ui.RetryReport{}, errors.New("retry: the plan was not made by this backend")
	}
	defer b.p.Refresh()
	defer func() {
		for _, p := range batch.plans {
			b.p.Retried(p.Account) // the poll that follows reads the attempts again
		}
	}()
	start := time.Now()
	n := len(batch.plans)
	total := 0
	for _, p := range batch.plans {
		total += len(p.Items)
	}
	var (
		mu      sync.Mutex
		done    int
		etas    = make([]time.Duration, n)
		current = make([]string, n)
	)
	report := func(i int, pr poller.Progress, res *ui.RetryResult) {
		etas[i], current[i] = pr.ETA, pr.Current
		up := ui.RetryProgress{Done: done, Total: total, Result: res, ETA: slices.Max(etas)}
		for _, c := range current {
			if c != "" {
				up.Current = c
				break
			}
		}
		progress(up)
	}
	rs := make([]*poller.Retrier, n)
	for i, p := range batch.plans {
		opt := batch.opt
		opt.OnProgress = func(pr poller.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if pr.Result == nil {
				for _, it := range p.Items {
					if !it.Resend {
						done++
						report(i, pr, &ui.RetryResult{Doc: it.Doc, Outcome: ui.OutcomeSkipped, Verdict: it.Verdict, Detail: it.Reason})
					}
				}
				report(i, pr, nil)
				return
			}
			done++
			res := retryResult(*pr.Result)
			report(i, pr, &res)
		}
		r, err := b.retrier(p.Account, opt)
		if err != nil {
			return ui.RetryReport{}, err
		}
		rs[i] = r
	}
	reports := make([]poller.Report, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { reports[i], errs[i] = r.Run(ctx, batch.plans[i]) })
	}
	wg.Wait()

	out := ui.RetryReport{Elapsed: time.Since(start)}
	var ops []store.Op
	for i, rep := range reports {
		if b.retried != nil {
			b.retried(rep)
		}
		out.Requests += rep.Requests
		out.Cancelled = out.Cancelled || rep.Cancelled
		for _, r := range rep.Results {
			out.Results = append(out.Results, retryResult(r))
		}
		ops = append(ops, batchRecord(batch.opt, batch.plans[i].Account, rep)...)
	}
	if err := b.st.Enqueue(context.WithoutCancel(ctx), ops...); err != nil {
		errs = append(errs, fmt.Errorf("record the retry: %w", err))
	} else if err := b.st.Flush(context.WithoutCancel(ctx)); err != nil {
		errs = append(errs, fmt.Errorf("record the retry: %w", err))
	}
	return out, errors.Join(errs...)
}

// batchRecord is what the action log learns of one account's batch beyond what the
// engine records of each sent document: each document not sent, and a summary.
func batchRecord(opt poller.RetryOptions, account string, rep poller.Report) []store.Op {
	kind := "retry"
	if opt.Force {
		kind = "force-retry"
	}
	act := func(docID, outcome string) store.Op {
		return store.RecordAction(model.Action{Operator: opt.Operator, Fingerprint: opt.Fingerprint, Kind: kind,
			Account: account, DocID: docID, Reason: opt.Reason, Outcome: outcome})
	}
	var ops []store.Op
	parts := make([]string, len(outcomes))
	for i, o := range outcomes {
		parts[i] = fmt.Sprintf("%d %s", rep.Count(o), o)
	}
	for _, r := range rep.Results {
		if !r.Sent {
			ops = append(ops, act(r.Doc.ID, string(r.Outcome)+": "+r.Detail))
		}
	}
	summary := fmt.Sprintf("batch of %d: %s", len(rep.Results), strings.Join(parts, ", "))
	if rep.Cancelled {
		summary += " (cancelled)"
	}
	return append(ops, act("", summary))
}
