package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"emitop/model"
)

// holdLock has a second process's store on loc take the lock every writer needs and keep
// it until the returned function runs (or the test ends).
func holdLock(t *testing.T, e testEngine, loc string) (release func()) {
	t.Helper()
	other := openAt(t, loc)
	lock, err := other.write.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(e.lock); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			if err := lock.Rollback(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(release)
	return release
}

// waitFor polls cond until it holds; the deadline only keeps a broken store from hanging
// the run.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

func verifyEvent(i int, raw []byte) Op {
	return AddEvent(model.Event{At: t0.Add(time.Duration(i) * time.Second), Account: "sv-main", Provider: "sv-dte",
		DocID: "D" + strconv.Itoa(i), Status: model.StatusRejected, Kind: KindSeen, Raw: raw})
}

func countEvents(t *testing.T, s *Store) int {
	t.Helper()
	evs, err := s.Events(context.Background(), EventFilter{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestLockedDatabaseKeepsEveryWrite: another process holds the write lock for longer than
// the writer waits. Enqueue never waits (the poll path calls it), the writes wait in the
// backlog, WriteState says since when history is not saved, and once the lock is released
// every write commits, in batches.
func TestLockedDatabaseKeepsEveryWrite(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		s := openAt(t, loc)
		release := holdLock(t, e, loc)
		done, cancel := context.WithCancel(context.Background())
		cancel() // a caller with no time at all is never kept waiting
		const calls = 3 * MaxBatch
		for i := range calls {
			if err := s.Enqueue(done, verifyEvent(i, nil)); err != nil {
				t.Fatalf("Enqueue %d on a locked database: %v", i, err)
			}
		}
		waitFor(t, "WriteState reports the lock", func() bool { return s.WriteState().Err != nil })
		st := s.WriteState()
		if !strings.Contains(st.Err.Error(), "lock") || st.Since.IsZero() || !st.Resumed.IsZero() || st.Waiting != calls {
			t.Fatalf("while locked: %+v", st)
		}
		if err := s.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "writes waiting") {
			t.Fatalf("Flush while locked = %v, want the writes waiting", err)
		}
		release()
		waitFor(t, "the backlog commits", func() bool { return s.Flush(context.Background()) == nil })
		if n := countEvents(t, s); n != calls {
			t.Fatalf("%d events stored, %d enqueued", n, calls)
		}
		st = s.WriteState()
		if st.Err != nil || st.Waiting != 0 || st.Lost != 0 || !st.Resumed.After(st.Since) {
			t.Fatalf("after the lock: %+v", st)
		}
		if g := st.Gap(); g.Open() || g.Until != st.Resumed {
			t.Fatalf("gap after the lock: %+v", g)
		}
	})
}

// TestDiskFullKeepsEveryWrite: a full disk (here SQLite's page limit, the same
// SQLITE_FULL) stops history for as long as it lasts; nothing enqueued meanwhile is lost.
func TestDiskFullKeepsEveryWrite(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	enqueue(t, s, verifyEvent(0, nil))
	flush(t, s)
	if st := s.WriteState(); st.Err != nil || !st.Since.IsZero() {
		t.Fatalf("a healthy store reports %+v", st)
	}
	var pages int
	if err := s.write.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(ctx, "PRAGMA max_page_count = "+strconv.Itoa(pages)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, model.MaxRaw)
	for i := 1; i <= 8; i++ {
		enqueue(t, s, verifyEvent(i, big))
	}
	if err := s.Flush(ctx); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("Flush on a full disk = %v", err)
	}
	if st := s.WriteState(); st.Err == nil || !strings.Contains(st.Err.Error(), "full") || st.Waiting != 8 {
		t.Fatalf("WriteState while full: %+v", st)
	}
	if st := s.WriteState(); st.Err == nil {
		t.Fatal("WriteState forgot the error after one read")
	}
	if _, err := s.write.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	enqueue(t, s, verifyEvent(9, nil))
	flush(t, s)
	if st := s.WriteState(); st.Err != nil || st.Resumed.IsZero() {
		t.Fatalf("WriteState after a commit: %+v", st)
	}
	evs, err := s.Events(ctx, EventFilter{Account: "sv-main"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 10 || evs[len(evs)-1].DocID != "D0" || evs[0].DocID != "D9" {
		t.Fatalf("events after the full spell: %d, want all 10 in order", len(evs))
	}
}

// TestBacklogIsBounded: a database that refuses writes for long enough fills the backlog;
// what would pass its bound is refused at once and counted, never waited for.
func TestBacklogIsBounded(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		for _, tc := range []struct {
			name             string
			maxOps, maxBytes int
			raw              []byte
		}{
			{"by count", 10, MaxBacklogBytes, nil},
			{"by bytes", MaxBacklog, 10 * (opBase + 1000), make([]byte, 1000)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				loc := e.fresh(t)
				s := openAt(t, loc)
				s.w.maxOps, s.w.maxBytes = tc.maxOps, tc.maxBytes
				release := holdLock(t, e, loc)
				kept := 0
				for i := range 15 {
					err := s.Enqueue(context.Background(), verifyEvent(i, tc.raw))
					switch {
					case err == nil:
						kept++
					case !errors.Is(err, ErrBacklogFull):
						t.Fatalf("Enqueue %d: %v", i, err)
					}
				}
				if kept != 10 {
					t.Fatalf("%d of 15 kept, want 10", kept)
				}
				if st := s.WriteState(); st.Lost != 5 || st.Waiting != 10 {
					t.Fatalf("WriteState: %+v, want 5 lost and 10 waiting", st)
				}
				release()
				waitFor(t, "the backlog commits", func() bool { return s.Flush(context.Background()) == nil })
				if n := countEvents(t, s); n != 10 {
					t.Fatalf("%d events, want 10", n)
				}
			})
		}
	})
}

