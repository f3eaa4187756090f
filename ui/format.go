package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"emitop/model"
)

// width is the display width of s; plain ASCII is counted without parsing.
func width(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7F {
			return ansi.StringWidth(s)
		}
	}
	return len(s)
}

// fit truncates s (already sanitized, possibly styled) to w cells and pads it with spaces to
// exactly w cells; right aligns it when right is true.
func fit(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	n := width(s)
	if n > w {
		s = ansi.Truncate(s, w, "…")
		n = width(s)
	}
	if n == w {
		return s
	}
	pad := strings.Repeat(" ", w-n)
	if right {
		return pad + s
	}
	return s + pad
}

// elideMiddle shortens s to w cells by cutting out its middle, so both ends stay: document
// numbers share a prefix (DTE-01-M001P001-…) and differ at the end.
func elideMiddle(s string, w int) string {
	n := width(s)
	if n <= w || w < 5 {
		return s
	}
	head := w / 3
	tail := w - 1 - head
	return ansi.Truncate(s, head, "") + "…" + ansi.TruncateLeft(s, n-tail, "")
}

// clip truncates s to w cells without padding.
func clip(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// ago renders a duration coarsely for narrow columns: "now", "42s", "5m", "3h", "2d".
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// since says how long ago something happened: "just now", "4s ago", "3m ago".
func since(d time.Duration) string {
	if d < time.Second {
		return "just now"
	}
	return ago(d) + " ago"
}

// countdown renders time left to a reset in at most five cells: "42s", "1m05s", "49m", "2h03m".
func countdown(d time.Duration) string {
	s := model.CeilSeconds(d)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 3600:
		return fmt.Sprintf("%dm", s/60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, (s%3600)/60)
}

// level is how much of a budget window is left.
type level int

const (
	levelUnknown level = iota
	levelOK
	levelLow
	levelOut
)

// lowShare is the share of a window's limit under which it counts as low.
const lowShare = 0.2

// budgetLevel classifies a window by its remaining requests.
func budgetLevel(w model.Window) level {
	switch {
	case w.Remaining == model.Unknown:
		return levelUnknown
	case w.Remaining == 0:
		return levelOut
	case w.Limit > 0 && float64(w.Remaining) < lowShare*float64(w.Limit):
		return levelLow
	}
	return levelOK
}

// marker is the text every level shows, so thresholds read without colour.
func (l level) marker() string {
	switch l {
	case levelOK:
		return "OK"
	case levelLow:
		return "LOW"
	case levelOut:
		return "OUT"
	}
	return "?"
}

// gauge draws remaining/limit as a bar of w cells.
func gauge(w model.Window, cells int) string {
	if cells <= 0 {
		return ""
	}
	if w.Remaining == model.Unknown || w.Limit <= 0 {
		return strings.Repeat("·", cells)
	}
	full := min(cells, w.Remaining*cells/w.Limit)
	if full == 0 && w.Remaining > 0 {
		full = 1
	}
	return strings.Repeat("█", full) + strings.Repeat("░", cells-full)
}

var sparks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last cells values of series scaled to limit (or to the series' maximum
// when the limit is unknown); unknown values are blanks.
func sparkline(series []int, limit, cells int) string {
	if cells <= 0 {
		return ""
	}
	if len(series) > cells {
		series = series[len(series)-cells:]
	}
	top := limit
	if top <= 0 {
		for _, v := range series {
			top = max(top, v)
		}
	}
	var b strings.Builder
	b.Grow(cells * 3)
	for range cells - len(series) {
		b.WriteByte(' ')
	}
	for _, v := range series {
		switch {
		case v < 0 || top <= 0:
			b.WriteByte(' ')
		default:
			i := min(len(sparks)-1, v*(len(sparks)-1)/top)
			b.WriteRune(sparks[i])
		}
	}
	return b.String()
}

// column describes one table column for layout.
type column struct {
	title string
	min   int  // narrowest useful width; never narrower than the title
	pref  int  // width it grows to before grow columns take the rest
	grow  bool // takes the width left over
	prio  int  // 0: always shown; otherwise the most important first (1), dropped last
	right bool
}

// minWidth is the narrowest the column is shown at: its min, and never less than its title.
func (c column) minWidth() int { return max(c.min, width(c.title)) }

// headRow joins a table's column titles after a blank gutter.
func headRow(gutter int, cols []column, titles []string, widths []int, total int) string {
	return joinColumns(strings.Repeat(" ", gutter), cols, titles, widths, total, nil)
}

// tableRow renders one row of a table, the same way on every screen: the selected row in
// the selection style, any other with each cell painted by style.
func tableRow(st *styles, prefix string, cols []column, cells []string, widths []int, total int, selected bool, style func(c int, text string) string) string {
	if selected {
		return st.selected.Render(joinColumns(prefix, cols, cells, widths, total, nil))
	}
	return joinColumns(prefix, cols, cells, widths, total, style)
}

// joinColumns writes prefix, then each cell fitted to its column, one space apart, leaving
// out the columns of width 0, and clips the row to total cells. style, when not nil, paints
// each fitted cell (c is its column).
func joinColumns(prefix string, cols []column, cells []string, widths []int, total int, style func(c int, text string) string) string {
	var s strings.Builder
	s.Grow(total + 64)
	s.WriteString(prefix)
	first := true
	for c, text := range cells {
		if widths[c] == 0 {
			continue
		}
		if !first {
			s.WriteByte(' ')
		}
		first = false
		text = fit(text, widths[c], cols[c].right)
		if style != nil {
			text = style(c, text)
		}
		s.WriteString(text)
	}
	return clip(s.String(), total)
}

// layout gives each column a width for a row of total cells after a gutter (0 hides the
// column). Columns come in by priority, the most important first: a priority's columns are
// shown when they fit at their min beside the columns already in, a grow column among
// those counted at its pref (a column less important than the message must not squeeze it
// to a few letters). Then each column shown grows to its pref, the most important first,
// and the grow columns share what is left. Nothing is ever cut to fit: a column that does
// not fit is dropped whole.
func layout(cols []column, gutter, total int) []int {
	w := make([]int, len(cols))
	prios := make([]int, 0, len(cols))
	for _, c := range cols {
		if !slices.Contains(prios, c.prio) {
			prios = append(prios, c.prio)
		}
	}
	slices.Sort(prios)
	for k, p := range prios {
		need, shown := gutter, 0
		for _, c := range cols {
			switch {
			case c.prio < p && c.grow:
				need += max(c.minWidth(), c.pref)
			case c.prio <= p:
				need += c.minWidth()
			default:
				continue
			}
			shown++
		}
		need += max(0, shown-1)
		if need > total && k > 0 {
			break
		}
		for i, c := range cols {
			if c.prio == p {
				w[i] = c.minWidth()
			}
		}
	}
	used := gutter - 1
	for _, x := range w {
		if x > 0 {
			used += x + 1
		}
	}
	extra := total - used
	for _, p := range prios {
		for i, c := range cols {
			if c.prio == p && w[i] > 0 && extra > 0 && c.pref > w[i] {
				d := min(extra, c.pref-w[i])
				w[i] += d
				extra -= d
			}
		}
	}
	var growers []int
	for i, c := range cols {
		if w[i] > 0 && c.grow {
			growers = append(growers, i)
		}
	}
	for k, i := range growers {
		d := extra / (len(growers) - k)
		w[i] += d
		extra -= d
	}
	return w
}

// memo holds something rendered with lipgloss and what it was rendered from. compose runs
// at every Update, and most Updates (a cursor move, a tick, a series that did not change)
// leave a panel's title, an empty panel's message or the footer as they were.
type memo[K comparable, T any] struct {
	st  *styles
	key K
	w   int
	out T
	ok  bool
}

// get returns what render returned for the same styles, key and width, rendering again
// when one of them changed.
func (c *memo[K, T]) get(st *styles, key K, w int, render func() T) T {
	if !c.ok || c.st != st || c.key != key || c.w != w {
		c.st, c.key, c.w, c.out, c.ok = st, key, w, render(), true
	}
	return c.out
}

// titleKey is what a panel's title line is rendered from.
type titleKey struct {
	text    string
	focused bool
}
