package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"emitop/internal/pgtest"
	"emitop/model"
	"emitop/sandbox"
	"emitop/store"
)

// startSandbox serves a sandbox on a loopback port until the test ends.
func startSandbox(t *testing.T, opts sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// sandboxConfig starts a sandbox and writes its config, polling every interval, to a file.
func sandboxConfig(t *testing.T, opts sandbox.Options, interval string) (*sandbox.Sandbox, string) {
	t.Helper()
	sb := startSandbox(t, opts)
	cfg := strings.ReplaceAll(sb.ConfigTOML(), `poll_interval = "5s"`, `poll_interval = "`+interval+`"`)
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return sb, path
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestPollOnceJSON(t *testing.T) {
	_, cfg := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 2, NoFaults: true}, "5s")
	db := filepath.Join(t.TempDir(), "emitop.db")
	code, out, errs := runCmd("poll", "--once", "-o", "json", "--config", cfg, "--db", db)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got struct {
		Accounts []struct {
			Name      string         `json:"name"`
			Provider  string         `json:"provider"`
			Up        bool           `json:"up"`
			Windows   []model.Window `json:"windows"`
			Documents map[string]int `json:"documents"`
			Problems  map[string]int `json:"problems"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(got.Accounts) != 10 {
		t.Fatalf("%d accounts", len(got.Accounts))
	}
	for _, a := range got.Accounts {
		_, hasPending := a.Documents["pending"]
		if !a.Up || !hasPending || a.Documents["rejected"] == 0 || len(a.Problems) == 0 {
			t.Errorf("%+v", a)
		}
		problems := 0
		for c, n := range a.Problems {
			if _, err := model.ParseClass(c); err != nil {
				t.Errorf("%s: %v", a.Name, err)
			}
			problems += n
		}
		if problems < a.Documents["rejected"] {
			t.Errorf("%s: %d problems for %d rejected", a.Name, problems, a.Documents["rejected"])
		}
		if a.Provider != "alforse" && (len(a.Windows) == 0 || a.Windows[0].Limit <= 0) {
			t.Errorf("%s: windows %+v", a.Name, a.Windows)
		}
	}

	// The text form says the same, one block per account.
	code, text, _ := runCmd("poll", "--once", "--config", cfg, "--db", db)
	if code != 0 || strings.Count(text, "  documents") != 10 || !strings.Contains(text, "sv-main") || !strings.Contains(text, "window long") {
		t.Errorf("exit %d, text:\n%s", code, text)
	}

	// The history lists what the polls recorded, newest first.
	code, hist, errs := runCmd("history", "--db", db, "--account", "cf-madrid", "-o", "json")
	if code != 0 {
		t.Fatalf("history exit %d: %s", code, errs)
	}
	var events []struct {
		ID      int64          `json:"id"`
		At      time.Time      `json:"at"`
		Account string         `json:"account"`
		Kind    string         `json:"kind"`
		Status  string         `json:"status"`
		Problem *model.Problem `json:"problem"`
	}
	if err := json.Unmarshal([]byte(hist), &events); err != nil || len(events) == 0 {
		t.Fatalf("history: %v %s", err, hist)
	}
	withProblem := 0
	for i, e := range events {
		if e.Account != "cf-madrid" || e.Kind != store.KindSeen || i > 0 && e.At.After(events[i-1].At) {
			t.Fatalf("event %d: %+v", i, e)
		}
		if e.Status == "rejected" && e.Problem != nil && e.Problem.Class != "" {
			withProblem++
		}
	}
	if withProblem == 0 {
		t.Error("no rejected event carries its problem")
	}
}

func TestHistorySanitizes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "emitop.db")
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	hostile := "REJECTED\rACCEPTED \x1b[8mhidden\x1b[0m \u202eevil"
	err = st.Enqueue(context.Background(), store.UpsertDocument(model.Document{
		Account: "acct\x1b[31m", Provider: "alegra", ID: "1", Number: "FV\r1", Status: model.StatusRejected,
		Problem: &model.Problem{Class: model.ClassValidation, Code: "AEP\x07", Message: hostile},
	}, []byte(hostile), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if err := closeStore(st); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("history", "--db", db)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, bad := range []string{"\x1b", "\r", "\x07", "\u202e"} {
		if strings.Contains(out, bad) {
			t.Errorf("history printed %q: %q", bad, out)
		}
	}
	if !strings.Contains(out, "REJECTED␍ACCEPTED") {
		t.Errorf("the message is not shown as sent: %q", out)
	}
}

func TestPollUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[account]]\nname = \"a\"\nprovider = \"nope\"\n\n[[account]]\nprovider = \"alegra\"\n"), 0o600)
	tests := []struct {
		args  []string
		lines int // lines on stderr
	}{
		{[]string{"poll", "--once", "--config", bad}, 4},
		{[]string{"poll", "--once", "--config", filepath.Join(dir, "missing.toml")}, 1},
		{[]string{"poll", "-o", "yaml"}, 1},
		{[]string{"history", "--since", "-1h"}, 1},
	}
	for _, tt := range tests {
		code, _, errs := runCmd(tt.args...)
		if code != 2 || strings.Count(errs, "\n") != tt.lines {
			t.Errorf("%v: exit %d, stderr %q", tt.args, code, errs)
		}
	}
}

var build struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// emitopBinary builds emitop once for the tests that run it as a process.
func emitopBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "emitop-test-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "emitop")
		build.out, build.err = exec.Command("go", "build", "-o", build.path, ".").CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("go build: %v\n%s", build.err, build.out)
	}
	return build.path
}

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if build.path != "" {
		os.RemoveAll(filepath.Dir(build.path))
	}
	os.Exit(code)
}

// committed reads the IDs of the events a reader sees as committed, and how many
// request-log rows.
func committed(t *testing.T, db string) (events map[int64]bool, requests int) {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT id FROM events`)
	if err != nil {
		return nil, 0 // not created yet
	}
	defer rows.Close()
	events = map[int64]bool{}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		events[id] = true
	}
	conn.QueryRow(`SELECT count(*) FROM requests`).Scan(&requests)
	return events, requests
}

