// Package fakeclock is a clock for tests that moves only when told to: the governor's
// pacing and the poller's waits can then be checked without sleeping.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a pace.Clock whose time moves only with Advance.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []timer
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// New is a clock at a fixed moment (2026-03-01 12:00 UTC).
func New() *Clock { return &Clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now is the clock's time.
func (f *Clock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Timer fires once the clock has been advanced by d.
func (f *Clock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	f.timers = append(f.timers, timer{at: f.now.Add(d), ch: ch})
	return ch, func() bool { return true }
}

// Timers is how many timers wait for the clock to move: a test knows from it that a
// goroutine has started waiting.
func (f *Clock) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// Advance moves the clock by d and fires every timer due by then.
func (f *Clock) Advance(d time.Duration) {
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
