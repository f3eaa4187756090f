package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"emitop/config"
	"emitop/model"
	"emitop/poller"
	"emitop/serve"
	"emitop/store"
	"emitop/ui"
)

func TestServeCommandUsage(t *testing.T) {
	var out, errb bytes.Buffer
	dir := t.TempDir()
	if code := run([]string{"serve", "--bogus"}, nil, &out, &errb); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if code := run([]string{"serve", "extra"}, nil, &out, &errb); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
	errb.Reset()
	if code := run([]string{"serve", "--config", filepath.Join(dir, "none.toml")}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "none.toml") {
		t.Errorf("missing config: exit %d, want 2 naming the file: %s", code, errb.String())
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[operator]]\nname = \"alice\"\nrole = \"admin\"\nkeys = [\"x\"]\n"), 0o600)
	errb.Reset()
	if code := run([]string{"serve", "--config", bad}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "admin") {
		t.Errorf("bad config: exit %d, want 2 naming the problem: %s", code, errb.String())
	}
}

// hubOnly is a ui.Backend on a real hub and store, for the command's loop.
type hubOnly struct {
	hub *poller.Hub
	st  *store.Store
}

func (b hubOnly) Subscribe() (<-chan model.Snapshot, func()) { return b.hub.Subscribe() }
func (b hubOnly) Refresh()                                   {}
func (b hubOnly) DocumentEvents(ctx context.Context, account, docID string, limit int) ([]model.Event, error) {
	return b.st.Events(ctx, store.EventFilter{Account: account, DocID: docID, Limit: limit})
}
func (b hubOnly) Events(ctx context.Context, f ui.EventFilter) ([]model.Event, error) {
	return b.st.Events(ctx, store.EventFilter{Account: f.Account, DocID: f.DocID, Since: f.Since, Limit: f.Limit})
}
func (b hubOnly) Requests(context.Context, string, time.Time, int) ([]ui.Request, error) {
	return nil, nil
}
func (b hubOnly) WindowSeries(context.Context, string, string, time.Time, int) ([]int, error) {
	return nil, nil
}
func (b hubOnly) PlanRetry(context.Context, ui.RetryRequest) (model.RetryPlan, error) {
	return model.RetryPlan{}, errors.New("no providers behind this backend")
}
func (b hubOnly) RunRetry(context.Context, model.RetryPlan, func(model.RetryProgress)) (model.RetryReport, error) {
	return model.RetryReport{}, errors.New("no providers behind this backend")
}

func TestServeUntilReloadsOnHUPAndStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "emitop.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer := newSigner(t)
	keysFile := filepath.Join(dir, "alice.keys")
	os.WriteFile(keysFile, gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o600)
	logBuf := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, nil))
	srv, err := serve.New(serve.Options{
		Backend: hubOnly{poller.NewHub(), st}, Store: st, Log: log,
		Operators:   []config.Operator{{Name: "alice", Role: config.RoleOperator, KeysFile: keysFile}},
		HostKeyPath: filepath.Join(dir, "state", serve.HostKeyName),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal)
	done := make(chan error, 1)
	// ":0" names no host: loopback, never every interface.
	go func() { done <- serveUntil(ctx, srv, ":0", hup, log) }()

	logged := func(want string) bool {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if strings.Contains(logBuf.String(), want) {
				return true
			}
		}
		return false
	}
	os.WriteFile(keysFile, []byte("not a key\n"), 0o600)
	hup <- syscall.SIGHUP
	if !logged("keys not reloaded") {
		t.Fatalf("a bad keys file was not reported:\n%s", logBuf)
	}
	os.WriteFile(keysFile, gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o600)
	hup <- syscall.SIGHUP
	if !logged("msg=\"keys reloaded\"") {
		t.Fatalf("a good keys file was not reloaded:\n%s", logBuf)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveUntil: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serveUntil did not return after cancel")
	}
	if fp := srv.HostKeyFingerprint(); !strings.HasPrefix(fp, "SHA256:") || !strings.Contains(logBuf.String(), "host_key="+fp) {
		t.Errorf("the start does not name the host key's fingerprint %q:\n%s", fp, logBuf)
	}
	for _, want := range []string{"serving the dashboard over SSH", "addr=127.0.0.1:", "keys not reloaded", keysFile + ":1:", "msg=\"keys reloaded\"", "shutting down"} {
		if !strings.Contains(logBuf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logBuf)
		}
	}
}

func TestListenAddress(t *testing.T) {
	for flag, want := range map[string]string{
		":2222":          "127.0.0.1:2222",
		"127.0.0.1:2222": "127.0.0.1:2222",
		"0.0.0.0:2222":   "0.0.0.0:2222",
		"[::]:2222":      "[::]:2222",
		"[::1]:2222":     "[::1]:2222",
		"10.1.2.3:22":    "10.1.2.3:22",
		"nonsense":       "nonsense", // net.Listen says what is wrong with it
	} {
		if got := listenAddress(flag); got != want {
			t.Errorf("listenAddress(%q) = %q, want %q", flag, got, want)
		}
	}
}
