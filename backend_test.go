package main

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/poller"
	"emitop/sandbox"
	"emitop/store"
	"emitop/ui"
)

// secretLine finds the credentials in a sandbox config.
var secretLine = regexp.MustCompile(`(?m)^(?:token|api_key|password|secret|client_secret|username)\s*=\s*"([^"]+)"`)

// TestBackendRetry plans and runs, through the dashboard's backend, a batch over three
// accounts of a real sandbox and poller: certifactu (two documents whose outside cause is
// fixed, one whose data is wrong), factus (its resend built from the stored raw JSON) and
// alforse (no resend at all). It checks the plan, the progress, the report, the action
// log and that the next snapshot shows the new states.
func TestBackendRetry(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Scenario: "storm", Seed: 11, NoFaults: true})
	cfg, err := config.Parse([]byte(sb.ConfigTOML()), func(string) (string, bool) { return "", false }, poller.Providers())
	if err != nil {
		t.Fatal(err)
	}
	var accounts []config.Account
	for _, a := range cfg.Accounts {
		if slices.Contains([]string{"cf-madrid", "factus-bog", "alforse-main"}, a.Name) {
			accounts = append(accounts, a)
		}
	}
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/emitop.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	x, err := startPolling(&config.Config{Accounts: accounts, Store: config.Store{Lease: config.DefaultLease}}, st,
		poller.Options{Version: "test"}, false, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	member, leave := context.WithCancel(ctx)
	defer x.join(member)()
	defer leave()
	<-x.m.Ready() // alone in the fleet: it holds every account
	snap := x.p.PollOnce(ctx)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	pick := func(account string, v model.Verdict, n int) []model.Document {
		var out []model.Document
		for _, a := range snap.Accounts {
			for _, d := range a.Documents {
				if a.Account.Name == account && d.Status == model.StatusRejected && d.Problem != nil && d.Problem.Verdict == v && len(out) < n {
					out = append(out, d)
				}
			}
		}
		if len(out) < n {
			t.Fatalf("%s: %d documents of verdict %s, want %d", account, len(out), v, n)
		}
		return out
	}
	docs := append(pick("cf-madrid", model.VerdictEscalate, 2), pick("factus-bog", model.VerdictEscalate, 1)...)
	docs = append(docs, pick("cf-madrid", model.VerdictFix, 1)...)
	docs = append(docs, pick("alforse-main", model.VerdictEscalate, 1)...)
	sb.Fix("cf-madrid")
	sb.Fix("factus-bog")

	b := newBackend(x, st)
	plan, err := b.PlanRetry(ctx, ui.RetryRequest{Docs: docs, Operator: "alice", Fingerprint: "SHA256:alicekey"})
	if err != nil {
		t.Fatal(err)
	}
	// Certifactu's two invoices: one page of its listing of rejected invoices, then two resends.
	if len(plan.Items) != 5 || plan.Resends() != 2 || plan.Requests != 3 || plan.ETA < 0 {
		t.Fatalf("plan: %d items, %d resends, %d requests, ETA %s", len(plan.Items), plan.Resends(), plan.Requests, plan.ETA)
	}
	secrets := secretLine.FindAllStringSubmatch(sb.ConfigTOML(), -1)
	if len(secrets) == 0 {
		t.Fatal("no credentials found in the sandbox config")
	}
	for _, it := range plan.Items {
		switch {
		case it.Doc.Account == "alforse-main":
			if it.Resend || !strings.Contains(it.Why.String(), "offers no resend") {
				t.Errorf("alforse: %+v", it)
			}
		case it.Doc.Account == "factus-bog":
			// Factus takes no resend of a rejected bill: the plan names the operator's act instead.
			if it.Resend || len(it.Requests) != 0 || !strings.Contains(it.Why.String(), "emitop clear --account factus-bog") {
				t.Errorf("factus: %+v", it)
			}
		case it.Verdict == model.VerdictFix:
			if it.Resend || it.Why.Kind != model.ReasonHeld || !it.Why.Forcible() || !strings.Contains(it.Why.String(), "fix") {
				t.Errorf("a fix verdict planned: %+v", it)
			}
		default:
			if !it.Resend || len(it.Requests) != 2 {
				t.Errorf("not planned to resend: %+v", it)
			}
		}
		for _, rq := range it.Requests {
			text := rq.Method + rq.URL + strings.Join(rq.Header, "\n") + rq.Body
			if !strings.Contains(text, "[redacted]") {
				t.Errorf("a request without its redacted credential: %+v", rq)
			}
			for _, s := range secrets {
				if strings.Contains(text, s[1]) {
					t.Errorf("a credential in a planned request: %+v", rq)
				}
			}
		}
	}

	updates, cancel := x.p.Hub().Subscribe()
	defer cancel()
	select { // the subscription starts with the latest snapshot
	case <-updates:
	case <-time.After(5 * time.Second):
	}
	var mu sync.Mutex
	var steps []model.RetryProgress
	rep, err := b.RunRetry(ctx, plan, func(pr model.RetryProgress) {
		mu.Lock()
		steps = append(steps, pr)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(model.OutcomeAccepted) != 2 || rep.Count(model.OutcomeSkipped) != 3 || rep.Cancelled || rep.Requests < 3 {
		t.Fatalf("report: %+v", rep)
	}
	results := 0
	for _, s := range steps {
		if s.Total != 5 {
			t.Errorf("progress of %d documents, want 5", s.Total)
		}
		if s.Result != nil {
			results++
		}
	}
	if results != 5 || steps[len(steps)-1].Done != 5 {
		t.Errorf("progress: %d results, last %+v", results, steps[len(steps)-1])
	}

	acts, err := st.Actions(ctx, store.ActionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	perDoc := map[string]string{}
	summaries := map[string]string{}
	for _, a := range acts {
		if a.Operator != "alice" || a.Fingerprint != "SHA256:alicekey" || a.Kind != "retry" {
			t.Errorf("action %+v", a)
		}
		if a.DocID == "" {
			summaries[a.Account] = a.Outcome
		} else {
			perDoc[a.Account+"/"+a.DocID] = a.Outcome
		}
	}
	for _, d := range docs {
		if perDoc[d.Account+"/"+d.ID] == "" {
			t.Errorf("no action recorded for %s/%s: %v", d.Account, d.ID, perDoc)
		}
	}
	if s := summaries["cf-madrid"]; s != "batch of 3: 2 accepted, 0 rejected, 1 skipped, 0 unknown" {
		t.Errorf("cf-madrid's summary: %q", s)
	}
	if len(summaries) != 3 {
		t.Errorf("summaries: %v", summaries)
	}

	// RunRetry asked for a poll: the accepted documents leave the open documents.
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-updates:
			open := map[string]bool{}
			for _, a := range s.Accounts {
				for _, d := range a.Documents {
					open[a.Account.Name+"/"+d.ID] = true
				}
			}
			if !open[docs[0].Account+"/"+docs[0].ID] && !open[docs[1].Account+"/"+docs[1].ID] {
				return
			}
		case <-deadline:
			t.Fatal("no snapshot after the batch shows the accepted documents settled")
		}
	}
}
