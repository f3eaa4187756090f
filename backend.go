package main

import (
	"context"
	"time"

	"emitop/model"
	"emitop/poller"
	"emitop/store"
	"emitop/ui"
)

// seriesSpan is how far back a sparkline looks: older samples (from before a restart)
// would join unrelated figures.
const seriesSpan = time.Hour

// backend is what a dashboard sees of emitop, local or over SSH: the poller's snapshots
// and refreshes, and the history in the store.
type backend struct {
	p  *poller.Poller
	st *store.Store
}

var _ ui.Backend = backend{}

// newBackend adapts a poller and its store to the dashboard.
func newBackend(p *poller.Poller, st *store.Store) ui.Backend { return backend{p: p, st: st} }

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

// WindowSeries is what was left of a window at its last n samples of the past hour,
// oldest first; samples that stated no figure are left out.
func (b backend) WindowSeries(ctx context.Context, account, window string, n int) ([]int, error) {
	ws, err := b.st.WindowSeries(ctx, account, window, time.Now().Add(-seriesSpan), n)
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
