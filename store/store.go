// Package store keeps emitop's history and retry ledger: accounts, rate-limit window
// samples, documents and their events, the request log, operator actions, the on-call
// records, and the leases and intents the retry engine needs to never emit twice.
//
// It runs on one of two engines, named by where the store lives (see Open):
//   - SQLite, a local file (modernc, pure Go): the embedded default for one host;
//   - PostgreSQL (pgx), a server a team shares: every process and host on one database
//     shares its leases and ledger.
//
// One code path serves both, in standard SQL whose placeholders ($1, $2, …) both engines
// read; what differs (connecting, the schema, the database's clock, which errors mean
// "not now") is each engine's own (sqlite.go, postgres.go, migrations/<engine>/).
//
// Three connection pools share the database:
//   - the writer (one connection) belongs to a goroutine that commits queued ops in
//     batches, so the poll path never waits for the database; while it refuses writes
//     (locked by another process, a full disk, a PostgreSQL server restarting or gone)
//     the ops wait and are retried in batches with backoff (see WriteState);
//   - the readers (a small pool, read-only) serve the UI and the poller;
//   - the ledger writes leases and intents synchronously and durably (SQLite
//     synchronous=FULL; PostgreSQL commits once its WAL is flushed): an intent is stored
//     before the request it announces leaves; it also applies migrations.
//
// OpenReadOnly opens the readers alone, read-only, for commands that only show history.
package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// readers is the size of the reader pool.
const readers = 4

// ErrClosed is returned by Enqueue and Flush once Close has begun.
var ErrClosed = errors.New("store: closed")

// ErrNotFound is returned when a single row asked for does not exist.
var ErrNotFound = errors.New("store: not found")

// Store is emitop's history and ledger, on either engine. Its methods are safe for
// concurrent use.
type Store struct {
	eng    *engine
	loc    Location
	write  *sql.DB // one connection, owned by the writer goroutine and Prune
	read   *sql.DB // read-only pool
	ledger *sql.DB // durable, synchronous writes; migrations
	w      *writer
	now    func() time.Time // the clock account rows and default times use; tests replace it
	stmts  stmtCache        // the read pool's prepared statements (SQLite)
}

// Location says where a store keeps its data, in words safe to show: a PostgreSQL
// store's Name never carries its password.
type Location struct {
	Shared bool   // a PostgreSQL server other processes and hosts may share; false for a local file
	Name   string // the file's path, or user@host:port/database
}

// String names the store as the header and `emitop retry` say it.
func (l Location) String() string {
	if l.Shared {
		return "PostgreSQL " + l.Name
	}
	return "local file " + l.Name
}

// IsURL reports whether loc names a PostgreSQL server (postgres:// or postgresql://)
// rather than a SQLite file.
func IsURL(loc string) bool {
	return strings.HasPrefix(loc, "postgres://") || strings.HasPrefix(loc, "postgresql://")
}

// Open opens the store at loc, a PostgreSQL URL (postgres://user@host/db) or a SQLite
// file's path, and applies any migration it lacks. It refuses a database written by a
// newer emitop. A SQLite file and its directory are created (0600, 0700) when missing; a
// PostgreSQL database must exist (its tables are created in the URL's search_path).
func Open(ctx context.Context, loc string) (*Store, error) {
	if IsURL(loc) {
		return openPostgres(ctx, loc, false)
	}
	return openSQLite(ctx, loc)
}

// OpenReadOnly opens an existing store for reading only, as the commands that only show
// history do: nothing is created, no migration runs and no write lock is taken, so a
// read-only file, or a database another process is writing, serves. It refuses a database
// that is not an emitop history or was written by a newer emitop. Every write returns
// ErrReadOnly.
func OpenReadOnly(ctx context.Context, loc string) (*Store, error) {
	if IsURL(loc) {
		return openPostgres(ctx, loc, true)
	}
	return openSQLiteReadOnly(ctx, loc)
}

// start migrates the ledger's database, then starts the writer: what a writable store of
// either engine does once its pools are open. On error it closes them.
func (s *Store) start(ctx context.Context) error {
	if err := migrate(ctx, s.ledger, s.eng); err != nil {
		s.Close()
		return err
	}
	w, err := startWriter(s.write, s.eng, func() time.Time { return s.now() })
	if err != nil {
		s.Close()
		return err
	}
	s.w = w
	return nil
}

// Location is where the store keeps its data.
func (s *Store) Location() Location { return s.loc }

// Path is the SQLite file the store was opened on; "" on PostgreSQL.
func (s *Store) Path() string {
	if s.loc.Shared {
		return ""
	}
	return s.loc.Name
}

// Close flushes every queued op, stops the writer and closes the connections. It returns
// the write errors not yet reported by Flush, and any error closing the database.
func (s *Store) Close() error {
	var errs []error
	// The ledger closes first: once the writer takes no more ops, no ledger write may land
	// either. A job runner whose retry met the closing writer would otherwise mark its job
	// failed on the still open ledger while the backlog drained, instead of leaving it to
	// the account's next holder (TestLedgerClosesBeforeTheWriter).
	if s.ledger != nil {
		errs = append(errs, s.ledger.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.close())
	}
	s.stmts.mu.Lock()
	for _, st := range s.stmts.m {
		errs = append(errs, st.Close())
	}
	s.stmts.m = nil
	s.stmts.mu.Unlock()
	for _, db := range []*sql.DB{s.read, s.write} {
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
