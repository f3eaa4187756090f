package poller

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"emitop/pace"
)

// invoiceJSON is one invoice of an Alegra listing, shaped as testdata/contracts/alegra/
// list-page.http shows it (seed 000, the alegra-cli's pagination, PROVIDERS.md).
func invoiceJSON(id, legal, code string) string {
	stamp := fmt.Sprintf(`{"legalStatus": %q, "warnings": []}`, legal)
	if code != "" {
		stamp = fmt.Sprintf(`{"legalStatus": %q, "warnings": [], "error": {"code": %q, "message": "El correo del cliente es obligatorio"}}`, legal, code)
	}
	return fmt.Sprintf(`{"id": %q, "date": "2026-11-30", "status": "open", "numberTemplate": {"prefix": "FE", "number": %q, "fullNumber": "FE%s"}, "stamp": %s}`, id, id, id, stamp)
}

// listingServer serves the Alegra listing *page holds, whole, on one page.
func listingServer(t *testing.T, page *atomic.Pointer[[]string]) *Client {
	t.Helper()
	c, _ := newTestClient(t, "alegra", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		docs := *page.Load()
		fmt.Fprintf(w, `{"metadata": {"total": %d}, "data": [%s]}`, len(docs), strings.Join(docs, ", "))
	}), map[string]string{"email": "ops@x.co", "token": "t0k"})
	return c
}

// fresh is what a client that never listed before makes of the page: the documents the
// memo gives must be the very ones a new decoding gives.
func fresh(t *testing.T, page *atomic.Pointer[[]string]) []Item {
	t.Helper()
	items, err := OpenDocuments(context.Background(), listingServer(t, page), pace.Poll)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func sameItems(t *testing.T, when string, got, want []Item) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d documents, want %d", when, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !reflect.DeepEqual(g.Doc, w.Doc) || !reflect.DeepEqual(g.Problem, w.Problem) || string(g.Raw) != string(w.Raw) {
			t.Errorf("%s: document %d\n got %+v %+v %s\nwant %+v %+v %s", when, i, g.Doc, g.Problem, g.Raw, w.Doc, w.Problem, w.Raw)
		}
	}
}

// A listing decodes only the documents whose JSON changed since the last one, and what it
// returns is what decoding the whole page gives: a changed status, a new problem, a new
// document, a document gone.
func TestListingDecodesWhatChanged(t *testing.T) {
	var page atomic.Pointer[[]string]
	set := func(docs ...string) { page.Store(&docs) }
	c := listingServer(t, &page)
	list := func(when string) []Item {
		t.Helper()
		items, err := OpenDocuments(context.Background(), c, pace.Poll)
		if err != nil {
			t.Fatal(err)
		}
		sameItems(t, when, items, fresh(t, &page))
		return items
	}

	set(invoiceJSON("1042", "STAMPED_AND_REJECTED", "AEP6016"), invoiceJSON("1043", "STAMPED_AND_WAITING_RESPONSE", ""))
	first := list("first listing")
	set(invoiceJSON("1042", "STAMPED_AND_REJECTED", "AEP6016"), invoiceJSON("1043", "STAMPED_AND_REJECTED", "AEP6016"),
		invoiceJSON("1045", "STAMPED_AND_WAITING_RESPONSE", ""))
	second := list("1043 rejected, 1045 new")
	if second[0].Problem != first[0].Problem {
		t.Error("1042 is unchanged and was decoded again")
	}
	if second[1].Problem == nil || second[1].Doc.Status != "rejected" {
		t.Errorf("1043 kept its old state: %+v", second[1].Doc)
	}
	set(invoiceJSON("1045", "STAMPED_AND_WAITING_RESPONSE", ""))
	list("1042 and 1043 gone")
	if n := len(c.listed.last); n != 1 {
		t.Errorf("the memo holds %d documents after a listing of one", n)
	}
}

// The memo finds a document by a hash of its JSON; one whose hash matches and whose bytes
// do not (a collision) is decoded, never mistaken for the other.
func TestListingMemoComparesTheBytes(t *testing.T) {
	var page atomic.Pointer[[]string]
	pending := invoiceJSON("1043", "STAMPED_AND_WAITING_RESPONSE", "")
	rejected := invoiceJSON("1043", "STAMPED_AND_REJECTED", "AEP6016")
	page.Store(&[]string{pending})
	c := listingServer(t, &page)
	if _, err := OpenDocuments(context.Background(), c, pace.Poll); err != nil {
		t.Fatal(err)
	}
	// Plant the pending document under the rejected one's hash.
	m := c.listed
	var was Item
	for _, it := range m.last {
		was = it
	}
	m.last = map[uint64]Item{maphash.Bytes(m.seed, []byte(rejected)): was}
	page.Store(&[]string{rejected})
	items, err := OpenDocuments(context.Background(), c, pace.Poll)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Doc.Status != "rejected" || items[0].Problem == nil {
		t.Fatalf("a hash collision passed for the document: %+v", items)
	}
}

// A document the memo keeps holds its own copy of its JSON, not a slice of the page it
// came on: the page would stay alive for as long as the document stays unchanged, one
// page per changed document.
func TestListingMemoKeepsNoPage(t *testing.T) {
	d := mustDialect(t, "alegra")
	page := []byte("[" + invoiceJSON("1043", "STAMPED_AND_WAITING_RESPONSE", "") + "]")
	raw := page[1 : len(page)-1]
	m := newDecoded()
	memo := m.begin(1)
	it, ok := memo.item(d, "acct", raw)
	if !ok {
		t.Fatal("the invoice did not decode")
	}
	want := string(raw)
	for i := range page {
		page[i] = ' '
	}
	if string(it.Raw) != want || string(memo.next[maphash.Bytes(m.seed, []byte(want))].Raw) != want {
		t.Fatalf("the document's JSON changed with its page: %q", it.Raw)
	}
}

// A provider that lists more than a client's memo keeps pins no more than maxRemembered
// bytes of it between polls; the documents beyond are decoded at every listing, and each
// listing still gives every document as decoding it gives it.
func TestListingMemoIsBounded(t *testing.T) {
	d := mustDialect(t, "alegra")
	var raws [][]byte
	for i := 0; i*200 < 2*maxRemembered; i++ {
		raws = append(raws, []byte(invoiceJSON(fmt.Sprint(10000+i), "STAMPED_AND_REJECTED", "AEP6016")))
	}
	m := newDecoded()
	for round := range 3 {
		memo := m.begin(len(raws))
		for _, raw := range raws {
			got, ok := memo.item(d, "acct", raw)
			want, wok := d.item("acct", raw)
			if ok != wok || !reflect.DeepEqual(got.Doc, want.Doc) || !reflect.DeepEqual(got.Problem, want.Problem) || string(got.Raw) != string(raw) {
				t.Fatalf("round %d: %s gave %+v, decoding gives %+v", round, raw, got.Doc, want.Doc)
			}
		}
		m.end(memo)
		kept := 0
		for _, it := range m.last {
			kept += len(it.Raw)
		}
		if kept > maxRemembered || kept < maxRemembered/2 {
			t.Fatalf("round %d: the memo keeps %d bytes of %d listed, want at most %d (and most of that)", round, kept, len(raws)*len(raws[0]), maxRemembered)
		}
	}
}
