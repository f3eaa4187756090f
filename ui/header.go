package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"emitop/model"
)

// clockFormat is the header's clock: the time of day with its zone, so that an operator
// in another zone than the server, or reading a screenshot, knows whose time it is.
const clockFormat = "15:04:05 MST"

// header renders the top line: badges, the worst account and why, the health counts,
// staleness, trouble with the history, the age of the last poll, the store, the operator
// and the clock. On a narrow terminal it drops the store, then the poll's age, then
// shortens the counts, then
// drops the operator, then the counts (the accounts panel's title says how many need
// attention), then cuts the worst account's reason; the worst account's name and the
// clock stay as long as anything does.
func header(st *styles, opts Options, snap *model.Snapshot, worst *summary, now time.Time, w int) string {
	clock := now.In(location(opts)).Format(clockFormat)
	operator := ""
	if opts.Fingerprint != "" && opts.Operator != "" {
		operator = "operator " + model.Line(opts.Operator, 16) + " · "
	}
	store := ""
	if opts.Store != "" {
		store = st.dim.Render("store: "+model.Line(opts.Store, 60)) + " · "
	}
	for _, v := range []headerParts{
		{name: true, counts: true, operator: true, polled: true, stale: true, store: true},
		{name: true, counts: true, operator: true, polled: true, stale: true},
		{name: true, counts: true, operator: true, stale: true},
		{name: true, counts: true, compact: true, operator: true, stale: true},
		{name: true, counts: true, compact: true, stale: true},
		{name: true, stale: true},
		{stale: true},
		{},
	} {
		left := headerLeft(st, opts, snap, worst, now, v)
		right := clock
		if v.operator {
			right = operator + clock
		}
		if v.store {
			right = store + right
		}
		if gap := w - width(left) - width(right); gap >= 2 {
			return left + strings.Repeat(" ", gap) + right
		}
	}
	// The worst account's reason gives way; its name and the clock stay.
	left := headerLeft(st, opts, snap, worst, now, headerParts{fit: w - width(clock) - 2})
	if gap := w - width(left) - width(clock); gap >= 2 {
		return left + strings.Repeat(" ", gap) + clock
	}
	return clip(left, w)
}

// headerParts says what the header shows besides the badges, the worst account and the
// clock; fit > 0 cuts the worst account's reason to make the line fit cells.
type headerParts struct {
	name, counts, compact, operator, polled, stale, store bool
	fit                                                   int
}

// location is the zone the dashboard shows times in.
func location(opts Options) *time.Location {
	if opts.Location == nil {
		return time.Local
	}
	return opts.Location
}

// worstText names the worst account and why: "✖ sv-branch down: 503 unavailable, wait 54s".
func worstText(s *summary, now time.Time) string {
	name := model.Line(s.state.Account.Name, 32)
	if s.sev >= sevDegraded {
		name += " " + string(s.state.Health)
	}
	return s.sev.symbol() + " " + name + ": " + model.Line(s.reason(now), 0)
}

// headerLeft is the header without the clock. fit > 0 cuts it to fit cells, the worst
// account's reason first.
func headerLeft(st *styles, opts Options, snap *model.Snapshot, worst *summary, now time.Time, v headerParts) string {
	sep, compact := "  ", v.compact || !v.counts
	if compact {
		sep = " "
	}
	var left []string
	if v.name {
		left = append(left, st.paint("bold", st.bold, "emitop"))
	}
	if opts.Demo {
		left = append(left, st.paint("demo", st.demo, "[DEMO]"))
	}
	if opts.Env != "" && !(opts.Demo && strings.EqualFold(opts.Env, "demo")) {
		left = append(left, st.paint("badge", st.badge, "["+model.Line(opts.Env, 12)+"]"))
	}
	if opts.ReadOnly {
		left = append(left, st.paint("badge", st.badge, "[read-only]"))
	}
	if snap == nil {
		left = append(left, st.dim.Render("waiting for the first poll…"))
		return strings.Join(left, sep)
	}
	n := map[model.Health]int{}
	stale := 0
	var last time.Time
	for i := range snap.Accounts {
		a := &snap.Accounts[i]
		n[a.Health]++
		if _, s := staleness(a, now); s {
			stale++
		}
		if a.LastPoll.After(last) {
			last = a.LastPoll
		}
	}
	var tail []string
	health := func(h model.Health, text string) string {
		if n[h] == 0 {
			return st.paint("dim", st.dim, text) // a zero is no alarm
		}
		return st.paint("health", st.health[h], text) // the text names the health
	}
	words := map[model.Health]string{model.HealthUp: "up", model.HealthDegraded: "degraded", model.HealthDown: "down", model.HealthRefused: "refused"}
	if compact {
		words[model.HealthDegraded], words[model.HealthRefused] = "deg", "ref"
	}
	var parts []string
	for _, h := range []model.Health{model.HealthUp, model.HealthDegraded, model.HealthDown, model.HealthRefused} {
		if h == model.HealthRefused && n[h] == 0 {
			continue
		}
		parts = append(parts, health(h, strconv.Itoa(n[h])+" "+words[h]))
	}
	cs := " · "
	if compact {
		cs = " "
	}
	if v.counts {
		tail = append(tail, strings.Join(parts, cs))
	}
	if stale > 0 && v.stale {
		tail = append(tail, st.stale.Render(fmt.Sprintf("%d STALE", stale)))
	}
	if h := historyNote(snap, now); h != "" {
		// Before the poll age: the one line that says history is lost must not be cut.
		tail = append(tail, st.stale.Render(h))
	}
	if v.polled && !last.IsZero() {
		tail = append(tail, "polled "+since(now.Sub(last)))
	}
	if worst != nil && worst.sev > sevOK {
		text := worstText(worst, now)
		if v.fit > 0 {
			others := width(strings.Join(left, sep)) + width(strings.Join(tail, sep)) + 2*len(sep)
			text = clip(text, max(width(worst.sev.symbol())+1+min(width(model.Line(worst.state.Account.Name, 32)), 8), v.fit-others))
		}
		left = append(left, st.paint("worst", st.severity[worst.sev], text))
	}
	return strings.Join(append(left, tail...), sep)
}

// resumedShown is how long the header says that history is saved again after a gap.
const resumedShown = 10 * time.Minute

// historyNote says that history is not being saved (for how long, why, what was lost), or
// for a while after a gap that it is saved again; "" when there is nothing to say.
func historyNote(snap *model.Snapshot, now time.Time) string {
	g := snap.HistoryGap
	lost := ""
	if g.Lost > 0 {
		lost = fmt.Sprintf(", %d writes lost", g.Lost)
	}
	switch {
	case snap.History != "":
		during := ""
		if !g.Since.IsZero() {
			during = " for " + ago(now.Sub(g.Since))
		}
		return "HISTORY NOT SAVED" + during + ": " + model.Line(snap.History, 60) + lost
	case !g.Until.IsZero() && now.Sub(g.Until) < resumedShown:
		return "history saved again " + since(now.Sub(g.Until)) + " (gap " + ago(g.Until.Sub(g.Since)) + lost + ")"
	}
	return ""
}
