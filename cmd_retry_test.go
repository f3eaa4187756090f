package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
	"emitop/poller"
	"emitop/sandbox"
	"emitop/store"
)

// retrySandbox serves a storm-scenario sandbox and writes its config; it returns the
// config path and the ids of cf-madrid's documents whose verdict lets them be resent.
func retrySandbox(t *testing.T, faults sandbox.Faults) (*sandbox.Sandbox, string, []string) {
	t.Helper()
	sb, cfgPath := sandboxConfig(t, sandbox.Options{Scenario: "storm", Seed: 11, NoFaults: true}, "5s")
	sb.SetFaults("cf-madrid", faults)
	ids := rejectedIDs(t, cfgPath, "cf-madrid", func(it poller.Item) bool {
		return it.Problem != nil && it.Problem.Verdict == model.VerdictEscalate
	})
	if len(ids) < 3 {
		t.Fatalf("%d documents to resend", len(ids))
	}
	return sb, cfgPath, ids
}

// rejectedIDs lists account's open documents as the provider shows them and returns the
// ids of the rejected ones keep accepts.
func rejectedIDs(t *testing.T, cfgPath, account string, keep func(poller.Item) bool) []string {
	t.Helper()
	cfg, err := config.Load(cfgPath, poller.Providers())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, acc := range cfg.Accounts {
		if acc.Name != account {
			continue
		}
		c, err := poller.NewClient(acc, poller.ClientOptions{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		items, err := poller.OpenDocuments(context.Background(), c, pace.Poll)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.Doc.Status == model.StatusRejected && keep(it) {
				ids = append(ids, it.Doc.ID)
			}
		}
	}
	return ids
}

func TestRetryUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--doc", "x"},
		{"--account", "a"},
		{"--account", "a", "--doc", "x", "--all-rejected"},
		{"--account", "a", "--doc", "x", "--force", "--yes"},
		{"--account", "a", "--doc", "x", "--reason", "r", "--yes"},
		{"--account", "a", "--doc", "x", "-o", "yaml", "--yes"},
		{"--account", "a", "--doc", "x"}, // stdin is not a terminal and no --yes
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"retry"}, args...), strings.NewReader("y\n"), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, %s", args, code, errb.String())
		}
		if lines := strings.Count(strings.TrimSpace(errb.String()), "\n"); lines != 0 || errb.Len() == 0 {
			t.Errorf("%v: want one line, got %q", args, errb.String())
		}
	}
}

// TestRetryDryRun plans from the provider's listing, shows every request with the
// credentials redacted, and sends nothing.
func TestRetryDryRun(t *testing.T) {
	sb, cfgPath, _ := retrySandbox(t, sandbox.Faults{})
	db := filepath.Join(t.TempDir(), "h.db")
	for _, acc := range []string{"cf-madrid", "alegra-co", "sv-main", "factus-bog", "alforse-main"} {
		var out, errb bytes.Buffer
		code := run([]string{"retry", "--config", cfgPath, "--db", db, "--account", acc, "--all-rejected", "--dry-run",
			"--force", "--reason", "audit", "-o", "json"}, strings.NewReader(""), &out, &errb)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", acc, code, errb.String())
		}
		var plan struct {
			Requests  int `json:"requests"`
			Documents []struct {
				Action   string `json:"action"`
				Reason   string `json:"reason"`
				Requests []struct {
					Method  string   `json:"method"`
					Headers []string `json:"headers"`
				} `json:"requests"`
			} `json:"documents"`
		}
		if err := json.Unmarshal(out.Bytes(), &plan); err != nil || len(plan.Documents) == 0 {
			t.Fatalf("%s: %v: %s", acc, err, out.String())
		}
		for _, sa := range sb.Accounts() {
			if sa.Name != acc {
				continue
			}
			for k, v := range sa.Credentials {
				if strings.Contains(out.String(), v) {
					t.Errorf("%s: dry run shows the %s", acc, k)
				}
			}
		}
		for _, d := range plan.Documents {
			if acc == "alforse-main" {
				if d.Action != "skip" || !strings.Contains(d.Reason, "offers no resend") {
					t.Errorf("alforse: %+v", d)
				}
				continue
			}
			if acc == "factus-bog" {
				// Even forced, a rejected Factus bill is not resent: the reason names `emitop clear`.
				if d.Action != "skip" || len(d.Requests) != 0 || !strings.Contains(d.Reason, "emitop clear --account factus-bog --doc") {
					t.Errorf("factus: %+v", d)
				}
				continue
			}
			if d.Action != "resend" || len(d.Requests) != 2 || d.Requests[1].Method != "POST" {
				t.Errorf("%s: forced plan %+v", acc, d)
			}
		}
	}
	for _, p := range []string{"certifactu", "alegra", "sv-dte", "factus"} {
		if st := sb.Stats(p); st.Emissions != 0 {
			t.Errorf("%s: dry run emitted %d", p, st.Emissions)
		}
	}
}

