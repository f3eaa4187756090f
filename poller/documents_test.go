package poller

import (
	"context"
	"errors"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/sandbox"
)

// sandboxAccounts starts a sandbox and loads its accounts through emitop's own config.
func sandboxAccounts(t testing.TB, opts sandbox.Options) (*sandbox.Sandbox, []config.Account) {
	t.Helper()
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	cfg, err := config.Parse([]byte(sb.ConfigTOML()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return sb, cfg.Accounts
}

func TestOpenDocumentsEveryProvider(t *testing.T) {
	_, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, acc := range accounts {
		t.Run(acc.Name, func(t *testing.T) {
			c, err := NewClient(acc, ClientOptions{Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			items, err := OpenDocuments(ctx, c, Poll)
			if err != nil {
				t.Fatal(err)
			}
			rejected := 0
			for _, it := range items {
				d := it.Doc
				if d.Account != acc.Name || d.Provider != acc.Provider || d.ID == "" {
					t.Errorf("document %+v", d)
				}
				if !needsOperator(d.Status) {
					t.Errorf("%s listed with status %s", d.ID, d.Status)
				}
				if d.Status != model.StatusRejected {
					continue
				}
				rejected++
				if it.Problem == nil || it.Problem.OK() || it.Problem.Meaning == "" || it.Problem.Action == "" {
					t.Errorf("rejected %s carries problem %+v", d.ID, it.Problem)
				}
			}
			if rejected == 0 {
				t.Fatalf("no rejected document among %d listed", len(items))
			}
			one, err := ReadDocument(ctx, c, Poll, items[0].Doc.ID)
			if acc.Provider == "alforse" {
				if !errors.Is(err, ErrNoRead) {
					t.Fatalf("alforse read: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if one.Doc.ID != items[0].Doc.ID || one.Doc.Status != items[0].Doc.Status {
				t.Fatalf("read %+v, listed %+v", one.Doc, items[0].Doc)
			}
		})
	}
}

func TestReadDocumentUnknownIDIsAProblem(t *testing.T) {
	_, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 11, NoFaults: true})
	for _, acc := range accounts {
		if acc.Provider == "alforse" {
			continue
		}
		c, err := NewClient(acc, ClientOptions{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ReadDocument(context.Background(), c, Poll, "no-such-id")
		var pe *ProblemError
		if !errors.As(err, &pe) || pe.Problem.Class != model.ClassNotFound {
			t.Errorf("%s: unknown id gave %v", acc.Name, err)
		}
	}
}
