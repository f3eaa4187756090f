package retry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"emitop/model"
	"emitop/pace"
	"emitop/poller"
	"emitop/sandbox"
)

// resendable are the targets the policy resends without forcing.
func resendable(targets []Target) []Target {
	var out []Target
	for _, tg := range targets {
		switch p := tg.Doc.Problem; {
		case p == nil, p.Verdict == model.VerdictRetry, p.Verdict == model.VerdictWait,
			p.Verdict == model.VerdictVerify, p.Verdict == model.VerdictEscalate:
			out = append(out, tg)
		}
	}
	return out
}

// sent counts the documents a report says were sent, and fails on any not accepted or
// rejected again as want says.
func sent(t *testing.T, rep model.RetryReport, want model.Outcome) int {
	t.Helper()
	n := 0
	for _, res := range rep.Results {
		if res.Sent {
			n++
		}
		if res.Outcome != want {
			t.Errorf("%s: %s (%s), want %s", res.Doc.ID, res.Outcome, res.Detail, want)
		}
	}
	return n
}

// TestRetryConfirmsByListing: Certifactu lists its rejected invoices alone, so a batch
// reads a page of that listing, once the leases are taken, instead of each invoice, and
// resends every invoice the page shows still rejected: one request a set, then the
// resends, as the plan said.
func TestRetryConfirmsByListing(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "storm", Seed: 11, NoFaults: true, Limits: fastLimits, Documents: 240})
	const name = "cf-madrid"
	e.sb.Fix(name)
	c := e.client(t, name, 0)
	targets := resendable(rejected(t, c))
	if len(targets) < confirmSet+2 {
		t.Fatalf("%d invoices to resend", len(targets))
	}
	r := retrier(t, c, e.st, Options{})
	plan := r.Plan(targets)
	for _, it := range plan.Items {
		if rq := it.Requests[0]; rq.Method != http.MethodGet || rq.URL != c.Account().BaseURL+c.RejectedPath(0) {
			t.Fatalf("%s: planned %s %s before its resend", it.Doc.ID, rq.Method, rq.URL)
		}
	}
	pages := (len(targets) + confirmSet - 1) / confirmSet
	if plan.Requests != pages+len(targets) {
		t.Fatalf("plan: %d requests for %d invoices", plan.Requests, len(targets))
	}
	before := e.sb.AccountStats(name)
	rep, err := r.Run(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	after := e.sb.AccountStats(name)
	if n := sent(t, rep, model.OutcomeAccepted); n != len(targets) || after.Emissions-before.Emissions != n {
		t.Fatalf("%d sent, %d emissions", n, after.Emissions-before.Emissions)
	}
	if rep.Requests != plan.Requests || after.Requests-before.Requests != plan.Requests {
		t.Fatalf("%d requests (%d seen), planned %d", rep.Requests, after.Requests-before.Requests, plan.Requests)
	}
	if after.DuplicateEmissions != 0 || after.RateLimited != 0 {
		t.Fatalf("stats %+v", after)
	}
}

// TestRetryListingWaitsForAnOpenEmission: of the invoices a page would confirm, one has
// another holder's emission announced and not yet answered (the holder stalled): the page
// does not stand for its read. It is neither taken from the page nor resent before that
// emission's deadline, while the others are; the emission lands just before the
// deadline, and the read after it finds the invoice accepted.
func TestRetryListingWaitsForAnOpenEmission(t *testing.T) {
	e, db := fenceEnvWith(t, sandbox.Options{Scenario: "storm", Seed: 11, NoFaults: true, Limits: fastLimits, Documents: 60})
	ctx := context.Background()
	const name = "cf-madrid"
	const timeout = 600 * time.Millisecond
	e.sb.Fix(name)
	c := e.client(t, name, timeout)
	b := retrier(t, c, e.st, Options{Holder: "B"})
	targets := resendable(rejected(t, c))
	if len(targets) < 3 {
		t.Fatalf("%d invoices to resend", len(targets))
	}
	plan := b.Plan(targets)
	id := announce(t, e, db, name, plan, timeout)
	before := e.sb.AccountStats(name)
	landed := make(chan error, 1)
	go func() {
		time.Sleep(timeout * 3 / 4)
		rs, _ := c.BuildResend([]string{id}, nil)
		_, err := c.Do(ctx, pace.Write, rs.Method, rs.Path, nil)
		landed <- err
	}()
	rep, err := b.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-landed; err != nil {
		t.Fatal(err)
	}
	st := e.sb.AccountStats(name)
	if st.DuplicateEmissions != 0 || st.Emissions != before.Emissions+len(targets) {
		t.Fatalf("%d emissions for %d invoices, %d duplicates", st.Emissions-before.Emissions, len(targets), st.DuplicateEmissions)
	}
	for _, res := range rep.Results {
		if res.Outcome != model.OutcomeAccepted || res.Sent == (res.Doc.ID == id) {
			t.Errorf("%s: sent %v, %s (%s)", res.Doc.ID, res.Sent, res.Outcome, res.Detail)
		}
	}
}

