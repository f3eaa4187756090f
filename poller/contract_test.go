package poller

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/config"
	"emitop/contract"
	"emitop/model"
)

// contractsDir holds the provider contract fixtures (see package contract).
const contractsDir = "../testdata/contracts"

// TestContracts drives every fixture through the dialect it belongs to, over real HTTP:
// emitop's own request (logins included) must be the fixture's, and the fixture's
// answer must decode to what the fixture expects. Every call a dialect makes has a
// fixture, and every dialect has fixtures.
func TestContracts(t *testing.T) {
	fixtures, err := contract.Load(contractsDir)
	if err != nil {
		t.Fatal(err)
	}
	byProvider := map[string][]contract.Fixture{}
	for _, f := range fixtures {
		byProvider[f.Provider] = append(byProvider[f.Provider], f)
	}
	for _, d := range Dialects() {
		calls := map[string]bool{}
		for _, f := range byProvider[d.name] {
			calls[f.Get("call")] = true
		}
		for _, want := range contractCalls(d) {
			if !calls[want] {
				t.Errorf("%s: no fixture for its %s call", d.name, want)
			}
		}
	}
	for _, f := range fixtures {
		t.Run(f.Provider+"/"+f.Name, func(t *testing.T) {
			d, err := dialectOf(f.Provider)
			if err != nil {
				t.Fatalf("fixture folder %q names no dialect: %v", f.Provider, err)
			}
			runContract(t, d, f, byProvider[f.Provider])
		})
	}
}

// contractCalls are the calls a dialect makes, each of which needs a fixture.
func contractCalls(d *Dialect) []string {
	calls := []string{"list"}
	if d.readPath != nil {
		calls = append(calls, "read")
	}
	if d.resend != nil {
		calls = append(calls, "resend")
	}
	if d.clear != nil {
		calls = append(calls, "delete")
	}
	return calls
}

// contractAccount is the account a fixture runs as: settings from "# account:", and a
// credential for each secret key the dialect takes (or those "credentials=" lists), its
// value the key's name in capitals, so that fixtures can show the requests exactly.
func contractAccount(d *Dialect, f contract.Fixture, base string) config.Account {
	settings := f.Pairs("account")
	names := strings.Split(settings["credentials"], ",")
	delete(settings, "credentials")
	if names[0] == "" {
		names = nil
		for _, k := range d.keys {
			if k.Secret {
				names = append(names, k.Name)
			}
		}
	}
	creds := map[string]string{}
	for _, n := range names {
		creds[n] = strings.ToUpper(n)
	}
	acc := testAccount(d.name, base, creds)
	acc.Settings = settings
	return acc
}

// contractServer answers the fixture's request with the fixture's response, and the other
// requests the call makes on the way (logins, a listing's other filters) with the
// provider's fixtures that say "serves:" and match them exactly. It records how emitop's
// requests differ from the fixture's.
type contractServer struct {
	t       *testing.T
	f       contract.Fixture
	helpers []contract.Fixture
	mu      sync.Mutex
	hits    int // requests that matched the fixture's
}

func (s *contractServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := contract.ReadBody(r)
	req := s.f.Request
	onPath := req != nil && r.Method == req.Method && r.URL.Path == req.Path()
	if onPath && len(req.Mismatches(r, body)) == 0 {
		s.serve(w, s.f)
		return
	}
	for _, h := range s.helpers {
		if hr := h.Request; hr != nil && r.Method == hr.Method && r.URL.Path == hr.Path() && len(hr.Mismatches(r, body)) == 0 {
			h.WriteResponse(w)
			return
		}
	}
	if onPath {
		for _, m := range req.Mismatches(r, body) {
			s.t.Errorf("emitop's request differs from the fixture's: %s", m)
		}
		s.serve(w, s.f)
		return
	}
	s.t.Errorf("unexpected request %s %s (body %q)", r.Method, r.URL, body)
	http.NotFound(w, r)
}

// serve answers with the fixture under test, counting the hit.
func (s *contractServer) serve(w http.ResponseWriter, f contract.Fixture) {
	s.mu.Lock()
	s.hits++
	s.mu.Unlock()
	f.WriteResponse(w)
}

