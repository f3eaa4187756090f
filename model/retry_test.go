package model

import (
	"encoding/json"
	"testing"
)

// TestRetryReason: each reason says its fact the same way for every face, and only a
// verdict of fix or reconcile that was not forced may be forced.
func TestRetryReason(t *testing.T) {
	cases := []struct {
		why      RetryReason
		want     string
		forcible bool
	}{
		{RetryReason{Kind: ReasonNotRejected, Status: StatusAccepted}, "status accepted: not rejected, nothing to resend", false},
		{RetryReason{Kind: ReasonProvider, Note: "alforse offers no resend"}, "alforse offers no resend", false},
		{RetryReason{Kind: ReasonNoProblem}, "no problem recorded: read the status, then resend if still rejected", false},
		{RetryReason{Kind: ReasonVerdict, Verdict: VerdictWait}, "verdict wait: read the status, then resend if still rejected", false},
		{RetryReason{Kind: ReasonForced, Verdict: VerdictFix}, "forced past verdict fix (the data must change first): read the status, then resend if still rejected", false},
		{RetryReason{Kind: ReasonForced, Verdict: VerdictReconcile}, "forced past verdict reconcile (the provider already holds it): read the status, then resend if still rejected", false},
		{RetryReason{Kind: ReasonHeld, Verdict: VerdictFix}, "verdict fix: the data must change first", true},
		{RetryReason{Kind: ReasonHeld, Verdict: VerdictReconcile}, "verdict reconcile: the provider already holds it", true},
		{RetryReason{Kind: ReasonReauth, Verdict: VerdictReauth}, "verdict reauth: fix the account's credentials first", false},
		{RetryReason{Kind: ReasonNothing, Verdict: "odd"}, "verdict odd: nothing to resend", false},
		{RetryReason{}, "", false},
	}
	for _, c := range cases {
		if got := c.why.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.why, got, c.want)
		}
		if got := c.why.Forcible(); got != c.forcible {
			t.Errorf("%+v: forcible %v", c.why, got)
		}
	}
}

// TestRetryJSON: the plan's documents and the report's results keep the keys, in the
// order, that `emitop retry -o json` has always written (by_policy came last, later).
func TestRetryJSON(t *testing.T) {
	doc := Document{Account: "a", ID: "id", Number: "n", Status: StatusRejected, Attempts: 2}
	cases := []struct {
		v    any
		want string
	}{
		{RetryItem{Doc: doc, Verdict: VerdictFix, Why: RetryReason{Kind: ReasonHeld, Verdict: VerdictFix}},
			`{"id":"id","number":"n","status":"rejected","verdict":"fix","attempts":2,"last_problem":null,"action":"skip","forced":false,"reason":"verdict fix: the data must change first","requests":[]}`},
		{RetryItem{Doc: doc, Resend: true, Why: RetryReason{Kind: ReasonNoProblem},
			Requests: []PlannedRequest{{Method: "GET", URL: "u", Header: []string{"K: [redacted]"}}, {Method: "POST", URL: "v", Body: "{}"}}},
			`{"id":"id","number":"n","status":"rejected","verdict":"","attempts":2,"last_problem":null,"action":"resend","forced":false,"reason":"no problem recorded: read the status, then resend if still rejected","requests":[{"method":"GET","url":"u","headers":["K: [redacted]"]},{"method":"POST","url":"v","headers":null,"body":"{}"}]}`},
		{RetryResult{Doc: doc, Outcome: OutcomeAccepted, Detail: "resent: accepted", Sent: true},
			`{"id":"id","number":"n","outcome":"accepted","verdict":"","detail":"resent: accepted","sent":true,"attempts":2,"by_policy":false}`},
		{RetryResult{Doc: doc, Outcome: OutcomeSkipped, ByPolicy: true, Verdict: VerdictFix, Detail: "verdict fix: the data must change first"},
			`{"id":"id","number":"n","outcome":"skipped","verdict":"fix","detail":"verdict fix: the data must change first","sent":false,"attempts":2,"by_policy":true}`},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%s, %v\nwant %s", b, err, c.want)
		}
	}
}
