package serve

import (
	"context"
	"slices"
	"sync"
	"time"

	"emitop/ui"
)

// seriesTimeout bounds one shared read of a window series.
const seriesTimeout = 10 * time.Second

// sharedSeries answers every session's window series with one read per (account, window,
// asOf, n): a snapshot reaches all the dashboards at once and each asks for the trends of
// the accounts it changed, the same ones, at the same moment — fifty sessions made fifty
// identical SQLite queries per poll. Sessions asking while the read runs wait for it; a
// later ask for the same asOf gets the answer kept. An error is not kept: the next ask reads
// again. Only the newest asOf of each series is kept, so the cache holds one answer per
// configured window; a session still showing an older snapshot reads on its own.
type sharedSeries struct {
	ui.Backend

	mu    sync.Mutex
	reads map[seriesKey]*seriesRead
}

type seriesKey struct {
	account, window string
	n               int
}

// seriesRead is one read of a series; done is closed once vals and err are set.
type seriesRead struct {
	asOf time.Time
	done chan struct{}
	vals []int
	err  error
}

func newSharedSeries(b ui.Backend) *sharedSeries {
	return &sharedSeries{Backend: b, reads: map[seriesKey]*seriesRead{}}
}

func (c *sharedSeries) WindowSeries(ctx context.Context, account, window string, asOf time.Time, n int) ([]int, error) {
	k := seriesKey{account, window, n}
	c.mu.Lock()
	rd, ok := c.reads[k]
	switch {
	case ok && rd.asOf.Equal(asOf) && !failed(rd):
		c.mu.Unlock()
		select {
		case <-rd.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if rd.err != nil {
			return nil, rd.err
		}
		return slices.Clone(rd.vals), nil
	case ok && asOf.Before(rd.asOf):
		c.mu.Unlock()
		return c.Backend.WindowSeries(ctx, account, window, asOf, n)
	}
	rd = &seriesRead{asOf: asOf, done: make(chan struct{})}
	c.reads[k] = rd
	c.mu.Unlock()

	// The read serves every session waiting on it, so it does not end with the context of
	// the one that started it.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), seriesTimeout)
	rd.vals, rd.err = c.Backend.WindowSeries(rctx, account, window, asOf, n)
	cancel()
	close(rd.done)
	if rd.err != nil {
		return nil, rd.err
	}
	return slices.Clone(rd.vals), nil
}

// failed reports whether rd has ended with an error.
func failed(rd *seriesRead) bool {
	select {
	case <-rd.done:
		return rd.err != nil
	default:
		return false
	}
}
