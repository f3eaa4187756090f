package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"emitop/config"
	"emitop/model"
	"emitop/store"
)

// wait is how long a test waits for text it expects; only a failing test waits this long.
const wait = 20 * time.Second

func TestOperatorSeesDashboardAndUpdates(t *testing.T) {
	key, line := newKey(t)
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}}, nil)
	c := r.login(t, key)
	sess, sc := openDashboard(t, c, 110, 30)
	if !sc.waitFor("waiting for the first poll", wait) || !sc.waitFor("alice", wait) {
		t.Fatalf("no dashboard header with the operator's name; got:\n%s", sc.text())
	}
	if strings.Contains(sc.text(), "[read-only]") {
		t.Error("an operator's dashboard says read-only")
	}
	r.hub.Publish(snapshotWith("quokka7"))
	if !sc.waitFor("quokka7", wait) {
		t.Fatalf("the published account never showed; got:\n%s", sc.text())
	}
	sess.Close()
	c.Close()
	fp := gossh.FingerprintSHA256(key.PublicKey())
	for _, want := range []string{"msg=connect", "operator=alice", "fingerprint=" + fp, "remote=127.0.0.1:"} {
		if !strings.Contains(r.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, r.log)
		}
	}
	if !waitLog(r, "msg=disconnect") {
		t.Errorf("no disconnect logged:\n%s", r.log)
	}
	if strings.Contains(r.log.String(), strings.Fields(line)[1]) {
		t.Error("the log holds key material beyond the fingerprint")
	}
}

// waitLog waits until the server's log holds want.
func waitLog(r *rig, want string) bool {
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(r.log.String(), want) {
			return true
		}
	}
	return false
}

func TestUnknownKeyRefusedAtAuth(t *testing.T) {
	_, line := newKey(t)
	stranger, _ := newKey(t)
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}}, nil)
	c, err := r.dial(stranger)
	if err == nil {
		c.Close()
		t.Fatal("a key nobody declared logged in")
	}
	if !isAuthError(err) {
		t.Fatalf("want an authentication failure, got %v", err)
	}
	if !waitLog(r, "login refused: key not declared") {
		t.Errorf("refusal not logged:\n%s", r.log)
	}
	// The line says where the key came from and which key it was.
	if log := r.log.String(); !strings.Contains(log, "remote=127.0.0.1:") || !strings.Contains(log, "fingerprint="+gossh.FingerprintSHA256(stranger.PublicKey())) {
		t.Errorf("the refusal names no address or fingerprint:\n%s", log)
	}
}

func TestSessionWithoutPTYRefused(t *testing.T) {
	key, line := newKey(t)
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}}, nil)
	c := r.login(t, key)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 {
		t.Fatalf("want exit status 1, got %v", err)
	}
	if !strings.Contains(string(out), "PTY") {
		t.Errorf("the refusal does not say why: %q", out)
	}
	if r.srv.Sessions() != 0 {
		t.Error("a dashboard started without a PTY")
	}
}

func TestViewerIsReadOnlyAndRefusalsRecorded(t *testing.T) {
	vkey, vline := newKey(t)
	_, oline := newKey(t)
	r := startRig(t, []config.Operator{
		{Name: "alice", Role: config.RoleOperator, Keys: []string{oline}},
		{Name: "victor", Role: config.RoleViewer, Keys: []string{vline}},
	}, nil)
	c := r.login(t, vkey)
	_, sc := openDashboard(t, c, 110, 30)
	if !sc.waitFor("[read-only]", wait) || !sc.waitFor("victor", wait) {
		t.Fatalf("a viewer's dashboard is not marked read-only; got:\n%s", sc.text())
	}

	kr := r.srv.keys.Load()
	viewer, _ := kr.lookup(vkey.PublicKey())
	_, oper := newKeyIdentity(t, kr, oline)
	ctx := context.Background()
	retry := model.Action{Kind: "retry", Account: "sv-main", DocID: "a1", Reason: "fixed the NIT"}
	if err := r.srv.Authorize(ctx, viewer, retry); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("a viewer's retry: want ErrReadOnly, got %v", err)
	}
	force := retry
	force.Kind = "force-retry"
	if err := r.srv.Authorize(ctx, viewer, force); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("a viewer's force-retry: want ErrReadOnly, got %v", err)
	}
	if err := r.srv.Authorize(ctx, viewer, model.Action{Kind: "refresh", Account: "sv-main"}); err != nil {
		t.Errorf("a viewer may refresh: %v", err)
	}
	if err := r.srv.Authorize(ctx, oper, retry); err != nil {
		t.Errorf("an operator's retry refused: %v", err)
	}
	if err := r.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	acts, err := r.store.Actions(ctx, store.ActionFilter{Account: "sv-main"})
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 2 {
		t.Fatalf("want the two refusals recorded, got %+v", acts)
	}
	kinds := map[model.ActionKind]bool{}
	for _, a := range acts {
		kinds[a.Kind] = true
		if a.Operator != "victor" || a.Fingerprint != gossh.FingerprintSHA256(vkey.PublicKey()) ||
			a.Outcome != "refused: viewer" || a.DocID != "a1" || a.Reason != "fixed the NIT" {
			t.Errorf("recorded refusal %+v", a)
		}
	}
	if !kinds["retry"] || !kinds["force-retry"] {
		t.Errorf("recorded kinds %v", kinds)
	}
}

