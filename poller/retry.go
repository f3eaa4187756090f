package poller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"emitop/model"
	"emitop/store"
)

// The retry engine resends rejected documents so that none is ever emitted twice: each
// document is leased in the store (no other operator or process works on it meanwhile),
// its status is read from the provider before anything is sent, the intent to emit is on
// disk before the request leaves, and a send whose outcome is unknown (a timeout, a 5xx)
// is followed by a status read, never by a second send. An intent stays open until a read
// is evidence of how its emission ended: a document accepted, or one still rejected when
// read after the intent's deadline (its latest send plus the sender's timeout, on disk
// with the intent). Before that a read may predate the emission, so the document waits:
// the wait lives in the store, and an interrupted or killed run leaves the next one as
// careful. Everything goes through the account's governor as Write requests, so a batch
// drains at the budget's pace and keeps the reserve.

// Resend is one request that emits documents again. It never holds credentials: the
// Client adds them when it sends.
type Resend struct {
	Method string
	Path   string   // relative to the account's base URL
	Body   []byte   // JSON; nil for none
	IDs    []string // the documents it emits
	// Note says what the body will be when it cannot be built before the documents are
	// read (planning); "" once Body is final.
	Note string
}

// Outcome is how a document's retry ended.
type Outcome string

// The outcomes of a retry.
const (
	OutcomeAccepted Outcome = "accepted"
	OutcomeRejected Outcome = "rejected"
	OutcomeSkipped  Outcome = "skipped"
	OutcomeUnknown  Outcome = "unknown" // the emission may or may not have landed
)

// Target is a document the operator asked to retry, as last known: its problem and
// attempts come from the store or from a listing. Its resend is built from the read the
// engine makes before sending; a plan shows where the body will come from.
type Target struct {
	Doc model.Document
}

// PlannedRequest is one planned request as an operator may see it: credentials redacted.
type PlannedRequest struct {
	Method string
	URL    string
	Header []string // "X-API-Key: [redacted]"
	Body   string   // the JSON body, a description in angle brackets, or ""
}

// PlanItem is what the engine will do with one document.
type PlanItem struct {
	Doc      model.Document
	Verdict  model.Verdict    // of its last problem; "" when none is known
	Resend   bool             // read its status, then resend it if still rejected
	Forced   bool             // resent only because the operator forced it
	Reason   string           // what will happen and why, one line
	Requests []PlannedRequest // the status read and the resend; none when skipped
}

// Plan is a batch of retries, decided before anything is sent.
type Plan struct {
	Account  string
	Provider string
	Items    []PlanItem
	Force    bool
	Reason   string
	Requests int           // requests the batch makes when nothing goes wrong
	ETA      time.Duration // how long they take at the account's current budget
}

// Resends is how many documents the plan will resend (if still rejected when read).
func (p Plan) Resends() int {
	n := 0
	for _, it := range p.Items {
		if it.Resend {
			n++
		}
	}
	return n
}

// DocResult is how one document's retry ended.
type DocResult struct {
	Doc      model.Document // as it ended: status and last problem
	Outcome  Outcome
	ByPolicy bool          // skipped by the policy (verdict, status, provider), not by chance
	Verdict  model.Verdict // of the last problem; "" when none
	Detail   string        // what happened, one line, sanitized
	Sent     bool          // an emission request left for it
	Forced   bool
}

// Report is what a batch did.
type Report struct {
	Account   string
	Results   []DocResult // in the plan's order
	Requests  int         // requests the engine made: reads and resends
	Elapsed   time.Duration
	Cancelled bool
}

// OK reports whether every document ended accepted or was skipped by policy.
func (r Report) OK() bool {
	for _, res := range r.Results {
		if res.Outcome != OutcomeAccepted && !(res.Outcome == OutcomeSkipped && res.ByPolicy) {
			return false
		}
	}
	return true
}

// Count is how many documents ended with outcome o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// Progress is reported after each document, and once at the start.
type Progress struct {
	Done, Total int
	Current     string        // the document being worked on next; "" when done
	ETA         time.Duration // of what is left
	Result      *DocResult    // the document just finished; nil in the first report
}

// RetryOptions tune a Retrier.
type RetryOptions struct {
	Operator    string // who retries, for the action log; "local" when empty
	Fingerprint string // the operator's SSH key fingerprint; "" on a local terminal
	Force       bool   // resend documents whose verdict is fix or reconcile too
	Reason      string // why, required with Force; recorded with each forced document
	// Holder names this engine in the leases; empty gives one unique to the process and
	// the Retrier.
	Holder string
	// LeaseTTL is how long a lease outlives its last renewal (a crashed run's documents
	// wait that long): 5 s when zero. Leases are renewed every quarter of it.
	LeaseTTL time.Duration
	// LeaseWait is how long, at the end of a batch, the engine waits for documents another
	// holder has leased (it then reads their status): LeaseTTL plus the account's timeout
	// when zero.
	LeaseWait time.Duration
	// OnProgress is called from Run's goroutine; it must not block.
	OnProgress func(Progress)
}

