package ui

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"emitop/model"
)

// runCmd feeds the model what cmd produces, and what that produces, as a program would;
// only the retry dialog's messages are followed (the clock and the cursor blink never end).
func runCmd(m Model, cmd tea.Cmd) Model {
	if cmd == nil {
		return m
	}
	switch msg := cmd().(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			m = runCmd(m, c)
		}
	case retryPlanMsg, retryAuthMsg, retryProgressMsg, retryDoneMsg, refusedMsg:
		next, c := m.Update(msg)
		m = runCmd(next.(Model), c)
	}
	return m
}

// hit presses k and follows the dialog's commands it starts.
func hit(m Model, k string) Model {
	next, cmd := m.Update(press(k))
	return runCmd(next.(Model), cmd)
}

// cursorTo moves the cursor onto the document numbered number.
func cursorTo(t *testing.T, m Model, number string) Model {
	t.Helper()
	m = step(m, press("g"))
	for range len(m.docs.view) {
		if selectedDoc(t, m) == number {
			return m
		}
		m = step(m, press("down"))
	}
	t.Fatalf("no document %s in view", number)
	return m
}

// markedNumbers is the numbers of the marked documents, sorted.
func markedNumbers(m Model) []string {
	var out []string
	for _, d := range m.docs.marked() {
		out = append(out, d.Number)
	}
	slices.Sort(out)
	return out
}

// rowOf is the rendered line of the document numbered number, escapes removed.
func rowOf(t *testing.T, m Model, number string) string {
	t.Helper()
	for _, l := range strings.Split(ansi.Strip(frame(m)), "\n") {
		if strings.Contains(l, number) {
			return l
		}
	}
	t.Fatalf("no row shows %s:\n%s", number, ansi.Strip(frame(m)))
	return ""
}

func TestMarksSurviveSnapshots(t *testing.T) {
	m, _ := loaded(t, 160, 48)
	m = cursorTo(t, m, "FE-981")
	m = step(m, press(" "))
	m = cursorTo(t, m, "SETP990000002")
	m = step(m, press(" "))
	if got := markedNumbers(m); !slices.Equal(got, []string{"FE-981", "SETP990000002"}) {
		t.Fatalf("marked %v", got)
	}
	if row := rowOf(t, m, "FE-981"); !strings.HasPrefix(row, " *") {
		t.Errorf("a marked row shows no mark in its gutter: %q", row)
	}
	if row := rowOf(t, m, "SETP990000002"); !strings.HasPrefix(row, "›*") {
		t.Errorf("the marked row under the cursor: %q", row)
	}
	if row := rowOf(t, m, "DTE-01-0000001"); !strings.HasPrefix(row, "  ") {
		t.Errorf("an unmarked row: %q", row)
	}
	if !strings.Contains(frame(m), "2 marked") {
		t.Error("the title does not count the marks")
	}

	// The next snapshot: new document values (a new pointer for each), another order,
	// and SETP990000002 gone (settled).
	s, _ := fixture()
	s.Accounts[1].Documents[0].Attempts = 7
	s.Accounts[2].Documents = nil
	slices.Reverse(s.Accounts)
	m = step(m, snapshotMsg{s})
	if got := markedNumbers(m); !slices.Equal(got, []string{"FE-981"}) {
		t.Fatalf("after a snapshot, marked %v", got)
	}
	if row := rowOf(t, m, "FE-981"); []rune(row)[1] != '*' {
		t.Errorf("the mark did not survive the snapshot: %q", row)
	}
	if d := m.docs.marked()[0]; d.Attempts != 7 {
		t.Errorf("the marked document is the old one: attempts %d", d.Attempts)
	}
	m = cursorTo(t, m, "FE-981")
	m = step(m, press(" "))
	if got := markedNumbers(m); len(got) != 0 {
		t.Errorf("space did not unmark: %v", got)
	}
}

