package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"emitop/model"
)

// severity is how badly an account needs the operator, in the order the accounts panel
// lists them: the worst first.
type severity int

const (
	sevOK       severity = iota
	sevAction            // rejected documents that need someone
	sevLow               // a window below its reserve, or forecast to run out soon
	sevDegraded          // a poll failed, or a window is spent
	sevRefused           // the provider refused the credentials
	sevDown              // no poll has worked for a while
)

// soonOut is how close a forecast exhaustion makes a window a problem.
const soonOut = 10 * time.Minute

// symbol marks a troubled account in every face of the dashboard; it carries the
// severity without colour (NO_COLOR, a monochrome terminal, a screenshot).
func (s severity) symbol() string {
	switch s {
	case sevDown:
		return "✖"
	case sevRefused:
		return "⊘"
	case sevDegraded:
		return "▲"
	case sevLow:
		return "▼"
	case sevAction:
		return "●"
	}
	return " "
}

// healthRank orders the health states from good to bad: --bell rings when an account's
// rank rises.
func healthRank(h model.Health) int {
	switch h {
	case model.HealthDegraded:
		return 1
	case model.HealthRefused:
		return 2
	case model.HealthDown:
		return 3
	}
	return 0
}

// needsAction reports whether a rejected document waits for someone: every rejection but
// one whose problem says there is nothing to do.
func needsAction(d *model.Document) bool {
	return d.Status == model.StatusRejected && (d.Problem == nil || d.Problem.Verdict != model.VerdictNone)
}

// summary is what the accounts panel, the header and the account view say of one account,
// worked out once per snapshot.
type summary struct {
	state    *model.AccountState
	sev      severity
	reached  bool // a poll has succeeded: its windows are known
	tightest int  // index of the window that runs out first, -1 when none is known
	low      int  // index of a window below its reserve or soon out, -1 when none
	pending  int
	rejected int
	action   int                   // rejected documents that need someone
	verdicts map[model.Verdict]int // rejected documents' problems by verdict
}

// summarize works out an account's summary from its state.
func summarize(a *model.AccountState) summary {
	s := summary{state: a, reached: !a.LastGood.IsZero(), tightest: -1, low: -1}
	for i := range a.Documents {
		d := &a.Documents[i]
		switch d.Status {
		case model.StatusPending:
			s.pending++
		case model.StatusRejected:
			s.rejected++
			if needsAction(d) {
				s.action++
			}
			if d.Problem != nil && d.Problem.Verdict != "" {
				if s.verdicts == nil {
					s.verdicts = map[model.Verdict]int{}
				}
				s.verdicts[d.Problem.Verdict]++
			}
		}
	}
	if s.reached {
		s.tightest = tightest(a.Windows)
		for i, w := range a.Windows {
			if belowReserve(w, a.Reserve) || !w.Holds() && w.ExhaustsIn <= soonOut {
				s.low = i
				break
			}
		}
	}
	switch {
	case a.Health == model.HealthDown:
		s.sev = sevDown
	case a.Health == model.HealthRefused:
		s.sev = sevRefused
	case a.Health == model.HealthDegraded:
		s.sev = sevDegraded
	case s.low >= 0:
		s.sev = sevLow
	case s.action > 0:
		s.sev = sevAction
	}
	return s
}

// belowReserve reports whether a window has less left than the share emitop never spends
// (or nothing at all).
func belowReserve(w model.Window, reserve float64) bool {
	if w.Remaining == model.Unknown {
		return false
	}
	return w.Remaining == 0 || w.Limit > 0 && float64(w.Remaining) < reserve*float64(w.Limit)
}

// tightest is the window that runs out first at the recent spend, else the one with the
// smallest share left, else the first; -1 when there is none.
func tightest(ws []model.Window) int {
	best := -1
	share := func(w model.Window) float64 {
		if w.Remaining == model.Unknown || w.Limit <= 0 {
			return 2
		}
		return float64(w.Remaining) / float64(w.Limit)
	}
	for i, w := range ws {
		switch {
		case best < 0:
			best = i
		case !w.Holds() && (ws[best].Holds() || w.ExhaustsIn < ws[best].ExhaustsIn):
			best = i
		case w.Holds() && ws[best].Holds() && share(w) < share(ws[best]):
			best = i
		}
	}
	return best
}

// shortMeaning is a problem's meaning for one line: the dialect's, else its class's.
func shortMeaning(p *model.Problem) string {
	if p.Meaning != "" {
		return p.Meaning
	}
	return model.ClassGuidance[p.Class].Meaning
}