// newKeyIdentity returns the identity line's key maps to in kr.
func newKeyIdentity(t *testing.T, kr *keyring, line string) (gossh.PublicKey, Identity) {
	t.Helper()
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	id, ok := kr.lookup(pub)
	if !ok {
		t.Fatalf("%s not in the keyring", line)
	}
	return pub, id
}

func TestTwentySessionsGetOnePoll(t *testing.T) {
	const n = 20
	var ops []config.Operator
	var keys []gossh.Signer
	for i := range n {
		k, line := newKey(t)
		role := config.RoleOperator
		if i%4 == 0 {
			role = config.RoleViewer
		}
		ops = append(ops, config.Operator{Name: fmt.Sprintf("op%02d", i), Role: role, Keys: []string{line}})
		keys = append(keys, k)
	}
	r := startRig(t, ops, nil)
	r.hub.Publish(snapshotWith("oldbook"))
	screens := make([]*screen, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			c, err := r.dial(keys[i])
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { c.Close() })
			_, screens[i] = openDashboard(t, c, 80+i, 24+i%5)
			if !screens[i].waitFor("oldbook", wait) {
				errs <- fmt.Errorf("session %d never showed the first snapshot:\n%s", i, screens[i].text())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := r.hub.Subscribers(); got != n {
		t.Fatalf("%d subscribers, want %d", got, n)
	}
	r.hub.Publish(snapshotWith("zebra9"))
	for i, sc := range screens {
		wg.Go(func() {
			if !sc.waitFor("zebra9", wait) {
				t.Errorf("session %d (%s) missed the new snapshot", i, ops[i].Name)
			}
		})
	}
	wg.Wait()
}

func TestShutdownTellsEverySession(t *testing.T) {
	k1, l1 := newKey(t)
	k2, l2 := newKey(t)
	r := startRig(t, []config.Operator{
		{Name: "alice", Role: config.RoleOperator, Keys: []string{l1}},
		{Name: "victor", Role: config.RoleViewer, Keys: []string{l2}},
	}, nil)
	type open struct {
		c    *gossh.Client
		sess *gossh.Session
		sc   *screen
	}
	var all []open
	for _, k := range []gossh.Signer{k1, k2} {
		c := r.login(t, k)
		sess, sc := openDashboard(t, c, 90, 25)
		if !sc.waitFor("waiting for the first poll", wait) {
			t.Fatalf("no dashboard:\n%s", sc.text())
		}
		all = append(all, open{c, sess, sc})
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- r.srv.Shutdown(ctx) }()
	for i, o := range all {
		if !o.sc.waitFor("emitop is shutting down", wait) {
			t.Errorf("session %d was not told:\n%q", i, o.sc.text())
		}
		if err := o.sess.Wait(); err != nil {
			t.Errorf("session %d ended with %v", i, err)
		}
		o.sc.mu.Lock()
		raw := o.sc.raw.String()
		o.sc.mu.Unlock()
		if !strings.Contains(raw, "\x1b[?1049l") {
			t.Errorf("session %d: the alternate screen was not left", i)
		}
		o.c.Close() // as ssh does when its session ends
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-r.done; !errors.Is(err, ssh.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if _, err := r.dial(k1); err == nil {
		t.Error("a login succeeded after shutdown")
	}
}

func TestShutdownClosesClientsThatStay(t *testing.T) {
	key, line := newKey(t)
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}}, nil)
	c := r.login(t, key)
	sess, sc := openDashboard(t, c, 90, 25)
	if !sc.waitFor("waiting for the first poll", wait) {
		t.Fatalf("no dashboard:\n%s", sc.text())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Errorf("a client that never hangs up is closed, not a failed shutdown: %v", err)
	}
	sess.Wait()
	if !sc.waitFor("emitop is shutting down", wait) {
		t.Errorf("the session was not told:\n%q", sc.text())
	}
	if err := c.Wait(); err == nil {
		t.Error("want the connection closed by the server")
	}
}

