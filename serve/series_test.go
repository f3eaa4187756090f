package serve

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"emitop/ui"
)

// gatedSeries is a backend whose window-series reads count themselves and wait for the
// gate, so a test can hold one open while others arrive.
type gatedSeries struct {
	ui.Backend
	reads atomic.Int32
	gate  chan struct{}
	fail  atomic.Bool
}

func (g *gatedSeries) WindowSeries(ctx context.Context, account, window string, asOf time.Time, n int) ([]int, error) {
	g.reads.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if g.fail.Load() {
		return nil, errors.New("disk I/O error")
	}
	return []int{n, int(asOf.Unix() % 100), len(account) + len(window)}, nil
}

func TestSharedSeriesOneReadPerSnapshot(t *testing.T) {
	g := &gatedSeries{gate: make(chan struct{})}
	c := newSharedSeries(g)
	asOf := time.Unix(1_700_000_042, 0)

	// The first session's read is held open; nineteen more ask for the same series, the
	// first of them with a context that ends while it waits.
	const n = 20
	results := make([][]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	wg.Go(func() { results[0], errs[0] = c.WindowSeries(ctx, "alegra-co", "minute", asOf, 30) })
	for g.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < n; i++ {
		wg.Go(func() { results[i], errs[i] = c.WindowSeries(context.Background(), "alegra-co", "minute", asOf, 30) })
	}
	time.Sleep(20 * time.Millisecond)
	cancel() // the session that started the read goes away: the read serves the others
	time.Sleep(5 * time.Millisecond)
	close(g.gate)
	wg.Wait()
	if got := g.reads.Load(); got != 1 {
		t.Fatalf("%d reads for one snapshot's series, want 1", got)
	}
	want := []int{30, 42, 15}
	for i := range n {
		if errs[i] != nil || !slices.Equal(results[i], want) {
			t.Fatalf("session %d got %v, %v; want %v", i, results[i], errs[i], want)
		}
	}
	results[1][0] = -1 // one dashboard's copy is its own
	if got, _ := c.WindowSeries(context.Background(), "alegra-co", "minute", asOf, 30); !slices.Equal(got, want) || g.reads.Load() != 1 {
		t.Fatalf("the kept answer is %v after %d reads; want %v from the one read", got, g.reads.Load(), want)
	}

	// Another window, a newer poll, or another length is another read; a session still on
	// an older snapshot reads on its own and leaves the newest answer kept.
	c.WindowSeries(context.Background(), "alegra-co", "second", asOf, 30)
	c.WindowSeries(context.Background(), "alegra-co", "minute", asOf.Add(time.Second), 30)
	c.WindowSeries(context.Background(), "alegra-co", "minute", asOf.Add(time.Second), 10)
	if got := g.reads.Load(); got != 4 {
		t.Fatalf("%d reads, want 4", got)
	}
	if got, _ := c.WindowSeries(context.Background(), "alegra-co", "minute", asOf, 30); !slices.Equal(got, want) {
		t.Fatalf("the older snapshot's series is %v, want %v", got, want)
	}
	c.WindowSeries(context.Background(), "alegra-co", "minute", asOf.Add(time.Second), 30)
	if got := g.reads.Load(); got != 5 {
		t.Fatalf("%d reads, want 5: the older snapshot's read must not replace the newest answer", got)
	}
}

func TestSharedSeriesKeepsNoError(t *testing.T) {
	g := &gatedSeries{gate: make(chan struct{})}
	close(g.gate)
	c := newSharedSeries(g)
	asOf := time.Unix(1_700_000_000, 0)
	g.fail.Store(true)
	if _, err := c.WindowSeries(context.Background(), "sv-main", "w", asOf, 5); err == nil {
		t.Fatal("the backend's error was not returned")
	}
	g.fail.Store(false)
	got, err := c.WindowSeries(context.Background(), "sv-main", "w", asOf, 5)
	if err != nil || len(got) != 3 || g.reads.Load() != 2 {
		t.Fatalf("after an error: %v, %v after %d reads; want a fresh read", got, err, g.reads.Load())
	}
}
