// Package retry is the retry engine: it resends an account's rejected documents so that
// none is ever emitted twice and no request goes over the account's budget (the
// invariant is stated below, with the fence that keeps it), and deletes a failed
// document when an operator asks (Clear). It talks to providers only through the
// account's poller.Client, and keeps its leases and intents in the store's ledger.
package retry

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

	"emitop/config"
	"emitop/model"
	"emitop/pace"
	"emitop/poller"
	"emitop/store"
)

// The retry engine resends rejected documents so that none is ever emitted twice: each
// document is leased in the store (no other operator or process works on it meanwhile),
// its status is read from the provider before anything is sent (a read of its own, or a
// page of the provider's listing of rejected documents read after the leases were taken:
// see confirm.go), the intent to emit is on disk before the request leaves, and a send
// whose outcome is unknown (a timeout, a 5xx) is followed by a status read, never by a
// second send. An intent stays open until a read is evidence of how its emission ended: a
// document accepted, or one still rejected when read after the intent's deadline (its
// latest send plus the sender's timeout, on disk with the intent). Before that a read may
// predate the emission, so the document waits: the wait lives in the store, and an
// interrupted or killed run leaves the next one as careful. Everything goes through the
// account's governor as Write requests, so a batch drains at the budget's pace and keeps
// the reserve.

// Target is a document the operator asked to retry, as last known: its problem and
// attempts come from the store or from a listing. Its resend is built from what the
// engine reads before sending; a plan shows where the body will come from.
type Target struct {
	Doc model.Document
}

// Options tune a Retrier.
type Options struct {
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
	// Memory, when set, holds what resends are built from between runs that share it
	// (see Memory); nil: a document whose resend needs its read is read every time.
	Memory *Memory
	// Holding, when set, is asked in the fence before every emission whether this
	// process still holds the account's poll lease (package fleet), and so is the one
	// spending the account's budget: its error keeps the request from leaving.
	Holding func() error
	// OnProgress is called from Run's goroutine; it must not block.
	OnProgress func(model.RetryProgress)
}

// Retrier resends one account's rejected documents.
type Retrier struct {
	c      *poller.Client
	st     Ledger
	acc    config.Account
	clock  pace.Clock // the database's clock once a run has read it (see syncClock)
	opt    Options
	holder string
	// pad is how far this host's reading of the database's clock may be behind it: a
	// deadline written is later by that much, so that a host reading the database's
	// clock exactly never takes an emission for landed too soon.
	pad time.Duration
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
	Clock(ctx context.Context) (time.Time, error)
	Enqueue(ctx context.Context, ops ...store.Op) error
	Flush(ctx context.Context) error
}

// New makes the engine of the account c speaks for, keeping its ledger in st. It
// shares c, and so the account's governor, with whoever else uses c.
func New(c *poller.Client, st Ledger, opt Options) (*Retrier, error) {
	if c == nil || st == nil {
		return nil, errors.New("retry: a client and a store are required")
	}
	if opt.Force && strings.TrimSpace(opt.Reason) == "" {
		return nil, errors.New("retry: forcing a resend requires a reason")
	}
	if opt.Operator == "" {
		opt.Operator = "local"
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = 5 * time.Second
	}
	if opt.LeaseWait <= 0 {
		opt.LeaseWait = opt.LeaseTTL + c.Account().Timeout
	}
	holder := opt.Holder
	if holder == "" {
		host, _ := os.Hostname()
		holder = fmt.Sprintf("%s@%s/%d/%s", opt.Operator, host, os.Getpid(), rand.Text()[:8])
	}
	return &Retrier{c: c, st: st, acc: c.Account(), clock: c.Clock(), opt: opt, holder: holder}, nil
}

// policy decides whether doc, whose last problem is p, is resent: the verdicts
// whose cause lay outside the document are; fix (its data must change first) and
// reconcile (the provider already holds it) only when forced; the rest never.
func (r *Retrier) policy(doc model.Document, p *model.Problem) (resend, forced bool, why model.RetryReason) {
	if !r.c.CanResend() {
		return false, false, model.RetryReason{Kind: model.ReasonProvider, Note: r.c.NoResend(doc)}
	}
	if p == nil {
		return true, false, model.RetryReason{Kind: model.ReasonNoProblem}
	}
	why.Verdict = p.Verdict
	switch p.Verdict {
	case model.VerdictRetry, model.VerdictWait, model.VerdictVerify, model.VerdictEscalate:
		why.Kind = model.ReasonVerdict
		return true, false, why
	case model.VerdictFix, model.VerdictReconcile:
		if r.opt.Force {
			why.Kind = model.ReasonForced
			return true, true, why
		}
		why.Kind = model.ReasonHeld
		return false, false, why
	case model.VerdictReauth:
		why.Kind = model.ReasonReauth
		return false, false, why
	}
	why.Kind = model.ReasonNothing
	return false, false, why
}

