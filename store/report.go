package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"emitop/model"
)

// The reads behind the shift report (`emitop report`): what happened since a time, from
// the history alone.

// WindowRun is a span during which a rate-limit window had nothing left, as sampled.
type WindowRun struct {
	Account string
	Window  string
	From    time.Time // the first sample that found it spent
	Until   time.Time // the first sample that found room again; zero while it is still spent
}

// WindowRuns lists the spans since since during which a window had nothing left, by
// account, window and time. A run under way at since starts at its first sample after it.
func (s *Store) WindowRuns(ctx context.Context, since time.Time) ([]WindowRun, error) {
	// Only the samples where a window's state changes are read: the first sample, and
	// each one whose spent-or-not differs from the sample before it.
	rows, err := s.read.QueryContext(ctx, `SELECT account, name, at, remaining = 0 FROM (
		SELECT account, name, at, remaining,
			lag(remaining) OVER (PARTITION BY account, name ORDER BY at, id) AS prev
		FROM window_samples WHERE at >= $1) AS samples
		WHERE prev IS NULL AND remaining = 0 OR prev IS NOT NULL AND (remaining = 0) <> (prev = 0)
		ORDER BY account, name, at`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("store: window runs: %w", err)
	}
	defer rows.Close()
	var out []WindowRun
	for rows.Next() {
		var account, window string
		var at int64
		var spent bool
		if err := rows.Scan(&account, &window, &at, &spent); err != nil {
			return nil, fmt.Errorf("store: window runs: %w", err)
		}
		n := len(out)
		switch {
		case spent:
			out = append(out, WindowRun{Account: account, Window: window, From: fromNanos(at)})
		case n > 0 && out[n-1].Account == account && out[n-1].Window == window && out[n-1].Until.IsZero():
			out[n-1].Until = fromNanos(at)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: window runs: %w", err)
	}
	return out, nil
}

// RejectionCount is how many documents of an account were rejected with one class and
// verdict.
type RejectionCount struct {
	Account   string
	Class     model.Class
	Verdict   model.Verdict
	Documents int
}

// Rejections counts the documents that had a rejected event since since, each once, by
// the class and verdict of its latest rejection; by account, then most documents first.
// The problems are decoded here rather than by the database: provider text the JSON
// carries (a \u0000) is more than PostgreSQL's JSON functions accept.
func (s *Store) Rejections(ctx context.Context, since time.Time) ([]RejectionCount, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT account, problem FROM (
		SELECT account, problem, row_number() OVER (PARTITION BY account, doc_id ORDER BY at DESC, id DESC) AS n
		FROM events WHERE at >= $1 AND status = $2) AS latest
		WHERE n = 1`, nanos(since), string(model.StatusRejected))
	if err != nil {
		return nil, fmt.Errorf("store: rejections: %w", err)
	}
	defer rows.Close()
	counts := map[RejectionCount]int{}
	for rows.Next() {
		var account string
		var problem sql.NullString
		if err := rows.Scan(&account, &problem); err != nil {
			return nil, fmt.Errorf("store: rejections: %w", err)
		}
		p, err := parseProblem(problem)
		if err != nil {
			return nil, fmt.Errorf("store: rejections of %s: %w", account, err)
		}
		k := RejectionCount{Account: account}
		if p != nil {
			k.Class, k.Verdict = p.Class, p.Verdict
		}
		counts[k]++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: rejections: %w", err)
	}
	out := make([]RejectionCount, 0, len(counts))
	for k, n := range counts {
		k.Documents = n
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b RejectionCount) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(b.Documents, a.Documents),
			cmp.Compare(a.Class, b.Class), cmp.Compare(a.Verdict, b.Verdict))
	})
	return out, nil
}

// Retry is one document an operator retried, with its number as the history knows it.
type Retry struct {
	model.Action
	Number string // the document's number; "" when the history has no row for it
}

// Retries lists the per-document retry actions since since, oldest first, at most
// limit (DefaultLimit when ≤ 0) of the most recent. Batch summaries are left out.
func (s *Store) Retries(ctx context.Context, since time.Time, limitN int) ([]Retry, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT * FROM (
		SELECT a.id, a.at, a.operator, a.fingerprint, a.kind, a.account, a.doc_id, a.reason, a.outcome,
			coalesce(d.number, '')
		FROM actions AS a LEFT JOIN documents AS d ON d.account = a.account AND d.doc_id = a.doc_id
		WHERE a.at >= $1 AND a.kind IN ('retry', 'force-retry') AND a.doc_id <> ''
		ORDER BY a.at DESC, a.id DESC LIMIT $2) AS recent ORDER BY 2, 1`, nanos(since), limit(limitN))
	if err != nil {
		return nil, fmt.Errorf("store: retries: %w", err)
	}
	defer rows.Close()
	var out []Retry
	for rows.Next() {
		var r Retry
		var at int64
		if err := rows.Scan(&r.ID, &at, &r.Operator, &r.Fingerprint, &r.Kind, &r.Account, &r.DocID,
			&r.Reason, &r.Outcome, &r.Number); err != nil {
			return nil, fmt.Errorf("store: retries: %w", err)
		}
		r.At = fromNanos(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: retries: %w", err)
	}
	return out, nil
}

// Hour is what happened in one clock hour (UTC).
type Hour struct {
	Start      time.Time
	Events     int // document events: seen, status and problem changes, emissions
	Rejections int // of those, the ones that left a document rejected
	Requests   int // requests made to the providers
}

// Hours lists every hour since since in which something happened, oldest first.
func (s *Store) Hours(ctx context.Context, since time.Time) ([]Hour, error) {
	const hour = int64(time.Hour)
	rows, err := s.read.QueryContext(ctx, `SELECT h, sum(e), sum(r), sum(q) FROM (
		SELECT at / $1 AS h, 1 AS e, CASE WHEN status = $3 THEN 1 ELSE 0 END AS r, 0 AS q FROM events WHERE at >= $2
		UNION ALL
		SELECT at / $1, 0, 0, 1 FROM requests WHERE at >= $2) AS happenings
		GROUP BY h ORDER BY h`, hour, nanos(since), string(model.StatusRejected))
	if err != nil {
		return nil, fmt.Errorf("store: hours: %w", err)
	}
	defer rows.Close()
	var out []Hour
	for rows.Next() {
		var h Hour
		var n int64
		if err := rows.Scan(&n, &h.Events, &h.Rejections, &h.Requests); err != nil {
			return nil, fmt.Errorf("store: hours: %w", err)
		}
		h.Start = time.Unix(0, n*hour)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: hours: %w", err)
	}
	return out, nil
}
