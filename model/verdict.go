package model

import "strings"

// Verdict says what the operator, or the retry engine, may do next about a Problem.
type Verdict string

// The verdicts, a closed set (PROVIDERS.md, "Unified vocabulary").
const (
	VerdictNone      Verdict = "none"      // nothing to do
	VerdictRetry     Verdict = "retry"     // transient and repeating cannot duplicate anything
	VerdictWait      Verdict = "wait"      // repeat the same request after the wait
	VerdictVerify    Verdict = "verify"    // a write may have landed: read status before any resend
	VerdictFix       Verdict = "fix"       // change the data, then resend
	VerdictReauth    Verdict = "reauth"    // log in again, then repeat
	VerdictEscalate  Verdict = "escalate"  // needs someone with authority
	VerdictReconcile Verdict = "reconcile" // the provider already has it: never resend the same number
)

// Verdicts lists every verdict in the order of PROVIDERS.md.
var Verdicts = []Verdict{
	VerdictNone, VerdictRetry, VerdictWait, VerdictVerify, VerdictFix, VerdictReauth,
	VerdictEscalate, VerdictReconcile,
}

// Valid reports whether v is one of Verdicts.
func (v Verdict) Valid() bool {
	for _, k := range Verdicts {
		if v == k {
			return true
		}
	}
	return false
}

// IsWrite reports whether an HTTP method may change state on the server. An unknown
// (empty) method counts as a write: the safe assumption for a request that might emit.
func IsWrite(method string) bool {
	switch strings.ToUpper(method) {
	case "GET", "HEAD", "OPTIONS":
		return false
	}
	return true
}

// VerdictFor is the verdict a class carries when nothing more specific is known. The
// method decides the transient classes: a 5xx on a read is retried, on a write (or an
// unknown method) the document's status must be read first. hasWait says whether the
// response said how long to wait.
func VerdictFor(c Class, method string, hasWait bool) Verdict {
	switch c {
	case ClassOK:
		return VerdictNone
	case ClassValidation, ClassNotFound, ClassMethod, ClassConflict, ClassRejected:
		return VerdictFix
	case ClassAuth:
		return VerdictReauth
	case ClassPlan, ClassPermission, ClassCertificate:
		return VerdictEscalate
	case ClassDuplicate:
		return VerdictReconcile
	case ClassProcessing:
		return VerdictVerify
	case ClassRateLimited:
		return VerdictWait
	case ClassUpstream, ClassServer, ClassUnavailable, ClassUnknown:
		if IsWrite(method) {
			return VerdictVerify
		}
		if hasWait {
			return VerdictWait
		}
		return VerdictRetry
	}
	return VerdictVerify
}
