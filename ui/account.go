package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"emitop/model"
)

// Account view figures.
const (
	timelineSpan   = time.Hour // how far back the health timeline may reach
	timelineLimit  = 2000      // requests read for the timeline
	recentRequests = 20        // requests listed
	timelineMin    = 10        // narrowest timeline, in minutes (cells)
)

// accountDataMsg carries what the account view reads from the history: each window's
// recent remaining values and the account's request log.
type accountDataMsg struct {
	account  string
	series   map[string][]int
	requests []Request
	err      error
}

// fetchAccount reads an account's window series (as of its last poll) and its recent
// request log.
func fetchAccount(b Backend, a *model.AccountState, now time.Time) tea.Cmd {
	name, asOf := a.Account.Name, a.LastPoll
	windows := make([]string, len(a.Windows))
	for i, w := range a.Windows {
		windows[i] = w.Name
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		msg := accountDataMsg{account: name, series: map[string][]int{}}
		for _, w := range windows {
			s, err := b.WindowSeries(ctx, name, w, asOf, seriesLen)
			if err != nil {
				msg.err = fmt.Errorf("trend of %s %s: %w", name, w, err)
				continue
			}
			msg.series[w] = s
		}
		reqs, err := b.Requests(ctx, name, now.Add(-timelineSpan), timelineLimit)
		if err != nil && msg.err == nil {
			msg.err = fmt.Errorf("requests of %s: %w", name, err)
		}
		msg.requests = reqs
		return msg
	}
}

// accountView is one account in full: every window with its trend and forecast, the last
// error with its meaning and action, how it is polled and why, the health timeline and
// its recent requests. It scrolls.
type accountView struct {
	st  *styles
	now time.Time
	loc *time.Location

	name     string   // the account shown
	sum      *summary // its summary in the current snapshot; nil until one names it
	series   map[string][]int
	requests []Request
	loading  bool
	err      string
	asOf     time.Time // the LastPoll the data was read for

	width int
	head  string
	vp    *viewport.Model
	stale bool // content must be rendered again before it shows
}

func newAccountView(st *styles, loc *time.Location) accountView {
	vp := viewport.New()
	vp.MouseWheelEnabled = false
	return accountView{st: st, loc: loc, vp: &vp}
}

// open shows the named account and reads its history.
func (v *accountView) open(b Backend, s *summary) tea.Cmd {
	*v = accountView{st: v.st, now: v.now, loc: v.loc, width: v.width, vp: v.vp, name: s.state.Account.Name}
	v.vp.GotoTop()
	return v.update(b, s)
}

// update takes the account's summary from a new snapshot; after a poll it reads the
// history again (one read at a time).
func (v *accountView) update(b Backend, s *summary) tea.Cmd {
	v.sum, v.stale = s, true
	if v.loading || s == nil || (v.series != nil && v.asOf.Equal(s.state.LastPoll)) {
		return nil
	}
	v.loading, v.asOf = true, s.state.LastPoll
	return fetchAccount(b, s.state, v.now)
}

// setData takes what was read; it reports whether the account has polled since, so the
// caller reads again.
func (v *accountView) setData(msg accountDataMsg) bool {
	v.loading, v.stale = false, true
	v.series, v.requests, v.err = msg.series, msg.requests, ""
	if msg.err != nil {
		v.err = model.Line(msg.err.Error(), 0)
	}
	return v.sum != nil && !v.asOf.Equal(v.sum.state.LastPoll)
}

func (v *accountView) setSize(w int) {
	v.width = w
	v.vp.SetWidth(w)
	v.stale = true
}

func (v *accountView) tick(now time.Time) {
	v.now = now
	v.stale = true
}

func (v *accountView) restyle(st *styles) {
	v.st = st
	v.stale = true
}

// key handles a key in the account view: a movement scrolls it; enter asks for the
// account's documents to be listed.
func (v *accountView) key(msg tea.KeyPressMsg, k *keyMap) (listDocuments bool) {
	if key.Matches(msg, k.Enter) {
		return true
	}
	scrollKey(k, msg, v.vp)
	return false
}