// decoded is the last error as the accounts panel shows it: class · verdict · meaning;
// for a poll that got no answer, what the connection said.
func decoded(a *model.AccountState) string {
	if p := a.LastError; p != nil {
		return string(p.Class) + " · " + string(p.Verdict) + " · " + shortMeaning(p)
	}
	if a.Err != "" {
		return "no answer · " + lastClause(a.Err)
	}
	return ""
}

// reasonMeaning is the most of a dialect's meaning the header's reason carries: the account
// row and view have it in full, and the header must keep room for the health counts.
const reasonMeaning = 32

// firstClause is a meaning's first clause, at most reasonMeaning cells: "This user needs MFA"
// of "This user needs MFA: Alforse asks for a code…".
func firstClause(meaning string) string {
	for _, sep := range []string{": ", "; ", ". "} {
		if i := strings.Index(meaning, sep); i > 0 {
			meaning = meaning[:i]
		}
	}
	return model.Line(strings.TrimSuffix(meaning, "."), reasonMeaning)
}

// reason says in a few words why an account is where severity put it: what the header
// says of the worst account ("down: 503 unavailable, wait 54s").
func (s *summary) reason(now time.Time) string {
	a := s.state
	switch s.sev {
	case sevDown, sevRefused, sevDegraded:
		if p := a.LastError; p != nil {
			r := string(p.Class)
			if p.Code != "" && p.Code != strconv.Itoa(p.Status) { // "401 auth", not "401 401 auth"
				r = model.Line(p.Code, 16) + " " + r
			}
			if p.Status != 0 && p.Status/100 != 2 { // a login answered 201 "MFA required" is no HTTP error
				r = fmt.Sprintf("%d %s", p.Status, r)
			}
			switch {
			case p.HasWait:
				r += ", wait " + waitText(max(0, p.Wait-now.Sub(a.LastPoll)))
			case s.sev == sevRefused && p.Meaning != "" && p.Meaning != model.ClassGuidance[p.Class].Meaning:
				r += ": " + firstClause(p.Meaning) // the dialect knows why: "this user needs MFA"
			case s.sev == sevRefused:
				r += ", check the credentials"
			}
			return r
		}
		if a.Err != "" {
			return "no answer (" + lastClause(a.Err) + ")"
		}
		for _, w := range a.Windows {
			if w.Spent() {
				return "window " + model.Line(w.Label(), 16) + " spent, resets in " + waitText(w.ResetIn(now))
			}
		}
		return "a poll failed"
	case sevLow:
		w := a.Windows[s.low]
		r := fmt.Sprintf("window %s %s left", model.Line(w.Label(), 16), figures(w))
		if !w.Holds() {
			r += ", " + forecastText(w, true)
		} else {
			r += ", below its reserve"
		}
		return r
	case sevAction:
		return fmt.Sprintf("%s need action", plural(s.action, "rejected document", "rejected documents"))
	}
	return ""
}

// lastClause is the end of an error chain, what the innermost error said: "connection
// refused" of "GET /x: dial tcp 127.0.0.1:9: connect: connection refused".
func lastClause(err string) string {
	if i := strings.LastIndex(err, ": "); i >= 0 && i+2 < len(err) {
		return err[i+2:]
	}
	return err
}

// waitText is a wait as the header says it: "54s", "2m05s".
func waitText(d time.Duration) string { return countdown(d) }

// figures is what is left of a window: "12/100", "12/?", "?".
func figures(w model.Window) string {
	switch {
	case w.Remaining == model.Unknown:
		return "?"
	case w.Limit == model.Unknown:
		return fmt.Sprintf("%d/?", w.Remaining)
	}
	return fmt.Sprintf("%d/%d", w.Remaining, w.Limit)
}

// forecastText says when a window runs out at the recent spend: "holds", "out now",
// "out in 3m at 12/min" (wide) or "out 3m".
func forecastText(w model.Window, wide bool) string {
	switch {
	case w.Holds():
		return "holds"
	case w.ExhaustsIn == 0:
		return "out now"
	case wide:
		return fmt.Sprintf("out in %s at %s/min", ago(w.ExhaustsIn), rate(w.SpendPerMinute()))
	}
	return "out " + ago(w.ExhaustsIn)
}

// rate is a spend per minute, to two significant figures at most.
func rate(perMinute float64) string {
	if perMinute >= 10 {
		return fmt.Sprintf("%.0f", perMinute)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", perMinute), ".0")
}
