package sandbox

import (
	"net/http"
	"strconv"
	"time"
)

// Rate is a fixed window: Limit requests per Period.
type Rate struct {
	Limit  int
	Period time.Duration
}

// Throttler is one named window of a NestJS throttler: Limit hits per TTL, counted as a
// sliding log; going over blocks the client for a whole TTL.
type Throttler struct {
	Name  string
	Limit int
	TTL   time.Duration
}

// limiter is one account's rate limit in its provider's header dialect.
type limiter interface {
	// take counts one client request at now, sets the dialect's headers on h and reports
	// whether it may proceed; when not, retry is the wait the provider announces.
	take(now time.Time, h http.Header) (ok bool, retry time.Duration)
	// spend counts one request of another client at t, only when every window has room
	// (production traffic respects the limits; it never causes a block).
	spend(t time.Time) bool
	// span is the longest window: production traffic older than that cannot matter.
	span() time.Duration
}

// headerStyle is how a fixed window announces itself.
type headerStyle int

const (
	styleAlegra  headerStyle = iota // X-Rate-Limit-*, Reset in delta seconds, on every answer
	styleEpoch                      // X-RateLimit-*, Reset in epoch seconds (with Date)
	styleLaravel                    // X-RateLimit-Limit/Remaining; Retry-After and Reset on 429
	styleNone                       // no headers at all (alforse login)
)

// fixedWindow counts requests in consecutive windows that start with the first request
// after the previous one ended.
type fixedWindow struct {
	rate  Rate
	style headerStyle
	start time.Time
	count int
}

func (f *fixedWindow) roll(now time.Time) {
	if f.start.IsZero() || !now.Before(f.start.Add(f.rate.Period)) {
		f.start, f.count = now, 0
	}
}

func (f *fixedWindow) take(now time.Time, h http.Header) (bool, time.Duration) {
	f.roll(now)
	f.count++
	ok := f.count <= f.rate.Limit
	end := f.start.Add(f.rate.Period)
	left := end.Sub(now)
	remaining := max(0, f.rate.Limit-f.count)
	limit := strconv.Itoa(f.rate.Limit)
	switch f.style {
	case styleAlegra:
		h.Set("X-Rate-Limit-Limit", limit)
		h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(ceilSeconds(left), 10))
	case styleEpoch:
		h.Set("X-RateLimit-Limit", limit)
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(epochCeil(end), 10))
	case styleLaravel:
		h.Set("X-RateLimit-Limit", limit)
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		if !ok {
			h.Set("Retry-After", strconv.FormatInt(ceilSeconds(left), 10))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(epochCeil(end), 10))
		}
	}
	return ok, left
}

func (f *fixedWindow) spend(t time.Time) bool {
	f.roll(t)
	if f.count >= f.rate.Limit {
		return false
	}
	f.count++
	return true
}

func (f *fixedWindow) span() time.Duration { return f.rate.Period }

// nestWindow is one named throttler's state: its log of hits and its block.
type nestWindow struct {
	Throttler
	hits    []time.Time
	blocked time.Time // blocked until; zero when not blocked
}

func (w *nestWindow) prune(now time.Time) {
	cut := now.Add(-w.TTL)
	i := 0
	for i < len(w.hits) && !w.hits[i].After(cut) {
		i++
	}
	if i > 0 {
		w.hits = append(w.hits[:0], w.hits[i:]...)
	}
}

// reset is when the oldest hit in the log leaves it.
func (w *nestWindow) reset(now time.Time) time.Time {
	if len(w.hits) == 0 {
		return now
	}
	return w.hits[0].Add(w.TTL)
}

// nestThrottler is the stock NestJS throttler (v5+) with several named throttlers.
// With epoch set it speaks the documented unsuffixed form instead.
type nestThrottler struct {
	windows []*nestWindow
	epoch   bool
}

func newNestThrottler(ts []Throttler, epoch bool) *nestThrottler {
	n := &nestThrottler{epoch: epoch}
	for _, t := range ts {
		n.windows = append(n.windows, &nestWindow{Throttler: t})
	}
	return n
}

// take runs the throttlers in order, as the guard does: a blocked or exceeded throttler
// stops the request with its own Retry-After-<name>, and the 429 carries no X-RateLimit-*.
func (n *nestThrottler) take(now time.Time, h http.Header) (bool, time.Duration) {
	for _, w := range n.windows {
		if now.Before(w.blocked) {
			return n.refuse(h, w, w.blocked.Sub(now), now)
		}
		w.prune(now)
		w.hits = append(w.hits, now)
		if len(w.hits) > w.Limit {
			w.blocked = now.Add(w.TTL)
			return n.refuse(h, w, w.TTL, now)
		}
	}
	if n.epoch {
		// The documented form shows one window: the one with the fewest requests left.
		best := n.windows[0]
		for _, w := range n.windows[1:] {
			if w.Limit-len(w.hits) <= best.Limit-len(best.hits) {
				best = w
			}
		}
		h.Set("X-RateLimit-Limit", strconv.Itoa(best.Limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, best.Limit-len(best.hits))))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(epochCeil(best.reset(now)), 10))
		return true, 0
	}
	for _, w := range n.windows {
		h.Set("X-RateLimit-Limit-"+w.Name, strconv.Itoa(w.Limit))
		h.Set("X-RateLimit-Remaining-"+w.Name, strconv.Itoa(max(0, w.Limit-len(w.hits))))
		h.Set("X-RateLimit-Reset-"+w.Name, strconv.FormatInt(ceilSeconds(w.reset(now).Sub(now)), 10))
	}
	return true, 0
}

func (n *nestThrottler) refuse(h http.Header, w *nestWindow, wait time.Duration, now time.Time) (bool, time.Duration) {
	secs := strconv.FormatInt(ceilSeconds(wait), 10)
	if n.epoch {
		h.Set("X-RateLimit-Limit", strconv.Itoa(w.Limit))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(epochCeil(now.Add(wait)), 10))
		h.Set("Retry-After", secs)
	} else {
		h.Set("Retry-After-"+w.Name, secs)
	}
	return false, wait
}

func (n *nestThrottler) spend(t time.Time) bool {
	for _, w := range n.windows {
		w.prune(t)
		if t.Before(w.blocked) || len(w.hits) >= w.Limit {
			return false
		}
	}
	for _, w := range n.windows {
		w.hits = append(w.hits, t)
	}
	return true
}

func (n *nestThrottler) span() time.Duration {
	var d time.Duration
	for _, w := range n.windows {
		d = max(d, w.TTL)
	}
	return d
}

// ceilSeconds rounds d up to whole seconds, as the throttlers announce it.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// epochCeil is t in epoch seconds, rounded up so that a client waiting until then is late
// rather than early.
func epochCeil(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
