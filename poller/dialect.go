package poller

import (
	"context"
	"fmt"
	"strings"

	"emitop/config"
	"emitop/model"
)

// Dialect is one provider's way of speaking, and every fact emitop holds about it: its
// name, the account keys it takes, its documented base URL and rate-limit windows, how
// an account logs in, how its documents are listed, read and sent again, and how its
// answers decode. The rest of emitop asks the dialect and names no provider; adding a
// provider is one dialect file (and its sandbox and fixtures). A Dialect implements
// config.Provider, so that the configuration checks an account the dialect's way.
type Dialect struct {
	name    string
	baseURL string       // documented default; "" when the provider documents none
	keys    []config.Key // the account keys it takes beside the common ones
	// check reports what is wrong with an account's keys taken together; nil when
	// requiring every secret key is all there is to check.
	check func(settings map[string]string, credentials []string) []string
	// windows are the rate-limit windows the provider documents: they pace an account
	// until its first answer states its own (see Governor).
	windows []Limit
	// auth makes the authenticator of an account of the dialect.
	auth func(c *Client) authenticator

	catalog map[string]model.Guidance // by code
	// body decodes a response body. It must accept any bytes without panicking.
	body func(status int, body []byte) finding
	// document reads one document's JSON (a list item or a single read); ok is false
	// when raw holds none. The finding is set when the document's state is a problem.
	document func(raw []byte) (doc model.Document, f finding, ok bool)
	// open lists the account's pending and rejected documents, every page, as raw JSON.
	open func(ctx context.Context, c *Client) ([][]byte, error)
	// readPath is the path of the read of one document by its ID (GET); nil when the
	// provider offers no such read.
	readPath func(c *Client, id string) string
	// resend builds the request that emits documents again, the provider's way, from
	// each one's ID and its JSON as just read (raws[i] nil while planning: the body then
	// says where its content will come from). nil when the provider offers no resend.
	resend func(c *Client, ids []string, raws [][]byte) (Resend, error)
	// noResend says, for a document of the provider, why emitop does not send it again
	// and what the operator can do instead; shown in every plan when resend is nil.
	noResend func(doc model.Document) string
	// clear builds the request that deletes a failed document at the provider, so that
	// the system that made it can send it again, corrected: an operator's explicit,
	// confirmed and recorded act (see Retrier.Clear), never the retry engine's. nil when
	// the provider offers none.
	clear func(c *Client, ids []string, raws [][]byte) (Resend, error)
	// batch is the most documents one resend carries; 0 means one.
	batch int
	// resent reads a resend's answer into the state of each document it names; nil
	// means the answer is the one document itself (or a problem).
	resent func(d *Dialect, account string, r Response, ids []string) map[string]Item
	// summaryHidden says that a resend's body is the document itself (a whole DTE):
	// the intent's summary names the request only.
	summaryHidden bool
}

// Name is the provider's name, as an account's `provider =` spells it.
func (d *Dialect) Name() string { return d.name }

// DefaultBaseURL is the base URL the provider documents; "" when it documents none.
func (d *Dialect) DefaultBaseURL() string { return d.baseURL }

// Keys are the account keys the provider takes beside the common ones.
func (d *Dialect) Keys() []config.Key { return d.keys }

// Windows are the rate-limit windows the provider documents.
func (d *Dialect) Windows() []Limit { return d.windows }

// CheckAccount reports what is wrong with an account's provider keys: every secret key
// the dialect takes is required unless its own check says otherwise.
func (d *Dialect) CheckAccount(settings map[string]string, credentials []string) []string {
	if d.check != nil {
		return d.check(settings, credentials)
	}
	return requireAll(d.name, d.keys, credentials)
}

// requireAll reports every secret key of keys missing from credentials.
func requireAll(provider string, keys []config.Key, credentials []string) []string {
	var need []string
	for _, k := range keys {
		if k.Secret {
			need = append(need, k.Name)
		}
	}
	return requireKeys(provider, need, credentials)
}

// requireKeys reports every key of need missing from have.
func requireKeys(provider string, need, have []string) []string {
	var out []string
	for _, n := range need {
		if !containsString(have, n) {
			out = append(out, fmt.Sprintf("missing credential %s (%s needs %s)", n, provider, strings.Join(need, ", ")))
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// secretKeys are keys that hold credentials; a name ending in "=id" (email=id) is an
// identity: it names the account rather than proving it.
func secretKeys(names ...string) []config.Key {
	keys := make([]config.Key, len(names))
	for i, n := range names {
		name, id := strings.CutSuffix(n, "=id")
		keys[i] = config.Key{Name: name, Secret: true, Identity: id}
	}
	return keys
}

// Dialects is every provider emitop speaks, in the order it lists them. Package main
// hands the table to the configuration; the poller finds an account's dialect in it.
func Dialects() []*Dialect {
	return []*Dialect{alegraDialect, svdteDialect, certifactuDialect, factusDialect, alforseDialect}
}

// Providers is the table of dialects as the configuration takes it.
func Providers() []config.Provider {
	ds := Dialects()
	out := make([]config.Provider, len(ds))
	for i, d := range ds {
		out[i] = d
	}
	return out
}

// DialectNames lists the providers' names, in the table's order.
func DialectNames() []string {
	ds := Dialects()
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.name
	}
	return names
}

// dialectOf is the dialect of provider.
func dialectOf(provider string) (*Dialect, error) {
	for _, d := range Dialects() {
		if d.name == provider {
			return d, nil
		}
	}
	return nil, fmt.Errorf("unknown provider %q (known: %s)", provider, strings.Join(DialectNames(), ", "))
}
