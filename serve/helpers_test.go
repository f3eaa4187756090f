package serve

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"emitop/config"
	"emitop/model"
	"emitop/poller"
	"emitop/store"
	"emitop/ui"
)

// hubBackend is a ui.Backend on a real poller.Hub and a real store: what the poll loop's
// backend adapts, without the providers.
type hubBackend struct {
	hub   *poller.Hub
	store *store.Store
}

func (b hubBackend) Subscribe() (<-chan model.Snapshot, func()) { return b.hub.Subscribe() }

func (b hubBackend) Refresh() {}

func (b hubBackend) DocumentEvents(ctx context.Context, account, docID string, limit int) ([]model.Event, error) {
	return b.store.Events(ctx, store.EventFilter{Account: account, DocID: docID, Limit: limit})
}

func (b hubBackend) Events(ctx context.Context, f ui.EventFilter) ([]model.Event, error) {
	return b.store.Events(ctx, store.EventFilter{Account: f.Account, DocID: f.DocID, Since: f.Since, Limit: f.Limit})
}

func (b hubBackend) Requests(ctx context.Context, account string, since time.Time, limit int) ([]ui.Request, error) {
	rs, err := b.store.Requests(ctx, store.RequestFilter{Account: account, Since: since, Limit: limit})
	out := make([]ui.Request, len(rs))
	for i, r := range rs {
		out[i] = ui.Request{At: r.At, Method: r.Method, Path: r.Path, Status: r.Status, Latency: r.Latency, Class: r.Class}
	}
	return out, err
}

func (b hubBackend) WindowSeries(ctx context.Context, account, window string, _ time.Time, n int) ([]int, error) {
	ws, err := b.store.WindowSeries(ctx, account, window, time.Time{}, n)
	out := make([]int, len(ws))
	for i, w := range ws {
		out[i] = w.Remaining
	}
	return out, err
}

// PlanRetry and RunRetry refuse: no provider stands behind a bare hub. A viewer's retry
// never gets this far.
func (b hubBackend) PlanRetry(context.Context, ui.RetryRequest) (model.RetryPlan, error) {
	return model.RetryPlan{}, errors.New("no providers behind this backend")
}

func (b hubBackend) RunRetry(context.Context, model.RetryPlan, func(model.RetryProgress)) (model.RetryReport, error) {
	return model.RetryReport{}, errors.New("no providers behind this backend")
}

// newKey returns a fresh ed25519 client key and its authorized_keys line.
func newKey(t testing.TB) (gossh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rig is a running server on 127.0.0.1 with its hub, store and log.
type rig struct {
	srv   *Server
	addr  string
	hub   *poller.Hub
	store *store.Store
	log   *syncBuffer
	done  chan error // Serve's result
}

// startRig serves ops on a loopback port; tweak adjusts the options before New.
func startRig(t testing.TB, ops []config.Operator, tweak func(*Options)) *rig {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), dir+"/emitop.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{hub: poller.NewHub(), store: st, log: &syncBuffer{}, done: make(chan error, 1)}
	o := Options{
		Backend: hubBackend{r.hub, st}, Store: st, Operators: ops,
		HostKeyPath: dir + "/state/emitop/" + HostKeyName,
		Log:         slog.New(slog.NewTextHandler(r.log, nil)),
		LoginRate:   1000, LoginBurst: 1000,
	}
	if tweak != nil {
		tweak(&o)
	}
	r.srv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go func() { r.done <- r.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.srv.Shutdown(ctx)
	})
	return r
}

// dial logs in with key.
func (r *rig) dial(key gossh.Signer) (*gossh.Client, error) {
	return gossh.Dial("tcp", r.addr, &gossh.ClientConfig{
		User:            "anyone",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(key)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
}

// login dials with key, failing the test when refused; the client closes with the test.
func (r *rig) login(t testing.TB, key gossh.Signer) *gossh.Client {
	t.Helper()
	c, err := r.dial(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// screen collects a session's output and lets a test wait for text in it.
type screen struct {
	mu      sync.Mutex
	raw     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
	seen    map[string]time.Time
	eof     bool
}

func newScreen(r io.Reader) *screen {
	sc := &screen{changed: make(chan struct{}), seen: map[string]time.Time{}}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			sc.mu.Lock()
			sc.raw.Write(buf[:n])
			if err != nil {
				sc.eof = true
			}
			close(sc.changed)
			sc.changed = make(chan struct{})
			sc.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return sc
}

// text is everything the session printed, escape sequences removed.
func (sc *screen) text() string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return ansi.Strip(sc.raw.String())
}

// waitFor waits until the output contains want, or the session ends, or timeout; it
// reports whether want appeared.
func (sc *screen) waitFor(want string, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		sc.mu.Lock()
		ch, eof := sc.changed, sc.eof
		sc.mu.Unlock()
		if strings.Contains(sc.text(), want) {
			return true
		}
		if eof {
			return false
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// openDashboard starts a session with a PTY of w×h and returns it with its screen.
func openDashboard(t testing.TB, c *gossh.Client, w, h int) (*gossh.Session, *screen) {
	t.Helper()
	sess, sc, _ := openTyping(t, c, w, h)
	return sess, sc
}

// openTyping is openDashboard with the session's stdin, to type on.
func openTyping(t testing.TB, c *gossh.Client, w, h int) (*gossh.Session, *screen, io.Writer) {
	return openTerminal(t, c, "xterm-256color", w, h, "COLORTERM", "truecolor")
}

// openTerminal starts a session on a terminal of type term, w×h, with the environment
// variables env (name, value, name, value…), and returns it with its screen and stdin.
func openTerminal(t testing.TB, c *gossh.Client, term string, w, h int, env ...string) (*gossh.Session, *screen, io.Writer) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(env); i += 2 {
		if err := sess.Setenv(env[i], env[i+1]); err != nil {
			t.Fatalf("setenv %s: %v", env[i], err)
		}
	}
	if err := sess.RequestPty(term, h, w, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	sc := newScreen(out)
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	return sess, sc, in
}

// snapshotWith is a snapshot of one healthy account called name.
func snapshotWith(name string) model.Snapshot {
	now := time.Now()
	return model.Snapshot{At: now, Accounts: []model.AccountState{{
		Account: model.Account{Name: name, Provider: "alegra"}, Health: model.HealthUp,
		Windows:      []model.Window{{Name: "minute", Limit: 60, Remaining: 42, Reset: 30 * time.Second, Observed: now}},
		PollInterval: 30 * time.Second, LastPoll: now,
	}}}
}

// isAuthError reports whether err is the client's "unable to authenticate".
func isAuthError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unable to authenticate")
}
