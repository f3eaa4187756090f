package sandbox

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// Span is a stretch of time measured from the sandbox's start. With Every set it repeats:
// From+k·Every until Until+k·Every, for every k ≥ 0.
type Span struct {
	From, Until, Every time.Duration
}

func (s Span) covers(since time.Duration) (bool, time.Duration) {
	if s.Every > 0 && since >= s.From {
		since = s.From + (since-s.From)%s.Every
	}
	if since >= s.From && since < s.Until {
		return true, s.Until - since
	}
	return false, 0
}

// Faults are the troubles an account suffers on demand.
type Faults struct {
	Latency time.Duration // added before every answer
	// TimeoutAfterCommit is the share (0–1) of emission requests that are committed but
	// answered only after TimeoutDelay: the client has given up by then.
	TimeoutAfterCommit float64
	TimeoutDelay       time.Duration // 0 means 35 s
	// ServerErrorAfterCommit is the share (0–1) of emission requests that are committed
	// and then answered with the provider's 500.
	ServerErrorAfterCommit float64
	Maintenance            []Span  // 503 for every request inside a span
	ProductionRate         float64 // requests per second another client spends from the budget
	TokenTTL               time.Duration
	// StatusLag is how long after an emission commits reads and listings still show the
	// document as it was before: a provider whose status lags its commit. An emission
	// during the lag meets the committed state (a duplicate, once accepted).
	StatusLag time.Duration
	// KeyExpired makes a static credential (alegra token, sv-dte or certifactu key) fail
	// with the provider's 401 for an expired key. TokenTTL shortens the life of factus and
	// alforse access tokens (0 keeps the provider's default).
	KeyExpired bool
}

// scenario is how lively a sandbox is: how documents change and which faults it starts with.
type scenario struct {
	step       time.Duration // one logical step: documents change once per step
	initial    int           // documents per account at start
	maxNew     int           // at most this many new documents per step and account
	rejectRate float64       // share of decided documents that are rejected
	observe    float64       // share of accepted documents accepted with observations
	draftRate  float64       // share of new alegra documents that are drafts
	pending    [2]int        // a pending document resolves after this many steps (min, max)
	faults     func(a *account, rng *rand.Rand) Faults
	fixAfter   map[string]time.Duration // the outside cause of rejections goes away then
	extra      bool                     // the dialects' extra accounts join (the demo's)
}

// maxDocs caps an account's documents: churn stops creating new ones beyond it.
const maxDocs = 2000

var scenarios = map[string]scenario{
	"calm": {
		step: 30 * time.Second, initial: 12, maxNew: 1, rejectRate: 0.08, observe: 0.1,
		draftRate: 0.1, pending: [2]int{1, 3},
		faults: func(a *account, rng *rand.Rand) Faults {
			return Faults{Latency: time.Duration(10+rng.IntN(30)) * time.Millisecond}
		},
		fixAfter: map[string]time.Duration{
			"alegra-co": 5 * time.Minute, "sv-main": 5 * time.Minute, "cf-madrid": 5 * time.Minute,
			"factus-bog": 5 * time.Minute, "alforse-main": 5 * time.Minute,
		},
	},
	"demo": {
		step: 5 * time.Second, initial: 20, maxNew: 2, rejectRate: 0.3, observe: 0.15,
		draftRate: 0.15, pending: [2]int{1, 4}, extra: true,
		faults: func(a *account, rng *rand.Rand) Faults {
			f := Faults{
				Latency:                time.Duration(20+rng.IntN(150)) * time.Millisecond,
				TimeoutAfterCommit:     0.03,
				ServerErrorAfterCommit: 0.05,
			}
			switch a.name {
			case "sv-branch":
				f.Maintenance = []Span{{From: 90 * time.Second, Until: 150 * time.Second, Every: 10 * time.Minute}}
			case "cf-madrid", "alegra-mx":
				f.ProductionRate = 0.4 * a.rateShare()
			case "factus-med":
				f.TokenTTL = 2 * time.Minute
			case "alforse-ops":
				f.TokenTTL = time.Minute
			}
			return f
		},
		fixAfter: map[string]time.Duration{
			"alegra-co": time.Minute, "sv-main": 2 * time.Minute, "cf-sevilla": 3 * time.Minute,
			"factus-bog": 2 * time.Minute, "alforse-main": 3 * time.Minute,
		},
	},
	"storm": {
		step: 2 * time.Second, initial: 30, maxNew: 3, rejectRate: 0.35, observe: 0.2,
		draftRate: 0.1, pending: [2]int{1, 3},
		faults: func(a *account, rng *rand.Rand) Faults {
			return Faults{
				Latency:                time.Duration(100+rng.IntN(600)) * time.Millisecond,
				TimeoutAfterCommit:     0.12,
				ServerErrorAfterCommit: 0.15,
				ProductionRate:         0.85 * a.rateShare(),
				TokenTTL:               time.Minute,
				Maintenance: []Span{{
					From:  time.Duration(30+rng.IntN(120)) * time.Second,
					Until: time.Duration(180+rng.IntN(60)) * time.Second, Every: 5 * time.Minute,
				}},
			}
		},
		fixAfter: map[string]time.Duration{"alegra-co": 5 * time.Minute, "factus-bog": 5 * time.Minute},
	},
}

