package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var embeddedMigrations embed.FS

// migrationFiles holds migrations/<engine>/NNN_name.sql; tests replace it. The two
// engines' numbers run in parallel: step NNN of one is step NNN of the other, so a
// database of either engine at version NNN has the same tables.
var migrationFiles fs.FS = embeddedMigrations

// migration is one numbered schema step, applied in one transaction.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations reads an engine's embedded NNN_name.sql files, in the order of their
// numbers, and checks that no number is used twice. Numbers may skip: they are handed out
// to work that lands in any order, and each step stands on its own (see step).
func migrations(eng *engine) ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/"+eng.migrations+"/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names { // fs.Glob returns names sorted
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 3 || v < 1 {
			return nil, fmt.Errorf("migration %s: want a name starting NNN_ (001, 002, ...)", base)
		}
		if len(out) > 0 && out[len(out)-1].version == v {
			return nil, fmt.Errorf("migration %s: number %03d used twice", base, v)
		}
		b, err := fs.ReadFile(migrationFiles, name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	return out, nil
}

// migrate applies the migrations db lacks, one transaction each, lowest number first. Each
// transaction reads the versions applied under the write lock, so two processes opening a
// new file at once apply each step exactly once. A file already up to date is only read:
// opening it takes no write lock, so another process writing does not hold the opening up.
func migrate(ctx context.Context, db *sql.DB, eng *engine) error {
	ms, err := migrations(eng)
	if err != nil {
		return err
	}
	if applied, err := appliedVersions(ctx, db); err == nil {
		next, err := pending(applied, ms)
		if err != nil || next == nil {
			return err
		}
	}
	for {
		done, err := step(ctx, db, eng, ms)
		if err != nil || done {
			return err
		}
	}
}

// step applies the lowest-numbered migration db lacks; done reports there was none. A
// database holding a version this emitop does not know was written by a newer one.
func step(ctx context.Context, db *sql.DB, eng *engine, ms []migration) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil) // SQLite: BEGIN IMMEDIATE, the DSN sets _txlock
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{eng.lockSchema, eng.versionTable} {
		if q == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return false, fmt.Errorf("migrate: %w", err)
		}
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	next, err := pending(applied, ms)
	if err != nil {
		return false, err
	}
	if next == nil {
		return true, tx.Commit()
	}
	m := *next
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied) VALUES ($1, $2, $3)`,
		m.version, m.name, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.name, err)
	}
	return false, nil
}

// checkSchema makes sure db holds an emitop history this emitop can read: the commands
// that open it read-only migrate nothing, and accept an older schema.
func checkSchema(ctx context.Context, db *sql.DB, eng *engine) error {
	ms, err := migrations(eng)
	if err != nil {
		return err
	}
	applied, err := appliedVersions(ctx, db)
	switch {
	case err != nil && eng.transient(err):
		// The file could not be read (its -wal or -shm another user's, locked, out of
		// reach): that says nothing of what it holds.
		return fmt.Errorf("cannot read it: %w", err)
	case err != nil:
		return fmt.Errorf("not an emitop history: %w", err)
	}
	_, err = pending(applied, ms)
	return err
}

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// appliedVersions is the set of migrations a database holds; an error when it has no
// schema_version table (a new file, or not an emitop history).
func appliedVersions(ctx context.Context, q querier) (map[int]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_version`)
	if err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema version: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	return applied, nil
}

// pending is the lowest-numbered of ms a database holding applied lacks, nil when none; an
// error when it holds a version this emitop does not know: a newer emitop wrote it.
func pending(applied map[int]bool, ms []migration) (*migration, error) {
	known := map[int]bool{}
	var next *migration
	for i := range ms {
		known[ms[i].version] = true
		if next == nil && !applied[ms[i].version] {
			next = &ms[i]
		}
	}
	for v := range applied {
		if !known[v] {
			return nil, fmt.Errorf("database schema version %d is newer than this emitop knows (%d): use a newer emitop or another database", v, ms[len(ms)-1].version)
		}
	}
	return next, nil
}
