package serve

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"emitop/internal/tooltest"
)

// pane is a detached tmux window whose terminal shows whatever is written to its FIFO: a
// real terminal emulator to draw frames on and read back.
type pane struct {
	t      *testing.T
	socket string
	fifo   *os.File
}

func newPane(t *testing.T, w, h int) *pane {
	t.Helper()
	tooltest.Need(t, "tmux", "tmux")
	fifo := filepath.Join(t.TempDir(), "screen")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &pane{t: t, socket: fmt.Sprintf("emitop-render-%d-%d", os.Getpid(), time.Now().UnixNano())}
	if out, err := p.tmux("new-session", "-d", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "-s", "r",
		"stty raw -echo; exec cat "+fifo); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	t.Cleanup(func() { p.tmux("kill-server") })
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for cat to open it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	p.fifo = f
	return p
}

func (p *pane) tmux(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-L", p.socket}, args...)...).CombinedOutput()
	return string(out), err
}

// format reads a tmux format of the pane, e.g. #{alternate_on}.
func (p *pane) format(f string) string {
	out, _ := p.tmux("display-message", "-p", "-t", "r", f)
	return strings.TrimSpace(out)
}

// waitScreen waits until the pane shows want (rows right-trimmed) and fails with both
// screens when it does not.
func (p *pane) waitScreen(want []string) {
	p.t.Helper()
	var got []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, _ := p.tmux("capture-pane", "-p", "-t", "r")
		got = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for i := range got {
			got[i] = strings.TrimRight(got[i], " ")
		}
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
	}
	p.t.Fatalf("the terminal shows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
}

// expected is what a terminal w×h must show for content: the bottom h rows, each cut at w
// columns, unstyled.
func expected(content string, w, h int) []string {
	rows := strings.Split(content, "\n")
	if len(rows) > h {
		rows = rows[len(rows)-h:]
	}
	out := make([]string, h)
	for i := range out {
		if i < len(rows) {
			out[i] = strings.TrimRight(ansi.Truncate(ansi.Strip(rows[i]), w, ""), " ")
		}
	}
	return out
}

// TestLineRendererDrawsInARealTerminal draws a sequence of frames on tmux and reads the
// screen back after each: rows that shrink leave nothing behind, rows too long are clipped
// without scrolling (also on the last row), wide characters keep their place, a shorter
// frame clears the rows below it, and a taller one loses its top like Bubble Tea's; close
// gives back the main screen, the cursor, autowrap and no mouse reporting.
func TestLineRendererDrawsInARealTerminal(t *testing.T) {
	const w, h = 40, 6
	p := newPane(t, w, h)
	r := newLineRenderer(p.fifo, w, h, colorprofile.ANSI256)
	red := lipgloss.NewStyle().Foreground(lipgloss.Color("#ff0000")).Background(lipgloss.Color("#0000ff"))
	bold := lipgloss.NewStyle().Bold(true)
	long := strings.Repeat("0123456789", 6)

	frames := []string{
		strings.Join([]string{
			red.Render("emitop") + " " + bold.Render("ACCOUNTS"),
			"alegra-co   up   minute 42/60   reset 30s",
			"sv-main     up   ventana 7/10",
			"文字化け no more, 請求書 — factura",
			"",
			red.Render(long),
		}, "\n"),
		strings.Join([]string{
			red.Render("emitop") + " " + bold.Render("ACCOUNTS"),
			"alegra-co   down",
			"sv-main     up   ventana 7/10",
			"請求書 " + red.Render("rechazada") + " FAD06",
			long,
			bold.Render(long),
		}, "\n"),
		"just one row",
		strings.Join([]string{"lost 1", "lost 2", "row a", "row b", "row c", "row d", "row e", "row f"}, "\n"),
	}
	for i, f := range frames {
		r.draw(tea.View{Content: f, AltScreen: true, MouseMode: tea.MouseModeCellMotion, WindowTitle: "emitop"})
		if r.failed {
			t.Fatalf("frame %d: the write failed", i)
		}
		p.waitScreen(expected(f, w, h))
	}
	for f, want := range map[string]string{"#{alternate_on}": "1", "#{cursor_flag}": "0", "#{wrap_flag}": "0", "#{mouse_button_flag}": "1", "#{mouse_sgr_flag}": "1"} {
		if got := p.format(f); got != want {
			t.Errorf("while drawing, %s = %q, want %q", f, got, want)
		}
	}
	r.close()
	p.waitScreen(make([]string, h))
	for f, want := range map[string]string{"#{alternate_on}": "0", "#{cursor_flag}": "1", "#{wrap_flag}": "1", "#{mouse_button_flag}": "0", "#{mouse_sgr_flag}": "0"} {
		if got := p.format(f); got != want {
			t.Errorf("after close, %s = %q, want %q", f, got, want)
		}
	}
}

// TestLineRendererRepaintsAfterResize shrinks the terminal under a drawn frame and draws
// at the new size: nothing of the old frame is left.
func TestLineRendererRepaintsAfterResize(t *testing.T) {
	p := newPane(t, 50, 8)
	r := newLineRenderer(p.fifo, 50, 8, colorprofile.TrueColor)
	full := strings.TrimSuffix(strings.Repeat(strings.Repeat("x", 50)+"\n", 8), "\n")
	r.draw(tea.View{Content: full})
	p.waitScreen(expected(full, 50, 8))
	if out, err := p.tmux("resize-window", "-t", "r", "-x", "30", "-y", "5"); err != nil {
		t.Fatalf("resize: %v %s", err, out)
	}
	r.resize(30, 5)
	small := "after\nthe\nresize"
	r.draw(tea.View{Content: small})
	p.waitScreen(expected(small, 30, 5))
}

// TestLineRendererWritesOnlyWhatChanged: a frame equal to the last writes nothing, and a
// frame with one changed row writes that row and no other.
func TestLineRendererWritesOnlyWhatChanged(t *testing.T) {
	var out strings.Builder
	r := newLineRenderer(&out, 30, 4, colorprofile.TrueColor)
	r.draw(tea.View{Content: "one\ntwo\nthree\nfour"})
	out.Reset()
	r.draw(tea.View{Content: "one\ntwo\nthree\nfour"})
	if out.Len() != 0 {
		t.Fatalf("an unchanged frame wrote %q", out.String())
	}
	r.draw(tea.View{Content: "one\nTWO\nthree\nfour"})
	got := ansi.Strip(out.String())
	if got != "TWO" {
		t.Fatalf("a one-row change wrote %q (unstyled), want only the row", got)
	}
	if !strings.Contains(out.String(), ansi.CursorPosition(1, 2)) {
		t.Fatalf("the changed row was not written at row 2: %q", out.String())
	}
}