func TestIdleSessionCloses(t *testing.T) {
	key, line := newKey(t)
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}},
		func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
	c := r.login(t, key)
	sess, sc := openDashboard(t, c, 90, 25)
	if !sc.waitFor("without input", wait) {
		t.Fatalf("an idle session stayed open:\n%s", sc.text())
	}
	if err := sess.Wait(); err != nil {
		t.Errorf("idle session ended with %v", err)
	}
	if !waitLog(r, "reason=\"closed after 300ms without input\"") {
		t.Errorf("the reason is not in the disconnect log:\n%s", r.log)
	}
	// The server ended the program, not the operator: the dashboard's subscription must
	// end with it, or the hub keeps feeding a channel nobody reads.
	deadline := time.Now().Add(wait)
	for r.hub.Subscribers() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.hub.Subscribers(); n != 0 {
		t.Errorf("%d hub subscribers after the session ended, want 0", n)
	}
}

// TestLoginsRateLimitedPerIP: logins from one address are rationed whether their key is
// let in or not (a client trying keys is slowed too), and so are sessions opened on one
// connection; a refusal is logged with the address.
func TestLoginsRateLimitedPerIP(t *testing.T) {
	key, line := newKey(t)
	stranger, _ := newKey(t)
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}},
		func(o *Options) { o.LoginRate, o.LoginBurst = rate.Every(time.Hour), 3 })

	// Two tries with a key nobody declared, then the operator: the third login of the burst.
	for range 2 {
		if c, err := r.dial(stranger); err == nil {
			c.Close()
			t.Fatal("an undeclared key was let in")
		} else if !isAuthError(err) {
			t.Fatalf("an undeclared key: %v, want an authentication refusal", err)
		}
	}
	c, err := r.dial(key)
	if err != nil {
		t.Fatalf("the operator's login within the burst was refused: %v", err)
	}
	defer c.Close()
	_, sc := openDashboard(t, c, 90, 25)
	if !sc.waitFor("waiting for the first poll", wait) {
		t.Fatalf("the first session was refused:\n%s", sc.text())
	}

	// The burst is spent: a fourth login is refused before its key is looked at.
	if c2, err := r.dial(key); err == nil {
		c2.Close()
		t.Fatal("a login beyond the burst was let in")
	} else if isAuthError(err) {
		t.Fatalf("a login beyond the burst got as far as authentication: %v", err)
	}
	if !waitLog(r, "login refused: too many from this address") || !strings.Contains(r.log.String(), "remote=127.0.0.1:") {
		t.Errorf("the refusal was not logged with the address:\n%s", r.log)
	}

	// Sessions on the one connection are rationed as well: two more dashboards, then a
	// refusal.
	for range 2 {
		_, sc := openDashboard(t, c, 90, 25)
		if !sc.waitFor("waiting for the first poll", wait) {
			t.Fatalf("a session within the burst was refused:\n%s", sc.text())
		}
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 25, 90, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 || !strings.Contains(string(out), "rate limit") {
		t.Errorf("a fourth session at once: want a rate-limit refusal, got %v %q", err, out)
	}
}

// panicky is a backend whose Subscribe panics while armed.
type panicky struct {
	hubBackend
	armed *sync.Mutex
	on    *bool
}

func (p panicky) Subscribe() (<-chan model.Snapshot, func()) {
	p.armed.Lock()
	on := *p.on
	p.armed.Unlock()
	if on {
		panic("backend exploded")
	}
	return p.hubBackend.Subscribe()
}

func TestPanicEndsOnlyItsSession(t *testing.T) {
	key, line := newKey(t)
	var mu sync.Mutex
	on := true
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}},
		func(o *Options) { o.Backend = panicky{o.Backend.(hubBackend), &mu, &on} })
	c := r.login(t, key)
	sess, sc := openDashboard(t, c, 90, 25) // Bubble Tea prints the recovered stack on stderr
	ok := sc.waitFor("internal error", wait)
	sess.Wait()
	if !ok {
		t.Fatalf("the panicking session was not closed with a message:\n%s", sc.text())
	}
	mu.Lock()
	on = false
	mu.Unlock()
	r.hub.Publish(snapshotWith("afterp"))
	_, sc2 := openDashboard(t, c, 90, 25)
	if !sc2.waitFor("afterp", wait) {
		t.Fatalf("the server stopped serving after one session panicked:\n%s", sc2.text())
	}
	if !waitLog(r, "dashboard panicked") {
		t.Errorf("the panic was not logged:\n%s", r.log)
	}
}

