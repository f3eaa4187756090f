package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	"charm.land/wish/v2/bubbletea"
	"github.com/charmbracelet/colorprofile"

	"emitop/model"
	"emitop/ui"
)

// Keys of the values the middlewares leave in a session's context.
type (
	identityKey struct{}
	reasonKey   struct{}
)

// Terminal sizes are clamped to what a screen can be: a client claiming a 40000×40000
// terminal would otherwise cost the server a gigabyte of frame per session.
const (
	maxWidth  = 1000
	maxHeight = 500
)

// clampSize is a terminal size the server is willing to compose frames for.
func clampSize(w, h int) (int, int) {
	return min(max(w, 0), maxWidth), min(max(h, 0), maxHeight)
}

// session is one running dashboard.
type session struct {
	log       *slog.Logger
	id        Identity
	sess      ssh.Session
	prog      *tea.Program
	lastInput atomic.Int64 // unix nanoseconds of the last keystroke, click or paste

	mu       sync.Mutex
	reason   string // why the server ended it; "" when the operator quit
	hangUp   *time.Timer
	finished bool // the program has returned
}

// endGrace is how long a dashboard the server ended has to quit before its connection is
// closed under it: a program blocked writing to a client that stopped reading, or whose
// network vanished, quits only when the write fails.
const endGrace = 2 * time.Second

// end quits the dashboard, telling the operator why once its terminal is restored, and
// closes the connection if the dashboard has not quit within endGrace. It never waits for
// the program, so a stuck session cannot hold up the caller.
func (ss *session) end(reason string) {
	ss.mu.Lock()
	if ss.reason == "" {
		ss.reason = reason
	}
	if ss.hangUp == nil && !ss.finished {
		ss.hangUp = time.AfterFunc(endGrace, func() {
			ss.log.Warn("connection closed: the session did not end in time (its client is not reading)",
				"operator", ss.id.Name, "remote", ss.sess.RemoteAddr().String(), "reason", reason)
			if c, ok := ss.sess.Context().Value(ssh.ContextKeyConn).(io.Closer); ok {
				c.Close()
			}
		})
	}
	ss.mu.Unlock()
	go ss.prog.Quit()
}

// done notes that the program has returned: there is nothing left to hang up on.
func (ss *session) done() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.finished = true
	if ss.hangUp != nil {
		ss.hangUp.Stop()
	}
}

func (ss *session) endReason() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.reason
}

// filter notes the time of every input from the person at the keyboard (terminal replies
// and redraws do not count) and keeps a remote ^Z from suspending the server's program.
func (ss *session) filter(_ tea.Model, msg tea.Msg) tea.Msg {
	switch msg.(type) {
	case tea.KeyMsg, tea.MouseMsg, tea.PasteMsg:
		ss.lastInput.Store(time.Now().UnixNano())
	case tea.SuspendMsg:
		return tea.ResumeMsg{}
	}
	return msg
}

// watch forwards window changes to the program, quits it when the connection goes, and
// ends the session after idle without input. It never blocks on the program: a program
// stuck writing to a client that does not read takes no messages, and a window change
// left untaken in the SSH library's one-slot channel would stop the connection's read
// loop, and with it the window adjustments that would unstick the write.
func (ss *session) watch(ctx context.Context, winch <-chan ssh.Window, idle time.Duration) {
	t := time.NewTimer(idle)
	defer t.Stop()
	idleC := t.C                             // nil once the session has been ended for idling
	sizes := make(chan tea.WindowSizeMsg, 1) // the newest size the program has not taken
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-sizes:
				ss.prog.Send(m)
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			go ss.prog.Quit()
			return
		case w, ok := <-winch:
			if !ok {
				winch = nil
				continue
			}
			select {
			case <-sizes: // outdated
			default:
			}
			width, height := clampSize(w.Width, w.Height)
			sizes <- tea.WindowSizeMsg{Width: width, Height: height}
		case <-idleC:
			left := idle - time.Since(time.Unix(0, ss.lastInput.Load()))
			if left <= 0 {
				ss.end(fmt.Sprintf("closed after %s without input", idle))
				idleC = nil // and go on taking window changes until the program has ended
				continue
			}
			t.Reset(left)
		}
	}
}

// identify decides who the session is from the key the client authenticated with (never
// from a key seen in the public-key callback), refuses keys no longer declared, and logs
// the connect and the disconnect.
func (s *Server) identify(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		remote := sess.RemoteAddr().String()
		id, ok := s.keys.Load().lookup(sess.PublicKey())
		if !ok {
			s.log.Warn("session refused: key not declared", "remote", remote)
			wish.Fatalln(sess, "emitop: this key is not declared for any operator")
			return
		}
		sess.Context().SetValue(identityKey{}, id)
		pty, _, _ := sess.Pty()
		start := time.Now()
		s.log.Info("connect", "operator", id.Name, "role", id.Role, "fingerprint", id.Fingerprint,
			"remote", remote, "term", model.Line(pty.Term, 32), "width", pty.Window.Width, "height", pty.Window.Height)
		defer func() {
			reason, _ := sess.Context().Value(reasonKey{}).(string)
			s.log.Info("disconnect", "operator", id.Name, "fingerprint", id.Fingerprint, "remote", remote,
				"duration", time.Since(start).Round(time.Millisecond), "reason", reason)
		}()
		next(sess)
	}
}

