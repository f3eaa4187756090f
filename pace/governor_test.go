package pace

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"emitop/internal/fakeclock"
	"emitop/model"
)

// documented holds the windows the providers document (their dialects, in package
// poller, seed governors with them): the tests pace accounts of those providers.
var documented = map[string][]Limit{
	"alegra":     {{Max: 150, Per: time.Minute}},
	"sv-dte":     {{Name: "short", Max: 3, Per: time.Second}, {Name: "medium", Max: 20, Per: 10 * time.Second}, {Name: "long", Max: 100, Per: time.Minute}},
	"certifactu": {{Max: 100, Per: time.Minute}},
	"factus":     {{Max: 80, Per: time.Minute}},
	"alforse":    nil,
}

// try acquires a ticket only if one is available right now.
func try(g *Governor, kind Kind) (Ticket, bool) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t, err := g.Acquire(ctx, kind)
	return t, err == nil
}

// spend acquires and completes n requests of kind at once, failing if any must wait.
func spend(t *testing.T, g *Governor, kind Kind, n int) {
	t.Helper()
	for i := range n {
		tk, ok := try(g, kind)
		if !ok {
			t.Fatalf("request %d of %d had to wait", i+1, n)
		}
		g.Done(tk, 200, nil, nil)
	}
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestGovernorReserveAndPollShare(t *testing.T) {
	tests := []struct {
		limit, usable, polls int
		reserve              float64
	}{
		{limit: 10, reserve: 0.1, usable: 9, polls: 4},
		{limit: 3, reserve: 0.1, usable: 2, polls: 1},
		{limit: 150, reserve: 0.1, usable: 135, polls: 67},
		{limit: 100, reserve: 0, usable: 100, polls: 50},
		{limit: 1, reserve: 0.5, usable: 1, polls: 1},
	}
	for _, tt := range tests {
		clock := fakeclock.New()
		g := NewGovernor([]Limit{{Name: "w", Max: tt.limit, Per: time.Second}}, tt.reserve, clock)
		spend(t, g, Poll, tt.polls)
		if _, ok := try(g, Poll); ok {
			t.Errorf("limit %d: poll %d went beyond the poll share", tt.limit, tt.polls+1)
		}
		spend(t, g, Write, tt.usable-tt.polls)
		if _, ok := try(g, Write); ok {
			t.Errorf("limit %d reserve %v: write went beyond usable %d", tt.limit, tt.reserve, tt.usable)
		}
		if _, ok := try(g, Auth); ok {
			t.Errorf("limit %d: auth spent the reserve", tt.limit)
		}
		clock.Advance(time.Second)
		spend(t, g, Write, tt.usable)
	}
}

func TestGovernorInFlightCounts(t *testing.T) {
	g := NewGovernor([]Limit{{Name: "", Max: 4, Per: time.Second}}, 0, fakeclock.New())
	var held []Ticket
	for range 4 {
		tk, ok := try(g, Write)
		if !ok {
			t.Fatal("in-flight request refused before the limit")
		}
		held = append(held, tk)
	}
	if _, ok := try(g, Write); ok {
		t.Fatal("a fifth request went while four were in flight")
	}
	g.Release(held[0])
	if _, ok := try(g, Write); !ok {
		t.Fatal("a released ticket did not free its place")
	}
}

// TestGovernorCountsAtCompletion: a hit counts from when it completed, not when it was
// sent, so a slow response keeps its place in the window longer.
func TestGovernorCountsAtCompletion(t *testing.T) {
	clock := fakeclock.New()
	g := NewGovernor([]Limit{{Name: "", Max: 2, Per: time.Second}}, 0, clock)
	slow, _ := try(g, Write)
	clock.Advance(400 * time.Millisecond)
	g.Done(slow, 200, nil, nil)
	spend(t, g, Write, 1)
	clock.Advance(700 * time.Millisecond) // 1.1 s after sending the slow one, 0.7 s after it completed
	if _, ok := try(g, Write); ok {
		t.Fatal("the slow request's hit left the window counted from its send time")
	}
	clock.Advance(301 * time.Millisecond)
	if _, ok := try(g, Write); !ok {
		t.Fatal("the hit did not leave the window one length after completion")
	}
}

func TestGovernorLearnsOtherClients(t *testing.T) {
	clock := fakeclock.New()
	g := NewGovernor(documented["certifactu"], 0.1, clock) // 100/60s documented
	tk, _ := try(g, Write)
	// The server says 50 remain: someone else spent 49 besides our 1.
	g.Done(tk, 200, header("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "50", "X-RateLimit-Reset", "30"), nil)
	w := g.Windows(clock.Now())
	if len(w) != 1 || w[0].Limit != 100 || w[0].Remaining != 50 || w[0].Reset != 30*time.Second {
		t.Fatalf("windows = %+v", w)
	}
	spend(t, g, Write, 40) // usable 90: 90 - 50 spent
	if _, ok := try(g, Write); ok {
		t.Fatal("governor spent the reserve the server's figures leave")
	}
	clock.Advance(time.Minute + time.Millisecond)
	spend(t, g, Write, 90)
}

// TestGovernorLateAnswerKeepsOthers: of two requests in flight, the later one's answer
// arrives first and shows what another client spent; the earlier one's answer, read after
// it, counts what the server had seen before and must not make the governor forget it.
func TestGovernorLateAnswerKeepsOthers(t *testing.T) {
	clock := fakeclock.New()
	g := NewGovernor(documented["certifactu"], 0.1, clock) // 100/60s documented, 90 usable
	early, _ := try(g, Write)
	clock.Advance(10 * time.Millisecond)
	late, _ := try(g, Write)
	clock.Advance(10 * time.Millisecond)
	// Between the two, another client spent 40: the later request sees 100-42 left.
	g.Done(late, 200, header("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "58", "X-RateLimit-Reset", "50"), nil)
	g.Done(early, 200, header("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "99", "X-RateLimit-Reset", "50"), nil)
	if w := g.Windows(clock.Now()); len(w) != 1 || w[0].Remaining != 58 {
		t.Fatalf("windows = %+v after the earlier request's answer came last", w)
	}
	spend(t, g, Write, 48) // usable 90: 42 spent
	if _, ok := try(g, Write); ok {
		t.Fatal("the earlier request's late answer made the governor forget what the other client spent")
	}
}

func TestGovernorAddsHeaderWindows(t *testing.T) {
	clock := fakeclock.New()
	g := NewGovernor(documented["alforse"], 0.1, clock) // nothing documented
	first, _ := try(g, Poll)
	if _, ok := try(g, Poll); ok {
		t.Fatal("a second request went before anything was learned")
	}
	h := header("X-RateLimit-Limit-burst", "10", "X-RateLimit-Remaining-burst", "9", "X-RateLimit-Reset-burst", "2")
	g.Done(first, 200, h, nil)
	w := g.Windows(clock.Now())
	if len(w) != 1 || w[0].Name != "burst" || w[0].Limit != 10 || w[0].Remaining != 9 {
		t.Fatalf("windows = %+v", w)
	}
	spend(t, g, Write, 8)
	if _, ok := try(g, Write); ok {
		t.Fatal("learned window's reserve spent")
	}
	clock.Advance(2*time.Second + time.Millisecond)
	spend(t, g, Write, 9)
}

func TestGovernorHoldsAfter429(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		status   int
		header   http.Header
		p        *model.Problem
		hold     time.Duration
	}{
		{"retry-after named", "sv-dte", 429, header("Retry-After-medium", "7", "Retry-After-short", "1"), nil, 7 * time.Second},
		{"retry-after date", "alegra", 429, header("Date", "Sun, 01 Mar 2026 12:00:00 GMT", "Retry-After", "Sun, 01 Mar 2026 12:00:20 GMT"), nil, 20 * time.Second},
		{"spent window", "certifactu", 429, header("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "12"), nil, 12 * time.Second},
		{"body wait", "certifactu", 429, header("Retry-After", "3"), &model.Problem{Wait: 45 * time.Second, HasWait: true}, 45 * time.Second},
		{"no hint sv-dte", "sv-dte", 429, nil, nil, time.Minute},
		{"no hint unknown windows", "alforse", 429, nil, nil, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New()
			g := NewGovernor(documented[tt.provider], 0.1, clock)
			tk, _ := try(g, Write)
			g.Done(tk, tt.status, tt.header, tt.p)
			if got := g.Held().Sub(clock.Now()); got != tt.hold {
				t.Fatalf("hold = %v, want %v", got, tt.hold)
			}
			if _, ok := try(g, Auth); ok {
				t.Fatal("a request went during the hold")
			}
			if iv := g.PollInterval(time.Second); iv < tt.hold {
				t.Errorf("poll interval %v during a %v hold", iv, tt.hold)
			}
			clock.Advance(tt.hold)
			if _, ok := try(g, Write); !ok {
				t.Fatal("still held after the wait")
			}
		})
	}
}

func TestGovernorWakesWaiters(t *testing.T) {
	clock := fakeclock.New()
	g := NewGovernor([]Limit{{Name: "", Max: 1, Per: time.Second}}, 0, clock)
	spend(t, g, Write, 1)
	got := make(chan error, 1)
	go func() {
		_, err := g.Acquire(context.Background(), Write)
		got <- err
	}()
	// Advance until the waiter's timer exists, then past the window.
	for clock.Timers() == 0 {
		time.Sleep(time.Millisecond)
	}
	clock.Advance(time.Second)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := g.Acquire(ctx, Write)
		got <- err
	}()
	cancel()
	if err := <-got; err != context.Canceled {
		t.Fatalf("cancelled Acquire = %v", err)
	}
}

func TestGovernorPollInterval(t *testing.T) {
	clock := fakeclock.New()
	g := NewGovernor([]Limit{{Name: "", Max: 20, Per: time.Minute}}, 0.1, clock) // usable 18, polls 9
	base := 10 * time.Second
	var last time.Duration
	for i := range 10 {
		iv := g.PollInterval(base)
		if iv < base || iv < last || iv > 10*base {
			t.Fatalf("after %d polls interval %v (previous %v)", i, iv, last)
		}
		last = iv
		if i < 9 {
			spend(t, g, Poll, 1)
		}
	}
	if last != 10*base {
		t.Errorf("with the poll share spent the interval is %v, want %v", last, 10*base)
	}
	clock.Advance(time.Minute)
	if iv := g.PollInterval(base); iv != base {
		t.Errorf("after the window passed the interval is %v", iv)
	}
}

func BenchmarkGovernor(b *testing.B) {
	g := NewGovernor(documented["sv-dte"], 0.1, nil)
	g.reserve = 0
	for _, w := range g.windows {
		w.limit, w.length = 1<<30, time.Millisecond
	}
	ctx := context.Background()
	h := header("X-RateLimit-Limit-short", "1073741824", "X-RateLimit-Remaining-short", "1073741800")
	b.Run("no-headers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, _ := g.Acquire(ctx, Poll)
			g.Done(t, 0, nil, nil)
		}
	})
	b.Run("headers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, _ := g.Acquire(ctx, Poll)
			g.Done(t, 200, h, nil)
		}
	})
}

// TestGovernorPollIntervalShortWindow: a window shorter than the interval (sv-dte's 1 s
// one) is empty again by the next poll, however full it is now.
func TestGovernorPollIntervalShortWindow(t *testing.T) {
	clock := fakeclock.New()
	g := NewGovernor(documented["sv-dte"], 0.1, clock) // short: usable 2, poll share 1
	spend(t, g, Poll, 1)
	if iv := g.PollInterval(5 * time.Second); iv != 5*time.Second {
		t.Errorf("one poll in the 1 s window stretched the interval to %v", iv)
	}
	if iv := g.PollInterval(500 * time.Millisecond); iv <= 500*time.Millisecond {
		t.Errorf("a poll share spent until after the next poll left the interval at %v", iv)
	}
}

// TestLearnedWindowsAreCapped: a server that names many new windows in every response
// keeps the governor at MaxWindows: the documented windows and the one the server keeps
// naming stay, the others go the oldest-named first, after every response. Each response
// is read in a new header order (a Header is a map), and when a response names more
// windows than one response is read for, the ones the account keeps are read first: which
// windows are read must not depend on that order.
func TestLearnedWindowsAreCapped(t *testing.T) {
	tests := []struct {
		name string
		// fresh is how many new windows each response names besides "steady" and
		// "short"; their names sort before "steady", so that a reader cutting by name
		// alone would miss it.
		fresh int
		// from is the first response after which "steady" must be kept: the first
		// response names it together with as many others, any of which may go.
		from int
		// alone: the first response names "steady" alone.
		alone bool
	}{
		{name: "every window read", fresh: rlMaxWindows - 2, from: 1},
		{name: "more windows than are read", fresh: 3 * rlMaxWindows, from: 0, alone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New()
			g := NewGovernor(documented["sv-dte"], 0.1, clock) // three documented windows
			for round := range 50 {
				// The server also states the documented short window: 1 of 3 left,
				// one of the two spent by someone else.
				kv := []string{"X-RateLimit-Limit-steady", "1000", "X-RateLimit-Remaining-steady", "900", "X-RateLimit-Reset-steady", "60",
					"X-RateLimit-Limit-short", "3", "X-RateLimit-Remaining-short", "1"}
				for i := range tt.fresh {
					if tt.alone && round == 0 {
						break
					}
					name := fmt.Sprintf("r%02dw%03d", round, i)
					kv = append(kv, "X-RateLimit-Limit-"+name, "10", "X-RateLimit-Remaining-"+name, "9", "X-RateLimit-Reset-"+name, "5")
				}
				tk, ok := try(g, Poll)
				if !ok {
					t.Fatalf("round %d: no ticket", round)
				}
				g.Done(tk, 200, header(kv...), nil)
				ws := g.Windows(clock.Now())
				if len(ws) > MaxWindows {
					t.Fatalf("round %d: %d windows", round, len(ws))
				}
				names := map[string]bool{}
				for _, w := range ws {
					names[w.Name] = true
					if w.Name == "short" && w.Remaining != 1 {
						t.Fatalf("round %d: the short window has %d left, the server said 1", round, w.Remaining)
					}
				}
				for _, keep := range []string{"short", "medium", "long", "steady"} {
					if !names[keep] && (keep != "steady" || round >= tt.from) {
						t.Fatalf("round %d: window %q was dropped; kept %v", round, keep, names)
					}
				}
				for name := range names {
					if strings.HasPrefix(name, "r") && !strings.HasPrefix(name, fmt.Sprintf("r%02dw", round)) {
						t.Fatalf("round %d: window %q of an earlier response outlived the latest ones", round, name)
					}
				}
				clock.Advance(2 * time.Second)
			}
			if g.DroppedWindows() == 0 {
				t.Fatal("DroppedWindows does not say so")
			}
		})
	}
}

// drainStated sends n requests through a governor of provider's documented windows
// against a server model whose fixed window is limit per period, stated in X-RateLimit-*
// headers with an epoch reset (Certifactu's form); it returns the time the batch took
// on a fake clock and how many 429s the server answered.
func drainStated(t *testing.T, provider string, limit int, period time.Duration, n int) (time.Duration, int) {
	t.Helper()
	clock := fakeclock.New()
	g := NewGovernor(documented[provider], 0.1, clock)
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
		g.Done(tk, status, h, nil)
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
	g := NewGovernor(documented["factus"], 0.1, fakeclock.New())
	now := g.clock.Now()
	g.learn(model.Window{Limit: 80, Remaining: 0, Reset: 7 * time.Second}, now, now, false)
	if w := g.windows[0]; w.length != time.Minute || w.limit != 80 {
		t.Errorf("factus: %d per %v after a reset of 7 s at the documented limit", w.limit, w.length)
	}
	g.learn(model.Window{Limit: 60, Remaining: 59, Reset: model.Unknown}, now, now, false)
	g.learn(model.Window{Limit: 60, Remaining: 40, Reset: 30 * time.Second}, now, now, false)
	if w := g.windows[0]; w.length != 30*time.Second || w.limit != 60 {
		t.Errorf("factus: %d per %v after the server stated 60 and a reset of 30 s", w.limit, w.length)
	}
}
