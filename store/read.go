package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"emitop/model"
)

// DefaultLimit is how many rows a read returns when its filter sets no limit.
const DefaultLimit = 500

// Reader is what the UI and the poller read; *Store implements it on the reader pool, so
// reads never wait behind the writer.
type Reader interface {
	Accounts(ctx context.Context) ([]model.Account, error)
	Document(ctx context.Context, account, docID string) (model.Document, error)
	Documents(ctx context.Context, f DocFilter) ([]model.Document, error)
	RecentRejected(ctx context.Context, account string, n int) ([]model.Document, error)
	Events(ctx context.Context, f EventFilter) ([]model.Event, error)
	WindowSeries(ctx context.Context, account, window string, since time.Time, n int) ([]model.Window, error)
	Requests(ctx context.Context, f RequestFilter) ([]Request, error)
	Actions(ctx context.Context, f ActionFilter) ([]model.Action, error)
}

var _ Reader = (*Store)(nil)

// DocFilter selects documents; zero fields select everything.
type DocFilter struct {
	Account  string
	Statuses []model.Status
	Limit    int // ≤ 0 means DefaultLimit
}

// EventFilter selects events; zero fields select everything.
type EventFilter struct {
	Account string
	DocID   string // needs Account
	Since   time.Time
	Limit   int // ≤ 0 means DefaultLimit
}

// RequestFilter selects request-log rows; zero fields select everything.
type RequestFilter struct {
	Account string
	Since   time.Time
	Limit   int // ≤ 0 means DefaultLimit
}

// ActionFilter selects operator actions; zero fields select everything.
type ActionFilter struct {
	Account string
	DocID   string // needs Account
	Since   time.Time
	Limit   int // ≤ 0 means DefaultLimit
}

// where builds a WHERE clause from the conditions that apply: each ? in a condition
// becomes the next numbered placeholder ($1, $2, …), which both engines read.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	for _, a := range args {
		cond = strings.Replace(cond, "?", w.arg(a), 1)
	}
	w.conds = append(w.conds, cond)
}

