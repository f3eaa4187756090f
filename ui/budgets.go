package ui

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"emitop/model"
)

// Budget columns, in display order.
const (
	bcAccount = iota
	bcProvider
	bcWindow
	bcGauge
	bcLeft
	bcLevel
	bcReset
	bcTrend
	bcHealth
	bcPolled
	bcError
)

var budgetColumns = []column{
	bcAccount:  {title: "ACCOUNT", min: 10, pref: 14},
	bcProvider: {title: "PROVIDER", min: 10, pref: 10},
	bcWindow:   {title: "WINDOW", min: 6, pref: 10},
	bcGauge:    {title: "BUDGET", min: 8, pref: 20},
	bcLeft:     {title: "LEFT", min: 8, pref: 13, right: true},
	bcLevel:    {title: "", min: 3, pref: 3},
	bcReset:    {title: "RESET", min: 5, pref: 6, right: true},
	bcTrend:    {title: "TREND", min: 6, pref: 30, drop: 2},
	bcHealth:   {title: "HEALTH", min: 4, pref: 8},
	bcPolled:   {title: "POLLED", min: 8, pref: 9},
	bcError:    {title: "LAST ERROR", min: 10, grow: true, drop: 3},
}

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

// budgetRow is one account and one of its windows (win -1: the account has none).
type budgetRow struct{ acct, win int }

// seriesKey names a window's sparkline series.
type seriesKey struct{ account, window string }

// budgets is the table of rate-limit budgets, one row per account and window.
type budgets struct {
	grid
	now time.Time

	accounts []model.AccountState
	items    []budgetRow
	series   map[seriesKey][]int
}

func newBudgets(st *styles) budgets { return budgets{grid: grid{st: st, cols: budgetColumns}} }

// setAccounts replaces the accounts after a snapshot.
func (b *budgets) setAccounts(accounts []model.AccountState) {
	b.accounts = accounts
	b.items = b.items[:0]
	for i, a := range accounts {
		if len(a.Windows) == 0 {
			b.items = append(b.items, budgetRow{i, -1})
		}
		for j := range a.Windows {
			b.items = append(b.items, budgetRow{i, j})
		}
	}
	b.list.reset(len(b.items))
}

// setSeries takes fetched sparklines (series not fetched keep theirs); rows render again
// only when one of them changed.
func (b *budgets) setSeries(s map[seriesKey][]int) {
	if b.series == nil {
		b.series = make(map[seriesKey][]int, len(s))
	}
	changed := false
	for k, v := range s {
		if !slices.Equal(b.series[k], v) {
			changed = true
		}
		b.series[k] = v
	}
	if changed {
		b.list.invalidate()
	}
}

// keepSeries forgets the sparklines of windows keep does not hold.
func (b *budgets) keepSeries(keep map[seriesKey]time.Time) {
	maps.DeleteFunc(b.series, func(k seriesKey, _ []int) bool {
		_, ok := keep[k]
		return !ok
	})
}

// selectedAccount is the account of the row under the cursor.
func (b *budgets) selectedAccount() (string, bool) {
	if b.list.cursor >= len(b.items) {
		return "", false
	}
	return b.accounts[b.items[b.list.cursor].acct].Account.Name, true
}

func (b *budgets) setSize(w, h int) {
	b.resize(w, h)
	b.renderHeadCells(titles(budgetColumns))
}

func (b *budgets) tick(now time.Time) {
	b.now = now
	b.list.invalidate()
}

func (b *budgets) restyle(st *styles) {
	b.setStyles(st)
	b.renderHeadCells(titles(budgetColumns))
}

// renderRow renders budget row i.
func (b *budgets) renderRow(i int, selected bool) string {
	it := b.items[i]
	a := &b.accounts[it.acct]
	w := model.Window{Limit: model.Unknown, Remaining: model.Unknown, Reset: -1}
	name := "none"
	if it.win >= 0 {
		w = a.Windows[it.win]
		name = model.Line(w.Name, 0)
		if name == "" {
			name = "all"
		}
	}
	lvl := budgetLevel(w)
	left := "?"
	switch {
	case w.Remaining != model.Unknown && w.Limit != model.Unknown:
		left = fmt.Sprintf("%d/%d", w.Remaining, w.Limit)
	case w.Remaining != model.Unknown:
		left = fmt.Sprintf("%d/?", w.Remaining)
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
	cells := [...]string{
		bcAccount:  model.Line(a.Account.Name, 0),
		bcProvider: model.Line(a.Account.Provider, 0),
		bcWindow:   name,
		bcGauge:    gauge(w, b.widths[bcGauge]),
		bcLeft:     left,
		bcLevel:    lvl.marker(),
		bcReset:    reset,
		bcTrend:    sparkline(b.series[seriesKey{a.Account.Name, w.Name}], w.Limit, b.widths[bcTrend]),
		bcHealth:   string(a.Health),
		bcPolled:   polled,
		bcError:    model.Line(a.Err, 0),
	}
	prefix := "  "
	if selected {
		prefix = "› "
	}
	return b.cache.get(prefix, cells[:], func() string {
		return tableRow(b.st, prefix, budgetColumns, cells[:], b.widths, b.width, selected, func(c int, text string) string {
			switch c {
			case bcGauge, bcLevel, bcLeft:
				return paint(b.st.level, lvl, text)
			case bcHealth:
				return paint(b.st.health, a.Health, text)
			case bcPolled:
				if stale {
					return b.st.stale.Render(text)
				}
			case bcError:
				return b.st.errText.Render(text)
			}
			return text
		})
	})
}

// lines renders the panel: a title, the column headers and the visible rows, h lines in all.
func (b *budgets) lines(h int, focused bool) []string {
	stale := 0
	for i := range b.accounts {
		if _, s := staleness(&b.accounts[i], b.now); s {
			stale++
		}
	}
	title := fmt.Sprintf("Budgets · %d accounts · %d windows", len(b.accounts), len(b.items))
	if stale > 0 {
		title += fmt.Sprintf(" · %d stale", stale)
	}
	out := make([]string, 0, h)
	out = append(out, b.title.get(b.st, titleKey{title, focused}, b.width, func() string {
		return panelTitle(b.st, title, focused, b.width)
	}))
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
