package main

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"emitop/model"
	"emitop/store"
)

// TestHistoryOpensReadOnly: `emitop history` reads a database another process holds the
// write lock of, and one at an older schema without migrating it.
func TestHistoryOpensReadOnly(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "emitop.db")
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Enqueue(ctx, store.AddEvent(model.Event{Account: "sv-main", DocID: "DTE-1",
		Status: model.StatusRejected, Kind: "seen", At: time.Now()})); err != nil {
		t.Fatal(err)
	}
	if err := closeStore(st); err != nil {
		t.Fatal(err)
	}
	conn, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var top, rows int
	if err := conn.QueryRow(`SELECT max(version), count(*) FROM schema_version`).Scan(&top, &rows); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(`DELETE FROM schema_version WHERE version = ?`, top); err != nil {
		t.Fatal(err)
	}
	lock, err := conn.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("history", "--db", db)
	if code != 0 || !strings.Contains(out, "DTE-1") {
		t.Fatalf("history on a locked database: exit %d\n%s%s", code, out, errs)
	}
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	var after int
	if err := conn.QueryRow(`SELECT count(*) FROM schema_version`).Scan(&after); err != nil || after != rows-1 {
		t.Fatalf("history migrated the database: %d schema rows, want %d (%v)", after, rows-1, err)
	}
}

// TestHistoryLogged: the log says when history stops being saved, why and since when, and
// when it is saved again, after how long and with what lost.
func TestHistoryLogged(t *testing.T) {
	since := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	logf := historyLogged(slog.New(slog.NewTextHandler(&buf, nil)))
	logf(model.HistoryGap{Since: since, Waiting: 40}, "store: begin: database is locked")
	logf(model.HistoryGap{Since: since, Until: since.Add(4 * time.Minute), Lost: 3}, "")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := [][]string{
		{"level=ERROR", `msg="history not saved"`, "since=2026-03-14T12:00:00Z", `err="store: begin: database is locked"`, "waiting=40"},
		{"level=WARN", `msg="history saved again"`, "since=2026-03-14T12:00:00Z", "gap=4m0s", "lost=3"},
	}
	if len(lines) != len(want) {
		t.Fatalf("log:\n%s", buf.String())
	}
	for i, parts := range want {
		for _, p := range parts {
			if !strings.Contains(lines[i], p) {
				t.Errorf("line %d %q lacks %q", i, lines[i], p)
			}
		}
	}
}
