package pace

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff says how often and how long a read that failed transiently is tried again.
// Writes are never tried again automatically.
type Backoff struct {
	Base    time.Duration // the first attempt's ceiling
	Cap     time.Duration // no sleep is longer
	Retries int           // attempts after the first
}

// DefaultBackoff is what a Client uses unless told otherwise.
var DefaultBackoff = Backoff{Base: 500 * time.Millisecond, Cap: 30 * time.Second, Retries: 3}

// Delay is the sleep before retry number attempt (from 0), with full jitter:
// rand(0, min(cap, base·2^attempt)).
func (b Backoff) Delay(attempt int) time.Duration {
	ceiling := b.Base
	for i := 0; i < attempt && ceiling < b.Cap; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, b.Cap)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// Sleep waits d on clock, or until ctx ends (its error then).
func Sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	fire, stop := clock.Timer(d)
	defer stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-fire:
		return nil
	}
}
