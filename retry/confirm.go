package retry

import (
	"time"

	"emitop/model"
	"emitop/pace"
	"emitop/poller"
)

// A bulk retry spends the account's budget, and the budget sets how long it takes: a
// status read of each document before its resend doubles the cost. Where the provider
// lists its rejected documents alone (sv-dte, Certifactu), one page of that listing,
// read after the documents' leases are taken and their open intents looked at, shows
// each document on it still rejected: it stands for their reads, under the same rules as
// a read (the page's time is the read's time for the evidence an intent needs). A
// document the pages do not show, or whose resend needs what only its read returns
// (sv-dte's stored DTE, unless the engine holds it from an earlier read or resend of the
// same emission: see Memory), is read on its own, as is one whose page has grown older
// than confirmFresh by the time its resend is due. After a timeout or a 5xx the status is
// read again, as always.

// Bounds of a confirmation: a set of documents confirmed by one listing holds at most
// confirmSet (their leases renewed together), and no more than the account's budget
// resends within confirmFresh, the longest a page stands for a read; at most
// confirmPages pages are read for one set, each of them finding some of its documents.
const (
	confirmSet   = 20
	confirmFresh = 10 * time.Second
	confirmPages = 50
)

// listing is what a page of the listing of rejected documents said of one document, and
// when it was asked.
type listing struct {
	item poller.Item
	at   time.Time
	body []byte // the JSON its resend is built from: the listed one, or one remembered
}

// listable reports whether a page of the listing can stand for a read of the document:
// the provider lists rejected documents alone, and the document's resend needs nothing a
// listing lacks, or the engine holds it.
func (ru *run) listable(id string) bool {
	c := ru.r.c
	return c.ListsRejected() && (!c.NeedsBody() || ru.r.opt.Memory.holds(ru.r.acc.Name, id))
}

// setSize is how many of the next documents of work one set takes: for documents a page
// can confirm, as many as the budget resends within confirmFresh, up to confirmSet; else
// one resend's worth.
func (ru *run) setSize(work []int) int {
	batch := ru.r.c.ResendBatch()
	n := 0
	for _, i := range work[:min(len(work), confirmSet)] {
		if ru.listable(ru.report.Results[i].Doc.ID) {
			n++
		}
	}
	if n < 2 {
		return batch
	}
	size := confirmSet
	for size > batch && size > 2 && ru.r.c.Governor().DrainTime(size+1, ru.latency) > confirmFresh {
		size /= 2
	}
	return max(size, batch)
}

// confirm reads the listing of rejected documents, page after page from the first, for
// the documents of look a page can confirm, when two or more can (for one, its own read
// costs as much and says more). It stops when every one is found, the listing ends, a
// page shows none of those still missing, or a page cannot be read: the documents not
// found are then read on their own.
func (ru *run) confirm(look []int) map[int]*listing {
	want := map[string]int{}
	for _, i := range look {
		if id := ru.report.Results[i].Doc.ID; ru.listable(id) {
			want[id] = i
		}
	}
	if len(want) < 2 {
		return nil
	}
	out := map[int]*listing{}
	for page := 0; len(want) > 0 && page < confirmPages; page++ {
		at := ru.r.clock.Now()
		items, more, err := poller.RejectedPage(ru.net, ru.r.c, pace.Write, page)
		ru.count(nil)
		if err != nil {
			break
		}
		found := 0
		for _, it := range items {
			i, ok := want[it.Doc.ID]
			if !ok || it.Doc.Status != model.StatusRejected {
				continue
			}
			delete(want, it.Doc.ID)
			found++
			body := it.Raw
			if ru.r.c.NeedsBody() {
				if body = ru.r.opt.Memory.recall(ru.r.acc.Name, it.Doc.ID, ru.r.c.Emission(it.Raw)); body == nil {
					continue // emitted since the engine held it: its read tells
				}
			}
			out[i] = &listing{item: it, at: at, body: body}
		}
		if !more || found == 0 {
			break
		}
	}
	return out
}

// remember keeps what a resend of the document is built from, body, with the emission
// answer (a read, or the provider's answer to a resend of body) says the provider shows:
// a later page showing the same emission confirms body is still what the provider holds.
func (ru *run) remember(id string, body, answer []byte) {
	c := ru.r.c
	if !c.NeedsBody() || !c.Carries(body) {
		return
	}
	if emission := c.Emission(answer); emission != "" {
		ru.r.opt.Memory.keep(ru.r.acc.Name, id, body, emission)
	}
}
