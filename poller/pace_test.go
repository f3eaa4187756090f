package poller

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"emitop/config"
	"emitop/pace"
)

const agent = "emitop/test"

func testAccount(provider, base string, creds map[string]string) config.Account {
	return config.Account{Name: "acct", Provider: provider, BaseURL: base, Timeout: 5 * time.Second, Reserve: 0.1, Credentials: config.NewCredentials(creds)}
}

// drive sends n GETs through c from workers goroutines (the first one polling, the others
// as the retry engine) and counts the statuses it got.
func drive(t *testing.T, c *Client, n, workers int) (statuses map[int]int, elapsed time.Duration) {
	t.Helper()
	var next atomic.Int64
	var mu sync.Mutex
	statuses = map[int]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		kind := pace.Write
		if w == 0 {
			kind = pace.Poll
		}
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				res, err := c.Do(context.Background(), kind, http.MethodGet, "/factura", nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				statuses[res.Response.Status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return statuses, time.Since(start)
}

// lowerBound is the least time n requests take through windows whose reserve (a tenth,
// as the tests' governors keep) is never spent.
func lowerBound(n int, ts []throttler) time.Duration {
	var bound time.Duration
	for _, t := range ts {
		u := pace.Usable(t.limit, 0.1)
		bound = max(bound, time.Duration((n+u-1)/u-1)*t.ttl)
	}
	return bound
}

// TestPaceNestThrottler drives requests from several goroutines against a NestJS-style
// sliding-log limiter: no 429 at all, never more than the usable share of any window,
// polling never more than half of it.
func TestPaceNestThrottler(t *testing.T) {
	t.Parallel()
	ts := []throttler{{"short", 5, 100 * time.Millisecond}, {"medium", 30, time.Second}}
	lim := newNestLimiter(ts...)
	srv := httptest.NewServer(lim)
	defer srv.Close()
	var limits []pace.Limit
	for _, x := range ts {
		limits = append(limits, pace.Limit{Name: x.name, Max: x.limit, Per: x.ttl})
	}
	g := pace.NewGovernor(limits, 0.1, nil)
	c, err := NewClient(testAccount("sv-dte", srv.URL, map[string]string{"api_key": "k"}), ClientOptions{Version: "test", Governor: g})
	if err != nil {
		t.Fatal(err)
	}
	const n = 150
	statuses, elapsed := drive(t, c, n, 4)
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if statuses[200] != n || count429(lim.arrivals, agent) != 0 {
		t.Fatalf("statuses %v", statuses)
	}
	for _, x := range ts {
		u := pace.Usable(x.limit, 0.1)
		if got := maxInWindow(lim.arrivals, agent, x.ttl); got > u {
			t.Errorf("window %s: %d requests in one window, usable %d", x.name, got, u)
		}
	}
	t.Logf("nest: %d requests, 0 429s, %v elapsed, lower bound %v", n, elapsed.Round(time.Millisecond), lowerBound(n, ts))
}

// TestPaceOtherClient: another client spends the same budget directly; the governor sees
// it in the headers and slows down instead of causing 429s.
func TestPaceOtherClient(t *testing.T) {
	t.Parallel()
	// Windows three times longer than the other pace tests': how fresh the server's figures
	// are depends on scheduling, and on a loaded machine a 100 ms window is too short to
	// judge the governor by.
	ts := []throttler{{"short", 5, 300 * time.Millisecond}, {"medium", 30, 3 * time.Second}}
	lim := newNestLimiter(ts...)
	srv := httptest.NewServer(lim)
	defer srv.Close()
	g := pace.NewGovernor([]pace.Limit{{Name: "short", Max: 5, Per: 300 * time.Millisecond}, {Name: "medium", Max: 30, Per: 3 * time.Second}}, 0.1, nil)
	c, err := NewClient(testAccount("sv-dte", srv.URL, map[string]string{"api_key": "k"}), ClientOptions{Version: "test", Governor: g})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var rogueDone sync.WaitGroup
	rogueDone.Go(func() {
		tick := time.NewTicker(600 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/factura", nil)
			req.Header.Set("User-Agent", "rogue")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
	const n = 60
	statuses, elapsed := drive(t, c, n, 4)
	close(stop)
	rogueDone.Wait()
	lim.mu.Lock()
	defer lim.mu.Unlock()
	ours, theirs := count429(lim.arrivals, agent), count429(lim.arrivals, "rogue")
	rogue := 0
	for _, a := range lim.arrivals {
		if a.who == "rogue" {
			rogue++
		}
	}
	// Without the server's figures the governor would spend 27 of 30 a window while the
	// other client spends 5: a 429 every window. One per window while learning is allowed.
	if ours > len(ts) || theirs > len(ts) {
		t.Errorf("429s: ours %d, the other client's %d (statuses %v)", ours, theirs, statuses)
	}
	if got := maxInWindow(lim.arrivals, agent, 3*time.Second); got > pace.Usable(30, 0.1) {
		t.Errorf("%d of our requests in one window", got)
	}
	t.Logf("other client: %d requests (other client %d), 429s ours %d theirs %d, %v elapsed, lower bound alone %v",
		n, rogue, ours, theirs, elapsed.Round(time.Millisecond), lowerBound(n, ts))
}

// TestPaceExpressLearned: an account with no documented windows learns a fixed-window
// limiter's from its headers (epoch reset, Date, RateLimit fields) without a 429.
func TestPaceExpressLearned(t *testing.T) {
	t.Parallel()
	lim := &expressLimiter{limit: 40, window: time.Second}
	srv := httptest.NewServer(lim)
	defer srv.Close()
	g := pace.NewGovernor(nil, 0.1, nil)
	c, err := NewClient(testAccount("certifactu", srv.URL, map[string]string{"api_key": "k"}), ClientOptions{Version: "test", Governor: g})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	statuses, elapsed := drive(t, c, n, 4)
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if statuses[200] != n {
		t.Fatalf("statuses %v", statuses)
	}
	// Count per fixed window as the server does.
	per := map[int]int{}
	for _, a := range lim.arrivals {
		per[a.window]++
	}
	for w, k := range per {
		if k > pace.Usable(lim.limit, 0.1) {
			t.Errorf("window %d: %d requests, usable %d", w, k, pace.Usable(lim.limit, 0.1))
		}
	}
	ws := g.Windows(time.Now())
	if len(ws) != 1 || ws[0].Limit != 40 {
		t.Errorf("learned windows %+v", ws)
	}
	t.Logf("express: %d requests, 0 429s, %v elapsed, lower bound %v", n, elapsed.Round(time.Millisecond),
		lowerBound(n, []throttler{{"", lim.limit, lim.window}}))
}
