package ui

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"emitop/model"
)

// loaded is a dashboard with the fixture's snapshot, sparklines and size applied.
func loaded(t *testing.T, w, h int, extra ...tea.Msg) (Model, *memBackend) {
	t.Helper()
	s, ev := fixture()
	b := newMemBackend(s, ev)
	m := New(b, Options{Now: fixedNow, Env: "prod", Demo: true, Operator: "local", Location: zone})
	m = step(m, tea.ColorProfileMsg{Profile: colorprofile.ASCII}, tea.WindowSizeMsg{Width: w, Height: h}, snapshotMsg{s})
	return step(m, extra...), b
}

func frame(m Model) string { return m.View().Content }

// selectedDoc is the number of the document under the cursor.
func selectedDoc(t *testing.T, m Model) string {
	t.Helper()
	d, ok := m.docs.selected()
	if !ok {
		t.Fatal("no document selected")
	}
	return d.Number
}

func visibleNumbers(m Model) []string {
	var out []string
	for _, i := range m.docs.view {
		out = append(out, m.docs.all[i].Number)
	}
	return out
}

// TestFrameFitsTerminal renders every screen at sizes from the minimum to 250×70, in the
// richest colour profile, and checks that no line is wider than the terminal and that the
// frame has exactly its height.
func TestFrameFitsTerminal(t *testing.T) {
	s, ev := fixture()
	screens := map[string]func(m Model, b *memBackend) Model{
		"dashboard": func(m Model, _ *memBackend) Model { return m },
		"budgets":   func(m Model, _ *memBackend) Model { return step(m, press("tab"), press("G")) },
		"detail": func(m Model, b *memBackend) Model {
			m = step(m, press("G"), press("enter"))
			d := m.detail.doc
			return step(m, fetchDocEvents(b, keyOf(&d))(), press("pgdown"))
		},
		"history": func(m Model, b *memBackend) Model {
			m = step(m, typed(":history")...)
			m = step(m, press("enter"))
			return step(m, fetchEvents(b, eventRequest(m.filter))())
		},
		"help": func(m Model, _ *memBackend) Model { return step(m, press("?")) },
		"account": func(m Model, b *memBackend) Model {
			m = step(m, press("tab"), press("j"))
			next, cmd := m.Update(press("enter"))
			return step(next.(Model), cmd())
		},
		"complete": func(m Model, _ *memBackend) Model { return step(m, typed(":a")...) },
		"filter": func(m Model, _ *memBackend) Model {
			return step(m, append([]tea.Msg{press("/")}, typed("zzz-no-match")...)...)
		},
		"error": func(m Model, _ *memBackend) Model {
			return step(m, append(typed(":"+strings.Repeat("x", 300)), press("enter"))...)
		},
	}
	sizes := [][2]int{{minWidth, minHeight}, {40, 10}, {80, 24}, {100, 30}, {120, 40}, {160, 48}, {200, 60}, {250, 70}, {30, 5}}
	for _, size := range sizes {
		for name, show := range screens {
			b := newMemBackend(s, ev)
			m := New(b, Options{Now: fixedNow, Env: "a-very-long-environment-name", Demo: true, ReadOnly: true, Operator: "operator-with-a-long-name"})
			m = step(m, tea.ColorProfileMsg{Profile: colorprofile.TrueColor}, tea.WindowSizeMsg{Width: size[0], Height: size[1]}, snapshotMsg{s})
			m = show(m, b)
			lines := strings.Split(frame(m), "\n")
			if size[0] >= minWidth && size[1] >= minHeight && len(lines) != size[1] {
				t.Errorf("%s at %dx%d: %d lines", name, size[0], size[1], len(lines))
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w > size[0] {
					t.Errorf("%s at %dx%d: line %d is %d wide: %q", name, size[0], size[1], i, w, ansi.Strip(l))
				}
			}
		}
	}
}

var sgr = regexp.MustCompile(`\x1b\[([0-9;:]*)m`)