// Plan decides, without sending anything, what a batch will do with each target, the
// requests it will make (credentials redacted) and how long it will take at the
// account's current budget.
func (r *Retrier) Plan(targets []Target) model.RetryPlan {
	acc := r.acc
	p := model.RetryPlan{Account: acc.Name, Provider: acc.Provider, Force: r.opt.Force, Reason: r.opt.Reason}
	var resend []int
	var resendIDs []string
	listed := r.listed(targets)
	for _, t := range targets {
		it := model.RetryItem{Doc: t.Doc}
		if t.Doc.Problem != nil {
			it.Verdict = t.Doc.Problem.Verdict
		}
		switch t.Doc.Status {
		case model.StatusAccepted, model.StatusCancelled, model.StatusDraft:
			it.Why = model.RetryReason{Kind: model.ReasonNotRejected, Status: t.Doc.Status}
		default:
			it.Resend, it.Forced, it.Why = r.policy(t.Doc, t.Doc.Problem)
		}
		if it.Resend {
			resend, resendIDs = append(resend, len(p.Items)), append(resendIDs, t.Doc.ID)
			path := r.c.ReadPath(t.Doc.ID)
			if listed[t.Doc.ID] {
				path = r.c.RejectedPath(0)
			}
			it.Requests = append(it.Requests, r.request(poller.Resend{Method: http.MethodGet, Path: path}))
		}
		p.Items = append(p.Items, it)
	}
	for _, group := range chunks(resend, r.c.ResendBatch()) {
		ids := make([]string, len(group))
		raws := make([][]byte, len(group))
		for i, k := range group {
			ids[i] = p.Items[k].Doc.ID
		}
		req := model.PlannedRequest{Method: "?", Body: "<cannot be built: " + model.Line(ids[0], 80) + ">"}
		if rs, err := r.c.BuildResend(ids, raws); err == nil {
			req = r.request(rs)
		} else {
			req.Body = "<" + model.Line(err.Error(), 200) + ">"
		}
		for _, k := range group {
			p.Items[k].Requests = append(p.Items[k].Requests, req)
		}
	}
	p.Requests = r.requests(resendIDs, listed)
	p.ETA = r.c.Governor().DrainTime(p.Requests, 0)
	return p
}