// Ledger is what the retry engine needs of the store (*store.Store, on either engine):
// the leases and intents, written durably before each call returns, and the history.
type Ledger interface {
	AcquireLease(ctx context.Context, account, docID, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, account, docID, holder string) error
	RecordIntent(ctx context.Context, in store.Intent) (int64, error)
	ExtendIntents(ctx context.Context, ids []int64, deadline time.Time) error
	SettleIntent(ctx context.Context, id int64, outcome string, p *model.Problem, raw []byte) error
	OpenIntents(ctx context.Context, account string) ([]store.Intent, error)
	Intents(ctx context.Context, account, docID string) ([]store.Intent, error)
	Enqueue(ctx context.Context, ops ...store.Op) error
	Flush(ctx context.Context) error
}

// Retrier resends one account's rejected documents.
type Retrier struct {
	c      *Client
	st     Ledger
	d      *Dialect
	opt    RetryOptions
	holder string
}

// NewRetrier makes the engine of the account c speaks for, keeping its ledger in st. It
// shares c, and so the account's governor, with whoever else uses c.
func NewRetrier(c *Client, st Ledger, opt RetryOptions) (*Retrier, error) {
	if c == nil || st == nil {
		return nil, errors.New("retry: a client and a store are required")
	}
	if opt.Force && strings.TrimSpace(opt.Reason) == "" {
		return nil, errors.New("retry: forcing a resend requires a reason")
	}
	d := c.d
	if opt.Operator == "" {
		opt.Operator = "local"
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = 5 * time.Second
	}
	if opt.LeaseWait <= 0 {
		opt.LeaseWait = opt.LeaseTTL + c.account.Timeout
	}
	holder := opt.Holder
	if holder == "" {
		host, _ := os.Hostname()
		holder = fmt.Sprintf("%s@%s/%d/%s", opt.Operator, host, os.Getpid(), rand.Text()[:8])
	}
	return &Retrier{c: c, st: st, d: d, opt: opt, holder: holder}, nil
}

// CanResend reports whether the account's provider offers a resend at all.
func (r *Retrier) CanResend() bool { return r.d.resend != nil }

// policy decides whether doc, whose last problem is p, is resent: the verdicts
// whose cause lay outside the document are; fix (its data must change first) and
// reconcile (the provider already holds it) only when forced; the rest never.
func (r *Retrier) policy(doc model.Document, p *model.Problem) (resend, forced bool, reason string) {
	if r.d.resend == nil {
		return false, false, r.d.noResend(doc)
	}
	if p == nil {
		return true, false, "no problem recorded: read the status, then resend if still rejected"
	}
	switch p.Verdict {
	case model.VerdictRetry, model.VerdictWait, model.VerdictVerify, model.VerdictEscalate:
		return true, false, "verdict " + string(p.Verdict) + ": read the status, then resend if still rejected"
	case model.VerdictFix, model.VerdictReconcile:
		why := "the data must change first"
		if p.Verdict == model.VerdictReconcile {
			why = "the provider already holds it"
		}
		if r.opt.Force {
			return true, true, "forced past verdict " + string(p.Verdict) + " (" + why + "): read the status, then resend if still rejected"
		}
		return false, false, "verdict " + string(p.Verdict) + ": " + why + " (--force --reason to resend anyway)"
	case model.VerdictReauth:
		return false, false, "verdict reauth: fix the account's credentials first"
	}
	return false, false, "verdict " + string(p.Verdict) + ": nothing to resend"
}

// Plan decides, without sending anything, what a batch will do with each target, the
// requests it will make (credentials redacted) and how long it will take at the
// account's current budget.
func (r *Retrier) Plan(targets []Target) Plan {
	acc := r.c.account
	p := Plan{Account: acc.Name, Provider: acc.Provider, Force: r.opt.Force, Reason: r.opt.Reason}
	var resend []int
	for _, t := range targets {
		it := PlanItem{Doc: t.Doc}
		if t.Doc.Problem != nil {
			it.Verdict = t.Doc.Problem.Verdict
		}
		switch t.Doc.Status {
		case model.StatusAccepted, model.StatusCancelled, model.StatusDraft:
			it.Reason = "status " + string(t.Doc.Status) + ": not rejected, nothing to resend"
		default:
			it.Resend, it.Forced, it.Reason = r.policy(t.Doc, t.Doc.Problem)
		}
		if it.Resend {
			resend = append(resend, len(p.Items))
			it.Requests = append(it.Requests, r.request(http.MethodGet, r.d.readPath(r.c, t.Doc.ID), nil, ""))
		}
		p.Items = append(p.Items, it)
	}
	sends := 0
	for _, group := range chunks(resend, max(r.d.batch, 1)) {
		ids := make([]string, len(group))
		raws := make([][]byte, len(group))
		for i, k := range group {
			ids[i] = p.Items[k].Doc.ID
		}
		req := PlannedRequest{Method: "?", Body: "<cannot be built: " + model.Line(ids[0], 80) + ">"}
		if rs, err := r.d.resend(r.c, ids, raws); err == nil {
			req = r.request(rs.Method, rs.Path, rs.Body, rs.Note)
		} else {
			req.Body = "<" + model.Line(err.Error(), 200) + ">"
		}
		for _, k := range group {
			p.Items[k].Requests = append(p.Items[k].Requests, req)
		}
		sends++
	}
	p.Requests = len(resend) + sends
	p.ETA = r.c.gov.DrainTime(p.Requests, 0)
	return p
}

