package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"emitop/model"
	"emitop/store"
)

// shift fills a history with a shift of one account, hostile provider text included, and
// one quiet account.
func shift(t *testing.T) (*store.Store, time.Time) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "emitop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	min := func(m int) time.Time { return at.Add(time.Duration(m) * time.Minute) }
	cert := &model.Problem{Provider: "sv-dte", Class: model.ClassCertificate, Verdict: model.VerdictEscalate, Code: "CERT"}
	fix := &model.Problem{Provider: "sv-dte", Class: model.ClassRejected, Verdict: model.VerdictFix, Code: "004"}
	doc := func(id, number string, st model.Status, p *model.Problem, m int) store.Op {
		return store.UpsertDocument(model.Document{Account: "sv-main", Provider: "sv-dte", ID: id, Number: number, Status: st, Problem: p}, nil, min(m))
	}
	unavailable := &model.Problem{Class: model.ClassUnavailable, Code: "503"}
	ops := []store.Op{
		store.PutAccount(model.Account{Name: "alegra-co", Provider: "alegra"}),
		store.RecordHealth(store.HealthChange{At: min(2), Account: "sv-main", Provider: "sv-dte", From: model.HealthUp, To: model.HealthDegraded, Problem: unavailable}),
		store.RecordHealth(store.HealthChange{At: min(5), Account: "sv-main", Provider: "sv-dte", From: model.HealthDegraded, To: model.HealthDown, Problem: unavailable}),
		store.RecordHealth(store.HealthChange{At: min(31), Account: "sv-main", Provider: "sv-dte", From: model.HealthDown, To: model.HealthUp}),
		doc("a1", "DTE-01-1", model.StatusRejected, cert, 10),
		doc("a2", "DTE-01-2` <!here> *bold*\n# title\x1b[31m", model.StatusRejected, fix, 11),
		doc("a3", "DTE-01-3", model.StatusRejected, fix, 12),
		doc("a3", "DTE-01-3", model.StatusAccepted, nil, 45),
		store.RecordAction(model.Action{At: min(40), Operator: "ana", Kind: "force-retry", Account: "sv-main", DocID: "a3", Reason: "MH confirmed `rm` | x", Outcome: "accepted"}),
		store.RecordAction(model.Action{At: min(41), Operator: "ben", Kind: "retry", Account: "sv-main", DocID: "a2", Outcome: "rejected"}),
		store.LogRequest(store.Request{Account: "sv-main", Method: "GET", Path: "/x", Status: 200, At: min(1)}),
	}
	for m, rem := range map[int]int{0: 3, 10: 0, 12: 0, 13: 2, 50: 0} {
		ops = append(ops, store.AddWindowSamples("sv-main", []model.Window{{Name: "short", Limit: 3, Remaining: rem, Reset: -1}}, min(m)))
	}
	if err := st.Enqueue(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, at
}