// colourParams returns the colour parameters of every SGR sequence in s.
func colourParams(s string) []string {
	var out []string
	for _, m := range sgr.FindAllStringSubmatch(s, -1) {
		ps := strings.FieldsFunc(m[1], func(r rune) bool { return r == ';' || r == ':' })
		for i := 0; i < len(ps); i++ {
			var n int
			fmt.Sscan(ps[i], &n)
			if (n >= 30 && n <= 49) || (n >= 90 && n <= 107) {
				out = append(out, m[1])
				break
			}
		}
	}
	return out
}

func TestNoColorAnyValue(t *testing.T) {
	for _, v := range []string{"1", "yes", "0", "false"} {
		m, _ := loaded(t, 160, 48, tea.ColorProfileMsg{Profile: colorprofile.TrueColor}, tea.EnvMsg{"NO_COLOR=" + v})
		f := frame(m)
		if c := colourParams(f); len(c) > 0 {
			t.Errorf("NO_COLOR=%s: colours %v", v, c)
		}
		for _, marker := range []string{"✖", "⊘", "▲", "▼", " LOW", " OUT", "STALE 3m", "1 STALE", "› "} {
			if !strings.Contains(ansi.Strip(f), marker) {
				t.Errorf("NO_COLOR=%s: marker %q missing", v, marker)
			}
		}
	}
	m, _ := loaded(t, 160, 48, tea.ColorProfileMsg{Profile: colorprofile.TrueColor}, tea.EnvMsg{"NO_COLOR="})
	if len(colourParams(frame(m))) == 0 {
		t.Error("an empty NO_COLOR disabled colour")
	}
}

func TestColourProfiles(t *testing.T) {
	ansiOnly := regexp.MustCompile(`[34]8;[25]`)
	m, _ := loaded(t, 160, 48, tea.ColorProfileMsg{Profile: colorprofile.ANSI})
	f := frame(m)
	if len(colourParams(f)) == 0 || ansiOnly.MatchString(f) {
		t.Errorf("ANSI profile: want basic colours only, got %v", colourParams(f))
	}
	for _, dark := range []bool{true, false} {
		bg := tea.BackgroundColorMsg{Color: ansi.BasicColor(0)}
		if !dark {
			bg = tea.BackgroundColorMsg{Color: ansi.BasicColor(15)}
		}
		m, _ = loaded(t, 160, 48, tea.ColorProfileMsg{Profile: colorprofile.TrueColor}, bg)
		if !strings.Contains(frame(m), "38;2;") {
			t.Errorf("true colour (dark %v): no 24-bit colour", dark)
		}
		if m.dark != dark {
			t.Errorf("background: dark = %v, want %v", m.dark, dark)
		}
	}
	m, _ = loaded(t, 160, 48)
	if c := colourParams(frame(m)); len(c) > 0 {
		t.Errorf("ASCII profile: colours %v", c)
	}
}

func TestProviderTextSanitized(t *testing.T) {
	m, b := loaded(t, 200, 60)
	f := frame(m)
	for _, bad := range []string{"\r", "\x1b[8m", "\u202e"} {
		if strings.Contains(f, bad) {
			t.Errorf("dashboard shows %q", bad)
		}
	}
	if !strings.Contains(f, "REJECTED␍ACCEPTED") {
		t.Error("the hostile message is not shown made visible")
	}
	m = step(m, typed("/F2026")...)
	m = step(m, press("enter"), press("enter"))
	m = step(m, fetchDocEvents(b, docKey{"certi-es", "F2026-7"})())
	if f := frame(m); strings.Contains(f, "\r") || strings.Contains(f, "\u202e") || !strings.Contains(f, "502 Bad Gateway") {
		t.Errorf("detail: %q", ansi.Strip(f))
	}
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		in, name, arg, err string
	}{
		{"rejected", "rejected", "", ""},
		{" rej ", "rejected", "", ""},
		{"pending", "pending", "", ""},
		{"account sv-main", "account", "sv-main", ""},
		{"acc sv-main", "account", "sv-main", ""},
		{"provider factus", "provider", "factus", ""},
		{"history", "history", "", ""},
		{"all", "all", "", ""},
		{"q", "quit", "", ""},
		{"HISTORY", "history", "", ""},
		{"", "", "", "empty command"},
		{"frobnicate", "", "", `unknown command "frobnicate" (try :help)`},
		{"a", "", "", `ambiguous command "a"`},
		{"account", "", "", "usage: :account NAME"},
		{"account a b", "", "", "usage: :account NAME"},
		{"rejected now", "", "", ":rejected takes no argument"},
		{"provider acme", "provider", "acme", ""}, // checked against the snapshot's accounts
		{"bad\x1b[31mcmd", "", "", `unknown command "badcmd" (try :help)`},
	}
	for _, c := range cases {
		inv, err := parseCommand(c.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.err || inv.name != c.name || inv.arg != c.arg {
			t.Errorf("parseCommand(%q) = %+v, %q; want %s %s, %q", c.in, inv, got, c.name, c.arg, c.err)
		}
	}
}

