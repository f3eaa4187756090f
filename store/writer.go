package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"emitop/model"
)

// Batching: the writer commits when it holds MaxBatch ops, when Linger has passed since the
// first op of the batch, or at once when someone flushes.
const (
	MaxBatch   = 500
	Linger     = 50 * time.Millisecond
	QueueDepth = 1024 // Enqueue calls (each one or more ops) waiting for the writer
)

// maxErrs is how many write errors the writer keeps for the next Flush; it counts the rest.
const maxErrs = 8

// Enqueue hands ops to the writer and returns once they are queued, before they are
// committed. The ops of one call commit in one transaction. Ops are checked first: if one is
// malformed none is queued. When the queue is full Enqueue blocks until there is room or
// ctx is done; it never drops an op. A write that fails later is reported by the next
// Flush or by Close.
func (s *Store) Enqueue(ctx context.Context, ops ...Op) error {
	for _, op := range ops {
		if err := op.check(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return s.w.send(ctx, item{ops: ops})
}

// Flush waits until every op enqueued before it is committed, and returns the write errors
// since the previous Flush. If ctx ends first the ops stay queued and commit later.
func (s *Store) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	if err := s.w.send(ctx, item{flush: done}); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// item is what travels on the queue: some ops, or a flush request.
type item struct {
	ops   []Op
	flush chan error
}

// writer owns the writer connection: one goroutine commits queued ops in batches.
type writer struct {
	db    *sql.DB
	now   func() time.Time
	stmts [nStmts]*sql.Stmt
	in    chan item
	done  chan struct{}

	mu       sync.Mutex // guards closed and the start of every send
	closed   bool
	inflight sync.WaitGroup

	errMu   sync.Mutex
	errs    []error
	dropped int   // errors beyond maxErrs since the last report
	failing error // the last write error while the batches since have failed too; nil once one commits

	accounts map[string]string // account → provider known to be in the table

	failures atomic.Uint64 // write errors since the store opened, for metrics
}

func startWriter(db *sql.DB, now func() time.Time) (*writer, error) {
	w := &writer{db: db, now: now, in: make(chan item, QueueDepth), done: make(chan struct{}),
		accounts: map[string]string{}}
	for k, q := range stmtSQL {
		st, err := db.Prepare(q)
		if err != nil {
			return nil, fmt.Errorf("store: prepare %q: %w", q, err)
		}
		w.stmts[k] = st
	}
	go w.run()
	return w, nil
}

// send queues it unless the writer is closing; Close waits for every send in flight, so
// nothing is queued after the writer has drained the queue.
func (w *writer) send(ctx context.Context, it item) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.inflight.Add(1)
	w.mu.Unlock()
	defer w.inflight.Done()
	select {
	case w.in <- it:
		return nil
	default:
	}
	select {
	case w.in <- it:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("store: queue full: %w", ctx.Err())
	}
}

// close stops taking ops, commits what is queued and stops the goroutine.
func (w *writer) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	w.inflight.Wait()
	close(w.in)
	<-w.done
	for _, st := range w.stmts {
		st.Close()
	}
	return w.takeErrs()
}

func (w *writer) run() {
	defer close(w.done)
	var batch []Op
	var flushes []chan error
	for {
		it, ok := <-w.in
		if !ok {
			return
		}
		batch, flushes = take(batch, flushes, it)
		if len(flushes) == 0 && len(batch) < MaxBatch {
			timer := time.NewTimer(Linger)
		collect:
			for len(batch) < MaxBatch {
				select {
				case it, ok = <-w.in:
					if !ok {
						break collect
					}
					batch, flushes = take(batch, flushes, it)
					if it.flush != nil {
						break collect
					}
				case <-timer.C:
					break collect
				}
			}
			timer.Stop()
		}
		w.commit(batch)
		batch = batch[:0]
		if len(flushes) > 0 {
			err := w.takeErrs()
			for _, f := range flushes {
				f <- err
			}
			flushes = flushes[:0]
		}
		if !ok {
			return
		}
	}
}

func take(batch []Op, flushes []chan error, it item) ([]Op, []chan error) {
	if it.flush != nil {
		return batch, append(flushes, it.flush)
	}
	return append(batch, it.ops...), flushes
}

// commit writes ops in one transaction. If that fails it writes them one transaction each,
// so a single failing op costs only itself, and keeps the errors for Flush.
func (w *writer) commit(ops []Op) {
	if len(ops) == 0 {
		return
	}
	if err := w.apply(ops); err == nil {
		w.setFailing(nil)
		return
	}
	for _, op := range ops {
		if err := w.apply([]Op{op}); err != nil {
			w.fail(err)
		}
	}
}

func (w *writer) setFailing(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	w.failing = err
}

