package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"emitop/internal/tooltest"
	"emitop/sandbox"
)

// TestServeBinaryEndToEnd runs the built `emitop serve` against the sandbox, with one
// poller and one store behind it, and logs in with a real SSH client: an operator's key
// sees the live accounts, an unknown key is refused, SIGTERM tells the session and exits 0.
func TestServeBinaryEndToEnd(t *testing.T) {
	operator, viewerless := newSigner(t), newSigner(t)
	srv := startServe(t, operator)
	cmd, addr := srv.cmd, srv.addr

	dial := func(s gossh.Signer) (*gossh.Client, error) {
		return gossh.Dial("tcp", addr, &gossh.ClientConfig{
			User: "ana", Auth: []gossh.AuthMethod{gossh.PublicKeys(s)},
			HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		})
	}
	if c, err := dial(viewerless); err == nil {
		c.Close()
		t.Fatal("an unknown key was let in")
	}
	client, err := dial(operator)
	if err != nil {
		t.Fatalf("the operator's key was refused: %v", err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", 40, 140, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	screen := &screenText{}
	go screen.read(out)
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sv-main", "cf-madrid", "alegra-co"} {
		if !screen.waitFor(want, 30*time.Second) {
			t.Fatalf("the dashboard never showed %q:\n%s", want, screen.text())
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !screen.waitFor("shutting down", 15*time.Second) {
		t.Errorf("the session was not told of the shutdown")
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("emitop serve exited with %v:\n%s", err, srv.log.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("emitop serve did not stop on SIGTERM")
	}
	for _, want := range []string{"ana", "SHA256:"} {
		if !strings.Contains(srv.log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, srv.log.String())
		}
	}
}

// served is a running `emitop serve` on the sandbox, with one operator, ana.
type served struct {
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
}

// startServe runs the built binary's serve on a loopback port against the sandbox (calm,
// polled every 2 s), with ana holding operator's key, and waits for its address.
func startServe(t *testing.T, operator gossh.Signer) served {
	t.Helper()
	bin := emitopBinary(t)
	_, cfgPath := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 5, NoFaults: true}, "2s")
	dir := t.TempDir()
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, []byte("\n[[operator]]\nname = \"ana\"\nrole = \"operator\"\nkeys = [\""+
		strings.TrimSpace(string(gossh.MarshalAuthorizedKey(operator.PublicKey())))+"\"]\n")...)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}

	hostKey := filepath.Join(dir, "state", "host_key")
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--host-key", hostKey,
		"--config", cfgPath, "--db", filepath.Join(dir, "emitop.db"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logText := &syncBuffer{}
	addrc := make(chan string, 1)
	go func() {
		addrRe := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logText.Write([]byte(sc.Text() + "\n"))
			if m := addrRe.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
		t.Fatal("emitop serve did not report its address")
	}
	if fi, err := os.Stat(hostKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key: %v, mode %v", err, fi.Mode().Perm())
	}
	return served{cmd, addr, logText}
}

func newSigner(t *testing.T) gossh.Signer {
	s, _ := newKeyPair(t)
	return s
}

// newKeyPair is a fresh ed25519 key, as a signer and as the private key to write to a file.
func newKeyPair(t *testing.T) (gossh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

// screenText collects what a session prints, escape sequences removed.
type screenText struct {
	mu  sync.Mutex
	raw strings.Builder
}

func (s *screenText) read(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		s.mu.Lock()
		s.raw.Write(buf[:n])
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *screenText) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ansi.Strip(s.raw.String())
}

func (s *screenText) waitFor(want string, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(s.text(), want) {
			return true
		}
	}
	return false
}

// TestServeInARealTerminal logs in with OpenSSH's own client, in tmux, the way an operator
// does: the dashboard fills the terminal (header on the first row, keys on the last), takes
// keys, follows the polls, and on q gives the terminal back as it found it.
func TestServeInARealTerminal(t *testing.T) {
	tooltest.Need(t, "tmux", "tmux")
	tooltest.Need(t, "ssh", "openssh-client")
	dir := t.TempDir()
	signer, priv := newKeyPair(t)
	block, err := gossh.MarshalPrivateKey(priv, "ana")
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, signer)
	host, port, _ := strings.Cut(srv.addr, ":")

	exitFile := filepath.Join(dir, "exit")
	s := &tmuxSession{t: t, socket: fmt.Sprintf("emitop-ssh-%d-%d", os.Getpid(), time.Now().UnixNano()), name: "ssh"}
	s.start(fmt.Sprintf("ssh -tt -F /dev/null -i %s -p %s -o IdentitiesOnly=yes -o BatchMode=yes "+
		"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR ana@%s; echo EXIT=$? > %s; sleep 60",
		keyPath, port, host, exitFile))

	framed := func(screen string) bool {
		rows := strings.Split(strings.TrimSuffix(screen, "\n"), "\n")
		return len(rows) == 36 && strings.Contains(rows[0], "emitop") && strings.Contains(rows[0], "ana") &&
			strings.Contains(rows[35], "? help") && contains("Accounts", "Documents", "alegra-co", "sv-main")(screen)
	}
	first := s.waitFor("the dashboard filling the terminal", framed)
	if got := s.format("#{alternate_on}"); got != "1" {
		t.Errorf("the dashboard is not on the alternate screen (alternate_on=%s)", got)
	}
	s.waitFor("a later poll", func(screen string) bool { return framed(screen) && screen != first })
	s.keys("?")
	s.waitFor("the help", contains("Keys", "Commands"))
	s.keys("Escape")
	s.waitFor("the dashboard again", framed)

	s.quit(exitFile)
	for f, want := range map[string]string{"#{alternate_on}": "0", "#{cursor_flag}": "1", "#{wrap_flag}": "1", "#{mouse_button_flag}": "0"} {
		if got := s.format(f); got != want {
			t.Errorf("after quitting, %s = %q, want %q", f, got, want)
		}
	}
	if screen := s.screen(); strings.Contains(screen, "Accounts") {
		t.Errorf("the dashboard was left on the terminal:\n%s", screen)
	}
}
