package ui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
)

// keyMap holds every key binding of every screen; the screens match keys against it
// alone, and the help screen and the footer are generated from it.
type keyMap struct {
	Up, Down, Top, Bottom, PageUp, PageDown key.Binding
	Enter, Back, Tab, Refresh               key.Binding
	Filter, Command, Sort, SortDir          key.Binding
	Copy, CopyID                            key.Binding
	Help, Quit                              key.Binding
	Interrupt                               key.Binding // quits from anywhere, a prompt included

	// The footer's prompts (the filter, the command line, the reason for forcing): keep
	// or run what was typed, or drop it; the command line completes and offers choices.
	Accept, Dismiss                    key.Binding
	Complete, SuggestNext, SuggestPrev key.Binding

	// Retries: marks on the dashboard, then the dialog's own keys: confirm the plan or
	// cancel it, show its requests, force it (then give the reason), stop the batch
	// under way, and close the dialog once it is done.
	Mark, MarkAll, Retry             key.Binding
	Confirm, Cancel, Requests, Force key.Binding
	Stop, Close                      key.Binding
}

func defaultKeys() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Up:       b([]string{"up", "k"}, "↑/k", "up"),
		Down:     b([]string{"down", "j"}, "↓/j", "down"),
		Top:      b([]string{"g", "home"}, "g", "top"),
		Bottom:   b([]string{"G", "end"}, "G", "bottom"),
		PageUp:   b([]string{"pgup", "ctrl+b"}, "pgup", "page up"),
		PageDown: b([]string{"pgdown", "ctrl+f"}, "pgdn", "page down"),
		Enter:    b([]string{"enter"}, "enter", "open"),
		Back:     b([]string{"esc"}, "esc", "back/clear"),
		Tab:      b([]string{"tab", "shift+tab"}, "tab", "next panel"),
		Refresh:  b([]string{"r"}, "r", "refresh now"),
		Filter:   b([]string{"/"}, "/", "filter"),
		Command:  b([]string{":"}, ":", "command"),
		Sort:     b([]string{"s"}, "s", "sort column"),
		SortDir:  b([]string{"S"}, "S", "sort direction"),
		Copy:     b([]string{"y"}, "y", "copy number"),
		CopyID:   b([]string{"Y"}, "Y", "copy id"),
		Help:     b([]string{"?"}, "?", "help"),
		Quit:     b([]string{"q", "ctrl+c"}, "q", "quit"),

		Interrupt:   b([]string{"ctrl+c"}, "ctrl+c", "quit"),
		Accept:      b([]string{"enter"}, "enter", "keep"),
		Dismiss:     b([]string{"esc"}, "esc", "cancel"),
		Complete:    b([]string{"tab"}, "tab", "complete"),
		SuggestNext: b([]string{"down", "ctrl+n"}, "↓", "next"),
		SuggestPrev: b([]string{"up", "ctrl+p"}, "↑", "previous"),

		Mark:     b([]string{"space"}, "space", "mark"),
		MarkAll:  b([]string{"*"}, "*", "mark shown"),
		Retry:    b([]string{"R"}, "R", "retry"),
		Confirm:  b([]string{"y", "enter"}, "y/enter", "retry: confirm"),
		Cancel:   b([]string{"n", "esc"}, "n/esc", "retry: cancel"),
		Requests: b([]string{"d"}, "d", "retry: requests"),
		Force:    b([]string{"f"}, "f", "retry: force"),
		Stop:     b([]string{"esc"}, "esc", "cancel (what is under way finishes)"),
		Close:    b([]string{"enter", "esc", "q", "y"}, "enter/esc", "back to the dashboard"),
	}
}

// hint is a binding as one screen words it: the same key, the screen's own description.
func hint(b key.Binding, desc string) key.Binding {
	return key.NewBinding(key.WithKeys(b.Keys()...), key.WithHelp(b.Help().Key, desc))
}

// hintAs is a binding, or several, as one screen words them: their keys under one
// label and the screen's description.
func hintAs(label, desc string, bs ...key.Binding) key.Binding {
	var keys []string
	for _, b := range bs {
		keys = append(keys, b.Keys()...)
	}
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(label, desc))
}

// screenHints is the footer's keys for the screen the operator is on, the most useful
// first; hintTail's help and quit follow them, always. A viewer is offered no retry, nor is
// anyone in the history.
func (k keyMap) screenHints(sc screen, focus panel, phase retryPhase, readOnly, filtered bool, mode inputMode) []key.Binding {
	if mode == inputFilter {
		return []key.Binding{hint(k.Accept, "keep the filter"), hint(k.Dismiss, "clear it")}
	}
	back := hint(k.Back, "back")
	scroll := hintAs("↑/↓ pgup/pgdn", "scroll", k.Up, k.Down, k.PageUp, k.PageDown)
	switch sc {
	case screenRetry:
		return k.retryHelp(phase)
	case screenHelp:
		return []key.Binding{scroll, back}
	case screenDetail:
		return []key.Binding{scroll, k.Copy, k.CopyID, back}
	case screenAccount:
		return []key.Binding{scroll, hint(k.Enter, "its documents"), back, k.Refresh, hint(k.Copy, "copy name")}
	case screenHistory:
		return []key.Binding{hint(k.Enter, "open"), back, k.Filter, k.Copy, k.CopyID, k.Command}
	}
	if focus == panelAccounts {
		return []key.Binding{hint(k.Enter, "open account"), hint(k.Tab, "documents"), k.Refresh, hint(k.Copy, "copy name"), k.Command}
	}
	out := []key.Binding{hint(k.Enter, "open")}
	if !readOnly {
		out = append(out, k.Mark, k.Retry)
	}
	out = append(out, k.Filter, k.Copy, hint(k.Tab, "accounts"), k.Command, k.Sort)
	if filtered {
		out = append(out, hint(k.Back, "clear filter"))
	}
	if !readOnly {
		out = append(out, k.MarkAll)
	}
	return append(out, k.CopyID, k.Refresh)
}

