// Package serve is `emitop serve`: the dashboard over SSH. Operators log in with a public
// key declared in the config; each session gets its own dashboard (size, colour profile,
// screen state) over the one poller and store the server was given. Viewers see everything
// and change nothing.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/ssh"
	"charm.land/wish/v2"
	"charm.land/wish/v2/activeterm"
	"charm.land/wish/v2/ratelimiter"
	"charm.land/wish/v2/recover"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"emitop/config"
	"emitop/ui"
)

// Defaults for what Options leave zero.
const (
	DefaultLoginRate  = rate.Limit(1) // connections, and sessions, per second and remote IP
	DefaultLoginBurst = 5
	// DefaultSessionGrace is how long an authenticated connection has to start a dashboard.
	DefaultSessionGrace = 10 * time.Second
)

// queryFPS is how often a session's program sends the terminal the queries its model asks
// for (its background colour, at start). Frames are not on this clock: lineRenderer draws
// each one as the model composes it.
const queryFPS = 30

// handshakeTimeout bounds a connection's key exchange and authentication.
const handshakeTimeout = 30 * time.Second

// Options configure a Server.
type Options struct {
	Backend     ui.Backend // the one poller and store every session reads
	Store       Recorder   // where actions and refusals are recorded
	StoreName   string     // where history and leases live, as every session's header says it
	Operators   []config.Operator
	HostKeyPath string         // created (ed25519, mode 0600) when missing
	IdleTimeout time.Duration  // a session with no keystroke for this long is closed; 0 means config.DefaultIdleTimeout
	Env         string         // environment badge shown in every session
	Demo        bool           // DEMO badge in every session
	Location    *time.Location // the zone every session shows times in; nil means the server's local zone
	Log         *slog.Logger   // connects, disconnects, refusals; nil means slog.Default()
	LoginRate   rate.Limit     // connections (logins, let in or not), and sessions, per second per remote IP; 0 means DefaultLoginRate
	LoginBurst  int            // 0 means DefaultLoginBurst
	// SessionGrace is how long an authenticated connection may go without a dashboard
	// (a session with a PTY) before it is closed and logged: `ssh -N`, or a session
	// refused for want of a PTY, holds nothing open. 0 means DefaultSessionGrace.
	SessionGrace time.Duration

	frameClock bool // draw with Bubble Tea's own renderer: BenchmarkFanout's baseline
}

// Server serves the dashboard over SSH.
type Server struct {
	opts    Options
	backend ui.Backend // opts.Backend, its window series shared among the sessions
	log     *slog.Logger
	ssh     *ssh.Server
	keys    atomic.Pointer[keyring]

	mu        sync.Mutex
	sessions  map[*session]struct{}
	listeners map[net.Listener]struct{}
	closing   bool
	live      sync.WaitGroup // one per running session handler; added to only before closing
	conns     int            // open connections
	hungUp    chan struct{}  // closed once closing and conns is 0
	hangUp    sync.Once
}

