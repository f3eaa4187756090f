// Package storetest reads a store's tables directly, for the tests that check what a
// process left in them after it was killed or its database restarted.
package storetest

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// EventIDs is the ids of the events the store holds: taken before a kill or a restart
// and after it, every id of the first must be in the second.
func EventIDs(t testing.TB, db *sql.DB) map[int64]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT id FROM events`)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