// TestPollKilled kills a headless poll with SIGKILL while it writes, three times over the
// same database: each time the database passes integrity_check and keeps every event
// committed before the kill.
func TestPollKilled(t *testing.T) {
	bin := emitopBinary(t)
	_, cfg := sandboxConfig(t, sandbox.Options{Scenario: "demo", Seed: 8, NoFaults: true}, "50ms")
	db := filepath.Join(t.TempDir(), "emitop.db")
	requests := 0
	for round := range 3 {
		cmd := exec.Command(bin, "poll", "--config", cfg, "--db", db)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var before map[int64]bool
		var n int
		deadline := time.Now().Add(20 * time.Second)
		for len(before) < 100 || n < requests+150 {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("round %d: %d events, %d requests after 20 s; stderr:\n%s", round, len(before), n, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
			before, n = committed(t, db)
		}
		// The poller writes the request log and window samples all the time: kill it
		// while it does, right after reading what is committed.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		st, err := store.Open(context.Background(), db)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		conn, err := sql.Open("sqlite", "file:"+db)
		if err != nil {
			t.Fatal(err)
		}
		var check string
		if err := conn.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("round %d: integrity_check: %q %v", round, check, err)
		}
		conn.Close()
		st.Close()
		after, m := committed(t, db)
		for id := range before {
			if !after[id] {
				t.Errorf("round %d: event %d committed before the kill is gone", round, id)
			}
		}
		t.Logf("round %d: killed at %d events, %d requests; reopened with %d events, %d requests", round, len(before), n, len(after), m)
		requests = m
	}
}

