package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"emitop/model"
)

// The retry ledger is written synchronously on its own connection (synchronous=FULL), never
// through the batched writer: when one of these calls returns, what it wrote survives a
// crash or a power loss.

// ErrLeaseNotHeld is returned by RecordIntent when the holder has no live lease on the
// document: another holder took it, or it expired.
var ErrLeaseNotHeld = errors.New("store: lease not held")

// Intent is one emission announced before its request leaves. An intent still open after a
// crash means the outcome is unknown: read the document's status before any resend.
type Intent struct {
	ID      int64
	Account string
	DocID   string
	Holder  string // who emits: the lease holder
	Kind    string // "emit", "retry", "force-retry", ...
	Request string // a redacted summary of the request; never credentials
	At      time.Time
	// Deadline is when the emission, if it left, has landed or failed: its latest send
	// plus the holder's timeout (see ExtendIntents). Until then a status read saying it
	// did not land may predate it, and proves nothing. Zero for intents written before
	// emitop kept it.
	Deadline time.Time
	Settled  time.Time // zero while open
	Outcome  string    // set when settled: "accepted", "rejected", "unknown", ...
	Problem  *model.Problem
}

// AcquireLease takes, or renews, holder's lease on a document for ttl. It returns false when
// another holder's lease is still live. Leases work across the processes (and, on
// PostgreSQL, the hosts) that share the store: they are timed by the database's clock.
func (s *Store) AcquireLease(ctx context.Context, account, docID, holder string, ttl time.Duration) (bool, error) {
	if s.ledger == nil {
		return false, ErrReadOnly
	}
	if account == "" || docID == "" || holder == "" || ttl <= 0 {
		return false, fmt.Errorf("store: lease %s/%s for %q: empty name or ttl %v", account, docID, holder, ttl)
	}
	res, err := s.ledger.ExecContext(ctx, `INSERT INTO leases (account, doc_id, holder, expires)
		VALUES ($1, $2, $3, `+s.eng.clock+` + $4)
		ON CONFLICT (account, doc_id) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE leases.holder = excluded.holder OR leases.expires <= `+s.eng.clock,
		account, docID, holder, int64(ttl))
	if err != nil {
		return false, fmt.Errorf("store: lease %s/%s: %w", account, docID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: lease %s/%s: %w", account, docID, err)
	}
	return n == 1, nil
}

// ReleaseLease gives up holder's lease on a document; releasing a lease one does not hold
// does nothing.
func (s *Store) ReleaseLease(ctx context.Context, account, docID, holder string) error {
	if s.ledger == nil {
		return ErrReadOnly
	}
	if _, err := s.ledger.ExecContext(ctx, `DELETE FROM leases WHERE account = $1 AND doc_id = $2 AND holder = $3`,
		account, docID, holder); err != nil {
		return fmt.Errorf("store: release lease %s/%s: %w", account, docID, err)
	}
	return nil
}

// RecordIntent writes an intent to emit and counts it as one more attempt on the document,
// in one transaction that is on disk before it returns. The holder must hold a live lease
// on the document (ErrLeaseNotHeld otherwise). A zero At means now by the database's
// clock, which every host sharing the store reads alike; so should Deadline be (see
// Clock).
func (s *Store) RecordIntent(ctx context.Context, in Intent) (int64, error) {
	if s.ledger == nil {
		return 0, ErrReadOnly
	}
	if in.Account == "" || in.DocID == "" || in.Holder == "" || in.Kind == "" {
		return 0, fmt.Errorf("store: intent %q on %s/%s by %q: empty field", in.Kind, in.Account, in.DocID, in.Holder)
	}
	tx, err := s.ledger.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: intent %s/%s: %w", in.Account, in.DocID, err)
	}
	defer tx.Rollback()
	// The lease stays the holder's until this commits (SQLite: the transaction holds the
	// write lock; PostgreSQL: the row's).
	var live int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM leases
		WHERE account = $1 AND doc_id = $2 AND holder = $3 AND expires > `+s.eng.clock+s.eng.lockLease,
		in.Account, in.DocID, in.Holder).Scan(&live)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("intent %s/%s by %s: %w", in.Account, in.DocID, in.Holder, ErrLeaseNotHeld)
	}
	if err != nil {
		return 0, fmt.Errorf("store: intent %s/%s: %w", in.Account, in.DocID, err)
	}
	if s.eng.lockDocument != "" {
		if _, err := tx.ExecContext(ctx, s.eng.lockDocument, in.Account, in.DocID); err != nil {
			return 0, fmt.Errorf("store: intent %s/%s: %w", in.Account, in.DocID, err)
		}
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO intents (account, doc_id, holder, kind, request, at, deadline)
		VALUES ($1, $2, $3, $4, $5, CASE WHEN CAST($6 AS BIGINT) = 0 THEN `+s.eng.clock+` ELSE CAST($6 AS BIGINT) END, $7)
		RETURNING id`, in.Account, in.DocID, in.Holder, in.Kind, in.Request,
		nanos(in.At), nanos(in.Deadline)).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: intent %s/%s: %w", in.Account, in.DocID, err)
	}
	// A document not stored yet counts its intents when the writer inserts it.
	if _, err := tx.ExecContext(ctx, `UPDATE documents SET attempts = attempts + 1 WHERE account = $1 AND doc_id = $2`,
		in.Account, in.DocID); err != nil {
		return 0, fmt.Errorf("store: intent %s/%s: %w", in.Account, in.DocID, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: intent %s/%s: %w", in.Account, in.DocID, err)
	}
	return id, nil
}