func TestBuild(t *testing.T) {
	st, at := shift(t)
	r, err := Build(context.Background(), st, at.Add(-time.Minute), at.Add(12*time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Accounts) != 2 || r.Accounts[0].Name != "alegra-co" || !r.Accounts[0].Quiet() {
		t.Fatalf("accounts: %+v", r.Accounts)
	}
	sv := r.Accounts[1]
	if len(sv.Health) != 3 || sv.Health[1].To != model.HealthDown || sv.Health[1].Class != model.ClassUnavailable || sv.Health[1].Code != "503" {
		t.Errorf("health: %+v", sv.Health)
	}
	if len(sv.WindowRuns) != 2 || sv.WindowRuns[0].Until == nil || sv.WindowRuns[0].Until.Sub(sv.WindowRuns[0].From) != 3*time.Minute || sv.WindowRuns[1].Until != nil {
		t.Errorf("window runs: %+v", sv.WindowRuns)
	}
	if len(sv.Rejections) != 2 || sv.Rejections[0] != (Rejections{model.ClassRejected, model.VerdictFix, 2}) {
		t.Errorf("rejections: %+v", sv.Rejections)
	}
	if len(sv.Retries) != 2 || !sv.Retries[0].Forced || sv.Retries[0].Reason != "MH confirmed `rm` | x" || sv.Retries[0].Document != "DTE-01-3" ||
		sv.Retries[1].Forced || sv.Retries[1].Reason != "" {
		t.Errorf("retries: %+v", sv.Retries)
	}
	if len(sv.Open) != 2 || sv.Open[0].Documents != 1 || len(r.Busiest) != 1 || r.Busiest[0].Events != 4 {
		t.Errorf("open: %+v; busiest: %+v", sv.Open, r.Busiest)
	}
}

func TestMarkdownIsSafeToPaste(t *testing.T) {
	st, at := shift(t)
	r, err := Build(context.Background(), st, at.Add(-time.Minute), at.Add(12*time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.Markdown(&b, time.UTC); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"# emitop shift report",
		"## alegra-co (alegra)\n\nNothing happened; nothing is open.",
		"## sv-main (sv-dte)",
		"- **Health:** Sat 10:02 up → degraded (unavailable `503`) · Sat 10:05 degraded → down (unavailable `503`) · Sat 10:31 down → up",
		"- **Windows that ran out:** `short` ran out 2 times: Sat 10:10–Sat 10:13 (3m0s) · since Sat 10:50",
		"- **Rejected:** 3 documents: rejected/fix 2 · certificate/escalate 1",
		"  - Sat 10:40 ana forced `DTE-01-3` (reason: `MH confirmed 'rm' | x`): `accepted`",
		"  - Sat 10:41 ben retried `DTE-01-2' <!here> *bold* # title`: `rejected`",
		"- **Still open:** rejected/fix 1 (`DTE-01-2' <!here> *bold* # title`) · certificate/escalate 1 (`DTE-01-1`)",
		"## Busiest hours\n\n- Sat 10:00–11:00: 4 document events, 3 rejections, 1 requests",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "\x1b") || strings.Contains(md, "\n# title") {
		t.Errorf("provider text escaped its code span:\n%s", md)
	}
	var j bytes.Buffer
	if err := r.JSON(&j); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || len(back.Accounts) != 2 || back.Accounts[1].WindowRuns[1].Until != nil {
		t.Fatalf("json: %v %s", err, j.String())
	}
}

// TestBusiestHoursAreTheZonesClockHours: in Kathmandu (UTC+5:45) the shift's events fall in
// two clock hours that are one hour in UTC; the report counts and names the zone's.
func TestBusiestHoursAreTheZonesClockHours(t *testing.T) {
	st, at := shift(t)
	kathmandu, err := time.LoadLocation("Asia/Kathmandu")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(context.Background(), st, at.Add(-time.Minute), at.Add(12*time.Hour), kathmandu)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.Markdown(&b, kathmandu); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Sat 15:44 to Sun 03:45 (2026-03-15 +0545)",
		"- Sat 15:00–16:00: 3 document events, 3 rejections, 1 requests",
		"- Sat 16:00–17:00: 1 document events, 0 rejections, 0 requests",
		"- **Health:** Sat 15:47 up → degraded",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestRestartsDoNotRepeatHealth: each emitop process starts an account as up, so after a
// restart the history says "up → refused" of an account that was refused all along. The
// report reads the change before it: no change, or a change from what it really was.
func TestRestartsDoNotRepeatHealth(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "emitop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	change := func(m int, from, to model.Health) store.Op {
		return store.RecordHealth(store.HealthChange{At: at.Add(time.Duration(m) * time.Minute), Account: "alegra-mx", Provider: "alegra", From: from, To: to})
	}
	up, degraded, down, refused := model.HealthUp, model.HealthDegraded, model.HealthDown, model.HealthRefused
	if err := st.Enqueue(context.Background(),
		change(0, up, refused), change(5, up, refused), change(9, refused, up), // restarted at 5
		change(30, up, degraded), change(31, degraded, down), change(40, up, degraded), change(41, degraded, down), // restarted at 40
	); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := Build(context.Background(), st, at.Add(-time.Minute), at.Add(time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range r.Accounts[0].Health {
		got = append(got, fmt.Sprintf("%s→%s", h.From, h.To))
	}
	want := "up→refused refused→up up→degraded degraded→down down→degraded degraded→down"
	if strings.Join(got, " ") != want {
		t.Fatalf("health changes %v, want %s", got, want)
	}
	if r.Accounts[0].HealthTotal != 7 {
		t.Errorf("health changes in all: %d, want the 7 recorded", r.Accounts[0].HealthTotal)
	}
}

// TestAFlappingNightStaysReadable: a window that ran out at every other poll, an account
// whose health flapped and thousands of retries make a report of a few kilobytes that
// says how many there were and lists the most recent; the JSON says the same.
func TestAFlappingNightStaysReadable(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "emitop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	const n = 4000
	var ops []store.Op
	for i := range n {
		t := at.Add(time.Duration(i) * 10 * time.Second)
		from, to := model.HealthUp, model.HealthDegraded
		if i%2 == 1 {
			from, to = to, from
		}
		ops = append(ops,
			store.AddWindowSamples("sv-main", []model.Window{{Name: "short", Limit: 3, Remaining: i % 2, Reset: -1}}, t),
			store.RecordHealth(store.HealthChange{At: t, Account: "sv-main", Provider: "sv-dte", From: from, To: to}),
			store.RecordAction(model.Action{At: t, Operator: "ana", Kind: "retry", Account: "sv-main", DocID: fmt.Sprint("d", i), Outcome: "rejected"}))
	}
	if err := st.Enqueue(context.Background(), ops...); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := Build(context.Background(), st, at, at.Add(12*time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	var md, js bytes.Buffer
	if err := r.Markdown(&md, time.UTC); err != nil {
		t.Fatal(err)
	}
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- **Health:** (3980 earlier not listed) Sat 11:03 up → degraded",
		"- **Windows that ran out:** `short` ran out 2000 times, the last 5: Sat 11:05–Sat 11:05 (10s)",
		"- **Retries:** (3980 earlier not listed)",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, md.String())
		}
	}
	if md.Len() > 8<<10 || js.Len() > 32<<10 {
		t.Errorf("a flapping night makes a report of %d bytes (JSON %d)", md.Len(), js.Len())
	}
	a := r.Accounts[0]
	if a.HealthTotal != n || a.RetriesTotal != n || len(a.Retries) != maxListed || len(a.WindowRuns) != maxRuns || a.WindowRuns[0].Runs != n/2 {
		t.Errorf("totals: health %d, retries %d (%d listed), window runs %d listed of %d", a.HealthTotal, a.RetriesTotal, len(a.Retries), len(a.WindowRuns), a.WindowRuns[0].Runs)
	}
}
