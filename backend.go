package main

import (
	"context"
	"time"

	"emitop/model"
	"emitop/poller"
	"emitop/retry"
	"emitop/store"
	"emitop/ui"
)

// seriesSpan is how far back a sparkline looks: older samples (from before a restart)
// would join unrelated figures.
const seriesSpan = time.Hour

// history is what a dashboard's backend needs of the store (*store.Store, on either
// engine): the reads behind its screens, and the ledger its retries keep.
type history interface {
	retry.Ledger
	Events(ctx context.Context, f store.EventFilter) ([]model.Event, error)
	WindowSeries(ctx context.Context, account, window string, since time.Time, n int) ([]model.Window, error)
	Requests(ctx context.Context, f store.RequestFilter) ([]store.Request, error)
}

// backend is what a dashboard sees of emitop, local or over SSH: the poller's snapshots
// and refreshes, and the history in the store.
type backend struct {
	p     *poller.Poller
	st    history
	retry retry.Batch // the dashboard's retries, on the poller's clients
}

var _ ui.Backend = backend{}

// newBackend adapts a pollerProc process and its store to the dashboard: its retries run
// here for the accounts this process polls, and in the process that polls the others.
func newBackend(x *pollerProc, st history) backend {
	return backend{p: x.p, st: st, retry: retry.Batch{Client: x.p.Client, Ledger: st, Memory: x.memory, Fleet: x.m}}
}

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

// PlanRetry plans the documents, each account's with that account's engine and client.
func (b backend) PlanRetry(_ context.Context, req ui.RetryRequest) (model.RetryPlan, error) {
	return b.retry.Plan(req.Docs, retry.Options{Operator: req.Operator, Fingerprint: req.Fingerprint,
		Force: req.Force, Reason: req.Reason})
}

// RunRetry runs a plan, every account at once. At the end it asks for a poll, so the
// next snapshot shows the new states, and the attempts are read again.
func (b backend) RunRetry(ctx context.Context, plan model.RetryPlan, progress func(model.RetryProgress)) (model.RetryReport, error) {
	defer b.p.Refresh()
	defer func() {
		seen := map[string]bool{}
		for _, it := range plan.Items {
			if !seen[it.Doc.Account] {
				seen[it.Doc.Account] = true
				b.p.Retried(it.Doc.Account)
			}
		}
	}()
	return b.retry.Run(ctx, plan, progress)
}
