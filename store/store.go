// Package store keeps emitop's history and retry ledger in one SQLite file (modernc, pure
// Go): accounts, rate-limit window samples, documents and their events, the request log,
// operator actions, and the leases and intents the retry engine needs to never emit twice.
//
// Three connections share the file, all in WAL mode:
//   - the writer (one connection, synchronous=NORMAL) belongs to a goroutine that commits
//     queued ops in batches, so the poll path never waits for the disk; while the
//     database refuses writes (locked by another process, a full disk) the ops wait and
//     are retried in batches with backoff (see WriteState);
//   - the readers (a small pool, query_only) serve the UI and the poller;
//   - the ledger (one connection, synchronous=FULL) writes leases and intents
//     synchronously: an intent is on disk before the request it announces leaves; it
//     also applies migrations.
//
// OpenReadOnly opens the readers alone, read-only, for commands that only show history.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long a connection waits for another to release the write lock.
const busyTimeout = 5 * time.Second

// readers is the size of the reader pool.
const readers = 4

// ErrClosed is returned by Enqueue and Flush once Close has begun.
var ErrClosed = errors.New("store: closed")

// ErrNotFound is returned when a single row asked for does not exist.
var ErrNotFound = errors.New("store: not found")

// Store is emitop's history and ledger. Its methods are safe for concurrent use.
type Store struct {
	path   string
	write  *sql.DB // one connection, owned by the writer goroutine and Prune
	read   *sql.DB // query_only pool
	ledger *sql.DB // one connection, synchronous=FULL
	w      *writer
	now    func() time.Time // the clock leases and account rows use; tests replace it
}

// Open opens the store at path, creating its directory (0700) and file (0600) when missing,
// and applies any migration the file lacks. It refuses a file written by a newer emitop.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	// The path comes from configuration: make sure nothing in a DSN can run more than
	// the single PRAGMA each _pragma names.
	sqlite.StrictPragmas(true)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	f.Close()

	s := &Store{path: path, now: time.Now}
	if s.ledger, err = openDB(path, "FULL", busyTimeout, "&_txlock=immediate", 1); err != nil {
		return nil, err
	}
	if err := migrate(ctx, s.ledger); err != nil {
		s.ledger.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	if s.write, err = openDB(path, "NORMAL", writerBusy, "&_txlock=immediate", 1); err != nil {
		s.ledger.Close()
		return nil, err
	}
	if s.read, err = openDB(path, "NORMAL", busyTimeout, "&_pragma=query_only(1)", readers); err != nil {
		s.write.Close()
		s.ledger.Close()
		return nil, err
	}
	if s.w, err = startWriter(s.write, func() time.Time { return s.now() }); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenReadOnly opens an existing store for reading only, as the commands that only show
// history do: the file is opened read-only (so a read-only file, or one another process
// is writing, serves), nothing is created and no migration runs. It refuses a file that
// is not an emitop history or was written by a newer emitop. Every write returns
// ErrReadOnly.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	sqlite.StrictPragmas(true)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	dsn := "file:" + escapePath(path) + "?mode=ro" +
		"&_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
		"&_pragma=query_only(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(readers)
	db.SetMaxIdleConns(readers)
	ms, err := migrations()
	if err != nil {
		db.Close()
		return nil, err
	}
	applied, err := appliedVersions(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s is not an emitop history: %w", path, err)
	}
	if _, err := pending(applied, ms); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return &Store{path: path, read: db, now: time.Now}, nil
}

// openDB opens one pool on path with every pragma in the DSN, so each connection the pool
// makes gets them, and pings it so a bad file fails here rather than on first use.
func openDB(path, synchronous string, busy time.Duration, extra string, conns int) (*sql.DB, error) {
	dsn := "file:" + escapePath(path) +
		"?_pragma=busy_timeout(" + fmt.Sprint(busy.Milliseconds()) + ")" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(" + synchronous + ")" +
		"&_pragma=foreign_keys(1)" + extra
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	if err := ping(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// ping opens the pool's first connection. Two processes opening a new database at once
// race to switch it to WAL, and SQLite answers the loser SQLITE_BUSY at once, without
// waiting out busy_timeout: that connection is dropped, and another tried, for as long as
// busy_timeout would have waited.
func ping(db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := db.Ping()
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// escapePath makes a file path safe inside a "file:" URI: SQLite decodes %XX, and the
// driver splits the DSN at the first '?', so those characters and '#' are encoded.
func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// Path is the database file the store was opened on.
func (s *Store) Path() string { return s.path }

// Close flushes every queued op, stops the writer and closes the connections. It returns
// the write errors not yet reported by Flush, and any error closing the file.
func (s *Store) Close() error {
	var errs []error
	if s.w != nil {
		errs = append(errs, s.w.close())
	}
	for _, db := range []*sql.DB{s.read, s.ledger, s.write} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// nanos stores a time as Unix nanoseconds; the zero time is stored as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos reads what nanos stored.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