// state is a document's lifecycle in the sandbox.
type state uint8

const (
	draft state = iota
	pending
	accepted
	rejected
)

var stateNames = [...]string{"draft", "pending", "accepted", "rejected"}

func (s state) String() string { return stateNames[s] }

// cause is where a rejection's cause lies, which decides what a resend gets.
type cause uint8

const (
	causeData      cause = iota // the document's data is wrong: rejected again
	causeOutside                // certificate, plan, enablement: accepted once fixed
	causeTransient              // the authority was down: accepted on resend
	causeDuplicate              // the authority already holds it: the same answer again
)

// reason is one rejection a provider (or its authority) gives.
type reason struct {
	code    string
	message string
	cause   cause
}

// doc is one document of an account; its provider renders it in its own shape.
type doc struct {
	id, number string
	n          int
	created    time.Time
	amount     int64 // cents
	state      state
	observed   bool
	why        *reason // rejected: why; pending: the rejection it will get (nil: accepted)
	resolveAt  int     // pending: the step it resolves at
	attempts   int
	changed    time.Time
	shown      *doc            // while its status lags (Faults.StatusLag): the document as reads show it
	shownUntil time.Time       // when reads show it as it is
	cufe       string          // alegra, factus: the CUFE it gets once accepted
	ref        string          // factus reference_code
	dte        json.RawMessage // sv-dte: the DTE as last emitted
	invoiceNo  string          // alforse: the invoice attached
	due        time.Time       // alforse: the payment's due date
}

// hash64 is FNV-1a of s: how account names enter seeds.
func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// seeded is a PCG stream that depends only on the sandbox seed, a name and a salt.
func seeded(seed uint64, name string, salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, hash64(name)^(salt*0x9E3779B97F4A7C15)))
}

// Salts keep the streams of one account apart.
const (
	saltChurn = iota + 1
	saltFaults
	saltCreds
	saltEmitFault = 1 << 32
	saltOutcome   = 1 << 33
)

// pickReason draws a reason of the dialect's catalog, never a duplicate one (an authority
// answers duplicate only for what it already holds).
func pickReason(cat []reason, rng *rand.Rand) *reason {
	for {
		r := &cat[rng.IntN(len(cat))]
		if r.cause != causeDuplicate {
			return r
		}
	}
}

// firstOf is the first reason of the catalog with the cause, or nil.
func firstOf(cat []reason, c cause) *reason {
	for i := range cat {
		if cat[i].cause == c {
			return &cat[i]
		}
	}
	return nil
}

// seed fills an account with its initial documents. The first ones are rejected for each
// cause the provider knows, so every kind of rejection is on show from the start.
func (a *account) seed(sc scenario, now time.Time) {
	var forced []*reason
	for _, c := range []cause{causeData, causeOutside, causeDuplicate, causeTransient} {
		if r := firstOf(a.d.catalog, c); r != nil {
			forced = append(forced, r)
		}
	}
	for i := range sc.initial {
		d := a.newDoc(now)
		switch {
		case i < len(forced):
			d.state, d.why = rejected, forced[i]
		default:
			a.fate(d, sc, true)
		}
	}
}

// newDoc adds a document numbered from the churn sequence.
func (a *account) newDoc(now time.Time) *doc {
	n := a.seq
	a.seq++
	d := &doc{n: n, created: now, changed: now, amount: int64(1000+a.churn.IntN(500000)) * 10}
	a.d.ident(a, d, a.churn)
	a.add(d)
	return d
}

func (a *account) add(d *doc) {
	a.docs = append(a.docs, d)
	a.byID[d.id] = d
	if d.ref != "" {
		a.byRef[d.ref] = d
	}
	if d.number != d.id {
		a.byNumber[d.number] = d
	}
}

// remove drops a document from the account (deleted at the provider).
func (a *account) remove(d *doc) {
	for i, x := range a.docs {
		if x == d {
			a.docs = append(a.docs[:i], a.docs[i+1:]...)
			break
		}
	}
	delete(a.byID, d.id)
	if d.ref != "" && a.byRef[d.ref] == d {
		delete(a.byRef, d.ref)
	}
	if a.byNumber[d.number] == d {
		delete(a.byNumber, d.number)
	}
}

// fate decides, from the churn stream, what a new document is and will become.
func (a *account) fate(d *doc, sc scenario, initial bool) {
	rng := a.churn
	if a.d.drafts && rng.Float64() < sc.draftRate {
		d.state = draft
		return
	}
	var why *reason
	if rng.Float64() < sc.rejectRate {
		why = pickReason(a.d.catalog, rng)
	}
	observed := why == nil && rng.Float64() < sc.observe
	if a.d.pending && (!initial || rng.IntN(3) == 0) {
		d.state, d.why, d.observed = pending, why, observed
		d.resolveAt = a.step + sc.pending[0] + rng.IntN(sc.pending[1]-sc.pending[0]+1)
		return
	}
	d.observed = observed
	if why != nil {
		d.state, d.why = rejected, why
	} else {
		d.state = accepted
	}
}

