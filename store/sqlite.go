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

// SQLite: one file on one host, in WAL mode. The writer's connection commits with
// synchronous=NORMAL (an application crash loses nothing committed; a power loss may roll
// back the last batches), the ledger's with synchronous=FULL.

// busyTimeout is how long a connection waits for another to release the write lock.
const busyTimeout = 5 * time.Second

// The writer's connection keeps a page cache of writerCache KiB (SQLite's default is 2 MiB):
// a batch touches pages all over the documents' and events' indexes, and with the default
// cache it spills dirty pages to the WAL mid-transaction and reads the same pages from the
// file again batch after batch. It checkpoints the WAL into the database file every
// writerCheckpoint pages (SQLite's default is 1000): a page the batches change over and
// over (an index's, the requests table's last leaf) is copied, and the file synced, once
// per checkpoint, so fewer checkpoints copy and sync less. Neither changes what a commit
// guarantees: a committed batch is in the WAL either way.
const (
	writerCache      = 64 << 10
	writerCheckpoint = 10000
)

// writerBusy is how long the writer's connection waits for another process's write lock
// before the batch counts as failed and waits its backoff; nothing is dropped meanwhile,
// so a short wait keeps the state the screens show current.
const writerBusy = time.Second

var sqliteEngine = &engine{
	migrations: "sqlite",
	versionTable: `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER PRIMARY KEY,
		name    TEXT    NOT NULL,
		applied INTEGER NOT NULL
	) STRICT`,
	clock:     `(CAST(unixepoch('subsec') * 1000 AS INTEGER) * 1000000)`,
	each:      `(SELECT value AS v FROM json_each(%s))`,
	transient: sqliteTransient,
}

// openSQLite opens the store in the file at path, creating its directory (0700) and
// file (0600) when missing.
func openSQLite(ctx context.Context, path string) (*Store, error) {
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

	s := &Store{eng: sqliteEngine, loc: Location{Name: path}, now: time.Now}
	if s.ledger, err = openSQLiteDB(path, "FULL", busyTimeout, "&_txlock=immediate", 1); err != nil {
		return nil, err
	}
	if s.write, err = openSQLiteDB(path, "NORMAL", writerBusy, "&_txlock=immediate"+
		"&_pragma=cache_size(-"+fmt.Sprint(writerCache)+")"+
		"&_pragma=wal_autocheckpoint("+fmt.Sprint(writerCheckpoint)+")", 1); err != nil {
		s.Close()
		return nil, err
	}
	if s.read, err = openSQLiteDB(path, "NORMAL", busyTimeout, "&_pragma=query_only(1)", readers); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return s, nil
}

// openSQLiteReadOnly opens the file at path read-only (mode=ro), migrating nothing.
func openSQLiteReadOnly(ctx context.Context, path string) (*Store, error) {
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
	if err := checkSchema(ctx, db, sqliteEngine); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return &Store{eng: sqliteEngine, loc: Location{Name: path}, read: db, now: time.Now}, nil
}

// openSQLiteDB opens one pool on path with every pragma in the DSN, so each connection
// the pool makes gets them, and pings it so a bad file fails here rather than on first use.
func openSQLiteDB(path, synchronous string, busy time.Duration, extra string, conns int) (*sql.DB, error) {
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

// sqliteTransient: the database busy or locked by another connection, a full disk, a
// file that cannot be written or read now, memory.
func sqliteTransient(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}