// request shows one request as it will leave, with the credential's value redacted.
func (r *Retrier) request(method, path string, body []byte, note string) PlannedRequest {
	req := PlannedRequest{Method: method, URL: r.c.account.BaseURL + path}
	for _, h := range r.c.auth.headers() {
		req.Header = append(req.Header, h+": [redacted]")
	}
	if body != nil {
		req.Header = append(req.Header, "Content-Type: application/json")
		req.Body = string(body)
	}
	if note != "" {
		req.Header = append(req.Header, "Content-Type: application/json")
		req.Body = "<" + note + ">"
	}
	return req
}

// chunks splits xs into runs of at most n.
func chunks[T any](xs []T, n int) [][]T {
	var out [][]T
	for len(xs) > 0 {
		k := min(n, len(xs))
		out = append(out, xs[:k])
		xs = xs[k:]
	}
	return out
}

// run is one batch under way.
type run struct {
	r       *Retrier
	net     context.Context // for network calls and the ledger: never the cancelled one
	report  *Report
	index   map[string]int // result index by document ID
	total   int
	done    int
	start   time.Time
	latency time.Duration // mean of the requests so far
	calls   int
	// until holds, by document, the deadline of an open emission (this run's or another
	// holder's) that keeps it waiting: no read can settle it sooner. The store holds the
	// same deadline; this is only where the run keeps what it read there.
	until map[string]time.Time
	// deadlines holds the deadline each of this run's intents got as its request left.
	deadlines map[int64]time.Time
}

// Run carries out a plan. Cancelling ctx stops the batch before the next document; a
// document already being worked on is finished and recorded (its requests run on a
// context that is not cancelled). The error is for the ledger failing; everything a
// provider answered is in the Report.
func (r *Retrier) Run(ctx context.Context, p Plan) (Report, error) {
	ru := &run{r: r, net: context.WithoutCancel(ctx), report: &Report{Account: r.c.account.Name},
		index: map[string]int{}, until: map[string]time.Time{}, deadlines: map[int64]time.Time{}, start: r.c.clock.Now()}
	var work []int
	for i, it := range p.Items {
		ru.index[it.Doc.ID] = i
		res := DocResult{Doc: it.Doc, Verdict: it.Verdict, Forced: it.Forced}
		if !it.Resend {
			res.Outcome, res.ByPolicy, res.Detail = OutcomeSkipped, true, it.Reason
			ru.done++
		} else {
			work = append(work, i)
		}
		ru.report.Results = append(ru.report.Results, res)
	}
	ru.total = len(p.Items)
	ru.progress(work, nil)
	if err := ru.recover(); err != nil {
		return ru.finish(), err
	}
	var deferred []int
	for _, group := range chunks(work, max(r.d.batch, 1)) {
		if ctx.Err() != nil {
			ru.cancelled(group)
			continue
		}
		busy, err := ru.group(ctx, group)
		if err != nil {
			return ru.finish(), err
		}
		deferred = append(deferred, busy...)
	}
	if err := ru.waitLeased(ctx, deferred); err != nil {
		return ru.finish(), err
	}
	return ru.finish(), nil
}

func (ru *run) finish() Report {
	ru.report.Elapsed = ru.r.c.clock.Now().Sub(ru.start)
	_ = ru.r.st.Flush(ru.net)
	return *ru.report
}

// cancelled marks documents the batch did not reach.
func (ru *run) cancelled(idx []int) {
	ru.report.Cancelled = true
	for _, i := range idx {
		res := &ru.report.Results[i]
		res.Outcome, res.Detail = OutcomeSkipped, "cancelled before it was sent"
		ru.finished(i)
	}
}

// finished counts one document as done and reports progress.
func (ru *run) finished(i int) {
	ru.done++
	res := ru.report.Results[i]
	ru.progress(nil, &res)
}

