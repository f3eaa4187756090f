// Package pace keeps each account's requests within its provider's rate limits without
// needing a 429 to find them: it reads the windows a response's headers describe (every
// header family the providers use), and the Governor admits each request only when no
// window's reserve would be spent, holds the account after a 429 or a stated wait, and
// estimates how long a batch takes (DrainTime). Backoff spaces the retries of reads. It
// knows nothing of HTTP clients or providers: what it learns from an answer is handed to
// it as values (a status, headers, the decoded problem).
package pace

import (
	"context"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"emitop/model"
)

// Kind says who wants to send a request, which decides how much of a window it may take.
type Kind uint8

// The kinds of request. Polling may take at most half of what the reserve leaves in any
// window, so the retry engine (Write) and logins (Auth) always find room.
const (
	Poll  Kind = iota // the polling loop's reads
	Write             // the retry engine: emissions and the status reads around them
	Auth              // obtaining or refreshing a token
)

// Limit is a rate-limit window as documented: Max requests per Per.
type Limit struct {
	Name string // lower-case, as the headers suffix it; "" for an unnamed window
	Max  int
	Per  time.Duration
}

// Clock is the time the governor lives by; tests give it a fake one.
type Clock interface {
	Now() time.Time
	// Timer fires once after d; stop releases it early.
	Timer(d time.Duration) (c <-chan time.Time, stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// MaxWindows bounds the windows one account's governor keeps: the documented ones first,
// then those learned from headers, dropping the one a response named longest ago. A server
// that names new windows in every response cannot grow the governor, the snapshots or the
// history without bound.
const MaxWindows = 16

// defaultWindow is the length assumed for a window whose length nothing stated, and the
// hold after a 429 with no hint when no window is known at all.
const defaultWindow = time.Minute

// Governor paces every request of one account so that it never needs a 429 to know it is
// near a limit. It keeps a ledger of the account's own requests per window, each counted
// when it completes (a sliding-log server stamps a hit when it arrives, after the client
// sent it: counting at send time would believe a hit expired before the server does), and
// it folds in what the server's headers say the account has left, which covers other
// clients spending the same budget. It never spends the reserve, and after a 429 it holds
// every request of the account for as long as the response asked.
type Governor struct {
	reserve float64
	clock   Clock

	mu           sync.Mutex
	windows      []*window
	inflight     int
	inflightPoll int
	holdUntil    time.Time       // a 429's hold: the windows are spent until then
	awayUntil    time.Time       // a 5xx's stated wait (a 503's Retry-After): the server is away until then
	dropped      int             // learned windows dropped to stay within MaxWindows
	lastNamed    map[string]bool // the windows the last response that named any named
	heard        bool            // some response has been seen
	changed      chan struct{}   // closed and cleared when in-flight or learned state changes
}

// window is one rate-limit window: what is known of it and this client's ledger.
type window struct {
	name   string
	limit  int           // model.Unknown until documented or stated
	length time.Duration // documented, or the longest reset seen
	seeded bool          // documented: headers keep its length, unless overridden
	named  time.Time     // when a response last named it
	// overridden: the server stated another limit than documented, so its resets give
	// the length; restate: the next reset stated replaces the length.
	overridden, restate bool

	ledger []hit // own completed requests, oldest first
	polls  int   // how many of ledger are polls

	// The server's last word: at seen it said remaining, answering a request sent at
	// sent; foreign is how many of the spent requests were not ours. Foreign hits may
	// last one window length from seen.
	seen      time.Time
	sent      time.Time
	remaining int
	foreign   int
	resetAt   time.Time // zero when not stated
}

type hit struct {
	at   time.Time
	poll bool
}

// Ticket is the right to send one request, from Acquire until Done or Release.
type Ticket struct {
	kind Kind
	at   time.Time
}

// Kind is the kind of request the ticket was acquired for.
func (t Ticket) Kind() Kind { return t.kind }

// NewGovernor paces an account whose documented windows are limits (its dialect's; none
// when the provider documents none); reserve is the share of every window never spent
// (0.1 leaves a tenth). clock nil is RealClock.
func NewGovernor(limits []Limit, reserve float64, clock Clock) *Governor {
	if clock == nil {
		clock = RealClock
	}
	if reserve < 0 || reserve >= 1 || math.IsNaN(reserve) {
		reserve = 0.1
	}
	g := &Governor{reserve: reserve, clock: clock}
	for _, l := range limits {
		g.windows = append(g.windows, &window{name: l.Name, limit: l.Max, length: l.Per, seeded: true, remaining: model.Unknown})
	}
	return g
}

// Usable is how much of a window of limit requests may be spent when reserve of it is
// kept: floor(limit·(1−reserve)), at least one so that a window too small to hold a
// reserve still lets requests through.
func Usable(limit int, reserve float64) int {
	u := int(math.Floor(float64(limit)*(1-reserve) + 1e-9))
	return max(u, 1)
}

// usable is how much of a window of limit requests this governor may spend.
func (g *Governor) usable(limit int) int { return Usable(limit, g.reserve) }

// pollShare is how much of a window polling alone may spend.
func pollShare(usable int) int { return max(usable/2, 1) }

// Acquire waits until a request of kind may be sent without spending the reserve of any
// window, or until ctx ends. Every Ticket must be given back with Done or Release.
func (g *Governor) Acquire(ctx context.Context, kind Kind) (Ticket, error) {
	for {
		g.mu.Lock()
		now := g.clock.Now()
		wake, ok := g.admit(kind, now)
		if ok {
			g.inflight++
			if kind == Poll {
				g.inflightPoll++
			}
			g.mu.Unlock()
			return Ticket{kind: kind, at: now}, nil
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		changed := g.changed
		g.mu.Unlock()

		var fire <-chan time.Time
		stop := func() bool { return false }
		if !wake.IsZero() {
			fire, stop = g.clock.Timer(wake.Sub(now))
		}
		select {
		case <-ctx.Done():
			stop()
			return Ticket{}, ctx.Err()
		case <-changed:
			stop()
		case <-fire:
		}
	}
}

// admit decides under g.mu whether a request of kind may go now; when not, wake is the
// next moment the answer may change (zero: only a completion or a response can change it).
func (g *Governor) admit(kind Kind, now time.Time) (wake time.Time, ok bool) {
	if now.Before(g.holdUntil) {
		return g.holdUntil, false
	}
	if now.Before(g.awayUntil) {
		return g.awayUntil, false
	}
	if !g.heard && len(g.windows) == 0 && g.inflight > 0 {
		return time.Time{}, false // learning: one request until the first response
	}
	ok = true
	earliest := func(t time.Time) {
		if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	for _, w := range g.windows {
		if w.limit == model.Unknown {
			continue
		}
		w.prune(now)
		usable := g.usable(w.limit)
		if w.used(g.inflight) >= usable && !w.probe(now, g.inflight, usable) {
			ok = false
			if len(w.ledger) > 0 {
				earliest(w.ledger[0].at.Add(w.length))
			}
			if w.foreign > 0 {
				if w.resetAt.After(now) {
					earliest(w.resetAt)
				} else {
					earliest(w.seen.Add(w.length))
				}
			}
			continue
		}
		if kind == Poll && w.polls+g.inflightPoll >= pollShare(usable) {
			ok = false
			for _, h := range w.ledger {
				if h.poll {
					earliest(h.at.Add(w.length))
					break
				}
			}
		}
	}
	return wake, ok
}

// prune drops the ledger's hits that have left the window.
func (w *window) prune(now time.Time) {
	cut := 0
	for cut < len(w.ledger) && !w.ledger[cut].at.After(now.Add(-w.length)) {
		if w.ledger[cut].poll {
			w.polls--
		}
		cut++
	}
	if cut > 0 {
		n := copy(w.ledger, w.ledger[cut:])
		w.ledger = w.ledger[:n]
	}
	if w.foreign > 0 && !now.Before(w.seen.Add(w.length)) {
		w.foreign = 0
	}
}

// probe reports whether one request may go to refresh a server figure that the server's
// own reset has made stale: when others' spending alone blocks the window and nothing is
// in flight, one request asks the server what is left instead of waiting a whole window.
func (w *window) probe(now time.Time, inflight, usable int) bool {
	return w.foreign > 0 && !w.resetAt.IsZero() && !now.Before(w.resetAt) && inflight == 0 && len(w.ledger) < usable
}

// used is how much of the window is spent as far as anyone can tell: this client's own
// hits and requests in flight, plus what the server last said others spent.
func (w *window) used(inflight int) int {
	return len(w.ledger) + inflight + w.foreign
}

// Release gives back a ticket whose request was never sent.
func (g *Governor) Release(t Ticket) {
	g.mu.Lock()
	g.finish(t)
	g.mu.Unlock()
}

func (g *Governor) finish(t Ticket) {
	g.inflight--
	if t.kind == Poll {
		g.inflightPoll--
	}
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// Done records a request's completion: it counts the hit now (completion time), learns the
// windows the response's headers describe, and after a 429 holds every request of the
// account for the longest wait anything stated (p.Wait, Retry-After, Retry-After-<name>, a
// spent window's reset) or, with no hint, the longest window's length; after a 5xx that
// states a wait (a 503 in maintenance), for that wait. status 0 means no response came
// (a transport error): the hit is counted all the same, since the request may have
// reached the server. p is the response's problem as decoded, or nil; when given, its
// wait is used. The windows are read from the headers here, the account's own first: a
// response naming more windows than one response is read for cannot hide those it keeps.
func (g *Governor) Done(t Ticket, status int, header http.Header, p *model.Problem) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	g.finish(t)
	for _, w := range g.windows {
		w.prune(now)
		w.ledger = append(w.ledger, hit{at: now, poll: t.kind == Poll})
		if t.kind == Poll {
			w.polls++
		}
	}
	if status == 0 {
		return
	}
	g.heard = true
	seen := readWindows(header, now, g)
	for _, s := range seen {
		g.learn(s, now, t.at, t.kind == Poll)
	}
	g.capWindows(seen)
	switch {
	case status == http.StatusTooManyRequests:
		g.hold(header, seen, p, now, true)
	case status >= 500:
		g.hold(header, seen, p, now, false) // only a stated wait (a 503's Retry-After) holds
	}
}

// learn folds one window a response described into the picture; the response came at now
// to a request sent at sent.
func (g *Governor) learn(s model.Window, now, sent time.Time, poll bool) {
	var w *window
	for _, x := range g.windows {
		if x.name == s.Name {
			w = x
			break
		}
	}
	if w == nil {
		// A window that states its reset is at least that long; one that states none
		// (Laravel's headers give the reset only on a 429, and then only what is left of
		// the window) is assumed to last defaultWindow: a guess that is too short would
		// forget hits and others' spending the server still counts, and meet a 429 in
		// every window.
		length := defaultWindow
		if s.HasReset() {
			length = time.Second
		}
		w = &window{name: s.Name, limit: model.Unknown, remaining: model.Unknown, length: length, named: now}
		// A new window's ledger starts with this request, which the server counted.
		w.ledger = append(w.ledger, hit{at: now, poll: poll})
		if poll {
			w.polls++
		}
		g.windows = append(g.windows, w)
	}
	w.named = now
	// What the server says wins. A stated limit other than the documented one means the
	// server runs another window than documented: the limit replaces the documented one
	// at once, and the first reset stated replaces the documented length; from then on
	// the length is the longest reset stated, as for a window the server alone describes.
	// A server that states the documented limit keeps the documented length: a reset
	// only says what is left of the window.
	if w.seeded && !w.overridden && s.Limit != model.Unknown && s.Limit != w.limit {
		w.overridden, w.restate = true, true
	}
	if s.Limit != model.Unknown {
		w.limit = s.Limit
	}
	if (!w.seeded || w.overridden) && s.HasReset() && (w.restate || s.Reset > w.length) {
		w.length, w.restate = s.Reset, false
	}
	if s.Remaining == model.Unknown || w.limit == model.Unknown {
		return
	}
	// The server's count includes our own hits (and perhaps requests still in flight);
	// whatever is left over was spent by someone else.
	foreign := max(0, w.limit-s.Remaining-len(w.ledger)-g.inflight)
	if sent.Before(w.sent) {
		// The answer to a request sent before the one last heard from mostly counts what
		// the server had seen earlier (requests in flight at once complete in any order,
		// more so on a loaded host): it may add to what others spent, never make the
		// governor forget it.
		if foreign > w.foreign {
			w.foreign, w.remaining = foreign, min(w.remaining, s.Remaining)
		}
		return
	}
	w.seen, w.sent, w.remaining = now, sent, s.Remaining
	w.resetAt = time.Time{}
	if s.HasReset() {
		w.resetAt = now.Add(s.Reset)
	}
	w.foreign = foreign
}

// capWindows drops learned windows beyond MaxWindows once a response's windows (seen) are
// learned: first the one a response named longest ago; of windows named together, one the
// response before did not name (a server naming new windows in every response churns
// those); then the newest. Documented windows, and the ones the server keeps naming, stay.
func (g *Governor) capWindows(seen []model.Window) {
	worse := func(a, b *window) bool { // a goes before b
		if !a.named.Equal(b.named) {
			return a.named.Before(b.named)
		}
		return !g.lastNamed[a.name] && g.lastNamed[b.name]
	}
	for len(g.windows) > MaxWindows {
		victim := -1
		for i, w := range g.windows {
			if !w.seeded && (victim < 0 || !worse(g.windows[victim], w)) {
				victim = i
			}
		}
		if victim < 0 {
			break
		}
		g.windows = slices.Delete(g.windows, victim, victim+1)
		g.dropped++
	}
	if len(seen) > 0 {
		g.lastNamed = make(map[string]bool, len(seen))
		for _, s := range seen {
			g.lastNamed[s.Name] = true
		}
	}
}

// keeps reports, under g.mu, whether the governor keeps a window called name.
func (g *Governor) keeps(name string) bool {
	for _, w := range g.windows {
		if w.name == name {
			return true
		}
	}
	return false
}

// DroppedWindows is how many windows learned from headers were dropped to keep the
// account within MaxWindows.
func (g *Governor) DroppedWindows() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dropped
}

// hold stops every request of the account for the wait the response stated; when it
// stated none, a 429 (guess) holds for the longest window's length and a 5xx not at all.
func (g *Governor) hold(header http.Header, seen []model.Window, p *model.Problem, now time.Time, guess bool) {
	wait, found := WaitHint(header, seen, now)
	if p != nil && p.HasWait && (!found || p.Wait > wait) {
		wait, found = p.Wait, true
	}
	if !found && !guess {
		return
	}
	if !found {
		wait = defaultWindow
		if len(g.windows) > 0 {
			wait = 0
			for _, w := range g.windows {
				wait = max(wait, w.length)
			}
		}
	}
	until := &g.holdUntil
	if !guess {
		until = &g.awayUntil
	}
	if t := now.Add(wait); t.After(*until) {
		*until = t
	}
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// Held is when the hold after a 429 or a 5xx's stated wait ends; zero or past when there
// is none. No request of the account leaves before.
func (g *Governor) Held() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return later(g.holdUntil, g.awayUntil)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// PollInterval is how long the polling loop should wait before its next poll, given the
// account's configured interval: base while the windows have room, stretched as polling
// uses up its share of any window (up to 10×base when the share is spent), and at least
// until a 429's hold ends. Only what a window will still hold at the next poll counts.
// A 5xx's stated wait does not stretch it: the polls it holds send nothing, and count as
// failed, so that the account's health follows the server's absence.
func (g *Governor) PollInterval(base time.Duration) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	// Pressure is judged at the next poll: a window shorter than the interval (sv-dte's
	// 1 s one) will have let go of the hits it holds now, and must not stretch it.
	next := now.Add(base)
	pressure := 0.0
	for _, w := range g.windows {
		if w.limit == model.Unknown {
			continue
		}
		w.prune(now)
		used, polls := g.inflight, g.inflightPoll
		for _, h := range w.ledger {
			if h.at.Add(w.length).After(next) {
				used++
				if h.poll {
					polls++
				}
			}
		}
		if w.foreign > 0 && w.seen.Add(w.length).After(next) {
			used += w.foreign
		}
		usable := g.usable(w.limit)
		pressure = max(pressure, float64(used)/float64(usable), float64(polls)/float64(pollShare(usable)))
	}
	interval := base
	if pressure > 0.5 {
		interval = time.Duration(float64(base) * (1 + 9*min(1, (pressure-0.5)*2)))
	}
	if left := g.holdUntil.Sub(now); left > interval {
		interval = left
	}
	return interval
}

// Windows is the current picture of every window, for the budget rows: the limit, what
// remains as the ledger and the server see it, and the time until the next request
// leaves the window (or the server's reset, when it said one).
func (g *Governor) Windows(now time.Time) []model.Window {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]model.Window, 0, len(g.windows))
	for _, w := range g.windows {
		w.prune(now)
		mw := model.Window{Name: w.name, Limit: w.limit, Remaining: model.Unknown, Reset: -1, Observed: now, ExhaustsIn: -1}
		if w.limit != model.Unknown {
			mw.Remaining = max(0, w.limit-w.used(g.inflight))
		}
		switch {
		case !w.resetAt.IsZero() && w.resetAt.After(now):
			mw.Reset = w.resetAt.Sub(now)
		case len(w.ledger) > 0:
			mw.Reset = w.ledger[0].at.Add(w.length).Sub(now)
		}
		if left := g.holdUntil.Sub(now); left > 0 {
			mw.Remaining = 0
			mw.Reset = max(mw.Reset, left)
		}
		out = append(out, mw)
	}
	return out
}
