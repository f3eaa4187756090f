package model

import "time"

// Event is one fact in a document's history: a status change, a decoded problem, or the
// outcome of an emission, with the raw response that taught it (capped, for audit).
type Event struct {
	ID       int64
	At       time.Time
	Account  string
	Provider string
	DocID    string
	Number   string
	Status   Status
	Problem  *Problem // nil when the event carries no problem
	Kind     string   // "seen", "status", "problem", "emit", "verify", ...
	Raw      []byte   // the raw response, unsanitized, at most MaxRaw bytes
}

// MaxRaw caps the raw response kept with an event.
const MaxRaw = 64 << 10

// Action is one thing an operator did, or tried to do, and what came of it.
type Action struct {
	ID          int64
	At          time.Time
	Operator    string // who; "local" for the terminal user
	Fingerprint string // the SSH key's fingerprint; "" on a local terminal
	Kind        ActionKind
	Account     string
	DocID       string
	Reason      string
	Outcome     string
}
