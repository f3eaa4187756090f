package model

import (
	"encoding/json"
	"time"
)

// The retry vocabulary: what the retry engine (package retry) plans and reports, and what
// the dashboard and the commands show of it. It is declared here once; each face words it
// its own way.

// Outcome is how a document's retry, or its deletion, ended.
type Outcome string

// The outcomes of a retry, and of a deletion.
const (
	OutcomeAccepted Outcome = "accepted"
	OutcomeRejected Outcome = "rejected"
	OutcomeSkipped  Outcome = "skipped"
	OutcomeUnknown  Outcome = "unknown" // the emission may or may not have landed
	OutcomeCleared  Outcome = "cleared" // deleted at its provider (emitop clear)
)

// Outcomes are a retry's outcomes in the order its summaries count them.
var Outcomes = []Outcome{OutcomeAccepted, OutcomeRejected, OutcomeSkipped, OutcomeUnknown}

// ActionKind is what an operator did, as the action log records it.
type ActionKind string

// The actions emitop records.
const (
	ActionRetry      ActionKind = "retry"
	ActionForceRetry ActionKind = "force-retry" // resent past a fix or reconcile verdict, with a reason
	ActionClear      ActionKind = "clear"       // a failed document deleted at its provider
	ActionRefresh    ActionKind = "refresh"     // a poll asked for now: it changes nothing
)

// RetryAction is the kind of a retry, forced or not.
func RetryAction(forced bool) ActionKind {
	if forced {
		return ActionForceRetry
	}
	return ActionRetry
}

// ReasonKind is the rule the retry engine's decision about a document followed.
type ReasonKind int

// The engine's reasons to resend a document, or to skip it.
const (
	ReasonNotRejected ReasonKind = iota + 1 // its status is not rejected
	ReasonProvider                          // its provider offers no resend emitop can make (Note says why)
	ReasonNoProblem                         // no problem is recorded: its status decides
	ReasonVerdict                           // its verdict's cause lay outside the document
	ReasonForced                            // forced past a fix or reconcile verdict
	ReasonHeld                              // fix or reconcile, not forced: the operator may force it
	ReasonReauth                            // the account's credentials come first
	ReasonNothing                           // a verdict that calls for no resend
)

// RetryReason is why the engine will resend or skip a document: a value, so that each face
// says how its operator acts on it (a flag on the command line, a key on the dashboard).
type RetryReason struct {
	Kind    ReasonKind
	Status  Status  // ReasonNotRejected: the document's status
	Verdict Verdict // the verdict reasons: the last problem's verdict
	Note    string  // ReasonProvider: the provider's dialect's own words
}

// String is the reason as a fact, the same for every face.
func (r RetryReason) String() string {
	v := string(r.Verdict)
	switch r.Kind {
	case ReasonNotRejected:
		return "status " + string(r.Status) + ": not rejected, nothing to resend"
	case ReasonProvider:
		return r.Note
	case ReasonNoProblem:
		return "no problem recorded: read the status, then resend if still rejected"
	case ReasonVerdict:
		return "verdict " + v + ": read the status, then resend if still rejected"
	case ReasonForced:
		return "forced past verdict " + v + " (" + heldBecause(r.Verdict) + "): read the status, then resend if still rejected"
	case ReasonHeld:
		return "verdict " + v + ": " + heldBecause(r.Verdict)
	case ReasonReauth:
		return "verdict reauth: fix the account's credentials first"
	case ReasonNothing:
		return "verdict " + v + ": nothing to resend"
	}
	return ""
}

// Forcible reports whether the operator may resend the document anyway, forcing it with a
// reason: a face says how.
func (r RetryReason) Forcible() bool { return r.Kind == ReasonHeld }

// heldBecause is why a verdict of fix or reconcile holds a resend back.
func heldBecause(v Verdict) string {
	if v == VerdictReconcile {
		return "the provider already holds it"
	}
	return "the data must change first"
}

// PlannedRequest is one request a retry will make, as an operator may see it: the
// credentials' values are redacted.
type PlannedRequest struct {
	Method string
	URL    string
	Header []string // "X-API-Key: [redacted]"
	Body   string   // the JSON body, a description in angle brackets, or ""
}

// RetryItem is what a retry will do with one document.
type RetryItem struct {
	Doc      Document
	Verdict  Verdict // of its last problem; "" when none is known
	Resend   bool    // its status is read, then it is resent if still rejected
	Forced   bool    // resent only because the operator forced it
	Why      RetryReason
	Requests []PlannedRequest // the status read and the resend; none when skipped
}