func (ru *run) progress(left []int, res *DocResult) {
	if ru.r.opt.OnProgress == nil {
		return
	}
	pr := Progress{Done: ru.done, Total: ru.total, Result: res}
	if len(left) > 0 {
		pr.Current = ru.report.Results[left[0]].Doc.ID
		pr.ETA = ru.r.c.gov.DrainTime(2*len(left), ru.latency)
	}
	ru.r.opt.OnProgress(pr)
}

// do sends one request through the account's governor as a Write, counting it.
func (ru *run) do(ctx context.Context, method, path string, body []byte) (*Result, error) {
	res, err := ru.r.c.Do(ctx, Write, method, path, body)
	ru.count(res)
	return res, err
}

func (ru *run) count(res *Result) {
	ru.calls++
	ru.report.Requests++
	if res != nil {
		ru.latency += (res.Latency - ru.latency) / time.Duration(ru.calls)
	}
}

// read reads one document's status as a Write request.
func (ru *run) read(id string) (Item, error) {
	it, err := ReadDocument(ru.net, ru.r.c, Write, id)
	ru.count(nil)
	return it, err
}

// recover settles the account's open intents of documents outside this batch: each was
// an emission whose process died before it learned the outcome. It reads the status;
// it never resends. An intent whose document another live holder leases, or whose
// deadline has not passed, is left alone. The batch's own documents are settled as they
// are read.
func (ru *run) recover() error {
	open, err := ru.r.st.OpenIntents(ru.net, ru.r.c.account.Name)
	if err != nil {
		return err
	}
	byDoc := map[string][]store.Intent{}
	var order []string
	for _, in := range open {
		if _, mine := ru.index[in.DocID]; mine {
			continue
		}
		if byDoc[in.DocID] == nil {
			order = append(order, in.DocID)
		}
		byDoc[in.DocID] = append(byDoc[in.DocID], in)
	}
	for _, id := range order {
		if waiting(byDoc[id], ru.deadline, ru.r.c.clock.Now()) {
			continue // no read can settle it yet; a later run will
		}
		ok, err := ru.r.st.AcquireLease(ru.net, ru.r.c.account.Name, id, ru.r.holder, ru.r.opt.LeaseTTL)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		readAt := ru.r.c.clock.Now()
		it, rerr := ru.read(id)
		if rerr == nil {
			if _, err := ru.settle(id, it, readAt, "verify"); err != nil {
				return err
			}
		}
		if err := ru.r.st.ReleaseLease(ru.net, ru.r.c.account.Name, id, ru.r.holder); err != nil {
			return err
		}
	}
	return nil
}

// settle closes each open intent of a document that a status read made at readAt is
// evidence for (see evidence), and records the read as an event of kind. until is the
// latest deadline of the intents left open because the read may predate their emission:
// the document must wait for it. Intents left open because the document is pending
// settle at a later read.
func (ru *run) settle(id string, it Item, readAt time.Time, kind string) (until time.Time, err error) {
	intents, err := ru.r.st.Intents(ru.net, ru.r.c.account.Name, id)
	if err != nil {
		return until, err
	}
	for _, in := range intents {
		if !in.Settled.IsZero() {
			continue
		}
		dl := ru.deadline(in)
		if !evidence(it.Doc.Status, readAt, dl) {
			if decided(it.Doc.Status) && dl.After(until) {
				until = dl
			}
			continue
		}
		if err := ru.r.st.SettleIntent(ru.net, in.ID, string(outcomeOf(it.Doc.Status)), it.Problem, it.Raw); err != nil {
			return until, err
		}
	}
	return until, ru.r.st.Enqueue(ru.net, store.AddEvent(ru.event(it, kind)), store.UpsertDocument(docWith(it), it.Raw, time.Time{}))
}

// evidence reports whether a status read at readAt tells how an emission whose deadline
// is dl ended: an accepted document landed, whenever it is read; any other decided status
// says the emission failed only when read after the deadline, as before it the emission
// may still land (or land and show late); pending or unknown tells nothing yet.
func evidence(status model.Status, readAt, dl time.Time) bool {
	switch {
	case status == model.StatusAccepted:
		return true
	case !decided(status):
		return false
	}
	return !readAt.Before(dl)
}

// decided reports whether a status is an outcome rather than a wait.
func decided(status model.Status) bool {
	return status != model.StatusPending && status != model.StatusUnknown && status != ""
}

// deadline is when an intent's emission, if it left, has landed or failed: as the intent
// says, or for one written before emitop kept deadlines, its time plus the account's
// timeout.
func (ru *run) deadline(in store.Intent) time.Time {
	if !in.Deadline.IsZero() {
		return in.Deadline
	}
	return in.At.Add(ru.r.c.account.Timeout)
}

