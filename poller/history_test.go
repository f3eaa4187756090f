package poller

import (
	"context"
	"database/sql"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/internal/pgtest"
	"emitop/model"
	"emitop/sandbox"
	"emitop/store"
)

// lockDatabase takes the database's write lock as another process would, and holds it
// until the returned function runs (or the test ends).
func lockDatabase(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)") // the writer may be committing
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// historyLog collects what OnHistory is told.
type historyLog struct {
	mu   sync.Mutex
	told []string
}

func (l *historyLog) add(g model.HistoryGap, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if g.Until.IsZero() {
		l.told = append(l.told, "stopped: "+reason)
	} else {
		l.told = append(l.told, "resumed")
	}
}

func (l *historyLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.told...)
}

// outage is a spell during which the store refuses writes, as a test brings it on: why
// matches the reason the snapshots must give.
type outage struct {
	name string
	open func(t *testing.T) (st *store.Store, begin, end func())
	why  *regexp.Regexp
}

var outages = []outage{
	{
		name: "SQLite locked by another process",
		open: func(t *testing.T) (*store.Store, func(), func()) {
			st := openStore(t)
			var release func()
			return st, func() { release = lockDatabase(t, st.Path()) }, func() { release() }
		},
		why: regexp.MustCompile(`locked`),
	},
	{
		name: "PostgreSQL restarting",
		open: func(t *testing.T) (*store.Store, func(), func()) {
			c := pgtest.New(t, false)
			st, err := store.Open(context.Background(), c.Schema(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			do := func(step func() error) func() {
				return func() {
					if err := step(); err != nil {
						t.Fatal(err)
					}
				}
			}
			return st, do(c.StopServer), do(c.StartServer)
		},
		// The administrator's shutdown ended the session, a new connection met the server
		// shutting down (told so, or reset), or the server is not back yet.
		why: regexp.MustCompile(`SQLSTATE 57P0[13]|connection reset by peer|connection refused`),
	},
}

// TestPollingGoesOnWhileTheStoreRefusesWrites: another process holds the database's write
// lock, or the database server restarts. The poll loop keeps polling and publishing (it
// never waits for the writer), the snapshots and OnHistory say that history is not saved
// and then that it is again, the store connects again on its own, and the requests made
// meanwhile reach the request log once the outage is over: nothing is lost.
func TestPollingGoesOnWhileTheStoreRefusesWrites(t *testing.T) {
	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			_, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true})
			st, begin, end := o.open(t)
			var told historyLog
			p, err := New(accounts[:1], st, Options{Version: "test", Backoff: quick, OnHistory: told.add})
			if err != nil {
				t.Fatal(err)
			}
			p.accounts[0].cfg.PollInterval = 50 * time.Millisecond
			snaps, unsubscribe := p.Hub().Subscribe()
			defer unsubscribe()
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() { ran <- p.Run(ctx) }()
			defer func() {
				cancel()
				<-ran
			}()
			next := func(what string, ok func(model.Snapshot) bool) model.Snapshot {
				t.Helper()
				timeout := time.After(time.Minute) // only keeps a broken poller from hanging the run
				for {
					select {
					case s := <-snaps:
						if ok(s) {
							return s
						}
					case <-timeout:
						t.Fatalf("no snapshot where %s", what)
					}
				}
			}
			first := next("a first poll", func(s model.Snapshot) bool { return !s.Accounts[0].LastPoll.IsZero() })
			documents := len(first.Accounts[0].Documents)

			begin()
			locked := next("history is not saved", func(s model.Snapshot) bool { return s.HistoryGap.Open() })
			if !o.why.MatchString(locked.History) {
				t.Fatalf("History while the store refuses writes: %q", locked.History)
			}
			polls := 0
			last := locked.Accounts[0].LastPoll
			next("five more polls meanwhile", func(s model.Snapshot) bool {
				if s.Accounts[0].LastPoll.After(last) {
					last = s.Accounts[0].LastPoll
					polls++
				}
				return polls >= 5
			})
			end()
			resumed := next("history is saved again", func(s model.Snapshot) bool {
				return s.History == "" && !s.HistoryGap.Until.IsZero()
			})
			if !resumed.HistoryGap.Until.After(resumed.HistoryGap.Since) || resumed.HistoryGap.Lost != 0 {
				t.Fatalf("gap after the outage: %+v", resumed.HistoryGap)
			}
			if got := told.list(); len(got) != 2 || !strings.HasPrefix(got[0], "stopped: ") || !o.why.MatchString(got[0]) || got[1] != "resumed" {
				t.Fatalf("OnHistory was told %q", got)
			}
			if err := st.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			reqs, err := st.Requests(context.Background(), store.RequestFilter{Since: locked.HistoryGap.Since, Limit: 100000})
			if err != nil {
				t.Fatal(err)
			}
			during := 0
			for _, r := range reqs {
				if r.At.Before(resumed.HistoryGap.Until) {
					during++
				}
			}
			if during < 5 {
				t.Fatalf("%d requests logged while the store refused writes, want one per poll at least", during)
			}
			stored, err := st.Documents(context.Background(), store.DocFilter{Account: accounts[0].Name, Limit: 100000})
			if err != nil || len(stored) < documents {
				t.Fatalf("%d documents stored after the outage, the first poll saw %d (%v)", len(stored), documents, err)
			}
		})
	}
}
