package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

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
	ctx := context.Background()
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
		c, err := NewClient(acc, ClientOptions{Version: "test"})
		if err != nil {
			b.Fatal(err)
		}
		src := c.d.open(c)[0]
		body, err := getJSON(ctx, c, pace.Poll, src.path(src.first))
		if err != nil {
			b.Fatal(err)
		}
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