// dashboard runs one dashboard on the session: its own model, size and colour profile
// (taken from the session's PTY and environment by the wish bubbletea options), reading the
// server's one backend.
func (s *Server) dashboard(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if wc, _ := sess.Context().Value(watchedKey{}).(*watchedConn); wc != nil {
			wc.started.Store(true)
		}
		id, _ := sess.Context().Value(identityKey{}).(Identity)
		triage, unknown := triageOf(sess.Command())
		if unknown != nil {
			wish.Fatalln(sess, unknown.Error())
			return
		}
		ss := &session{log: s.log, id: id, sess: sess}
		ss.lastInput.Store(time.Now().UnixNano())
		b := &sessionBackend{Backend: s.backend}
		m := ui.New(b, ui.Options{
			Demo: s.opts.Demo, Env: s.opts.Env, Operator: id.Name, Fingerprint: id.Fingerprint, ReadOnly: id.ReadOnly(),
			Location: s.opts.Location, Store: s.opts.StoreName,
			// Every action the dashboard takes goes through the server's rule, which
			// records a viewer's refusal with the session's name and key.
			Authorize: func(ctx context.Context, a model.Action) error { return s.Authorize(ctx, id, a) },
			Triage:    triage,
		})
		pty, _, _ := sess.Pty()
		out := &syncWriter{w: sess}
		width, height := clampSize(pty.Window.Width, pty.Window.Height)
		r := newLineRenderer(out, width, height, colorprofile.Env(append(sess.Environ(), "TERM="+pty.Term)))
		opts := append(bubbletea.MakeOptions(sess),
			tea.WithWindowSize(width, height), // replaces MakeOptions' size, the client's claim
			tea.WithFilter(ss.filter),         // replaces MakeOptions' filter, and does its job too
			tea.WithoutSignalHandler(),        // the server's signals are the server's, not each program's
		)
		var prog tea.Model = drawn{Model: m, r: r}
		if s.opts.frameClock {
			prog, opts = m, append(opts, tea.WithFPS(120))
		} else {
			opts = append(opts,
				tea.WithOutput(out),   // the program's terminal queries, between the frames
				tea.WithoutRenderer(), // frames are drawn by r, at once (see lineRenderer)
				tea.WithFPS(queryFPS))
		}
		ss.prog = tea.NewProgram(prog, opts...)
		if !s.add(ss) {
			wish.Fatalln(sess, "emitop is shutting down")
			return
		}
		defer s.remove(ss)

		_, winch, _ := sess.Pty()
		ctx, cancel := context.WithCancel(sess.Context())
		defer cancel()
		go ss.watch(ctx, winch, s.opts.IdleTimeout)
		_, err := ss.prog.Run()
		ss.done()
		ss.prog.Kill()
		r.close() // the program has stopped drawing: give the terminal back
		b.close()
		switch {
		case errors.Is(err, tea.ErrProgramPanic):
			s.log.Error("dashboard panicked; session closed", "operator", id.Name, "remote", sess.RemoteAddr().String())
			ss.end("emitop hit an internal error; this session was closed")
		case err != nil && !errors.Is(err, tea.ErrProgramKilled):
			s.log.Warn("dashboard ended with an error", "operator", id.Name, "err", err)
		}
		if reason := ss.endReason(); reason != "" {
			sess.Context().SetValue(reasonKey{}, reason)
			wish.Printf(sess, "\r\n%s\r\n", reason)
		}
		next(sess)
		sess.Exit(0) // before remove: Shutdown may close the connection once every session is removed
	}
}

// sessionBackend is the server's backend as one session's dashboard sees it. It ends the
// dashboard's subscriptions when the session's program ends: the dashboard cancels its own
// only when the operator quits, and a program the server ends (idle, revoked key, shutdown,
// lost connection) never tells its model, so the hub would keep a subscriber nobody reads.
type sessionBackend struct {
	ui.Backend

	mu      sync.Mutex
	cancels []func()
	closed  bool
}

// Subscribe subscribes to the server's backend and remembers how to end the subscription;
// once the session has ended it returns a subscription already ended.
func (b *sessionBackend) Subscribe() (<-chan model.Snapshot, func()) {
	ch, cancel := b.Backend.Subscribe()
	cancel = sync.OnceFunc(cancel)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		cancel()
	} else {
		b.cancels = append(b.cancels, cancel)
	}
	return ch, cancel
}

// close ends every subscription the dashboard took.
func (b *sessionBackend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, cancel := range b.cancels {
		cancel()
	}
	b.cancels = nil
}

// add registers a starting session; it refuses once the server is shutting down.
func (s *Server) add(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[ss] = struct{}{}
	s.live.Add(1)
	return true
}

func (s *Server) remove(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	s.live.Done()
}
