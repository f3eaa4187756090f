package fleet

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"emitop/model"
	"emitop/poller"
	"emitop/retry"
	"emitop/store"
)

// countedReads is the store with its reads of documents counted per account.
type countedReads struct {
	*store.Store
	mu sync.Mutex
	n  map[string]int
}

func (c *countedReads) Documents(ctx context.Context, f store.DocFilter) ([]model.Document, error) {
	c.mu.Lock()
	c.n[f.Account]++
	c.mu.Unlock()
	return c.Store.Documents(ctx, f)
}

func (c *countedReads) of(account string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[account]
}

// polls counts each account's finished polls (poller.Observer).
type polls struct{ n atomic.Int64 }

func (p *polls) Exchanged(poller.Exchange)           {}
func (p *polls) Polled(string, time.Duration, error) { p.n.Add(1) }

// The first poll under a lease reads what the store holds of the account once: the open
// documents and their attempts come in one read. (Taking the lease asks for the attempts
// again, for a retry another process may have run; the read that follows it is that
// read.) At 10,000 accounts the second read was a twentieth of the poller's first minute.
func TestFirstPollReadsTheStoreOnce(t *testing.T) {
	_, accounts := fleetAccounts(t, 1, time.Hour)
	accounts = accounts[:1]
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "emitop.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reads := &countedReads{Store: st, n: map[string]int{}}
	seen := &polls{}
	m := New(st, []string{accounts[0].Name}, Options{Lease: lease, Memory: retry.NewMemory(),
		OnError: func(err error) { t.Logf("fleet: %v", err) }})
	p, err := poller.New(accounts, reads, poller.Options{Version: "test", Observer: seen, Share: m})
	if err != nil {
		t.Fatal(err)
	}
	m.Attach(p)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx) })
	wg.Go(func() { m.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	eventually(t, 10*time.Second, "the first poll", func() bool { return seen.n.Load() > 0 })
	if n := reads.of(accounts[0].Name); n != 1 {
		t.Errorf("the first poll read the account's documents from the store %d times, want 1", n)
	}
}
