// Package ui is emitop's terminal dashboard: the accounts worst first, one account in full,
// the rejected and pending documents, one document's decoded problem, and the event
// history, as Bubble Tea v2 models.
package ui

import (
	"context"
	"time"

	"emitop/model"
)

// Backend is everything the dashboard needs from the outside; every call may block on I/O,
// so the model only calls it inside tea.Cmds.
type Backend interface {
	// Subscribe returns a latest-wins channel of snapshots (the poller never blocks on it)
	// and a function that ends the subscription.
	Subscribe() (snapshots <-chan model.Snapshot, cancel func())
	// Refresh asks for a poll now; it returns at once.
	Refresh()
	// DocumentEvents returns a document's events, newest first; Event.Raw holds the raw response.
	DocumentEvents(ctx context.Context, account, docID string, limit int) ([]model.Event, error)
	// Events returns the event timeline for the history screen, newest first.
	Events(ctx context.Context, f EventFilter) ([]model.Event, error)
	// WindowSeries returns a window's recent remaining values, oldest first, for sparklines,
	// as of asOf: the account's last poll in the snapshot the dashboard shows. Dashboards
	// showing the same snapshot ask the same (account, window, asOf, n), so a backend
	// serving many of them may answer them all with one read.
	WindowSeries(ctx context.Context, account, window string, asOf time.Time, n int) ([]int, error)
	// Requests returns an account's request log since a time, newest first, at most limit:
	// the account view's recent requests and health timeline.
	Requests(ctx context.Context, account string, since time.Time, limit int) ([]Request, error)
	// PlanRetry decides, sending nothing, what resending documents would do: per document,
	// resend or skip and why, the requests (credentials redacted) and how long the batch
	// takes at the current budgets.
	PlanRetry(ctx context.Context, req RetryRequest) (model.RetryPlan, error)
	// RunRetry carries out a plan, calling progress (which must not block) after each
	// document. Cancelling ctx stops the batch before the next document: one already under
	// way finishes and is recorded. It asks for a poll at the end, so the next snapshot
	// shows the documents' new states.
	RunRetry(ctx context.Context, plan model.RetryPlan, progress func(model.RetryProgress)) (model.RetryReport, error)
}

// EventFilter narrows Backend.Events; zero fields do not filter.
type EventFilter struct {
	Account string
	DocID   string
	Since   time.Time
	Limit   int
}

// Request is one request emitop made to a provider, as the request log keeps it.
type Request struct {
	At      time.Time
	Method  string
	Path    string // without the query
	Status  int    // 0 when no response came
	Latency time.Duration
	Class   model.Class
}

// Failed reports whether a request tells of trouble with the account rather than with one
// document: no answer, a server error, refused credentials, a rate limit.
func (r Request) Failed() bool {
	return r.Status == 0 || r.Status >= 500 || r.Status == 401 || r.Status == 403 || r.Status == 429
}

// Options configure one dashboard (one terminal, local or over SSH).
type Options struct {
	Demo        bool             // shows a DEMO badge in the header
	Env         string           // environment badge text, e.g. "prod", "demo"
	Now         func() time.Time // clock; nil means time.Now (tests fix it)
	Operator    string           // who is at the keyboard ("local" or an SSH operator's name)
	Fingerprint string           // the operator's SSH key fingerprint; "" on a local terminal
	ReadOnly    bool             // a viewer: actions that change things are refused
	Location    *time.Location   // the zone every time is shown in; nil means the local zone
	Bell        bool             // ring the terminal's bell once each time an account's health worsens
	// Store names where history and leases live ("this host", "PostgreSQL db:5432/emitop"),
	// shown in the header when there is room; "" shows nothing.
	Store string
	// Authorize is asked before an action that changes something (a retry) is taken; an
	// error refuses it, and the dashboard shows the error on one line. Whoever supplies it
	// records refusals (the SSH server does); nil allows everything.
	Authorize func(ctx context.Context, a model.Action) error
	// Triage is where the dashboard opens (triage.go); zero: the dashboard as usual.
	Triage Triage
}

// RetryRequest asks for a retry plan: the documents as the dashboard shows them, and who
// asks, for the action log.
type RetryRequest struct {
	Docs        []model.Document
	Force       bool   // resend documents whose verdict is fix or reconcile too
	Reason      string // why; required with Force, recorded
	Operator    string
	Fingerprint string
}
