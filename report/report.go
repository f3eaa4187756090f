// Package report builds the shift report (`emitop report`): what happened to each account
// since a time, from the history alone, for a chat message or a ticket. Per account: its
// changes of health, the windows that ran out, the documents rejected by class and
// verdict, the retries (who, what, how it ended, forced with which reason) and the
// problems still open; then the busiest hours.
package report

import (
	"cmp"
	"context"
	"slices"
	"time"

	"emitop/model"
	"emitop/store"
)

// Report is one shift.
type Report struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Accounts []Account `json:"accounts"`
	Busiest  []Hour    `json:"busiest_hours"` // at most maxHours, busiest first
}

// Account is what happened to one account. Health changes, window runs and retries are
// the most recent ones (maxListed, maxRuns per window), with how many there were in all:
// a report stays readable, and bounded, after a night of flapping.
type Account struct {
	Name          string         `json:"name"`
	Provider      string         `json:"provider"`
	Health        []HealthChange `json:"health_changes"`
	HealthTotal   int            `json:"health_changes_total"`
	WindowRuns    []WindowRun    `json:"windows_ran_out"`
	Rejections    []Rejections   `json:"rejections"`
	Retries       []Retry        `json:"retries"`
	RetriesTotal  int            `json:"retries_total"`
	Open          []Open         `json:"open_problems"`
	changesListed int            // health changes read, before the ones a restart repeated were dropped
}

// Quiet reports whether nothing happened to the account and nothing is open.
func (a Account) Quiet() bool {
	return len(a.Health)+len(a.WindowRuns)+len(a.Rejections)+len(a.Retries)+len(a.Open) == 0
}

// HealthChange is one change of the account's health.
type HealthChange struct {
	At    time.Time    `json:"at"`
	From  model.Health `json:"from"`
	To    model.Health `json:"to"`
	Class model.Class  `json:"class,omitempty"` // of the failed poll's problem
	Code  string       `json:"code,omitempty"`
}

// WindowRun is a span during which a window had nothing left.
type WindowRun struct {
	Window string     `json:"window"`
	From   time.Time  `json:"from"`
	Until  *time.Time `json:"until"`             // null while it is still spent
	Runs   int        `json:"window_runs_total"` // how many the window had in the report's span
}

// Rejections counts the documents rejected with one class and verdict.
type Rejections struct {
	Class     model.Class   `json:"class"`
	Verdict   model.Verdict `json:"verdict"`
	Documents int           `json:"documents"`
}

// Retry is one document an operator retried.
type Retry struct {
	At       time.Time `json:"at"`
	Operator string    `json:"operator"`
	Document string    `json:"document"` // its number, else its provider id
	Outcome  string    `json:"outcome"`
	Forced   bool      `json:"forced"`
	Reason   string    `json:"reason,omitempty"` // why it was forced
}

// Open is the documents still open with one class and verdict of problem.
type Open struct {
	Class     model.Class   `json:"class"`
	Verdict   model.Verdict `json:"verdict"`
	Documents int           `json:"documents"`
	Numbers   []string      `json:"numbers"` // the first maxNumbers
}

// Hour is one clock hour's activity.
type Hour struct {
	Start      time.Time `json:"start"`
	Events     int       `json:"document_events"`
	Rejections int       `json:"rejections"`
	Requests   int       `json:"requests"`
}

// Bounds of what one report lists.
const (
	maxHours   = 3
	maxNumbers = 10
	maxListed  = 20    // health changes and retries per account, the most recent
	maxRuns    = 5     // runs per window, the most recent
	maxRows    = 10000 // open documents read
)

// History is what a report reads (*store.Store, on either engine).
type History interface {
	Accounts(ctx context.Context) ([]model.Account, error)
	Documents(ctx context.Context, f store.DocFilter) ([]model.Document, error)
	Counts(ctx context.Context, since time.Time) (map[string]store.ReportCounts, error)
	HealthChanges(ctx context.Context, since time.Time, limit int) ([]store.HealthChange, error)
	WindowRuns(ctx context.Context, since time.Time, keep int) ([]store.WindowRun, error)
	Rejections(ctx context.Context, since time.Time) ([]store.RejectionCount, error)
	Retries(ctx context.Context, since time.Time, limit int) ([]store.Retry, error)
	Hours(ctx context.Context, since time.Time, loc *time.Location) ([]store.Hour, error)
}

