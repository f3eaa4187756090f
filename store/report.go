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
	Runs    int       // how many runs the window had since the time asked, this one included
}

// WindowRuns lists, by account, window and time, the spans since since during which a
// window had nothing left: at most keep (DefaultLimit when ≤ 0) of each window's most
// recent, each saying how many the window had in all. A run under way at since starts
// at its first sample after it.
func (s *Store) WindowRuns(ctx context.Context, since time.Time, keep int) ([]WindowRun, error) {
	// Only the samples where a window's state changes are read: the first sample, and
	// each one whose spent-or-not differs from the sample before it. A run ends at the
	// change after it.
	rows, err := s.read.QueryContext(ctx, `WITH samples AS (
			SELECT account, name, at, id, remaining = 0 AS spent,
				lag(remaining = 0) OVER (PARTITION BY account, name ORDER BY at, id) AS prev
			FROM window_samples WHERE at >= $1),
		changes AS (
			SELECT account, name, at, spent,
				lead(at) OVER (PARTITION BY account, name ORDER BY at, id) AS next
			FROM samples WHERE prev IS NULL AND spent OR prev IS NOT NULL AND spent <> prev),
		runs AS (
			SELECT account, name, at, next, count(*) OVER w AS total,
				row_number() OVER (w ORDER BY at DESC) AS n
			FROM changes WHERE spent WINDOW w AS (PARTITION BY account, name))
		SELECT account, name, at, coalesce(next, 0), total FROM runs WHERE n <= $2 ORDER BY account, name, at`,
		nanos(since), limit(keep))
	if err != nil {
		return nil, fmt.Errorf("store: window runs: %w", err)
	}
	defer rows.Close()
	var out []WindowRun
	for rows.Next() {
		var r WindowRun
		var from, until int64
		if err := rows.Scan(&r.Account, &r.Window, &from, &until, &r.Runs); err != nil {
			return nil, fmt.Errorf("store: window runs: %w", err)
		}
		r.From = fromNanos(from)
		if until != 0 {
			r.Until = fromNanos(until)
		}
		out = append(out, r)
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

// Retries lists the per-document retry actions since since, oldest first, at most limit
// (DefaultLimit when ≤ 0) of each account's most recent. Batch summaries are left out.
func (s *Store) Retries(ctx context.Context, since time.Time, limitN int) ([]Retry, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, at, operator, fingerprint, kind, account, doc_id, reason, outcome, number FROM (
		SELECT a.id, a.at, a.operator, a.fingerprint, a.kind, a.account, a.doc_id, a.reason, a.outcome,
			coalesce(d.number, '') AS number,
			row_number() OVER (PARTITION BY a.account ORDER BY a.at DESC, a.id DESC) AS n
		FROM actions AS a LEFT JOIN documents AS d ON d.account = a.account AND d.doc_id = a.doc_id
		WHERE a.at >= $1 AND a.kind IN ('retry', 'force-retry') AND a.doc_id <> '') AS recent
		WHERE n <= $2 ORDER BY at, id`, nanos(since), limit(limitN))
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

// ReportCounts is how many of the rows a report lists only in part an account had.
type ReportCounts struct {
	HealthChanges int
	Retries       int // per-document retry actions
}

// Counts says, per account, how many health changes and retries it had since since, for
// a report that lists only the most recent of them.
func (s *Store) Counts(ctx context.Context, since time.Time) (map[string]ReportCounts, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT account, sum(h), sum(r) FROM (
		SELECT account, 1 AS h, 0 AS r FROM health_changes WHERE at >= $1
		UNION ALL
		SELECT account, 0, 1 FROM actions WHERE at >= $1 AND kind IN ('retry', 'force-retry') AND doc_id <> '') AS counted
		GROUP BY account`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("store: counts: %w", err)
	}
	defer rows.Close()
	out := map[string]ReportCounts{}
	for rows.Next() {
		var account string
		var c ReportCounts
		if err := rows.Scan(&account, &c.HealthChanges, &c.Retries); err != nil {
			return nil, fmt.Errorf("store: counts: %w", err)
		}
		out[account] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: counts: %w", err)
	}
	return out, nil
}

// Hour is what happened in one clock hour.
type Hour struct {
	Start      time.Time
	Events     int // document events: seen, status and problem changes, emissions
	Rejections int // of those, the ones that left a document rejected
	Requests   int // requests made to the providers
}

// quarter is the slice the history is counted in: every zone's offset from UTC is a whole
// number of them, so the slices fold exactly into any zone's clock hours.
const quarter = int64(15 * time.Minute)

// Hours lists every clock hour of loc since since in which something happened, oldest
// first.
func (s *Store) Hours(ctx context.Context, since time.Time, loc *time.Location) ([]Hour, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT q, sum(e), sum(r), sum(n) FROM (
		SELECT at / $1 AS q, 1 AS e, CASE WHEN status = $3 THEN 1 ELSE 0 END AS r, 0 AS n FROM events WHERE at >= $2
		UNION ALL
		SELECT at / $1, 0, 0, 1 FROM requests WHERE at >= $2) AS happenings
		GROUP BY q ORDER BY q`, quarter, nanos(since), string(model.StatusRejected))
	if err != nil {
		return nil, fmt.Errorf("store: hours: %w", err)
	}
	defer rows.Close()
	var out []Hour
	for rows.Next() {
		var q int64
		var h Hour
		if err := rows.Scan(&q, &h.Events, &h.Rejections, &h.Requests); err != nil {
			return nil, fmt.Errorf("store: hours: %w", err)
		}
		t := time.Unix(0, q*quarter).In(loc)
		h.Start = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
		if n := len(out); n > 0 && out[n-1].Start.Equal(h.Start) {
			out[n-1].Events += h.Events
			out[n-1].Rejections += h.Rejections
			out[n-1].Requests += h.Requests
			continue
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: hours: %w", err)
	}
	return out, nil
}