// arg adds an argument for the query around the clause (its LIMIT) and returns its
// placeholder.
func (w *where) arg(a any) string {
	w.args = append(w.args, a)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// logWhere selects the rows of a log (events, requests, actions) by account, document and
// time; an empty or zero value selects every row.
func logWhere(account, docID string, since time.Time) where {
	var w where
	if account != "" {
		w.add("account = ?", account)
	}
	if docID != "" {
		w.add("doc_id = ?", docID)
	}
	if !since.IsZero() {
		w.add("at >= ?", nanos(since))
	}
	return w
}

func limit(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return n
}

// Accounts lists the accounts the history knows, by name.
func (s *Store) Accounts(ctx context.Context) ([]model.Account, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name, provider FROM accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: accounts: %w", err)
	}
	defer rows.Close()
	var out []model.Account
	for rows.Next() {
		var a model.Account
		if err := rows.Scan(&a.Name, &a.Provider); err != nil {
			return nil, fmt.Errorf("store: accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

const docColumns = `account, doc_id, number, provider, status, problem, attempts, first_seen, changed`

func scanDocument(sc interface{ Scan(...any) error }) (model.Document, error) {
	var d model.Document
	var status string
	var problem sql.NullString
	var first, changed int64
	if err := sc.Scan(&d.Account, &d.ID, &d.Number, &d.Provider, &status, &problem, &d.Attempts,
		&first, &changed); err != nil {
		return d, err
	}
	p, err := parseProblem(problem)
	if err != nil {
		return d, fmt.Errorf("document %s/%s: %w", d.Account, d.ID, err)
	}
	d.Status, d.Problem = model.Status(status), p
	d.FirstSeen, d.Changed = fromNanos(first), fromNanos(changed)
	return d, nil
}

// Document returns one document's current row, or ErrNotFound.
func (s *Store) Document(ctx context.Context, account, docID string) (model.Document, error) {
	d, err := scanDocument(s.read.QueryRowContext(ctx,
		`SELECT `+docColumns+` FROM documents WHERE account = $1 AND doc_id = $2`, account, docID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("store: document %s/%s: %w", account, docID, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("store: document %s/%s: %w", account, docID, err)
	}
	return d, nil
}

// DocumentByNumber returns the document of an account whose number (the one a person
// reads, as the screens show it) is number, the most recently changed when two share it;
// ErrNotFound when none has it.
func (s *Store) DocumentByNumber(ctx context.Context, account, number string) (model.Document, error) {
	d, err := scanDocument(s.read.QueryRowContext(ctx, `SELECT `+docColumns+` FROM documents
		WHERE account = $1 AND number = $2 AND number <> '' ORDER BY changed DESC, id DESC LIMIT 1`, account, number))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("store: document number %s/%s: %w", account, number, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("store: document number %s/%s: %w", account, number, err)
	}
	return d, nil
}

// Documents lists documents, the most recently changed first.
func (s *Store) Documents(ctx context.Context, f DocFilter) ([]model.Document, error) {
	var w where
	if f.Account != "" {
		w.add("account = ?", f.Account)
	}
	if len(f.Statuses) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?,", len(f.Statuses)), ",")
		args := make([]any, len(f.Statuses))
		for i, st := range f.Statuses {
			args[i] = string(st)
		}
		w.add("status IN ("+marks+")", args...)
	}
	lim := w.arg(limit(f.Limit))
	q := `SELECT ` + docColumns + ` FROM documents` + w.String() + ` ORDER BY changed DESC, id DESC LIMIT ` + lim
	rows, err := s.query(ctx, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: documents: %w", err)
	}
	defer rows.Close()
	var out []model.Document
	for rows.Next() {
		d, err := scanDocument(rows)
		if err != nil {
			return nil, fmt.Errorf("store: documents: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: documents: %w", err)
	}
	return out, nil
}

// RecentRejected returns the n most recently changed rejected documents of an account.
func (s *Store) RecentRejected(ctx context.Context, account string, n int) ([]model.Document, error) {
	return s.Documents(ctx, DocFilter{Account: account, Statuses: []model.Status{model.StatusRejected}, Limit: n})
}

// Events lists events, newest first (by time, then by the order they were written).
func (s *Store) Events(ctx context.Context, f EventFilter) ([]model.Event, error) {
	w := logWhere(f.Account, f.DocID, f.Since)
	lim := w.arg(limit(f.Limit))
	q := `SELECT id, at, account, provider, doc_id, number, status, kind, problem, raw FROM events` +
		w.String() + ` ORDER BY at DESC, id DESC LIMIT ` + lim
	rows, err := s.read.QueryContext(ctx, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []model.Event
	for rows.Next() {
		var e model.Event
		var at int64
		var status string
		var problem sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.Account, &e.Provider, &e.DocID, &e.Number, &status, &e.Kind,
			&problem, &e.Raw); err != nil {
			return nil, fmt.Errorf("store: events: %w", err)
		}
		if e.Problem, err = parseProblem(problem); err != nil {
			return nil, fmt.Errorf("store: event %d: %w", e.ID, err)
		}
		e.At, e.Status = fromNanos(at), model.Status(status)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return out, nil
}

// WindowSeries returns the last n samples of one rate-limit window since a time, oldest
// first, for a sparkline. Each sample's Observed is when it was taken.
func (s *Store) WindowSeries(ctx context.Context, account, window string, since time.Time, n int) ([]model.Window, error) {
	rows, err := s.query(ctx, `SELECT name, lim, remaining, reset, at FROM window_samples
		WHERE account = $1 AND name = $2 AND at >= $3 ORDER BY at DESC, id DESC LIMIT $4`,
		account, window, nanos(since), limit(n))
	if err != nil {
		return nil, fmt.Errorf("store: window series %s/%s: %w", account, window, err)
	}
	defer rows.Close()
	var out []model.Window
	for rows.Next() {
		var w model.Window
		var reset, at int64
		if err := rows.Scan(&w.Name, &w.Limit, &w.Remaining, &reset, &at); err != nil {
			return nil, fmt.Errorf("store: window series %s/%s: %w", account, window, err)
		}
		w.Reset, w.Observed = time.Duration(reset), fromNanos(at)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: window series %s/%s: %w", account, window, err)
	}
	slices.Reverse(out)
	return out, nil
}

// Requests lists the request log, newest first.
func (s *Store) Requests(ctx context.Context, f RequestFilter) ([]Request, error) {
	w := logWhere(f.Account, "", f.Since)
	lim := w.arg(limit(f.Limit))
	rows, err := s.read.QueryContext(ctx, `SELECT account, method, path, status, latency, class, at FROM requests`+
		w.String()+` ORDER BY at DESC, id DESC LIMIT `+lim, w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: requests: %w", err)
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		var r Request
		var latency, at int64
		var class string
		if err := rows.Scan(&r.Account, &r.Method, &r.Path, &r.Status, &latency, &class, &at); err != nil {
			return nil, fmt.Errorf("store: requests: %w", err)
		}
		r.Latency, r.Class, r.At = time.Duration(latency), model.Class(class), fromNanos(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: requests: %w", err)
	}
	return out, nil
}

// Actions lists operator actions, newest first.
func (s *Store) Actions(ctx context.Context, f ActionFilter) ([]model.Action, error) {
	w := logWhere(f.Account, f.DocID, f.Since)
	lim := w.arg(limit(f.Limit))
	rows, err := s.read.QueryContext(ctx, `SELECT id, at, operator, fingerprint, kind, account, doc_id, reason, outcome
		FROM actions`+w.String()+` ORDER BY at DESC, id DESC LIMIT `+lim, w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: actions: %w", err)
	}
	defer rows.Close()
	var out []model.Action
	for rows.Next() {
		var a model.Action
		var at int64
		if err := rows.Scan(&a.ID, &at, &a.Operator, &a.Fingerprint, &a.Kind, &a.Account, &a.DocID,
			&a.Reason, &a.Outcome); err != nil {
			return nil, fmt.Errorf("store: actions: %w", err)
		}
		a.At = fromNanos(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: actions: %w", err)
	}
	return out, nil
}

// DefaultRetention is how long the request log and window samples are kept.
const DefaultRetention = 14 * 24 * time.Hour

// Prune deletes request-log rows, window samples and notifications older than before, batch rows per
// transaction (1,000 when batch ≤ 0), so the writer waits at most one short batch. It
// returns how many rows it deleted; on error or a done ctx, the count so far.
func (s *Store) Prune(ctx context.Context, before time.Time, batch int) (int, error) {
	if s.write == nil {
		return 0, ErrReadOnly
	}
	if batch <= 0 {
		batch = 1000
	}
	total := 0
	for _, table := range []string{"requests", "window_samples", "notifications"} {
		q := `DELETE FROM ` + table + ` WHERE id IN (SELECT id FROM ` + table + ` WHERE at < $1 ORDER BY at LIMIT $2)`
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			res, err := s.write.ExecContext(ctx, q, nanos(before), batch)
			if err != nil {
				return total, fmt.Errorf("store: prune %s: %w", table, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("store: prune %s: %w", table, err)
			}
			total += int(n)
			if int(n) < batch {
				break
			}
		}
	}
	// Finished jobs go with the rest of the log, their results first.
	for _, q := range []string{
		`DELETE FROM job_results WHERE job IN (SELECT id FROM jobs WHERE state IN ($2, $3) AND updated < $1)`,
		`DELETE FROM jobs WHERE state IN ($2, $3) AND updated < $1`,
	} {
		res, err := s.write.ExecContext(ctx, q, nanos(before), JobDone, JobFailed)
		if err != nil {
			return total, fmt.Errorf("store: prune jobs: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil {
			total += int(n)
		}
	}
	return total, nil
}

// stmtCache holds the read pool's prepared statements by their text. The poller reads
// each account's documents (and window samples) when it starts, and SQLite parsing the
// same query anew each time cost more than running it: at 10,000 accounts, a tenth of
// the start's CPU. A filter's text varies only with which of its fields are set, so few
// texts come; past maxStmts a text is prepared for its one query, as before.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxStmts bounds the statements a store keeps prepared.
const maxStmts = 32

// query runs q on the read pool, prepared once per store on SQLite. On PostgreSQL the
// driver keeps its own statement cache per connection.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s.eng != sqliteEngine {
		return s.read.QueryContext(ctx, q, args...)
	}
	c := &s.stmts
	c.mu.Lock()
	st, kept := c.m[q]
	if !kept {
		var err error
		if st, err = s.read.PrepareContext(ctx, q); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if c.m == nil {
			c.m = map[string]*sql.Stmt{}
		}
		if kept = len(c.m) < maxStmts; kept {
			c.m[q] = st
		}
	}
	c.mu.Unlock()
	rows, err := st.QueryContext(ctx, args...)
	if !kept {
		st.Close() // once its rows are closed
	}
	return rows, err
}
