package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"emitop/sandbox"
)

// TestNeverTwiceAfterCrashAndInterrupt reproduces the first attack of issue 12 with real
// processes. Run A's resend is in flight when A is killed (or interrupted); the provider
// has committed it, answers only after A's timeout, and its status says "rejected" for a
// while longer. Run B starts at once and is killed or interrupted while it waits (for A's
// lease, or for the deadline of A's emission); run C then runs to the end. The provider
// must receive the document's emission exactly once, and C must find it accepted and send
// nothing.
//
// The account's timeout (10 s) is longer than the lease TTL (5 s), so B and C get the lease
// while A's emission may still land; the status lag (8 s) is shorter than the timeout: the
// rule emitop keeps is that a read after the sender's timeout has passed tells how its
// emission ended, and a provider whose status lags longer than the configured timeout is
// outside it.
func TestNeverTwiceAfterCrashAndInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes per case and waits out a 10 s timeout")
	}
	bin := emitopBinary(t)
	const (
		timeout = 10 * time.Second
		answer  = 12 * time.Second
		lag     = 8 * time.Second
	)
	type attack struct {
		name    string
		a, b    syscall.Signal
		bAt     time.Duration // after B starts
		sb      *sandbox.Sandbox
		id      string
		args    []string
		err     error
		outC    []byte
		logs    string
		emitted int
	}
	var cases []*attack
	for _, a := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		for _, b := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
			// B is signalled while A's lease holds it off, and once it holds the lease
			// while A's emission may still land.
			for _, bAt := range []time.Duration{time.Second, 6 * time.Second} {
				sb, cfgPath, ids := retrySandbox(t, sandbox.Faults{Latency: 20 * time.Millisecond,
					TimeoutAfterCommit: 1, TimeoutDelay: answer, StatusLag: lag})
				sb.Fix("cf-madrid")
				setTimeout(t, cfgPath, timeout)
				cases = append(cases, &attack{name: fmt.Sprintf("A %v, B %v after %v", a, b, bAt), a: a, b: b, bAt: bAt,
					sb: sb, id: ids[0], args: []string{"retry", "--config", cfgPath, "--db", filepath.Join(t.TempDir(), "h.db"),
						"--account", "cf-madrid", "--doc", ids[0], "--yes", "-o", "json"}})
			}
		}
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() {
			runA, err := start(bin, c.args)
			if err != nil {
				c.err = err
				return
			}
			defer runA.stop()
			for c.sb.AccountStats("cf-madrid").Attempts[c.id] == 0 {
				if runA.exited() || time.Since(runA.started) > time.Minute {
					c.err = fmt.Errorf("run A never sent the document: %s", runA.stderr.String())
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			runA.Process.Signal(c.a)
			runB, err := start(bin, c.args)
			if err != nil {
				c.err = err
				return
			}
			defer runB.stop()
			time.Sleep(c.bAt)
			runB.Process.Signal(c.b)
			<-runB.done
			runC := exec.Command(bin, c.args...)
			var errC bytes.Buffer
			runC.Stderr = &errC
			c.outC, c.err = runC.Output()
			if c.err != nil {
				c.err = fmt.Errorf("%w: %s", c.err, errC.String())
			}
			<-runA.done
			c.emitted = c.sb.AccountStats("cf-madrid").Attempts[c.id]
			c.logs = "A: " + runA.stderr.String() + "\nB: " + runB.stderr.String()
		})
	}
	wg.Wait()
	for _, c := range cases {
		if c.err != nil {
			t.Errorf("%s: %v\n%s", c.name, c.err, c.outC)
			continue
		}
		if st := c.sb.AccountStats("cf-madrid"); c.emitted != 1 || st.DuplicateEmissions != 0 {
			t.Errorf("%s: the provider received %d emissions of the document (%d duplicates); run C said %s\n%s",
				c.name, c.emitted, st.DuplicateEmissions, c.outC, c.logs)
			continue
		}
		var rep reportOut
		if err := json.Unmarshal(c.outC, &rep); err != nil || len(rep.Documents) != 1 {
			t.Errorf("%s: run C: %v %s", c.name, err, c.outC)
			continue
		}
		// C finds it accepted: as it plans (skipped: nothing to resend) or as it reads.
		if d := rep.Documents[0]; d.Sent || !strings.Contains(d.Detail, "accepted") || !rep.OK {
			t.Errorf("%s: run C: %s", c.name, c.outC)
		}
	}
}

// setTimeout sets every account's timeout in the configuration file.
func setTimeout(t *testing.T, path string, d time.Duration) {
	t.Helper()
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	short := strings.ReplaceAll(string(cfg), `timeout = "30s"`, fmt.Sprintf("timeout = %q", d))
	if short == string(cfg) {
		t.Fatal("no timeout to change in the configuration")
	}
	if err := os.WriteFile(path, []byte(short), 0o600); err != nil {
		t.Fatal(err)
	}
}

// process is a started emitop with its stderr kept.
type process struct {
	*exec.Cmd
	started time.Time
	stderr  syncBuffer
	done    chan struct{}
}

func start(bin string, args []string) (*process, error) {
	p := &process{Cmd: exec.Command(bin, args...), started: time.Now(), done: make(chan struct{})}
	p.Stderr = &p.stderr
	if err := p.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.Cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop kills the process if it still runs, and waits for it.
func (p *process) stop() {
	p.Process.Kill()
	<-p.done
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
