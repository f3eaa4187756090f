package serve

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"emitop/config"
	"emitop/poller"
	"emitop/store"
)

func TestLoadKeys(t *testing.T) {
	_, a := newKey(t)
	_, b := newKey(t)
	_, c := newKey(t)
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writable := func(p string) string {
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		ops     []config.Operator
		wantErr string // "" means it loads
		wantIDs map[string]string
	}{
		{
			name: "inline and file, comments and blank lines",
			ops: []config.Operator{
				{Name: "alice", Role: config.RoleOperator, Keys: []string{a}},
				{Name: "victor", Role: config.RoleViewer, KeysFile: file("ok", "# victor's laptop\n\n"+b+"\n  no-port-forwarding,no-agent-forwarding "+c+"\n")},
			},
			wantIDs: map[string]string{a: "alice/operator", b: "victor/viewer", c: "victor/viewer"},
		},
		{
			name:    "a keys_file others may write is refused",
			ops:     []config.Operator{{Name: "victor", Role: config.RoleViewer, KeysFile: writable(file("open", b+"\n"))}},
			wantErr: filepath.Join(dir, "open") + " is writable by others (mode 0666): anyone who can write it could log in as victor; run chmod 600 " + filepath.Join(dir, "open"),
		},
		{
			name:    "a bad line names its file and line",
			ops:     []config.Operator{{Name: "victor", Role: config.RoleViewer, KeysFile: file("bad", b+"\n# fine\nssh-ed25519 AAAAnot-base64\n")}},
			wantErr: filepath.Join(dir, "bad") + ":3: operator \"victor\": not an SSH public key",
		},
		{
			name:    "from= would be silently widened",
			ops:     []config.Operator{{Name: "alice", Role: config.RoleOperator, KeysFile: file("from", `from="10.0.0.0/8" `+a+"\n")}},
			wantErr: `:1: operator "alice": option "from" is not supported`,
		},
		{
			name:    "command= on an inline key",
			ops:     []config.Operator{{Name: "alice", Role: config.RoleOperator, Line: 7, Keys: []string{`command="/bin/true" ` + a}}},
			wantErr: `operator "alice" (config line 7): keys[0]: option "command" is not supported`,
		},
		{
			name: "one key, two operators",
			ops: []config.Operator{
				{Name: "alice", Role: config.RoleOperator, Keys: []string{a}},
				{Name: "victor", Role: config.RoleViewer, KeysFile: file("dup", a+"\n")},
			},
			wantErr: `dup:1: operator "victor": key SHA256:`,
		},
		{
			name:    "missing keys_file",
			ops:     []config.Operator{{Name: "alice", Role: config.RoleOperator, KeysFile: filepath.Join(dir, "none")}},
			wantErr: `operator "alice": keys_file: open `,
		},
		{
			name:    "unknown role",
			ops:     []config.Operator{{Name: "alice", Role: "admin", Keys: []string{a}}},
			wantErr: `unknown role "admin"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := loadKeys(tt.ops)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error containing %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(kr.byKey) != len(tt.wantIDs) {
				t.Errorf("%d keys loaded, want %d", len(kr.byKey), len(tt.wantIDs))
			}
			for line, want := range tt.wantIDs {
				pub, id := newKeyIdentity(t, kr, line)
				if got := id.Name + "/" + id.Role; got != want {
					t.Errorf("%s: got %s, want %s", line[:20], got, want)
				}
				if id.Fingerprint != gossh.FingerprintSHA256(pub) {
					t.Errorf("fingerprint %s", id.Fingerprint)
				}
			}
		})
	}
}

func TestReloadKeysRevokesAndAdmits(t *testing.T) {
	k1, l1 := newKey(t)
	k2, l2 := newKey(t)
	keysFile := filepath.Join(t.TempDir(), "victor.keys")
	if err := os.WriteFile(keysFile, []byte(l1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRig(t, []config.Operator{{Name: "victor", Role: config.RoleViewer, KeysFile: keysFile}}, nil)
	c := r.login(t, k1)
	sess, sc := openDashboard(t, c, 90, 25)
	if !sc.waitFor("waiting for the first poll", wait) {
		t.Fatalf("no dashboard:\n%s", sc.text())
	}
	if _, err := r.dial(k2); !isAuthError(err) {
		t.Fatalf("an undeclared key: want an auth failure, got %v", err)
	}

	if err := os.WriteFile(keysFile, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.ReloadKeys(); err == nil || !strings.Contains(err.Error(), keysFile+":1:") {
		t.Fatalf("a bad reload: want an error naming the line, got %v", err)
	}
	c1, err := r.dial(k1)
	if err != nil {
		t.Fatalf("a failed reload dropped the keys in use: %v", err)
	}
	c1.Close()

	if err := os.WriteFile(keysFile, []byte(l2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	if !sc.waitFor("your key was revoked", wait) {
		t.Fatalf("the revoked key's session stayed open:\n%s", sc.text())
	}
	sess.Wait()
	if _, err := r.dial(k1); !isAuthError(err) {
		t.Errorf("a revoked key: want an auth failure, got %v", err)
	}
	c2, err := r.dial(k2)
	if err != nil {
		t.Fatalf("the added key was refused: %v", err)
	}
	c2.Close()
}

func TestHostKeyPersistsPrivate(t *testing.T) {
	_, line := newKey(t)
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "emitop.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	path := filepath.Join(dir, "state", "emitop", HostKeyName)
	log := &syncBuffer{}
	opts := Options{
		Backend: hubBackend{poller.NewHub(), st}, Store: st, HostKeyPath: path,
		Operators: []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}},
		Log:       slog.New(slog.NewTextHandler(log, nil)),
	}
	s1, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new host key mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v, want 0700", di.Mode().Perm())
	}
	first, _ := os.ReadFile(path)

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(opts); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("a 0644 host key was left %v", fi.Mode().Perm())
	}
	if !strings.Contains(log.String(), "mode set to 0600") {
		t.Errorf("narrowing the mode was not logged:\n%s", log)
	}
	again, _ := os.ReadFile(path)
	if string(again) != string(first) {
		t.Error("the host key changed between two starts")
	}
	if len(s1.ssh.HostSigners) != 1 || s1.ssh.HostSigners[0].PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Errorf("host signers %v", s1.ssh.HostSigners)
	}
}

func TestDefaultHostKeyPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/srv/state")
	if p, err := DefaultHostKeyPath(); err != nil || p != "/srv/state/emitop/ssh_host_ed25519_key" {
		t.Errorf("got %q, %v", p, err)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/op")
	if p, err := DefaultHostKeyPath(); err != nil || p != "/home/op/.local/state/emitop/ssh_host_ed25519_key" {
		t.Errorf("got %q, %v", p, err)
	}
}

// TestReloadRefusesAKeysFileOthersMayWrite: the attack of issue 12 — a keys_file left
// world-writable, a local user appends a key, SIGHUP reloads — lets no one in: the reload
// is refused with the fix, and the keys in use stay.
func TestReloadRefusesAKeysFileOthersMayWrite(t *testing.T) {
	owner, ownerLine := newKey(t)
	intruder, intruderLine := newKey(t)
	keysFile := filepath.Join(t.TempDir(), "ana.keys")
	if err := os.WriteFile(keysFile, []byte(ownerLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRig(t, []config.Operator{{Name: "ana", Role: config.RoleOperator, KeysFile: keysFile}}, nil)
	if err := os.Chmod(keysFile, 0o666); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(keysFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(intruderLine + "\n")
	f.Close()
	if err := r.srv.ReloadKeys(); err == nil || !strings.Contains(err.Error(), "chmod 600 "+keysFile) {
		t.Fatalf("reload of a world-writable keys_file: %v", err)
	}
	if _, err := r.dial(intruder); !isAuthError(err) {
		t.Fatalf("the appended key: want an auth failure, got %v", err)
	}
	c, err := r.dial(owner)
	if err != nil {
		t.Fatalf("the owner's key stopped working: %v", err)
	}
	c.Close()
}
