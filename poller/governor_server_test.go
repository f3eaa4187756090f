package poller

import (
	"context"
	"net/http"
	"sync/atomic"

	"emitop/model"
	"strconv"
	"testing"
	"time"
)

// drainStated sends n requests through a governor of provider's documented windows
// against a server model whose fixed window is limit per period, stated in X-RateLimit-*
// headers with an epoch reset (Certifactu's form); it returns the time the batch took
// on a fake clock and how many 429s the server answered.
func drainStated(t *testing.T, provider string, limit int, period time.Duration, n int) (time.Duration, int) {
	t.Helper()
	clock := newFakeClock()
	g := NewGovernor(provider, 0.1, clock)
	var start time.Time
	count, refused := 0, 0
	begin := clock.Now()
	for range n {
		tk, ok := try(g, Write)
		for ; !ok; tk, ok = try(g, Write) {
			clock.Advance(50 * time.Millisecond)
		}
		now := clock.Now()
		if start.IsZero() || !now.Before(start.Add(period)) {
			start, count = now, 0
		}
		count++
		status := http.StatusOK
		if count > limit {
			status, refused = http.StatusTooManyRequests, refused+1
		}
		end := start.Add(period)
		h := header("Date", now.Format(http.TimeFormat),
			"X-RateLimit-Limit", strconv.Itoa(limit),
			"X-RateLimit-Remaining", strconv.Itoa(max(0, limit-count)),
			"X-RateLimit-Reset", strconv.FormatInt((end.UnixNano()+int64(time.Second)-1)/int64(time.Second), 10))
		g.Done(tk, &Response{Status: status, Header: h}, nil)
		clock.Advance(20 * time.Millisecond) // the request's own round trip
	}
	return clock.Now().Sub(begin), refused
}

// TestGovernorServerWins: an account whose server states a shorter window than the one
// documented (a stock limiter of 20 per 10 s where Certifactu documents 100 per minute)
// is paced by what the server says from the next request on: the stated limit and the
// stated window length replace the documented ones, so a batch drains at the server's
// pace instead of 20 per minute, without a 429.
func TestGovernorServerWins(t *testing.T) {
	const n = 200
	took, refused := drainStated(t, "certifactu", 20, 10*time.Second, n)
	// 18 usable per 10 s window: 200 requests need 11 full windows after the first.
	ideal := time.Duration((n+17)/18-1) * 10 * time.Second
	t.Logf("%d requests against a stated 20/10s under a documented 100/min: %v (ideal %v), %d 429s", n, took, ideal, refused)
	if refused != 0 {
		t.Errorf("%d 429s", refused)
	}
	if took > ideal+ideal/4 {
		t.Errorf("took %v: the documented window still paces the batch (ideal %v)", took, ideal)
	}
	// A server that states the documented window changes nothing.
	took, refused = drainStated(t, "certifactu", 100, time.Minute, n)
	if ideal := time.Duration((n+89)/90-1) * time.Minute; refused != 0 || took > ideal+ideal/4 {
		t.Errorf("documented window: %v (ideal %v), %d 429s", took, ideal, refused)
	}
	// A reset stated with the documented limit (what is left of the window, as Factus's
	// 429 says it) leaves the documented length.
	g := NewGovernor("factus", 0.1, newFakeClock())
	now := g.clock.Now()
	g.learn(model.Window{Limit: 80, Remaining: 0, Reset: 7 * time.Second}, now, false)
	if w := g.windows[0]; w.length != time.Minute || w.limit != 80 {
		t.Errorf("factus: %d per %v after a reset of 7 s at the documented limit", w.limit, w.length)
	}
	g.learn(model.Window{Limit: 60, Remaining: 59, Reset: model.Unknown}, now, false)
	g.learn(model.Window{Limit: 60, Remaining: 40, Reset: 30 * time.Second}, now, false)
	if w := g.windows[0]; w.length != 30*time.Second || w.limit != 60 {
		t.Errorf("factus: %d per %v after the server stated 60 and a reset of 30 s", w.limit, w.length)
	}
}

// TestStatedWaitHoldsThePoll: a 503 that states a wait (Retry-After: 54) is not tried
// again at once; it holds the account: no request leaves before the wait has passed. A 503 that
// states none is tried again with backoff, and holds nothing.
func TestStatedWaitHoldsThePoll(t *testing.T) {
	var calls atomic.Int32
	retryAfter := "54"
	c, _ := newTestClient(t, "sv-dte", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"message":"Service Unavailable","statusCode":503}`))
	}), map[string]string{"api_key": "k"})
	res, err := c.Do(context.Background(), Poll, http.MethodGet, "/factura", nil)
	if err != nil || res.Response.Status != 503 || calls.Load() != 1 {
		t.Fatalf("stated wait: %v, %d calls", err, calls.Load())
	}
	if left := time.Until(c.Governor().Held()); left < 53*time.Second || left > 55*time.Second {
		t.Errorf("held for %v, want the 54 s the server asked", left)
	}
	// The interval is not stretched: the polls during the wait send nothing and count as
	// failed (TestAccountDownAndBack), so the account's health follows the server's absence.
	if iv := c.Governor().PollInterval(5 * time.Second); iv != 5*time.Second {
		t.Errorf("next poll in %v", iv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, Write, http.MethodGet, "/factura", nil); err == nil || calls.Load() != 1 {
		t.Errorf("during the hold a request went out: %v, %d calls", err, calls.Load())
	}

	retryAfter = ""
	c2, _ := newTestClient(t, "sv-dte", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}), map[string]string{"api_key": "k"})
	calls.Store(0)
	if _, err := c2.Do(context.Background(), Poll, http.MethodGet, "/factura", nil); err != nil || calls.Load() != 1+int32(quick.Retries) {
		t.Errorf("no stated wait: %v, %d calls, want %d", err, calls.Load(), 1+quick.Retries)
	}
	if held := c2.Governor().Held(); held.After(time.Now()) {
		t.Errorf("a 503 without a wait holds until %v", held)
	}
}
