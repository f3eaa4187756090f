package poller

import (
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"emitop/model"
)

// TestFingerprintSeesEveryChange: a shared account's documents are written again only
// when their fingerprint changes, so every field the other processes show must move it.
func TestFingerprintSeesEveryChange(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	base := func() []model.Document {
		return []model.Document{
			{ID: "F-1", Number: "SETP990000001", Status: model.StatusRejected, Attempts: 1, FirstSeen: at, Changed: at,
				Problem: &model.Problem{Class: "validation", Verdict: model.VerdictFix, Code: "FAD06", Message: "NIT"}},
			{ID: "F-2", Number: "SETP990000002", Status: model.StatusPending, FirstSeen: at, Changed: at},
		}
	}
	want := fingerprint(base())
	if got := fingerprint(base()); got != want {
		t.Fatalf("the same documents gave %x and %x", want, got)
	}
	for _, tc := range []struct {
		name   string
		change func(d []model.Document) []model.Document
	}{
		{"id", func(d []model.Document) []model.Document { d[1].ID = "F-3"; return d }},
		{"number", func(d []model.Document) []model.Document { d[1].Number = "SETP990000003"; return d }},
		{"status", func(d []model.Document) []model.Document { d[1].Status = model.StatusAccepted; return d }},
		{"attempts", func(d []model.Document) []model.Document { d[0].Attempts = 2; return d }},
		{"first seen", func(d []model.Document) []model.Document { d[1].FirstSeen = at.Add(time.Nanosecond); return d }},
		{"changed", func(d []model.Document) []model.Document { d[1].Changed = at.Add(time.Second); return d }},
		{"problem code", func(d []model.Document) []model.Document { d[0].Problem.Code = "FAD07"; return d }},
		{"problem message", func(d []model.Document) []model.Document { d[0].Problem.Message = "NIT?"; return d }},
		{"problem gone", func(d []model.Document) []model.Document { d[0].Problem = nil; return d }},
		{"one fewer", func(d []model.Document) []model.Document { return d[:1] }},
		{"fields shifted", func(d []model.Document) []model.Document { d[1].ID, d[1].Number = "F-2SETP990000002", ""; return d }},
	} {
		if got := fingerprint(tc.change(base())); got == want {
			t.Errorf("%s: the fingerprint did not change", tc.name)
		}
	}
}

// fingerprintFmt is how fingerprint was written first, formatting each document: the
// baseline of BenchmarkFingerprint.
func fingerprintFmt(docs []model.Document) uint64 {
	h := fnv.New64a()
	for _, d := range docs {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%d\x00%d\x00", d.ID, d.Number, d.Status, d.Attempts, d.FirstSeen.UnixNano(), d.Changed.UnixNano())
		if p := d.Problem; p != nil {
			fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", p.Class, p.Verdict, p.Code, p.Message)
		}
	}
	return h.Sum64()
}

// BenchmarkFingerprint: one account's 200 open documents, against the formatting
// baseline in the same run.
func BenchmarkFingerprint(b *testing.B) {
	at := time.Now()
	docs := make([]model.Document, 200)
	for i := range docs {
		docs[i] = model.Document{ID: fmt.Sprintf("F-%d", i), Number: fmt.Sprintf("SETP99%07d", i), Status: model.StatusRejected,
			FirstSeen: at, Changed: at, Problem: &model.Problem{Class: "validation", Verdict: model.VerdictFix, Code: "FAD06", Message: "NIT del adquirente"}}
	}
	start := time.Now()
	for range b.N {
		fingerprintFmt(docs)
	}
	base := time.Since(start)
	b.ResetTimer()
	for range b.N {
		fingerprint(docs)
	}
	b.StopTimer()
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "fmt-ns/op")
	b.ReportMetric(float64(base)/float64(b.Elapsed()), "x-faster")
}