func docArgs(ids []string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, "--doc", id)
	}
	return out
}

// TestRetryTwoProcesses: two runs started together on the same documents and database
// emit each document once.
func TestRetryTwoProcesses(t *testing.T) {
	bin := emitopBinary(t)
	sb, cfgPath, ids := retrySandbox(t, sandbox.Faults{Latency: 20 * time.Millisecond})
	sb.Fix("cf-madrid")
	db := filepath.Join(t.TempDir(), "h.db")
	args := append([]string{"retry", "--config", cfgPath, "--db", db, "--account", "cf-madrid", "--yes", "-o", "json"}, docArgs(ids)...)
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() {
			cmd := exec.Command(bin, args...)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			out, err := cmd.Output()
			outs[i] = out
			if ee, ok := err.(*exec.ExitError); ok {
				codes[i] = ee.ExitCode()
			} else if err != nil {
				t.Error(err)
			}
			if errb.Len() > 0 {
				t.Logf("run %d: %s", i, errb.String())
			}
		})
	}
	wg.Wait()
	st := sb.AccountStats("cf-madrid")
	for _, id := range ids {
		if st.Attempts[id] != 1 {
			t.Errorf("%s emitted %d times", id, st.Attempts[id])
		}
	}
	if st.DuplicateEmissions != 0 || st.RateLimited != 0 {
		t.Errorf("stats %+v", st)
	}
	for i := range 2 {
		var rep struct {
			OK bool `json:"ok"`
		}
		if err := json.Unmarshal(outs[i], &rep); err != nil || !rep.OK || codes[i] != 0 {
			t.Errorf("run %d: exit %d, %s", i, codes[i], outs[i])
		}
	}
}

// TestRetryKilled: a run killed mid-batch, then started again, emits nothing twice.
func TestRetryKilled(t *testing.T) {
	bin := emitopBinary(t)
	sb, cfgPath, ids := retrySandbox(t, sandbox.Faults{Latency: 250 * time.Millisecond})
	sb.Fix("cf-madrid")
	// The second run waits the account's timeout before it resends a document whose
	// emission the killed run announced (that request may still land): keep it short.
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	short := strings.ReplaceAll(string(cfg), `timeout = "30s"`, `timeout = "2s"`)
	if short == string(cfg) {
		t.Fatal("no timeout to shorten in the configuration")
	}
	if err := os.WriteFile(cfgPath, []byte(short), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "h.db")
	args := append([]string{"retry", "--config", cfgPath, "--db", db, "--account", "cf-madrid", "--yes"}, docArgs(ids)...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it while the second document is under way: after the first one's progress line.
	line, _ := bufio.NewReader(stderr).ReadString('\n')
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	first := sb.AccountStats("cf-madrid").Emissions
	if !strings.HasPrefix(line, "[") || first == 0 || first == len(ids) {
		t.Fatalf("killed after %q with %d of %d emitted", line, first, len(ids))
	}
	second := exec.Command(bin, append(args, "-o", "json")...)
	var errb bytes.Buffer
	second.Stderr = &errb
	out, err := second.Output()
	if err != nil {
		t.Fatalf("second run: %v: %s%s", err, out, errb.String())
	}
	st := sb.AccountStats("cf-madrid")
	for _, id := range ids {
		if st.Attempts[id] != 1 {
			t.Errorf("%s emitted %d times", id, st.Attempts[id])
		}
	}
	if st.DuplicateEmissions != 0 {
		t.Errorf("%d duplicate emissions", st.DuplicateEmissions)
	}
}

// TestPrintPlanSanitizes: a dry run prints the requests it would send, and their bodies
// and paths hold the provider's text (a stored DTE, a reference code): the terminal must
// get it as text, never as control sequences.
func TestPrintPlanSanitizes(t *testing.T) {
	hostile := "REJECTED\rACCEPTED \x1b[8mhidden\x1b[0m \u202eevil \u009b31m"
	plan := model.RetryPlan{Account: "sv-main", Provider: "sv-dte", Items: []model.RetryItem{{
		Doc:    model.Document{Account: "sv-main", Provider: "sv-dte", ID: "id", Number: "n", Status: model.StatusRejected},
		Resend: true, Why: model.RetryReason{Kind: model.ReasonProvider, Note: "verdict retry: " + hostile},
		Requests: []model.PlannedRequest{
			{Method: "GET", URL: "http://127.0.0.1/factura/" + hostile, Header: []string{"X-API-Key: [redacted]"}},
			{Method: "POST", URL: "http://127.0.0.1/factura/emitir", Header: []string{"X-API-Key: [redacted]"}, Body: `{"dte":"` + hostile + `"}`},
		},
	}}}
	var out bytes.Buffer
	printPlan(&out, plan, 0, true)
	for _, bad := range []string{"\x1b", "\r", "\u202e", "\u009b"} {
		if strings.Contains(out.String(), bad) {
			t.Errorf("the plan printed %q: %q", bad, out.String())
		}
	}
	if strings.Count(out.String(), "REJECTED␍ACCEPTED") != 3 {
		t.Errorf("the provider's text is not shown as sent: %q", out.String())
	}
}

// TestRetryListingWaitsAsAsked: `retry --all-rejected` whose listing is refused for now
// (a 429, then a 503 for maintenance, each with Retry-After) waits as the provider asks,
// says so, and plans once the listing answers.
func TestRetryListingWaitsAsAsked(t *testing.T) {
	var mu sync.Mutex
	// A 503 that states a wait is not tried again by the client: each refusal is one wait.
	refusals := []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusServiceUnavailable}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		mu.Lock()
		var status int
		if len(refusals) > 0 {
			status, refusals = refusals[0], refusals[1:]
		}
		mu.Unlock()
		switch status {
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(status)
			fmt.Fprint(w, `{"detail":"Rate limit exceeded","code":"RATE_LIMITED","retry_after":1}`)
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(status)
			fmt.Fprint(w, `{"detail":"Service temporarily unavailable","code":"SERVICE_UNAVAILABLE"}`)
		default:
			docs := ""
			if r.URL.Query().Get("status") == "rejected" {
				docs = `{"id":"inv-1","series_number":"F-0001","status":"rejected","aeat":{"state":"Incorrecto","code":"4112","description":"certificado"}}`
			}
			fmt.Fprint(w, `{"data":[`+docs+`],"page":1,"page_size":100,"total":`+map[bool]string{true: "1", false: "0"}[docs != ""]+`}`)
		}
	}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "config.toml")
	body := "[[account]]\nname = \"cf-busy\"\nprovider = \"certifactu\"\nbase_url = \"" + srv.URL + "\"\napi_key = \"cf_test_key\"\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("retry", "--config", cfg, "--db", filepath.Join(t.TempDir(), "h.db"), "--account", "cf-busy",
		"--all-rejected", "--dry-run")
	if code != 0 || !strings.Contains(out, "F-0001") || strings.Count(errs, "waiting 1s as the provider asks") != 3 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// TestRetryByNumber: --doc takes the number the screens show as well as the provider's