// ExtendIntents moves the deadline of the open intents ids to deadline when it is later,
// on disk before it returns: the retry engine calls it as each request leaves, with the
// request's timeout, so that whoever finds the intent open knows how long the emission
// may still land, whatever happened to the process that sent it.
func (s *Store) ExtendIntents(ctx context.Context, ids []int64, deadline time.Time) error {
	if s.ledger == nil {
		return ErrReadOnly
	}
	if len(ids) == 0 {
		return nil
	}
	var w where
	later := w.arg(nanos(deadline))
	w.add("settled IS NULL")
	w.add("id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+")", anys(ids)...)
	if _, err := s.ledger.ExecContext(ctx, `UPDATE intents SET deadline = CASE WHEN deadline < `+later+
		` THEN `+later+` ELSE deadline END`+w.String(), w.args...); err != nil {
		return fmt.Errorf("store: extend intents %v: %w", ids, err)
	}
	return nil
}

// SettleIntent records how an intent ended, with the decoded problem (nil when none) and
// the raw response (capped at model.MaxRaw), stamped by the database's clock. Settling an
// unknown or settled intent fails.
func (s *Store) SettleIntent(ctx context.Context, id int64, outcome string, p *model.Problem, raw []byte) error {
	if s.ledger == nil {
		return ErrReadOnly
	}
	if outcome == "" {
		return fmt.Errorf("store: settle intent %d: empty outcome", id)
	}
	pj, err := problemJSON(p)
	if err != nil {
		return fmt.Errorf("store: settle intent %d: %w", id, err)
	}
	res, err := s.ledger.ExecContext(ctx, `UPDATE intents SET settled = `+s.eng.clock+`, outcome = $1, problem = $2, raw = $3
		WHERE id = $4 AND settled IS NULL`, outcome, pj, rawValue(capRaw(raw)), id)
	if err != nil {
		return fmt.Errorf("store: settle intent %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("store: settle intent %d: not open (%v)", id, err)
	}
	return nil
}

// OpenIntents lists the unsettled intents of an account ("" for all), oldest first: after a
// crash, each is an emission whose outcome must be verified before anything else.
func (s *Store) OpenIntents(ctx context.Context, account string) ([]Intent, error) {
	var w where
	w.add("settled IS NULL")
	if account != "" {
		w.add("account = ?", account)
	}
	out, err := s.intents(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("store: open intents: %w", err)
	}
	return out, nil
}

// Intents lists the intents recorded for one document, settled or not, oldest first.
func (s *Store) Intents(ctx context.Context, account, docID string) ([]Intent, error) {
	var w where
	w.add("account = ? AND doc_id = ?", account, docID)
	out, err := s.intents(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("store: intents %s/%s: %w", account, docID, err)
	}
	return out, nil
}

func (s *Store) intents(ctx context.Context, w where) ([]Intent, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, account, doc_id, holder, kind, request, at, deadline,
		settled, outcome, problem FROM intents`+w.String()+` ORDER BY id`, w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Intent
	for rows.Next() {
		var in Intent
		var at, deadline int64
		var settled sql.NullInt64
		var problem sql.NullString
		if err := rows.Scan(&in.ID, &in.Account, &in.DocID, &in.Holder, &in.Kind, &in.Request, &at, &deadline,
			&settled, &in.Outcome, &problem); err != nil {
			return nil, err
		}
		in.At, in.Deadline, in.Settled = fromNanos(at), fromNanos(deadline), fromNanos(settled.Int64)
		if in.Problem, err = parseProblem(problem); err != nil {
			return nil, fmt.Errorf("intent %d: %w", in.ID, err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// anys is ids as query arguments.
func anys(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
