package poller

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// arrival is one request as a test server saw it.
type arrival struct {
	at     time.Time
	who    string // the User-Agent
	status int
	window int // expressLimiter: which fixed window counted it
}

// throttler is one named window of nestLimiter.
type throttler struct {
	name  string
	limit int
	ttl   time.Duration
}

// nestLimiter behaves like the stock NestJS throttler guard in front of the sv-dte
// gateway: a sliding log of hits per named throttler for the whole server (one client
// address), X-RateLimit-{Limit,Remaining,Reset}-<name> on success with Reset in delta
// seconds rounded up, and on going over a 429 with Retry-After-<name>, no X-RateLimit
// headers, and the client blocked for the throttler's whole ttl.
type nestLimiter struct {
	throttlers []throttler

	mu       sync.Mutex
	log      map[string][]time.Time
	blocked  map[string]time.Time
	arrivals []arrival
}

func newNestLimiter(ts ...throttler) *nestLimiter {
	return &nestLimiter{throttlers: ts, log: map[string][]time.Time{}, blocked: map[string]time.Time{}}
}

func ceilSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

func (l *nestLimiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	now := time.Now()
	status := http.StatusOK
	for _, t := range l.throttlers {
		hits := l.log[t.name]
		cut := 0
		for cut < len(hits) && !hits[cut].After(now.Add(-t.ttl)) {
			cut++
		}
		hits = hits[cut:]
		if until := l.blocked[t.name]; now.Before(until) {
			w.Header().Set("Retry-After-"+t.name, ceilSeconds(until.Sub(now)))
			status = http.StatusTooManyRequests
			l.log[t.name] = hits
			break
		}
		hits = append(hits, now)
		l.log[t.name] = hits
		if len(hits) > t.limit {
			l.blocked[t.name] = now.Add(t.ttl)
			w.Header().Set("Retry-After-"+t.name, ceilSeconds(t.ttl))
			status = http.StatusTooManyRequests
			break
		}
	}
	if status == http.StatusOK {
		for _, t := range l.throttlers {
			hits := l.log[t.name]
			w.Header().Set("X-RateLimit-Limit-"+t.name, strconv.Itoa(t.limit))
			w.Header().Set("X-RateLimit-Remaining-"+t.name, strconv.Itoa(max(0, t.limit-len(hits))))
			w.Header().Set("X-RateLimit-Reset-"+t.name, ceilSeconds(hits[0].Add(t.ttl).Sub(now)))
		}
	}
	l.arrivals = append(l.arrivals, arrival{at: now, who: r.UserAgent(), status: status})
	l.mu.Unlock()
	w.WriteHeader(status)
	if status == http.StatusTooManyRequests {
		fmt.Fprint(w, `{"message":"ThrottlerException: Too Many Requests","statusCode":429}`)
		return
	}
	fmt.Fprint(w, `{"data":[],"page":1,"total":0}`)
}

// expressLimiter behaves like stock express-rate-limit: a fixed window that starts at the
// first hit, X-RateLimit-Reset in epoch seconds beside the Date header, the IETF drafts'
// RateLimit and RateLimit-Policy fields, and Retry-After on a 429.
type expressLimiter struct {
	limit  int
	window time.Duration

	mu       sync.Mutex
	start    time.Time
	windows  int
	count    int
	arrivals []arrival
}

func (l *expressLimiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	now := time.Now()
	if l.start.IsZero() || !now.Before(l.start.Add(l.window)) {
		l.start, l.count = now, 0
		l.windows++
	}
	l.count++
	reset := l.start.Add(l.window)
	left := max(0, l.limit-l.count)
	status := http.StatusOK
	if l.count > l.limit {
		status = http.StatusTooManyRequests
	}
	l.arrivals = append(l.arrivals, arrival{at: now, who: r.UserAgent(), status: status, window: l.windows})
	l.mu.Unlock()
	h := w.Header()
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	h.Set("X-RateLimit-Limit", strconv.Itoa(l.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(left))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(reset.UnixMilli())/1000)), 10))
	h.Set("RateLimit-Policy", fmt.Sprintf(`"default"; q=%d; w=%s`, l.limit, ceilSeconds(l.window)))
	h.Set("RateLimit", fmt.Sprintf(`"default"; r=%d; t=%s`, left, ceilSeconds(reset.Sub(now))))
	if status == http.StatusTooManyRequests {
		h.Set("Retry-After", ceilSeconds(reset.Sub(now)))
		w.WriteHeader(status)
		fmt.Fprint(w, `{"message":"Too many requests, please try again later."}`)
		return
	}
	fmt.Fprint(w, `{"data":[]}`)
}

// maxInWindow is the most arrivals of who (everyone when "") in any interval of length
// d, as a sliding-log server counts them.
func maxInWindow(as []arrival, who string, d time.Duration) int {
	var times []time.Time
	for _, a := range as {
		if who == "" || a.who == who {
			times = append(times, a.at)
		}
	}
	best, lo := 0, 0
	for hi := range times {
		for !times[lo].After(times[hi].Add(-d)) {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

func count429(as []arrival, who string) int {
	n := 0
	for _, a := range as {
		if a.who == who && a.status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}