// TestRetryRemembersTheDTE: sv-dte resends a DTE exactly as the gateway stored it, which
// only its read returns, so a first batch reads each. A second batch in the same process
// (the Memory shared) confirms them with a page of the listing of rejected DTEs instead:
// the page shows the emission the first batch made, so the gateway still holds the DTE
// that batch sent. A DTE someone else corrected and emitted meanwhile (rejected again)
// shows another emission: the third batch reads it and resends the corrected DTE, never
// the one it remembered.
func TestRetryRemembersTheDTE(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "storm", Seed: 7, NoFaults: true, Limits: fastLimits})
	ctx := context.Background()
	const name = "sv-main"
	c := e.client(t, name, 0)
	var targets []Target
	for _, tg := range resendable(rejected(t, c)) {
		if tg.Doc.Problem != nil && tg.Doc.Problem.Verdict == model.VerdictEscalate { // rejected again until fixed
			targets = append(targets, tg)
		}
	}
	if len(targets) < 3 {
		t.Fatalf("%d DTEs to resend", len(targets))
	}
	n := len(targets)
	memory := NewMemory()
	run := func(wantRequests int) {
		t.Helper()
		r := retrier(t, c, e.st, Options{Memory: memory})
		plan := r.Plan(targets)
		rep, err := r.Run(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		if got := sent(t, rep, model.OutcomeRejected); got != n || rep.Requests != wantRequests {
			t.Fatalf("%d sent in %d requests, want %d in %d", got, rep.Requests, n, wantRequests)
		}
	}
	run(2 * n) // a read and an emission each
	run(1 + n) // one page, then the emissions
	corrected := correctDTE(t, c, targets[0].Doc.ID)
	run(1 + 1 + n) // one page, a read of the corrected DTE, the emissions
	if got := storedDTE(t, c, targets[0].Doc.ID); string(got) != string(corrected) {
		t.Fatalf("the gateway holds\n%s\nafter the resend, not the corrected DTE\n%s", got, corrected)
	}
	if st := e.sb.AccountStats(name); st.DuplicateEmissions != 0 || st.RateLimited != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// storedDTE is the DTE the gateway holds for id: the one last emitted.
func storedDTE(t *testing.T, c *poller.Client, id string) json.RawMessage {
	t.Helper()
	it, err := poller.ReadDocument(context.Background(), c, pace.Write, id)
	if err != nil {
		t.Fatal(err)
	}
	var stored struct {
		DTE json.RawMessage `json:"dte"`
	}
	if err := json.Unmarshal(it.Raw, &stored); err != nil {
		t.Fatal(err)
	}
	return stored.DTE
}

// correctDTE emits id again as another system would after correcting it (the
// receiver's name), and returns the DTE it emitted.
func correctDTE(t *testing.T, c *poller.Client, id string) json.RawMessage {
	t.Helper()
	var dte map[string]any
	if err := json.Unmarshal(storedDTE(t, c, id), &dte); err != nil {
		t.Fatal(err)
	}
	dte["receptor"] = map[string]any{"nombre": fmt.Sprintf("Corregido %d", time.Now().UnixNano()), "correo": "cliente@example.com"}
	body, err := json.Marshal(dte)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // another processing time than the last emission's
	rs, err := c.BuildResend([]string{id}, [][]byte{[]byte(`{"dte":` + string(body) + `}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), pace.Write, rs.Method, rs.Path, rs.Body); err != nil {
		t.Fatal(err)
	}
	return storedDTE(t, c, id)
}