func (w *writer) apply(ops []Op) error {
	ctx := context.Background()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	t := &txn{ctx: ctx, tx: tx, w: w, added: map[string]string{}}
	for _, op := range ops {
		if err := op.apply(t); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	for a, p := range t.added {
		w.accounts[a] = p
	}
	return nil
}

func (w *writer) fail(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	w.failing = err
	w.failures.Add(1)
	if len(w.errs) < maxErrs {
		w.errs = append(w.errs, err)
	} else {
		w.dropped++
	}
}

// WriteError is why history is not being saved right now: the last write error, as long
// as no batch has committed since (a full disk, a read-only file). nil when writes succeed.
// Unlike Flush it forgets nothing, so a dashboard can show it on every frame.
func (s *Store) WriteError() error {
	s.w.errMu.Lock()
	defer s.w.errMu.Unlock()
	return s.w.failing
}

// WriteErrors is how many writes have failed since the store opened (for metrics).
func (s *Store) WriteErrors() uint64 { return s.w.failures.Load() }

// takeErrs returns and forgets the errors kept since the last call.
func (w *writer) takeErrs() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	errs := w.errs
	if w.dropped > 0 {
		errs = append(errs, fmt.Errorf("store: %d more write errors", w.dropped))
	}
	w.errs, w.dropped = nil, 0
	return errors.Join(errs...)
}

// txn is one batch transaction with the writer's statements bound to it (they close with
// the transaction).
type txn struct {
	ctx   context.Context
	tx    *sql.Tx
	w     *writer
	bound [nStmts]*sql.Stmt
	added map[string]string // accounts written in this transaction
}

func (t *txn) now() time.Time { return t.w.now() }

func (t *txn) stmt(k stmtKind) *sql.Stmt {
	if t.bound[k] == nil {
		t.bound[k] = t.tx.StmtContext(t.ctx, t.w.stmts[k])
	}
	return t.bound[k]
}

// ensureAccount makes sure the account row exists, and records its provider once known.
func (t *txn) ensureAccount(name, provider string) error {
	known, ok := t.added[name]
	if !ok {
		known, ok = t.w.accounts[name]
	}
	if ok && (provider == "" || provider == known) {
		return nil
	}
	if _, err := t.stmt(sAccount).ExecContext(t.ctx, name, provider, nanos(t.now())); err != nil {
		return fmt.Errorf("account %s: %w", name, err)
	}
	if provider == "" {
		provider = known
	}
	t.added[name] = provider
	return nil
}

func (t *txn) insertEvent(e model.Event) error {
	pj, err := problemJSON(e.Problem)
	if err != nil {
		return fmt.Errorf("event for %s/%s: %w", e.Account, e.DocID, err)
	}
	if _, err := t.stmt(sEvent).ExecContext(t.ctx, nanos(e.At), e.Account, e.Provider, e.DocID, e.Number,
		string(e.Status), e.Kind, pj, rawValue(e.Raw)); err != nil {
		return fmt.Errorf("event for %s/%s: %w", e.Account, e.DocID, err)
	}
	return nil
}

// rawValue stores an empty raw response as NULL.
func rawValue(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

type stmtKind int

const (
	sAccount stmtKind = iota
	sDocGet
	sDocInsert
	sDocUpdate
	sDocNumber
	sEvent
	sWindow
	sRequest
	sAction
	nStmts
)

var stmtSQL = [nStmts]string{
	sAccount: `INSERT INTO accounts (name, provider, first_seen) VALUES (?1, ?2, ?3)
		ON CONFLICT (name) DO UPDATE SET provider = excluded.provider
		WHERE excluded.provider <> '' AND accounts.provider <> excluded.provider`,
	sDocGet: `SELECT status, problem, number, provider FROM documents WHERE account = ?1 AND doc_id = ?2`,
	// A new row counts the intents the ledger already holds for it (an emission can be
	// recorded before the poller first sees the document).
	sDocInsert: `INSERT INTO documents (account, doc_id, number, provider, status, problem, class, verdict,
		code, attempts, first_seen, changed)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
		(SELECT count(*) FROM intents WHERE account = ?1 AND doc_id = ?2), ?10, ?11)`,
	sDocUpdate: `UPDATE documents SET number = ?1, provider = ?2, status = ?3, problem = ?4, class = ?5,
		verdict = ?6, code = ?7, changed = ?8 WHERE account = ?9 AND doc_id = ?10`,
	sDocNumber: `UPDATE documents SET number = ?1, provider = ?2 WHERE account = ?3 AND doc_id = ?4`,
	sEvent: `INSERT INTO events (at, account, provider, doc_id, number, status, kind, problem, raw)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`,
	sWindow: `INSERT INTO window_samples (account, name, lim, remaining, reset, at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6)`,
	sRequest: `INSERT INTO requests (account, method, path, status, latency, class, at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`,
	sAction: `INSERT INTO actions (at, operator, fingerprint, kind, account, doc_id, reason, outcome)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`,
}
