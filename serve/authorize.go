package serve

import (
	"context"
	"errors"
	"fmt"

	"emitop/model"
	"emitop/store"
)

// ErrReadOnly is what Authorize returns when a viewer tries to change something.
var ErrReadOnly = errors.New("viewers see everything and change nothing")

// lookKinds are the actions that change nothing anywhere; a viewer may take them. Every
// other kind (retry, force-retry, and any kind added later) needs an operator.
var lookKinds = map[model.ActionKind]bool{
	model.ActionRefresh: true,
}

// Recorder is where the server records what operators did (*store.Store, on either
// engine): Enqueue never waits for the database.
type Recorder interface {
	Enqueue(ctx context.Context, ops ...store.Op) error
}

// Authorize decides whether id may take action a; the dashboard's action path calls it
// before acting. An operator may do anything, a viewer only look. A refusal is recorded as
// an action of id (name and key fingerprint) with the outcome "refused: viewer", and is
// returned as ErrReadOnly; an allowed action is recorded by whoever performs it, with its
// outcome.
func (s *Server) Authorize(ctx context.Context, id Identity, a model.Action) error {
	if !id.ReadOnly() || lookKinds[a.Kind] {
		return nil
	}
	a.Operator, a.Fingerprint = id.Name, id.Fingerprint
	a.Outcome = "refused: " + id.Role
	if err := s.opts.Store.Enqueue(ctx, store.RecordAction(a)); err != nil {
		return fmt.Errorf("record refused %s by %s: %w", a.Kind, id.Name, err)
	}
	return fmt.Errorf("%s by %s: %w", a.Kind, id.Name, ErrReadOnly)
}