// Build reads the report of since up to now from st; its busiest hours are the clock
// hours of loc.
func Build(ctx context.Context, st History, since, now time.Time, loc *time.Location) (Report, error) {
	r := Report{Since: since, Until: now}
	known, err := st.Accounts(ctx)
	if err != nil {
		return r, err
	}
	byName := map[string]*Account{}
	for _, a := range known {
		r.Accounts = append(r.Accounts, Account{Name: a.Name, Provider: a.Provider})
	}
	for i := range r.Accounts {
		byName[r.Accounts[i].Name] = &r.Accounts[i]
	}
	account := func(name string) *Account {
		if a := byName[name]; a != nil {
			return a
		}
		r.Accounts = append(r.Accounts, Account{Name: name})
		for i := range r.Accounts { // the slice may have moved
			byName[r.Accounts[i].Name] = &r.Accounts[i]
		}
		return byName[name]
	}

	counts, err := st.Counts(ctx, since)
	if err != nil {
		return r, err
	}
	changes, err := st.HealthChanges(ctx, since, maxListed)
	if err != nil {
		return r, err
	}
	for _, c := range changes {
		h := HealthChange{At: c.At, From: c.From, To: c.To}
		if c.Problem != nil {
			h.Class, h.Code = c.Problem.Class, c.Problem.Code
		}
		a := account(c.Account)
		a.changesListed++
		a.HealthTotal = counts[c.Account].HealthChanges
		if n := len(a.Health); n > 0 {
			// Each emitop process starts an account as up: after a restart its first
			// change reads "up → …" whatever the account was. The history before it
			// says what it really was, and a change to the same health is none.
			h.From = a.Health[n-1].To
		}
		if h.From != h.To {
			a.Health = append(a.Health, h)
		}
	}
	runs, err := st.WindowRuns(ctx, since, maxRuns)
	if err != nil {
		return r, err
	}
	for _, run := range runs {
		w := WindowRun{Window: run.Window, From: run.From, Runs: run.Runs}
		if !run.Until.IsZero() {
			until := run.Until
			w.Until = &until
		}
		a := account(run.Account)
		a.WindowRuns = append(a.WindowRuns, w)
	}
	rejections, err := st.Rejections(ctx, since)
	if err != nil {
		return r, err
	}
	for _, rc := range rejections {
		a := account(rc.Account)
		a.Rejections = append(a.Rejections, Rejections{Class: rc.Class, Verdict: rc.Verdict, Documents: rc.Documents})
	}
	retries, err := st.Retries(ctx, since, maxListed)
	if err != nil {
		return r, err
	}
	for _, rt := range retries {
		a := account(rt.Account)
		a.RetriesTotal = counts[rt.Account].Retries
		forced := rt.Kind == "force-retry"
		reason := ""
		if forced {
			reason = rt.Reason
		}
		a.Retries = append(a.Retries, Retry{At: rt.At, Operator: rt.Operator, Document: cmp.Or(rt.Number, rt.DocID),
			Outcome: rt.Outcome, Forced: forced, Reason: reason})
	}
	if err := openProblems(ctx, st, account); err != nil {
		return r, err
	}
	hours, err := st.Hours(ctx, since, loc)
	if err != nil {
		return r, err
	}
	for _, h := range hours {
		r.Busiest = append(r.Busiest, Hour{Start: h.Start, Events: h.Events, Rejections: h.Rejections, Requests: h.Requests})
	}
	slices.SortStableFunc(r.Busiest, func(a, b Hour) int {
		return cmp.Or(cmp.Compare(b.Events, a.Events), cmp.Compare(b.Requests, a.Requests), a.Start.Compare(b.Start))
	})
	r.Busiest = r.Busiest[:min(len(r.Busiest), maxHours)]
	slices.SortFunc(r.Accounts, func(a, b Account) int { return cmp.Compare(a.Name, b.Name) })
	return r, nil
}

// openProblems groups the documents still open with a problem by class and verdict.
func openProblems(ctx context.Context, st History, account func(string) *Account) error {
	docs, err := st.Documents(ctx, store.DocFilter{Statuses: []model.Status{model.StatusRejected,
		model.StatusUnknown, model.StatusPending}, Limit: maxRows})
	if err != nil {
		return err
	}
	type key struct {
		account string
		class   model.Class
		verdict model.Verdict
	}
	groups := map[key]*Open{}
	var order []key
	for _, d := range docs {
		if d.Problem == nil || d.Problem.Class == model.ClassOK {
			continue
		}
		k := key{d.Account, d.Problem.Class, d.Problem.Verdict}
		g := groups[k]
		if g == nil {
			g = &Open{Class: k.class, Verdict: k.verdict}
			groups[k] = g
			order = append(order, k)
		}
		g.Documents++
		if len(g.Numbers) < maxNumbers {
			g.Numbers = append(g.Numbers, cmp.Or(d.Number, d.ID))
		}
	}
	slices.SortStableFunc(order, func(a, b key) int { return cmp.Compare(groups[b].Documents, groups[a].Documents) })
	for _, k := range order {
		a := account(k.account)
		a.Open = append(a.Open, *groups[k])
	}
	return nil
}
