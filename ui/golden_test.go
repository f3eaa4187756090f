package ui

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// goldenSizes are the terminal sizes every screen is proven at: the smallest common one,
// a laptop's half screen, a wide monitor.
var goldenSizes = [][2]int{{80, 24}, {120, 36}, {200, 50}}

// TestGolden drives the whole program through teatest for each screen at every golden size,
// with a fixed clock, zone, data and colour profile (ASCII), and compares the final frame
// with testdata/TestGolden/<screen>_<size>.golden (go test ./ui -update rewrites them).
func TestGolden(t *testing.T) {
	news := newsSnapshot()
	screens := []struct {
		name string
		keys []tea.Msg
		wait string // text that shows once the screen's data has arrived
	}{
		{name: "dashboard"},
		{name: "accounts", keys: []tea.Msg{press("tab"), press("j")}},
		{name: "account", keys: []tea.Msg{press("tab"), press("j"), press("j"), press("j"), press("enter")}, wait: "▇"},
		{name: "account-refused", keys: []tea.Msg{press("tab"), press("j"), press("enter")}, wait: "HTTP 401"},
		{name: "detail", keys: []tea.Msg{press("down"), press("j"), press("down"), press("enter")}, wait: "RECHAZADO"},
		{name: "history", keys: append(typed(":hist"), press("enter")), wait: "draft"},
		{name: "help", keys: []tea.Msg{press("?")}},
		{name: "help-scrolled", keys: []tea.Msg{press("?"), press("pgdown")}},
		{name: "filter", keys: append([]tea.Msg{press("/")}, typed("rej")...)},
		{name: "command-error", keys: append(typed(":frobnicate"), press("enter"))},
		{name: "complete", keys: typed(":acc"), wait: "account sv-main"},
		{name: "marks-hidden", keys: append([]tea.Msg{press("space"), press("j"), press("space")}, append(typed(":rej"), press("enter"))...), wait: "hidden"},
		{name: "news", keys: []tea.Msg{snapshotMsg{news}}, wait: "FE-982"},
	}
	for _, size := range goldenSizes {
		for _, sc := range screens {
			t.Run(fmt.Sprintf("%s_%dx%d", sc.name, size[0], size[1]), func(t *testing.T) {
				s, ev := fixture()
				m := New(newMemBackend(s, ev), Options{Now: fixedNow, Env: "prod", Operator: "local", Location: zone})
				tm := teatest.NewTestModel(t, m,
					teatest.WithInitialTermSize(size[0], size[1]),
					teatest.WithProgramOptions(
						tea.WithColorProfile(colorprofile.ASCII),
						tea.WithEnvironment([]string{"TERM=xterm-256color"})))
				waitFor(t, tm, "certi-es")
				for _, k := range sc.keys {
					tm.Send(k)
				}
				if sc.wait != "" {
					waitFor(t, tm, sc.wait)
				}
				if err := tm.Quit(); err != nil {
					t.Fatal(err)
				}
				final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
				golden.RequireEqual(t, []byte(final.View().Content))
			})
		}
	}
}

func waitFor(t *testing.T, tm *teatest.TestModel, text string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(text)) },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

// TestQuitEndsSubscription presses q in a running program: it must end, and cancel its
// snapshot subscription on the way out.
func TestQuitEndsSubscription(t *testing.T) {
	s, ev := fixture()
	b := newMemBackend(s, ev)
	tm := teatest.NewTestModel(t, New(b, Options{Now: fixedNow}),
		teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ASCII)))
	waitFor(t, tm, "factus-prod")
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	b.mu.Lock()
	ch := b.ch
	b.mu.Unlock()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("the subscription still delivers after quit")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription was not cancelled")
	}
}
