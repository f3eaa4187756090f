package store

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"emitop/model"
)

// Op is one write for the batched writer; build it with UpsertDocument, AddEvent,
// AddWindowSamples, LogRequest, RecordAction or PutAccount.
type Op interface {
	check() error       // run by Enqueue, so a malformed op fails its caller, not a batch
	apply(t *txn) error // run by the writer inside a batch transaction
	size() int          // about the bytes it holds, for the backlog's bound
}

// opBase is what any op costs in the backlog beyond the bytes it carries.
const opBase = 256

// Request is one HTTP request emitop made to a provider, for the request log.
type Request struct {
	Account string
	Method  string
	Path    string // the query string, which may carry credentials, is never stored
	Status  int    // 0 when no response came
	Latency time.Duration
	Class   model.Class
	At      time.Time
}

// Event kinds the store itself records when UpsertDocument sees a change.
const (
	KindSeen    = "seen"    // first time the document was seen
	KindStatus  = "status"  // its status changed
	KindProblem = "problem" // its problem changed, its status did not
)

// PutAccount registers an account and its provider. Other ops create a missing account
// row themselves (with the provider when they know it), so this is only needed to record
// the provider of an account that has no documents or events yet.
func PutAccount(a model.Account) Op { return accountOp(a) }

type accountOp model.Account

func (o accountOp) check() error {
	if o.Name == "" {
		return errors.New("account: empty name")
	}
	return nil
}

func (o accountOp) apply(t *txn) error { return t.ensureAccount(o.Name, o.Provider) }

func (o accountOp) size() int { return opBase + len(o.Name) + len(o.Provider) }

// UpsertDocument records a document as polled at at. The store compares it with the stored
// row: a new document gets a "seen" event, a changed status a "status" event, a changed
// problem (class, verdict, code, status, message or fields) a "problem" event; raw (capped
// at model.MaxRaw) goes on that event. Anything else only refreshes the number and
// provider (an empty one keeps what is stored). The
// document's Attempts is ignored: the retry ledger owns it (see RecordIntent).
func UpsertDocument(d model.Document, raw []byte, at time.Time) Op {
	return upsertOp{doc: d, raw: capRaw(raw), at: at}
}

type upsertOp struct {
	doc model.Document
	raw []byte
	at  time.Time
}

func (o upsertOp) check() error {
	if o.doc.Account == "" || o.doc.ID == "" {
		return fmt.Errorf("document %q of account %q: empty account or id", o.doc.ID, o.doc.Account)
	}
	if o.doc.Status == "" {
		return fmt.Errorf("document %s/%s: empty status", o.doc.Account, o.doc.ID)
	}
	return nil
}

func (o upsertOp) size() int { return opBase + len(o.raw) + problemSize(o.doc.Problem) }

