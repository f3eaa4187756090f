package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"emitop/config"
	"emitop/pace"
	"emitop/sandbox"
)

// BenchmarkListingSplit splits the first listing page of every sandbox account whose
// listing is an envelope ({"data":[...],"total":N}: certifactu, sv-dte, alforse) into
// its documents two ways: in place, as a poll does (the dialect's split), and, as the
// baseline it must beat, the way polls did before: the page decoded into a map of raw
// members and its list into a slice of raw elements, each of them a copy. Both must give
// the same documents. inplace-vs-decode is the in-place time over the baseline's (below
// 1 is faster).
func BenchmarkListingSplit(b *testing.B) {
	_, accounts := sandboxAccounts(b, sandbox.Options{Scenario: "calm", Seed: 1, NoFaults: true})
	type page struct {
		body  []byte
		split func([]byte, int) ([][]byte, bool, error)
		first int
	}
	var pages []page
	for _, acc := range accounts {
		if acc.Provider != "certifactu" && acc.Provider != "sv-dte" && acc.Provider != "alforse" {
			continue
		}
		_, src, body := firstPage(b, acc)
		pg := page{body: body, split: src.split, first: src.first}
		got, _, err := pg.split(body, pg.first)
		want, werr := decodeSplit(body)
		if err != nil || werr != nil || len(got) == 0 || !slices.EqualFunc(got, want, bytes.Equal) {
			b.Fatalf("%s: in place %d documents (%v), decoded %d (%v)", acc.Name, len(got), err, len(want), werr)
		}
		pages = append(pages, pg)
	}
	if len(pages) == 0 {
		b.Fatal("no envelope listing in the sandbox")
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for _, pg := range pages {
			if _, _, err := pg.split(pg.body, pg.first); err != nil {
				b.Fatal(err)
			}
		}
	}
	inPlace := time.Since(start)
	start = time.Now()
	for i := 0; i < b.N; i++ {
		for _, pg := range pages {
			if _, err := decodeSplit(pg.body); err != nil {
				b.Fatal(err)
			}
		}
	}
	decoded := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(inPlace.Nanoseconds())/float64(b.N*len(pages)), "inplace-ns/page")
	b.ReportMetric(float64(decoded.Nanoseconds())/float64(b.N*len(pages)), "decode-ns/page")
	b.ReportMetric(float64(inPlace)/float64(decoded), "inplace-vs-decode")
}

// decodeSplit is the baseline of BenchmarkListingSplit: an envelope's documents read
// with encoding/json alone, as polls read them before.
func decodeSplit(body []byte) ([][]byte, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	var list []json.RawMessage
	if err := json.Unmarshal(env["data"], &list); err != nil {
		return nil, err
	}
	var total int
	_ = json.Unmarshal(env["total"], &total)
	out := make([][]byte, len(list))
	for i, r := range list {
		out[i] = r
	}
	return out, nil
}

// BenchmarkListingDecode turns the documents of every sandbox account's first listing
// page into Items two ways: as a poll does, through the client's memo of its last
// listing (the page is the one it listed last time, as most pages are from one poll to
// the next), and, as the baseline it must beat, decoding every document again, as polls
// did before. Both must give the same Items. memo-vs-decode is the memo's time over the
// baseline's (below 1 is faster).
func BenchmarkListingDecode(b *testing.B) {
	_, accounts := sandboxAccounts(b, sandbox.Options{Scenario: "calm", Seed: 1, NoFaults: true})
	type page struct {
		d    *Dialect
		name string
		raws [][]byte
		memo *decoded
	}
	var pages []page
	for _, acc := range accounts {
		c, src, body := firstPage(b, acc)
		raws, _, err := src.split(body, src.first)
		if err != nil || len(raws) == 0 {
			b.Fatalf("%s: %d documents (%v)", acc.Name, len(raws), err)
		}
		pg := page{d: c.d, name: acc.Name, raws: raws, memo: newDecoded()}
		for range 2 { // the second time through, every document comes from the memo
			memo := pg.memo.begin(len(raws))
			for _, raw := range raws {
				got, gok := memo.item(pg.d, pg.name, raw)
				want, wok := pg.d.item(pg.name, raw)
				if gok != wok || !reflect.DeepEqual(got.Doc, want.Doc) || !reflect.DeepEqual(got.Problem, want.Problem) {
					b.Fatalf("%s: the memo gave %+v, decoding %+v", acc.Name, got.Doc, want.Doc)
				}
			}
			pg.memo.end(memo)
		}
		pages = append(pages, pg)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for _, pg := range pages {
			memo := pg.memo.begin(len(pg.raws))
			for _, raw := range pg.raws {
				memo.item(pg.d, pg.name, raw)
			}
			pg.memo.end(memo)
		}
	}
	memo := time.Since(start)
	start = time.Now()
	for i := 0; i < b.N; i++ {
		for _, pg := range pages {
			for _, raw := range pg.raws {
				pg.d.item(pg.name, raw)
			}
		}
	}
	decode := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(memo.Nanoseconds())/float64(b.N*len(pages)), "memo-ns/page")
	b.ReportMetric(float64(decode.Nanoseconds())/float64(b.N*len(pages)), "decode-ns/page")
	b.ReportMetric(float64(memo)/float64(decode), "memo-vs-decode")
}

// firstPage reads the first page of the account's listing of open documents: the
// account's client, the listing, and the page's body.
func firstPage(b *testing.B, acc config.Account) (*Client, pages, []byte) {
	b.Helper()
	c, err := NewClient(acc, ClientOptions{Version: "test"})
	if err != nil {
		b.Fatal(err)
	}
	src := c.d.open(c)[0]
	body, err := getJSON(context.Background(), c, pace.Poll, src.path(src.first))
	if err != nil {
		b.Fatal(err)
	}
	return c, src, body
}
