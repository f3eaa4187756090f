package poller

import (
	"math"
	"sort"
	"time"

	"emitop/model"
)

// span is one window as the drain estimate sees it: how many requests it admits per
// length, and the moments of the requests it already holds.
type span struct {
	usable int
	length time.Duration
	hits   []time.Time // sorted
}

// drain is when the last of n requests sent one after the other completes, each taking
// latency, starting no earlier than start: every request waits until each window holds
// fewer than usable requests in the length before it, and counts when it completes (as
// the governor does). It is the schedule of the fastest client that never meets a 429.
func drain(spans []span, start time.Time, n int, latency time.Duration) time.Time {
	t := start
	for range n {
		for _, s := range spans {
			if k := len(s.hits); k >= s.usable {
				if free := s.hits[k-s.usable].Add(s.length); free.After(t) {
					t = free
				}
			}
		}
		t = t.Add(latency)
		for i := range spans {
			spans[i].hits = append(spans[i].hits, t)
		}
	}
	return t
}

// DrainBound is the least time n requests take against limits, counted from the first
// request to the last, when each window may hold at most limit·(1−reserve) requests
// (reserve 0: the whole limit): the lower bound any client meets.
func DrainBound(limits []Limit, reserve float64, n int) time.Duration {
	if n <= 1 {
		return 0
	}
	spans := make([]span, 0, len(limits))
	for _, l := range limits {
		u := max(int(math.Floor(float64(l.Max)*(1-reserve)+1e-9)), 1)
		spans = append(spans, span{usable: u, length: l.Per})
	}
	var zero time.Time
	spans = addFirst(spans, zero)
	return drain(spans, zero, n-1, 0).Sub(zero)
}

func addFirst(spans []span, at time.Time) []span {
	for i := range spans {
		spans[i].hits = append(spans[i].hits, at)
	}
	return spans
}

// DrainTime is how long n requests of the retry engine (kind Write) take at the
// account's current budget, one after the other, each taking latency: what is left of
// every window (own requests, requests in flight, what the server said others spent),
// the reserve, and any hold after a 429. Windows whose limit is unknown are not counted.
func (g *Governor) DrainTime(n int, latency time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	g.mu.Lock()
	now := g.clock.Now()
	start := now
	if held := later(g.holdUntil, g.awayUntil); held.After(start) {
		start = held
	}
	spans := make([]span, 0, len(g.windows))
	for _, w := range g.windows {
		if w.limit == model.Unknown {
			continue
		}
		w.prune(now)
		s := span{usable: g.usable(w.limit), length: w.length}
		for _, h := range w.ledger {
			s.hits = append(s.hits, h.at)
		}
		for range g.inflight {
			s.hits = append(s.hits, now)
		}
		if w.foreign > 0 {
			// Others' requests count until the server's reset, else one length after it spoke.
			until := w.seen.Add(w.length)
			if w.resetAt.After(now) {
				until = w.resetAt
			}
			for range w.foreign {
				s.hits = append(s.hits, until.Add(-w.length))
			}
		}
		sort.Slice(s.hits, func(i, j int) bool { return s.hits[i].Before(s.hits[j]) })
		spans = append(spans, s)
	}
	g.mu.Unlock()
	return drain(spans, start, n, latency).Sub(now)
}
