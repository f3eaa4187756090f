package ui

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"emitop/model"
)

// screensOf opens every screen of a loaded dashboard, in a fixed order, and returns each
// frame: what the marker tests look at.
func screensOf(t *testing.T, m Model, b *memBackend) map[string]string {
	t.Helper()
	out := map[string]string{"dashboard": frame(m)}
	a := step(m, press("tab"), press("j"))
	out["accounts"] = frame(a)
	next, cmd := a.Update(press("enter"))
	out["account"] = frame(step(next.(Model), cmd()))
	d := step(m, press("j"), press("j"), press("j"), press("j"), press("enter")) // DTE-01-0000001, rejected: fix
	doc := d.detail.doc
	out["detail"] = frame(step(d, fetchDocEvents(b, keyOf(&doc))()))
	h := step(m, append(typed(":history"), press("enter"))...)
	out["history"] = frame(step(h, fetchEvents(b, eventRequest(h.filter))()))
	out["help"] = frame(step(m, press("?")))
	marked := step(m, press("space"), press("j"), press("j"), press("space"))
	out["marked"] = frame(marked)
	out["retry"] = frame(hit(marked, "R"))
	return out
}

// TestNoColorKeepsEveryMarker renders every screen in true colour and with NO_COLOR: the
// NO_COLOR frames carry no colour at all, the same text as the coloured ones (so colour
// never carries what the text does not), and every marker the dashboard uses.
func TestNoColorKeepsEveryMarker(t *testing.T) {
	news := newsSnapshot()
	colour, cb := loaded(t, 200, 50, tea.ColorProfileMsg{Profile: colorprofile.TrueColor}, snapshotMsg{news})
	plain, pb := loaded(t, 200, 50, tea.ColorProfileMsg{Profile: colorprofile.TrueColor}, tea.EnvMsg{"NO_COLOR=1"}, snapshotMsg{news})
	coloured, bare := screensOf(t, colour, cb), screensOf(t, plain, pb)
	var all strings.Builder
	for name, f := range bare {
		if c := colourParams(f); len(c) > 0 {
			t.Errorf("%s with NO_COLOR: colours %v", name, c)
		}
		if ansi.Strip(f) != ansi.Strip(coloured[name]) {
			t.Errorf("%s: the text differs with and without colour:\n%s\n---\n%s", name, ansi.Strip(coloured[name]), ansi.Strip(f))
		}
		if len(colourParams(coloured[name])) == 0 {
			t.Errorf("%s in true colour has no colour: the comparison proves nothing", name)
		}
		all.WriteString(ansi.Strip(f))
	}
	for _, marker := range []string{
		sevDown.symbol(), sevRefused.symbol(), sevDegraded.symbol(), sevLow.symbol(), // severities
		" LOW", " OUT", "unknown", "STALE 3m", "1 STALE", "holds", "out in 3m at 4/min", // budgets
		"›", "›*", "2 marked", "+alegra-co", "~alegra-co", "2 new or changed", // cursor, marks, news
		"[1/5]", "/8]", "▼", cellOK, cellFailed, // positions, timeline
		"VERDICT FIX", "refused", "down", "degraded",
	} {
		if !strings.Contains(all.String(), marker) {
			t.Errorf("no screen shows the marker %q without colour", marker)
		}
	}
}

// TestHints: the footer lists the keys of the screen the operator is on, q quit is never
// cut off at any width, and no retry is offered to a viewer or in the history.
func TestHints(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		for w := minWidth; w <= 250; w += 7 {
			s, ev := fixture()
			b := newMemBackend(s, ev)
			m := New(b, Options{Now: fixedNow, ReadOnly: readOnly, Location: zone})
			m = step(m, tea.WindowSizeMsg{Width: w, Height: 30}, snapshotMsg{s})
			for name, f := range screensOf(t, m, b) {
				lines := strings.Split(ansi.Strip(f), "\n")
				hints := lines[len(lines)-1]
				if name != "retry" && !strings.HasSuffix(hints, "q quit") {
					t.Errorf("%s at width %d (read-only %v): %q does not end with q quit", name, w, readOnly, hints)
				}
				if (readOnly || name == "history" || name == "help" || name == "account") && strings.Contains(hints, "R retry") {
					t.Errorf("%s at width %d (read-only %v) offers a retry: %q", name, w, readOnly, hints)
				}
				if name == "dashboard" && !readOnly && w >= 80 && !strings.Contains(hints, "R retry") {
					t.Errorf("the dashboard at %d does not offer R retry: %q", w, hints)
				}
				if name == "history" && w >= 80 && !strings.Contains(hints, "enter open") {
					t.Errorf("the history at %d: %q", w, hints)
				}
			}
		}
	}
}

