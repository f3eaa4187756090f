package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"emitop/model"
	"emitop/pace"
)

// Item is one document as a provider listed or returned it.
type Item struct {
	Doc     model.Document
	Problem *model.Problem // decoded from the document's state; nil when it carries none
	Raw     []byte         // the document's JSON as the provider sent it
}

// ProblemError is a provider call that answered with a problem instead of what was asked.
type ProblemError struct {
	Method, Path string
	Problem      model.Problem
	Response     Response
}

// Error is one line: the call, the status, the class, the provider's code and any wait.
func (e *ProblemError) Error() string {
	p := e.Problem
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, p.Status, p.Class)
	if p.Code != "" {
		s += " " + p.Code
	}
	if p.HasWait {
		s += fmt.Sprintf(" (wait %ds)", model.CeilSeconds(p.Wait))
	}
	return s
}

// MaxIDLen bounds a document's id. An id is data: the store keeps a document by it and the
// provider's paths take it, so it is never sanitized or cut (screens and logs shape it
// where they show it); a longer one is absurd, and its document is left out, and said.
const MaxIDLen = 256

// ErrNoRead is returned by ReadDocument for a provider that has no single-document read.
var ErrNoRead = errors.New("the provider offers no read of a single document")

// needsOperator reports the states an operator watches: sent and waiting (pending),
// refused (rejected), or of uncertain outcome (unknown). Drafts were never sent;
// accepted and cancelled documents need nothing more.
func needsOperator(s model.Status) bool {
	return s == model.StatusPending || s == model.StatusRejected || s == model.StatusUnknown
}

// OpenDocuments lists every pending and rejected document of the client's account, and
// those whose outcome is unknown. A listing longer than emitop keeps (see ListingCut)
// returns what it listed up to the cut, with the *ListingCut as its error.
func OpenDocuments(ctx context.Context, c *Client, kind pace.Kind) ([]Item, error) {
	d := c.d
	raws, err := list(ctx, c, kind, d.open(c))
	var cut *ListingCut
	if err != nil && !errors.As(err, &cut) {
		return nil, err
	}
	items := make([]Item, 0, len(raws))
	seen := make(map[string]bool, len(raws))
	absurd := 0
	memo := c.listed.begin(len(raws))
	defer c.listed.end(memo)
	for _, raw := range raws {
		it, ok := memo.item(d, c.account.Name, raw)
		if !ok || seen[it.Doc.ID] || !needsOperator(it.Doc.Status) {
			continue
		}
		if len(it.Doc.ID) > MaxIDLen {
			absurd++
			continue
		}
		seen[it.Doc.ID] = true
		items = append(items, it)
	}
	if absurd > 0 {
		if cut == nil {
			cut = &ListingCut{Account: c.account.Name, Kept: len(items)}
		}
		cut.Absurd = absurd
	}
	if cut != nil {
		return items, cut
	}
	return items, nil
}

// A listing answered 429 or 503 with a stated wait is asked again by OpenDocumentsWaiting
// once the wait is over, at most listingWaits times, and only for a wait up to
// maxListingWait (one longer is an outage to report, not to sit through).
const (
	listingWaits   = 3
	maxListingWait = 5 * time.Minute
)

// OpenDocumentsWaiting is OpenDocuments for a caller that would rather wait than fail: a
// listing the provider refused for now (429, or 503 for maintenance) with a stated wait is
// asked again once that wait is over. waiting is told of each wait first. It returns the
// refusal when the wait is longer than maxListingWait or the provider keeps refusing.
func OpenDocumentsWaiting(ctx context.Context, c *Client, kind pace.Kind, waiting func(time.Duration, error)) ([]Item, error) {
	for try := 0; ; try++ {
		items, err := OpenDocuments(ctx, c, kind)
		var pe *ProblemError
		if try == listingWaits || !errors.As(err, &pe) || !pe.Problem.HasWait || pe.Problem.Wait > maxListingWait ||
			pe.Problem.Status != http.StatusTooManyRequests && pe.Problem.Status != http.StatusServiceUnavailable {
			return items, err
		}
		if waiting != nil {
			waiting(pe.Problem.Wait, err)
		}
		if err := pace.Sleep(ctx, c.clock, pe.Problem.Wait); err != nil {
			return nil, err
		}
	}
}

