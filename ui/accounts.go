package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"emitop/model"
)

// Account columns, in display order.
const (
	acAccount = iota
	acHealth
	acWindow
	acGauge
	acLeft
	acReset
	acForecast
	acPending
	acRejected
	acProblems
	acPolled
	acProvider
	acError
)

var accountColumns = []column{
	acAccount:  {title: "ACCOUNT", min: 10, pref: 14},
	acHealth:   {title: "HEALTH", min: 8},
	acWindow:   {title: "WINDOW", min: 7, pref: 9, prio: 6},
	acGauge:    {title: "BUDGET", min: 8, pref: 14, prio: 7},
	acLeft:     {title: "LEFT", min: 10, pref: 12, right: true, prio: 1},
	acReset:    {title: "RESET", min: 5, right: true, prio: 5},
	acForecast: {title: "FORECAST", min: 8, pref: 19, prio: 1},
	acPending:  {title: "PEND", min: 4, right: true, prio: 4},
	acRejected: {title: "REJ", min: 4, right: true, prio: 1},
	acProblems: {title: "PROBLEMS", min: 10, pref: 24, prio: 6},
	acPolled:   {title: "POLLED", min: 8, pref: 9, prio: 2},
	acProvider: {title: "PROVIDER", min: 8, pref: 10, prio: 8},
	acError:    {title: "LAST ERROR", min: 20, pref: 44, grow: true, prio: 3},
}

// accountGutter is the cursor, the severity symbol and a space.
const accountGutter = 3

// staleGrace is how much later than its poll interval an account's data may be before it
// is shown as stale: a poll finishes some time after it starts.
const staleGrace = 5 * time.Second

// staleness reports how old an account's data is and whether that is older than its poll
// interval allows.
func staleness(a *model.AccountState, now time.Time) (age time.Duration, stale bool) {
	if a.LastPoll.IsZero() {
		return 0, false
	}
	age = now.Sub(a.LastPoll)
	return age, a.PollInterval > 0 && age > a.PollInterval+staleGrace
}

// accounts is the top panel: one row per account, the worst first.
type accounts struct {
	grid
	now time.Time

	items []summary // in the order shown: by severity, then as configured

	// For the title, counted when the accounts or the clock change, not at every frame.
	stale, troubled int
}

// count counts the stale and the troubled accounts.
func (b *accounts) count() {
	b.stale, b.troubled = 0, 0
	for i := range b.items {
		if _, s := staleness(b.items[i].state, b.now); s {
			b.stale++
		}
		if b.items[i].sev > sevOK {
			b.troubled++
		}
	}
}

func newAccounts(st *styles) accounts {
	return accounts{grid: newGrid(st, accountColumns, accountGutter)}
}

// setAccounts replaces the accounts after a snapshot, ordered worst first, the cursor
// staying on the account it was on.
func (b *accounts) setAccounts(states []model.AccountState) {
	keep, had := b.selectedAccount()
	b.items = b.items[:0]
	longest := 0
	for i := range states {
		b.items = append(b.items, summarize(&states[i]))
		longest = max(longest, width(model.Line(states[i].Account.Name, 0)))
	}
	slices.SortStableFunc(b.items, func(x, y summary) int { return cmp.Compare(y.sev, x.sev) })
	b.count()
	b.list.reset(len(b.items))
	if had {
		for i := range b.items {
			if b.items[i].state.Account.Name == keep {
				b.list.follow(i)
				break
			}
		}
	}
	if b.setPref(acAccount, min(32, max(accountColumns[acAccount].pref, longest))) {
		b.renderHeadCells(titles(accountColumns))
	}
}

// selected is the summary of the account under the cursor.
func (b *accounts) selected() (*summary, bool) {
	if b.list.cursor < 0 || b.list.cursor >= len(b.items) {
		return nil, false
	}
	return &b.items[b.list.cursor], true
}

// selectedAccount is the name of the account under the cursor.
// key handles a key in the accounts panel: a movement moves the cursor; enter asks for
// the account under it to be opened in full.
func (b *accounts) key(msg tea.KeyPressMsg, k *keyMap) (open *summary) {
	if key.Matches(msg, k.Enter) {
		if s, ok := b.selected(); ok {
			b.list.hold()
			return s
		}
		return nil
	}
	navigate(k, msg, &b.list)
	return nil
}

func (b *accounts) selectedAccount() (string, bool) {
	if s, ok := b.selected(); ok {
		return s.state.Account.Name, true
	}
	return "", false
}

// find is the summary of the named account.
func (b *accounts) find(name string) (*summary, bool) {
	if i := b.index(name); i >= 0 {
		return &b.items[i], true
	}
	return nil, false
}

// index is the row of the named account, -1 when there is none.
func (b *accounts) index(name string) int {
	return slices.IndexFunc(b.items, func(s summary) bool { return s.state.Account.Name == name })
}

