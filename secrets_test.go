package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"emitop/sandbox"
)

// tokenTap is a reverse proxy in front of the sandbox that keeps every token the
// sandbox's token endpoints hand out, as they crossed the wire.
type tokenTap struct {
	mu     sync.Mutex
	tokens map[string]bool
}

func (tp *tokenTap) collect(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && strings.Contains(strings.ToLower(k), "token") && len(s) >= 8 {
				tp.tokens[s] = true
			}
			tp.collect(x)
		}
	case []any:
		for _, x := range v {
			tp.collect(x)
		}
	}
}

func (tp *tokenTap) modify(r *http.Response) error {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var v any
	if json.Unmarshal(body, &v) == nil {
		tp.mu.Lock()
		tp.collect(v)
		tp.mu.Unlock()
	}
	return nil
}

func (tp *tokenTap) list() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	out := make([]string, 0, len(tp.tokens))
	for s := range tp.tokens {
		out = append(out, s)
	}
	return out
}

// TestNoSecretLeaks runs what an operator runs (polls, the headless poller's log, the
// history, a dry-run and a real retry of every provider that resends, and logins the
// provider refuses) with credentials from the environment and the file, and then looks
// for every credential and every token the sandbox issued in the database files, in
// everything printed and in the log: none may be there.
func TestNoSecretLeaks(t *testing.T) {
	sb, err := sandbox.New(sandbox.Options{Scenario: "storm", Seed: 11, NoFaults: true})
	if err != nil {
		t.Fatal(err)
	}
	base, err := sb.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	target, _ := url.Parse(base)
	tap := &tokenTap{tokens: map[string]bool{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = tap.modify
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)

	// The config: every secret-bearing key from the environment, the rest in the file,
	// and two accounts whose logins the provider refuses.
	secrets := map[string]string{}
	var cfg strings.Builder
	cfg.WriteString(strings.ReplaceAll(sb.ConfigTOML(), base, front.URL))
	for _, a := range sb.Accounts() {
		for k, v := range a.Credentials {
			secrets[a.Name+" "+k] = v
		}
		if a.Provider == "alegra" {
			secrets[a.Name+" basic"] = base64.StdEncoding.EncodeToString([]byte(a.Credentials["email"] + ":" + a.Credentials["token"]))
		}
		switch a.Name {
		case "factus-bog":
			secrets["factus-bad password"] = "wrong-Factus-pw-7Q2x"
			cfg.WriteString("\n[[account]]\nname = \"factus-bad\"\nprovider = \"factus\"\nbase_url = \"" + front.URL + a.Path + "\"\n" +
				"client_id = \"" + a.Credentials["client_id"] + "\"\nclient_secret = \"" + a.Credentials["client_secret"] + "\"\n" +
				"username = \"" + a.Credentials["username"] + "\"\npassword = \"${BAD_FACTUS_PASSWORD}\"\n")
			t.Setenv("BAD_FACTUS_PASSWORD", secrets["factus-bad password"])
		case "alforse-main":
			secrets["alforse-bad password"] = "wrong-Alforse-pw-9Zk"
			cfg.WriteString("\n[[account]]\nname = \"alforse-bad\"\nprovider = \"alforse\"\nbase_url = \"" + front.URL + a.Path + "\"\n" +
				"email = \"" + a.Credentials["email"] + "\"\npassword = \"" + secrets["alforse-bad password"] + "\"\ntenant = \"" + a.Settings["tenant"] + "\"\n")
		}
	}
	n := 0
	text := regexp.MustCompile(`(?m)^(token|api_key|client_secret|password) = "([^"$]*)"$`).ReplaceAllStringFunc(cfg.String(), func(line string) string {
		k, v, _ := strings.Cut(line, " = ")
		n++
		name := "EMITOP_TEST_SECRET_" + string(rune('A'+n))
		t.Setenv(name, strings.Trim(v, `"`))
		return k + ` = "${` + name + `}"`
	})
	if n < 8 {
		t.Fatalf("only %d credentials moved to the environment", n)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "state", "emitop.db")

	var printed strings.Builder
	emitop := func(args ...string) int {
		code, out, errs := runCmd(append(args[:1:1], append([]string{"--config", cfgPath, "--db", db}, args[1:]...)...)...)
		printed.WriteString(out + errs)
		return code
	}

	// Polls, printed both ways; the refused logins are among the accounts, so the exit
	// status is 1.
	emitop("poll", "--once")
	if code := emitop("poll", "--once", "-o", "json"); code != 1 {
		t.Fatalf("poll exit %d:\n%s", code, printed.String())
	}
	for _, want := range []string{"factus-bad", "login refused", "alforse-bad"} {
		if !strings.Contains(printed.String(), want) {
			t.Fatalf("the polls do not show %q:\n%s", want, printed.String())
		}
	}

	// The headless poller's log, until it has logged both refused logins.
	cmd := exec.Command(emitopBinary(t), "poll", "-v", "--config", cfgPath, "--db", db)
	var logb syncBuffer
	cmd.Stderr, cmd.Stdout = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logb.String(), "account=factus-bad") || !strings.Contains(logb.String(), "account=alforse-bad") ||
		strings.Count(logb.String(), "msg=polled") < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("the poller logged no refused login in 30 s:\n%s", logb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("poll: %v\n%s", err, logb.String())
	}

	// Dry runs and real retries of every provider that resends, and of a refused login.
	for _, acc := range []string{"cf-madrid", "alegra-co", "sv-main", "factus-bog"} {
		for _, o := range [][]string{{}, {"-o", "json"}} {
			emitop(append([]string{"retry", "--account", acc, "--all-rejected", "--dry-run", "--force", "--reason", "audit"}, o...)...)
		}
		emitop("retry", "--account", acc, "--all-rejected", "--yes", "--force", "--reason", "audit")
	}
	if code := emitop("retry", "--account", "factus-bad", "--all-rejected", "--yes"); code != 1 {
		t.Errorf("retry with a refused login: exit %d", code)
	}
	emitop("history", "--since", "0")
	emitop("history", "--since", "0", "-o", "json")
	if !strings.Contains(printed.String(), "dry run: nothing sent") || !strings.Contains(printed.String(), "resent:") ||
		!strings.Contains(printed.String(), "[redacted]") {
		t.Fatalf("the retries did not run as planned:\n%s", printed.String())
	}

	// Everything emitop wrote: the database with its WAL, what it printed, its log.
	var written bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(dir, "state", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		written.Write(b)
	}
	if written.Len() < 64<<10 || !bytes.Contains(written.Bytes(), []byte("factus-bog")) {
		t.Fatalf("the database holds %d bytes across %v", written.Len(), files)
	}
	tokens := tap.list()
	if len(tokens) < 4 {
		t.Fatalf("the sandbox issued %d tokens: the logins did not happen", len(tokens))
	}
	for _, tok := range tokens {
		secrets["issued token "+tok[:6]+"…"] = tok
	}
	for where, s := range map[string]string{"database": written.String(), "output": printed.String(), "log": logb.String()} {
		for what, v := range secrets {
			if strings.Contains(s, v) {
				t.Errorf("the %s holds %s", where, what)
			}
		}
	}
}