// TestStuckSessionHoldsUpNoOne opens a session whose client stops reading and makes the
// server write it more than the SSH window holds (full redraws of a large terminal), so the
// session's writes block. The poller's publishes and another session's updates go on; the
// stuck client, once it reads again, catches up to the newest snapshot; and shutdown still
// ends both.
func TestStuckSessionHoldsUpNoOne(t *testing.T) {
	kStuck, lStuck := newKey(t)
	kLive, lLive := newKey(t)
	r := startRig(t, []config.Operator{
		{Name: "stuck", Role: config.RoleOperator, Keys: []string{lStuck}},
		{Name: "live", Role: config.RoleOperator, Keys: []string{lLive}},
	}, nil)
	out := openStuck(t, r, kStuck)

	cl := r.login(t, kLive)
	_, live := openDashboard(t, cl, 100, 30)
	for i := range 5 {
		m := fmt.Sprintf("newest%d", i)
		start := time.Now()
		r.hub.Publish(snapshotWith(m))
		if d := time.Since(start); d > time.Second {
			t.Errorf("Publish took %v with a stuck session", d)
		}
		if !live.waitFor(m, wait) {
			t.Fatalf("the live session never showed %s while the other was stuck:\n%s", m, live.text())
		}
	}

	// The stuck client reads again: everything it had not read, then the newest snapshot.
	caught := newScreen(out)
	if !caught.waitFor("newest4", wait) {
		t.Fatalf("the stuck session never caught up")
	}
	caught.mu.Lock()
	backlog := caught.raw.Len()
	caught.mu.Unlock()
	if backlog < 2<<20 {
		t.Fatalf("the stuck client had %d bytes to read: less than its window, so it was never stuck", backlog)
	}
	t.Logf("the stuck client caught up through %d bytes", backlog)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// openStuck opens a dashboard on a 500×250 terminal whose client never reads, and makes the
// server write it more than the client's SSH window (2 MiB) holds, so that the session's
// writes block. It returns the client's unread output.
func openStuck(t *testing.T, r *rig, key gossh.Signer) io.Reader {
	t.Helper()
	subscribed := r.hub.Subscribers()
	// A full screen: 400 accounts, so each repaint of the stuck session's terminal writes
	// every row.
	full := func(name string) model.Snapshot {
		s := snapshotWith(name)
		for i := range 400 {
			a := s.Accounts[0]
			a.Account.Name = fmt.Sprintf("%s-%03d", name, i)
			s.Accounts = append(s.Accounts, a)
		}
		return s
	}
	r.hub.Publish(full("first1"))

	cs := r.login(t, key)
	stuck, err := cs.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := stuck.RequestPty("xterm-256color", 250, 500, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, err := stuck.StdoutPipe() // read only at the end
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stuck.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := stuck.Shell(); err != nil {
		t.Fatal(err)
	}
	// Its dashboard subscribes once the session's set-up has read the PTY: charm.land/ssh
	// v0.4.2 writes the PTY's size on a window change without the lock its Pty() reads it
	// under, so the test changes sizes only after.
	for deadline := time.Now().Add(wait); r.hub.Subscribers() <= subscribed; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stuck session's dashboard never subscribed")
		}
	}
	// Each size change and snapshot repaints the whole 500×250 screen: well over the
	// client's 2 MiB window in all.
	for i := range 300 {
		if _, err := stuck.SendRequest("window-change", false, gossh.Marshal(struct{ W, H, PW, PH uint32 }{uint32(500 - i%2), 250, 0, 0})); err != nil {
			t.Fatal(err)
		}
		r.hub.Publish(full(fmt.Sprintf("redraw%03d", i)))
		time.Sleep(2 * time.Millisecond) // one snapshot at a time: the hub keeps only the newest
	}

	return out
}

// TestShutdownHangsUpOnAStuckClient: a session whose client stopped reading cannot draw
// its goodbye, so it cannot end; the server closes its connection after endGrace and the
// shutdown completes instead of waiting out its deadline.
func TestShutdownHangsUpOnAStuckClient(t *testing.T) {
	key, line := newKey(t)
	r := startRig(t, []config.Operator{{Name: "stuck", Role: config.RoleOperator, Keys: []string{line}}}, nil)
	openStuck(t, r, key)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a stuck client: %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d < endGrace {
		t.Errorf("shutdown took %v: the session ended before endGrace, so it was never stuck", d)
	}
	if !waitLog(r, "its client is not reading") || !strings.Contains(r.log.String(), "operator=stuck") {
		t.Errorf("the hang-up is not logged:\n%s", r.log)
	}
	if n := r.hub.Subscribers(); n != 0 {
		t.Errorf("%d hub subscribers after shutdown, want 0", n)
	}
}