// ErrNoRejectedListing is returned by RejectedPage for a provider that lists its rejected
// documents only among others.
var ErrNoRejectedListing = errors.New("the provider offers no listing of its rejected documents alone")

// RejectedPage reads the i-th page (from 0) of the account's listing of rejected
// documents, as a request of kind: the documents on it, and whether more pages follow.
func RejectedPage(ctx context.Context, c *Client, kind pace.Kind, i int) ([]Item, bool, error) {
	d := c.d
	if d.rejected == nil {
		return nil, false, ErrNoRejectedListing
	}
	src := d.rejected(c)
	path := src.path(src.first + i)
	body, err := getJSON(ctx, c, kind, path)
	if err != nil {
		return nil, false, err
	}
	raws, more, err := src.split(body, src.first+i)
	if err != nil {
		return nil, false, fmt.Errorf("%s: GET %s: %w", c.account.Name, stripQuery(path), err)
	}
	items := make([]Item, 0, len(raws))
	for _, raw := range raws {
		if it, ok := d.item(c.account.Name, raw); ok && len(it.Doc.ID) <= MaxIDLen {
			items = append(items, it)
		}
	}
	return items, more && len(raws) > 0, nil
}

// ReadDocument reads one document of the client's account by its ID.
func ReadDocument(ctx context.Context, c *Client, kind pace.Kind, id string) (Item, error) {
	d := c.d
	if d.readPath == nil {
		return Item{}, ErrNoRead
	}
	if len(id) > MaxIDLen {
		return Item{}, fmt.Errorf("%s: document %s: an id of %d bytes is longer than any provider's (%d)", c.account.Name, model.Line(id, 80), len(id), MaxIDLen)
	}
	raw, err := getJSON(ctx, c, kind, d.readPath(c, id))
	if err != nil {
		return Item{}, err
	}
	it, ok := d.item(c.account.Name, raw)
	if !ok {
		return Item{}, fmt.Errorf("%s: document %s: the answer holds no document", c.account.Name, model.Line(id, 80))
	}
	if it.Doc.ID != id {
		// A misrouted path must not let another document's status decide a resend.
		return Item{}, fmt.Errorf("%s: document %s: the answer is about document %s", c.account.Name, model.Line(id, 80), it.Doc.ID)
	}
	return it, nil
}

// item turns one document's JSON into an Item of account.
func (d *Dialect) item(account string, raw []byte) (Item, bool) {
	doc, f, ok := d.document(raw)
	if !ok {
		return Item{}, false
	}
	doc.Account, doc.Provider = account, d.name
	it := Item{Doc: doc, Raw: raw}
	if f.class != "" && f.class != model.ClassOK || f.code != "" && doc.Status == model.StatusRejected {
		p := d.finish(Response{}, f)
		it.Problem = &p
	}
	return it, true
}

// decoded remembers the documents of a client's last listing, decoded, by their JSON. A
// poll lists every open document each time and most are as they were; decoding them again
// was an eighth of the poller's CPU at 10,000 accounts (pprof). A document is taken from
// it only when its JSON is byte for byte the one decoded. It holds only the last
// listing's documents, each with its own copy of its JSON (a slice of the page would keep
// the whole page alive for as long as the document stays unchanged), and at most
// maxRemembered bytes of it: what a provider lists beyond that is decoded at every poll,
// as before, and not kept between polls.
type decoded struct {
	mu   sync.Mutex
	seed maphash.Seed
	last map[uint64]Item
}

// maxRemembered bounds the JSON one client's memo keeps: a few hundred documents, more
// than most accounts have open (the sandbox's have 1 to 5 KiB).
const maxRemembered = 256 << 10

func newDecoded() *decoded { return &decoded{seed: maphash.MakeSeed()} }

// listingMemo is one listing's use of decoded: the last listing's documents by the hash
// of their JSON, this one's as they are found, and the bytes it may still keep.
type listingMemo struct {
	seed       maphash.Seed
	last, next map[uint64]Item
	room       int
}

