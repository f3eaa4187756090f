package poller

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/model"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	f.timers = append(f.timers, fakeTimer{at: f.now.Add(d), ch: ch})
	return ch, func() bool { return true }
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.timers[:0]
	for _, t := range f.timers {
		if !t.at.After(f.now) {
			t.ch <- f.now
		} else {
			kept = append(kept, t)
		}
	}
	f.timers = kept
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
		g.Done(tk, &Response{Status: 200}, nil)
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
		clock := newFakeClock()
		g := NewGovernorLimits([]Limit{{Name: "w", Max: tt.limit, Per: time.Second}}, tt.reserve, clock)
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
	g := NewGovernorLimits([]Limit{{Name: "", Max: 4, Per: time.Second}}, 0, newFakeClock())
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
	clock := newFakeClock()
	g := NewGovernorLimits([]Limit{{Name: "", Max: 2, Per: time.Second}}, 0, clock)
	slow, _ := try(g, Write)
	clock.Advance(400 * time.Millisecond)
	g.Done(slow, &Response{Status: 200}, nil)
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
	clock := newFakeClock()
	g := NewGovernor("certifactu", 0.1, clock) // 100/60s documented
	tk, _ := try(g, Write)
	// The server says 50 remain: someone else spent 49 besides our 1.
	g.Done(tk, &Response{Status: 200, Header: header("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "50", "X-RateLimit-Reset", "30")}, nil)
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

func TestGovernorAddsHeaderWindows(t *testing.T) {
	clock := newFakeClock()
	g := NewGovernor("alforse", 0.1, clock) // nothing documented
	first, _ := try(g, Poll)
	if _, ok := try(g, Poll); ok {
		t.Fatal("a second request went before anything was learned")
	}
	h := header("X-RateLimit-Limit-burst", "10", "X-RateLimit-Remaining-burst", "9", "X-RateLimit-Reset-burst", "2")
	g.Done(first, &Response{Status: 200, Header: h}, nil)
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
		resp     Response
		p        *model.Problem
		hold     time.Duration
	}{
		{"retry-after named", "sv-dte", Response{Status: 429, Header: header("Retry-After-medium", "7", "Retry-After-short", "1")}, nil, 7 * time.Second},
		{"retry-after date", "alegra", Response{Status: 429, Header: header("Date", "Sun, 01 Mar 2026 12:00:00 GMT", "Retry-After", "Sun, 01 Mar 2026 12:00:20 GMT")}, nil, 20 * time.Second},
		{"spent window", "certifactu", Response{Status: 429, Header: header("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "12")}, nil, 12 * time.Second},
		{"body wait", "certifactu", Response{Status: 429, Header: header("Retry-After", "3")}, &model.Problem{Wait: 45 * time.Second, HasWait: true}, 45 * time.Second},
		{"no hint sv-dte", "sv-dte", Response{Status: 429}, nil, time.Minute},
		{"no hint unknown windows", "alforse", Response{Status: 429}, nil, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			g := NewGovernor(tt.provider, 0.1, clock)
			tk, _ := try(g, Write)
			tt.resp.Received = clock.Now()
			g.Done(tk, &tt.resp, tt.p)
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
	clock := newFakeClock()
	g := NewGovernorLimits([]Limit{{Name: "", Max: 1, Per: time.Second}}, 0, clock)
	spend(t, g, Write, 1)
	got := make(chan error, 1)
	go func() {
		_, err := g.Acquire(context.Background(), Write)
		got <- err
	}()
	// Advance until the waiter's timer exists, then past the window.
	for {
		clock.mu.Lock()
		n := len(clock.timers)
		clock.mu.Unlock()
		if n > 0 {
			break
		}
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
	clock := newFakeClock()
	g := NewGovernorLimits([]Limit{{Name: "", Max: 20, Per: time.Minute}}, 0.1, clock) // usable 18, polls 9
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
	g := NewGovernor("sv-dte", 0.1, nil)
	g.reserve = 0
	for _, w := range g.windows {
		w.limit, w.length = 1<<30, time.Millisecond
	}
	ctx := context.Background()
	resp := &Response{Status: 200, Header: header("X-RateLimit-Limit-short", "1073741824", "X-RateLimit-Remaining-short", "1073741800")}
	b.Run("no-headers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, _ := g.Acquire(ctx, Poll)
			g.Done(t, nil, nil)
		}
	})
	b.Run("headers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, _ := g.Acquire(ctx, Poll)
			g.Done(t, resp, nil)
		}
	})
}

// TestGovernorPollIntervalShortWindow: a window shorter than the interval (sv-dte's 1 s
// one) is empty again by the next poll, however full it is now.
func TestGovernorPollIntervalShortWindow(t *testing.T) {
	clock := newFakeClock()
	g := NewGovernor("sv-dte", 0.1, clock) // short: usable 2, poll share 1
	spend(t, g, Poll, 1)
	if iv := g.PollInterval(5 * time.Second); iv != 5*time.Second {
		t.Errorf("one poll in the 1 s window stretched the interval to %v", iv)
	}
	if iv := g.PollInterval(500 * time.Millisecond); iv <= 500*time.Millisecond {
		t.Errorf("a poll share spent until after the next poll left the interval at %v", iv)
	}
}

// TestLearnedWindowsAreCapped: a server that names 32 new windows in every response keeps
// the governor at maxWindows: the documented windows and the one the server keeps naming
// stay, the others go the oldest-named first.
func TestLearnedWindowsAreCapped(t *testing.T) {
	clock := newFakeClock()
	g := NewGovernor("sv-dte", 0.1, clock) // three documented windows
	for round := range 50 {
		kv := []string{"X-RateLimit-Limit-steady", "1000", "X-RateLimit-Remaining-steady", "900", "X-RateLimit-Reset-steady", "60"}
		for i := range 32 {
			name := fmt.Sprintf("r%dw%d", round, i)
			kv = append(kv, "X-RateLimit-Limit-"+name, "10", "X-RateLimit-Remaining-"+name, "9", "X-RateLimit-Reset-"+name, "5")
		}
		tk, ok := try(g, Poll)
		if !ok {
			t.Fatalf("round %d: no ticket", round)
		}
		g.Done(tk, &Response{Status: 200, Header: header(kv...)}, nil)
		if n := len(g.Windows(clock.Now())); n > maxWindows {
			t.Fatalf("round %d: %d windows", round, n)
		}
		clock.Advance(2 * time.Second)
	}
	names := map[string]bool{}
	for _, w := range g.Windows(clock.Now()) {
		names[w.Name] = true
	}
	for _, keep := range []string{"short", "medium", "long", "steady"} {
		if !names[keep] {
			t.Errorf("window %q was dropped; kept %v", keep, names)
		}
	}
	for name := range names {
		if strings.HasPrefix(name, "r") && !strings.HasPrefix(name, "r49w") {
			t.Errorf("window %q of an earlier response outlived the latest ones", name)
		}
	}
	if g.DroppedWindows() == 0 {
		t.Fatal("DroppedWindows does not say so")
	}
}