// TestEachSessionHasItsOwnColours serves four sessions at once whose terminals differ: one
// says it has true colour, one has 256 colours (what an SSH login usually says: COLORTERM
// is not sent), one is a plain xterm (16), one asks for no colour. Each gets its dashboard
// in its own colours.
func TestEachSessionHasItsOwnColours(t *testing.T) {
	key, line := newKey(t)
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}}, nil)
	r.hub.Publish(snapshotWith("colours"))
	open := func(term string, env ...string) *screen {
		_, sc, _ := openTerminal(t, r.login(t, key), term, 110, 30, env...)
		if !sc.waitFor("colours", wait) {
			t.Fatalf("%s %v: no dashboard:\n%s", term, env, sc.text())
		}
		return sc
	}
	raw := func(sc *screen) string {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		return sc.raw.String()
	}
	truecolor := raw(open("xterm-256color", "COLORTERM", "truecolor"))
	colors256 := raw(open("xterm-256color"))
	xterm := raw(open("xterm"))
	plain := raw(open("xterm-256color", "NO_COLOR", "1"))

	sgr := regexp.MustCompile(`\x1b\[[0-9;]*m`)
	colours := func(s string) (rgb, indexed, basic int) {
		for _, seq := range sgr.FindAllString(s, -1) {
			switch {
			case strings.Contains(seq, "38;2;") || strings.Contains(seq, "48;2;"):
				rgb++
			case strings.Contains(seq, "38;5;") || strings.Contains(seq, "48;5;"):
				indexed++
			case regexp.MustCompile(`[\[;](3[0-7]|9[0-7]|4[0-7]|10[0-7])(;|m)`).MatchString(seq):
				basic++
			}
		}
		return
	}
	if rgb, _, _ := colours(truecolor); rgb == 0 {
		t.Errorf("the true-colour terminal got no 24-bit colour")
	}
	if rgb, indexed, _ := colours(colors256); rgb != 0 || indexed == 0 {
		t.Errorf("the 256-colour terminal got %d 24-bit sequences and %d of its own", rgb, indexed)
	}
	if rgb, indexed, basic := colours(xterm); rgb+indexed != 0 || basic == 0 {
		t.Errorf("the 16-colour xterm got %d 24-bit and %d 256-colour sequences, %d of its own colours", rgb, indexed, basic)
	}
	if rgb, indexed, basic := colours(plain); rgb+indexed+basic != 0 {
		t.Errorf("NO_COLOR got %d 24-bit, %d 256-colour and %d 16-colour sequences", rgb, indexed, basic)
	}
}

// TestConnectionsWithoutADashboardAreClosed: an authenticated connection that opens no
// session (ssh -N), or only one refused for want of a PTY, is closed after the grace and
// logged; one that opens a dashboard stays.
func TestConnectionsWithoutADashboardAreClosed(t *testing.T) {
	key, line := newKey(t)
	const grace = 300 * time.Millisecond
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}},
		func(o *Options) { o.SessionGrace = grace })
	closed := func(c *gossh.Client) bool {
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
			return true
		case <-time.After(wait):
			return false
		}
	}

	noSession := r.login(t, key) // ssh -N: authenticated, no channel
	if !closed(noSession) {
		t.Fatal("a connection without a session stayed open")
	}

	noPTY := r.login(t, key)
	sess, err := noPTY.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	sess.CombinedOutput("") // refused: no PTY
	if !closed(noPTY) {
		t.Fatal("a connection whose only session had no PTY stayed open")
	}
	if got := strings.Count(r.log.String(), "connection closed: no terminal session opened"); got != 2 {
		t.Fatalf("%d closes logged:\n%s", got, r.log)
	}

	working := r.login(t, key)
	_, sc := openDashboard(t, working, 80, 24)
	if !sc.waitFor("waiting for the first poll", wait) {
		t.Fatal("no dashboard")
	}
	time.Sleep(3 * grace)
	if _, _, err := working.SendRequest("keepalive@emitop", true, nil); err != nil {
		t.Fatalf("a connection with a dashboard was closed: %v", err)
	}
}
