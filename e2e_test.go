package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxSession is emitop running in a real terminal: a detached tmux session on a socket
// of its own, so that parallel runs never meet.
type tmuxSession struct {
	t            *testing.T
	socket, name string
}

func (s *tmuxSession) tmux(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	return string(out), err
}

func (s *tmuxSession) screen() string {
	out, _ := s.tmux("capture-pane", "-p", "-t", s.name)
	return out
}

func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	if out, err := s.tmux(append([]string{"send-keys", "-t", s.name}, keys...)...); err != nil {
		s.t.Fatalf("send-keys %v: %v %s", keys, err, out)
	}
}

// waitFor polls the screen until ok accepts it, for up to 20 s.
func (s *tmuxSession) waitFor(what string, ok func(screen string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		screen := s.screen()
		if ok(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s; the screen shows:\n%s", what, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contains(parts ...string) func(string) bool {
	return func(screen string) bool {
		for _, p := range parts {
			if !strings.Contains(screen, p) {
				return false
			}
		}
		return true
	}
}

// TestDashboardEndToEnd runs the built binary's demo in tmux and uses it as a person
// would: live data from all five providers, help, a filter, a document's verdict, quit.
func TestDashboardEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (.ci/run installs it)")
	}
	bin := emitopBinary(t)
	exitFile := filepath.Join(t.TempDir(), "exit")
	s := &tmuxSession{t: t, socket: fmt.Sprintf("emitop-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()), name: "e2e"}
	command := fmt.Sprintf("%s --demo; echo EXIT=$? > %s", bin, exitFile)
	if out, err := s.tmux("new-session", "-d", "-x", "120", "-y", "36", "-s", s.name, command); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	t.Cleanup(func() { s.tmux("kill-server") })

	// The budgets panel lists every account; its last rows (factus, alforse) may be below
	// the fold, so the test looks at its top, then at its bottom.
	top := s.waitFor("live data", contains("DEMO", "Budgets", "alegra-co", "polled"))
	s.keys("Tab")
	s.keys("G")
	s.waitFor("all five providers", func(bottom string) bool {
		return contains("alegra", "sv-dte", "certifactu", "factus", "alforse")(top + bottom)
	})
	s.keys("Tab")
	s.waitFor("the documents panel focused", contains("▶ Documents"))
	s.keys("?")
	s.waitFor("the help", contains("Keys", "Commands", ":history"))
	s.keys("Escape")
	s.waitFor("the dashboard again", contains("Budgets", "Documents"))

	s.keys("/")
	s.keys("-l", "rejected")
	s.keys("Enter")
	s.waitFor("the filter applied", contains(`filter "rejected"`))
	s.keys("Enter")
	detail := s.waitFor("a rejected document's verdict", contains("Document ", "VERDICT", "meaning", "Raw response"))
	if !strings.Contains(detail, "rejected") {
		t.Errorf("the detail is not of a rejected document:\n%s", detail)
	}
	s.keys("Escape")
	s.waitFor("the dashboard again", contains("Budgets", `filter "rejected"`))

	s.keys("q")
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(exitFile)
		if got := strings.TrimSpace(string(b)); got != "" {
			if got != "EXIT=0" {
				t.Fatalf("emitop ended with %s", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("emitop did not quit; the screen shows:\n%s", s.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
