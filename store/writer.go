package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"emitop/model"
)

// Batching: the writer commits when it holds MaxBatch ops, when Linger has passed since the
// first op of the batch, or at once when someone flushes (the retry ledger's writes, and
// everything a command writes before it exits). A commit writes again every page the batch
// touched, and the pages where tables and time indexes grow are touched by every batch:
// at 10,000 accounts, lingering 250 ms instead of 50 ms commits about 4 times a second
// instead of 20. What a screen reads of history trails the polls by at most that, and a
// crash loses only what was not committed, as before.
const (
	MaxBatch = 500
	Linger   = 250 * time.Millisecond
)

// The backlog is every op enqueued and not yet committed. While the database refuses
// writes (another process holds its lock, the disk is full) ops wait there and the writer
// retries them in batches with backoff; Enqueue never waits for it. What would take the
// backlog past MaxBacklog ops or MaxBacklogBytes is refused (ErrBacklogFull) and counted,
// so a long outage costs bounded memory and no loss goes unsaid.
const (
	MaxBacklog      = 100_000
	MaxBacklogBytes = 64 << 20
)

// After a failed batch the writer waits rand(0, min(retryCap, retryBase·2^n)) before the
// n-th try (full jitter); a Flush or Close cuts the wait short. Closing gives a failing
// database closeTries more tries before the backlog is given up.
const (
	retryBase  = 100 * time.Millisecond
	retryCap   = 5 * time.Second
	closeTries = 3
)

// batchTimeout bounds one try of a batch on a server (engine.remote): one that stops
// answering (a network that drops every packet) fails the try, which then waits its
// backoff like any other.
const batchTimeout = 30 * time.Second

// maxErrs is how many refused calls the writer keeps for the next Flush; it counts the rest.
const maxErrs = 8

// ErrBacklogFull is returned by Enqueue when the database has refused writes for so long
// that the backlog is full: the ops are not queued, and WriteState counts them as lost.
var ErrBacklogFull = errors.New("store: too many writes waiting for the database")

// ErrReadOnly is returned by every write to a store opened with OpenReadOnly.
var ErrReadOnly = errors.New("store: opened read-only")

// WriteState says whether history is being saved. A spell of failures begins when a batch
// fails for a reason that is not its own (the database is locked or full, the file is
// read-only, the server is restarting or out of reach) and ends when a batch commits
// again; ops wait in the backlog meanwhile.
type WriteState struct {
	Err     error     // why the last try failed, while the spell lasts; nil when writes succeed
	Cause   error     // why the first try of the current or last spell failed
	Since   time.Time // when the current or last spell began; zero when there was none
	Resumed time.Time // when that spell ended; zero while it lasts
	Waiting int       // ops enqueued and not yet committed
	Lost    int       // ops refused because the backlog was full, since Open
	Refused int       // ops the database refused outright (a broken row), since Open
}

// Gap is the state as the dashboard's vocabulary says it.
func (s WriteState) Gap() model.HistoryGap {
	return model.HistoryGap{Since: s.Since, Until: s.Resumed, Waiting: s.Waiting, Lost: s.Lost}
}

