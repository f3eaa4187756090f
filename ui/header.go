package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"emitop/model"
)

// header renders the top line: badges, account health, staleness, the age of the last poll,
// the operator and the clock. On narrow terminals it drops the operator first, then
// shortens the health counts; the clock stays.
func header(st *styles, opts Options, snap *model.Snapshot, now time.Time, w int) string {
	clock := now.Format("15:04:05")
	for _, v := range []struct {
		compact  bool
		operator bool
	}{{false, true}, {false, false}, {true, false}} {
		left := headerLeft(st, opts, snap, now, v.compact)
		right := clock
		if v.operator && opts.Operator != "" {
			right = model.Line(opts.Operator, 16) + " · " + clock
		}
		if gap := w - width(left) - width(right); gap >= 2 {
			return left + strings.Repeat(" ", gap) + right
		}
	}
	return clip(headerLeft(st, opts, snap, now, true), w)
}

func headerLeft(st *styles, opts Options, snap *model.Snapshot, now time.Time, compact bool) string {
	sep, degraded := "  ", "degraded"
	if compact {
		sep, degraded = " ", "deg"
	}
	left := []string{st.paint("bold", st.bold, "emitop")}
	if opts.Demo {
		left = append(left, st.paint("demo", st.demo, "[DEMO]"))
	}
	if opts.Env != "" {
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
	health := func(h model.Health, text string) string { return st.paint("health", st.health[h], text) } // the text names the health
	left = append(left, health(model.HealthUp, strconv.Itoa(n[model.HealthUp])+" up")+" · "+
		health(model.HealthDegraded, strconv.Itoa(n[model.HealthDegraded])+" "+degraded)+" · "+
		health(model.HealthDown, strconv.Itoa(n[model.HealthDown])+" down"))
	if stale > 0 {
		left = append(left, st.stale.Render(fmt.Sprintf("%d STALE", stale)))
	}
	if h := historyNote(snap, now); h != "" {
		// Before the poll age: the one line that says history is lost must not be cut.
		left = append(left, st.stale.Render(h))
	}
	if !last.IsZero() {
		left = append(left, "polled "+since(now.Sub(last)))
	}
	return strings.Join(left, sep)
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