func (v *accountView) scroll(n int) {
	if n < 0 {
		v.vp.ScrollUp(-n)
	} else {
		v.vp.ScrollDown(n)
	}
}

// lines renders the view in h lines.
func (v *accountView) lines(h int) []string {
	if v.stale && v.st != nil && v.width > 0 {
		v.render()
		v.stale = false
	}
	out := []string{v.head}
	if h > 1 {
		v.vp.SetHeight(h - 1)
		pos := scrollPosition(v.vp)
		if pos != "" {
			out[0] = panelTitle(v.st, v.title(), pos, true, v.width)
		}
		out = append(out, strings.Split(v.vp.View(), "\n")...)
	}
	return pad(out, h)
}

// title is the view's first line: the account, its health and why.
func (v *accountView) title() string {
	if v.sum == nil {
		return "Account " + model.Line(v.name, 40) + " · not in the last snapshot"
	}
	a := v.sum.state
	t := fmt.Sprintf("%s Account %s · %s · %s", v.sum.sev.symbol(), model.Line(a.Account.Name, 40), model.Line(a.Account.Provider, 16), a.Health)
	if r := v.sum.reason(v.now); r != "" {
		t += ": " + r
	}
	return t
}

// render rebuilds the title and the scrolled content.
func (v *accountView) render() {
	st, w := v.st, v.width
	v.head = panelTitle(st, v.title(), "", true, w)
	line := func(s string) string { return clip(s, w) }
	var body []string
	label := func(name, value string) string {
		return line(st.dim.Render(fmt.Sprintf("  %-9s ", name)) + value)
	}
	// long is a label whose plain value wraps under itself.
	long := func(name, value string) {
		for i, l := range wrap(value, w, strings.Repeat(" ", 12)) {
			if i == 0 {
				l = st.dim.Render(fmt.Sprintf("  %-9s ", name)) + strings.TrimPrefix(l, strings.Repeat(" ", 12))
			}
			body = append(body, line(l))
		}
	}
	section := func(title string) { body = append(body, "", line(st.title.Render(title))) }
	if v.sum == nil {
		v.vp.SetContentLines([]string{line(st.dim.Render("  the last snapshot does not name this account"))})
		return
	}
	s, a := v.sum, v.sum.state

	body = append(body, line(st.title.Render("Polling")))
	body = append(body, label("health", paint(st.health, a.Health, string(a.Health))+v.pollFacts()))
	long("interval", model.Line(interval(a, v.now, v.loc), 0))
	if age, stale := staleness(a, v.now); stale {
		body = append(body, label("stale", st.stale.Render(fmt.Sprintf("last poll %s ago, expected every %s", ago(age), countdown(a.PollInterval)))+" "+model.Line(staleWhy(a, v.now), 0)))
	}
	body = append(body, label("documents", fmt.Sprintf("%d pending · %d rejected", s.pending, s.rejected)+
		suffix(" · ", problemsText(s.verdicts))+st.dim.Render("  (enter lists them)")))

	section("Last error")
	if p := a.LastError; p != nil {
		facts := []string{string(p.Class), paint(st.verdict, p.Verdict, string(p.Verdict))}
		if p.Status != 0 {
			facts = append(facts, fmt.Sprintf("HTTP %d", p.Status))
		}
		if p.Method != "" {
			facts = append(facts, model.Line(p.Method, 8))
		}
		if p.Code != "" {
			facts = append(facts, "code "+model.Line(p.Code, 24))
		}
		if p.HasWait {
			facts = append(facts, "wait "+countdown(p.Wait))
		}
		body = append(body, line("  "+strings.Join(facts, " · ")))
		action := p.Action
		if action == "" {
			action = model.ClassGuidance[p.Class].Action
		}
		long("meaning", model.Line(shortMeaning(p), 0))
		long("action", model.Line(action, 0))
		if p.Message != "" {
			body = append(body, label("message", ""))
			body = append(body, wrap(model.Sanitize(p.Message, true), w, "    ")...)
		}
	}
	switch {
	case a.LastError == nil && a.Err != "":
		body = append(body, label("no answer", st.errText.Render(model.Line(a.Err, 0))))
	case a.LastError == nil && a.LastPoll.IsZero():
		body = append(body, line(st.dim.Render("  not polled yet")))
	case a.LastError == nil:
		body = append(body, line(st.dim.Render("  none: the last poll succeeded")))
	}

	section("Windows")
	body = append(body, v.windowLines()...)

	section(fmt.Sprintf("Health timeline (a cell a minute, oldest left; from the request log)"))
	body = append(body, v.timelineLines()...)

	section("Recent requests (newest first)")
	body = append(body, v.requestLines()...)
	v.vp.SetContentLines(body)
}

