package ui

import "charm.land/bubbles/v2/key"

// keyMap holds every key binding; the help screen and the footer are generated from it.
type keyMap struct {
	Up, Down, Top, Bottom, PageUp, PageDown key.Binding
	Enter, Back, Tab, Refresh               key.Binding
	Filter, Command, Sort, SortDir          key.Binding
	Help, Quit                              key.Binding
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
	}
}

// ShortHelp is the footer's one line of keys.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Help, k.Enter, k.Tab, k.Filter, k.Command, k.Sort, k.Refresh, k.Back, k.Quit}
}

// FullHelp is the help screen, in columns.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown},
		{k.Enter, k.Back, k.Tab, k.Refresh},
		{k.Filter, k.Command, k.Sort, k.SortDir},
		{k.Help, k.Quit},
	}
}