// id, and a document named both ways is planned once.
func TestRetryByNumber(t *testing.T) {
	_, cfgPath := sandboxConfig(t, sandbox.Options{Scenario: "calm", Seed: 2, NoFaults: true}, "5s")
	db := filepath.Join(t.TempDir(), "h.db")
	if code, _, errs := runCmd("poll", "--once", "--config", cfgPath, "--db", db); code > 1 {
		t.Fatalf("poll: exit %d: %s", code, errs)
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := st.Documents(context.Background(), store.DocFilter{Account: "sv-main", Statuses: []model.Status{model.StatusRejected}})
	st.Close()
	if err != nil || len(docs) == 0 {
		t.Fatalf("no rejected document of sv-main: %v", err)
	}
	doc := docs[0]
	if doc.Number == "" || doc.Number == doc.ID {
		t.Fatalf("sv-main's document %+v has no number of its own", doc)
	}
	code, out, errs := runCmd("retry", "--config", cfgPath, "--db", db, "--account", "sv-main",
		"--doc", doc.Number, "--doc", doc.ID, "--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var plan struct {
		PlanReads int `json:"plan_reads"`
		Documents []struct {
			ID     string `json:"id"`
			Number string `json:"number"`
		} `json:"documents"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Documents) != 1 || plan.Documents[0].ID != doc.ID || plan.Documents[0].Number != doc.Number || plan.PlanReads != 0 {
		t.Errorf("plan %+v; want %s (%s) once, from the store", plan, doc.ID, doc.Number)
	}
}

// TestRetryWording: the command line words the engine's reasons its own way: a document
// the operator may force says the flags that force it; the rest say the fact as it is.
func TestRetryWording(t *testing.T) {
	held := model.RetryReason{Kind: model.ReasonHeld, Verdict: model.VerdictReconcile}
	cases := []struct {
		got, want string
	}{
		{reasonText(held), "verdict reconcile: the provider already holds it (--force --reason to resend anyway)"},
		{reasonText(model.RetryReason{Kind: model.ReasonReauth}), "verdict reauth: fix the account's credentials first"},
		{detailText(model.RetryResult{Outcome: model.OutcomeSkipped, Why: held, Detail: held.String()}), "verdict reconcile: the provider already holds it (--force --reason to resend anyway)"},
		{detailText(model.RetryResult{Outcome: model.OutcomeUnknown, Detail: "status pending: not resent"}), "status pending: not resent"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}
