package poller

import (
	"net/http"
	"strings"

	"emitop/model"
	"emitop/pace"
)

// What the retry engine (package retry) asks of an account's client: the provider's way
// of sending documents again, of reading their answers and of deleting a failed one,
// each built by the account's dialect. The engine decides when; the client knows how.

// Resend is one request that emits documents again (or, built by BuildClear, deletes
// one). It never holds credentials: the Client adds them when it sends.
type Resend struct {
	Method string
	Path   string   // relative to the account's base URL
	Body   []byte   // JSON; nil for none
	IDs    []string // the documents it emits
	// Note says what the body (or the path) will be when it cannot be built before the
	// documents are read (planning); "" once the request is final.
	Note string
	// BodyToCome says, while planning, that the request will carry a body built from the
	// documents as read (Note says what it will be).
	BodyToCome bool
	// Whole says the body is the document itself (a whole DTE): a summary of the request
	// names the request only.
	Whole bool
}

// Summary is the request in one line, as the ledger records it with an intent: the
// method, the path and a short body; never a whole document.
func (rs Resend) Summary() string {
	s := rs.Method + " " + rs.Path
	if rs.Body != nil && len(rs.Body) <= 512 && !rs.Whole {
		s += " " + string(rs.Body)
	}
	return s
}

// Clock is the clock the client and its governor live by.
func (c *Client) Clock() pace.Clock { return c.clock }

// PlannedHeaders are the headers a request of Do or DoFenced carries, as "Name: value"
// with each name as it goes on the wire (canonical) and the credentials' values redacted:
// exactly what a planned request shows. body says whether the request has one (only then
// does it carry a Content-Type).
func (c *Client) PlannedHeaders(body bool) []string {
	var cred credential
	for _, key := range c.auth.headers() {
		cred = append(cred, credHeader{key, "[redacted]"})
	}
	var out []string
	c.headers(body, jsonType, cred, func(key, value string) {
		out = append(out, http.CanonicalHeaderKey(key)+": "+value)
	})
	return out
}

// CanResend reports whether the account's provider offers a resend emitop can make.
func (c *Client) CanResend() bool { return c.d.resend != nil }

// NoResend says, for a document of a provider that offers no resend, why emitop does not
// send it again and what the operator can do instead.
func (c *Client) NoResend(doc model.Document) string { return c.d.noResend(doc) }

// ResendBatch is the most documents one resend carries.
func (c *Client) ResendBatch() int { return max(c.d.batch, 1) }

// BuildResend builds the request that emits documents again, the provider's way, from
// each one's ID and its JSON as just read (raws[i] nil while planning: the request's
// Note then says where its body will come from).
func (c *Client) BuildResend(ids []string, raws [][]byte) (Resend, error) {
	return c.d.resend(c, ids, raws)
}

// ReadPath is the path of the read of one document (GET); "" when the provider offers no
// such read.
func (c *Client) ReadPath(id string) string {
	if c.d.readPath == nil {
		return ""
	}
	return c.d.readPath(c, id)
}

// Resent reads a resend's answer into the state of each document of ids it describes;
// a document it does not describe is absent.
func (c *Client) Resent(r Response, ids []string) map[string]Item {
	if c.d.resent != nil {
		return c.d.resent(c.d, c.account.Name, r, ids)
	}
	if it, ok := c.d.item(c.account.Name, r.Body); ok && len(ids) == 1 && strings.EqualFold(it.Doc.ID, ids[0]) {
		return map[string]Item{ids[0]: it}
	}
	return nil
}

// ListsRejected reports whether the provider lists its rejected documents alone, so that
// one page read confirms many of them still rejected (see RejectedPage).
func (c *Client) ListsRejected() bool { return c.d.rejected != nil }

// RejectedPath is the path of the i-th page (from 0) of the listing of rejected
// documents; "" when the provider has none.
func (c *Client) RejectedPath(i int) string {
	if c.d.rejected == nil {
		return ""
	}
	src := c.d.rejected(c)
	return src.path(src.first + i)
}

// NeedsBody reports whether a resend is built from more than the documents' IDs: from
// what a read of each returns (sv-dte's stored DTE).
func (c *Client) NeedsBody() bool { return c.d.carries != nil }

// Carries reports whether a document's JSON, read or listed, holds what its resend is
// built from: a listed sv-dte DTE does not (its stored DTE comes with a read); for most
// providers the IDs are enough, and any JSON does.
func (c *Client) Carries(raw []byte) bool { return c.d.carries == nil || c.d.carries(raw) }

// Emission names the emission a document's JSON describes, so that JSON read earlier is
// known to still describe the document while a listing shows the same emission; "" when
// the provider's JSON names none.
func (c *Client) Emission(raw []byte) string {
	if c.d.emission == nil {
		return ""
	}
	return c.d.emission(raw)
}

// Decode is the problem a response of the account's provider describes.
func (c *Client) Decode(r Response) model.Problem { return c.d.decode(r) }

// CanClear reports whether the provider offers the deletion of a failed document
// (Factus: a bill the DIAN rejected).
func (c *Client) CanClear() bool { return c.d.clear != nil }

// BuildClear builds the request that deletes a failed document at the provider, from its
// ID and its JSON as just read (nil while planning).
func (c *Client) BuildClear(ids []string, raws [][]byte) (Resend, error) {
	return c.d.clear(c, ids, raws)
}

// Document is the document an Item describes, its problem attached.
func (it Item) Document() model.Document {
	d := it.Doc
	d.Problem = it.Problem
	return d
}