// TestPollStopsOnSIGTERM: a headless poll stops cleanly on SIGTERM, status 0, with its
// log on stderr and everything it polled in the history.
func TestPollStopsOnSIGTERM(t *testing.T) {
	bin := emitopBinary(t)
	_, cfg := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 8, NoFaults: true}, "200ms")
	db := filepath.Join(t.TempDir(), "emitop.db")
	cmd := exec.Command(bin, "poll", "-v", "--config", cfg, "--db", db)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(stderr.String(), "msg=polled") < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("no polls after 20 s; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v; stderr:\n%s", err, stderr.String())
	}
	log := stderr.String()
	if !strings.Contains(log, "msg=polling") || !strings.HasSuffix(strings.TrimSpace(log), "msg=stopped") {
		t.Errorf("log:\n%s", log)
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	accounts, _ := st.Accounts(context.Background())
	reqs, _ := st.Requests(context.Background(), store.RequestFilter{Limit: 10})
	if len(accounts) != 10 || len(reqs) == 0 {
		t.Errorf("history holds %d accounts, %d requests", len(accounts), len(reqs))
	}
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
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

// TestPollOnceJSONErrors: each failed account's `error` is its last failure decoded: a
// refused password, a user who needs MFA, a provider that cannot be reached.
func TestPollOnceJSONErrors(t *testing.T) {
	sb, cfgPath := sandboxConfig(t, sandbox.Options{Scenario: "demo", Seed: 2, NoFaults: true}, "5s")
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(text)
	for _, a := range sb.Accounts() {
		if a.Name == "factus-bog" {
			base := regexp.MustCompile(`name = "factus-bog"\nprovider = "factus"\nbase_url = "([^"]*)"`).FindStringSubmatch(cfg)
			if base == nil {
				t.Fatalf("no factus-bog base_url in\n%s", cfg)
			}
			cfg += "\n[[account]]\nname = \"factus-bad\"\nprovider = \"factus\"\nbase_url = \"" + base[1] + "\"\n" +
				"client_id = \"" + a.Credentials["client_id"] + "\"\nclient_secret = \"" + a.Credentials["client_secret"] + "\"\n" +
				"username = \"" + a.Credentials["username"] + "\"\npassword = \"not-the-password\"\n"
		}
	}
	cfg += "\n[[account]]\nname = \"cf-gone\"\nprovider = \"certifactu\"\nbase_url = \"http://127.0.0.1:1\"\napi_key = \"k\"\ntimeout = \"2s\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("poll", "--once", "-o", "json", "--config", cfgPath, "--db", filepath.Join(t.TempDir(), "emitop.db"))
	if code != 1 { // accounts are not up
		t.Fatalf("exit %d: %s", code, errs)
	}
	type pollErr struct {
		Class, Verdict, Code, Message, Detail string
		Status                                int
	}
	var got struct {
		Accounts []struct {
			Name   string   `json:"name"`
			Health string   `json:"health"`
			Error  *pollErr `json:"error"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	byName := map[string]*pollErr{}
	for _, a := range got.Accounts {
		byName[a.Name] = a.Error
		if a.Name == "factus-bad" || a.Name == "alforse-mfa" {
			if a.Health != "refused" {
				t.Errorf("%s: health %s", a.Name, a.Health)
			}
		}
	}
	if e := byName["factus-bad"]; e == nil || e.Class != "auth" || e.Code != "invalid_grant" || e.Status != 400 || !strings.Contains(e.Detail, "parked") {
		t.Errorf("factus-bad: %+v", e)
	}
	if e := byName["alforse-mfa"]; e == nil || e.Class != "auth" || e.Verdict != "reauth" || !strings.Contains(e.Message, "MFA") {
		t.Errorf("alforse-mfa: %+v", e)
	}
	if e := byName["cf-gone"]; e == nil || e.Class != "unknown" || e.Verdict != "retry" || e.Detail == "" || e.Status != 0 {
		t.Errorf("cf-gone: %+v", e)
	}
	if e := byName["cf-madrid"]; e != nil {
		t.Errorf("cf-madrid polled well but has an error: %+v", e)
	}
	if !strings.Contains(out, `"verdict": "reauth"`) {
		t.Errorf("the JSON lacks the verdict: %s", out)
	}
}

// TestPollOnceThatCannotFinish: a provider that never answers, and a --once that times out
// or is interrupted: the accounts not polled are reported down with why, not up, and the
// exit status is 1.
func TestPollOnceThatCannotFinish(t *testing.T) {
	asked := make(chan struct{}, 100)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		<-r.Context().Done()
	}))
	defer hang.Close()
	cfg := filepath.Join(t.TempDir(), "config.toml")
	body := "[[account]]\nname = \"cf-hung\"\nprovider = \"certifactu\"\nbase_url = \"" + hang.URL + "\"\napi_key = \"cf_test\"\ntimeout = \"30s\"\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "emitop.db")
	check := func(how string, code int, out, errs, why string) {
		t.Helper()
		var got struct {
			Accounts []accountSummary `json:"accounts"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.Accounts) != 1 {
			t.Fatalf("%s: exit %d, %v\n%s%s", how, code, err, out, errs)
		}
		a := got.Accounts[0]
		if code != 1 || a.Up || a.Health != model.HealthDown || a.Error == nil || a.Error.Detail != "not polled: "+why || a.Error.Class != model.ClassUnknown {
			t.Fatalf("%s: exit %d, %+v", how, code, a)
		}
	}
	code, out, errs := runCmd("poll", "--once", "--timeout", "300ms", "-o", "json", "--config", cfg, "--db", db)
	check("timed out", code, out, errs, "timed out after 300ms")

	cmd := exec.Command(emitopBinary(t), "poll", "--once", "-o", "json", "--config", cfg, "--db", db)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for len(asked) > 0 {
		<-asked // the timed-out run's
	}
	<-asked // the poll is under way
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	check("interrupted", cmd.ProcessState.ExitCode(), stdout.String(), stderr.String(), "interrupt signal received")
}

// TestLogSnapshotsHealth: the log says each change of an account's health once, and of
// its first poll only where it landed (there is no health before it to come from).
func TestLogSnapshotsHealth(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	snap := func(i int, h model.Health, by string) model.Snapshot {
		return model.Snapshot{Accounts: []model.AccountState{{Account: model.Account{Name: "sv-main"}, Health: h,
			LastPoll: at.Add(time.Duration(i) * time.Second), Err: "boom", PolledBy: by}}}
	}
	cases := []struct {
		name   string
		health []model.Health
		by     string // the process that polls it, when another
		want   []string
	}{
		{"polled by another process", []model.Health{model.HealthDown, model.HealthUp}, "host-b/42", []string{""}},
		{"first poll down", []model.Health{model.HealthDown}, "", []string{`level=WARN msg=health account=sv-main to=down err=boom`}},
		{"first poll up, then down, then up", []model.Health{model.HealthUp, model.HealthDown, model.HealthDown, model.HealthUp}, "",
			[]string{`level=WARN msg=health account=sv-main from=up to=down err=boom`, `level=INFO msg=health account=sv-main from=down to=up err=boom`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			snaps := make(chan model.Snapshot, len(c.health))
			for i, h := range c.health {
				snaps <- snap(i, h, c.by)
			}
			close(snaps)
			logSnapshots(log, snaps)
			got := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
