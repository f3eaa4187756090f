package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"emitop/internal/pgtest"
	"emitop/model"
)

// TestPostgresRestartLosesNothing: the server restarts (an administrator's fast shutdown,
// then a start) while events keep coming. Enqueue never waits; WriteState says history
// stopped being saved, why, and when it was saved again; every event enqueued before,
// during and after the restart is stored exactly once; and the ledger and the readers
// connect again on their own.
func TestPostgresRestartLosesNothing(t *testing.T) {
	c := pgtest.New(t, false) // its own server: restarting the package's would disturb other tests
	loc := c.Schema(t)
	s := openAt(t, loc)
	ctx := context.Background()

	var mu sync.Mutex
	sent := 0
	send := func(n int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for range n {
			if err := s.Enqueue(ctx, verifyEvent(sent, nil)); err != nil {
				t.Errorf("Enqueue %d: %v", sent, err)
			}
			sent++
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // a poller's steady stream
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				send(5)
			}
		}
	})
	waitFor(t, "events committed before the restart", func() bool { return countEvents(t, s) > 100 })

	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "WriteState reports the server gone", func() bool { return s.WriteState().Err != nil })
	down := s.WriteState()
	if !postgresTransient(down.Err) || down.Since.IsZero() || !down.Resumed.IsZero() {
		t.Fatalf("while the server is down: %+v", down)
	}
	if _, err := s.Events(ctx, EventFilter{Limit: 1}); err == nil {
		t.Fatal("a read succeeded with the server down")
	}
	time.Sleep(300 * time.Millisecond) // events keep coming meanwhile
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "history saved again", func() bool { return s.WriteState().Err == nil })
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	waitFor(t, "the backlog commits", func() bool { return s.Flush(ctx) == nil })

	var n, distinct int
	if err := s.read.QueryRow(`SELECT count(*), count(DISTINCT doc_id) FROM events`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != sent || distinct != sent {
		t.Fatalf("%d events stored (%d distinct), %d enqueued", n, distinct, sent)
	}
	up := s.WriteState()
	if up.Err != nil || up.Waiting != 0 || up.Lost != 0 || !up.Resumed.After(up.Since) || up.Cause == nil {
		t.Fatalf("after the restart: %+v", up)
	}
	t.Logf("history not saved for %v: %v", up.Resumed.Sub(up.Since).Round(time.Millisecond), up.Cause)
	// The ledger's pool connects again too: a lease and an intent go through.
	if ok, err := s.AcquireLease(ctx, "sv-main", "D1", "after", time.Minute); err != nil || !ok {
		t.Fatalf("lease after the restart: %v, %v", ok, err)
	}
	if _, err := s.RecordIntent(ctx, Intent{Account: "sv-main", DocID: "D1", Holder: "after", Kind: "retry"}); err != nil {
		t.Fatalf("intent after the restart: %v", err)
	}
}

