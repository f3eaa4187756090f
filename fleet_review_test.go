package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"emitop/internal/pgtest"
	"emitop/sandbox"
)

// arrivals counts the requests that reach the sandbox through one front, with when.
type arrivals struct {
	mu   sync.Mutex
	seen []time.Time
}

func (a *arrivals) since(t time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, at := range a.seen {
		if !at.Before(t) {
			n++
		}
	}
	return n
}

// front serves the sandbox on an address of its own, counting what arrives there: the
// process configured with it is the only one whose requests it sees.
func front(t *testing.T, sb *sandbox.Sandbox) (string, *arrivals) {
	t.Helper()
	a := &arrivals{}
	h := sb.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, time.Now())
		a.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, a
}

// TestFleetPausedProcessPollsNothingItLost is a host that stops for a while and comes
// back: a VM paused, a process stopped with SIGSTOP or a debugger. While it is stopped
// its registration runs out and the other process takes its accounts; when it runs
// again, the timers of its poll loops have long fired, and it must not poll an account
// it lost before it learns that it lost it: that spends the other process's budget.
func TestFleetPausedProcessPollsNothingItLost(t *testing.T) {
	const lease = 1500 * time.Millisecond
	url := pgtest.Need(t).Schema(t)
	sb := startSandbox(t, sandbox.Options{Scenario: "calm", Seed: 5, NoFaults: true, Accounts: 2})
	hostA, hostB := t.TempDir(), t.TempDir()
	fleetConfig(t, sb, "300ms", "2s", fmt.Sprintf("url = %q", url), lease, hostA, hostB)
	// Host A reaches the sandbox through a front of its own: what arrives there is A's.
	base, seen := front(t, sb)
	cfgA := filepath.Join(hostA, "config.toml")
	raw, err := os.ReadFile(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	sbBase := sb.ConfigTOML()[strings.Index(sb.ConfigTOML(), "http://"):]
	sbBase = sbBase[:len("http://")+strings.IndexAny(sbBase[len("http://"):], "/\"")]
	if err := os.WriteFile(cfgA, []byte(strings.ReplaceAll(string(raw), sbBase, base)), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := startFleetProc(t, "host A", hostA, "poll", "--config", "config.toml")
	b := startFleetProc(t, "host B", hostB, "poll", "--config", "config.toml")
	pidA, pidB := a.cmd.Process.Pid, b.cmd.Process.Pid
	total := len(sb.Accounts())
	count := func(pid int) int {
		n := 0
		for _, p := range leaseHolders(t, db) {
			if p == pid {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for count(pidA) == 0 || count(pidA)+count(pidB) != total {
		if time.Now().After(deadline) {
			t.Fatalf("the accounts did not spread over the two hosts: %v", leaseHolders(t, db))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(lease) // A polls its accounts for a while
	if seen.since(time.Time{}) == 0 {
		t.Fatal("host A's requests do not go through its front")
	}
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			a.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	deadline = time.Now().Add(4 * lease)
	for count(pidB) != total {
		if time.Now().After(deadline) {
			t.Fatalf("host B did not take the stopped host's accounts within 4 leases: %v", leaseHolders(t, db))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(lease) // A's poll loops are long due when it runs again
	resumed := time.Now()
	a.cmd.Process.Signal(syscall.SIGCONT)
	stopped = false
	// A holds nothing until it joined again and B gave it its share back: every request
	// that reaches the sandbox from A before then spends B's budget.
	var illegal int
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		n := seen.since(resumed)
		if count(pidA) > 0 {
			break
		}
		illegal = n
	}
	if illegal != 0 {
		t.Errorf("host A sent %d requests after it ran again while host B held every account", illegal)
	}
}

// TestRetryNamesTheLiveHolder: `emitop retry` of an account another process polls says
// which one: the process holding its lease now, not the last one that wrote its state.
// Host A polls an account, stops (SIGTERM) and host B takes it; B polls it when A's
// schedule says (the poll interval is long), so the account's shared state still names A
// when the operator runs the retry.
func TestRetryNamesTheLiveHolder(t *testing.T) {
	const lease = 1500 * time.Millisecond
	sb := startSandbox(t, sandbox.Options{Scenario: "calm", Seed: 5, NoFaults: true, Accounts: 1})
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "emitop.db")
	hostA, hostB, asker := t.TempDir(), t.TempDir(), t.TempDir()
	fleetConfig(t, sb, "30s", "2s", fmt.Sprintf("path = %q", dbPath), lease, hostA, hostB, asker)
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := startFleetProc(t, "host A", hostA, "poll", "--config", "config.toml")
	b := startFleetProc(t, "host B", hostB, "poll", "--config", "config.toml")
	pidA, pidB := a.cmd.Process.Pid, b.cmd.Process.Pid
	total := len(sb.Accounts())
	var account string
	deadline := time.Now().Add(20 * time.Second)
	for account == "" {
		held := map[int]int{}
		h := leaseHolders(t, db)
		for acc, pid := range h {
			held[pid]++
			if pid == pidA {
				account = acc
			}
		}
		if held[pidA] == 0 || held[pidA]+held[pidB] != total {
			account = ""
		}
		if time.Now().After(deadline) {
			t.Fatalf("the accounts did not spread over the two hosts: %v", h)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var writer string
	deadline = time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(writer, fmt.Sprintf("/%d", pidA)) {
		if time.Now().After(deadline) {
			t.Fatalf("host A did not share %s's state: written by %q", account, writer)
		}
		time.Sleep(50 * time.Millisecond)
		db.QueryRow(`SELECT host FROM account_states WHERE account = $1`, account).Scan(&writer)
	}
	if err := a.stop(); err != nil {
		t.Fatalf("host A: %v", err)
	}
	deadline = time.Now().Add(4 * lease)
	for leaseHolders(t, db)[account] != pidB {
		if time.Now().After(deadline) {
			t.Fatalf("host B did not take %s", account)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd := exec.Command(emitopBinary(t), "retry", "--config", "config.toml", "--account", account, "--all-rejected", "--dry-run")
	cmd.Dir = asker
	raw, err := cmd.CombinedOutput()
	out := string(raw)
	if err != nil {
		t.Fatalf("retry --dry-run: %v\n%s", err, out)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s is polled by the emitop at %s/%d:", account, host, pidB)
	if !strings.Contains(out, want) {
		t.Fatalf("retry says of who polls %s:\n%s\nwant %q", account, out, want)
	}
}

// TestPollOnceBesideALonePoller: a monitor runs `emitop poll --once` on the host where
// `emitop poll` already polls every account, alone in its fleet (so it shared nothing
// yet). The accounts are the poller's: --once reports them as it last polled them, with
// their documents, never as blank accounts it made up (every window full, no document).
func TestPollOnceBesideALonePoller(t *testing.T) {
	const lease = 1500 * time.Millisecond
	sb := startSandbox(t, sandbox.Options{Scenario: "calm", Seed: 5, NoFaults: true})
	dir, monitor := t.TempDir(), t.TempDir()
	dbPath := filepath.Join(dir, "emitop.db")
	fleetConfig(t, sb, "500ms", "2s", fmt.Sprintf("path = %q", dbPath), lease, dir, monitor)
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	poller := startFleetProc(t, "poller", dir, "poll", "--config", "config.toml")
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := 0
		for _, pid := range leaseHolders(t, db) {
			if pid == poller.cmd.Process.Pid {
				n++
			}
		}
		if n == len(sb.Accounts()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the poller did not take every account: %v", leaseHolders(t, db))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // every account polled, its rejected documents known
	cmd := exec.Command(emitopBinary(t), "poll", "--once", "-o", "json", "--config", "config.toml")
	cmd.Dir = monitor
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("poll --once: %v\n%s%s", err, out, stderr.String())
	}
	var got struct {
		Accounts []struct {
			Name      string         `json:"name"`
			Documents map[string]int `json:"documents"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got.Accounts) != len(sb.Accounts()) {
		t.Fatalf("%d accounts reported, %d configured", len(got.Accounts), len(sb.Accounts()))
	}
	for _, a := range got.Accounts {
		if a.Documents["rejected"] == 0 {
			t.Errorf("%s: reported with no rejected document: %v", a.Name, a.Documents)
		}
	}
	cmd = exec.Command(emitopBinary(t), "poll", "--once", "--config", "config.toml")
	cmd.Dir = monitor
	if out, err = cmd.Output(); err != nil {
		t.Fatalf("poll --once: %v\n%s", err, out)
	}
	host, _ := os.Hostname()
	if by := fmt.Sprintf("ago by %s/%d\n", host, poller.cmd.Process.Pid); strings.Count(string(out), by) != len(sb.Accounts()) {
		t.Errorf("poll --once does not say, of each account, which process polled it (%q):\n%s", by, out)
	}
}
