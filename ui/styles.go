package ui

import (
	"image/color"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"

	"emitop/model"
)

// styles is every style the dashboard uses, chosen once per terminal: its colour profile,
// whether NO_COLOR is set and whether the background is dark. Without colour, every style
// keeps only attributes (bold, reverse), and each meaning is also carried by text.
type styles struct {
	color bool

	title    lipgloss.Style // panel titles
	focused  lipgloss.Style // the focused panel's title
	titleW   wrapper        // title's and focused's escape sequences, for titleLine
	focusedW wrapper
	colHead  lipgloss.Style // table column headers
	dim      lipgloss.Style
	bold     lipgloss.Style
	selected lipgloss.Style // the row under the cursor
	errText  lipgloss.Style
	badge    lipgloss.Style // environment badge
	demo     lipgloss.Style // DEMO badge
	stale    lipgloss.Style // stale data, shown prominently

	level    map[level]lipgloss.Style
	health   map[model.Health]lipgloss.Style
	severity map[severity]lipgloss.Style
	fresh    lipgloss.Style // a document that appeared or changed since the operator looked
	status   map[model.Status]lipgloss.Style
	verdict  map[model.Verdict]lipgloss.Style

	help help.Styles

	painted map[paintKey]string // see paint
}

// paintKey names a rendering: which style (by the caller's name for it) and the text.
type paintKey struct{ style, text string }

// paintMemo bounds what paint remembers.
const paintMemo = 256

// paint renders text in s, the style the caller calls name, remembering the result. The
// header renders the same few strings (the name, the badges, "3 up") at every snapshot and
// every second, in every session, and one lipgloss Render costs microseconds.
func (st *styles) paint(name string, s lipgloss.Style, text string) string {
	k := paintKey{name, text}
	if out, ok := st.painted[k]; ok {
		return out
	}
	if st.painted == nil || len(st.painted) >= paintMemo {
		st.painted = make(map[paintKey]string, paintMemo)
	}
	out := s.Render(text)
	st.painted[k] = out
	return out
}

// wrapper is the escape sequences a style puts around any text, found once: the panel
// titles change with every cursor move (they carry the list's position), and one
// lipgloss Render costs microseconds. Only for styles of attributes and colours (no
// padding, margins, width or alignment), whose Render is prefix + text + suffix.
type wrapper struct{ pre, post string }

func wrapOf(s lipgloss.Style) wrapper {
	const mark = "\x00"
	pre, post, _ := strings.Cut(s.Render(mark), mark)
	return wrapper{pre, post}
}

func (w wrapper) wrap(text string) string { return w.pre + text + w.post }

// palette is the handful of colours the dashboard uses.
type palette struct {
	red, green, yellow, blue, magenta, cyan, gray color.Color
}

// colors picks the palette for a profile: the terminal's own 16 colours (which follow its
// theme, so they read on light and dark backgrounds) up to ANSI, and tuned pairs above it.
func colors(p colorprofile.Profile, dark bool) palette {
	if p <= colorprofile.ANSI {
		return palette{
			red: lipgloss.Red, green: lipgloss.Green, yellow: lipgloss.Yellow, blue: lipgloss.Blue,
			magenta: lipgloss.Magenta, cyan: lipgloss.Cyan, gray: lipgloss.BrightBlack,
		}
	}
	ld := lipgloss.LightDark(dark)
	c := lipgloss.Color
	return palette{
		red:     ld(c("#b3261e"), c("#ff7b72")),
		green:   ld(c("#1a7f37"), c("#56d364")),
		yellow:  ld(c("#9a6700"), c("#e3b341")),
		blue:    ld(c("#0b57d0"), c("#79c0ff")),
		magenta: ld(c("#8250df"), c("#d2a8ff")),
		cyan:    ld(c("#0f7b83"), c("#56d4dd")),
		gray:    ld(c("#57606a"), c("#8b949e")),
	}
}

// hasColor reports whether a terminal gets colour at all. NO_COLOR counts when it has any
// non-empty value (no-color.org), which colorprofile alone does not honour.
func hasColor(p colorprofile.Profile, noColor bool) bool {
	return !noColor && p != colorprofile.NoTTY && p != colorprofile.ASCII
}

func newStyles(p colorprofile.Profile, noColor, dark bool) *styles {
	s := &styles{color: hasColor(p, noColor)}
	plain := lipgloss.NewStyle()
	fg := func(c color.Color) lipgloss.Style {
		if !s.color {
			return plain
		}
		return plain.Foreground(c)
	}
	pal := colors(p, dark)

	s.title = plain.Bold(true)
	s.focused = fg(pal.cyan).Bold(true)
	s.colHead = fg(pal.gray).Bold(true)
	s.dim = fg(pal.gray)
	s.bold = plain.Bold(true)
	s.selected = plain.Reverse(true)
	s.errText = fg(pal.red).Bold(true)
	s.badge = plain.Reverse(true)
	s.demo = fg(pal.magenta).Reverse(true).Bold(true)
	s.stale = fg(pal.yellow).Bold(true).Reverse(true)

	s.level = map[level]lipgloss.Style{
		levelUnknown: fg(pal.gray),
		levelOK:      fg(pal.green),
		levelLow:     fg(pal.yellow).Bold(true),
		levelOut:     fg(pal.red).Bold(true),
	}
	s.health = map[model.Health]lipgloss.Style{
		model.HealthUp:       fg(pal.green),
		model.HealthDegraded: fg(pal.yellow).Bold(true),
		model.HealthDown:     fg(pal.red).Bold(true),
		model.HealthRefused:  fg(pal.red).Bold(true),
	}
	s.severity = map[severity]lipgloss.Style{
		sevDown:     fg(pal.red).Bold(true),
		sevRefused:  fg(pal.red).Bold(true),
		sevDegraded: fg(pal.yellow).Bold(true),
		sevLow:      fg(pal.yellow).Bold(true),
		sevAction:   fg(pal.magenta).Bold(true),
	}
	s.fresh = fg(pal.cyan).Bold(true)
	s.status = map[model.Status]lipgloss.Style{
		model.StatusRejected: fg(pal.red),
		model.StatusPending:  fg(pal.yellow),
		model.StatusUnknown:  fg(pal.magenta),
	}
	s.verdict = map[model.Verdict]lipgloss.Style{
		model.VerdictNone:      fg(pal.green),
		model.VerdictRetry:     fg(pal.cyan),
		model.VerdictWait:      fg(pal.yellow),
		model.VerdictVerify:    fg(pal.yellow).Bold(true),
		model.VerdictFix:       fg(pal.red).Bold(true),
		model.VerdictReauth:    fg(pal.magenta).Bold(true),
		model.VerdictEscalate:  fg(pal.magenta).Bold(true),
		model.VerdictReconcile: fg(pal.blue).Bold(true),
	}

	s.titleW, s.focusedW = wrapOf(s.title), wrapOf(s.focused)

	s.help = help.Styles{
		ShortKey: s.bold, ShortDesc: s.dim, ShortSeparator: s.dim, Ellipsis: s.dim,
		FullKey: s.bold, FullDesc: plain, FullSeparator: s.dim,
	}
	return s
}

// paint renders text with a style looked up in a map; unknown keys render plain.
func paint[K comparable](m map[K]lipgloss.Style, k K, text string) string {
	if st, ok := m[k]; ok {
		return st.Render(text)
	}
	return text
}