// openUntil is the latest deadline, not yet passed, of a document's open intents: until
// then any read could predate an emission announced and maybe in flight. Zero when none.
func (ru *run) openUntil(id string) (time.Time, error) {
	intents, err := ru.r.st.Intents(ru.net, ru.r.c.account.Name, id)
	if err != nil {
		return time.Time{}, err
	}
	now := ru.r.c.clock.Now()
	var until time.Time
	for _, in := range intents {
		if dl := ru.deadline(in); in.Settled.IsZero() && dl.After(now) && dl.After(until) {
			until = dl
		}
	}
	return until, nil
}

// waiting reports whether one of intents is open with a deadline after now.
func waiting(intents []store.Intent, deadline func(store.Intent) time.Time, now time.Time) bool {
	for _, in := range intents {
		if in.Settled.IsZero() && deadline(in).After(now) {
			return true
		}
	}
	return false
}

func (ru *run) event(it Item, kind string) model.Event {
	acc := ru.r.c.account
	st := it.Doc.Status
	if st == "" {
		st = model.StatusUnknown
	}
	return model.Event{Account: acc.Name, Provider: acc.Provider, DocID: it.Doc.ID, Number: it.Doc.Number,
		Status: st, Problem: it.Problem, Kind: kind, Raw: it.Raw}
}

// docWith is the document an Item describes, its problem attached.
func docWith(it Item) model.Document {
	d := it.Doc
	d.Problem = it.Problem
	return d
}

func outcomeOf(s model.Status) Outcome {
	switch s {
	case model.StatusAccepted:
		return OutcomeAccepted
	case model.StatusRejected:
		return OutcomeRejected
	}
	return OutcomeUnknown
}

// keeper renews a group's leases until stopped; when one is lost (the process stalled
// past its TTL and another holder took the document), it cancels that document's send
// if it has not left yet.
type keeper struct {
	mu     sync.Mutex
	held   map[string]bool
	lost   context.CancelFunc
	stop   chan struct{}
	exited chan struct{}
}

func (ru *run) keep(ids []string, lost context.CancelFunc) *keeper {
	k := &keeper{held: map[string]bool{}, lost: lost, stop: make(chan struct{}), exited: make(chan struct{})}
	for _, id := range ids {
		k.held[id] = true
	}
	every := ru.r.opt.LeaseTTL / 4
	go func() {
		defer close(k.exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-k.stop:
				return
			case <-t.C:
			}
			k.mu.Lock()
			ids := make([]string, 0, len(k.held))
			for id := range k.held {
				ids = append(ids, id)
			}
			k.mu.Unlock()
			for _, id := range ids {
				ok, err := ru.r.st.AcquireLease(ru.net, ru.r.c.account.Name, id, ru.r.holder, ru.r.opt.LeaseTTL)
				if err == nil && !ok {
					k.mu.Lock()
					delete(k.held, id)
					k.mu.Unlock()
					k.lost()
				}
			}
		}
	}()
	return k
}

func (k *keeper) release(id string) {
	k.mu.Lock()
	delete(k.held, id)
	k.mu.Unlock()
}

func (k *keeper) close() {
	close(k.stop)
	<-k.exited
}