// begin takes the last listing's documents for a listing of n. Two listings of one
// client at once each take what is there; the later end wins, and the other's documents
// are decoded again next time.
func (m *decoded) begin(n int) *listingMemo {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := &listingMemo{seed: m.seed, last: m.last, next: make(map[uint64]Item, n), room: maxRemembered}
	m.last = nil
	return l
}

// end keeps the listing's documents as the last listing's.
func (m *decoded) end(l *listingMemo) {
	m.mu.Lock()
	m.last = l.next
	m.mu.Unlock()
}

// item is raw's Item: the last listing's when its JSON is the same bytes, decoded
// otherwise. It is kept for the next listing while there is room.
func (l *listingMemo) item(d *Dialect, account string, raw []byte) (Item, bool) {
	h := maphash.Bytes(l.seed, raw)
	it, ok := l.last[h]
	if !ok || !bytes.Equal(it.Raw, raw) {
		if len(raw) > l.room {
			return d.item(account, raw) // no room: not kept, decoded again next time
		}
		if it, ok = d.item(account, bytes.Clone(raw)); !ok {
			return it, false
		}
	}
	if len(raw) <= l.room {
		l.room -= len(raw)
		l.next[h] = it
	}
	return it, true
}

// getJSON reads path as a request of kind and returns the body of a 2xx answer; any
// other answer is a *ProblemError with the decoded problem.
func getJSON(ctx context.Context, c *Client, kind pace.Kind, path string) ([]byte, error) {
	res, err := c.Do(ctx, kind, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if res.Response.Status/100 != 2 {
		p := c.d.decode(res.Response)
		return nil, &ProblemError{Method: http.MethodGet, Path: stripQuery(path), Problem: p, Response: res.Response}
	}
	return res.Response.Body, nil
}

// One listing (every page of every filter of one poll) keeps at most maxPages pages,
// maxListed documents and maxListedBytes of page bodies: a provider that claims a billion
// documents, or whose pages never end, costs a bounded poll, and the rest is cut.
const (
	maxPages       = 200
	maxListed      = 10_000
	maxListedBytes = 32 << 20
)

// ListingCut is returned, with what was listed, when emitop does not watch a listing
// whole: it went past the listing's bounds (the documents beyond the cut are not watched),
// or some documents in it have an absurd id (see MaxIDLen).
type ListingCut struct {
	Account string
	Kept    int    // documents kept
	Why     string // which bound was reached; "" when none was
	Absurd  int    // documents left out for an id longer than MaxIDLen
}

func (e *ListingCut) Error() string {
	var parts []string
	if e.Why != "" {
		parts = append(parts, fmt.Sprintf("listing cut at %d documents (%s): the rest are not watched", e.Kept, e.Why))
	}
	if e.Absurd > 0 {
		parts = append(parts, fmt.Sprintf("%d listed documents are not watched: their id is longer than %d bytes", e.Absurd, MaxIDLen))
	}
	return e.Account + ": " + strings.Join(parts, "; ")
}

// listing is what one listing has taken so far, against its bounds.
type listing struct {
	pages, bytes int
	items        [][]byte
}

// full says which bound the listing has reached, "" while none.
func (l *listing) full() string {
	switch {
	case len(l.items) >= maxListed:
		return fmt.Sprintf("more than %d documents", maxListed)
	case l.pages >= maxPages:
		return fmt.Sprintf("more than %d pages", maxPages)
	case l.bytes >= maxListedBytes:
		return fmt.Sprintf("more than %d MiB", maxListedBytes>>20)
	}
	return ""
}

// pages is one paged listing a provider offers: path(n) is the path of page n, from
// first, and split returns a page's documents and whether more pages follow.
type pages struct {
	first int
	path  func(n int) string
	split func(body []byte, n int) (items [][]byte, more bool, err error)
}

// list reads paged listings one after the other (a tab, a status each), as requests of
// kind, and joins their documents, up to one listing's bounds: past them it returns what
// it read with a *ListingCut.
func list(ctx context.Context, c *Client, kind pace.Kind, sources []pages) ([][]byte, error) {
	var l listing
	for _, src := range sources {
		if err := l.read(ctx, c, kind, src); err != nil {
			return l.items, err
		}
	}
	return l.items, nil
}

// read adds a paged listing's items to l, up to l's bounds; past them it returns a
// *ListingCut.
func (l *listing) read(ctx context.Context, c *Client, kind pace.Kind, src pages) error {
	for n := src.first; ; n++ {
		if why := l.full(); why != "" {
			l.items = l.items[:min(len(l.items), maxListed)]
			return &ListingCut{Account: c.account.Name, Kept: len(l.items), Why: why}
		}
		body, err := getJSON(ctx, c, kind, src.path(n))
		if err != nil {
			return err
		}
		items, more, err := src.split(body, n)
		if err != nil {
			return fmt.Errorf("%s: GET %s: %w", c.account.Name, stripQuery(src.path(n)), err)
		}
		l.pages++
		l.bytes += len(body)
		l.items = append(l.items, items...)
		if (!more || len(items) == 0) && len(l.items) <= maxListed {
			return nil
		}
	}
}

// envelope splits a page shaped {"data":[...], <total>: N}: more pages follow while the
// items seen so far are fewer than the total.
func envelope(totalKey string, perPage int) func(body []byte, n int) ([][]byte, bool, error) {
	return func(body []byte, n int) ([][]byte, bool, error) {
		var data, totalRaw json.RawMessage
		if obj, ok := validObject(body); ok { // read in place, as the map would have it
			data, totalRaw = member(obj, "data", false), member(obj, totalKey, false)
		} else {
			var env map[string]json.RawMessage
			if err := json.Unmarshal(body, &env); err != nil {
				return nil, false, fmt.Errorf("malformed listing: %w", err)
			}
			data, totalRaw = env["data"], env[totalKey]
		}
		items, err := checkedItems(data)
		if err != nil {
			return nil, false, err
		}
		var total int
		if json.Unmarshal(totalRaw, &total) != nil {
			return items, len(items) == perPage, nil
		}
		return items, n*perPage < total, nil
	}
}

// rawItems is the elements of a JSON array, each as its own bytes: slices of raw, which is
// checked once and then split in place (decoding it into []json.RawMessage would check
// and copy every element again). null is an empty list.
func rawItems(raw json.RawMessage) ([][]byte, error) {
	if b := bytes.TrimSpace(raw); len(b) > 0 && b[0] == '[' && !json.Valid(b) {
		return nil, errNoList
	}
	return checkedItems(raw)
}

var errNoList = errors.New("malformed listing: no list of documents")

// checkedItems is rawItems for a value already checked as part of the page it came in
// (read by member from a validObject, or decoded by encoding/json, which checks the
// whole input first): the page's check was a fifth of splitting it (pprof).
func checkedItems(raw json.RawMessage) ([][]byte, error) {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return nil, nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, errNoList
	}
	var out [][]byte
	for i := skipSpace(raw, 1); i < len(raw) && raw[i] != ']'; {
		end := valueEnd(raw, i)
		out = append(out, raw[i:end:end])
		if i = skipSpace(raw, end); i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return out, nil
}

// validObject is body trimmed, and whether it is one valid JSON object.
func validObject(body []byte) ([]byte, bool) {
	b := bytes.TrimSpace(body)
	return b, len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// member is the value of key in the JSON object obj, read in place (a slice of obj), or
// nil: the last one when the key repeats, matched case-insensitively when fold is set, as
// encoding/json matches a struct's fields (a map's keys match exactly). obj must have
// been checked (validObject); only its own members are looked at, not nested ones.
// Decoding a listing's envelope with encoding/json would check the page again and copy
// its list of documents.
func member(obj []byte, key string, fold bool) json.RawMessage {
	var v json.RawMessage
	want := []byte(key)
	jsonQuotedMembers(obj, func(quoted []byte, raw json.RawMessage) {
		k := quoted[1 : len(quoted)-1] // without its quotes: a key is a whole string in a checked object
		if bytes.IndexByte(k, '\\') >= 0 {
			k = []byte(jsonKey(quoted)) // escaped: compared as encoding/json reads it
		}
		if bytes.Equal(k, want) || fold && bytes.EqualFold(k, want) {
			v = raw
		}
	})
	return v
}

// pathID escapes a document ID for a path segment: IDs come from providers, untrusted.
func pathID(id string) string { return url.PathEscape(id) }

// stripQuery drops a path's query: it may hold filters, never needed in a log.
func stripQuery(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}
