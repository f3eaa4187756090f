package retry

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"emitop/model"
	"emitop/poller"
	"emitop/sandbox"
)

// recorder keeps every request a client sends, as the client hands it to the transport
// (which adds only Host, Content-Length and Accept-Encoding), and sends it on.
type recorder struct {
	mu   sync.Mutex
	sent []*http.Request
	next http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.sent = append(r.sent, req.Clone(context.Background()))
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// sentLike is the request sent that planned stands for: the same method and URL, up to
// the part the plan leaves to the status read ("{reference_code}").
func (r *recorder) sentLike(planned model.PlannedRequest) *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	url, _, _ := strings.Cut(planned.URL, "{")
	for _, s := range r.sent {
		if s.Method == planned.Method && strings.HasPrefix(s.URL.String(), url) {
			return s
		}
	}
	return nil
}

// TestPlanShowsTheHeadersSent: every request a plan shows carries exactly the headers
// the client then sends with it, the credentials' values redacted: a deletion (a DELETE
// without a body) no Content-Type, a resend with a body, one still to be built from the
// read, or none, the same as it leaves. A plan that shows a header the request never
// carries, or hides one it does, fails here.
func TestPlanShowsTheHeadersSent(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true, Limits: fastLimits})
	ctx := context.Background()
	tests := []struct {
		account string
		clear   bool
	}{
		{account: "factus-bog", clear: true},
		{account: "alegra-co"}, // the body is built while planning
		{account: "sv-main"},   // the body is the DTE as read: a note while planning
		{account: "cf-madrid"}, // a POST without a body
	}
	for _, tt := range tests {
		t.Run(tt.account, func(t *testing.T) {
			rec := &recorder{next: http.DefaultTransport}
			acc := e.accounts[tt.account]
			c, err := poller.NewClient(acc, poller.ClientOptions{Version: "test", HTTP: &http.Client{Transport: rec},
				Governor: governorFor(acc.Provider, e.limits)})
			if err != nil {
				t.Fatal(err)
			}
			e.sb.Fix(tt.account)
			targets := rejected(t, c)
			if len(targets) == 0 {
				t.Fatal("no rejected document")
			}
			var planned []model.PlannedRequest
			if tt.clear {
				r := retrier(t, c, e.st, Options{Operator: "ana", Reason: "the sender corrects it"})
				req, _, err := r.PlanClear(targets[0].Doc)
				if err != nil {
					t.Fatal(err)
				}
				if res, err := r.Clear(ctx, targets[0].Doc); err != nil || !res.Sent {
					t.Fatalf("clear: %+v, %v", res, err)
				}
				planned = append(planned, req)
			} else {
				r := retrier(t, c, e.st, Options{})
				plan := r.Plan(targets)
				rep, err := r.Run(ctx, plan)
				if err != nil || !rep.OK() || firstSent(rep).Doc.ID == "" {
					t.Fatalf("run: %+v, %v", rep, err)
				}
				for _, it := range plan.Items {
					if it.Doc.ID == firstSent(rep).Doc.ID {
						planned = it.Requests
					}
				}
			}
			writes := 0
			for _, p := range planned {
				if model.IsWrite(p.Method) {
					writes++
				}
				sent := rec.sentLike(p)
				if sent == nil {
					t.Fatalf("%s %s was planned, never sent", p.Method, p.URL)
				}
				var got []string
				for key, vals := range sent.Header {
					for _, v := range vals {
						if slices.Contains(p.Header, key+": [redacted]") {
							v = "[redacted]"
						}
						got = append(got, key+": "+v)
					}
				}
				want := slices.Clone(p.Header)
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s %s: planned headers\n  %q\nsent\n  %q", p.Method, p.URL, want, got)
				}
			}
			if writes != 1 {
				t.Fatalf("%d writes planned for the document sent: %+v", writes, planned)
			}
		})
	}
}
