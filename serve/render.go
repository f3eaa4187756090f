package serve

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"sync"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"emitop/model"
)

// lineRenderer draws a session's dashboard the moment its model composes a frame. It takes
// the place of Bubble Tea's renderer on SSH sessions: that one draws on a frame clock (at
// most 120 frames a second) and, at every frame that changed, parses and measures every
// cell of the screen; with fifty sessions on two cores the clock and the measuring were most
// of the time a snapshot took to reach the last screen. The dashboard composes whole rows,
// already styled and fitted to the width, so comparing rows is enough: a frame rewrites the
// rows that differ from what the terminal shows, each erased and written from its first
// column, inside a synchronized update. A row wider than the terminal is cut to its width;
// autowrap is off while the dashboard runs, so a character the terminal measures wider than
// we do cannot wrap a row or scroll the screen either.
//
// The dashboard always asks for the alternate screen; this renderer always uses it. It is
// not safe for concurrent use: the program's event loop draws, and close runs after it.
type lineRenderer struct {
	out           io.Writer
	profile       colorprofile.Profile
	width, height int
	rows          []string // what each row of the terminal shows, as the dashboard styled it
	last          tea.View // the modes of the last frame drawn
	started       bool
	redraw        bool // the next frame repaints every row
	failed        bool // a write failed: the session is gone, nothing more is written

	frame, colored bytes.Buffer
}

func newLineRenderer(out io.Writer, width, height int, profile colorprofile.Profile) *lineRenderer {
	return &lineRenderer{out: out, width: width, height: height, profile: profile}
}

// resize takes the terminal's new size; the next frame repaints it whole.
func (r *lineRenderer) resize(width, height int) {
	if width != r.width || height != r.height {
		r.width, r.height, r.redraw = width, height, true
	}
}

// setProfile takes the session's colour profile; the next frame repaints in it.
func (r *lineRenderer) setProfile(p colorprofile.Profile) {
	if p != r.profile {
		r.profile, r.redraw = p, true
	}
}

// draw writes what changed between the terminal and v, in one write.
func (r *lineRenderer) draw(v tea.View) {
	if r.failed || r.width <= 0 || r.height <= 0 {
		return
	}
	b := &r.frame
	b.Reset()
	b.WriteString(ansi.SetModeSynchronizedOutput)
	r.modes(b, v)
	if r.redraw {
		b.WriteString(ansi.ResetStyle + ansi.EraseEntireScreen)
		r.rows = slices.Grow(r.rows[:0], r.height)[:r.height]
		clear(r.rows)
	}
	// Like Bubble Tea's renderer, a frame taller than the terminal loses its top rows.
	rows := strings.Split(v.Content, "\n")
	if len(rows) > r.height {
		rows = rows[len(rows)-r.height:]
	}
	for y := range r.rows {
		var row string
		if y < len(rows) {
			row = rows[y]
		}
		if r.rows[y] == row {
			continue
		}
		r.rows[y] = row
		if ansi.StringWidth(row) > r.width {
			row = ansi.Truncate(row, r.width, "")
		}
		b.WriteString(ansi.CursorPosition(1, y+1) + ansi.ResetStyle + ansi.EraseEntireLine)
		b.WriteString(row)
		b.WriteString(ansi.ResetStyle)
	}
	r.redraw, r.started, r.last = false, true, v
	if b.Len() == len(ansi.SetModeSynchronizedOutput) {
		return // nothing changed
	}
	b.WriteString(ansi.ResetModeSynchronizedOutput)
	r.write(b.Bytes())
}

// modes writes the terminal modes the view asks for that the terminal is not yet in.
func (r *lineRenderer) modes(b *bytes.Buffer, v tea.View) {
	first := !r.started
	if first {
		b.WriteString(ansi.SetModeAltScreenSaveCursor + ansi.ResetModeTextCursorEnable + ansi.ResetModeAutoWrap)
		r.redraw = true
	}
	if first || v.DisableBracketedPasteMode != r.last.DisableBracketedPasteMode {
		if v.DisableBracketedPasteMode {
			b.WriteString(ansi.ResetModeBracketedPaste)
		} else {
			b.WriteString(ansi.SetModeBracketedPaste)
		}
	}
	if first || v.MouseMode != r.last.MouseMode {
		b.WriteString(ansi.ResetModeMouseButtonEvent + ansi.ResetModeMouseAnyEvent)
		switch v.MouseMode {
		case tea.MouseModeCellMotion:
			b.WriteString(ansi.SetModeMouseButtonEvent + ansi.SetModeMouseExtSgr)
		case tea.MouseModeAllMotion:
			b.WriteString(ansi.SetModeMouseAnyEvent + ansi.SetModeMouseExtSgr)
		default:
			b.WriteString(ansi.ResetModeMouseExtSgr)
		}
	}
	if (first && v.WindowTitle != "") || (!first && v.WindowTitle != r.last.WindowTitle) {
		b.WriteString(ansi.SetWindowTitle(model.Line(v.WindowTitle, 80)))
	}
}

// close gives the terminal back as the session found it: main screen, cursor, autowrap, no
// mouse or paste reporting.
func (r *lineRenderer) close() {
	if !r.started || r.failed {
		return
	}
	r.started = false
	r.write([]byte(ansi.ResetModeSynchronizedOutput + ansi.ResetStyle + ansi.ResetModeMouseButtonEvent + ansi.ResetModeMouseAnyEvent +
		ansi.ResetModeMouseExtSgr + ansi.ResetModeBracketedPaste + ansi.SetModeAutoWrap +
		ansi.ResetModeAltScreenSaveCursor + ansi.SetModeTextCursorEnable)) // some terminals keep a cursor per screen
}

// write sends p in the session's colour profile. Below true colour the dashboard's colours
// are brought down to what the terminal has; a profile without colour keeps the cursor
// movements and drops the colours.
func (r *lineRenderer) write(p []byte) {
	if r.profile < colorprofile.TrueColor {
		r.colored.Reset()
		cw := colorprofile.Writer{Forward: &r.colored, Profile: max(r.profile, colorprofile.ASCII)}
		if _, err := cw.Write(p); err != nil {
			r.failed = true
			return
		}
		p = r.colored.Bytes()
	}
	if _, err := r.out.Write(p); err != nil {
		r.failed = true
	}
}

// drawn is a dashboard whose every Update draws the frame it composed.
type drawn struct {
	tea.Model
	r *lineRenderer
}

func (d drawn) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		d.r.resize(msg.Width, msg.Height)
	case tea.ColorProfileMsg:
		d.r.setProfile(msg.Profile)
	}
	var cmd tea.Cmd
	d.Model, cmd = d.Model.Update(msg)
	d.r.draw(d.Model.View())
	return d, cmd
}

// View is empty: the renderer has drawn the frame already.
func (d drawn) View() tea.View { return tea.View{} }

// syncWriter makes each Write whole with respect to the others: the renderer's frames and
// the program's own terminal queries share the session.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
