package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"emitop/internal/pgtest"
	"emitop/internal/storetest"
	"emitop/model"
	"emitop/sandbox"
)

// The tests of this file run emitop as the operators do: separate processes, each in a
// working directory of its own, sharing one store, against one sandbox. They see what a
// process does from outside only: its metrics, its exit, the store's tables and the
// sandbox's counters.

// fleetProc is one emitop process of a fleet test.
type fleetProc struct {
	name    string
	cmd     *exec.Cmd
	log     *syncBuffer
	metrics string // its /metrics URL
	once    sync.Once
	err     error // how it exited
}

// startFleetProc runs `emitop ARGS --metrics-listen 127.0.0.1:0` in dir until the test
// ends, and reads the metrics URL it logs.
func startFleetProc(t *testing.T, name, dir string, args ...string) *fleetProc {
	t.Helper()
	p := &fleetProc{name: name, log: &syncBuffer{}}
	p.cmd = exec.Command(emitopBinary(t), append(args, "--metrics-listen", "127.0.0.1:0")...)
	p.cmd.Dir = dir
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop() })
	served := regexp.MustCompile(`msg="serving metrics" url=(\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := served.FindStringSubmatch(p.log.String()); m != nil {
			p.metrics = m[1]
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not serve metrics in 20 s:\n%s", name, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process with SIGTERM, as an operator would, and waits for it.
func (p *fleetProc) stop() error {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.err = p.cmd.Wait()
	})
	return p.err
}

// kill ends the process with SIGKILL: nothing it has not committed reaches the store,
// and its registration stays until it runs out.
func (p *fleetProc) kill() {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.err = p.cmd.Wait()
	})
}

// requests reads the process's emitop_requests_total, summed by account.
func (p *fleetProc) requests(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(p.metrics)
	if err != nil {
		t.Fatalf("%s: metrics: %v", p.name, err)
	}
	defer resp.Body.Close()
	line := regexp.MustCompile(`^emitop_requests_total\{account="([^"]*)",[^}]*\} (\S+)$`)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			n, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("%s: metrics line %q: %v", p.name, sc.Text(), err)
			}
			out[m[1]] += n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: metrics: %v", p.name, err)
	}
	return out
}

