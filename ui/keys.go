package ui

import "charm.land/bubbles/v2/key"

// keyMap holds every key binding; the help screen and the footer are generated from it.
type keyMap struct {
	Up, Down, Top, Bottom, PageUp, PageDown key.Binding
	Enter, Back, Tab, Refresh               key.Binding
	Filter, Command, Sort, SortDir          key.Binding
	Help, Quit                              key.Binding

	// Retries: marks on the dashboard, then the confirmation dialog's own keys.
	Mark, MarkAll, Retry             key.Binding
	Confirm, Cancel, Requests, Force key.Binding
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
		Help:     b([]string{"?"}, "?", "help"),
		Quit:     b([]string{"q", "ctrl+c"}, "q", "quit"),

		Mark:     b([]string{"space"}, "space", "mark"),
		MarkAll:  b([]string{"*"}, "*", "mark shown"),
		Retry:    b([]string{"R"}, "R", "retry"),
		Confirm:  b([]string{"y", "enter"}, "y/enter", "retry: confirm"),
		Cancel:   b([]string{"n", "esc"}, "n/esc", "retry: cancel"),
		Requests: b([]string{"d"}, "d", "retry: requests"),
		Force:    b([]string{"f"}, "f", "retry: force"),
	}
}

// ShortHelp is the footer's one line of keys.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Help, k.Enter, k.Mark, k.Retry, k.Tab, k.Filter, k.Command, k.Sort, k.Refresh, k.Back, k.Quit}
}

// retryHelp is the footer's keys in the retry dialog, by phase.
func (k keyMap) retryHelp(p retryPhase) []key.Binding {
	switch p {
	case retryConfirm:
		return []key.Binding{k.Confirm, k.Cancel, k.Requests, k.Force, k.Up, k.Down}
	case retryReason:
		return []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "force with this reason")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "do not force")),
		}
	case retryRunning:
		return []key.Binding{key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel (what is under way finishes)")), k.Up, k.Down}
	case retryDone:
		return []key.Binding{key.NewBinding(key.WithKeys("enter", "esc"), key.WithHelp("enter/esc", "back to the dashboard")), k.Up, k.Down}
	}
	return []key.Binding{key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))}
}

// FullHelp is the help screen, in columns.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown},
		{k.Enter, k.Back, k.Tab, k.Refresh},
		{k.Filter, k.Command, k.Sort, k.SortDir},
		{k.Help, k.Quit, k.Mark, k.MarkAll, k.Retry},
		{k.Confirm, k.Cancel, k.Requests, k.Force},
	}
}