// TestHeaderNamesTheWorst: at every width the header names the worst account, why when
// there is room, and the clock with its zone; zero counts are not painted in alarm colours.
func TestHeaderNamesTheWorst(t *testing.T) {
	for w := minWidth; w <= 250; w += 3 {
		m, _ := loaded(t, w, 24)
		top := ansi.Strip(strings.Split(frame(m), "\n")[0])
		if !strings.Contains(top, "✖ factus") || !strings.HasSuffix(top, "09:04:05 CST") || !strings.Contains(top, "[DEMO]") {
			t.Errorf("header at %d: %q", w, top)
		}
		if w >= 80 && !strings.Contains(top, "✖ factus-prod down: no answer") {
			t.Errorf("header at %d does not say why: %q", w, top)
		}
		if width(top) > w {
			t.Errorf("header at %d is %d wide", w, width(top))
		}
	}
	// Nothing down: the header's "0 down" is not red.
	s, ev := fixture()
	s.Accounts = s.Accounts[3:4] // certi-es only: up
	m := New(newMemBackend(s, ev), Options{Now: fixedNow, Location: zone})
	m = step(m, tea.ColorProfileMsg{Profile: colorprofile.ANSI}, tea.WindowSizeMsg{Width: 160, Height: 30}, snapshotMsg{s})
	top := strings.Split(frame(m), "\n")[0]
	red := m.st.health[model.HealthDown].Render("0 down")
	if !strings.Contains(ansi.Strip(top), "0 down") || strings.Contains(top, red) {
		t.Errorf("a zero is drawn in alarm colours: %q", top)
	}
	if strings.Contains(ansi.Strip(top), ":") && strings.Contains(ansi.Strip(top), "certi-es") {
		t.Errorf("a healthy dashboard names a worst account: %q", ansi.Strip(top))
	}
}

// TestTooSmall: below the smallest size that works, one line says the size it needs.
func TestTooSmall(t *testing.T) {
	m, _ := loaded(t, minWidth-1, 30)
	if f := frame(m); f != "too small: 59×30, emitop needs 60×14" {
		t.Errorf("frame %q", f)
	}
	m, _ = loaded(t, 70, minHeight-1)
	if f := frame(m); strings.Contains(f, "\n") || !strings.Contains(f, "needs 60×14") {
		t.Errorf("frame %q", f)
	}
}

// TestNeverReachedIsUnknown: an account no poll has reached shows its budget as unknown,
// never as a full gauge, whatever limits the governor assumes.
func TestNeverReachedIsUnknown(t *testing.T) {
	s, ev := fixture()
	s.Accounts[2].Windows = []model.Window{{Name: "minute", Limit: 60, Remaining: 60, Reset: -1, ExhaustsIn: -1}}
	m := New(newMemBackend(s, ev), Options{Now: fixedNow, Location: zone})
	m = step(m, tea.WindowSizeMsg{Width: 200, Height: 40}, snapshotMsg{s})
	for _, l := range strings.Split(ansi.Strip(frame(m)), "\n") {
		if !strings.Contains(l, "factus-prod   ") || !strings.Contains(l, "down") {
			continue
		}
		if strings.Contains(l, "60/60") || strings.Contains(l, "█") || !strings.Contains(l, "unknown") {
			t.Errorf("never reached, the row reads %q", l)
		}
	}
	next, cmd := step(m, press("tab")).Update(press("enter"))
	m = step(next.(Model), cmd())
	if f := ansi.Strip(frame(m)); !strings.Contains(f, "budget unknown: the account was never reached") {
		t.Errorf("the account view:\n%s", f)
	}
}

// TestChangesMarkedUntilSeen: documents that appear or change after the first complete
// snapshot are marked; those on screen lose the mark once the operator acts with them in
// view, those off screen keep it until they are.
func TestChangesMarkedUntilSeen(t *testing.T) {
	m, _ := loaded(t, 120, 16) // the documents panel shows 4 rows
	if m.docs.fresh != 0 {
		t.Fatalf("%d news in the first snapshot", m.docs.fresh)
	}
	s, _ := fixture()
	later := clock.Add(time.Second)
	s.Accounts[4].Documents[1].Changed = later // sv-branch's pending document: the last row
	s.Accounts[1].Documents = append(s.Accounts[1].Documents, model.Document{Account: "alegra-co", ID: "new",
		Number: "FE-999", Status: model.StatusRejected, FirstSeen: later, Changed: later})
	m = step(m, snapshotMsg{s})
	f := ansi.Strip(frame(m))
	if m.docs.fresh != 2 || !strings.Contains(f, "2 new or changed") || !strings.Contains(f, "+alegra-co") {
		t.Fatalf("after the snapshot, %d news:\n%s", m.docs.fresh, f)
	}
	m = step(m, press("j")) // the operator acts: the rows on screen are seen
	if m.docs.fresh != 1 || strings.Contains(ansi.Strip(frame(m)), "+alegra-co") {
		t.Fatalf("after a key, %d news:\n%s", m.docs.fresh, ansi.Strip(frame(m)))
	}
	m = step(m, press("G"))
	if !strings.Contains(ansi.Strip(frame(m)), "~sv-branch") && !strings.Contains(ansi.Strip(frame(m)), "~ sv-branch") {
		t.Fatalf("the change below the fold lost its mark before it was seen:\n%s", ansi.Strip(frame(m)))
	}
	m = step(m, press("k"))
	if m.docs.fresh != 0 {
		t.Errorf("%d news after everything was seen", m.docs.fresh)
	}
	// The next snapshot with the same states brings no news.
	m = step(m, snapshotMsg{s})
	if m.docs.fresh != 0 {
		t.Errorf("%d news from a snapshot that changed nothing", m.docs.fresh)
	}
}

// TestBellOnWorseHealth: with --bell, a snapshot in which an account's health got worse
// rings once; one that repeats it, or improves, does not.
func TestBellOnWorseHealth(t *testing.T) {
	rings := func(m Model, s model.Snapshot) (Model, bool) {
		next, cmd := m.Update(snapshotMsg{s})
		return next.(Model), hasRaw(cmd, "\a")
	}
	s, ev := fixture()
	for _, bell := range []bool{true, false} {
		m := New(newMemBackend(s, ev), Options{Now: fixedNow, Bell: bell})
		m = step(m, tea.WindowSizeMsg{Width: 120, Height: 40})
		m, rang := rings(m, s)
		if rang {
			t.Error("the first snapshot rang")
		}
		worse, _ := fixture()
		worse.Accounts[3].Health = model.HealthDegraded // certi-es
		if m, rang = rings(m, worse); rang != bell {
			t.Errorf("bell %v: a worse health rang %v", bell, rang)
		}
		if m, rang = rings(m, worse); rang {
			t.Error("the same health rang again")
		}
		if _, rang = rings(m, s); rang {
			t.Error("a better health rang")
		}
	}
}

// hasRaw reports whether cmd (or a batch of them) prints raw.
func hasRaw(cmd tea.Cmd, raw string) bool {
	if cmd == nil {
		return false
	}
	switch msg := cmd().(type) {
	case tea.RawMsg:
		return msg.Msg == raw
	case tea.BatchMsg:
		for _, c := range msg {
			if hasRaw(c, raw) {
				return true
			}
		}
	}
	return false
}

// TestCopyThroughTheTerminal: y copies the number under the cursor, Y the provider's id,
// with OSC 52 on the program's output, and only when pressed.
func TestCopyThroughTheTerminal(t *testing.T) {
	s, ev := fixture()
	tm := teatest.NewTestModel(t, New(newMemBackend(s, ev), Options{Now: fixedNow, Location: zone}),
		teatest.WithInitialTermSize(120, 36),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ASCII)))
	waitFor(t, tm, "certi-es")
	osc := func(text string) string { return "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(text)) }
	for _, k := range []string{"j", "j", "j"} { // DTE-01-0000001, id a1
		tm.Send(press(k))
	}
	tm.Send(press("y"))
	var out bytes.Buffer
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		out.Write(b)
		return bytes.Contains(out.Bytes(), []byte(osc("DTE-01-0000001")))
	}, teatest.WithDuration(5*time.Second))
	tm.Send(press("Y"))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		out.Write(b)
		return bytes.Contains(out.Bytes(), []byte(osc("a1")))
	}, teatest.WithDuration(5*time.Second))
	if n := bytes.Count(out.Bytes(), []byte("\x1b]52;")); n != 2 {
		t.Errorf("%d clipboard writes for two key presses", n)
	}
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
}

// TestCommandCompletion: `:` completes commands and their arguments from the snapshot.
func TestCommandCompletion(t *testing.T) {
	m, _ := loaded(t, 120, 40)
	m = step(m, typed(":acc")...)
	if got := m.input.MatchedSuggestions(); len(got) != 5 || got[0] != "account sv-main" {
		t.Fatalf("completions of :acc: %v", got)
	}
	if f := ansi.Strip(frame(m)); !strings.Contains(f, "account sv-main · account alegra-co") || !strings.Contains(f, "tab complete") {
		t.Errorf("the footer does not list the completions:\n%s", f)
	}
	m = step(m, press("down"), press("tab"), press("enter"))
	if m.filter.account != "alegra-co" {
		t.Errorf("down, tab, enter filtered %+v", m.filter)
	}
	m = step(m, typed(":prov")...)
	if got := m.input.MatchedSuggestions(); strings.Join(got, ",") != "provider sv-dte,provider alegra,provider factus,provider certifactu" {
		t.Errorf("completions of :prov: %v", got)
	}
	m = step(m, press("esc"), press("/"))
	m = step(m, typed("acc")...)
	if got := m.input.MatchedSuggestions(); len(got) != 0 {
		t.Errorf("the filter completes: %v", got)
	}
}

// TestMarksHiddenByTheFilter: marks the filter hides are said in the documents' title and
// in the retry plan.
func TestMarksHiddenByTheFilter(t *testing.T) {
	m, _ := loaded(t, 160, 40)
	m = markThree(t, m) // DTE-01-0000001, FE-981 (rejected), F2026/7 (pending)
	m = runCommand(m, "rejected")
	if f := ansi.Strip(frame(m)); !strings.Contains(f, "3 marked, 1 hidden by the filter") {
		t.Errorf("the title:\n%s", f)
	}
	m = hit(m, "R")
	if f := ansi.Strip(frame(m)); !strings.Contains(f, "Retry 3 documents (3 marked, 1 hidden by the filter)") {
		t.Errorf("the plan:\n%s", f)
	}
	m = hit(hit(m, "esc"), "esc")
	if f := ansi.Strip(frame(m)); !strings.Contains(f, "3 marked") || strings.Contains(f, "hidden by the filter") {
		t.Errorf("with the filter cleared:\n%s", f)
	}
}

// TestHostileAccountText: what a provider said of an account (its error, its code) reaches
// the accounts panel, the header and the account view sanitized.
func TestHostileAccountText(t *testing.T) {
	s, ev := fixture()
	p := *s.Accounts[4].LastError
	p.Message, p.Code, p.Meaning = "bad\rGOOD \x1b[8mhidden\x1b[0m \u202eevil\nsecond line", "X\x1b[2J", ""
	s.Accounts[4].LastError = &p
	b := newMemBackend(s, ev)
	m := New(b, Options{Now: fixedNow, Location: zone})
	m = step(m, tea.WindowSizeMsg{Width: 200, Height: 50}, snapshotMsg{s}, press("tab"), press("j"))
	next, cmd := m.Update(press("enter"))
	m = step(next.(Model), cmd())
	for _, f := range []string{frame(m), frame(step(m, press("esc")))} {
		for _, bad := range []string{"\r", "\x1b[8m", "\x1b[2J", "\u202e"} {
			if strings.Contains(f, bad) {
				t.Errorf("%q reached the screen", bad)
			}
		}
	}
	if f := ansi.Strip(frame(m)); !strings.Contains(f, "bad␍GOOD hidden evil") || !strings.Contains(f, "second line") {
		t.Errorf("the account view does not show the message made visible:\n%s", f)
	}
}

// TestAcknowledgementsBounded: the documents seen are remembered for the documents listed,
// never for every document that ever went by.
func TestAcknowledgementsBounded(t *testing.T) {
	m, _ := loaded(t, 120, 40)
	for i := range 5 * ackSlack {
		m.docs.acked[docKey{"gone", strconv.Itoa(i)}] = clock
	}
	s, _ := fixture()
	m = step(m, snapshotMsg{s})
	if n := len(m.docs.acked); n > len(m.docs.all) {
		t.Errorf("%d acknowledgements kept for %d documents", n, len(m.docs.all))
	}
}

// TestSaysWhoPollsIt: an account another emitop process polls says which one and how
// fresh its state is; one that no process is known to poll says why, in its row too.
func TestSaysWhoPollsIt(t *testing.T) {
	s, ev := fixture()
	s.Accounts = s.Accounts[3:4] // certi-es, up
	polled := s
	polled.Accounts = []model.AccountState{s.Accounts[0]}
	polled.Accounts[0].PolledBy = "box-b/4121"
	polled.Accounts[0].LastPoll, polled.Accounts[0].LastGood = clock.Add(-12*time.Second), clock.Add(-12*time.Second)
	unpolled := s
	unpolled.Accounts = []model.AccountState{s.Accounts[0]}
	unpolled.Accounts[0].Unpolled = "not polled: this process cannot reach the store"
	for _, tt := range []struct {
		s         model.Snapshot
		row, view string
	}{
		{polled, "", "polled 12s ago by box-b/4121"},
		{unpolled, "not polled: this process cannot reach the store", "· not polled: this process cannot reach the store"},
	} {
		m := New(newMemBackend(tt.s, ev), Options{Now: fixedNow, Location: zone})
		m = step(m, tea.WindowSizeMsg{Width: 200, Height: 40}, snapshotMsg{tt.s})
		if f := ansi.Strip(frame(m)); !strings.Contains(f, tt.row) {
			t.Errorf("the row does not say %q:\n%s", tt.row, f)
		}
		next, cmd := step(m, press("tab")).Update(press("enter"))
		if f := ansi.Strip(frame(step(next.(Model), cmd()))); !strings.Contains(f, tt.view) {
			t.Errorf("the account view does not say %q:\n%s", tt.view, f)
		}
	}
}
