package pace

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"emitop/model"
)

// Limits that keep hostile headers cheap: a response describing more windows than this,
// or structured fields longer than this, is read only up to the cap.
const (
	rlMaxWindows    = 32
	rlMaxFieldLen   = 8 << 10
	rlMaxFieldItems = 64
	rlMaxName       = 32
	rlMaxCount      = 1<<31 - 1
	rlSaturate      = 1e17 // a parsed number stops growing here: beyond any epoch in ms
)

// MaxWait is the longest wait emitop believes a provider asks for: a header claiming
// years is absurd, and a day is already long.
const MaxWait = 24 * time.Hour

// Windows reads every rate-limit window a response's headers describe (PROVIDERS.md,
// "Rate-limit headers"): X-Rate-Limit-*, X-RateLimit-* and RateLimit-* with an optional
// per-window suffix (-short, -medium...), Retry-After-<name>, and the structured RateLimit
// and RateLimit-Policy fields. now is when the response was received; an epoch reset is
// measured against the Date header when present. Names are lower-case, "" for an unnamed
// window; the result is sorted by name. When two headers state the same figure, the
// cautious one wins (lowest limit and remaining, latest reset); when the headers describe
// more than rlMaxWindows windows, those read are the ones whose names sort first. Either
// way the result does not depend on header order.
func Windows(h http.Header, now time.Time) []model.Window { return readWindows(h, now, nil) }

// keeper says which windows a reader of headers keeps: a Governor.
type keeper interface {
	keeps(name string) bool
}

// readWindows is Windows reading first, when the headers describe more windows than are
// read, the ones known keeps (nil: none): an account's governor passes itself, so that a
// response naming many new windows cannot hide the figures of those it keeps.
func readWindows(h http.Header, now time.Time, known keeper) []model.Window {
	ws := windowSet{now: now, clock: serverClock(h, now), known: known, worst: -1}
	var policy, structured []string
	for key, vals := range h {
		if len(vals) == 0 {
			continue
		}
		switch {
		case strings.EqualFold(key, "ratelimit-policy"):
			policy = vals
		case strings.EqualFold(key, "ratelimit"):
			structured = vals
		case headerHasPrefix(key, "x-rate-limit-"):
			ws.field(key[len("x-rate-limit-"):], vals[0])
		case headerHasPrefix(key, "x-ratelimit-"):
			ws.field(key[len("x-ratelimit-"):], vals[0])
		case headerHasPrefix(key, "ratelimit-"):
			ws.field(key[len("ratelimit-"):], vals[0])
		case headerHasPrefix(key, "retry-after-"):
			name := key[len("retry-after-"):]
			if name == "" {
				continue
			}
			if d, ok := parseRetryAfter(vals[0], ws.clock); ok {
				if w := ws.get(name); w != nil {
					w.setRemaining(0) // NestJS names the throttler that refused
					w.setReset(d)
				}
			}
		}
	}
	ws.structured(policy, true)
	ws.structured(structured, false)
	ws.foldDefault()
	if len(ws.list) == 0 {
		return nil
	}
	slices.SortFunc(ws.list, func(a, b model.Window) int { return strings.Compare(a.Name, b.Name) })
	return ws.list
}

// WaitHint is the longest explicit wait in the headers: Retry-After (delta seconds or an
// HTTP-date), Retry-After-<name>, and the reset of every spent window. ok is false when
// nothing said how long to wait. Every wait is capped at a day.
func WaitHint(h http.Header, windows []model.Window, now time.Time) (wait time.Duration, ok bool) {
	take := func(d time.Duration) {
		if !ok || d > wait {
			wait, ok = d, true
		}
	}
	var clock time.Time
	for key, vals := range h {
		if len(vals) == 0 || !headerHasPrefix(key, "retry-after") {
			continue
		}
		if len(key) > len("retry-after") && key[len("retry-after")] != '-' {
			continue
		}
		if clock.IsZero() {
			clock = serverClock(h, now)
		}
		if d, found := parseRetryAfter(vals[0], clock); found {
			take(d)
		}
	}
	for _, w := range windows {
		if w.Spent() && w.HasReset() {
			take(min(w.Reset, MaxWait))
		}
	}
	return wait, ok
}

// windowSet gathers windows by name while the headers are read.
type windowSet struct {
	now, clock time.Time
	list       []model.Window
	// Once list holds rlMaxWindows, a new window takes the place of the one that reads
	// last (known ones first, then by name) if it reads before it: isKnown[i] says list[i]
	// is known, worst is the index of the one that reads last (-1: not yet found).
	known   keeper
	isKnown [rlMaxWindows]bool
	worst   int
}

