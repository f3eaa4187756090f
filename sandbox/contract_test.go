package sandbox

import (
	"encoding/base64"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"

	"emitop/contract"
)

// TestSandboxSpeaksTheContracts replays every contract fixture that names a sandbox
// account ("# sandbox: ACCOUNT [TOKEN=STATE…]") against the demo's sandbox and checks that
// the sandbox answers in the fixture's shape: the same status, every header the fixture
// shows, and every field of the fixture's body with the same kind of value. The sandbox
// follows the fixtures, not the other way round.
//
// A TOKEN of the fixture's request (a document's id, number or reference) is replaced by
// the sandbox's own: STATE is the document's state (accepted, pending, rejected-data,
// rejected-outside, rejected-fixed (its outside cause gone), rejected-transient,
// rejected-rule (told by a DIAN rule alone), missing) and an optional .number or
// .ref picks what stands for it (the id by default); cred.KEY and setting.KEY stand for
// the account's credential and setting. auth=bad sends a wrong credential, auth=expired
// expires the account's key first.
func TestSandboxSpeaksTheContracts(t *testing.T) {
	fixtures, err := contract.Load("../testdata/contracts")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fixtures {
		line := f.Get("sandbox")
		if line == "" {
			continue
		}
		n++
		t.Run(f.Provider+"/"+f.Name, func(t *testing.T) { replay(t, f, line) })
	}
	if n < 20 {
		t.Fatalf("only %d fixtures replayed against the sandbox", n)
	}
}