func runCommand(m Model, text string) Model {
	m = step(m, typed(":"+text)...)
	return step(m, press("enter"))
}

func TestCommandsFilter(t *testing.T) {
	m, _ := loaded(t, 120, 40)
	cases := []struct {
		cmd  string
		want []string
		err  string
	}{
		{"rejected", []string{"FE-981", "DTE-01-0000001", "SETP990000002", "DTE-01-M001P001-000000000000002"}, ""},
		{"account sv-main", []string{"DTE-01-0000001"}, ""},
		{"all", []string{"DTE-01-0000002", "F2026/7", "FE-981", "DTE-01-0000001", "SETP990000002", "DTE-01-M001P001-000000000000002", "DTE-01-M002P001-000000000000017"}, ""},
		{"pending", []string{"DTE-01-0000002", "F2026/7", "DTE-01-M002P001-000000000000017"}, ""},
		{"provider certifactu", []string{"F2026/7"}, ""},
		{"account nobody", []string{"F2026/7"}, `no account named "nobody"`},
		{"provider acme", []string{"F2026/7"}, `no account of provider "acme" (here: sv-dte, alegra, factus, certifactu)`},
		{"nonsense", []string{"F2026/7"}, `unknown command "nonsense" (try :help)`},
		{"all", []string{"DTE-01-0000002", "F2026/7", "FE-981", "DTE-01-0000001", "SETP990000002", "DTE-01-M001P001-000000000000002", "DTE-01-M002P001-000000000000017"}, ""},
	}
	for _, c := range cases {
		m = runCommand(m, c.cmd)
		if got := visibleNumbers(m); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf(":%s shows %v, want %v", c.cmd, got, c.want)
		}
		status := ansi.Strip(strings.Split(frame(m), "\n")[38])
		if c.err != "" && !strings.Contains(status, "error: "+c.err) {
			t.Errorf(":%s: status line %q, want error %q", c.cmd, status, c.err)
		}
		if c.err == "" && strings.Contains(status, "error") {
			t.Errorf(":%s: unexpected error %q", c.cmd, status)
		}
	}
}

func TestTextFilter(t *testing.T) {
	m, _ := loaded(t, 120, 40)
	m = step(m, press("/"))
	m = step(m, typed("REGLA")...)
	if got := visibleNumbers(m); len(got) != 1 || got[0] != "SETP990000002" {
		t.Fatalf("filter regla shows %v", got)
	}
	if m.mode != inputFilter {
		t.Fatal("filter input closed while typing")
	}
	m = step(m, press("q")) // typed into the filter, not a quit
	if m.filter.text != "reglaq" || len(m.docs.view) != 0 {
		t.Fatalf("filter %q shows %d", m.filter.text, len(m.docs.view))
	}
	m = step(m, press("esc"))
	if m.mode != inputNone || !m.filter.empty() || len(m.docs.view) != 7 {
		t.Fatalf("esc left filter %+v, %d shown", m.filter, len(m.docs.view))
	}
	m = step(m, press("/"))
	m = step(m, typed("fix")...)
	m = step(m, press("enter"))
	if m.mode != inputNone || m.filter.text != "fix" || len(m.docs.view) != 2 {
		t.Fatalf("enter kept filter %q with %d shown", m.filter.text, len(m.docs.view))
	}
	if !strings.Contains(frame(m), `filter: "fix"`) {
		t.Error("the active filter is not shown")
	}
	m = step(m, press("esc"))
	if !m.filter.empty() {
		t.Fatal("esc on the dashboard did not clear the filter")
	}
}