// leaseHolders reads which process holds each account's poll lease, by its pid (a
// registration is named host/pid/random); 0 for none.
func leaseHolders(t *testing.T, db *sql.DB) map[string]int {
	t.Helper()
	rows, err := db.Query(`SELECT account, holder FROM poll_leases`)
	if err != nil {
		t.Fatalf("poll leases: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var account, holder string
		if err := rows.Scan(&account, &holder); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(holder, "/")
		pid := 0
		if len(parts) >= 3 {
			pid, _ = strconv.Atoi(parts[len(parts)-2])
		}
		out[account] = pid
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// fleetConfig writes, in each of dirs, the sandbox's configuration polling every
// interval, with timeout as the accounts' timeout and the [store] they share, leased for
// lease, and operator ana for `emitop serve`.
func fleetConfig(t *testing.T, sb *sandbox.Sandbox, interval, timeout string, store string, lease time.Duration, dirs ...string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sb.ConfigTOML()
	for from, to := range map[string]string{`poll_interval = "5s"`: `poll_interval = "` + interval + `"`, `timeout = "30s"`: `timeout = "` + timeout + `"`} {
		if !strings.Contains(cfg, from) {
			t.Fatalf("no %s in the sandbox's configuration", from)
		}
		cfg = strings.ReplaceAll(cfg, from, to)
	}
	cfg += fmt.Sprintf("\n[[operator]]\nname = \"ana\"\nrole = \"operator\"\nkeys = [%q]\n\n[store]\n%s\nlease = %q\n",
		strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key))), store, lease.String())
	for _, dir := range dirs {
		if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFleetProcessesShareOneFile is what a new user tried (issue 15): two `emitop poll`
// and an `emitop serve` on one configuration and one SQLite file. The accounts spread
// over the three, each is polled by the process holding its lease and by no other (the
// processes' own request counters say so), and the sandbox serves no 429.
func TestFleetProcessesShareOneFile(t *testing.T) {
	const lease = 1500 * time.Millisecond
	sb := startSandbox(t, sandbox.Options{Scenario: "calm", Seed: 5, NoFaults: true, Accounts: 2})
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "emitop.db")
	fleetConfig(t, sb, "500ms", "5s", fmt.Sprintf("path = %q", dbPath), lease, dir)
	cfg := filepath.Join(dir, "config.toml")
	procs := []*fleetProc{
		startFleetProc(t, "poll-1", dir, "poll", "--config", cfg),
		startFleetProc(t, "poll-2", dir, "poll", "--config", cfg),
		startFleetProc(t, "serve", dir, "serve", "--listen", "127.0.0.1:0", "--host-key", filepath.Join(dir, "host_key"), "--config", cfg),
	}
	byPid := map[int]*fleetProc{}
	for _, p := range procs {
		byPid[p.cmd.Process.Pid] = p
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	accounts := sb.Accounts()
	share := (len(accounts) + len(procs) - 1) / len(procs)
	spread := func() (map[string]int, bool) {
		holders := leaseHolders(t, db)
		count := map[int]int{}
		for _, a := range accounts {
			pid := holders[a.Name]
			if byPid[pid] == nil {
				return holders, false
			}
			count[pid]++
		}
		for _, n := range count {
			if n > share {
				return holders, false
			}
		}
		return holders, len(count) == len(procs)
	}
	var holders map[string]int
	deadline := time.Now().Add(20 * time.Second)
	for ok := false; !ok; holders, ok = spread() {
		if time.Now().After(deadline) {
			t.Fatalf("the %d accounts did not spread over the 3 processes in 20 s: %v", len(accounts), holders)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(lease) // a poll under way when an account changed hands ends
	before := make([]map[string]float64, len(procs))
	for i, p := range procs {
		before[i] = p.requests(t)
	}
	time.Sleep(3 * time.Second) // six poll intervals
	if now, _ := spread(); fmt.Sprint(now) != fmt.Sprint(holders) {
		t.Fatalf("the accounts changed hands while measured: %v, then %v", holders, now)
	}
	for _, a := range accounts {
		var by []string
		for i, p := range procs {
			if p.requests(t)[a.Name] > before[i][a.Name] {
				by = append(by, p.name)
			}
		}
		if holder := byPid[holders[a.Name]].name; len(by) != 1 || by[0] != holder {
			t.Errorf("%s, held by %s, was polled by %v", a.Name, holder, by)
		}
	}
	for _, p := range []string{"alegra", "sv-dte", "certifactu", "factus", "alforse"} {
		if st := sb.Stats(p); st.RateLimited != 0 || st.Requests == 0 {
			t.Errorf("%s: %d requests, %d of them 429", p, st.Requests, st.RateLimited)
		}
	}
	for _, p := range procs {
		if err := p.stop(); err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.log.String())
		}
	}
}

// fleetSize is how many accounts per provider TestFleetTakeoverOnPostgres polls: 2, or
// $EMITOP_FLEET_ACCOUNTS to measure the figure (200: 1,000 accounts).
func fleetSize(t *testing.T) int {
	s := os.Getenv("EMITOP_FLEET_ACCOUNTS")
	if s == "" {
		return 2
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > sandbox.MaxAccounts {
		t.Fatalf("EMITOP_FLEET_ACCOUNTS=%q: want 1 to %d", s, sandbox.MaxAccounts)
	}
	return n
}

// TestFleetTakeoverOnPostgres: two hosts (two `emitop poll`, separate working
// directories) share one PostgreSQL. A bulk retry asked with `emitop retry` runs on the
// process that polls the account; that process is killed with SIGKILL in the middle of
// it. Its accounts are taken over within two lease periods, the retry ends with every
// document accepted or skipped by policy, nothing is emitted twice, no 429 is served,
// and no event committed before the kill is lost.
func TestFleetTakeoverOnPostgres(t *testing.T) {
	const lease = 2 * time.Second
	const account = "cf-madrid"
	url := pgtest.Need(t).Schema(t)
	n := fleetSize(t)
	sb := startSandbox(t, sandbox.Options{Scenario: "calm", Seed: 5, NoFaults: true, Accounts: n, Documents: 60})
	total := len(sb.Accounts())
	interval := time.Duration(max(1, total/50)) * time.Second // about 50 polls a second at most
	hostA, hostB, asker := t.TempDir(), t.TempDir(), t.TempDir()
	fleetConfig(t, sb, interval.String(), "2s", fmt.Sprintf("url = %q", url), lease, hostA, hostB, asker)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	procs := map[string]*fleetProc{
		"A": startFleetProc(t, "host A", hostA, "poll", "--config", "config.toml"),
		"B": startFleetProc(t, "host B", hostB, "poll", "--config", "config.toml"),
	}
	alive := map[int]bool{procs["A"].cmd.Process.Pid: true, procs["B"].cmd.Process.Pid: true}
	deadline := time.Now().Add(30*time.Second + time.Duration(total)*10*time.Millisecond)
	var holders map[string]int
	for {
		holders = leaseHolders(t, db)
		count := map[int]int{}
		for _, a := range sb.Accounts() {
			count[holders[a.Name]]++
		}
		if len(count) == 2 && count[procs["A"].cmd.Process.Pid] > 0 && count[procs["B"].cmd.Process.Pid] > 0 &&
			count[procs["A"].cmd.Process.Pid]+count[procs["B"].cmd.Process.Pid] == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the accounts did not spread over the two hosts: %v", count)
		}
		time.Sleep(50 * time.Millisecond)
	}
	runner, survivor := procs["A"], procs["B"]
	if holders[account] == survivor.cmd.Process.Pid {
		runner, survivor = survivor, runner
	}
	// Every document the policy lets be resent is accepted, slowly: the retry takes a while.
	sb.Fix(account)
	sb.SetFaults(account, sandbox.Faults{Latency: 250 * time.Millisecond})
	// The retry is planned from the store: the runner's polls must have written the
	// account's rejected documents there.
	time.Sleep(2 * interval)

	retry := exec.Command(emitopBinary(t), "retry", "--config", "config.toml", "--account", account, "--all-rejected", "--yes", "-o", "json")
	retry.Dir = asker
	var out, errOut syncBuffer
	retry.Stdout, retry.Stderr = &out, &errOut
	if err := retry.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	var retryErr error
	go func() {
		retryErr = retry.Wait()
		close(ended)
	}()
	t.Cleanup(func() {
		retry.Process.Kill()
		<-ended
	})
	for sb.AccountStats(account).Emissions == 0 {
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatalf("the retry emitted nothing:\n%s%s\nrunner:\n%s", out.String(), errOut.String(), runner.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	events := storetest.EventIDs(t, db)
	runner.kill()
	killed := time.Now()
	delete(alive, runner.cmd.Process.Pid)
	alive[retry.Process.Pid] = true // a command holds an account no live process holds
	var dead []string
	for a, pid := range holders {
		if pid == runner.cmd.Process.Pid {
			dead = append(dead, a)
		}
	}
	var took time.Duration
	for {
		now := leaseHolders(t, db)
		left := 0
		for _, a := range dead {
			if !alive[now[a]] {
				left++
			}
		}
		if left == 0 {
			took = time.Since(killed)
			break
		}
		if time.Since(killed) > 3*lease+time.Duration(total)*time.Millisecond {
			t.Fatalf("%d of the killed host's %d accounts not taken over %v after the kill (lease %v)", left, len(dead), time.Since(killed), lease)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took > 2*lease {
		t.Errorf("the killed host's %d accounts were taken over in %v, more than two lease periods (%v)", len(dead), took, lease)
	}
	select {
	case <-ended:
		if retryErr != nil {
			t.Fatalf("emitop retry: %v\n%s%s", retryErr, out.String(), errOut.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the retry did not end 2 min after the kill:\n%s%s\nsurvivor:\n%s", out.String(), errOut.String(), survivor.log.String())
	}
	var rep struct {
		Documents []struct {
			ID       string        `json:"id"`
			Outcome  model.Outcome `json:"outcome"`
			ByPolicy bool          `json:"by_policy"`
			Sent     bool          `json:"sent"`
		} `json:"documents"`
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil || !rep.OK {
		t.Fatalf("emitop retry: %v\n%s%s", err, out.String(), errOut.String())
	}
	sent := 0
	for _, d := range rep.Documents {
		if d.Sent {
			sent++
		}
		if d.Outcome != model.OutcomeAccepted && !(d.Outcome == model.OutcomeSkipped && d.ByPolicy) {
			t.Errorf("%s ended %s", d.ID, d.Outcome)
		}
	}
	if t.Failed() {
		t.Fatalf("emitop retry said:\n%s", out.String())
	}
	if sent < 2 {
		t.Fatalf("the retry resent %d documents: too few to kill its runner in the middle\n%s", sent, out.String())
	}
	duplicates, limited, requests := 0, 0, 0
	for _, p := range []string{"alegra", "sv-dte", "certifactu", "factus", "alforse"} {
		st := sb.Stats(p)
		duplicates, limited, requests = duplicates+st.DuplicateEmissions, limited+st.RateLimited, requests+st.Requests
	}
	for id, n := range sb.AccountStats(account).Attempts {
		if n > 1 {
			t.Errorf("%s emitted %d times", id, n)
		}
	}
	if duplicates != 0 || limited != 0 {
		t.Errorf("%d duplicate emissions, %d 429s", duplicates, limited)
	}
	after := storetest.EventIDs(t, db)
	for id := range events {
		if !after[id] {
			t.Errorf("event %d, committed before the kill, is gone", id)
		}
	}
	if err := survivor.stop(); err != nil {
		t.Errorf("the surviving host: %v\n%s", err, survivor.log.String())
	}
	t.Logf("%d accounts (lease %v, polled every %v); %d of them, the killed host's, taken over in %v; the retry resent %d documents and ended %v after the kill; %d requests served, %d duplicate emissions, %d 429s; %d events committed before the kill, all kept",
		total, lease, interval, len(dead), took.Round(time.Millisecond), sent, time.Since(killed).Round(time.Millisecond), requests, duplicates, limited, len(events))
}