func (o upsertOp) apply(t *txn) error {
	d := o.doc
	at := o.at
	if at.IsZero() {
		at = t.now()
	}
	if err := t.ensureAccount(d.Account, d.Provider); err != nil {
		return err
	}
	pj, err := problemJSON(d.Problem)
	if err != nil {
		return fmt.Errorf("document %s/%s: %w", d.Account, d.ID, err)
	}
	class, verdict, code := problemColumns(d.Problem)

	var status, number, provider string
	var stored sql.NullString
	get := func() error {
		return t.stmt(sDocGet).QueryRowContext(t.ctx, d.Account, d.ID).Scan(&status, &stored, &number, &provider)
	}
	inserted := false
	err = get()
	if errors.Is(err, sql.ErrNoRows) {
		first := cmp.Or(d.FirstSeen, at)
		inserted, err = t.insertDocument(d, pj, class, verdict, code, first, at)
		if err == nil && !inserted { // another process's row came first: compare with it
			err = get()
		}
	}
	if err != nil {
		return fmt.Errorf("document %s/%s: %w", d.Account, d.ID, err)
	}
	if !inserted { // a listing that omits the number or provider keeps the stored one
		d.Number = cmp.Or(d.Number, number)
		d.Provider = cmp.Or(d.Provider, provider)
	}
	kind := ""
	switch {
	case inserted:
		kind = KindSeen
	case status != string(d.Status):
		kind = KindStatus
	case !sameProblem(stored, d.Problem):
		kind = KindProblem
	case number != d.Number || provider != d.Provider:
		if _, err := t.stmt(sDocNumber).ExecContext(t.ctx, d.Number, d.Provider, d.Account, d.ID); err != nil {
			return fmt.Errorf("document %s/%s: %w", d.Account, d.ID, err)
		}
	}
	if kind == "" {
		return nil
	}
	if kind != KindSeen {
		if _, err := t.stmt(sDocUpdate).ExecContext(t.ctx, d.Number, d.Provider, string(d.Status),
			pj, class, verdict, code, nanos(at), d.Account, d.ID); err != nil {
			return fmt.Errorf("document %s/%s: %w", d.Account, d.ID, err)
		}
	}
	return t.insertEvent(model.Event{
		At: at, Account: d.Account, Provider: d.Provider, DocID: d.ID, Number: d.Number,
		Status: d.Status, Problem: d.Problem, Kind: kind, Raw: o.raw,
	})
}

// AddEvent records an event as given (an emission, a verification, ...); it does not
// change the document's row. A zero At means now; Raw is capped at model.MaxRaw.
func AddEvent(e model.Event) Op {
	e.Raw = capRaw(e.Raw)
	return eventOp(e)
}

type eventOp model.Event

func (o eventOp) check() error {
	if o.Account == "" || o.DocID == "" || o.Kind == "" || o.Status == "" {
		return fmt.Errorf("event %q for %s/%s: empty account, document, kind or status", o.Kind, o.Account, o.DocID)
	}
	return nil
}

func (o eventOp) size() int { return opBase + len(o.Raw) + problemSize(o.Problem) }

func (o eventOp) apply(t *txn) error {
	e := model.Event(o)
	if e.At.IsZero() {
		e.At = t.now()
	}
	if err := t.ensureAccount(e.Account, e.Provider); err != nil {
		return err
	}
	return t.insertEvent(e)
}

// AddWindowSamples records the rate-limit windows of an account as observed at at.
func AddWindowSamples(account string, ws []model.Window, at time.Time) Op {
	return windowsOp{account: account, ws: slices.Clone(ws), at: at}
}

type windowsOp struct {
	account string
	ws      []model.Window
	at      time.Time
}

func (o windowsOp) check() error {
	if o.account == "" {
		return errors.New("window samples: empty account")
	}
	return nil
}

func (o windowsOp) size() int { return opBase * (1 + len(o.ws)) }

func (o windowsOp) apply(t *txn) error {
	at := o.at
	if at.IsZero() {
		at = t.now()
	}
	if err := t.ensureAccount(o.account, ""); err != nil {
		return err
	}
	for _, w := range o.ws {
		if _, err := t.stmt(sWindow).ExecContext(t.ctx, o.account, w.Name, w.Limit, w.Remaining,
			int64(w.Reset), nanos(at)); err != nil {
			return fmt.Errorf("window %s/%s: %w", o.account, w.Name, err)
		}
	}
	return nil
}

// LogRequest records one request in the request log; Prune removes old ones.
func LogRequest(r Request) Op {
	r.Path, _, _ = strings.Cut(r.Path, "?")
	return requestOp(r)
}

type requestOp Request

func (o requestOp) check() error {
	if o.Account == "" || o.Method == "" {
		return fmt.Errorf("request %s %s: empty account or method", o.Method, o.Path)
	}
	return nil
}

func (o requestOp) size() int { return opBase + len(o.Path) }

func (o requestOp) apply(t *txn) error {
	at := o.At
	if at.IsZero() {
		at = t.now()
	}
	if err := t.ensureAccount(o.Account, ""); err != nil {
		return err
	}
	if _, err := t.stmt(sRequest).ExecContext(t.ctx, o.Account, o.Method, o.Path, o.Status,
		int64(o.Latency), string(o.Class), nanos(at)); err != nil {
		return fmt.Errorf("request log %s: %w", o.Account, err)
	}
	return nil
}

