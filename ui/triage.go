package ui

import (
	"fmt"

	tea "charm.land/bubbletea/v2"

	"emitop/model"
)

// Triage is where a dashboard opens, for the person an alert or a notification sent:
// `ssh HOST -t account NAME`, `ssh HOST -t doc NUMBER`, or locally `emitop --account NAME`
// and `emitop --doc NUMBER`. The zero value opens the dashboard as usual.
type Triage struct {
	Account string // open this account's view (esc: the dashboard, the cursor on it)
	Doc     string // open this document's detail: its number, or its provider id
}

// openTriage applies the triage the dashboard was opened with as soon as a snapshot can
// answer it: the account's view opens, the accounts' cursor on it (an unknown name is
// said in the footer), and the document's detail opens once a poll has listed it, over
// the account view when both were asked. A document no account lists once every account
// has been polled is said in the footer.
func (m *Model) openTriage() tea.Cmd {
	t := m.triage
	if t == (Triage{}) || m.snap == nil {
		return nil
	}
	var cmd tea.Cmd
	if t.Account != "" {
		m.triage.Account = ""
		if i := m.accounts.index(t.Account); i < 0 {
			m.say(fmt.Sprintf("no account named %q", model.Line(t.Account, 30)), true)
		} else {
			m.accounts.list.jump(i)
			m.focus = panelAccounts
			cmd = m.openAccount(&m.accounts.items[i])
		}
	}
	if t.Doc == "" {
		return cmd
	}
	back := screenDashboard
	if m.screen == screenAccount {
		back = screenAccount
	}
	polled := true
	for _, a := range m.snap.Accounts {
		if a.LastPoll.IsZero() {
			polled = false
		}
		for _, d := range a.Documents {
			if d.Number == t.Doc || d.ID == t.Doc {
				m.triage.Doc = ""
				return tea.Batch(cmd, m.openDetail(d, back))
			}
		}
	}
	if polled {
		m.triage.Doc = ""
		m.say(fmt.Sprintf("no open document numbered %q", model.Line(t.Doc, 40)), true)
	}
	return cmd
}