func TestSort(t *testing.T) {
	m, _ := loaded(t, 120, 40)
	byAge := []string{"DTE-01-0000002", "F2026/7", "FE-981", "DTE-01-0000001", "SETP990000002", "DTE-01-M001P001-000000000000002", "DTE-01-M002P001-000000000000017"}
	if got := visibleNumbers(m); strings.Join(got, ",") != strings.Join(byAge, ",") {
		t.Fatalf("default order %v", got)
	}
	m = step(m, press("s"))
	if m.docs.sortCol != colAccount {
		t.Fatalf("s sorted by %d", m.docs.sortCol)
	}
	want := []string{"FE-981", "F2026/7", "SETP990000002", "DTE-01-M001P001-000000000000002", "DTE-01-M002P001-000000000000017", "DTE-01-0000001", "DTE-01-0000002"}
	if got := visibleNumbers(m); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("by account %v", got)
	}
	m = step(m, press("S"))
	want = []string{"DTE-01-0000002", "DTE-01-0000001", "DTE-01-M002P001-000000000000017", "DTE-01-M001P001-000000000000002", "SETP990000002", "F2026/7", "FE-981"}
	if got := visibleNumbers(m); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("by account, descending %v", got)
	}
	if !strings.Contains(frame(m), "ACCOUNT▼") {
		t.Error("the sort column is not marked")
	}
	for range len(sortOrder) - 1 {
		m = step(m, press("s"))
	}
	if m.docs.sortCol != colAge || m.docs.desc {
		t.Fatalf("cycling came back to %d desc %v", m.docs.sortCol, m.docs.desc)
	}
}

func TestNavigationKeys(t *testing.T) {
	m, _ := loaded(t, 120, 40)
	steps := []struct {
		key  string
		want string
	}{
		{"j", "F2026/7"}, {"down", "FE-981"}, {"k", "F2026/7"}, {"up", "DTE-01-0000002"},
		{"up", "DTE-01-0000002"}, {"G", "DTE-01-M002P001-000000000000017"}, {"g", "DTE-01-0000002"}, {"pgdown", "DTE-01-M002P001-000000000000017"},
	}
	for _, s := range steps {
		m = step(m, press(s.key))
		if got := selectedDoc(t, m); got != s.want {
			t.Fatalf("after %s: %s, want %s", s.key, got, s.want)
		}
	}
	m = step(m, tea.MouseWheelMsg{Button: tea.MouseWheelUp, Y: 30})
	if got := selectedDoc(t, m); got != "DTE-01-0000001" {
		t.Fatalf("wheel up: %s", got)
	}
	m = step(m, press("tab"))
	if m.focus != panelAccounts || !strings.Contains(frame(m), "▶ Accounts") {
		t.Fatal("tab did not focus the accounts")
	}
	// The worst first: down, refused, degraded, a window soon out, then the rest.
	var order []string
	for _, it := range m.accounts.items {
		order = append(order, it.state.Account.Name)
	}
	if want := "factus-prod,sv-branch,alegra-co,sv-main,certi-es"; strings.Join(order, ",") != want {
		t.Fatalf("accounts in the order %v, want %s", order, want)
	}
	m = step(m, press("j"), press("j"), press("enter"))
	if m.screen != screenAccount || m.account.name != "alegra-co" {
		t.Fatalf("enter on an account row opened %v %q", m.screen, m.account.name)
	}
	m = step(m, press("esc"))
	if name, _ := m.accounts.selectedAccount(); m.screen != screenDashboard || m.focus != panelAccounts || name != "alegra-co" {
		t.Fatalf("esc from the account view: screen %v focus %v cursor on %q", m.screen, m.focus, name)
	}
	m = step(m, press("enter"), press("enter"))
	if m.focus != panelDocuments || m.filter.account != "alegra-co" || len(m.docs.view) != 1 {
		t.Fatalf("enter in the account view: focus %v filter %+v", m.focus, m.filter)
	}
	m = step(m, press("esc"), press("enter"))
	if m.screen != screenDetail {
		t.Fatal("enter did not open the detail")
	}
	m = step(m, press("?"))
	if m.screen != screenHelp || !strings.Contains(frame(m), ":account NAME") {
		t.Fatal("? did not open the help")
	}
	m = step(m, press("esc"))
	if m.screen != screenDetail {
		t.Fatal("esc from help did not go back to the detail")
	}
	m = step(m, press("esc"))
	if m.screen != screenDashboard {
		t.Fatal("esc from the detail did not go back")
	}
}