func replay(t *testing.T, f contract.Fixture, line string) {
	if f.Request == nil {
		t.Fatal("a fixture replayed against the sandbox needs its request")
	}
	// sv-dte's three throttlers keep their names (the fixtures show them), with room enough.
	e := newEnv(t, Options{Scenario: "demo", Seed: 7, Limits: Limits{SVDTE: []Throttler{
		{"short", 1000, time.Second}, {"medium", 1000, 10 * time.Second}, {"long", 1000, time.Minute}}}})
	name, rest, _ := strings.Cut(line, " ")
	a := e.s.byName[name]
	if a == nil {
		t.Fatalf("no sandbox account %q", name)
	}
	path, body := f.Request.Target, string(f.Request.Body)
	auth := ""
	k := 0
	for token, state := range contract.ParsePairs(rest) {
		if token == "auth" {
			auth = state
			continue
		}
		with := e.stand(a, state, &k)
		path, body = strings.ReplaceAll(path, token, with), strings.ReplaceAll(body, token, with)
	}
	if auth == "expired" {
		e.s.SetFaults(name, Faults{KeyExpired: true})
	}
	req, err := http.NewRequest(f.Request.Method, e.url+a.d.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range f.Request.Header {
		if vs[0] != "*" && !strings.EqualFold(k, "Authorization") && !strings.EqualFold(k, "X-API-Key") && !strings.EqualFold(k, "X-Factus-Token") {
			req.Header.Set(k, vs[0])
		}
	}
	// A login authenticates with its body, unless it goes through a gateway's own credential.
	if call := f.Get("call"); call != "login" && call != "refresh" || f.Request.Header.Get("Authorization") != "" || f.Request.Header.Get("X-API-Key") != "" {
		e.authorize(req, a, auth == "bad")
	}
	got := e.do(req)
	if got.status != f.Response.Status {
		t.Errorf("status %d, want %d: %s", got.status, f.Response.Status, got.body)
	}
	for k := range f.Response.Header {
		switch {
		case strings.EqualFold(k, "Content-Length"), strings.EqualFold(k, "Date") && got.header.Get(k) != "":
		case strings.EqualFold(k, "Content-Type"):
			g, _, _ := mime.ParseMediaType(got.header.Get(k))
			w, _, _ := mime.ParseMediaType(f.Response.Header.Get(k))
			if g != w {
				t.Errorf("Content-Type %q, want %q", g, w)
			}
		case got.header.Get(k) == "":
			t.Errorf("no header %s (the fixture has %s: %s)", k, k, f.Response.Header.Get(k))
		}
	}
	want := contract.ShapeOf(f.Response.Body)
	for _, skip := range strings.Fields(f.Get("shape-skip")) {
		for p := range want {
			if strings.HasPrefix(p, skip+".") || strings.HasPrefix(p, skip+"[]") {
				delete(want, p)
			}
		}
	}
	if missing := contract.ShapeOf(got.body).Missing(want); len(missing) > 0 {
		t.Errorf("the body lacks the fixture's shape:\n%s\nbody: %.400s", strings.Join(missing, "\n"), got.body)
	}
}

// stand is what stands in the sandbox for a fixture's token: a document in state (forced
// into it, the k-th document of the account, so that two tokens get two documents), or
// one of the account's credentials or settings.
func (e *env) stand(a *account, spec string, k *int) string {
	e.t.Helper()
	state, attr, _ := strings.Cut(spec, ".")
	switch state {
	case "cred":
		return a.creds[attr]
	case "setting":
		return a.d.settings(a)[attr]
	case "missing":
		return "00000000-0000-4000-8000-00000000dead"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if *k >= len(a.docs) {
		e.t.Fatalf("%s has only %d documents", a.name, len(a.docs))
	}
	d := a.docs[*k]
	*k++
	d.why, d.observed = nil, false
	switch state {
	case "accepted":
		d.state = accepted
	case "pending":
		d.state, d.resolveAt = pending, 1<<30
	case "rejected-data", "rejected-outside", "rejected-fixed", "rejected-transient", "rejected-rule":
		d.state = rejected
		for i := range a.d.catalog {
			r := &a.d.catalog[i]
			if state == "rejected-rule" && strings.HasPrefix(r.message, "Regla:") ||
				state == "rejected-data" && r.cause == causeData ||
				(state == "rejected-outside" || state == "rejected-fixed") && r.cause == causeOutside ||
				state == "rejected-transient" && r.cause == causeTransient {
				d.why = r
				break
			}
		}
		if state == "rejected-fixed" {
			a.fixedNow = true // the outside cause is gone: sending it again is accepted
		}
		if d.why == nil {
			e.t.Fatalf("%s's catalog has no reason for %s", a.name, state)
		}
	default:
		e.t.Fatalf("unknown state %q", state)
	}
	switch attr {
	case "number":
		return d.number
	case "ref":
		return d.ref
	}
	return d.id
}

// authorize authenticates req as a, the way its provider takes it (tokens minted
// directly: the logins have fixtures of their own), or with a wrong credential.
func (e *env) authorize(req *http.Request, a *account, wrong bool) {
	cr := a.creds
	if wrong {
		cr = map[string]string{"email": "nobody@example.com", "token": "wrong", "api_key": "wrong"}
	}
	switch {
	case a.d.name == "alegra":
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cr["email"]+":"+cr["token"])))
	case a.d.name == "sv-dte" || a.d.name == "certifactu":
		req.Header.Set("X-API-Key", cr["api_key"])
	case wrong:
		req.Header.Set("Authorization", "Bearer wrong")
		req.Header.Set("X-Factus-Token", "wrong")
	case a.d == factusGateway:
		local, _ := e.s.issueScoped(a, time.Hour, t0, "gwjwt.", scopeGateway)
		remote, _ := e.s.issue(a, time.Hour, t0, "eyJ.")
		req.Header.Set("Authorization", "Bearer "+local)
		req.Header.Set("X-Factus-Token", remote)
	default:
		access, _ := e.s.issue(a, time.Hour, t0, "eyJ.")
		req.Header.Set("Authorization", "Bearer "+access)
	}
}

// TestDemoAccounts checks that the demo holds the accounts of its own cases.
func TestDemoAccounts(t *testing.T) {
	s, err := New(Options{Scenario: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alforse-mfa", "cf-valencia", "factus-cal", "factus-gw"} {
		if s.byName[name] == nil {
			t.Errorf("demo lacks %s", name)
		}
	}
	calm, _ := New(Options{Scenario: "calm"})
	if calm.byName["factus-gw"] != nil {
		t.Error("calm has the demo's extra accounts")
	}
}