// get is the window called name (any case), added when new; nil when rlMaxWindows
// windows that read before it are there already.
func (s *windowSet) get(name string) *windowFigures {
	if len(name) > rlMaxName {
		name = name[:rlMaxName]
	}
	for i := range s.list {
		if strings.EqualFold(s.list[i].Name, name) {
			return (*windowFigures)(&s.list[i])
		}
	}
	clean := model.Line(strings.ToLower(name), 0)
	for i := range s.list {
		if s.list[i].Name == clean {
			return (*windowFigures)(&s.list[i])
		}
	}
	known := s.known != nil && s.known.keeps(clean)
	fresh := model.Window{Name: clean, Limit: model.Unknown, Remaining: model.Unknown, Reset: -1, Observed: s.now, ExhaustsIn: -1}
	if len(s.list) < rlMaxWindows {
		if s.list == nil {
			s.list = make([]model.Window, 0, 4)
		}
		s.isKnown[len(s.list)] = known
		s.list = append(s.list, fresh)
		return (*windowFigures)(&s.list[len(s.list)-1])
	}
	// Full: the set read is the rlMaxWindows windows that read first, whatever the
	// order of the headers. A window put out never comes back, since the set only
	// improves, so every figure of the windows kept is read.
	if s.worst < 0 {
		s.worst = 0
		for i := 1; i < len(s.list); i++ {
			if s.readsBefore(s.list[s.worst].Name, s.isKnown[s.worst], i) {
				s.worst = i
			}
		}
	}
	i := s.worst
	if !s.readsBefore(clean, known, i) {
		return nil
	}
	s.list[i], s.isKnown[i], s.worst = fresh, known, -1
	return (*windowFigures)(&s.list[i])
}

// readsBefore reports whether a window called name (known to the caller or not) reads
// before list[i] when there are too many to read them all: known ones first, then by name.
func (s *windowSet) readsBefore(name string, known bool, i int) bool {
	if known != s.isKnown[i] {
		return known
	}
	return name < s.list[i].Name
}

// foldDefault joins the structured fields' "default" window to the unnamed one when both
// describe the same limiter: express-rate-limit sends X-RateLimit-* and the draft's
// RateLimit "default" side by side for its one window. Counted twice, that window would
// be paced twice; folded, it lines up with the unnamed window the documentation seeds.
func (s *windowSet) foldDefault() {
	unnamed, def := -1, -1
	for i, w := range s.list {
		switch w.Name {
		case "":
			unnamed = i
		case "default":
			def = i
		}
	}
	if unnamed < 0 || def < 0 {
		return
	}
	u, d := (*windowFigures)(&s.list[unnamed]), s.list[def]
	if u.Limit != model.Unknown && d.Limit != model.Unknown && u.Limit != d.Limit {
		return // two limiters after all
	}
	if d.Limit != model.Unknown {
		u.setLimit(d.Limit)
	}
	if d.Remaining != model.Unknown {
		u.setRemaining(d.Remaining)
	}
	u.setReset(d.Reset)
	s.list = slices.Delete(s.list, def, def+1)
}

// field reads one "<Field>[-<name>]" header such as Limit, Remaining-short, Reset-long.
func (s *windowSet) field(rest, val string) {
	kind, name, _ := strings.Cut(rest, "-")
	switch {
	case strings.EqualFold(kind, "limit"):
		if n, ok := parseHeaderCount(val); ok {
			if w := s.get(name); w != nil {
				w.setLimit(n)
			}
		}
	case strings.EqualFold(kind, "remaining"):
		if n, ok := parseHeaderCount(val); ok {
			if w := s.get(name); w != nil {
				w.setRemaining(n)
			}
		}
	case strings.EqualFold(kind, "reset"):
		if d, ok := parseReset(val, s.clock); ok {
			if w := s.get(name); w != nil {
				w.setReset(d)
			}
		}
	}
}

// structured reads the RateLimit-Policy (policy true) or RateLimit field: items like
// `"default";q=100;w=60` and `"default";r=0;t=17`, joined by name; draft-07 integer
// policies (`100;w=60`) and the older dictionary `limit=100, remaining=0, reset=17` name
// the unnamed window.
func (s *windowSet) structured(vals []string, policy bool) {
	items := 0
	for _, v := range vals {
		if len(v) > rlMaxFieldLen {
			v = v[:rlMaxFieldLen]
		}
		for v != "" && items < rlMaxFieldItems {
			var member string
			member, v = nextSFMember(v)
			items++
			s.member(strings.TrimSpace(member), policy)
		}
	}
}

// member reads one list member of a structured rate-limit field.
func (s *windowSet) member(m string, policy bool) {
	if m == "" {
		return
	}
	var name, params string
	if m[0] == '"' {
		name, params = unquoteSF(m)
	} else {
		bare, rest, _ := strings.Cut(m, ";")
		bare = strings.TrimSpace(bare)
		if key, val, isDict := strings.Cut(bare, "="); isDict {
			s.dictMember(strings.TrimSpace(key), val)
			return
		}
		params = rest
		if n, ok := parseHeaderCount(bare); ok {
			if policy {
				if w := s.get(""); w != nil {
					w.setLimit(n)
				}
			}
			return
		}
		name = bare
	}
	limit, remaining, reset := -1, -1, time.Duration(-1)
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		key, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch {
		case policy && key == "q":
			if n, ok := parseHeaderCount(val); ok {
				limit = n
			}
		case !policy && key == "r":
			if n, ok := parseHeaderCount(val); ok {
				remaining = n
			}
		case !policy && key == "t":
			if d, ok := parseReset(val, s.clock); ok {
				reset = d
			}
		}
	}
	if limit < 0 && remaining < 0 && reset < 0 {
		return
	}
	if w := s.get(name); w != nil {
		if limit >= 0 {
			w.setLimit(limit)
		}
		if remaining >= 0 {
			w.setRemaining(remaining)
		}
		w.setReset(reset)
	}
}