func (b *accounts) setSize(w, h int) {
	b.resize(w, h)
	b.renderHeadCells(titles(accountColumns))
}

func (b *accounts) tick(now time.Time) {
	b.now = now
	b.count()
	b.list.invalidate()
}

func (b *accounts) restyle(st *styles) {
	b.setStyles(st)
	b.renderHeadCells(titles(accountColumns))
}

// problemsText is the rejected documents' problems by verdict: "fix 2 · verify 1".
func problemsText(by map[model.Verdict]int) string {
	var parts []string
	for _, v := range model.Verdicts {
		if n := by[v]; n > 0 {
			parts = append(parts, string(v)+" "+count(n))
		}
	}
	return strings.Join(parts, " · ")
}

// renderRow renders account row i.
func (b *accounts) renderRow(i int, selected bool) string {
	s := &b.items[i]
	a := s.state
	w := model.Window{Limit: model.Unknown, Remaining: model.Unknown, Reset: -1, ExhaustsIn: -1}
	window, forecast, left := "—", "?", "?"
	lvl := levelUnknown
	if s.tightest >= 0 {
		w = a.Windows[s.tightest]
		window = model.Line(w.Label(), 0)
		lvl = budgetLevel(w)
		forecast = forecastText(w, b.widths[acForecast] >= 19)
		left = figures(w)
		if m := lvl.marker(); lvl != levelOK && lvl != levelUnknown {
			left += " " + m
		}
	}
	switch {
	case !s.reached:
		window, forecast, left = "unknown", "?", "unknown"
	case len(a.Windows) == 0:
		forecast, left = "—", "—" // the provider states no window
	}
	reset := "—"
	if w.HasReset() {
		reset = countdown(w.ResetIn(b.now))
	}
	age, stale := staleness(a, b.now)
	polled := "never"
	switch {
	case stale:
		polled = "STALE " + ago(age)
	case !a.LastPoll.IsZero():
		polled = since(age)
	}
	why := decoded(a)
	if why == "" && s.sev != sevOK && s.sev != sevAction {
		why = s.reason(b.now)
	}
	if why == "" {
		why = a.Unpolled
	}
	cells := [...]string{
		acAccount:  model.Line(a.Account.Name, 0),
		acHealth:   string(a.Health),
		acWindow:   window,
		acGauge:    gauge(w, b.widths[acGauge]),
		acLeft:     left,
		acReset:    reset,
		acForecast: forecast,
		acPending:  strconv.Itoa(s.pending),
		acRejected: strconv.Itoa(s.rejected),
		acProblems: problemsText(s.verdicts),
		acPolled:   polled,
		acProvider: model.Line(a.Account.Provider, 0),
		acError:    model.Line(why, 0),
	}
	prefix := "›" + s.sev.symbol() + " "
	if !selected {
		// The symbol in the severity's colour; the symbol alone says it without colour.
		prefix = " " + b.st.paint("severity", b.st.severity[s.sev], s.sev.symbol()) + " "
	}
	return b.cache.get(prefix, cells[:], func() string {
		return tableRow(b.st, prefix, b.cols, cells[:], b.widths, b.width, selected, func(c int, text string) string {
			switch c {
			case acAccount:
				if s.sev >= sevLow {
					return b.st.bold.Render(text)
				}
			case acGauge, acLeft:
				return paint(b.st.level, lvl, text)
			case acForecast:
				if !w.Holds() && w.ExhaustsIn <= soonOut {
					return b.st.level[levelLow].Render(text)
				}
			case acHealth:
				return paint(b.st.health, a.Health, text)
			case acPending, acRejected:
				if strings.TrimSpace(text) == "0" {
					return b.st.dim.Render(text)
				}
				if c == acRejected {
					return b.st.errText.Render(text)
				}
			case acPolled:
				if stale {
					return b.st.stale.Render(text)
				}
			case acError:
				if a.LastError != nil || a.Err != "" {
					return b.st.errText.Render(text)
				}
				return b.st.dim.Render(text)
			}
			return text
		})
	})
}

// lines renders the panel: a title, the column headers and the visible rows, h lines in all.
func (b *accounts) lines(h int, focused bool) []string {
	title := "Accounts · " + plural(len(b.items), "account", "accounts")
	if b.troubled > 0 {
		title += fmt.Sprintf(" · %d need attention", b.troubled)
	}
	if b.stale > 0 {
		title += fmt.Sprintf(" · %d stale", b.stale)
	}
	out := make([]string, 0, h)
	out = append(out, b.titleLine(title, focused))
	if h > 1 {
		out = append(out, b.head)
	}
	body := b.list.visible(b.renderRow)
	if len(body) == 0 && h > 2 {
		body = []string{b.empty.get(b.st, "", b.width, func() string {
			return b.st.dim.Render(clip("  waiting for the first poll…", b.width))
		})}
	}
	return pad(append(out, body...), h)
}