// TestPostgresTransient: which failures keep the writes for later (the server, the
// network or a lock is at fault) and which refuse them (the rows are).
func TestPostgresTransient(t *testing.T) {
	refused := func() error { // a real connection refused: nothing listens on the port
		db, err := sql.Open("pgx", "postgres://emitop@127.0.0.1:1/emitop?connect_timeout=2")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return db.Ping()
	}()
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"administrator shut the server down", &pgconn.PgError{Code: "57P01"}, true},
		{"the server is starting up", fmt.Errorf("begin: %w", &pgconn.PgError{Code: "57P03"}), true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"lock timeout", &pgconn.PgError{Code: "55P03"}, true},
		{"read-only during a failover", &pgconn.PgError{Code: "25006"}, true},
		{"connection cut mid-answer", fmt.Errorf("commit: %w", io.ErrUnexpectedEOF), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"invalid byte sequence", &pgconn.PgError{Code: "22021"}, false},
		{"raised by a trigger", &pgconn.PgError{Code: "P0001"}, false},
		{"undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"anything else", errors.New("bad"), false},
	}
	if refused == nil {
		t.Fatal("a server answered on port 1")
	}
	for _, c := range cases {
		if got := postgresTransient(c.err); got != c.want {
			t.Errorf("%s (%v): transient %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestPostgresNeverShowsThePassword: what names the store (the header, `emitop retry`,
// the log) and what its errors say never carry the URL's password.
func TestPostgresNeverShowsThePassword(t *testing.T) {
	const secret = "hunter2-s3cret"
	c := pgtest.Need(t)
	good := strings.Replace(c.Schema(t), "emitop@", "emitop:"+secret+"@", 1) // trust: any password serves
	s := openAt(t, good)
	loc := s.Location()
	if !loc.Shared || strings.Contains(loc.String(), secret) || !strings.HasPrefix(loc.String(), "PostgreSQL emitop@127.0.0.1:") ||
		!strings.HasSuffix(loc.Name, "/emitop") || s.Path() != "" {
		t.Fatalf("location %q (%+v)", loc, loc)
	}
	for _, bad := range []string{
		"postgres://emitop:" + secret + "@127.0.0.1:1/emitop?connect_timeout=2", // nothing listens
		"postgres://emitop:" + secret + "@127.0.0.1:99999/emitop",               // no such port
		"postgres://emitop:" + secret + "@127.0.0.1:5432/emitop?sslmode=bogus",  // a bad option
	} {
		_, err := Open(context.Background(), bad)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("Open: %v", err)
		}
	}
}

// TestPostgresConnectionSettings: each pool has the durability and waits its role needs,
// like SQLite's pragmas.
func TestPostgresConnectionSettings(t *testing.T) {
	s := engines[1].open(t)
	for _, c := range []struct {
		db      *sql.DB
		setting string
		want    string
	}{
		{s.read, "default_transaction_read_only", "on"},
		{s.ledger, "synchronous_commit", "on"},
		{s.write, "synchronous_commit", "on"},
		{s.write, "lock_timeout", "1s"}, // a lock another process keeps: retry with backoff
		{s.write, "application_name", "emitop"},
	} {
		var got string
		if err := c.db.QueryRow("SHOW " + c.setting).Scan(&got); err != nil || got != c.want {
			t.Errorf("%s = %q, %v; want %q", c.setting, got, err, c.want)
		}
	}
	if _, err := s.read.Exec(`INSERT INTO accounts (name, first_seen) VALUES ('x', 0)`); err == nil {
		t.Error("the readers wrote")
	}
}

// TestHostileTextIsStored: what PostgreSQL's text type cannot hold (a NUL byte, invalid
// UTF-8) in a provider's message reaches the history all the same, inside the problem's
// JSON; the raw response keeps its bytes; the report still reads it. A document id that
// PostgreSQL cannot hold is refused alone and said, its neighbours stored.
func TestHostileTextIsStored(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		ctx := context.Background()
		p := rejection("004", "Sello\x00 inválido \xff\u202e")
		raw := []byte("{\"m\":\"\x00\xff\"}")
		enqueue(t, s, UpsertDocument(model.Document{Account: "sv-main", ID: "DTE-1", Status: model.StatusRejected, Problem: p}, raw, t0))
		flush(t, s)
		d, err := s.Document(ctx, "sv-main", "DTE-1")
		if err != nil || d.Problem == nil || !strings.HasPrefix(d.Problem.Message, "Sello\x00 inv") {
			t.Fatalf("document: %+v, %v", d, err)
		}
		evs, err := s.Events(ctx, EventFilter{Account: "sv-main"})
		if err != nil || len(evs) != 1 || string(evs[0].Raw) != string(raw) {
			t.Fatalf("events: %+v, %v", evs, err)
		}
		if rej, err := s.Rejections(ctx, t0.Add(-time.Hour)); err != nil || len(rej) != 1 || rej[0].Class != model.ClassRejected {
			t.Fatalf("rejections: %+v, %v", rej, err)
		}

		enqueue(t, s, UpsertDocument(model.Document{Account: "sv-main", ID: "DTE-\x00", Status: model.StatusPending}, nil, t0),
			UpsertDocument(model.Document{Account: "sv-main", ID: "DTE-2", Status: model.StatusPending}, nil, t0))
		err = s.Flush(ctx)
		if e.name == "postgres" && (err == nil || !strings.Contains(err.Error(), "document sv-main/DTE-")) {
			t.Fatalf("Flush of an id PostgreSQL cannot hold: %v", err)
		}
		if e.name == "sqlite" && err != nil {
			t.Fatal(err)
		}
		if _, err := s.Document(ctx, "sv-main", "DTE-2"); err != nil {
			t.Fatalf("the neighbour of a refused document: %v", err)
		}
	})
}
