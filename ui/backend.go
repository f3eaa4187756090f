// Package ui is emitop's terminal dashboard: budgets, rejected and pending documents, one
// document's decoded problem, and the event history, as Bubble Tea v2 models.
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
	// WindowSeries returns a window's recent remaining values, oldest first, for sparklines.
	WindowSeries(ctx context.Context, account, window string, n int) ([]int, error)
}

// EventFilter narrows Backend.Events; zero fields do not filter.
type EventFilter struct {
	Account string
	DocID   string
	Since   time.Time
	Limit   int
}

// Options configure one dashboard (one terminal, local or over SSH).
type Options struct {
	Demo     bool             // shows a DEMO badge in the header
	Env      string           // environment badge text, e.g. "prod", "demo"
	Now      func() time.Time // clock; nil means time.Now (tests fix it)
	Operator string           // who is at the keyboard ("local" or an SSH operator's name)
	ReadOnly bool             // a viewer: actions that change things are refused
}