// TestCloseGivesUpOnALockedDatabase: a store closed while another process keeps the lock
// tries a few more times, then says how many writes it could not save.
func TestCloseGivesUpOnALockedDatabase(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		path := e.fresh(t)
		s := openAt(t, path)
		holdLock(t, e, path)
		for i := range 3 {
			enqueue(t, s, verifyEvent(i, nil))
		}
		if err := s.Close(); err == nil || !strings.Contains(err.Error(), "3 writes not saved") {
			t.Fatalf("Close on a locked database = %v", err)
		}
	})
}

// TestOpenReadOnly: the history commands read a database another process is writing, or
// one at an older schema, without a write lock and without migrating it; they refuse a
// database that is not an emitop history or is newer than this emitop.
func TestOpenReadOnly(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		ctx := context.Background()
		path := e.fresh(t)
		s := openAt(t, path)
		enqueue(t, s, verifyEvent(1, nil))
		flush(t, s)

		holdLock(t, e, path)
		r, err := OpenReadOnly(ctx, path)
		if err != nil {
			t.Fatalf("OpenReadOnly on a locked database: %v", err)
		}
		defer r.Close()
		if n := countEvents(t, r); n != 1 {
			t.Fatalf("read %d events, want 1", n)
		}
		if err := r.Enqueue(ctx, verifyEvent(2, nil)); !errors.Is(err, ErrReadOnly) {
			t.Fatalf("Enqueue on a read-only store: %v", err)
		}
		if _, err := r.AcquireLease(ctx, "a", "d", "h", time.Second); !errors.Is(err, ErrReadOnly) {
			t.Fatalf("AcquireLease on a read-only store: %v", err)
		}
		if _, err := r.Prune(ctx, t0, 0); !errors.Is(err, ErrReadOnly) {
			t.Fatalf("Prune on a read-only store: %v", err)
		}

		ms, err := migrations(s.eng)
		if err != nil {
			t.Fatal(err)
		}
		versions := func(db *sql.DB) int {
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM schema_version`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		older := e.fresh(t)
		o := openAt(t, older)
		if _, err := o.write.Exec(`DELETE FROM schema_version WHERE version = $1`, ms[len(ms)-1].version); err != nil {
			t.Fatal(err)
		}
		o.Close()
		ro, err := OpenReadOnly(ctx, older)
		if err != nil {
			t.Fatalf("OpenReadOnly on an older schema: %v", err)
		}
		if got := versions(ro.read); got != len(ms)-1 {
			t.Fatalf("schema_version has %d rows after a read-only open, want %d", got, len(ms)-1)
		}
		ro.Close()

		newer := e.fresh(t)
		n := openAt(t, newer)
		if _, err := n.write.Exec(`INSERT INTO schema_version (version, name, applied) VALUES (99, '099_future.sql', 0)`); err != nil {
			t.Fatal(err)
		}
		n.Close()
		stranger := e.fresh(t)
		if e.name == "sqlite" {
			os.MkdirAll(filepath.Dir(stranger), 0o700)
		}
		db, err := sql.Open(map[string]string{"sqlite": "sqlite", "postgres": "pgx"}[e.name], stranger)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE t (x integer)`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		cases := map[string]string{
			newer:    "schema version 99 is newer",
			stranger: "not an emitop history",
		}
		if e.name == "sqlite" {
			cases[filepath.Join(t.TempDir(), "none.db")] = "no such file"
			// An emitop history whose write-ahead log cannot be opened (another user's
			// -wal file, here a folder in its place) is one that cannot be read, not a
			// stranger.
			unread := e.fresh(t)
			u := openAt(t, unread)
			enqueue(t, u, verifyEvent(1, nil))
			flush(t, u)
			u.Close()
			if err := os.Mkdir(unread+"-wal", 0o700); err != nil {
				t.Fatal(err)
			}
			cases[unread] = "cannot read it: "
		}
		for loc, want := range cases {
			if _, err := OpenReadOnly(ctx, loc); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("OpenReadOnly(%s) = %v, want %q", loc, err, want)
			}
		}
	})
}
