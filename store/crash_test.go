package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"emitop/model"
)

// crashEnv names the store the crash child writes to; set only in the child.
const crashEnv = "EMITOP_STORE_CRASH_DB"

// crashBatch is how many events the child commits per Flush.
const crashBatch = 250

// TestCrashChild is the child of TestCrashKeepsCommittedEvents: it writes events until it is
// killed, printing "committed N" once events 0..N are committed.
func TestCrashChild(t *testing.T) {
	loc := os.Getenv(crashEnv)
	if loc == "" {
		t.Skip("runs only as the child of TestCrashKeepsCommittedEvents")
	}
	s, err := Open(context.Background(), loc)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	raw := []byte(strings.Repeat("<respuesta/>", 40))
	deadline := time.Now().Add(time.Minute) // never outlive a parent that failed to kill us
	for seq := 0; time.Now().Before(deadline); {
		for range crashBatch {
			if err := s.Enqueue(ctx, AddEvent(model.Event{Account: "crash", DocID: strconv.Itoa(seq),
				Status: model.StatusRejected, Kind: "status", Raw: raw, Problem: rejection("004", "dup")})); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			seq++
		}
		if err := s.Flush(ctx); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("committed", seq-1)
	}
	os.Exit(1)
}

// TestCrashKeepsCommittedEvents: a process killed (SIGKILL) while writing leaves every
// event it was told was committed, and a store that works.
func TestCrashKeepsCommittedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	forEngines(t, func(t *testing.T, e testEngine) {
		path := e.fresh(t)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		last := -1
		lines := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "committed "); ok {
				n, err := strconv.Atoi(rest)
				if err != nil {
					t.Fatalf("child said %q", line)
				}
				last = n
				lines++
				if lines == 20 { // mid-stream: the child is writing the next batch now
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
				}
			} else if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child was not killed: %v", err)
		}
		if last < 20*crashBatch-1 {
			t.Fatalf("child reported up to %d", last)
		}

		s := openAt(t, path)
		if e.name == "sqlite" {
			var check string
			if err := s.read.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
				t.Fatalf("integrity_check = %q, %v", check, err)
			}
		}
		var n, distinct int
		if err := s.read.QueryRow(`SELECT count(*), count(DISTINCT doc_id) FROM events
		WHERE account = 'crash' AND CAST(doc_id AS integer) <= $1`, last).Scan(&n, &distinct); err != nil {
			t.Fatal(err)
		}
		if n != last+1 || distinct != last+1 {
			t.Fatalf("%d events (%d distinct) up to %d, want every one of the %d reported committed", n, distinct, last, last+1)
		}
		// The store still works after recovery.
		enqueue(t, s, AddEvent(model.Event{Account: "crash", DocID: "after", Status: model.StatusPending, Kind: "verify"}))
		flush(t, s)
	})
}