// listed is which of the targets a page of the listing of rejected documents would
// confirm: those the listing can stand for a read of, when two or more can (see confirm).
func (r *Retrier) listed(targets []Target) map[string]bool {
	out := map[string]bool{}
	for _, t := range targets {
		if r.c.ListsRejected() && (!r.c.NeedsBody() || r.opt.Memory.holds(r.acc.Name, t.Doc.ID)) {
			out[t.Doc.ID] = true
		}
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

// requests is how many requests resending the documents ids takes when nothing goes
// wrong: a page of the listing for each set of those listed, a read of each of the
// others, and the resends.
func (r *Retrier) requests(ids []string, listed map[string]bool) int {
	n := 0
	for _, id := range ids {
		if listed[id] {
			n++
		}
	}
	batch := r.c.ResendBatch()
	return (n+confirmSet-1)/confirmSet + len(ids) - n + (len(ids)+batch-1)/batch
}

// request shows one request as it will leave, with exactly the headers the client sends
// (the credentials' values redacted); a body still to be built is shown by its note.
func (r *Retrier) request(rs poller.Resend) model.PlannedRequest {
	req := model.PlannedRequest{Method: rs.Method, URL: r.acc.BaseURL + rs.Path,
		Header: r.c.PlannedHeaders(rs.Body != nil || rs.BodyToCome)}
	if rs.Body != nil {
		req.Body = string(rs.Body)
	}
	if rs.Note != "" {
		req.Body = "<" + rs.Note + ">"
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
	report  *model.RetryReport
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
// provider answered is in the report.
func (r *Retrier) Run(ctx context.Context, p model.RetryPlan) (model.RetryReport, error) {
	if err := r.syncClock(context.WithoutCancel(ctx)); err != nil {
		return model.RetryReport{Account: r.acc.Name}, err
	}
	ru := &run{r: r, net: context.WithoutCancel(ctx), report: &model.RetryReport{Account: r.acc.Name},
		index: map[string]int{}, until: map[string]time.Time{}, deadlines: map[int64]time.Time{}, start: r.clock.Now()}
	var work []int
	for i, it := range p.Items {
		ru.index[it.Doc.ID] = i
		res := model.RetryResult{Doc: it.Doc, Verdict: it.Verdict, Forced: it.Forced}
		if !it.Resend {
			res.Outcome, res.ByPolicy, res.Why, res.Detail = model.OutcomeSkipped, true, it.Why, it.Why.String()
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
	for len(work) > 0 {
		group := work[:min(len(work), ru.setSize(work))]
		work = work[len(group):]
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

// syncClock has the engine keep time by the database's clock, which every process and
// host sharing the store reads alike: the intents' deadlines it writes, the reads it
// compares with them and the deadlines other holders wrote are then on one clock. It
// reads the database's clock once and keeps the offset from this host's; the round
// trip's length, which bounds the offset's error, pads the deadlines it writes.
func (r *Retrier) syncClock(ctx context.Context) error {
	base := r.c.Clock()
	sent := base.Now()
	db, err := r.st.Clock(ctx)
	if err != nil {
		return err
	}
	back := base.Now()
	r.clock, r.pad = shifted{base: base, by: db.Sub(back)}, back.Sub(sent)
	return nil
}

// shifted is a clock offset from another.
type shifted struct {
	base pace.Clock
	by   time.Duration
}

func (s shifted) Now() time.Time { return s.base.Now().Add(s.by) }

func (s shifted) Timer(d time.Duration) (<-chan time.Time, func() bool) { return s.base.Timer(d) }

func (ru *run) finish() model.RetryReport {
	ru.report.Elapsed = ru.r.clock.Now().Sub(ru.start)
	_ = ru.r.st.Flush(ru.net)
	return *ru.report
}

// cancelled marks documents the batch did not reach.
func (ru *run) cancelled(idx []int) {
	ru.report.Cancelled = true
	for _, i := range idx {
		res := &ru.report.Results[i]
		res.Outcome, res.Detail = model.OutcomeSkipped, "cancelled before it was sent"
		ru.finished(i)
	}
}

// finished counts one document as done and reports progress.
func (ru *run) finished(i int) {
	ru.done++
	res := ru.report.Results[i]
	ru.progress(nil, &res)
}

func (ru *run) progress(left []int, res *model.RetryResult) {
	if ru.r.opt.OnProgress == nil {
		return
	}
	pr := model.RetryProgress{Done: ru.done, Total: ru.total, Result: res}
	if len(left) > 0 {
		pr.Current = ru.report.Results[left[0]].Doc.ID
		targets := make([]Target, len(left))
		ids := make([]string, len(left))
		for n, i := range left {
			targets[n].Doc = ru.report.Results[i].Doc
			ids[n] = targets[n].Doc.ID
		}
		pr.ETA = ru.r.c.Governor().DrainTime(ru.r.requests(ids, ru.r.listed(targets)), ru.latency)
	}
	ru.r.opt.OnProgress(pr)
}

// do sends one request through the account's governor as a Write, and through fence
// just before it leaves, counting it.
func (ru *run) do(ctx context.Context, fence func() error, method, path string, body []byte) (*poller.Result, error) {
	res, err := ru.r.c.DoFenced(ctx, pace.Write, fence, method, path, body)
	ru.count(res)
	return res, err
}

func (ru *run) count(res *poller.Result) {
	ru.calls++
	ru.report.Requests++
	if res != nil {
		ru.latency += (res.Latency - ru.latency) / time.Duration(ru.calls)
	}
}

// read reads one document's status as a Write request.
func (ru *run) read(id string) (poller.Item, error) {
	it, err := poller.ReadDocument(ru.net, ru.r.c, pace.Write, id)
	ru.count(nil)
	if err == nil {
		ru.remember(id, it.Raw, it.Raw)
	}
	return it, err
}

// recover settles the account's open intents of documents outside this batch: each was
// an emission whose process died before it learned the outcome. It reads the status;
// it never resends. An intent whose document another live holder leases, or whose
// deadline has not passed, is left alone. The batch's own documents are settled as they
// are read.
func (ru *run) recover() error {
	open, err := ru.r.st.OpenIntents(ru.net, ru.r.acc.Name)
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
		if waiting(byDoc[id], ru.deadline, ru.r.clock.Now()) {
			continue // no read can settle it yet; a later run will
		}
		ok, err := ru.r.st.AcquireLease(ru.net, ru.r.acc.Name, id, ru.r.holder, ru.r.opt.LeaseTTL)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		readAt := ru.r.clock.Now()
		it, rerr := ru.read(id)
		if rerr == nil {
			if _, err := ru.settle(id, it, readAt, "verify"); err != nil {
				return err
			}
		}
		if err := ru.r.st.ReleaseLease(ru.net, ru.r.acc.Name, id, ru.r.holder); err != nil {
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
func (ru *run) settle(id string, it poller.Item, readAt time.Time, kind string) (until time.Time, err error) {
	intents, err := ru.r.st.Intents(ru.net, ru.r.acc.Name, id)
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
	return until, ru.r.st.Enqueue(ru.net, store.AddEvent(ru.event(it, kind)), store.UpsertDocument(it.Document(), it.Raw, time.Time{}))
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
	return in.At.Add(ru.r.acc.Timeout)
}

// openUntil is the latest deadline, not yet passed, of a document's open intents: until
// then any read could predate an emission announced and maybe in flight. Zero when none.
func (ru *run) openUntil(id string) (time.Time, error) {
	intents, err := ru.r.st.Intents(ru.net, ru.r.acc.Name, id)
	if err != nil {
		return time.Time{}, err
	}
	now := ru.r.clock.Now()
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

func (ru *run) event(it poller.Item, kind string) model.Event {
	acc := ru.r.acc
	st := it.Doc.Status
	if st == "" {
		st = model.StatusUnknown
	}
	return model.Event{Account: acc.Name, Provider: acc.Provider, DocID: it.Doc.ID, Number: it.Doc.Number,
		Status: st, Problem: it.Problem, Kind: kind, Raw: it.Raw}
}

func outcomeOf(s model.Status) model.Outcome {
	switch s {
	case model.StatusAccepted:
		return model.OutcomeAccepted
	case model.StatusRejected:
		return model.OutcomeRejected
	}
	return model.OutcomeUnknown
}

// keeper renews a group's leases until stopped; when one is lost (the process stalled
// past its TTL and another holder took the document), it cancels that document's send
// if it has not left yet.
type keeper struct {
	mu      sync.Mutex
	held    map[string]bool
	sending map[string]context.CancelFunc // the send each document rides, while under way
	stop    chan struct{}
	exited  chan struct{}
}

func (ru *run) keep(ids []string) *keeper {
	k := &keeper{held: map[string]bool{}, sending: map[string]context.CancelFunc{}, stop: make(chan struct{}), exited: make(chan struct{})}
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
				ok, err := ru.r.st.AcquireLease(ru.net, ru.r.acc.Name, id, ru.r.holder, ru.r.opt.LeaseTTL)
				if err == nil && !ok {
					k.mu.Lock()
					delete(k.held, id)
					if cancel := k.sending[id]; cancel != nil {
						cancel()
					}
					k.mu.Unlock()
				}
			}
		}
	}()
	return k
}

// send gives the context a send of ids rides: it is cancelled when the lease of one of
// them is lost before the request leaves, never by the operator. done ends it.
func (k *keeper) send(base context.Context, ids []string) (ctx context.Context, done func()) {
	ctx, cancel := context.WithCancel(base)
	k.mu.Lock()
	for _, id := range ids {
		k.sending[id] = cancel
		if !k.held[id] {
			cancel() // lost already
		}
	}
	k.mu.Unlock()
	return ctx, func() {
		k.mu.Lock()
		for _, id := range ids {
			delete(k.sending, id)
		}
		k.mu.Unlock()
		cancel()
	}
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

// group works on a set of documents: the ones one resend request may carry, or, where
// one page of the provider's listing of rejected documents confirms many at once, up to a
// confirmation's worth (see confirm.go). It leases them, reads their status (the page,
// or each document), and resends what is still rejected. It returns the documents
// another holder leases, or whose open emission may still land, for later.
func (ru *run) group(ctx context.Context, idx []int) (busy []int, err error) {
	acc := ru.r.acc.Name
	var leased []int
	for _, i := range idx {
		id := ru.report.Results[i].Doc.ID
		if ru.r.clock.Now().Before(ru.until[id]) {
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
	k := ru.keep(ids)
	defer func() {
		k.close()
		for _, id := range ids {
			if rerr := ru.r.st.ReleaseLease(ru.net, acc, id, ru.r.holder); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()

	// A document with an open emission that may still land is not read: no read can say
	// otherwise before its deadline.
	var look []int
	for _, i := range leased {
		res := &ru.report.Results[i]
		until, err := ru.openUntil(res.Doc.ID)
		if err != nil {
			return busy, err
		}
		if !until.IsZero() {
			ru.until[res.Doc.ID] = until
			busy = append(busy, i)
			k.release(res.Doc.ID)
			continue
		}
		look = append(look, i)
	}
	// Read each document's current status, or take it from one page of the listing of
	// rejected documents (fresh enough to stand for a read), and resend what is still
	// rejected, one resend's worth after the other.
	listed := ru.confirm(look)
	batch := ru.r.c.ResendBatch()
	for n, chunk := range chunks(look, batch) {
		if ctx.Err() != nil {
			ru.cancelled(look[n*batch:])
			break
		}
		var ready []sendable
		for _, i := range chunk {
			seen := listed[i]
			if seen != nil && ru.r.clock.Now().Sub(seen.at) > confirmFresh {
				seen = nil // too old to stand for a read: read it
			}
			sd, wait, err := ru.look(i, seen)
			switch {
			case err != nil:
				return busy, err
			case wait:
				busy = append(busy, i)
				k.release(ru.report.Results[i].Doc.ID)
			case sd != nil:
				ready = append(ready, *sd)
			default:
				k.release(ru.report.Results[i].Doc.ID)
				ru.finished(i)
			}
		}
		if len(ready) == 0 {
			continue
		}
		if err := ru.send(ready, k); err != nil {
			return busy, err
		}
	}
	return busy, nil
}

// sendable is a document whose status says to resend it, and the JSON its resend is
// built from.
type sendable struct {
	i   int
	raw []byte
}

// look reads one leased document's status, or takes what a listing page said of it,
// settles its intents and decides: wait (an open emission's deadline passed between the
// look and the read, which may still predate it), resend (sd), or done, its result set.
func (ru *run) look(i int, seen *listing) (sd *sendable, wait bool, err error) {
	res := &ru.report.Results[i]
	var it poller.Item
	readAt := ru.r.clock.Now()
	if seen != nil {
		it, readAt = seen.item, seen.at
	} else {
		var rerr error
		if it, rerr = ru.read(res.Doc.ID); rerr != nil {
			res.Outcome, res.Detail = model.OutcomeUnknown, "status read failed, not resent: "+model.Line(rerr.Error(), 300)
			return nil, false, nil
		}
	}
	until, err := ru.settle(res.Doc.ID, it, readAt, "verify")
	if err != nil {
		return nil, false, err
	}
	ru.adopt(res, it)
	switch {
	case it.Doc.Status == model.StatusAccepted:
		res.Outcome, res.ByPolicy, res.Detail = model.OutcomeAccepted, true, "already accepted: not resent"
	case !until.IsZero():
		ru.until[res.Doc.ID] = until
		return nil, true, nil
	case it.Doc.Status == model.StatusRejected:
		resend, forced, why := ru.r.policy(it.Doc, it.Problem)
		if !resend {
			res.Outcome, res.ByPolicy, res.Why, res.Detail = model.OutcomeSkipped, true, why, why.String()
			break
		}
		res.Forced = res.Forced || forced
		raw := it.Raw
		if seen != nil {
			raw = seen.body
		}
		return &sendable{i: i, raw: raw}, false, nil
	case it.Doc.Status == model.StatusPending, it.Doc.Status == model.StatusUnknown:
		res.Outcome, res.Detail = model.OutcomeUnknown, "status "+string(it.Doc.Status)+": not resent"
	default:
		res.Outcome, res.ByPolicy, res.Detail = model.OutcomeSkipped, true, "status "+string(it.Doc.Status)+": not rejected, not resent"
	}
	return nil, false, nil
}

// adopt takes what a read said of a document into its result.
func (ru *run) adopt(res *model.RetryResult, it poller.Item) {
	d := it.Document()
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
func (ru *run) send(docs []sendable, k *keeper) error {
	acc := ru.r.acc
	idx := make([]int, len(docs))
	ids := make([]string, len(docs))
	raws := make([][]byte, len(docs))
	for n, sd := range docs {
		idx[n], ids[n], raws[n] = sd.i, ru.report.Results[sd.i].Doc.ID, sd.raw
	}
	rs, err := ru.r.c.BuildResend(ids, raws)
	if err != nil {
		for _, i := range idx {
			res := &ru.report.Results[i]
			res.Outcome, res.Detail = model.OutcomeRejected, "not resent: "+model.Line(err.Error(), 300)
			ru.finished(i)
		}
		return nil
	}
	summary := rs.Summary()
	intents := map[string]int64{}
	var sent []int
	for _, i := range idx {
		res := &ru.report.Results[i]
		// The request may leave at once: the deadline counts from now, and moves as it
		// leaves (see fence).
		id, err := ru.r.st.RecordIntent(ru.net, store.Intent{Account: acc.Name, DocID: res.Doc.ID, Holder: ru.r.holder,
			Kind: string(model.RetryAction(res.Forced)), Request: summary, Deadline: ru.r.clock.Now().Add(acc.Timeout + ru.r.pad)})
		if errors.Is(err, store.ErrLeaseNotHeld) {
			res.Outcome, res.Detail = model.OutcomeSkipped, "lost its lease to another holder: not resent"
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
		if rs, err = ru.r.c.BuildResend(ids, raws); err != nil {
			return err
		}
	}
	// The request's context is cancelled only when a lease is lost before it leaves
	// (see keeper), never by the operator.
	ledger := make([]int64, 0, len(sent))
	for _, i := range sent {
		ledger = append(ledger, intents[ru.report.Results[i].Doc.ID])
	}
	sendCtx, done := k.send(ru.net, ids)
	res, sendErr := ru.resend(sendCtx, rs, ru.fence(ids, ledger))
	done()
	answers := ru.answers(res, sendErr, ids)
	body := make(map[int][]byte, len(docs))
	for _, sd := range docs {
		body[sd.i] = sd.raw
	}
	for _, i := range sent {
		r := &ru.report.Results[i]
		r.Sent = true
		a := answers[r.Doc.ID]
		if err := ru.conclude(r, a, intents[r.Doc.ID], res, sendErr); err != nil {
			return err
		}
		if a.item != nil && !a.needRead {
			// The provider holds what was sent, answered as a.item says.
			ru.remember(r.Doc.ID, body[i], a.item.Raw)
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
// finds them open later knows how long the emission may still land. First of all, with
// Options.Holding, it checks that this process still holds the account's poll lease: one
// that lost it may no longer spend the account's budget.
func (ru *run) fence(ids []string, intents []int64) func() error {
	return func() error {
		if ru.r.opt.Holding != nil {
			if err := ru.r.opt.Holding(); err != nil {
				return err
			}
		}
		for _, id := range ids {
			ok, err := ru.r.st.AcquireLease(ru.net, ru.r.acc.Name, id, ru.r.holder, ru.r.opt.LeaseTTL)
			if err != nil {
				return fmt.Errorf("lease on %s: %w", model.Line(id, 80), err)
			}
			if !ok {
				return fmt.Errorf("lease on %s: %w", model.Line(id, 80), store.ErrLeaseNotHeld)
			}
		}
		dl := ru.r.clock.Now().Add(ru.r.acc.Timeout + ru.r.pad)
		if err := ru.r.st.ExtendIntents(ru.net, intents, dl); err != nil {
			return err
		}
		for _, in := range intents {
			ru.deadlines[in] = dl
		}
		return nil
	}
}

// resend sends the request, through fence each time; a 429 (refused before anything was
// done) is sent again once the governor's hold ends, at most twice.
func (ru *run) resend(ctx context.Context, rs poller.Resend, fence func() error) (*poller.Result, error) {
	for try := 0; ; try++ {
		res, err := ru.do(ctx, fence, rs.Method, rs.Path, rs.Body)
		if err != nil || res.Response.Status != http.StatusTooManyRequests || try == 2 {
			return res, err
		}
	}
}

// answer is what a resend's answer says of one document.
type answer struct {
	item     *poller.Item   // its state, when the answer describes it
	problem  *model.Problem // the answer's problem, when it describes none
	needRead bool           // the outcome is unknown: read the status
	reached  bool           // the request may have reached the server
}

// answers reads a resend's answer for each document.
func (ru *run) answers(res *poller.Result, err error, ids []string) map[string]answer {
	out := make(map[string]answer, len(ids))
	if err != nil {
		var se *poller.SendError
		reached := !errors.As(err, &se) || se.MayHaveReached
		for _, id := range ids {
			out[id] = answer{needRead: reached, reached: reached}
		}
		return out
	}
	r := res.Response
	items := ru.r.c.Resent(r, ids)
	p := ru.r.c.Decode(r)
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
func (ru *run) conclude(res *model.RetryResult, a answer, intent int64, sent *poller.Result, sendErr error) error {
	acc := ru.r.acc
	var raw []byte
	if sent != nil {
		raw = sent.Response.Body
	}
	emit := poller.Item{Doc: res.Doc, Raw: raw}
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
		readAt := ru.r.clock.Now()
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
	res.Outcome = model.OutcomeUnknown
	if known {
		res.Outcome = outcomeOf(final.Doc.Status)
		attempts := res.Doc.Attempts
		ru.adoptFinal(res, final)
		res.Doc.Attempts = attempts
		if err := ru.r.st.SettleIntent(ru.net, intent, string(res.Outcome), final.Problem, final.Raw); err != nil {
			return err
		}
		ops = append(ops, store.UpsertDocument(final.Document(), final.Raw, time.Time{}))
	}
	res.Detail = ru.detail(res, a, detail)
	reason := ""
	if res.Forced {
		reason = ru.r.opt.Reason
	}
	ops = append(ops, store.RecordAction(model.Action{Operator: ru.r.opt.Operator, Fingerprint: ru.r.opt.Fingerprint,
		Kind: model.RetryAction(res.Forced), Account: acc.Name, DocID: res.Doc.ID, Reason: reason, Outcome: string(res.Outcome)}))
	return ru.r.st.Enqueue(ru.net, ops...)
}

// sentDeadline is the deadline this run's intent got as its request left; for one whose
// request never passed the fence, when it would be had it left now.
func (ru *run) sentDeadline(intent int64) time.Time {
	if dl, ok := ru.deadlines[intent]; ok {
		return dl
	}
	return ru.r.clock.Now().Add(ru.r.acc.Timeout)
}

func (ru *run) adoptFinal(res *model.RetryResult, it poller.Item) {
	if it.Problem == nil && it.Doc.Status == model.StatusRejected {
		it.Problem = res.Doc.Problem
	}
	ru.adopt(res, it)
}

// detail says in one line how a sent document ended.
func (ru *run) detail(res *model.RetryResult, a answer, extra string) string {
	var s string
	switch res.Outcome {
	case model.OutcomeAccepted:
		s = "resent: accepted"
	case model.OutcomeRejected:
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
	if p := res.Doc.Problem; p != nil && res.Outcome != model.OutcomeAccepted {
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
	deadline := ru.r.clock.Now().Add(ru.r.opt.LeaseWait)
	for len(idx) > 0 {
		if ctx.Err() != nil {
			ru.cancelled(idx)
			return nil
		}
		var still []int
		for rest := idx; len(rest) > 0; {
			set := rest[:min(len(rest), ru.setSize(rest))]
			rest = rest[len(set):]
			busy, err := ru.group(ctx, set)
			if err != nil {
				return err
			}
			still = append(still, busy...)
		}
		idx = still
		now := ru.r.clock.Now()
		wake := now.Add(200 * time.Millisecond) // a lease another holder keeps is looked at again then
		for _, i := range idx {
			t := ru.until[ru.report.Results[i].Doc.ID]
			if t.After(deadline) {
				deadline = t
			}
			if t.After(now) && t.Before(wake) {
				wake = t
			}
		}
		if len(idx) == 0 || !now.Before(deadline) {
			break
		}
		if err := pace.Sleep(ctx, ru.r.clock, wake.Sub(now)); err != nil {
			continue
		}
	}
	for _, i := range idx {
		res := &ru.report.Results[i]
		res.Outcome, res.Detail = model.OutcomeSkipped, "another operator or process holds it: not resent"
		ru.finished(i)
	}
	return nil
}