// New checks o, loads every operator's keys, makes sure the host key exists with mode 0600
// and returns a server that is not listening yet.
func New(o Options) (*Server, error) {
	if o.Backend == nil || o.Store == nil {
		return nil, errors.New("serve: a backend and a store are required")
	}
	if len(o.Operators) == 0 {
		return nil, errors.New("serve: no [[operator]] in the config: nobody could log in")
	}
	if o.HostKeyPath == "" {
		return nil, errors.New("serve: empty host key path")
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = config.DefaultIdleTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.LoginRate <= 0 {
		o.LoginRate = DefaultLoginRate
	}
	if o.LoginBurst <= 0 {
		o.LoginBurst = DefaultLoginBurst
	}
	if o.SessionGrace <= 0 {
		o.SessionGrace = DefaultSessionGrace
	}
	s := &Server{opts: o, backend: newSharedSeries(o.Backend), log: o.Log, sessions: map[*session]struct{}{}, listeners: map[net.Listener]struct{}{}, hungUp: make(chan struct{})}
	kr, err := loadKeys(o.Operators)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.keys.Store(kr)
	if err := os.MkdirAll(filepath.Dir(o.HostKeyPath), 0o700); err != nil {
		return nil, fmt.Errorf("serve: host key directory: %w", err)
	}
	s.ssh, err = wish.NewServer(
		wish.WithHostKeyPath(o.HostKeyPath),
		wish.WithPublicKeyAuth(s.knownKey),
		// Idle means no keystroke: a dashboard redraws its clock every second, so the
		// transport's own idle timeout (wish.WithIdleTimeout) would never fire for one,
		// and charm.land/ssh v0.4.2 races on the connection's deadline fields whenever it
		// is set (handleConn clears handshakeDeadline while the read loop reads it). Each
		// session watches its input instead (session.watch); the handshake has its limit.
		func(srv *ssh.Server) error {
			srv.HandshakeTimeout = handshakeTimeout
			return nil
		},
		wish.WithMiddleware( // the last listed runs first
			s.dashboard,
			activeterm.Middleware(),
			s.identify,
			ratelimiter.Middleware(ratelimiter.NewRateLimiter(o.LoginRate, o.LoginBurst, 4096)),
			recover.MiddlewareWithLogger(panicLogger{o.Log}),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("serve: host key %s: %w", o.HostKeyPath, err)
	}
	if err := privateMode(o.HostKeyPath, o.Log); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.ssh.ConnectionFailedCallback = func(c net.Conn, err error) {
		s.log.Info("login refused", "remote", c.RemoteAddr().String(), "err", err)
	}
	logins := newLoginLimiter(o.LoginRate, o.LoginBurst)
	s.ssh.ConnCallback = func(ctx ssh.Context, c net.Conn) net.Conn {
		if !logins.allow(c.RemoteAddr()) {
			s.log.Warn("login refused: too many from this address", "remote", c.RemoteAddr().String())
			return nil // refused: charm.land/ssh closes it
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closing {
			return nil
		}
		s.conns++
		wc := &watchedConn{Conn: c}
		ctx.SetValue(watchedKey{}, wc)
		return wc
	}
	s.ssh.ConnectionCloseCallback = func(net.Conn) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.conns--
		if s.closing && s.conns == 0 {
			s.hangUp.Do(func() { close(s.hungUp) })
		}
	}
	return s, nil
}

// knownKey is the public-key callback: it admits keys some operator declared, and logs
// every other key offered with the address it came from. It decides nothing about
// identity — the client may not hold the key it offers here; the session's final key
// does (see identify). The lines are bounded by the per-address login rate. A declared
// key starts its connection's grace to open a dashboard (see watchedConn).
func (s *Server) knownKey(ctx ssh.Context, key ssh.PublicKey) bool {
	_, ok := s.keys.Load().lookup(key)
	if !ok {
		s.log.Warn("login refused: key not declared", "remote", ctx.RemoteAddr().String(),
			"fingerprint", gossh.FingerprintSHA256(key))
	}
	if wc, _ := ctx.Value(watchedKey{}).(*watchedConn); ok && wc != nil {
		wc.arm(s.opts.SessionGrace, func() {
			s.log.Warn("connection closed: no terminal session opened", "remote", wc.RemoteAddr().String(),
				"grace", s.opts.SessionGrace, "fingerprint", gossh.FingerprintSHA256(key))
		})
	}
	return ok
}

// Serve accepts SSH connections on l until Shutdown; it returns ssh.ErrServerClosed then.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ssh.ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	err := s.ssh.Serve(l)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, l)
	if s.closing && errors.Is(err, net.ErrClosed) {
		return ssh.ErrServerClosed
	}
	return err
}

// ReloadKeys re-reads every operator's keys and keys_file. On an error the keys in use stay
// as they were. Sessions whose key is no longer declared, or now belongs to someone else
// or another role, are closed.
func (s *Server) ReloadKeys() error {
	kr, err := loadKeys(s.opts.Operators)
	if err != nil {
		return fmt.Errorf("serve: reload keys: %w", err)
	}
	s.keys.Store(kr)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		if id, ok := kr.lookup(ss.sess.PublicKey()); !ok || id != ss.id {
			ss.end("your key was revoked")
		}
	}
	return nil
}

// hangUpGrace is how long Shutdown waits, once every session has ended, for the clients
// to close their connections before it closes them.
const hangUpGrace = time.Second

// Shutdown stops accepting connections, tells every session "emitop is shutting down",
// lets each program quit (restoring the remote terminal), waits for the sessions, gives the
// clients hangUpGrace to hang up, then closes what is left. When ctx ends before the
// sessions do, the remaining connections are closed at once and ctx's error is returned.
//
// It never calls the ssh server's own Shutdown: in charm.land/ssh v0.4.2 that waits on a
// WaitGroup that a connection finishing its handshake may Add to at the same moment.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	for ss := range s.sessions {
		ss.end("emitop is shutting down")
	}
	if s.conns == 0 {
		s.hangUp.Do(func() { close(s.hungUp) })
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.live.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
		// Every session has ended and said why; a client that keeps its connection open
		// (not every client hangs up when its last channel closes) gets a moment, then is
		// closed: that is not a failure of the shutdown.
		select {
		case <-s.hungUp:
		case <-time.After(hangUpGrace):
		case <-ctx.Done():
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	if cerr := s.ssh.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// Sessions reports how many dashboards are running.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// panicLogger sends the recover middleware's reports to slog.
type panicLogger struct{ log *slog.Logger }

func (p panicLogger) Printf(format string, v ...any) {
	p.log.Error("session panicked", "panic", fmt.Sprintf(format, v...))
}