// advance applies every logical step up to now: pending documents resolve and new ones
// arrive. Steps draw only on the churn stream, so step k always does the same thing.
func (a *account) advance(now time.Time) {
	target := int(now.Sub(a.s.start) / a.s.sc.step)
	for a.step < target {
		a.step++
		at := a.s.start.Add(time.Duration(a.step) * a.s.sc.step)
		for _, d := range a.docs {
			if d.state == pending && d.resolveAt <= a.step {
				d.changed = at
				if d.why != nil {
					d.state = rejected
				} else {
					d.state = accepted
				}
			}
		}
		k := a.churn.IntN(a.s.sc.maxNew + 1)
		for range k {
			if len(a.docs) >= maxDocs {
				break
			}
			a.fate(a.newDoc(at), a.s.sc, false)
		}
	}
}

// outcome is what one emission of a document came to.
type outcome uint8

const (
	outAccepted   outcome = iota
	outRejected           // rejected (again); d.why says why
	outDuplicate          // the provider already holds it as accepted
	outProcessing         // it is still pending
)

// emit records one emission of d and decides its outcome (see decide). With a StatusLag
// fault, reads show d as it was until the lag has passed.
func (a *account) emit(d *doc, now time.Time) outcome {
	before := *a.view(d, now)
	out := a.decide(d, now)
	if lag := a.faults.StatusLag; lag > 0 && (d.state != before.state || d.why != before.why) {
		before.shown = nil
		d.shown, d.shownUntil = &before, now.Add(lag)
	}
	return out
}

// view is d as the provider's reads show it at now: as it was before its last emission
// while the status lags, else as it is. nil for nil.
func (a *account) view(d *doc, now time.Time) *doc {
	if d != nil && d.shown != nil && now.Before(d.shownUntil) {
		return d.shown
	}
	return d
}

// decide records one emission of d and decides its outcome: a duplicate for an accepted
// document, the same rejection for a data or duplicate cause, acceptance for a transient
// cause or for an outside cause once the account is fixed. A draft (or a new document)
// gets a fresh outcome drawn from the seed, the account and the document.
func (a *account) decide(d *doc, now time.Time) outcome {
	a.stats.Emissions++
	d.attempts++
	a.stats.Attempts[d.id] = d.attempts
	switch d.state {
	case accepted:
		a.stats.DuplicateEmissions++
		return outDuplicate
	case pending:
		if !a.d.awaits {
			return outProcessing
		}
		if d.why == nil {
			return a.accept(d, now)
		}
		d.state, d.changed = rejected, now
		return outRejected
	case rejected:
		switch d.why.cause {
		case causeOutside:
			if a.fixed(now) {
				return a.accept(d, now)
			}
		case causeTransient:
			return a.accept(d, now)
		}
		d.changed = now
		return outRejected
	}
	rng := seeded(a.s.seed, a.name, saltOutcome|uint64(d.n)<<8|uint64(d.attempts&0xff))
	if rng.Float64() < a.s.sc.rejectRate {
		why := pickReason(a.d.catalog, rng)
		if why.cause == causeOutside && a.fixed(now) || why.cause == causeTransient {
			return a.accept(d, now)
		}
		d.state, d.why, d.changed = rejected, why, now
		return outRejected
	}
	d.observed = rng.Float64() < a.s.sc.observe
	return a.accept(d, now)
}

func (a *account) accept(d *doc, now time.Time) outcome {
	d.state, d.why, d.changed = accepted, nil, now
	return outAccepted
}

// fixed reports whether the outside cause of the account's rejections is gone.
func (a *account) fixed(now time.Time) bool {
	return a.fixedNow || a.fixAfter > 0 && now.Sub(a.s.start) >= a.fixAfter
}

// emitFault is what goes wrong after an emission request commits.
type emitFault uint8

const (
	faultNone emitFault = iota
	faultLate
	faultServer
)

// nextEmitFault decides the fault of the account's next emission request from the seed,
// the account and the request's index, never from timing.
func (a *account) nextEmitFault() emitFault {
	k := a.emitRequests
	a.emitRequests++
	if a.faults.TimeoutAfterCommit <= 0 && a.faults.ServerErrorAfterCommit <= 0 {
		return faultNone
	}
	u := seeded(a.s.seed, a.name, saltEmitFault|uint64(k)).Float64()
	switch {
	case u < a.faults.TimeoutAfterCommit:
		return faultLate
	case u < a.faults.TimeoutAfterCommit+a.faults.ServerErrorAfterCommit:
		return faultServer
	}
	return faultNone
}

// hexOf draws n hex digits.
func hexOf(rng *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rng.IntN(16)]
	}
	return string(b)
}

// uuid4 draws an upper- or lower-case UUID v4.
func uuid4(rng *rand.Rand, upper bool) string {
	h := []byte(hexOf(rng, 32))
	h[12] = '4'
	h[16] = "89ab"[rng.IntN(4)]
	s := fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
	if upper {
		return upperASCII(s)
	}
	return s
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// money formats cents as a decimal string.
func money(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }
