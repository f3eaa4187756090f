package poller

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"emitop/model"
)

// Windows reads every rate-limit window a response's headers describe. now is when the
// response was received; an epoch reset is measured against the Date header when present.
func Windows(h http.Header, now time.Time) []model.Window {
	clock := serverClock(h, now)
	byName := map[string]*model.Window{}
	var order []string
	get := func(name string) *model.Window {
		if w, ok := byName[name]; ok {
			return w
		}
		w := &model.Window{Name: name, Limit: model.Unknown, Remaining: model.Unknown, Reset: -1, Observed: now}
		byName[name] = w
		order = append(order, name)
		return w
	}
	for key, vals := range h {
		if len(vals) == 0 {
			continue
		}
		k := strings.ToLower(key)
		for _, prefix := range []string{"x-rate-limit-", "x-ratelimit-", "ratelimit-"} {
			rest, ok := strings.CutPrefix(k, prefix)
			if !ok {
				continue
			}
			field, name, _ := strings.Cut(rest, "-")
			n, err := strconv.ParseInt(strings.TrimSpace(vals[0]), 10, 64)
			if err != nil || n < 0 {
				break
			}
			switch field {
			case "limit":
				get(name).Limit = clampInt(n)
			case "remaining":
				get(name).Remaining = clampInt(n)
			case "reset":
				get(name).Reset = resetDuration(n, clock)
			}
			break
		}
	}
	out := make([]model.Window, 0, len(order))
	for _, name := range order {
		out = append(out, *byName[name])
	}
	return out
}

// WaitHint is the longest explicit wait in the headers: Retry-After, Retry-After-<name>,
// and the reset of every spent window.
func WaitHint(h http.Header, windows []model.Window, now time.Time) (time.Duration, bool) {
	var wait time.Duration
	found := false
	take := func(d time.Duration) {
		if !found || d > wait {
			wait, found = d, true
		}
	}
	for key, vals := range h {
		k := strings.ToLower(key)
		if k != "retry-after" && !strings.HasPrefix(k, "retry-after-") || len(vals) == 0 {
			continue
		}
		if d, ok := parseRetryAfter(vals[0], serverClock(h, now)); ok {
			take(d)
		}
	}
	for _, w := range windows {
		if w.Spent() && w.HasReset() {
			take(w.Reset)
		}
	}
	return wait, found
}

// parseRetryAfter reads delta seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return secondsDuration(n), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}

// serverClock is the response's Date header when it has a valid one, else now.
func serverClock(h http.Header, now time.Time) time.Time {
	if d := h.Get("Date"); d != "" {
		if t, err := http.ParseTime(d); err == nil {
			return t
		}
	}
	return now
}

// maxWait caps any stated wait: a header claiming years is absurd, a day is already long.
const maxWait = 24 * time.Hour

// resetDuration disambiguates a reset by size: epoch ms, epoch s, or delta seconds.
func resetDuration(n int64, clock time.Time) time.Duration {
	var at time.Time
	switch {
	case n > 1e12:
		at = time.UnixMilli(n)
	case n > 1e9:
		at = time.Unix(n, 0)
	default:
		return secondsDuration(n)
	}
	d := at.Sub(clock)
	if d < 0 {
		return 0
	}
	if d > maxWait {
		return maxWait
	}
	return d
}

func secondsDuration(n int64) time.Duration {
	if n > int64(maxWait/time.Second) {
		return maxWait
	}
	return time.Duration(n) * time.Second
}

func clampInt(n int64) int {
	const maxInt = 1 << 31
	if n > maxInt {
		return maxInt
	}
	return int(n)
}