// inputHints is the footer's keys while the command line is open.
func (k keyMap) inputHints(inputMode) []key.Binding {
	return []key.Binding{k.Complete, hintAs("↑/↓", "choose", k.SuggestPrev, k.SuggestNext), hint(k.Accept, "run"), k.Dismiss}
}

// renderHints renders bindings on one line of w cells, as many as fit in their order,
// then tail, which is never cut off ("? help • q quit" where those keys work); matches
// (the command line's completions) take the room left at the start.
func renderHints(st *styles, bindings, tail []key.Binding, matches string, w int) string {
	render := func(b key.Binding) string {
		h := b.Help()
		return st.help.ShortKey.Render(h.Key) + " " + st.help.ShortDesc.Render(h.Desc)
	}
	sep := st.help.ShortSeparator.Render(" • ")
	var end []string
	used := -width(sep)
	for _, b := range tail {
		end = append(end, render(b))
		used += width(end[len(end)-1]) + width(sep)
	}
	var parts []string
	for _, b := range bindings {
		s := render(b)
		if used+width(s)+width(sep) > w {
			break
		}
		parts = append(parts, s)
		used += width(s) + width(sep)
	}
	line := strings.Join(append(parts, end...), sep)
	if matches != "" {
		if room := w - width(line) - 3; room >= 12 {
			line = st.dim.Render(clip(matches, room)) + "   " + line
		}
	}
	return clip(line, w)
}

// hintTail is what ends the footer on a screen: help (but on the help itself) and quit;
// in the retry dialog and at the prompts neither, q being text or an answer there.
func (k keyMap) hintTail(sc screen, mode inputMode) []key.Binding {
	switch {
	case mode != inputNone || sc == screenRetry:
		return nil
	case sc == screenHelp:
		return []key.Binding{k.Quit}
	}
	return []key.Binding{k.Help, k.Quit}
}

// retryHelp is the footer's keys in the retry dialog, by phase.
func (k keyMap) retryHelp(p retryPhase) []key.Binding {
	switch p {
	case retryConfirm:
		return []key.Binding{k.Confirm, k.Cancel, k.Requests, k.Force, k.Up, k.Down}
	case retryReason:
		return []key.Binding{hint(k.Accept, "force with this reason"), hint(k.Dismiss, "do not force")}
	case retryRunning:
		return []key.Binding{k.Stop, k.Up, k.Down}
	case retryDone:
		return []key.Binding{k.Close, k.Up, k.Down}
	}
	return []key.Binding{hintAs("esc", "cancel", k.Cancel)}
}

// FullHelp is the help screen, in columns.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown},
		{k.Enter, k.Back, k.Tab, k.Refresh},
		{k.Filter, k.Command, k.Sort, k.SortDir, k.Copy, k.CopyID},
		{k.Help, k.Quit, k.Mark, k.MarkAll, k.Retry},
		{k.Confirm, k.Cancel, k.Requests, k.Force},
	}
}

// navigate applies a movement key to a list; any other key leaves it as it is.
func navigate(k *keyMap, msg tea.KeyPressMsg, r *rows) {
	switch {
	case key.Matches(msg, k.Up):
		r.move(-1)
	case key.Matches(msg, k.Down):
		r.move(1)
	case key.Matches(msg, k.Top):
		r.jump(0)
	case key.Matches(msg, k.Bottom):
		r.jump(r.n - 1)
	case key.Matches(msg, k.PageUp):
		r.move(-r.page())
	case key.Matches(msg, k.PageDown):
		r.move(r.page())
	}
}

// scrollKey applies a movement key to a viewport: the detail screen, the account view,
// the help and the retry dialog scroll alike.
func scrollKey(k *keyMap, msg tea.KeyPressMsg, vp *viewport.Model) {
	switch {
	case key.Matches(msg, k.Up):
		vp.ScrollUp(1)
	case key.Matches(msg, k.Down):
		vp.ScrollDown(1)
	case key.Matches(msg, k.Top):
		vp.GotoTop()
	case key.Matches(msg, k.Bottom):
		vp.GotoBottom()
	case key.Matches(msg, k.PageUp):
		vp.PageUp()
	case key.Matches(msg, k.PageDown):
		vp.PageDown()
	}
}