// dictMember reads one member of the older `RateLimit: limit=100, remaining=0, reset=17`.
func (s *windowSet) dictMember(key, val string) {
	val, _, _ = strings.Cut(val, ";")
	switch strings.ToLower(key) {
	case "limit":
		if n, ok := parseHeaderCount(val); ok {
			if w := s.get(""); w != nil {
				w.setLimit(n)
			}
		}
	case "remaining":
		if n, ok := parseHeaderCount(val); ok {
			if w := s.get(""); w != nil {
				w.setRemaining(n)
			}
		}
	case "reset":
		if d, ok := parseReset(val, s.clock); ok {
			if w := s.get(""); w != nil {
				w.setReset(d)
			}
		}
	}
}

// window adds the cautious merge rules to model.Window.
type windowFigures model.Window

func (w *windowFigures) setLimit(n int) {
	if w.Limit == model.Unknown || n < w.Limit {
		w.Limit = n
	}
}

func (w *windowFigures) setRemaining(n int) {
	if w.Remaining == model.Unknown || n < w.Remaining {
		w.Remaining = n
	}
}

func (w *windowFigures) setReset(d time.Duration) {
	if d > w.Reset {
		w.Reset = d
	}
}

// nextSFMember splits off the first comma-separated member of a structured field, keeping
// commas inside quoted strings.
func nextSFMember(v string) (member, rest string) {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return v[:i], v[i+1:]
		}
	}
	return v, ""
}

// unquoteSF reads the structured-field string at the start of m (which begins with a
// quote) and returns it with what follows it, from its first parameter on. An unclosed
// string runs to the end of m.
func unquoteSF(m string) (s, params string) {
	end, escaped := len(m), false
	for i := 1; i < len(m); i++ {
		if m[i] == '\\' {
			escaped = true
			i++
			continue
		}
		if m[i] == '"' {
			end = i
			_, params, _ = strings.Cut(m[i+1:], ";")
			break
		}
	}
	s = m[1:end]
	if !escaped {
		return s, params
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b), params
}

// parseRetryAfter reads a Retry-After value: seconds (or, by their size, an epoch) or an
// HTTP-date, measured against clock. The result is never negative and at most a day.
func parseRetryAfter(v string, clock time.Time) (time.Duration, bool) {
	if d, ok := parseReset(v, clock); ok {
		return d, true
	}
	t, err := http.ParseTime(strings.TrimSpace(v))
	if err != nil {
		return 0, false
	}
	return CapWait(t.Sub(clock)), true
}

// parseReset reads a reset, disambiguated by size: above 10^12 epoch milliseconds, above
// 10^9 epoch seconds, else seconds from now. Fractions of a second are kept; signs,
// exponents and other text make it unreadable.
func parseReset(v string, clock time.Time) (time.Duration, bool) {
	secs, frac, ok := parseHeaderNumber(v)
	if !ok {
		return 0, false
	}
	switch {
	case secs > 1e15: // epoch milliseconds past the year 33000: absurd
		return MaxWait, true
	case secs > 1e12:
		return CapWait(time.UnixMilli(int64(secs)).Sub(clock)), true
	case secs > 1e9:
		return CapWait(time.Unix(int64(secs), int64(frac)).Sub(clock)), true
	}
	return CapWait(time.Duration(secs)*time.Second + frac), true
}

// parseHeaderCount reads a whole non-negative count (a limit or remaining), capped at rlMaxCount.
func parseHeaderCount(v string) (int, bool) {
	n, frac, ok := parseHeaderNumber(v)
	if !ok || frac != 0 {
		return 0, false
	}
	return int(min(n, rlMaxCount)), true
}

// parseHeaderNumber reads digits with an optional fraction from the first comma-separated
// element of v (proxies sometimes join repeated headers). The whole part saturates
// instead of overflowing.
func parseHeaderNumber(v string) (whole int64, frac time.Duration, ok bool) {
	v, _, _ = strings.Cut(v, ",")
	v = strings.TrimSpace(v)
	intPart, fracPart, hasDot := strings.Cut(v, ".")
	if intPart == "" || hasDot && fracPart == "" {
		return 0, 0, false
	}
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		if whole < rlSaturate {
			whole = whole*10 + int64(c-'0')
		}
	}
	scale := time.Second / 10
	for i := 0; i < len(fracPart); i++ {
		c := fracPart[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		frac += time.Duration(c-'0') * scale
		scale /= 10
	}
	return whole, frac, true
}

// CapWait keeps a wait between zero and MaxWait: what a provider says to wait, believed
// up to a day.
func CapWait(d time.Duration) time.Duration {
	return max(0, min(d, MaxWait))
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

// headerHasPrefix is strings.HasPrefix ignoring ASCII case; prefix must be lower-case.
func headerHasPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
