package poller

import (
	"context"
	"errors"
	"strings"
	"testing"

	"emitop/model"
	"emitop/sandbox"
	"emitop/store"
)

// TestClear deletes a bill the DIAN rejected, as an operator's recorded act, on Factus
// itself and through the FastAPI gateway in front of it; a bill that is not rejected is
// never deleted, and a provider without deletion says so.
func TestClear(t *testing.T) {
	e := newRetryEnv(t, sandbox.Options{Scenario: "demo", Seed: 3, NoFaults: true})
	ctx := context.Background()
	for _, name := range []string{"factus-bog", "factus-cal", "factus-gw"} {
		t.Run(name, func(t *testing.T) {
			c := e.client(t, name, 0)
			targets := rejected(t, c)
			if len(targets) == 0 {
				t.Fatal("no rejected bill")
			}
			doc := targets[0].Doc
			if _, err := retrier(t, c, e.st, RetryOptions{}).Clear(ctx, doc); err == nil {
				t.Fatal("cleared without a reason")
			}
			r := retrier(t, c, e.st, RetryOptions{Operator: "ana", Reason: "the sender will correct the buyer's id"})
			if req, _, err := r.PlanClear(doc); err != nil || req.Method != "DELETE" || !strings.Contains(strings.Join(req.Header, " "), "[redacted]") {
				t.Fatalf("plan %+v, %v", req, err)
			}
			before := e.sb.AccountStats(name).Deleted
			res, err := r.Clear(ctx, doc)
			if err != nil || res.Outcome != OutcomeCleared || !res.Sent {
				t.Fatalf("clear: %+v, %v", res, err)
			}
			if got := e.sb.AccountStats(name).Deleted; got != before+1 {
				t.Fatalf("the sandbox deleted %d", got-before)
			}
			if _, err := ReadDocument(ctx, c, Write, doc.ID); err == nil {
				t.Fatal("a deleted bill is still read")
			}
			stored, err := e.st.Document(ctx, name, doc.ID)
			if err != nil || stored.Status != model.StatusCancelled {
				t.Fatalf("stored %+v, %v", stored, err)
			}
			acts, err := e.st.Actions(ctx, store.ActionFilter{Account: name})
			if err != nil || len(acts) == 0 || acts[0].Kind != "clear" || acts[0].Operator != "ana" ||
				acts[0].Reason != "the sender will correct the buyer's id" || !strings.HasPrefix(acts[0].Outcome, "cleared") {
				t.Fatalf("actions %+v, %v", acts, err)
			}
			open, err := e.st.OpenIntents(ctx, name)
			if err != nil || len(open) != 0 {
				t.Fatalf("open intents %v, %v", open, err)
			}
		})
	}
	t.Run("not rejected", func(t *testing.T) {
		c := e.client(t, "factus-med", 0)
		items, err := OpenDocuments(ctx, c, Write)
		if err != nil {
			t.Fatal(err)
		}
		var pending *model.Document
		for _, it := range items {
			if it.Doc.Status == model.StatusPending {
				d := it.Doc
				pending = &d
				break
			}
		}
		if pending == nil {
			t.Skip("no pending bill in this seed")
		}
		res, err := retrier(t, c, e.st, RetryOptions{Reason: "test"}).Clear(ctx, *pending)
		if err != nil || res.Outcome != OutcomeSkipped || res.Sent || e.sb.AccountStats("factus-med").Deleted != 0 {
			t.Fatalf("a pending bill: %+v, %v", res, err)
		}
	})
	t.Run("no deletion", func(t *testing.T) {
		c := e.client(t, "alegra-co", 0)
		r := retrier(t, c, e.st, RetryOptions{Reason: "test"})
		if _, err := r.Clear(ctx, model.Document{ID: "1000"}); !errors.Is(err, ErrNoClear) || r.CanClear() {
			t.Fatalf("alegra: %v", err)
		}
	})
}