func TestMarkAllRespectsFilter(t *testing.T) {
	m, b := loaded(t, 160, 48)
	m = step(m, append(typed(":rejected"), press("enter"))...)
	m = step(m, append([]tea.Msg{press("/")}, typed("e")...)...)
	m = step(m, press("enter"))
	want := visibleNumbers(m)
	slices.Sort(want)
	if len(want) < 2 || len(want) == len(m.docs.all) {
		t.Fatalf("the filter shows %v: want a few of %d", want, len(m.docs.all))
	}
	m = step(m, press("*"))
	if got := markedNumbers(m); !slices.Equal(got, want) {
		t.Fatalf("* marked %v, want what the filter shows %v", got, want)
	}
	m = step(m, press("*"))
	if got := markedNumbers(m); len(got) != 0 {
		t.Fatalf("* again left %v marked", got)
	}
	m = step(m, press("*"))
	m = hit(m, "R")
	if m.screen != screenRetry || len(b.plans) != 1 {
		t.Fatalf("R did not plan: screen %d, %d plans", m.screen, len(b.plans))
	}
	var planned []string
	for _, d := range b.plans[0].Docs {
		planned = append(planned, d.Number)
	}
	slices.Sort(planned)
	if !slices.Equal(planned, want) {
		t.Errorf("R planned %v, want the marked %v", planned, want)
	}
}

func TestRetryWithoutMarksTakesTheCursor(t *testing.T) {
	m, b := loaded(t, 120, 40)
	m = cursorTo(t, m, "FE-981")
	m = hit(m, "R")
	if len(b.plans) != 1 || len(b.plans[0].Docs) != 1 || b.plans[0].Docs[0].ID != "981" {
		t.Fatalf("planned %+v", b.plans)
	}
	if r := b.plans[0]; r.Operator != "local" || r.Force {
		t.Errorf("request %+v", r)
	}
	m = hit(m, "n")
	if m.screen != screenDashboard || !strings.Contains(frame(m), "nothing sent") || len(b.reports) != 0 {
		t.Errorf("n did not cancel: screen %d, reports %d", m.screen, len(b.reports))
	}
}

// recorder is an Options.Authorize that records what it is asked and answers err.
type recorder struct {
	mu    sync.Mutex
	asked []model.Action
	err   error
}

func (r *recorder) authorize(_ context.Context, a model.Action) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, a)
	return r.err
}

func TestReadOnlyRefusesRetry(t *testing.T) {
	for _, withHook := range []bool{false, true} {
		t.Run(fmt.Sprint("hook=", withHook), func(t *testing.T) {
			s, ev := fixture()
			b := newMemBackend(s, ev)
			rec := &recorder{err: fmt.Errorf("retry by victor: viewers see everything and change nothing")}
			o := Options{Now: fixedNow, Operator: "victor", ReadOnly: true}
			if withHook {
				o.Authorize = rec.authorize
			}
			m := step(New(b, o), tea.WindowSizeMsg{Width: 120, Height: 40}, snapshotMsg{s})
			m = cursorTo(t, m, "DTE-01-0000001")
			m = step(m, press(" "))
			m = hit(m, "R")
			if m.screen != screenDashboard || len(b.plans) != 0 {
				t.Fatalf("a viewer got a plan: screen %d, plans %d", m.screen, len(b.plans))
			}
			lines := strings.Split(ansi.Strip(frame(m)), "\n")
			status := lines[len(lines)-2]
			if !strings.Contains(status, "viewers see everything and change nothing") {
				t.Errorf("the refusal is not on the status line: %q", status)
			}
			if withHook && (len(rec.asked) != 1 || rec.asked[0].Kind != "retry" || rec.asked[0].DocID != "a1" || rec.asked[0].Account != "sv-main") {
				t.Errorf("authorize asked %+v", rec.asked)
			}
		})
	}
}