// RecordAction records what an operator did. A zero At means now.
func RecordAction(a model.Action) Op { return actionOp(a) }

type actionOp model.Action

func (o actionOp) check() error {
	if o.Account == "" || o.Kind == "" || o.Operator == "" {
		return fmt.Errorf("action %q on %s: empty account, kind or operator", o.Kind, o.Account)
	}
	return nil
}

func (o actionOp) size() int { return opBase + len(o.Reason) + len(o.Outcome) + len(o.DocID) }

func (o actionOp) apply(t *txn) error {
	at := o.At
	if at.IsZero() {
		at = t.now()
	}
	if err := t.ensureAccount(o.Account, ""); err != nil {
		return err
	}
	if _, err := t.stmt(sAction).ExecContext(t.ctx, nanos(at), o.Operator, o.Fingerprint, o.Kind,
		o.Account, o.DocID, o.Reason, o.Outcome); err != nil {
		return fmt.Errorf("action %s on %s: %w", o.Kind, o.Account, err)
	}
	return nil
}

// problemSize is about the bytes a problem holds.
func problemSize(p *model.Problem) int {
	if p == nil {
		return 0
	}
	n := len(p.Message) + len(p.Code)
	for _, f := range p.Fields {
		n += len(f)
	}
	return n
}

// capRaw keeps at most model.MaxRaw bytes of a raw response.
func capRaw(b []byte) []byte {
	if len(b) > model.MaxRaw {
		return b[:model.MaxRaw:model.MaxRaw]
	}
	return b
}

// problemJSON encodes a problem for a TEXT column; nil is NULL.
func problemJSON(p *model.Problem) (sql.NullString, error) {
	if p == nil {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("encode problem: %w", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// parseProblem decodes what problemJSON stored. Documents share a handful of rejection
// reasons and decoding is most of the cost of a history read, so decoded problems are
// memoized by their JSON; each caller gets its own copy.
func parseProblem(s sql.NullString) (*model.Problem, error) {
	if !s.Valid {
		return nil, nil
	}
	decoded.mu.Lock()
	p, ok := decoded.m[s.String]
	decoded.mu.Unlock()
	if !ok {
		p = new(model.Problem)
		if err := json.Unmarshal([]byte(s.String), p); err != nil {
			return nil, fmt.Errorf("decode problem: %w", err)
		}
		decoded.mu.Lock()
		if len(decoded.m) >= maxDecoded {
			clear(decoded.m)
		}
		decoded.m[s.String] = p
		decoded.mu.Unlock()
	}
	c := *p
	c.Fields, c.Windows = slices.Clone(p.Fields), slices.Clone(p.Windows)
	return &c, nil
}

// maxDecoded bounds the memo of decoded problems; it starts afresh when full.
const maxDecoded = 1024

var decoded = struct {
	mu sync.Mutex
	m  map[string]*model.Problem
}{m: map[string]*model.Problem{}}

// problemColumns are the problem's fields kept in their own columns, for filters.
func problemColumns(p *model.Problem) (class, verdict, code string) {
	if p == nil {
		return "", "", ""
	}
	return string(p.Class), string(p.Verdict), p.Code
}

// sameProblem reports whether a stored problem and a new one say the same thing. Waits and
// rate-limit windows are left out: they change on every poll without changing the problem.
func sameProblem(stored sql.NullString, p *model.Problem) bool {
	old, err := parseProblem(stored)
	if err != nil || (old == nil) != (p == nil) {
		return false
	}
	if old == nil {
		return true
	}
	return old.Provider == p.Provider && old.Status == p.Status && old.Code == p.Code &&
		old.Class == p.Class && old.Verdict == p.Verdict && old.Message == p.Message &&
		slices.Equal(old.Fields, p.Fields)
}