func TestDetail(t *testing.T) {
	m, b := loaded(t, 120, 40)
	m = step(m, press("j"), press("j"), press("j"))
	next, cmd := m.Update(press("enter"))
	m = next.(Model)
	if cmd == nil || !strings.Contains(frame(m), "loading…") {
		t.Fatal("the detail does not load the history in a command")
	}
	m = step(m, cmd())
	f := ansi.Strip(frame(m))
	for _, want := range []string{"VERDICT FIX", "change the data, then resend", "code 017", "HTTP 400",
		"meaning  The tax authority rejected", "fields   identificacion.codigoGeneracion, resumen.totalPagar",
		"History (3)", "Raw response", `"estado": "RECHAZADO"`} {
		if !strings.Contains(f, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
	if strings.Contains(frame(m), "\x1b[31mcampo") {
		t.Error("raw response escape sequences reached the screen")
	}
	// A late answer for another document is dropped.
	m = step(m, docEventsMsg{key: docKey{"alegra-co", "981"}, events: nil})
	if len(m.detail.events) != 3 {
		t.Fatal("a stale history replaced the detail's")
	}
	before := m.detail.vp.YOffset()
	m = step(m, tea.MouseWheelMsg{Button: tea.MouseWheelDown, Y: 20})
	if m.detail.vp.YOffset() == before && m.detail.vp.TotalLineCount() > m.detail.vp.Height() {
		t.Error("the wheel did not scroll the raw response")
	}
	_ = b
}

func TestHistoryScreen(t *testing.T) {
	m, b := loaded(t, 120, 40)
	m = runCommand(m, "account sv-main")
	m = step(m, press(":"))
	m = step(m, typed("history")...)
	next, cmd := m.Update(press("enter"))
	m = next.(Model)
	if m.screen != screenHistory || cmd == nil {
		t.Fatal(":history did not open the history with a load command")
	}
	msg := cmd().(historyMsg)
	if msg.req.Account != "sv-main" {
		t.Fatalf("history asked for %+v", msg.req)
	}
	m = step(m, msg)
	if len(m.history.view) != 3 {
		t.Fatalf("history shows %d events for sv-main", len(m.history.view))
	}
	m = step(m, press("/"))
	m = step(m, typed("draft")...)
	if len(m.history.view) != 1 {
		t.Fatalf("history filter shows %d", len(m.history.view))
	}
	m = step(m, press("enter"), press("enter"))
	if m.screen != screenDetail || m.detail.doc.ID != "a1" {
		t.Fatalf("enter on an event opened %v %+v", m.screen, m.detail.doc)
	}
	m = step(m, press("esc"))
	if m.screen != screenHistory {
		t.Fatal("esc from a detail opened from the history did not go back to it")
	}
	_ = b
}

func TestRefreshAndQuit(t *testing.T) {
	m, b := loaded(t, 120, 40)
	next, cmd := m.Update(press("r"))
	m = next.(Model)
	if cmd == nil {
		t.Fatal("r returned no command")
	}
	cmd()
	if b.refreshes() != 1 {
		t.Fatal("r did not ask the backend for a poll")
	}
	for _, k := range []string{"q", "ctrl+c"} {
		_, cmd := m.Update(press(k))
		if cmd == nil {
			t.Fatalf("%s returned no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Fatalf("%s did not quit", k)
		}
	}
	m = step(m, press("/"))
	_, cmd = m.Update(press("ctrl+c"))
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("ctrl+c in the filter did not quit")
	}
}

func TestTickGenerations(t *testing.T) {
	now := clock
	s, ev := fixture()
	m := New(newMemBackend(s, ev), Options{Now: func() time.Time { return now }, Location: zone})
	m = step(m, tea.WindowSizeMsg{Width: 120, Height: 40}, snapshotMsg{s})
	now = clock.Add(10 * time.Minute)
	next, cmd := m.Update(tickMsg{gen: m.tickGen + 1})
	m = next.(Model)
	if cmd != nil || !m.now.Equal(clock) {
		t.Fatal("a stale tick moved the clock or started another ticker")
	}
	next, cmd = m.Update(tickMsg{gen: m.tickGen})
	m = next.(Model)
	if cmd == nil || !m.now.Equal(now) {
		t.Fatal("the current tick did not move the clock and schedule the next")
	}
	if f := ansi.Strip(frame(m)); !strings.Contains(f, "09:14:05 CST") || !strings.Contains(f, "5 STALE") {
		t.Errorf("after 10 minutes the header reads %q", strings.Split(f, "\n")[0])
	}
}

func TestSnapshotKeepsSelection(t *testing.T) {
	m, _ := loaded(t, 120, 40, press("j"), press("j"))
	if got := selectedDoc(t, m); got != "FE-981" {
		t.Fatalf("selected %s", got)
	}
	s, _ := fixture()
	s.Accounts[0].Documents = append(s.Accounts[0].Documents, model.Document{
		Account: "sv-main", Provider: "sv-dte", ID: "new", Number: "DTE-01-0000009", Status: model.StatusPending, FirstSeen: clock})
	m = step(m, snapshotMsg{s})
	if got := selectedDoc(t, m); got != "FE-981" {
		t.Fatalf("after a snapshot the cursor is on %s", got)
	}
	if len(m.docs.view) != 8 {
		t.Fatalf("%d documents after the snapshot", len(m.docs.view))
	}
}

func TestClosedSubscription(t *testing.T) {
	m, _ := loaded(t, 120, 40, closedMsg{})
	if !strings.Contains(frame(m), "the poller stopped") {
		t.Fatal("a closed subscription is not shown")
	}
}

// TestAccountViewReadsAfterAPoll checks that the account view reads its account's trends
// and requests when it opens and again only after the account polled, one read at a time.
func TestAccountViewReadsAfterAPoll(t *testing.T) {
	m, b := loaded(t, 120, 40, press("tab"), press("j"), press("j"), press("j"))
	next, cmd := m.Update(press("enter"))
	m = next.(Model)
	if m.screen != screenAccount || cmd == nil {
		t.Fatal("enter on sv-main read nothing")
	}
	msg, ok := cmd().(accountDataMsg)
	if !ok || msg.account != "sv-main" || len(msg.series) != 3 || len(msg.requests) != 40 {
		t.Fatalf("read %+v", msg)
	}
	s, _ := fixture()
	if _, cmd := m.Update(snapshotMsg{s}); cmd != nil {
		t.Fatal("a snapshot while the read runs started another")
	}
	m = step(m, msg)
	if _, cmd := m.Update(snapshotMsg{s}); cmd != nil {
		t.Fatal("a snapshot with no new poll read again")
	}
	s.Accounts[0].LastPoll = s.Accounts[0].LastPoll.Add(time.Second)
	if _, cmd := m.Update(snapshotMsg{s}); cmd == nil {
		t.Fatal("a poll of sv-main did not read again")
	}
	f := ansi.Strip(frame(m))
	for _, want := range []string{"Account sv-main", "every 1m30s (configured 30s), stretched while window medium has 12/100 left",
		"medium", "out in 3m at 4/min", "holds", "▇", "Health timeline", "Recent requests", "09:01:02 CST  GET"} {
		if !strings.Contains(f, want) {
			t.Errorf("the account view lacks %q:\n%s", want, f)
		}
	}
	_ = b
}

// TestDetailFollowsClockAndSize checks that the detail screen, rendered only when shown,
// shows the ages of the clock's last tick and the width of the last resize when both
// changed while the help screen was on show.
func TestDetailFollowsClockAndSize(t *testing.T) {
	now := clock
	s, ev := fixture()
	b := newMemBackend(s, ev)
	m := New(b, Options{Now: func() time.Time { return now }})
	m = step(m, tea.WindowSizeMsg{Width: 120, Height: 40}, snapshotMsg{s}, press("enter"))
	d := m.detail.doc
	m = step(m, fetchDocEvents(b, keyOf(&d))(), press("?"))
	now = clock.Add(2 * time.Hour)
	m = step(m, tickMsg{gen: m.tickGen}, tea.WindowSizeMsg{Width: 90, Height: 30}, press("esc"))
	f := ansi.Strip(frame(m))
	if m.screen != screenDetail || !strings.Contains(f, "seen 2h ago") {
		t.Errorf("back from help two hours later, the detail reads:\n%s", f)
	}
	// A document seen this very moment reads "just now", never "now ago".
	fresh := New(b, Options{Now: func() time.Time { return d.FirstSeen }})
	fresh = step(fresh, tea.WindowSizeMsg{Width: 120, Height: 40}, snapshotMsg{s}, press("enter"))
	if f := ansi.Strip(frame(fresh)); strings.Contains(f, "now ago") || !strings.Contains(f, "seen just now") {
		t.Errorf("a document seen now reads:\n%s", f)
	}
	for i, l := range strings.Split(frame(m), "\n") {
		if w := ansi.StringWidth(l); w > 90 {
			t.Errorf("line %d is %d wide after a resize to 90", i, w)
		}
	}
	scrolled := step(m, press("pgdown"))
	if m.detail.vp.TotalLineCount() > m.detail.vp.Height() && scrolled.detail.vp.YOffset() == 0 {
		t.Error("pgdown did not scroll the detail")
	}
}

// TestRowCache checks that a row comes back without rendering while its prefix and cells
// are the same, and is rendered again when any of them changed or the cache was cleared.
func TestRowCache(t *testing.T) {
	var c rowCache
	renders := 0
	get := func(prefix string, cells ...string) string {
		return c.get(prefix, cells, func() string { renders++; return prefix + strings.Join(cells, "|") })
	}
	if get(" ", "a", "b") != " a|b" || get(" ", "a", "b") != " a|b" || renders != 1 {
		t.Fatalf("the same row rendered %d times", renders)
	}
	if get("›", "a", "b") != "›a|b" || get(" ", "ab", "") != " ab|" || renders != 3 {
		t.Fatalf("changed prefix or cells: %d renders, want 3", renders)
	}
	for i := range 2 * rowCacheSize {
		get(" ", strconv.Itoa(i))
	}
	if n := len(c.cur) + len(c.prev); n > 2*rowCacheSize {
		t.Errorf("%d rows held, want at most %d", n, 2*rowCacheSize)
	}
	c.clear()
	get(" ", "a", "b")
	if renders != 3+2*rowCacheSize+1 {
		t.Errorf("after clear: %d renders", renders)
	}
}

// TestSnapshotShowsChangedRows checks that rows kept across snapshots still show what
// changed in them.
func TestSnapshotShowsChangedRows(t *testing.T) {
	m, _ := loaded(t, 160, 40)
	s, _ := fixture()
	s.Accounts[1].Documents[0].Attempts = 7
	s.Accounts[1].Windows[0].Remaining = 33
	m = step(m, snapshotMsg{s})
	f := ansi.Strip(frame(m))
	if !regexp.MustCompile(`FE-981 .* 7 `).MatchString(f) || !strings.Contains(f, "33/60") {
		t.Errorf("the snapshot's new attempts and budget are not shown:\n%s", f)
	}
}

// TestTypedFilterNarrowsLikeARebuild types a filter key by key over thousands of documents,
// with sort changes, a snapshot and a deletion in between, and checks at every step that
// the view (narrowed where it can be) is the one a full filter and sort gives, and that
// the cursor stays on its document while it matches.
func TestTypedFilterNarrowsLikeARebuild(t *testing.T) {
	s := bigSnapshot(7, 5_000)
	m := New(newMemBackend(s, nil), Options{Now: fixedNow})
	m = step(m, tea.ColorProfileMsg{Profile: colorprofile.ASCII}, tea.WindowSizeMsg{Width: 160, Height: 40}, snapshotMsg{s}, press("tab"))
	check := func(when string) {
		t.Helper()
		want := newDocuments(m.st)
		want.all, want.filter, want.sortCol, want.desc = m.docs.all, m.docs.filter, m.docs.sortCol, m.docs.desc
		want.rebuild(docKey{}, false)
		if !slices.Equal(m.docs.view, want.view) {
			t.Fatalf("%s (filter %q): the view has %d documents, a rebuild %d", when, m.docs.filter.text, len(m.docs.view), len(want.view))
		}
	}
	m = step(m, press("j"), press("j"), press("/"))
	for _, k := range strings.Split("message number 1", "") {
		before, _ := m.docs.selected()
		m = step(m, press(k))
		check("typed " + k)
		if after, ok := m.docs.selected(); ok && strings.Contains(searchText(before), m.docs.filter.text) && keyOf(after) != keyOf(before) {
			t.Fatalf("typing %q moved the cursor off %s, which still matches", k, before.ID)
		}
	}
	m = step(m, press("backspace"), press("backspace")) // "message number"
	check("after backspaces")
	m = step(m, press(" "), press("2"), press("enter"), press("s"), press("/"), press("3"))
	check("after a sort change")
	m = step(m, snapshotMsg{bigSnapshot(7, 4_000)}, press("4"))
	check("after a snapshot")
	if len(m.docs.view) == 0 {
		t.Fatal("the filter matched nothing: the test checked only empty views")
	}
}

// TestCursorOpensOnTheTop: until the operator moves a list's cursor (or acts on its row),
// snapshots that add documents above it or re-sort the accounts leave it on the first
// row, the worst account and the first document, instead of carrying it down the list
// with the row it first landed on. Once the operator has chosen a row, it follows it.
func TestCursorOpensOnTheTop(t *testing.T) {
	m, _ := loaded(t, 120, 40)
	worst := m.accounts.items[0].state.Account.Name
	s := newsSnapshot() // FE-982 appears, sorted first
	for i := range s.Accounts {
		if s.Accounts[i].Account.Name == worst {
			s.Accounts[i].Health, s.Accounts[i].LastError, s.Accounts[i].Err = model.HealthUp, nil, ""
		}
	}
	fresh := step(m, snapshotMsg{s})
	if d, _ := fresh.docs.selected(); fresh.docs.list.cursor != 0 || d.Number != "FE-982" {
		t.Errorf("untouched, the documents' cursor is on row %d (%s), want the first", fresh.docs.list.cursor, d.Number)
	}
	if name, _ := fresh.accounts.selectedAccount(); fresh.accounts.list.cursor != 0 || name == worst {
		t.Errorf("untouched, the accounts' cursor is on row %d (%s), want the first after %s got better", fresh.accounts.list.cursor, name, worst)
	}
	if !strings.Contains(ansi.Strip(frame(fresh)), "[1/8]") {
		t.Errorf("the documents' title does not say the first row:\n%s", ansi.Strip(frame(fresh)))
	}

	// A Model shares its lists with its copies: each case starts from a dashboard of its own.
	m, _ = loaded(t, 120, 40)
	moved := step(m, press("j"), press("k"), snapshotMsg{s})
	if d, _ := moved.docs.selected(); d.Number == "FE-982" {
		t.Error("a cursor the operator moved did not stay on its document")
	}
	m, _ = loaded(t, 120, 40)
	opened := step(m, press("tab"), press("enter"), snapshotMsg{s}, press("esc"))
	if name, _ := opened.accounts.selectedAccount(); name != worst {
		t.Errorf("back from %s's view, the cursor is on %s", worst, name)
	}
	m, _ = loaded(t, 120, 40)
	marked := step(m, press("space"), snapshotMsg{s})
	if d, _ := marked.docs.selected(); d.Number == "FE-982" {
		t.Error("a document marked where the cursor opened lost the cursor")
	}
}