func TestRetryAuthorizeRefusal(t *testing.T) {
	s, ev := fixture()
	b := newMemBackend(s, ev)
	rec := &recorder{err: fmt.Errorf("no retries today")}
	m := step(New(b, Options{Now: fixedNow, Operator: "alice", Fingerprint: "SHA256:abc", Authorize: rec.authorize}),
		tea.WindowSizeMsg{Width: 120, Height: 40}, snapshotMsg{s})
	m = cursorTo(t, m, "FE-981")
	m = hit(m, "R")
	m = hit(m, "y")
	if len(b.reports) != 0 {
		t.Fatal("the batch ran although authorize refused")
	}
	if !strings.Contains(frame(m), "refused: no retries today") || m.retry.phase != retryConfirm {
		t.Errorf("the refusal is not shown in the dialog:\n%s", ansi.Strip(frame(m)))
	}
	if len(rec.asked) != 1 || rec.asked[0] != (model.Action{Kind: "retry", Account: "alegra-co", DocID: "981"}) {
		t.Errorf("authorize asked %+v", rec.asked)
	}
	if b.plans[0].Operator != "alice" || b.plans[0].Fingerprint != "SHA256:abc" {
		t.Errorf("the plan does not name the operator: %+v", b.plans[0])
	}
}

// markThree marks a fix, a wait and a verify verdict.
func markThree(t *testing.T, m Model) Model {
	t.Helper()
	for _, n := range []string{"DTE-01-0000001", "FE-981", "F2026/7"} {
		m = cursorTo(t, m, n)
		m = step(m, press(" "))
	}
	return m
}

// TestRetryGolden walks the dialog through its phases at every golden size: the plan, its
// requests, the force reason, the forced plan, a batch under way, and its cancelled
// summary; testdata/TestRetryGolden/<phase>_<size>.golden (go test ./ui -update).
func TestRetryGolden(t *testing.T) {
	for _, size := range goldenSizes {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			m, b := loaded(t, size[0], size[1])
			b.hold = true
			m = markThree(t, m)
			check := func(name string, m Model) {
				t.Helper()
				t.Run(name, func(t *testing.T) {
					golden.RequireEqual(t, []byte(frame(m)))
				})
			}
			m = hit(m, "R")
			check("confirm", m)
			f := ansi.Strip(frame(m))
			for _, want := range []string{"Retry 3 documents (3 marked): 2 to resend, 1 to skip", "4 requests", "about 6s at the current budget",
				"skip", "verdict fix", "FE-981", "Resend 2 documents?"} {
				if !strings.Contains(f, want) {
					t.Errorf("the confirmation lacks %q:\n%s", want, f)
				}
			}
			if strings.Contains(f, "hidden") && strings.Contains(frame(m), "\x1b[8m") {
				t.Error("a provider's hidden text reached the dialog")
			}

			m = hit(m, "d")
			check("requests", m)
			if f := ansi.Strip(frame(m)); !strings.Contains(f, "Authorization: [redacted]") || !strings.Contains(f, "POST https://alegra.sandbox.test/v1/documents/981/resend") {
				t.Errorf("d does not show the requests:\n%s", f)
			}
			m = hit(m, "d")

			m = hit(m, "f")
			m = hit(m, "enter")
			if m.retry.phase != retryReason || !strings.Contains(frame(m), "forcing needs a reason") {
				t.Fatalf("force without a reason was taken: phase %d", m.retry.phase)
			}
			m = step(m, typed("NIT corrected by hand")...)
			check("reason", m)
			m = hit(m, "enter")
			check("forced", m)
			if last := b.plans[len(b.plans)-1]; !last.Force || last.Reason != "NIT corrected by hand" {
				t.Fatalf("the forced plan's request: %+v", last)
			}
			if f := ansi.Strip(frame(m)); !strings.Contains(f, "3 to resend") || !strings.Contains(f, "FORCED") {
				t.Errorf("the forced plan:\n%s", f)
			}

			// Confirm: the batch runs in its own goroutine; its first document finishes,
			// then it holds until cancelled.
			next, cmd := m.Update(press("y"))
			m = next.(Model)
			next, cmd = m.Update(cmd())
			m = next.(Model)
			cmds := cmd().(tea.BatchMsg)
			done := make(chan tea.Msg, 1)
			go func() { done <- cmds[0]() }()
			feed := cmds[1]
			for len(m.retry.results) == 0 {
				next, feed = m.Update(feed())
				m = next.(Model)
			}
			check("running", m)
			if f := ansi.Strip(frame(m)); !strings.Contains(f, "1 done") || !strings.Contains(f, "accepted") || !strings.Contains(f, "esc cancels") {
				t.Errorf("the batch under way:\n%s", f)
			}

			m = step(m, press("esc"))
			if !strings.Contains(frame(m), "cancelling") {
				t.Error("esc does not say it is cancelling")
			}
			next, _ = m.Update(<-done)
			m = next.(Model)
			check("summary", m)
			rep := b.reports[0]
			if !rep.Cancelled || rep.Results[1].Outcome != model.OutcomeSkipped || rep.Results[1].Detail != "cancelled before it was sent" {
				t.Errorf("esc did not cancel the batch's context: %+v", rep)
			}
			f = ansi.Strip(frame(m))
			if !strings.Contains(f, "Retry finished: 1 accepted, 0 rejected, 2 skipped, 0 unknown") || !strings.Contains(f, "cancelled") {
				t.Errorf("the summary:\n%s", f)
			}
			if len(m.docs.marks) != 0 {
				t.Error("the marks were not cleared")
			}
			if b.refreshes() == 0 {
				t.Error("no poll was asked for after the batch")
			}
			m = hit(m, "enter")
			if m.screen != screenDashboard || strings.Contains(frame(m), "marked") {
				t.Error("enter did not return to an unmarked dashboard")
			}
		})
	}
}