// group works on documents that one resend request may carry. It returns the documents
// another holder leases, for later.
func (ru *run) group(ctx context.Context, idx []int) (busy []int, err error) {
	acc := ru.r.c.account.Name
	var leased []int
	for _, i := range idx {
		id := ru.report.Results[i].Doc.ID
		if ru.r.c.clock.Now().Before(ru.until[id]) {
			busy = append(busy, i)
			continue
		}
		ok, err := ru.r.st.AcquireLease(ru.net, acc, id, ru.r.holder, ru.r.opt.LeaseTTL)
		if err != nil {
			return busy, err
		}
		if ok {
			leased = append(leased, i)
		} else {
			busy = append(busy, i)
		}
	}
	if len(leased) == 0 {
		return busy, nil
	}
	ids := make([]string, len(leased))
	for n, i := range leased {
		ids[n] = ru.report.Results[i].Doc.ID
	}
	sendCtx, lost := context.WithCancel(ru.net)
	k := ru.keep(ids, lost)
	defer func() {
		k.close()
		lost()
		for _, id := range ids {
			if rerr := ru.r.st.ReleaseLease(ru.net, acc, id, ru.r.holder); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()

	// Read each document's current status; resend only what is still rejected.
	var send []int
	var raws [][]byte
	for _, i := range leased {
		res := &ru.report.Results[i]
		until, err := ru.openUntil(res.Doc.ID)
		if err != nil {
			return busy, err
		}
		if !until.IsZero() {
			// An emission announced before (by a holder that may have died with it in
			// flight) may still land: no read can say otherwise before its deadline.
			ru.until[res.Doc.ID] = until
			busy = append(busy, i)
			k.release(res.Doc.ID)
			continue
		}
		readAt := ru.r.c.clock.Now()
		it, rerr := ru.read(res.Doc.ID)
		if rerr != nil {
			res.Outcome, res.Detail = OutcomeUnknown, "status read failed, not resent: "+model.Line(rerr.Error(), 300)
			ru.finished(i)
			continue
		}
		until, err = ru.settle(res.Doc.ID, it, readAt, "verify")
		if err != nil {
			return busy, err
		}
		ru.adopt(res, it)
		switch {
		case it.Doc.Status == model.StatusAccepted:
			res.Outcome, res.ByPolicy, res.Detail = OutcomeAccepted, true, "already accepted: not resent"
		case !until.IsZero():
			// An open emission's deadline passed between the look and the read: the
			// read may still predate it.
			ru.until[res.Doc.ID] = until
			busy = append(busy, i)
			k.release(res.Doc.ID)
			continue
		case it.Doc.Status == model.StatusRejected:
			resend, forced, reason := ru.r.policy(it.Doc, it.Problem)
			if !resend {
				res.Outcome, res.ByPolicy, res.Detail = OutcomeSkipped, true, reason
				break
			}
			res.Forced = res.Forced || forced
			send, raws = append(send, i), append(raws, it.Raw)
			continue
		case it.Doc.Status == model.StatusPending, it.Doc.Status == model.StatusUnknown:
			res.Outcome, res.Detail = OutcomeUnknown, "status "+string(it.Doc.Status)+": not resent"
		default:
			res.Outcome, res.ByPolicy, res.Detail = OutcomeSkipped, true, "status "+string(it.Doc.Status)+": not rejected, not resent"
		}
		k.release(res.Doc.ID)
		ru.finished(i)
	}
	if len(send) == 0 {
		return busy, nil
	}
	if ctx.Err() != nil {
		ru.cancelled(send)
		return busy, nil
	}
	return busy, ru.send(send, raws, sendCtx, k)
}

// adopt takes what a read said of a document into its result.
func (ru *run) adopt(res *DocResult, it Item) {
	d := docWith(it)
	d.Attempts = res.Doc.Attempts
	if d.Number == "" {
		d.Number = res.Doc.Number
	}
	res.Doc = d
	res.Verdict = ""
	if it.Problem != nil {
		res.Verdict = it.Problem.Verdict
	}
}

// send writes the intents, makes the one resend request, and settles each document.
func (ru *run) send(idx []int, raws [][]byte, sendCtx context.Context, k *keeper) error {
	acc := ru.r.c.account
	ids := make([]string, len(idx))
	for n, i := range idx {
		ids[n] = ru.report.Results[i].Doc.ID
	}
	rs, err := ru.r.d.resend(ru.r.c, ids, raws)
	if err != nil {
		for _, i := range idx {
			res := &ru.report.Results[i]
			res.Outcome, res.Detail = OutcomeRejected, "not resent: "+model.Line(err.Error(), 300)
			ru.finished(i)
		}
		return nil
	}
	summary := rs.Method + " " + rs.Path
	if rs.Body != nil && len(rs.Body) <= 512 && !ru.r.d.summaryHidden {
		summary += " " + string(rs.Body)
	}
	intents := map[string]int64{}
	var sent []int
	for _, i := range idx {
		res := &ru.report.Results[i]
		kind := "retry"
		if res.Forced {
			kind = "force-retry"
		}
		// The request may leave at once: the deadline counts from now, and moves as it
		// leaves (see fence).
		id, err := ru.r.st.RecordIntent(ru.net, store.Intent{Account: acc.Name, DocID: res.Doc.ID, Holder: ru.r.holder,
			Kind: kind, Request: summary, Deadline: ru.r.c.clock.Now().Add(acc.Timeout)})
		if errors.Is(err, store.ErrLeaseNotHeld) {
			res.Outcome, res.Detail = OutcomeSkipped, "lost its lease to another holder: not resent"
			ru.finished(i)
			continue
		}
		if err != nil {
			return err
		}
		intents[res.Doc.ID] = id
		res.Doc.Attempts++
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return nil
	}
	if len(sent) < len(idx) {
		raw := make(map[int][]byte, len(idx))
		for n, i := range idx {
			raw[i] = raws[n]
		}
		ids, raws = nil, nil
		for _, i := range sent {
			ids, raws = append(ids, ru.report.Results[i].Doc.ID), append(raws, raw[i])
		}
		if rs, err = ru.r.d.resend(ru.r.c, ids, raws); err != nil {
			return err
		}
	}
	// The request's context is cancelled only when a lease is lost before it leaves
	// (see keeper), never by the operator.
	ledger := make([]int64, 0, len(sent))
	for _, i := range sent {
		ledger = append(ledger, intents[ru.report.Results[i].Doc.ID])
	}
	res, sendErr := ru.resend(withGate(sendCtx, ru.fence(ids, ledger)), rs)
	answers := ru.answers(res, sendErr, ids)
	for _, i := range sent {
		r := &ru.report.Results[i]
		r.Sent = true
		a := answers[r.Doc.ID]
		if err := ru.conclude(r, a, intents[r.Doc.ID], res, sendErr); err != nil {
			return err
		}
		k.release(r.Doc.ID)
		ru.finished(i)
	}
	return nil
}

// fence renews the leases of ids as the resend is about to leave, and fails when one is
// no longer held: the keeper renews them only every quarter of the TTL, and a process
// that stalled past the TTL (while the governor held its request, or anywhere) may have
// lost a document to another holder that is emitting it now. It then moves the deadline
// of the intents to the request's own timeout from now, on disk before it leaves: whoever
// finds them open later knows how long the emission may still land.
func (ru *run) fence(ids []string, intents []int64) func() error {
	return func() error {
		for _, id := range ids {
			ok, err := ru.r.st.AcquireLease(ru.net, ru.r.c.account.Name, id, ru.r.holder, ru.r.opt.LeaseTTL)
			if err != nil {
				return fmt.Errorf("lease on %s: %w", model.Line(id, 80), err)
			}
			if !ok {
				return fmt.Errorf("lease on %s: %w", model.Line(id, 80), store.ErrLeaseNotHeld)
			}
		}
		dl := ru.r.c.clock.Now().Add(ru.r.c.account.Timeout)
		if err := ru.r.st.ExtendIntents(ru.net, intents, dl); err != nil {
			return err
		}
		for _, in := range intents {
			ru.deadlines[in] = dl
		}
		return nil
	}
}

// resend sends the request; a 429 (refused before anything was done) is sent again
// once the governor's hold ends, at most twice.
func (ru *run) resend(ctx context.Context, rs Resend) (*Result, error) {
	for try := 0; ; try++ {
		res, err := ru.do(ctx, rs.Method, rs.Path, rs.Body)
		if err != nil || res.Response.Status != http.StatusTooManyRequests || try == 2 {
			return res, err
		}
	}
}

// answer is what a resend's answer says of one document.
type answer struct {
	item     *Item          // its state, when the answer describes it
	problem  *model.Problem // the answer's problem, when it describes none
	needRead bool           // the outcome is unknown: read the status
	reached  bool           // the request may have reached the server
}

// answers reads a resend's answer for each document.
func (ru *run) answers(res *Result, err error, ids []string) map[string]answer {
	out := make(map[string]answer, len(ids))
	if err != nil {
		var se *SendError
		reached := !errors.As(err, &se) || se.MayHaveReached
		for _, id := range ids {
			out[id] = answer{needRead: reached, reached: reached}
		}
		return out
	}
	r := res.Response
	var items map[string]Item
	if ru.r.d.resent != nil {
		items = ru.r.d.resent(ru.r.d, ru.r.c.account.Name, r, ids)
	} else if it, ok := ru.r.d.item(ru.r.c.account.Name, r.Body); ok && len(ids) == 1 && strings.EqualFold(it.Doc.ID, ids[0]) {
		items = map[string]Item{ids[0]: it}
	}
	p := ru.r.d.decode(r)
	for _, id := range ids {
		a := answer{reached: true}
		if it, ok := items[id]; ok {
			a.item = &it
			switch it.Doc.Status {
			case model.StatusAccepted:
			case model.StatusRejected:
				a.needRead = it.Problem == nil || it.Problem.Verdict == model.VerdictVerify || it.Problem.Verdict == model.VerdictReconcile
			default:
				a.needRead = true
			}
		} else {
			a.problem = &p
			switch p.Verdict {
			case model.VerdictFix, model.VerdictEscalate, model.VerdictReauth:
				a.needRead = r.Status >= 500
			default:
				a.needRead = true // 5xx, processing, duplicate, an answer naming no document
			}
		}
		out[id] = a
	}
	return out
}

// conclude records how one sent document ended: the emission event, a status read when
// the answer left the outcome unknown, the settled intent, the action.
func (ru *run) conclude(res *DocResult, a answer, intent int64, sent *Result, sendErr error) error {
	acc := ru.r.c.account
	var raw []byte
	if sent != nil {
		raw = sent.Response.Body
	}
	emit := Item{Doc: res.Doc, Raw: raw}
	emit.Doc.Status = model.StatusUnknown
	switch {
	case a.item != nil:
		emit.Doc.Status, emit.Problem = a.item.Doc.Status, a.item.Problem
	case a.problem != nil:
		emit.Problem = a.problem
		if !a.needRead {
			emit.Doc.Status = model.StatusRejected
		}
	}
	ops := []store.Op{store.AddEvent(ru.event(emit, "emit"))}
	final, known := emit, !a.needRead
	detail := ""
	if sendErr != nil {
		detail = model.Line(sendErr.Error(), 300)
		if !a.reached {
			final.Doc.Status, known = model.StatusRejected, true
			final.Problem = nil
		}
	}
	if a.needRead {
		readAt := ru.r.c.clock.Now()
		it, err := ru.read(res.Doc.ID)
		switch dl := ru.sentDeadline(intent); {
		case err != nil:
			detail = strings.TrimSpace(detail + "; status read failed: " + model.Line(err.Error(), 300))
		case evidence(it.Doc.Status, readAt, dl):
			final, known = it, true
			ops = append(ops, store.AddEvent(ru.event(it, "verify")))
		default:
			ops = append(ops, store.AddEvent(ru.event(it, "verify")))
			if decided(it.Doc.Status) {
				detail = strings.TrimSpace(detail + "; read " + string(it.Doc.Status) + " before the emission could have landed: left open until " +
					dl.Format("15:04:05") + ", when a read settles it")
			}
		}
	}
	if final.Doc.Number == "" {
		final.Doc.Number = res.Doc.Number
	}
	res.Outcome = OutcomeUnknown
	if known {
		res.Outcome = outcomeOf(final.Doc.Status)
		attempts := res.Doc.Attempts
		ru.adoptFinal(res, final)
		res.Doc.Attempts = attempts
		if err := ru.r.st.SettleIntent(ru.net, intent, string(res.Outcome), final.Problem, final.Raw); err != nil {
			return err
		}
		ops = append(ops, store.UpsertDocument(docWith(final), final.Raw, time.Time{}))
	}
	res.Detail = ru.detail(res, a, detail)
	kind := "retry"
	if res.Forced {
		kind = "force-retry"
	}
	reason := ""
	if res.Forced {
		reason = ru.r.opt.Reason
	}
	ops = append(ops, store.RecordAction(model.Action{Operator: ru.r.opt.Operator, Fingerprint: ru.r.opt.Fingerprint,
		Kind: kind, Account: acc.Name, DocID: res.Doc.ID, Reason: reason, Outcome: string(res.Outcome)}))
	return ru.r.st.Enqueue(ru.net, ops...)
}

// sentDeadline is the deadline this run's intent got as its request left; for one whose
// request never passed the gate, when it would be had it left now.
func (ru *run) sentDeadline(intent int64) time.Time {
	if dl, ok := ru.deadlines[intent]; ok {
		return dl
	}
	return ru.r.c.clock.Now().Add(ru.r.c.account.Timeout)
}

func (ru *run) adoptFinal(res *DocResult, it Item) {
	if it.Problem == nil && it.Doc.Status == model.StatusRejected {
		it.Problem = res.Doc.Problem
	}
	ru.adopt(res, it)
}

// detail says in one line how a sent document ended.
func (ru *run) detail(res *DocResult, a answer, extra string) string {
	var s string
	switch res.Outcome {
	case OutcomeAccepted:
		s = "resent: accepted"
	case OutcomeRejected:
		s = "resent: rejected again"
		if !a.reached {
			s = "not sent: the request did not reach the server"
		}
	default:
		s = "resent: outcome unknown, read the status before anything else"
	}
	if a.needRead && a.reached {
		s += " (status read after the answer)"
	}
	if p := res.Doc.Problem; p != nil && res.Outcome != OutcomeAccepted {
		code := p.Code
		if code == "" {
			code = string(p.Class)
		}
		s += ": " + code + " " + model.Line(p.Message, 160)
	}
	if extra != "" {
		s += "; " + extra
	}
	return model.Line(s, 400)
}

// waitLeased comes back to documents another holder leased: it waits (up to LeaseWait)
// for each lease, and for the deadline of the open emission that keeps a document
// waiting, then works on the document as usual, which starts with reading its status.
// What stays leased is skipped. An interrupted wait loses nothing: the deadline is in
// the store.
func (ru *run) waitLeased(ctx context.Context, idx []int) error {
	deadline := ru.r.c.clock.Now().Add(ru.r.opt.LeaseWait)
	for len(idx) > 0 {
		if ctx.Err() != nil {
			ru.cancelled(idx)
			return nil
		}
		var still []int
		for _, i := range idx {
			busy, err := ru.group(ctx, []int{i})
			if err != nil {
				return err
			}
			still = append(still, busy...)
		}
		idx = still
		for _, i := range idx {
			if t := ru.until[ru.report.Results[i].Doc.ID]; t.After(deadline) {
				deadline = t
			}
		}
		if len(idx) == 0 || !ru.r.c.clock.Now().Before(deadline) {
			break
		}
		if err := sleep(ctx, ru.r.c.clock, 200*time.Millisecond); err != nil {
			continue
		}
	}
	for _, i := range idx {
		res := &ru.report.Results[i]
		res.Outcome, res.Detail = OutcomeSkipped, "another operator or process holds it: not resent"
		ru.finished(i)
	}
	return nil
}
