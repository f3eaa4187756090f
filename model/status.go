package model

// Status is a document's state, unified across providers.
type Status string

// The document states (PROVIDERS.md, "document status").
const (
	StatusDraft     Status = "draft"
	StatusPending   Status = "pending"  // sent, awaiting the authority
	StatusAccepted  Status = "accepted" // with or without observations
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
	StatusUnknown   Status = "unknown" // outcome uncertain
)

// Statuses lists every document status.
var Statuses = []Status{
	StatusDraft, StatusPending, StatusAccepted, StatusRejected, StatusCancelled, StatusUnknown,
}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool {
	for _, k := range Statuses {
		if s == k {
			return true
		}
	}
	return false
}
