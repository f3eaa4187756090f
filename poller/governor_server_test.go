package poller

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"emitop/pace"
)

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
	res, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/factura", nil)
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
	if _, err := c.Do(ctx, pace.Write, http.MethodGet, "/factura", nil); err == nil || calls.Load() != 1 {
		t.Errorf("during the hold a request went out: %v, %d calls", err, calls.Load())
	}

	retryAfter = ""
	c2, _ := newTestClient(t, "sv-dte", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}), map[string]string{"api_key": "k"})
	calls.Store(0)
	if _, err := c2.Do(context.Background(), pace.Poll, http.MethodGet, "/factura", nil); err != nil || calls.Load() != 1+int32(quick.Retries) {
		t.Errorf("no stated wait: %v, %d calls, want %d", err, calls.Load(), 1+quick.Retries)
	}
	if held := c2.Governor().Held(); held.After(time.Now()) {
		t.Errorf("a 503 without a wait holds until %v", held)
	}
}
