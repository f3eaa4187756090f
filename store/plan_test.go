package store

import (
	"strings"
	"testing"
)

// TestQueriesUseIndexes guards the read paths against a full scan or a sort of a table that
// grows with history.
func TestQueriesUseIndexes(t *testing.T) {
	s := openTest(t)
	queries := map[string]string{
		"recent rejected": `SELECT ` + docColumns + ` FROM documents WHERE account = ? AND status IN (?) ORDER BY changed DESC, id DESC LIMIT ?`,
		"documents":       `SELECT ` + docColumns + ` FROM documents WHERE account = ? ORDER BY changed DESC, id DESC LIMIT ?`,
		"all documents":   `SELECT ` + docColumns + ` FROM documents ORDER BY changed DESC, id DESC LIMIT ?`,
		"document events": `SELECT id FROM events WHERE account = ? AND doc_id = ? ORDER BY at DESC, id DESC LIMIT ?`,
		"account events":  `SELECT id FROM events WHERE account = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?`,
		"all events":      `SELECT id FROM events ORDER BY at DESC, id DESC LIMIT ?`,
		"window series":   `SELECT lim FROM window_samples WHERE account = ? AND name = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?`,
		"requests":        `SELECT id FROM requests WHERE account = ? ORDER BY at DESC, id DESC LIMIT ?`,
		"actions":         `SELECT id FROM actions WHERE account = ? ORDER BY at DESC, id DESC LIMIT ?`,
		"prune":           `SELECT id FROM requests WHERE at < ? ORDER BY at LIMIT ?`,
		"open intents":    `SELECT id FROM intents WHERE settled IS NULL AND account = ? ORDER BY id`,
	}
	for name, q := range queries {
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = 1
		}
		rows, err := s.read.Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if strings.Contains(p, "TEMP B-TREE") || (strings.Contains(p, "SCAN ") && !strings.Contains(p, "USING")) {
			t.Errorf("%s: %s", name, p)
		}
	}
}