// pollFacts is what follows the health word: when it last polled and succeeded, by
// which emitop when another process sharing the store polls it, and why none does when
// this one had to let it go.
func (v *accountView) pollFacts() string {
	a := v.sum.state
	by := ""
	if a.PolledBy != "" {
		by = " by " + model.Line(a.PolledBy, 60)
	}
	var s string
	switch {
	case a.LastPoll.IsZero():
		s = " · not polled yet"
	case a.LastGood.IsZero():
		s = " · polled " + since(v.now.Sub(a.LastPoll)) + by + ", never reached: its budget is unknown"
	case a.LastGood.Equal(a.LastPoll):
		s = " · polled " + since(v.now.Sub(a.LastPoll)) + by
	default:
		s = " · polled " + since(v.now.Sub(a.LastPoll)) + by + ", last success " + since(v.now.Sub(a.LastGood))
	}
	if a.Unpolled != "" {
		s += " · " + model.Line(a.Unpolled, 0)
	}
	return s
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

// interval says how often the account is polled and, when the poller stretched the
// configured interval, why; of an account parked because its credentials were refused,
// when it logs in again.
func interval(a *model.AccountState, now time.Time, loc *time.Location) string {
	switch {
	case a.Parked && a.NextLogin.IsZero():
		return "parked: the provider refused its credentials and asks for a person; emitop logs in again only when you refresh (r)"
	case a.Parked:
		return fmt.Sprintf("parked: the provider refused its credentials; next login at %s (in %s), or at once when you refresh (r)",
			a.NextLogin.In(loc).Format(clockFormat), countdown(a.NextLogin.Sub(now)))
	case a.PollInterval <= 0:
		return "not known yet"
	}
	s := "every " + countdown(a.PollInterval)
	if a.BaseInterval <= 0 || a.PollInterval <= a.BaseInterval {
		return s + ", as configured"
	}
	s += " (configured " + countdown(a.BaseInterval) + "), stretched"
	if i := tightest(a.Windows); i >= 0 {
		w := a.Windows[i]
		if w.Spent() {
			return s + fmt.Sprintf(" while window %s is spent (or the provider asked to wait); it resets in %s", w.Label(), countdown(w.Reset))
		}
		return s + fmt.Sprintf(" while window %s has %s left: polls spend at most half of what the reserve leaves", w.Label(), figures(w))
	}
	return s + " by the budget"
}

// staleWhy says why an account's data is older than its interval.
func staleWhy(a *model.AccountState, now time.Time) string {
	for _, w := range a.Windows {
		if w.Spent() {
			return fmt.Sprintf("— the next request waits for window %s to reset (in %s)", w.Label(), countdown(w.ResetIn(now)))
		}
	}
	if a.LastError != nil || a.Err != "" {
		return "— polls are failing and the next waits its back-off"
	}
	return "— the poll under way is taking longer than the interval: the provider is slow to answer"
}

// windowLines is a table of every window: gauge, left/limit, reset, forecast, trend.
func (v *accountView) windowLines() []string {
	st, w := v.st, v.width
	a := v.sum.state
	if !v.sum.reached {
		return []string{clip(st.dim.Render("  budget unknown: the account was never reached"), w)}
	}
	if len(a.Windows) == 0 {
		return []string{clip(st.dim.Render("  the provider states no rate-limit window"), w)}
	}
	gw := min(20, max(8, (w-60)/3))
	out := []string{st.colHead.Render(clip(fmt.Sprintf("  %-10s %-*s %11s %6s  %-22s %s", "NAME", gw, "BUDGET", "LEFT", "RESET", "FORECAST", "TREND"), w))}
	for _, win := range a.Windows {
		lvl := budgetLevel(win)
		left := figures(win)
		if lvl == levelLow || lvl == levelOut {
			left += " " + lvl.marker()
		}
		reset := "—"
		if win.HasReset() {
			reset = countdown(win.ResetIn(v.now))
		}
		fc := forecastText(win, true)
		if belowReserve(win, a.Reserve) && win.Remaining > 0 {
			fc += ", below reserve"
		}
		trend := sparkline(v.series[win.Name], win.Limit, max(0, w-(2+10+1+gw+1+11+1+6+2+22+1)))
		out = append(out, clip(fmt.Sprintf("  %-10s %s %s %6s  %-22s %s", model.Line(win.Label(), 10),
			paint(st.level, lvl, gauge(win, gw)), paint(st.level, lvl, fit(left, 11, true)), reset, fc, trend), w))
	}
	if v.loading && v.series == nil {
		out = append(out, clip(st.dim.Render("  reading the trends…"), w))
	}
	return out
}

// Timeline cells: how a minute of requests went. Each is a different shape, so it reads
// without colour.
const (
	cellNone   = " "
	cellOK     = "▁"
	cellSome   = "▄"
	cellFailed = "█"
)

// timelineLines is the health timeline: one cell per minute, oldest left, from the
// request log, then its legend.
func (v *accountView) timelineLines() []string {
	st, w := v.st, v.width
	if v.err != "" && v.requests == nil {
		return []string{clip(st.errText.Render("  request log unavailable: "+v.err), w)}
	}
	if v.requests == nil {
		return []string{clip(st.dim.Render("  reading the request log…"), w)}
	}
	minutes := min(int(timelineSpan/time.Minute), max(timelineMin, w-4))
	ok := make([]int, minutes)
	bad := make([]int, minutes)
	end := v.now.Truncate(time.Minute).Add(time.Minute)
	for _, r := range v.requests {
		i := minutes - 1 - int(end.Sub(r.At)/time.Minute)
		if i < 0 || i >= minutes {
			continue
		}
		if r.Failed() {
			bad[i]++
		} else {
			ok[i]++
		}
	}
	var b strings.Builder
	for i := range minutes {
		switch {
		case ok[i] == 0 && bad[i] == 0:
			b.WriteString(cellNone)
		case bad[i] == 0:
			b.WriteString(st.paint("tl-ok", st.health[model.HealthUp], cellOK))
		case ok[i] == 0:
			b.WriteString(st.paint("tl-bad", st.health[model.HealthDown], cellFailed))
		default:
			b.WriteString(st.paint("tl-some", st.health[model.HealthDegraded], cellSome))
		}
	}
	from := end.Add(-time.Duration(minutes) * time.Minute).In(v.loc).Format("15:04")
	to := end.In(v.loc).Format("15:04 MST")
	return []string{
		clip("  "+b.String(), w),
		clip(st.dim.Render(fmt.Sprintf("  %s … %s   %s answered · %s some failed · %s all failed · blank: no request", from, to, cellOK, cellSome, cellFailed)), w),
	}
}

// requestLines lists the latest requests.
func (v *accountView) requestLines() []string {
	st, w := v.st, v.width
	if len(v.requests) == 0 {
		if v.requests != nil {
			return []string{clip(st.dim.Render("  none in the last hour"), w)}
		}
		return nil
	}
	var out []string
	for _, r := range v.requests[:min(len(v.requests), recentRequests)] {
		status := "no answer"
		if r.Status != 0 {
			status = fmt.Sprint(r.Status)
		}
		text := fmt.Sprintf("  %s  %-6s %-9s %6s  %-12s %s", r.At.In(v.loc).Format(clockFormat), model.Line(r.Method, 6),
			status, r.Latency.Round(time.Millisecond), model.Line(string(r.Class), 12), model.Line(r.Path, 0))
		if r.Failed() {
			text = st.errText.Render(clip(text, w))
		}
		out = append(out, clip(text, w))
	}
	return out
}
