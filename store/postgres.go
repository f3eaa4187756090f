package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL: a server every process and host of a team may share. Every commit waits
// for the server's WAL flush (synchronous_commit=on), the writer's batches as the
// ledger's. A server that restarts or is out of reach is a spell of refused writes like a
// locked SQLite file: the ops wait in the backlog and each pool connects again on its own.

// connectTimeout bounds a connection attempt when the URL sets none: a server out of
// reach then costs a batch seconds, not the kernel's minutes.
const connectTimeout = 5 * time.Second

// ledgerConns is the size of the ledger's pool: retries of several accounts record their
// intents at once, which the server serializes per row rather than per database.
const ledgerConns = 4

var postgresEngine = &engine{
	remote:     true,
	migrations: "postgres",
	versionTable: `CREATE TABLE IF NOT EXISTS schema_version (
		version integer PRIMARY KEY,
		name    text    NOT NULL,
		applied bigint  NOT NULL
	)`,
	// The single-key advisory lock space; lockDocument uses the two-key one, which
	// never overlaps it.
	lockSchema:   `SELECT pg_advisory_xact_lock(hashtext('emitop schema ' || current_schema()))`,
	clock:        `((extract(epoch FROM now()) * 1000000000)::bigint)`,
	lockLease:    ` FOR UPDATE`,
	lockDocument: `SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))`,
	each:         `(SELECT json_array_elements_text(%s::json) AS v)`,
	skipLocked:   ` FOR UPDATE SKIP LOCKED`,
	transient:    postgresTransient,
}

// openPostgres opens the store on the PostgreSQL database url names. Its tables live in
// the first schema of the URL's search_path (public unless it says otherwise).
func openPostgres(ctx context.Context, url string, readOnly bool) (*Store, error) {
	cfg, err := pgx.ParseConfig(url) // its errors never repeat the password
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	s := &Store{eng: postgresEngine, now: time.Now, loc: Location{Shared: true,
		Name: cfg.User + "@" + cfg.Host + ":" + strconv.Itoa(int(cfg.Port)) + "/" + cfg.Database}}
	pool := func(conns int, params ...string) *sql.DB {
		c := cfg.Copy()
		c.RuntimeParams["application_name"] = "emitop"
		for i := 0; i+1 < len(params); i += 2 {
			c.RuntimeParams[params[i]] = params[i+1]
		}
		// A connection is pinged each time the pool hands it out: one the server ended
		// (a restart) is then replaced before a query fails on it.
		db := stdlib.OpenDB(*c, stdlib.OptionShouldPing(func(context.Context, stdlib.ShouldPingParams) bool { return true }))
		db.SetMaxOpenConns(conns)
		db.SetMaxIdleConns(conns)
		return db
	}
	s.read = pool(readers, "default_transaction_read_only", "on")
	if err := s.read.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %s: %w", s.loc, err)
	}
	if readOnly {
		if err := checkSchema(ctx, s.read, postgresEngine); err != nil {
			s.Close()
			return nil, fmt.Errorf("store: %s: %w", s.loc, err)
		}
		return s, nil
	}
	s.ledger = pool(ledgerConns, "synchronous_commit", "on")
	// Like SQLite's short busy timeout on the writer: a lock another process keeps
	// fails the batch soon, which then waits its backoff in the backlog.
	s.write = pool(1, "synchronous_commit", "on", "lock_timeout", strconv.Itoa(int(writerBusy.Milliseconds())))
	if err := s.start(ctx); err != nil {
		return nil, fmt.Errorf("store: %s: %w", s.loc, err)
	}
	return s, nil
}

// postgresTransient: no connection (refused, reset, timed out, closed by a restart), the
// server shutting down or starting up (class 57), out of disk, memory or connections
// (53), a system or I/O error (58), a deadlock or serialization failure (40), a lock
// another process keeps (55P03), a server that is read-only for now (25006, a standby
// during a failover).
func postgresTransient(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true // even a refused password: the rows are not at fault, keep them
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:min(2, len(pe.Code))] {
		case "08", "40", "53", "57", "58":
			return true
		}
		return pe.Code == "55P03" || pe.Code == "55006" || pe.Code == "25006"
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}