// RetryPlan is a batch of retries decided before anything is sent: one account's, or, in
// the dashboard, every account's the operator marked, each item naming its account.
type RetryPlan struct {
	Account  string // the account, when the plan is one account's; "" for several
	Provider string
	Items    []RetryItem
	Force    bool
	Reason   string // why it is forced; recorded with each forced document
	// Operator and Fingerprint say who asked, for the action log.
	Operator    string
	Fingerprint string
	Requests    int           // requests the batch makes when nothing goes wrong
	ETA         time.Duration // how long they take at the accounts' current budgets
}

// Resends is how many documents the plan resends (if still rejected when read).
func (p RetryPlan) Resends() int {
	n := 0
	for _, it := range p.Items {
		if it.Resend {
			n++
		}
	}
	return n
}

// RetryResult is how one document's retry ended.
type RetryResult struct {
	Doc      Document // as it ended: status and last problem
	Outcome  Outcome
	ByPolicy bool    // skipped by the policy (verdict, status, provider), not by chance
	Verdict  Verdict // of the last problem; "" when none
	// Why is the reason a document the policy skipped was skipped for; zero otherwise.
	Why    RetryReason
	Detail string // what happened, one line, sanitized: what the action log records
	Sent   bool   // an emission request left for it
	Forced bool
}

// RetryReport is what a batch did.
type RetryReport struct {
	Account   string        // the account, when the batch was one account's
	Results   []RetryResult // in the plan's order
	Requests  int           // requests made: reads and resends
	Elapsed   time.Duration
	Cancelled bool
}

// OK reports whether every document ended accepted or was skipped by policy.
func (r RetryReport) OK() bool {
	for _, res := range r.Results {
		if res.Outcome != OutcomeAccepted && !(res.Outcome == OutcomeSkipped && res.ByPolicy) {
			return false
		}
	}
	return true
}

// Count is how many documents ended with outcome o.
func (r RetryReport) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// RetryProgress is reported once at the start of a batch and after each document.
type RetryProgress struct {
	Done, Total int
	Current     string        // the document worked on next; "" when none
	ETA         time.Duration // of what is left
	Result      *RetryResult  // the document just finished; nil in the first report
}

type plannedRequestJSON struct {
	Method  string   `json:"method"`
	URL     string   `json:"url"`
	Headers []string `json:"headers"`
	Body    string   `json:"body,omitempty"`
}

// MarshalJSON writes the keys of `emitop retry --dry-run -o json`'s requests.
func (r PlannedRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(plannedRequestJSON{Method: r.Method, URL: r.URL, Headers: r.Header, Body: r.Body})
}

type retryItemJSON struct {
	ID          string           `json:"id"`
	Number      string           `json:"number"`
	Status      Status           `json:"status"`
	Verdict     Verdict          `json:"verdict"`
	Attempts    int              `json:"attempts"`
	LastProblem *Problem         `json:"last_problem"`
	Action      string           `json:"action"` // "resend" or "skip"
	Forced      bool             `json:"forced"`
	Reason      string           `json:"reason"`
	Requests    []PlannedRequest `json:"requests"`
}

// MarshalJSON writes the keys of `emitop retry --dry-run -o json`'s documents; the reason
// is the fact (RetryReason.String), and requests is never null.
func (it RetryItem) MarshalJSON() ([]byte, error) {
	out := retryItemJSON{ID: it.Doc.ID, Number: it.Doc.Number, Status: it.Doc.Status, Verdict: it.Verdict,
		Attempts: it.Doc.Attempts, LastProblem: it.Doc.Problem, Action: "skip", Forced: it.Forced,
		Reason: it.Why.String(), Requests: it.Requests}
	if it.Resend {
		out.Action = "resend"
	}
	if out.Requests == nil {
		out.Requests = []PlannedRequest{}
	}
	return json.Marshal(out)
}

type retryResultJSON struct {
	ID       string  `json:"id"`
	Number   string  `json:"number"`
	Outcome  Outcome `json:"outcome"`
	Verdict  Verdict `json:"verdict"`
	Detail   string  `json:"detail"`
	Sent     bool    `json:"sent"`
	Attempts int     `json:"attempts"`
	ByPolicy bool    `json:"by_policy"` // skipped by the policy, not by chance
}

// MarshalJSON writes the keys of `emitop retry -o json`'s documents.
func (r RetryResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(retryResultJSON{ID: r.Doc.ID, Number: r.Doc.Number, Outcome: r.Outcome, Verdict: r.Verdict,
		Detail: r.Detail, Sent: r.Sent, Attempts: r.Doc.Attempts, ByPolicy: r.ByPolicy})
}