// TestRetryRunsToTheEnd confirms a plan and follows the batch to its summary, with no
// cancellation: every resend accepted, the skipped one skipped.
func TestRetryRunsToTheEnd(t *testing.T) {
	m, b := loaded(t, 120, 40)
	m = markThree(t, m)
	m = hit(m, "R")
	m = hit(m, "enter")
	if len(b.reports) != 1 {
		t.Fatalf("%d batches ran", len(b.reports))
	}
	f := ansi.Strip(frame(m))
	if !strings.Contains(f, "Retry finished: 2 accepted, 0 rejected, 1 skipped, 0 unknown") || strings.Contains(f, "cancelled") {
		t.Errorf("the summary:\n%s", f)
	}
	if m.retry.phase != retryDone || len(m.retry.results) != 3 {
		t.Errorf("phase %d, %d results", m.retry.phase, len(m.retry.results))
	}
	// The attempts of the documents resent change on screen as soon as the batch ends,
	// before any poll.
	m = hit(m, "enter")
	for _, n := range []string{"F2026/7", "FE-981"} {
		m = cursorTo(t, m, n)
		d, _ := m.docs.selected()
		if got, was := m.docs.attemptsOf(d), d.Attempts; got != was+1 {
			t.Errorf("%s: %d attempts after the retry, %d before", n, got, was)
		}
		if f := ansi.Strip(frame(m)); !regexp.MustCompile(regexp.QuoteMeta(n) + ` .* ` + strconv.Itoa(d.Attempts+1) + ` `).MatchString(f) {
			t.Errorf("%s: the row does not show %d attempts:\n%s", n, d.Attempts+1, f)
		}
	}
}

// TestRetryFitsTerminal renders each phase of the dialog at sizes from the minimum up, in
// the richest profile: no line wider than the terminal, exactly its height.
func TestRetryFitsTerminal(t *testing.T) {
	for _, size := range [][2]int{{minWidth, minHeight}, {80, 24}, {120, 40}, {250, 70}} {
		m, _ := loaded(t, size[0], size[1], tea.ColorProfileMsg{Profile: colorprofile.TrueColor})
		m = markThree(t, m)
		phases := map[string]Model{}
		m = hit(m, "R")
		phases["confirm"] = m
		m = hit(m, "d")
		phases["requests"] = m
		m = hit(m, "f")
		m = step(m, typed(strings.Repeat("a long reason ", 30))...)
		phases["reason"] = m
		m = hit(m, "enter")
		m = hit(m, "y")
		phases["summary"] = m
		for name, pm := range phases {
			lines := strings.Split(frame(pm), "\n")
			if len(lines) != size[1] {
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

// TestEveryScreenFitsAfterResize opens each screen (the retry dialog and the help screen
// among them) at one size, then resizes the terminal over widths 80..250 and heights
// 24..70: every frame must keep its lines within the width and fill the height exactly,
// screens laid out while hidden included.
func TestEveryScreenFitsAfterResize(t *testing.T) {
	screens := map[string]func(t *testing.T, m Model, b *memBackend) Model{
		"dashboard": func(_ *testing.T, m Model, _ *memBackend) Model { return m },
		"help":      func(_ *testing.T, m Model, _ *memBackend) Model { return hit(m, "?") },
		"account": func(_ *testing.T, m Model, b *memBackend) Model {
			m = step(m, press("tab"))
			next, cmd := m.Update(press("enter"))
			return step(next.(Model), cmd())
		},
		"detail": func(_ *testing.T, m Model, b *memBackend) Model {
			m = step(m, press("enter"))
			d := m.detail.doc
			return step(m, fetchDocEvents(b, keyOf(&d))())
		},
		"help-over-detail": func(_ *testing.T, m Model, _ *memBackend) Model { return hit(hit(m, "enter"), "?") },
		"history": func(_ *testing.T, m Model, b *memBackend) Model {
			m = step(m, append(typed(":history"), press("enter"))...)
			return step(m, fetchEvents(b, eventRequest(m.filter))())
		},
		"retry-confirm": func(t *testing.T, m Model, _ *memBackend) Model { return hit(hit(markThree(t, m), "R"), "d") },
		"retry-summary": func(t *testing.T, m Model, _ *memBackend) Model {
			return hit(hit(markThree(t, m), "R"), "y")
		},
	}
	widths := []int{80, 81, 99, 120, 163, 200, 250}
	heights := []int{24, 25, 37, 50, 70}
	want := map[string]screen{"dashboard": screenDashboard, "help": screenHelp, "detail": screenDetail, "account": screenAccount,
		"help-over-detail": screenHelp, "history": screenHistory, "retry-confirm": screenRetry, "retry-summary": screenRetry}
	for name, show := range screens {
		m, b := loaded(t, 120, 40, tea.ColorProfileMsg{Profile: colorprofile.TrueColor})
		m = show(t, m, b)
		if m.screen != want[name] || (name == "retry-summary" && m.retry.phase != retryDone) {
			t.Fatalf("%s: screen %d, retry phase %d", name, m.screen, m.retry.phase)
		}
		for _, w := range widths {
			for _, h := range heights {
				m = step(m, tea.WindowSizeMsg{Width: w, Height: h})
				lines := strings.Split(frame(m), "\n")
				if len(lines) != h {
					t.Errorf("%s at %dx%d: %d lines", name, w, h, len(lines))
				}
				for i, l := range lines {
					if lw := ansi.StringWidth(l); lw > w {
						t.Errorf("%s at %dx%d: line %d is %d wide: %q", name, w, h, i, lw, ansi.Strip(l))
					}
				}
			}
		}
	}
}

// TestRetryWording: the dialog words the engine's reasons its own way: a document the
// operator may force says the key that forces it; the rest say the fact as it is.
func TestRetryWording(t *testing.T) {
	held := model.RetryReason{Kind: model.ReasonHeld, Verdict: model.VerdictFix}
	verdict := model.RetryReason{Kind: model.ReasonVerdict, Verdict: model.VerdictRetry}
	cases := []struct {
		got, want string
	}{
		{reasonText(held), "verdict fix: the data must change first (f forces it, with a reason)"},
		{reasonText(verdict), "verdict retry: read the status, then resend if still rejected"},
		{detailText(model.RetryResult{Outcome: model.OutcomeSkipped, Why: held, Detail: held.String()}), "verdict fix: the data must change first (f forces it, with a reason)"},
		{detailText(model.RetryResult{Outcome: model.OutcomeAccepted, Detail: "resent: accepted"}), "resent: accepted"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}
