package sandbox

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 16, 10, 30, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// rateHeaders are the rate-limit headers of h, lower-cased, for comparison.
func rateHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		k = strings.ToLower(k)
		if strings.Contains(k, "rate") || strings.HasPrefix(k, "retry-after") {
			out[k] = v[0]
		}
	}
	return out
}

func TestNestThrottlerSuffixed(t *testing.T) {
	n := newNestThrottler([]Throttler{{"short", 2, time.Second}, {"medium", 3, 10 * time.Second}}, false)
	steps := []struct {
		ms   int
		ok   bool
		want map[string]string
	}{
		{0, true, map[string]string{
			"x-ratelimit-limit-short": "2", "x-ratelimit-remaining-short": "1", "x-ratelimit-reset-short": "1",
			"x-ratelimit-limit-medium": "3", "x-ratelimit-remaining-medium": "2", "x-ratelimit-reset-medium": "10"}},
		{100, true, map[string]string{
			"x-ratelimit-limit-short": "2", "x-ratelimit-remaining-short": "0", "x-ratelimit-reset-short": "1",
			"x-ratelimit-limit-medium": "3", "x-ratelimit-remaining-medium": "1", "x-ratelimit-reset-medium": "10"}},
		// Over short: blocked for its whole TTL, Retry-After-short only, no X-RateLimit-*.
		{200, false, map[string]string{"retry-after-short": "1"}},
		// The log alone would allow this (the hits at 0 and 100 ms expired), the block does not.
		{1150, false, map[string]string{"retry-after-short": "1"}},
		// Block over; medium holds the hits at 0 and 100 ms (the refused one never reached it).
		{1250, true, map[string]string{
			"x-ratelimit-limit-short": "2", "x-ratelimit-remaining-short": "1", "x-ratelimit-reset-short": "1",
			"x-ratelimit-limit-medium": "3", "x-ratelimit-remaining-medium": "0", "x-ratelimit-reset-medium": "9"}},
		{2500, false, map[string]string{"retry-after-medium": "10"}},
		// The sliding log would let a hit through at 10 s; the block holds until 12.5 s.
		{10500, false, map[string]string{"retry-after-medium": "2"}},
		{12500, true, map[string]string{
			"x-ratelimit-limit-short": "2", "x-ratelimit-remaining-short": "1", "x-ratelimit-reset-short": "1",
			"x-ratelimit-limit-medium": "3", "x-ratelimit-remaining-medium": "2", "x-ratelimit-reset-medium": "10"}},
	}
	for _, st := range steps {
		h := http.Header{}
		ok, _ := n.take(at(st.ms), h)
		if ok != st.ok {
			t.Fatalf("at %d ms: ok = %v, want %v", st.ms, ok, st.ok)
		}
		if got := rateHeaders(h); !equalMaps(got, st.want) {
			t.Fatalf("at %d ms: headers %v, want %v", st.ms, got, st.want)
		}
	}
}

func TestNestThrottlerEpoch(t *testing.T) {
	n := newNestThrottler([]Throttler{{"short", 3, time.Second}, {"long", 100, time.Minute}}, true)
	h := http.Header{}
	n.take(t0, h)
	// The fewest left is short: 2 of 3, its oldest hit leaves at t0+1 s.
	want := map[string]string{"x-ratelimit-limit": "3", "x-ratelimit-remaining": "2",
		"x-ratelimit-reset": strconv.FormatInt(t0.Unix()+1, 10)}
	if got := rateHeaders(h); !equalMaps(got, want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	n.take(at(10), http.Header{})
	n.take(at(20), http.Header{})
	h = http.Header{}
	if ok, _ := n.take(at(500), h); ok {
		t.Fatal("fourth hit within a second passed")
	}
	want = map[string]string{"x-ratelimit-limit": "3", "x-ratelimit-remaining": "0",
		"x-ratelimit-reset": strconv.FormatInt(t0.Unix()+2, 10), "retry-after": "1"}
	if got := rateHeaders(h); !equalMaps(got, want) {
		t.Fatalf("429 headers %v, want %v", got, want)
	}
}

func TestFixedWindowStyles(t *testing.T) {
	end := strconv.FormatInt(t0.Unix()+60, 10)
	tests := []struct {
		style     headerStyle
		first     map[string]string // after the first of two allowed requests, 15 s in the window
		refused   map[string]string // the third request
		retryWant time.Duration
	}{
		{styleAlegra,
			map[string]string{"x-rate-limit-limit": "2", "x-rate-limit-remaining": "1", "x-rate-limit-reset": "60"},
			map[string]string{"x-rate-limit-limit": "2", "x-rate-limit-remaining": "0", "x-rate-limit-reset": "45"}, 45 * time.Second},
		{styleEpoch,
			map[string]string{"x-ratelimit-limit": "2", "x-ratelimit-remaining": "1", "x-ratelimit-reset": end},
			map[string]string{"x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "x-ratelimit-reset": end}, 45 * time.Second},
		{styleLaravel,
			map[string]string{"x-ratelimit-limit": "2", "x-ratelimit-remaining": "1"},
			map[string]string{"x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "retry-after": "45", "x-ratelimit-reset": end}, 45 * time.Second},
		{styleNone, map[string]string{}, map[string]string{}, 45 * time.Second},
	}
	for _, tt := range tests {
		f := &fixedWindow{rate: Rate{2, time.Minute}, style: tt.style}
		h := http.Header{}
		if ok, _ := f.take(t0, h); !ok || !equalMaps(rateHeaders(h), tt.first) {
			t.Errorf("style %d first: ok=%v headers %v, want %v", tt.style, ok, rateHeaders(h), tt.first)
		}
		f.take(at(1000), http.Header{})
		h = http.Header{}
		ok, retry := f.take(at(15000), h)
		if ok || retry != tt.retryWant || !equalMaps(rateHeaders(h), tt.refused) {
			t.Errorf("style %d refused: ok=%v retry=%v headers %v, want %v", tt.style, ok, retry, rateHeaders(h), tt.refused)
		}
		if ok, _ := f.take(at(60000), http.Header{}); !ok {
			t.Errorf("style %d: new window refused", tt.style)
		}
	}
}

func TestProductionSpendRespectsLimits(t *testing.T) {
	n := newNestThrottler([]Throttler{{"short", 3, time.Second}}, false)
	spent := 0
	for ms := 0; ms < 1000; ms += 100 {
		if n.spend(at(ms)) {
			spent++
		}
	}
	if spent != 3 {
		t.Fatalf("spent %d in one second, want 3", spent)
	}
	if ok, _ := n.take(at(999), http.Header{}); ok {
		t.Fatal("client passed a window production traffic had spent")
	}
	f := &fixedWindow{rate: Rate{5, time.Minute}}
	for range 10 {
		f.spend(t0)
	}
	if f.count != 5 {
		t.Fatalf("fixed window count %d after spending, want 5 (never over)", f.count)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