func runContract(t *testing.T, d *Dialect, f contract.Fixture, all []contract.Fixture) {
	srv := &contractServer{t: t, f: f}
	for _, h := range all {
		if h.Get("serves") != "" && h.Name != f.Name && sameAccount(h, f) {
			srv.helpers = append(srv.helpers, h)
		}
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	acc := contractAccount(d, f, hs.URL)
	g := NewGovernorLimits([]Limit{{Name: "", Max: 1000, Per: time.Minute}}, 0, nil)
	c, err := NewClient(acc, ClientOptions{Governor: g, Backoff: Backoff{Base: time.Millisecond, Cap: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := f.Pairs("args")
	expect := f.Pairs("expect")
	var problem *model.Problem
	var docs []Item
	switch call := f.Get("call"); call {
	case "answer":
		p := d.decode(Response{Status: f.Response.Status, Method: f.Get("method"), Header: f.Response.Header, Body: f.Response.Body})
		problem = &p
	case "login":
		_, err := c.auth.credential(ctx)
		problem = checkErr(t, d, err, expect)
		if want := expect["needs-person"]; want != "" {
			var ae *AuthError
			if got := errors.As(err, &ae) && ae.NeedsPerson; strconv.FormatBool(got) != want {
				t.Errorf("needs-person = %v, want %s", got, want)
			}
		}
	case "refresh":
		cred, err := c.auth.credential(ctx)
		if err != nil {
			t.Fatalf("login before the refresh: %v", err)
		}
		c.auth.invalidate(cred)
		_, err = c.auth.credential(ctx)
		problem = checkErr(t, d, err, expect)
	case "list":
		items, err := OpenDocuments(ctx, c, Poll)
		problem = checkErr(t, d, err, expect)
		docs = items
		if n := expect["items"]; n != "" && strconv.Itoa(len(items)) != n {
			t.Errorf("listed %d open documents, want %s", len(items), n)
		}
	case "read":
		it, err := ReadDocument(ctx, c, Write, args["id"])
		problem = checkErr(t, d, err, expect)
		if err == nil {
			docs = []Item{it}
		}
	case "resend", "delete":
		ids := strings.Split(args["ids"], ",")
		var raws [][]byte
		if name := args["raw"]; name != "" {
			raws = [][]byte{fixtureBody(t, all, name)}
		}
		build := d.resend
		if call == "delete" {
			build = d.clear
		}
		if build == nil {
			t.Fatalf("%s makes no %s call", d.name, call)
		}
		rs, err := build(c, ids, raws)
		if err != nil {
			t.Fatalf("build the %s: %v", call, err)
		}
		res, err := c.Do(ctx, Write, rs.Method, rs.Path, rs.Body)
		if err != nil {
			t.Fatalf("%s: %v", call, err)
		}
		p := d.decode(res.Response)
		problem = &p
		docs = resentItems(d, acc.Name, res.Response, ids)
	default:
		t.Fatalf("unknown call %q (answer, login, refresh, list, read, resend, delete)", call)
	}
	if f.Request != nil && f.Get("call") != "answer" && srv.hits == 0 {
		t.Errorf("emitop never made the fixture's request %s %s", f.Request.Method, f.Request.Target)
	}
	checkContractProblem(t, problem, expect, f.Meta["message"])
	checkDocs(t, docs, f)
}

// sameAccount reports whether a helper fixture serves an account set up like f's.
func sameAccount(h, f contract.Fixture) bool {
	hs, fs := h.Pairs("account"), f.Pairs("account")
	for _, k := range []string{"api_version", "gateway", "credentials"} {
		if hs[k] != fs[k] {
			return false
		}
	}
	return true
}

// resentItems is what a resend's answer says of each document.
func resentItems(d *Dialect, account string, r Response, ids []string) []Item {
	if d.resent != nil {
		items := d.resent(d, account, r, ids)
		out := make([]Item, 0, len(items))
		for _, id := range ids {
			if it, ok := items[id]; ok {
				out = append(out, it)
			}
		}
		return out
	}
	if it, ok := d.item(account, r.Body); ok {
		return []Item{it}
	}
	return nil
}

// fixtureBody is the response body of the provider's fixture called name.
func fixtureBody(t *testing.T, all []contract.Fixture, name string) []byte {
	t.Helper()
	for _, f := range all {
		if f.Name == name {
			return f.Response.Body
		}
	}
	t.Fatalf("no fixture %q", name)
	return nil
}

// checkErr checks a call's error against the fixture: "ok" (the default when the fixture
// expects no class) means none; otherwise the error must carry the decoded problem it
// returns.
func checkErr(t *testing.T, d *Dialect, err error, expect map[string]string) *model.Problem {
	t.Helper()
	if expect["class"] == "" || expect["ok"] == "true" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return nil
	}
	if err == nil {
		t.Fatalf("no error, want class %s", expect["class"])
	}
	p := decodedError(d, err)
	if p == nil {
		t.Fatalf("error %v carries no decoded problem", err)
	}
	return p
}

// checkContractProblem compares a decoded problem with the fixture's expect: pairs and message
// lines.
func checkContractProblem(t *testing.T, p *model.Problem, expect map[string]string, messages []string) {
	t.Helper()
	if p == nil {
		return
	}
	checkSafeProblem(t, *p)
	for k, want := range expect {
		var got string
		switch k {
		case "class":
			got = string(p.Class)
		case "verdict":
			got = string(p.Verdict)
		case "code":
			got = p.Code
		case "fields":
			got = strings.Join(p.Fields, ",")
		case "wait":
			got = "none"
			if p.HasWait {
				got = p.Wait.String()
			}
		default:
			continue
		}
		if got != want {
			t.Errorf("%s = %q, want %q (message %q)", k, got, want, p.Message)
		}
	}
	for _, m := range messages {
		if !strings.Contains(p.Message+"\n"+p.Meaning+"\n"+p.Action, m) {
			t.Errorf("message, meaning and action lack %q:\n%s\n%s\n%s", m, p.Message, p.Meaning, p.Action)
		}
	}
}

// checkDocs compares the documents a call produced with the fixture's "doc:" lines: each
// names a document by id and what it must say (status, number, and its problem's class,
// verdict and code, "-" for no problem; message, a text its problem's message holds;
// wait, how long it says to wait, "none" for no wait).
func checkDocs(t *testing.T, items []Item, f contract.Fixture) {
	t.Helper()
	for _, line := range f.Meta["doc"] {
		want := contract.ParsePairs(line)
		i := slices.IndexFunc(items, func(it Item) bool { return it.Doc.ID == want["id"] })
		if i < 0 {
			t.Errorf("no document %s among %d", want["id"], len(items))
			continue
		}
		it := items[i]
		for k, v := range want {
			var got string
			switch k {
			case "id":
				continue
			case "status":
				got = string(it.Doc.Status)
			case "number":
				got = it.Doc.Number
			case "message":
				got = ""
				if it.Problem != nil && strings.Contains(it.Problem.Message, v) {
					got = v
				}
			case "wait":
				got = "none"
				if it.Problem != nil && it.Problem.HasWait {
					got = it.Problem.Wait.String()
				}
			case "class", "verdict", "code":
				got = "-"
				if it.Problem != nil {
					got = map[string]string{"class": string(it.Problem.Class), "verdict": string(it.Problem.Verdict), "code": it.Problem.Code}[k]
				}
			default:
				t.Errorf("doc: unknown key %q", k)
				continue
			}
			if got != v {
				msg := ""
				if it.Problem != nil {
					msg = it.Problem.Message
				}
				t.Errorf("document %s: %s = %q, want %q (%s)", want["id"], k, got, v, msg)
			}
		}
	}
}

// TestContractFixturesName checks that every fixture says where it comes from in a form
// the README's tables can cite: a source read on a date, or an assumption with its reason.
func TestContractFixturesName(t *testing.T) {
	fixtures, err := contract.Load(contractsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(fixtures) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range fixtures {
		src := f.Get("source")
		if !strings.HasPrefix(src, "assumed") && !strings.Contains(src, "(read ") {
			t.Errorf("%s: source %q names no date read and is not marked assumed", f.Path, src)
		}
		if f.Get("call") == "" {
			t.Errorf("%s: no call", f.Path)
		}
	}
}
