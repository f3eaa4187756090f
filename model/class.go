// Package model is emitop's domain: accounts, rate-limit windows, documents and the
// problems decoded from provider responses. It does no I/O.
package model

import "fmt"

// Class says what went wrong with a provider call, in one closed vocabulary shared by
// every provider dialect (see PROVIDERS.md, "Unified vocabulary").
type Class string

// The classes. The set is closed: a decoder that cannot place a response uses ClassUnknown.
const (
	ClassOK          Class = "ok"
	ClassValidation  Class = "validation"
	ClassAuth        Class = "auth"
	ClassPlan        Class = "plan"
	ClassPermission  Class = "permission"
	ClassCertificate Class = "certificate"
	ClassNotFound    Class = "not_found"
	ClassMethod      Class = "method"
	ClassConflict    Class = "conflict"
	ClassDuplicate   Class = "duplicate"
	ClassProcessing  Class = "processing"
	ClassRateLimited Class = "rate_limited"
	ClassRejected    Class = "rejected"
	ClassUpstream    Class = "upstream"
	ClassServer      Class = "server"
	ClassUnavailable Class = "unavailable"
	ClassUnknown     Class = "unknown"
)

// Classes lists every class in the order of PROVIDERS.md.
var Classes = []Class{
	ClassOK, ClassValidation, ClassAuth, ClassPlan, ClassPermission, ClassCertificate,
	ClassNotFound, ClassMethod, ClassConflict, ClassDuplicate, ClassProcessing,
	ClassRateLimited, ClassRejected, ClassUpstream, ClassServer, ClassUnavailable, ClassUnknown,
}

// Valid reports whether c is one of Classes.
func (c Class) Valid() bool {
	for _, k := range Classes {
		if c == k {
			return true
		}
	}
	return false
}

// ParseClass returns the class named s, or an error naming s.
func ParseClass(s string) (Class, error) {
	if c := Class(s); c.Valid() {
		return c, nil
	}
	return "", fmt.Errorf("unknown class %q", s)
}

// ClassForStatus is the class an HTTP status means when the body says nothing more.
func ClassForStatus(status int) Class {
	switch {
	case status >= 200 && status < 300:
		return ClassOK
	case status == 400 || status == 422:
		return ClassValidation
	case status == 401:
		return ClassAuth
	case status == 402:
		return ClassPlan
	case status == 403:
		return ClassPermission
	case status == 404 || status == 410:
		return ClassNotFound
	case status == 405:
		return ClassMethod
	case status == 409:
		return ClassConflict
	case status == 429:
		return ClassRateLimited
	case status == 502 || status == 504:
		return ClassUpstream
	case status == 503:
		return ClassUnavailable
	case status >= 500 && status < 600:
		return ClassServer
	}
	return ClassUnknown
}
