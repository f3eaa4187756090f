package ui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"emitop/model"
)

// opened is a dashboard opened with t, 120×40, after the snapshots ss.
func opened(t Triage, ss ...model.Snapshot) Model {
	s, ev := fixture()
	m := New(newMemBackend(s, ev), Options{Now: fixedNow, Operator: "local", Triage: t})
	m = step(m, tea.ColorProfileMsg{Profile: colorprofile.ASCII}, tea.WindowSizeMsg{Width: 120, Height: 40})
	for _, s := range ss {
		m = step(m, snapshotMsg{s})
	}
	return m
}

func TestTriageOpensTheAccountOrTheDocument(t *testing.T) {
	s, _ := fixture()
	cases := []struct {
		name   string
		triage Triage
		screen screen
		docs   []string // the documents shown, on the dashboard
		doc    string   // the detail's document id
		err    string
		// after esc (and esc again from a detail): the screen, and the account under
		// the accounts' cursor when the accounts have the focus
		back, backAccount screen
		cursor            string
	}{
		{"account", Triage{Account: "sv-main"}, screenAccount, nil, "", "", screenDashboard, screenDashboard, "sv-main"},
		{"document by number", Triage{Doc: "FE-981"}, screenDetail, nil, "981", "", screenDashboard, screenDashboard, ""},
		{"document by id", Triage{Doc: "F2026-7"}, screenDetail, nil, "F2026-7", "", screenDashboard, screenDashboard, ""},
		{"both", Triage{Account: "factus-prod", Doc: "SETP990000002"}, screenDetail, nil, "SETP990000002", "", screenAccount, screenDashboard, "factus-prod"},
		{"unknown account", Triage{Account: "nobody"}, screenDashboard, []string{"DTE-01-0000002", "F2026/7", "FE-981", "DTE-01-0000001", "SETP990000002", "DTE-01-M001P001-000000000000002", "DTE-01-M002P001-000000000000017"}, "", `no account named "nobody"`, screenDashboard, screenDashboard, ""},
		{"unknown document", Triage{Doc: "FE-0"}, screenDashboard, nil, "", `no open document numbered "FE-0"`, screenDashboard, screenDashboard, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := opened(c.triage, s)
			if m.screen != c.screen {
				t.Fatalf("screen %v, want %v", m.screen, c.screen)
			}
			if c.docs != nil && strings.Join(visibleNumbers(m), ",") != strings.Join(c.docs, ",") {
				t.Errorf("shows %v, want %v", visibleNumbers(m), c.docs)
			}
			if c.doc != "" && m.detail.doc.ID != c.doc {
				t.Errorf("detail of %q, want %q", m.detail.doc.ID, c.doc)
			}
			status := ansi.Strip(strings.Split(frame(m), "\n")[38])
			if c.err != "" && !strings.Contains(status, c.err) || c.err == "" && strings.Contains(status, "error") {
				t.Errorf("status line %q, want error %q", status, c.err)
			}
			if c.screen == screenAccount && !strings.Contains(ansi.Strip(frame(m)), "Account "+c.triage.Account+" · ") {
				t.Errorf("the account view of %s is not on screen:\n%s", c.triage.Account, ansi.Strip(frame(m)))
			}
			m = step(m, press("esc"))
			if m.screen != c.back {
				t.Fatalf("esc went to screen %v, want %v", m.screen, c.back)
			}
			m = step(m, press("esc"))
			if m.screen != c.backAccount {
				t.Fatalf("a second esc went to screen %v, want %v", m.screen, c.backAccount)
			}
			if name, _ := m.accounts.selectedAccount(); c.cursor != "" && (m.focus != panelAccounts || name != c.cursor) {
				t.Errorf("back on the dashboard: focus %v, cursor on %q, want the accounts on %q", m.focus, name, c.cursor)
			}
		})
	}
}

// TestTriageWaitsForTheDocument: a document not listed while some account has not been
// polled yet opens once a later snapshot lists it, and only once.
func TestTriageWaitsForTheDocument(t *testing.T) {
	full, _ := fixture()
	early := full
	early.Accounts = append([]model.AccountState(nil), full.Accounts...)
	early.Accounts[1].LastPoll, early.Accounts[1].Documents = time.Time{}, nil
	m := opened(Triage{Doc: "FE-981"}, early)
	if m.screen != screenDashboard || strings.Contains(ansi.Strip(frame(m)), "error") {
		t.Fatalf("before the account was polled: screen %v\n%s", m.screen, ansi.Strip(frame(m)))
	}
	m = step(m, snapshotMsg{full})
	if m.screen != screenDetail || m.detail.doc.ID != "981" {
		t.Fatalf("after: screen %v, detail %q", m.screen, m.detail.doc.ID)
	}
	m = step(m, press("esc"), snapshotMsg{full})
	if m.screen != screenDashboard {
		t.Fatal("the triage opened the document a second time")
	}
}
