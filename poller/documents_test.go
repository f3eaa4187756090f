package poller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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
	cfg, err := config.Parse([]byte(sb.ConfigTOML()), func(string) (string, bool) { return "", false }, Providers())
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

// TestDocumentIdentity: a document's id is data (the store's key, the provider's path), so
// every dialect keeps it exactly as the provider wrote it; its number only reaches
// screens, logs and error texts, so every dialect cleans it where it enters.
func TestDocumentIdentity(t *testing.T) {
	const id, number = `"7\u001b[2J\r\u202e1"`, `"FV\u001b]8;;http://x\u0007\r\u009b2"`
	const exactID, exactNumber = "7\x1b[2J\r\u202e1", "FV\x1b]8;;http://x\a\r\u009b2"
	for _, tc := range []struct{ provider, raw, id string }{
		{"alegra", `{"id":` + id + `,"status":"open","numberTemplate":{"fullNumber":` + number + `}}`, exactID},
		{"alegra", `{"id":` + id + `,"status":"open","numberTemplate":{"prefix":` + number + `,"number":"3"}}`, exactID},
		{"sv-dte", `{"codigoGeneracion":` + id + `,"numeroControl":` + number + `,"estado":"PROCESADO"}`, exactID},
		{"certifactu", `{"id":` + id + `,"series_number":` + number + `,"status":"accepted"}`, exactID},
		{"factus", `{"number":` + number + `,"reference_code":"r","status":1}`, exactNumber},
		{"alforse", `{"id":` + id + `,"invoiceNo":` + number + `}`, exactID},
		{"alforse", `{"id":` + id + `,"reference":` + number + `}`, exactID},
	} {
		doc, _, ok := mustDialect(t, tc.provider).document([]byte(tc.raw))
		if !ok {
			t.Fatalf("%s: no document in %s", tc.provider, tc.raw)
		}
		if doc.ID != tc.id {
			t.Errorf("%s: id %q, want it exactly as sent: %q", tc.provider, doc.ID, tc.id)
		}
		if s := doc.Number; s == "" || s != model.Sanitize(s, false) || strings.ContainsAny(s, "\x1b\r\a\u202e\u009b") {
			t.Errorf("%s: number %q reaches the model unsanitized (from %s)", tc.provider, s, tc.raw)
		}
	}
}

// TestLongIDsStayApart: two documents whose ids share their first 100 characters are two
// documents, each read by its own id; an answer about the other one is refused; an id
// longer than MaxIDLen is left out of the listing, and the listing says so.
func TestLongIDsStayApart(t *testing.T) {
	prefix := strings.Repeat("A", 100)
	first, second, absurd := prefix+"-1", prefix+"-2", strings.Repeat("Z", MaxIDLen+1)
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		inv := func(id string) string {
			return `{"id":"` + id + `","series_number":"F-1","status":"rejected","aeat":{"state":"Incorrecto","code":"1100","description":"x"}}`
		}
		if id, ok := strings.CutPrefix(r.URL.Path, "/v1/invoices/"); ok {
			asked = append(asked, id)
			fmt.Fprint(w, inv(second)) // whatever is asked: a misrouted read
			return
		}
		if r.URL.Query().Get("status") != "rejected" {
			fmt.Fprint(w, `{"data":[],"page":1,"page_size":100,"total":0}`)
			return
		}
		fmt.Fprint(w, `{"data":[`+inv(first)+`,`+inv(second)+`,`+inv(absurd)+`],"page":1,"page_size":100,"total":3}`)
	}))
	defer srv.Close()
	acc := config.Account{Name: "cf-long", Provider: "certifactu", BaseURL: srv.URL, Timeout: 5 * time.Second,
		Credentials: config.NewCredentials(map[string]string{"api_key": "k"})}
	c, err := NewClient(acc, ClientOptions{Version: "test", Governor: NewGovernorLimits(nil, 0.1, nil)})
	if err != nil {
		t.Fatal(err)
	}
	items, err := OpenDocuments(context.Background(), c, Poll)
	var cut *ListingCut
	if !errors.As(err, &cut) || cut.Absurd != 1 || !strings.Contains(err.Error(), "1 listed documents are not watched: their id is longer than 256 bytes") {
		t.Fatalf("OpenDocuments error %v", err)
	}
	if len(items) != 2 || items[0].Doc.ID != first || items[1].Doc.ID != second {
		t.Fatalf("listed %d documents", len(items))
	}
	if _, err := ReadDocument(context.Background(), c, Poll, first); err == nil || !strings.Contains(err.Error(), "the answer is about document") {
		t.Fatalf("a read of %s answered with %s: %v", first, second, err)
	}
	if len(asked) != 1 || asked[0] != first {
		t.Fatalf("the read asked for %q", asked)
	}
	if _, err := ReadDocument(context.Background(), c, Poll, absurd); err == nil || !strings.Contains(err.Error(), "longer than any provider's") {
		t.Fatalf("a read of an absurd id: %v", err)
	}
}

// TestReadDocumentRefusesAnotherDocument: a read answered with another document (a path
// override pointing at the wrong place) is an error, never that document's status.
func TestReadDocumentRefusesAnotherDocument(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"estado":"PROCESADO","codigoGeneracion":"BBBBBBBB-0000-4000-8000-000000000000","numeroControl":"DTE-01-00000000-000000000000002","codigoMsg":"001"}`)
	}))
	defer srv.Close()
	c, err := NewClient(testAccount("sv-dte", srv.URL, map[string]string{"api_key": "k"}), ClientOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ReadDocument(context.Background(), c, Write, "AAAAAAAA-0000-4000-8000-000000000000")
	if err == nil || !strings.Contains(err.Error(), "is about document") {
		t.Fatalf("read of A answered with B: %v", err)
	}
}