// Enqueue hands ops to the writer and returns at once, before they are committed: it never
// waits for the database. The ops of one call commit in one transaction. Ops are checked
// first: if one is malformed none is queued. When the backlog is full the call is refused
// with ErrBacklogFull and counted in WriteState.Lost. An op the database refuses outright
// is reported by the next Flush or by Close; one it cannot take now waits and is retried.
func (s *Store) Enqueue(_ context.Context, ops ...Op) error {
	if s.w == nil {
		return ErrReadOnly
	}
	for _, op := range ops {
		if err := op.check(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return s.w.enqueue(ops)
}

// Flush waits until every op enqueued before it is committed, and returns the calls the
// database refused since the previous Flush. When a try to commit them fails instead it
// returns why (the ops stay queued, to be tried again); when ctx ends first, ctx's error.
func (s *Store) Flush(ctx context.Context) error {
	if s.w == nil {
		return ErrReadOnly
	}
	done, err := s.w.flush()
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("store: flush: %w", ctx.Err())
	}
}

// WriteState is whether history is being saved now, and the last spell when it was not.
// Unlike Flush it forgets nothing, so a dashboard can show it on every frame.
func (s *Store) WriteState() WriteState {
	if s.w == nil {
		return WriteState{}
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	st := s.w.state
	st.Waiting = s.w.ops
	return st
}

// WriteErrors is how many writes have failed since the store opened, for metrics: each try
// of a batch the database could not take, and each op it refused outright.
func (s *Store) WriteErrors() uint64 {
	if s.w == nil {
		return 0
	}
	return s.w.failures.Load()
}

// call is the ops of one Enqueue: they commit in one transaction.
type call struct {
	ops  []Op
	size int
}

// waiter is a Flush waiting for every call up to seq to be done.
type waiter struct {
	seq  uint64
	done chan error
}

// writer owns the writer connection: one goroutine commits the backlog in batches.
type writer struct {
	db    *sql.DB
	eng   *engine
	now   func() time.Time
	stmts [nStmts]*sql.Stmt

	maxOps, maxBytes int // the backlog's bounds; tests lower them

	wake   chan struct{} // an Enqueue, Flush or Close has something for the goroutine
	urgent chan struct{} // a Flush or Close: stop waiting out a backoff
	exited chan struct{}

	mu      sync.Mutex
	calls   []call // the backlog, oldest first
	ops     int    // ops in calls
	bytes   int    // their weight
	seq     uint64 // calls enqueued so far
	done    uint64 // calls committed or given up, always the oldest first
	waiters []waiter
	closed  bool
	errs    []error // refused calls not yet reported by Flush
	dropped int     // refused calls beyond maxErrs
	state   WriteState

	accounts map[string]string // account → provider known to be in the table; the goroutine's

	failures atomic.Uint64 // failed tries and refused ops since the store opened, for metrics
}

func startWriter(db *sql.DB, eng *engine, now func() time.Time) (*writer, error) {
	w := &writer{db: db, eng: eng, now: now, maxOps: MaxBacklog, maxBytes: MaxBacklogBytes,
		wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1), exited: make(chan struct{}),
		accounts: map[string]string{}}
	queries := stmtSQL
	queries[sDocLock] = eng.lockDocument
	for k, q := range queries {
		if q == "" {
			continue
		}
		q = strings.ReplaceAll(q, "{clock}", eng.clock)
		st, err := db.Prepare(q)
		if err != nil {
			return nil, fmt.Errorf("store: prepare %q: %w", q, err)
		}
		w.stmts[k] = st
	}
	go w.run()
	return w, nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (w *writer) enqueue(ops []Op) error {
	size := 0
	for _, op := range ops {
		size += op.size()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.ops > 0 && (w.ops+len(ops) > w.maxOps || w.bytes+size > w.maxBytes) {
		w.state.Lost += len(ops)
		if w.state.Err != nil {
			return fmt.Errorf("%w (%d): %w", ErrBacklogFull, w.ops, w.state.Err)
		}
		return fmt.Errorf("%w (%d)", ErrBacklogFull, w.ops)
	}
	w.calls = append(w.calls, call{ops: ops, size: size})
	w.ops += len(ops)
	w.bytes += size
	w.seq++
	signal(w.wake)
	return nil
}

func (w *writer) flush() (<-chan error, error) {
	done := make(chan error, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	if w.done >= w.seq {
		done <- w.takeErrs()
		return done, nil
	}
	w.waiters = append(w.waiters, waiter{seq: w.seq, done: done})
	signal(w.wake)
	signal(w.urgent)
	return done, nil
}

// close stops taking ops, commits the backlog (giving a failing database closeTries more
// tries) and stops the goroutine.
func (w *writer) close() error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	signal(w.wake)
	signal(w.urgent)
	<-w.exited
	if already {
		return nil
	}
	for _, st := range w.stmts {
		if st != nil {
			st.Close()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.takeErrs()
}

func (w *writer) run() {
	defer close(w.exited)
	failures := 0
	for {
		batch, closing := w.next(failures > 0)
		if batch == nil {
			return
		}
		err := w.commit(batch)
		if err == nil {
			failures = 0
			continue
		}
		failures++
		if closing && failures > closeTries {
			w.giveUp(err)
			return
		}
		w.backoff(failures)
	}
}

// next waits for work and returns the oldest calls up to MaxBatch ops (at least one call),
// after lingering for more unless retrying, flushing or closing. They stay in the backlog
// until commit finishes them. nil means closed with nothing left.
func (w *writer) next(retrying bool) (batch []call, closing bool) {
	var linger <-chan time.Time
	lingered := retrying
	for {
		w.mu.Lock()
		n := w.ops
		closing = w.closed
		if n > 0 && (lingered || closing || len(w.waiters) > 0 || n >= MaxBatch) {
			ops := 0
			for _, c := range w.calls {
				if len(batch) > 0 && ops+len(c.ops) > MaxBatch {
					break
				}
				batch = append(batch, c)
				ops += len(c.ops)
			}
			w.mu.Unlock()
			return batch, closing
		}
		w.mu.Unlock()
		if n == 0 && closing {
			return nil, true
		}
		if n > 0 && linger == nil {
			t := time.NewTimer(Linger)
			defer t.Stop()
			linger = t.C
		}
		select {
		case <-w.wake:
		case <-linger:
			lingered = true
		}
	}
}

// backoff waits before the next try after failures failed ones; a Flush or Close ends it.
func (w *writer) backoff(failures int) {
	ceil := retryCap
	if failures < 16 {
		ceil = min(retryCap, retryBase<<failures)
	}
	t := time.NewTimer(rand.N(ceil) + time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.urgent:
	}
}

// commit writes batch in one transaction. When the database cannot take it now the batch
// stays in the backlog and the error is returned. When an op in it is refused outright,
// the batch is written again with each op in its own savepoint, so a broken op costs
// only itself.
func (w *writer) commit(batch []call) error {
	var ops []Op
	for _, c := range batch {
		ops = append(ops, c.ops...)
	}
	err := w.apply(ops, nil)
	if err != nil && !w.eng.transient(err) {
		var refused []error
		if err = w.apply(ops, &refused); err == nil {
			w.finish(len(batch), refused)
			return nil
		}
	}
	if err != nil {
		w.failed(err)
		return err
	}
	w.finish(len(batch), nil)
	return nil
}

// finish drops the n oldest calls from the backlog, keeps the refusals for Flush,
// answers the Flushes they satisfy, and ends a spell of failures.
func (w *writer) finish(n int, refused []error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.calls[:n] {
		w.ops -= len(c.ops)
		w.bytes -= c.size
	}
	w.calls = w.calls[n:]
	w.done += uint64(n)
	w.state.Refused += len(refused)
	w.failures.Add(uint64(len(refused)))
	for _, err := range refused {
		w.keep(err)
	}
	if w.state.Err != nil {
		w.state.Err, w.state.Resumed = nil, w.now()
	}
	var errs error
	kept := w.waiters[:0]
	for i, f := range w.waiters {
		if f.seq > w.done {
			kept = append(kept, w.waiters[i])
			continue
		}
		if errs == nil {
			errs = w.takeErrs()
		}
		f.done <- errs
	}
	w.waiters = kept
}

// failed records a try the database could not take, starting a spell when none is on,
// and tells every waiting Flush.
func (w *writer) failed(err error) {
	w.failures.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state.Err == nil {
		w.state = WriteState{Since: w.now(), Cause: err, Lost: w.state.Lost, Refused: w.state.Refused}
	}
	w.state.Err = err
	for _, f := range w.waiters {
		f.done <- fmt.Errorf("store: %d writes waiting: %w", w.ops, err)
	}
	w.waiters = w.waiters[:0]
}

// giveUp abandons the backlog when a closing store's database still refuses it, and
// tells every waiting Flush.
func (w *writer) giveUp(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.keep(fmt.Errorf("store: closed with %d writes not saved: %w", w.ops, err))
	w.done += uint64(len(w.calls))
	w.calls, w.ops, w.bytes = nil, 0, 0
	for _, f := range w.waiters {
		f.done <- fmt.Errorf("store: closed with writes not saved: %w", err)
	}
	w.waiters = nil
}

// keep holds a refusal for the next Flush; w.mu is held.
func (w *writer) keep(err error) {
	if len(w.errs) < maxErrs {
		w.errs = append(w.errs, err)
	} else {
		w.dropped++
	}
}

// takeErrs returns and forgets the refusals kept since the last call; w.mu is held.
func (w *writer) takeErrs() error {
	errs := w.errs
	if w.dropped > 0 {
		errs = append(errs, fmt.Errorf("store: %d more writes refused", w.dropped))
	}
	w.errs, w.dropped = nil, 0
	return errors.Join(errs...)
}

// apply writes ops in one transaction. With refused nil any failing op fails it; otherwise
// each op runs in its own savepoint, and one the database refuses outright is rolled back
// alone and its error appended to refused.
func (w *writer) apply(ops []Op, refused *[]error) error {
	ctx := context.Background()
	if w.eng.remote {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, batchTimeout)
		defer cancel()
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	t := &txn{ctx: ctx, tx: tx, w: w, added: map[string]string{}}
	for _, op := range ops {
		if err := t.run(op, refused); err != nil {
			tx.Rollback()
			return err
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

// run applies one op, inside a savepoint when refused is not nil.
func (t *txn) run(op Op, refused *[]error) error {
	if refused == nil {
		if err := op.apply(t); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	}
	if _, err := t.tx.ExecContext(t.ctx, `SAVEPOINT op`); err != nil {
		return fmt.Errorf("store: savepoint: %w", err)
	}
	added := maps.Clone(t.added)
	if err := op.apply(t); err != nil {
		if t.w.eng.transient(err) {
			return fmt.Errorf("store: %w", err)
		}
		*refused = append(*refused, fmt.Errorf("store: %w", err))
		t.added = added
		if _, err := t.tx.ExecContext(t.ctx, `ROLLBACK TO op`); err != nil {
			return fmt.Errorf("store: rollback to savepoint: %w", err)
		}
	}
	if _, err := t.tx.ExecContext(t.ctx, `RELEASE op`); err != nil {
		return fmt.Errorf("store: release savepoint: %w", err)
	}
	return nil
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

// insertDocument inserts a document's first row, under the engine's lock on the
// document when it has one; false when another process's row came first.
func (t *txn) insertDocument(d model.Document, problem sql.NullString, class, verdict, code string, first, at time.Time) (bool, error) {
	if t.w.stmts[sDocLock] != nil {
		if _, err := t.stmt(sDocLock).ExecContext(t.ctx, d.Account, d.ID); err != nil {
			return false, err
		}
	}
	res, err := t.stmt(sDocInsert).ExecContext(t.ctx, d.Account, d.ID, d.Number, d.Provider, string(d.Status),
		problem, class, verdict, code, nanos(first), nanos(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
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
	sDocLock
	sEvent
	sWindow
	sRequest
	sAction
	sState
	sJobResult
	nStmts
)

// stmtSQL is what the writer prepares: standard SQL both engines read, with {clock} for
// the database's clock. sDocLock is the engine's own (engine.lockDocument), when it has
// one.
var stmtSQL = [nStmts]string{
	sAccount: `INSERT INTO accounts (name, provider, first_seen) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET provider = excluded.provider
		WHERE excluded.provider <> '' AND accounts.provider <> excluded.provider`,
	sDocGet: `SELECT status, problem, number, provider FROM documents WHERE account = $1 AND doc_id = $2`,
	// A new row counts the intents the ledger already holds for it (an emission can be
	// recorded before the poller first sees the document). Another process may have
	// inserted it meanwhile: then nothing is inserted, and the row is compared instead.
	sDocInsert: `INSERT INTO documents (account, doc_id, number, provider, status, problem, class, verdict,
		code, attempts, first_seen, changed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
		(SELECT count(*) FROM intents WHERE account = $1 AND doc_id = $2), $10, $11)
		ON CONFLICT (account, doc_id) DO NOTHING`,
	sDocUpdate: `UPDATE documents SET number = $1, provider = $2, status = $3, problem = $4, class = $5,
		verdict = $6, code = $7, changed = $8 WHERE account = $9 AND doc_id = $10`,
	sDocNumber: `UPDATE documents SET number = $1, provider = $2 WHERE account = $3 AND doc_id = $4`,
	sEvent: `INSERT INTO events (at, account, provider, doc_id, number, status, kind, problem, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
	sWindow: `INSERT INTO window_samples (account, name, lim, remaining, reset, at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
	sRequest: `INSERT INTO requests (account, method, path, status, latency, class, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
	sAction: `INSERT INTO actions (at, operator, fingerprint, kind, account, doc_id, reason, outcome)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
	// The state a holder shares is stamped by the database's clock; a holder that lost
	// the account's lease to another meanwhile does not overwrite what the new one wrote.
	// The documents are written when they changed ($6 = 1), and kept otherwise.
	sState: `INSERT INTO account_states (account, holder, host, written, state, documents, docs_written)
		VALUES ($1, $2, $3, {clock}, $4, $5, {clock})
		ON CONFLICT (account) DO UPDATE SET holder = excluded.holder, host = excluded.host,
		written = excluded.written, state = excluded.state,
		documents = CASE WHEN $6 = 1 THEN excluded.documents ELSE account_states.documents END,
		docs_written = CASE WHEN $6 = 1 THEN excluded.docs_written ELSE account_states.docs_written END
		WHERE NOT EXISTS (SELECT 1 FROM poll_leases l WHERE l.account = excluded.account
			AND l.holder <> excluded.holder AND l.holder <> '')`,
	sJobResult: `INSERT INTO job_results (job, doc_id, result) VALUES ($1, $2, $3)`,
}
