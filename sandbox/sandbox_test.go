package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a sandbox on a test server, with a fake clock and no scenario faults.
type env struct {
	t     *testing.T
	s     *Sandbox
	clock *fakeClock
	url   string
	creds map[string]map[string]string
	token map[string]string // bearer tokens of factus and alforse accounts
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	c := &fakeClock{t: t0}
	opts.Clock = c.now
	opts.NoFaults = true
	if opts.Limits.SVDTE == nil { // the fake clock stands still: 3 a second would bite every test
		opts.Limits.SVDTE = []Throttler{{"short", 1000, time.Second}}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, s: s, clock: c, url: srv.URL, creds: map[string]map[string]string{}, token: map[string]string{}}
	for _, a := range s.Accounts() {
		e.creds[a.Name] = a.Credentials
	}
	return e
}

// reply is one HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// call sends a request as the account (its credentials in its provider's way).
func (e *env) call(account, method, path string, body any) reply {
	e.t.Helper()
	a := e.s.byName[account]
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd = strings.NewReader(b)
	default:
		rd = bytes.NewReader(mustJSON(b))
	}
	req, err := http.NewRequest(method, e.url+a.d.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	cr := e.creds[account]
	switch a.d.name {
	case "alegra":
		req.SetBasicAuth(cr["email"], cr["token"])
	case "sv-dte", "certifactu":
		req.Header.Set("X-API-Key", cr["api_key"])
	case "factus", "alforse":
		if !strings.Contains(path, "oauth/token") && !strings.HasPrefix(path, "/auth/") {
			if e.token[account] == "" {
				e.login(account)
			}
			req.Header.Set("Authorization", "Bearer "+e.token[account])
		}
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, res.Header, b}
}

// login gets a token for a factus or alforse account; it returns the refresh token.
func (e *env) login(account string) string {
	e.t.Helper()
	cr := e.creds[account]
	if e.s.byName[account].d.name == "factus" {
		r := e.call(account, "POST", "/oauth/token", url.Values{"grant_type": {"password"},
			"client_id": {cr["client_id"]}, "client_secret": {cr["client_secret"]},
			"username": {cr["username"]}, "password": {cr["password"]}})
		m := r.json(e.t)
		if r.status != 200 {
			e.t.Fatalf("factus token: %d %s", r.status, r.body)
		}
		e.token[account] = m["access_token"].(string)
		return m["refresh_token"].(string)
	}
	r := e.call(account, "POST", "/auth/login", map[string]string{"tenantSlug": alforseTenant(e.s.byName[account]), "email": cr["email"], "password": cr["password"]})
	if r.status != http.StatusCreated {
		e.t.Fatalf("alforse login: %d %s", r.status, r.body)
	}
	m := r.json(e.t)
	e.token[account] = m["accessToken"].(string)
	return m["refreshToken"].(string)
}

// pick finds a document of the account in the state (and, for rejected, the cause).
func (e *env) pick(account string, st state, c cause) *doc {
	e.t.Helper()
	a := e.s.byName[account]
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range a.docs {
		if d.state == st && (st != rejected || d.why.cause == c) {
			return d
		}
	}
	e.t.Fatalf("%s has no %v document (cause %d)", account, st, c)
	return nil
}

// stateOf reads d's state under its account's lock.
func (e *env) stateOf(account string, d *doc) state {
	a := e.s.byName[account]
	a.mu.Lock()
	defer a.mu.Unlock()
	return d.state
}

// emit sends the provider's emission for d.
func (e *env) emit(account string, d *doc) reply {
	e.t.Helper()
	switch e.s.byName[account].d.name {
	case "alegra":
		return e.call(account, "POST", "/invoices/stamp", map[string]any{"ids": []string{d.id}})
	case "sv-dte":
		a := e.s.byName[account]
		a.mu.Lock()
		dte := a.svDTE(d)
		a.mu.Unlock()
		return e.call(account, "POST", "/factura/emitir", string(dte))
	case "certifactu":
		return e.call(account, "POST", "/v1/invoices/"+d.id+"/submit", nil)
	case "factus":
		return e.call(account, "POST", "/v1/bills/validate", map[string]any{"reference_code": d.ref})
	default:
		return e.call(account, "PATCH", "/payments/"+d.id+"/invoice",
			map[string]any{"invoiceAmount": "10.00", "invoiceDate": "2025-01-16", "invoiceNo": "FV-1"})
	}
}

// field walks a decoded JSON value by keys and indexes ("data.0.id").
func field(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, false
			}
		case []any:
			i := 0
			for _, c := range k {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func TestUnknownScenario(t *testing.T) {
	if _, err := New(Options{Scenario: "hurricane"}); err == nil {
		t.Fatal("New accepted an unknown scenario")
	}
}

// TestDocuments: every account starts with the number of documents asked for, instead of
// the scenario's; a number out of bounds is refused.
func TestDocuments(t *testing.T) {
	s, err := New(Options{Scenario: "storm", Seed: 3, Documents: 90})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range s.order {
		if len(a.docs) != 90 {
			t.Errorf("%s: %d documents", a.name, len(a.docs))
		}
	}
	for _, n := range []int{-1, MaxDocuments + 1} {
		if _, err := New(Options{Documents: n}); err == nil {
			t.Errorf("%d documents accepted", n)
		}
	}
}

func TestAccounts(t *testing.T) {
	s, err := New(Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]string{
		"alegra-co": "/alegra/api/v1", "alegra-mx": "/alegra/api/v1", "sv-main": "/sv-dte", "sv-branch": "/sv-dte",
		"cf-madrid": "/certifactu", "cf-sevilla": "/certifactu", "factus-bog": "/factus", "factus-med": "/factus",
		"alforse-main": "/alforse/api/v1", "alforse-ops": "/alforse/api/v1",
		// The demo's own cases.
		"cf-valencia": "/certifactu", "factus-cal": "/factus", "factus-gw": "/factus-gw", "alforse-mfa": "/alforse/api/v1",
	}
	keys := map[string]string{"alegra": "email token", "sv-dte": "api_key", "certifactu": "api_key",
		"factus": "username password", "alforse": "email password"}
	accs := s.Accounts()
	if len(accs) != len(want) {
		t.Fatalf("%d accounts, want %d", len(accs), len(want))
	}
	for _, a := range accs {
		if a.BaseURL != base+want[a.Name] {
			t.Errorf("%s: base URL %q, want %q", a.Name, a.BaseURL, base+want[a.Name])
		}
		for _, k := range strings.Fields(keys[a.Provider]) {
			if a.Credentials[k] == "" {
				t.Errorf("%s: no credential %q", a.Name, k)
			}
		}
	}
	if !strings.HasPrefix(s.Accounts()[2].Credentials["api_key"], "sk_user_") {
		t.Errorf("sv-dte key %q lacks sk_user_", s.Accounts()[2].Credentials["api_key"])
	}
}

// TestShapes checks that every endpoint answers with the fields PROVIDERS.md documents.
func TestShapes(t *testing.T) {
	e := newEnv(t, Options{Seed: 1})
	cf := e.pick("cf-madrid", rejected, causeData)
	sv := e.pick("sv-main", rejected, causeOutside)
	fb := e.pick("factus-bog", rejected, causeData)
	tests := []struct {
		account, path string
		fields        []string
	}{
		{"alegra-co", "/invoices?start=0&limit=30", []string{"0.id", "0.numberTemplate.prefix", "0.numberTemplate.number", "0.numberTemplate.fullNumber", "0.status", "0.stamp.legalStatus", "0.stamp.error.code", "0.stamp.error.message", "19.id"}},
		{"alegra-co", "/invoices?limit=5&metadata=true", []string{"metadata.total", "data.4.id"}},
		{"alegra-co", "/invoices/1000", []string{"id", "stamp.legalStatus", "stamp.warnings"}},
		{"sv-main", "/factura?estado=RECHAZADO&page=1&pageSize=3", []string{"data.0.estado", "data.0.codigoGeneracion", "data.0.numeroControl", "data.0.codigoMsg", "data.0.descripcionMsg", "data.0.observaciones", "data.0.clasificaMsg", "data.0.fhProcesamiento", "page", "total"}},
		{"sv-main", "/factura/" + sv.id, []string{"estado", "codigoMsg", "selloRecibido", "dte.identificacion.codigoGeneracion"}},
		{"cf-madrid", "/v1/invoices?status=rejected&page=1&page_size=5", []string{"data.0.id", "data.0.series_number", "data.0.issuer_nif", "data.0.issue_date", "data.0.status", "data.0.aeat.state", "data.0.aeat.code", "data.0.aeat.description", "page", "page_size", "total"}},
		{"cf-madrid", "/v1/invoices/" + cf.id, []string{"id", "status", "aeat.code"}},
		{"factus-bog", "/v1/bills?filter[status]=0&page=1", []string{"status", "data.data.0.number", "data.data.0.reference_code", "data.data.0.status", "data.data.0.errors", "data.pagination.total", "data.pagination.per_page", "data.pagination.current_page", "data.pagination.last_page"}},
		{"factus-bog", "/v1/bills/show/" + fb.number, []string{"status", "data.bill.number", "data.bill.errors.0", "data.bill.status"}},
		{"alforse-main", "/payments?tab=reconcile&page=1&pageSize=200", []string{"data.0.id", "data.0.reconciliationStatus", "data.0.reconciliationNote", "data.0.invoiceStatus", "page", "pageSize", "total"}},
		{"alforse-main", "/payments?tab=invoice", []string{"data.0.invoiceStatus"}},
		{"alforse-main", "/payments/stats", []string{"total", "awaitingInvoice", "exceptions"}},
	}
	for _, tt := range tests {
		r := e.call(tt.account, "GET", tt.path, nil)
		if r.status != 200 {
			t.Errorf("%s %s: %d %s", tt.account, tt.path, r.status, r.body)
			continue
		}
		var v any
		json.Unmarshal(r.body, &v)
		for _, f := range tt.fields {
			if _, ok := field(v, f); !ok {
				t.Errorf("%s %s: no %s in %.300s", tt.account, tt.path, f, r.body)
			}
		}
	}
	if r := e.call("alegra-co", "GET", "/invoices", nil); !bytes.HasPrefix(r.body, []byte("[")) {
		t.Errorf("alegra list without metadata is not a bare array: %.40s", r.body)
	}
	if m := e.call("alegra-mx", "GET", "/invoices/5000", nil).json(t); m["id"] != float64(5000) {
		t.Errorf("alegra-mx id %v, want the number 5000", m["id"])
	}
	bad := []struct {
		account, path string
		status        int
	}{
		{"alegra-co", "/invoices?limit=31", 400},
		{"sv-main", "/factura?pageSize=51", 400},
		{"cf-madrid", "/v1/invoices?page_size=101", 400},
		{"alforse-main", "/payments?pageSize=201", 400},
		{"alegra-co", "/invoices/99999", 404},
		{"sv-main", "/factura/00000000-0000-4000-8000-000000000000", 404},
		{"cf-madrid", "/v1/invoices/nope", 404},
		{"factus-bog", "/v1/bills/show/NOPE1", 404},
	}
	for _, b := range bad {
		if r := e.call(b.account, "GET", b.path, nil); r.status != b.status {
			t.Errorf("%s %s: %d, want %d", b.account, b.path, r.status, b.status)
		}
	}
}

func TestWrongCredentials(t *testing.T) {
	e := newEnv(t, Options{Seed: 1})
	get := func(path string, set func(*http.Request)) reply {
		req, _ := http.NewRequest("GET", e.url+path, nil)
		set(req)
		return e.do(req)
	}
	tests := []struct {
		name string
		r    reply
		want string // a JSON fragment of the body
	}{
		{"alegra", get("/alegra/api/v1/invoices", func(r *http.Request) { r.SetBasicAuth("x@y.z", "bad") }), `"code":401`},
		{"sv-dte", get("/sv-dte/factura", func(r *http.Request) { r.Header.Set("X-API-Key", "sk_user_bad") }), `{"message":"Unauthorized","statusCode":401}`},
		{"certifactu", get("/certifactu/v1/invoices", func(r *http.Request) {}), `"code":"INVALID_API_KEY","detail":"Invalid or missing API key"`},
		{"factus", get("/factus/v1/bills", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }), `{"message":"Unauthenticated."}`},
		{"alforse missing", get("/alforse/api/v1/payments", func(r *http.Request) {}), `"message":"Missing bearer token"`},
		{"alforse invalid", get("/alforse/api/v1/payments", func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }), `"message":"Invalid or expired access token"`},
	}
	for _, tt := range tests {
		if tt.r.status != 401 || !bytes.Contains(tt.r.body, []byte(tt.want)) {
			t.Errorf("%s: %d %s, want 401 with %s", tt.name, tt.r.status, tt.r.body, tt.want)
		}
	}
	cr := e.creds["factus-bog"]
	r := e.call("factus-bog", "POST", "/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {cr["client_id"]},
		"client_secret": {"wrong"}, "username": {cr["username"]}, "password": {cr["password"]}})
	if r.status != 401 || r.json(t)["error"] != "invalid_client" {
		t.Errorf("factus wrong client secret: %d %s", r.status, r.body)
	}
	r = e.call("factus-bog", "POST", "/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {cr["client_id"]},
		"client_secret": {cr["client_secret"]}, "username": {cr["username"]}, "password": {"wrong"}})
	if r.status != 400 || r.json(t)["error"] != "invalid_grant" {
		t.Errorf("factus wrong password: %d %s", r.status, r.body)
	}
	r = e.call("alforse-main", "POST", "/auth/login", map[string]string{"tenantSlug": alforseTenant(e.s.byName["alforse-main"]), "email": e.creds["alforse-main"]["email"], "password": "wrong"})
	if m := r.json(t); r.status != 401 || m["message"] != "Invalid credentials" || m["error"] != "Unauthorized" {
		t.Errorf("alforse wrong password: %d %s", r.status, r.body)
	}
	e.s.SetFaults("sv-main", Faults{KeyExpired: true})
	if r := e.call("sv-main", "GET", "/factura", nil); r.status != 401 || r.json(t)["message"] != "API Key expirada" {
		t.Errorf("sv-dte expired key: %d %s", r.status, r.body)
	}
}

func TestRateLimitsOverHTTP(t *testing.T) {
	e := newEnv(t, Options{Seed: 3, Limits: Limits{
		Alegra: Rate{2, 10 * time.Second}, Certifactu: Rate{2, 10 * time.Second}, Factus: Rate{2, 10 * time.Second},
		AlforseLogin: Rate{2, 10 * time.Second},
		SVDTE:        []Throttler{{"short", 2, time.Second}, {"medium", 3, 10 * time.Second}},
	}})
	e.login("factus-bog") // the token endpoint is not limited
	tests := []struct {
		account, path string
		hdr           []string // headers the 429 must carry
		noHdr         []string // headers it must not carry
		body          string
	}{
		{"alegra-co", "/invoices", []string{"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"}, nil, `"code":429`},
		{"sv-main", "/factura", []string{"Retry-After-short"}, []string{"X-RateLimit-Remaining-short", "Retry-After"}, `{"message":"ThrottlerException: Too Many Requests","statusCode":429}`},
		{"cf-madrid", "/v1/invoices", []string{"X-RateLimit-Reset", "Date"}, nil, `"retry_after":10`},
		{"factus-bog", "/v1/bills", []string{"Retry-After", "X-RateLimit-Remaining"}, nil, `{"message":"Too Many Attempts."}`},
	}
	for _, tt := range tests {
		for i := range 2 {
			if r := e.call(tt.account, "GET", tt.path, nil); r.status != 200 {
				t.Fatalf("%s request %d: %d %s", tt.account, i+1, r.status, r.body)
			}
		}
		r := e.call(tt.account, "GET", tt.path, nil)
		if r.status != 429 || !bytes.Contains(r.body, []byte(tt.body)) {
			t.Errorf("%s: third request %d %s, want 429 with %s", tt.account, r.status, r.body, tt.body)
		}
		for _, h := range tt.hdr {
			if r.header.Get(h) == "" {
				t.Errorf("%s: 429 lacks %s", tt.account, h)
			}
		}
		for _, h := range tt.noHdr {
			if r.header.Get(h) != "" {
				t.Errorf("%s: 429 carries %s", tt.account, h)
			}
		}
		// Limits are per credential: the other account of the provider is untouched.
		other := map[string]string{"alegra-co": "alegra-mx", "sv-main": "sv-branch", "cf-madrid": "cf-sevilla", "factus-bog": "factus-med"}[tt.account]
		if r := e.call(other, "GET", tt.path, nil); r.status != 200 {
			t.Errorf("%s refused after %s spent its budget: %d", other, tt.account, r.status)
		}
	}
	if got := e.call("cf-madrid", "GET", "/v1/invoices", nil).header.Get("Date"); got != e.clock.now().Format(http.TimeFormat) {
		t.Errorf("certifactu Date %q does not follow the sandbox clock", got)
	}
	cr := e.creds["alforse-main"]
	tenant := alforseTenant(e.s.byName["alforse-main"])
	login := map[string]string{"tenantSlug": tenant, "email": cr["email"], "password": "wrong"}
	e.call("alforse-main", "POST", "/auth/login", login)
	e.call("alforse-main", "POST", "/auth/login", login)
	r := e.call("alforse-main", "POST", "/auth/login", map[string]string{"tenantSlug": tenant, "email": cr["email"], "password": cr["password"]})
	if r.status != 429 || r.json(t)["message"] != "Too many requests" || r.header.Get("Retry-After") != "" || r.header.Get("X-RateLimit-Limit") != "" {
		t.Errorf("alforse third login: %d %v %s, want 429 without headers", r.status, r.header, r.body)
	}
	e.clock.add(10 * time.Second)
	for _, acc := range []string{"alegra-co", "cf-madrid", "factus-bog"} {
		if r := e.call(acc, "GET", map[string]string{"alegra-co": "/invoices", "cf-madrid": "/v1/invoices", "factus-bog": "/v1/bills"}[acc], nil); r.status != 200 {
			t.Errorf("%s after the window: %d", acc, r.status)
		}
	}
	if r := e.call("sv-main", "GET", "/factura", nil); r.status != 200 {
		t.Errorf("sv-main after its block: %d %v", r.status, r.header)
	}
	st := e.s.Stats("sv-dte")
	if st.RateLimited != 1 || st.Accounts["sv-main"].RateLimited != 1 {
		t.Errorf("sv-dte stats count %d 429s, want 1: %+v", st.RateLimited, st)
	}
}

// TestDeterministic: two sandboxes from the same seed serve the same documents and codes,
// step after step, and answer the same emissions the same way; another seed differs.
func TestDeterministic(t *testing.T) {
	a := newEnv(t, Options{Seed: 42})
	b := newEnv(t, Options{Seed: 42})
	c := newEnv(t, Options{Seed: 43})
	paths := map[string]string{
		"alegra-co": "/invoices?limit=30", "alegra-mx": "/invoices?limit=30&start=10",
		"sv-main": "/factura?pageSize=50", "sv-branch": "/factura?estado=RECHAZADO",
		"cf-madrid": "/v1/invoices?page_size=100", "cf-sevilla": "/v1/invoices?page_size=100",
		"factus-bog": "/v1/bills?page=1", "factus-med": "/v1/bills?filter[status]=0",
		"alforse-main": "/payments?tab=all&pageSize=200", "alforse-ops": "/payments?tab=all&pageSize=200",
	}
	differs := 0
	for step := range 4 {
		for acc, p := range paths {
			ra, rb, rc := a.call(acc, "GET", p, nil), b.call(acc, "GET", p, nil), c.call(acc, "GET", p, nil)
			if ra.status != 200 || !bytes.Equal(ra.body, rb.body) {
				t.Fatalf("step %d %s: same seed, different answers:\n%s\n%s", step, acc, ra.body, rb.body)
			}
			if !bytes.Equal(ra.body, rc.body) {
				differs++
			}
		}
		for _, acc := range []string{"alegra-co", "sv-main", "cf-madrid", "factus-bog", "alforse-main"} {
			ea, eb := a.emit(acc, a.pick(acc, rejected, causeData)), b.emit(acc, b.pick(acc, rejected, causeData))
			if ea.status != eb.status || !bytes.Equal(ea.body, eb.body) {
				t.Fatalf("step %d %s: same seed, different emission answers:\n%s\n%s", step, acc, ea.body, eb.body)
			}
		}
		for _, e := range []*env{a, b, c} {
			e.clock.add(e.s.sc.step * 3)
		}
	}
	if differs == 0 {
		t.Fatal("seeds 42 and 43 served identical documents")
	}
	sa, _ := New(Options{Seed: 42, Scenario: "storm", Clock: a.clock.now})
	sb, _ := New(Options{Seed: 42, Scenario: "storm", Clock: a.clock.now})
	for _, acc := range sa.Accounts() {
		x, y := sa.Faults(acc.Name), sb.Faults(acc.Name)
		if x.Latency != y.Latency || len(x.Maintenance) != 1 || x.Maintenance[0] != y.Maintenance[0] {
			t.Fatalf("%s: storm faults differ for one seed: %+v %+v", acc.Name, x, y)
		}
		for k := range 50 {
			if fx, fy := sa.byName[acc.Name].nextEmitFault(), sb.byName[acc.Name].nextEmitFault(); fx != fy {
				t.Fatalf("%s: emission %d fault %d vs %d", acc.Name, k, fx, fy)
			}
		}
	}
}

// TestResend checks each provider's resend rules and the duplicate counter.
func TestResend(t *testing.T) {
	e := newEnv(t, Options{Seed: 5})
	dup := map[string]struct {
		status int
		frag   string
	}{
		"alegra-co":    {200, `AEP6009`},
		"sv-main":      {500, `"codigoMsg":"004"`},
		"cf-madrid":    {409, `"code":"DUPLICATE_INVOICE"`},
		"alforse-main": {409, `"statusCode":409`},
	}
	for acc, want := range dup {
		prov := e.s.byName[acc].d.name
		d := e.pick(acc, accepted, 0)
		r := e.emit(acc, d)
		if r.status != want.status || !bytes.Contains(r.body, []byte(want.frag)) {
			t.Errorf("%s: resending an accepted document: %d %s, want %d with %s", acc, r.status, r.body, want.status, want.frag)
		}
		data := e.pick(acc, rejected, causeData)
		if r := e.emit(acc, data); e.stateOf(acc, data) != rejected || r.status/100 == 2 && !bytes.Contains(r.body, []byte(data.why.code)) {
			t.Errorf("%s: data rejection %s resent: %d %s, want it rejected again", acc, data.why.code, r.status, r.body)
		}
		out := e.pick(acc, rejected, causeOutside)
		e.emit(acc, out)
		if e.stateOf(acc, out) != rejected {
			t.Errorf("%s: outside rejection %s accepted before the fix", acc, out.why.code)
		}
		e.s.Fix(acc)
		if r := e.emit(acc, out); r.status/100 != 2 || e.stateOf(acc, out) != accepted {
			t.Errorf("%s: outside rejection after Fix: %d %s, want accepted", acc, r.status, r.body)
		}
		e.emit(acc, out) // now a duplicate
		st := e.s.Stats(prov)
		if st.DuplicateEmissions != 2 || st.Accounts[acc].DuplicateEmissions != 2 || st.Emissions != 5 {
			t.Errorf("%s: stats %+v, want 2 duplicates of 5 emissions", acc, st)
		}
		if st.Accounts[acc].Attempts[out.id] != 3 {
			t.Errorf("%s: %d attempts of %s, want 3", acc, st.Accounts[acc].Attempts[out.id], out.id)
		}
		r = e.do(mustRequest("GET", e.url+"/"+e.s.byName[acc].d.root+"/__sandbox/stats"))
		if m := r.json(t); r.status != 200 || m["duplicate_emissions"] != float64(2) {
			t.Errorf("%s: stats endpoint %d %s", acc, r.status, r.body)
		}
	}
	// Transient causes (DIAN down) are accepted on resend.
	tr := e.pick("alegra-mx", rejected, causeTransient)
	if r := e.emit("alegra-mx", tr); !bytes.Contains(r.body, []byte(`"success":true`)) {
		t.Errorf("alegra transient %s resent: %s", tr.why.code, r.body)
	}
	// A scenario fix time: demo fixes alegra-co after a minute.
	d := newEnv(t, Options{Seed: 5, Scenario: "demo"})
	out := d.pick("alegra-co", rejected, causeOutside)
	d.emit("alegra-co", out)
	d.clock.add(time.Minute)
	if d.emit("alegra-co", out); d.stateOf("alegra-co", out) != accepted {
		t.Error("demo did not fix alegra-co's certificate after a minute")
	}
}

// clearFactus deletes every bill of the account the DIAN rejected: each blocks the next
// ones until deleted.
func (e *env) clearFactus(account string) {
	e.t.Helper()
	a := e.s.byName[account]
	a.mu.Lock()
	var refs []string
	for _, d := range a.docs {
		if d.state == rejected {
			refs = append(refs, d.ref)
		}
	}
	a.mu.Unlock()
	for _, ref := range refs {
		if r := e.call(account, "DELETE", "/v1/bills/destroy/reference/"+ref, nil); r.status != 200 {
			e.t.Fatalf("delete %s: %d %s", ref, r.status, r.body)
		}
	}
}

// TestFactusBlocksAndDeletes checks the states Factus's docs describe (manejo-errores,
// eliminar): a rejected bill blocks every new one, with a 409 that names it, until it is
// deleted; a validated bill cannot be deleted; a deleted bill is gone.
func TestFactusBlocksAndDeletes(t *testing.T) {
	e := newEnv(t, Options{Seed: 5})
	rej := e.pick("factus-bog", rejected, causeData)
	r := e.call("factus-bog", "POST", "/v1/bills/validate", map[string]any{"reference_code": "NEW-9"})
	if r.status != 409 || !bytes.Contains(r.body, []byte("Se encontró una factura pendiente por enviar a la DIAN")) || !bytes.Contains(r.body, []byte(`"detail":"La factura `)) {
		t.Fatalf("validate with a rejected bill: %d %s", r.status, r.body)
	}
	acc := e.pick("factus-bog", accepted, 0)
	if r := e.call("factus-bog", "DELETE", "/v1/bills/destroy/reference/"+acc.ref, nil); r.status != 409 {
		t.Errorf("deleting a validated bill: %d %s", r.status, r.body)
	}
	if r := e.call("factus-bog", "DELETE", "/v2/bills/destroy/reference/"+rej.ref, nil); r.status != 200 || !bytes.Contains(r.body, []byte("eliminado con éxito")) {
		t.Errorf("deleting a rejected bill (v2): %d %s", r.status, r.body)
	}
	if r := e.call("factus-bog", "GET", "/v1/bills/show/"+rej.number, nil); r.status != 404 {
		t.Errorf("a deleted bill is still read: %d", r.status)
	}
	e.clearFactus("factus-bog")
	if st := e.s.AccountStats("factus-bog"); st.Deleted < 2 {
		t.Errorf("deleted %d, want every rejected bill", st.Deleted)
	}
	if r := e.call("factus-bog", "POST", "/v1/bills/validate", map[string]any{"reference_code": "NEW-9"}); r.status == 409 {
		t.Errorf("validate once cleared: %d %s", r.status, r.body)
	}
}

func mustRequest(method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}

func TestNewDocumentsByEmission(t *testing.T) {
	e := newEnv(t, Options{Seed: 9})
	id := "0F3C1A2B-1111-4222-8333-444455556666"
	dte := `{"identificacion":{"codigoGeneracion":"` + id + `","numeroControl":"DTE-01-M001P001-000000000099999"}}`
	r := e.call("sv-main", "POST", "/factura/emitir", dte)
	if r.status != 201 && r.status != 500 {
		t.Fatalf("new DTE: %d %s", r.status, r.body)
	}
	if g := e.call("sv-main", "GET", "/factura/"+id, nil); g.status != 200 || !bytes.Contains(g.body, []byte(`"numeroControl":"DTE-01-M001P001-000000000099999"`)) {
		t.Errorf("new DTE not kept: %d %s", g.status, g.body)
	}
	if r := e.call("sv-main", "POST", "/factura/emitir", `{"identificacion":{}}`); r.status != 400 || r.json(t)["errores"] == nil {
		t.Errorf("DTE without codigoGeneracion: %d %s", r.status, r.body)
	}
	e.clearFactus("factus-bog")
	r = e.call("factus-bog", "POST", "/v1/bills/validate", map[string]any{"reference_code": "NEW-1"})
	if r.status != 201 && r.status != 422 {
		t.Fatalf("new bill: %d %s", r.status, r.body)
	}
	again := e.call("factus-bog", "POST", "/v1/bills/validate", map[string]any{"reference_code": "NEW-1"})
	if r.status == 201 && (again.status != 409 || !bytes.Contains(again.body, []byte(`"reference_code":"NEW-1"`))) {
		t.Errorf("same reference_code after acceptance: %d %s, want the same bill", again.status, again.body)
	}
	if l := e.call("factus-bog", "GET", "/v1/bills?filter[reference_code]=NEW-1", nil); !bytes.Contains(l.body, []byte(`"total":1`)) {
		t.Errorf("bill NEW-1 not listed once: %s", l.body)
	}
	if r := e.call("factus-bog", "POST", "/v1/bills/validate", map[string]any{}); r.status != 422 || r.json(t)["status"] != "Validation error" {
		t.Errorf("bill without reference_code: %d %s", r.status, r.body)
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t, Options{Seed: 2, FactusTokenTTL: time.Minute, AlforseTokenTTL: 2 * time.Minute})
	for _, acc := range []string{"factus-bog", "alforse-main"} {
		rt := e.login(acc)
		path := map[string]string{"factus-bog": "/v1/bills", "alforse-main": "/payments"}[acc]
		if r := e.call(acc, "GET", path, nil); r.status != 200 {
			t.Fatalf("%s with a fresh token: %d", acc, r.status)
		}
		e.clock.add(2 * time.Minute)
		if r := e.call(acc, "GET", path, nil); r.status != 401 {
			t.Errorf("%s with an expired token: %d, want 401", acc, r.status)
		}
		refresh := func() reply {
			if acc == "factus-bog" {
				cr := e.creds[acc]
				return e.call(acc, "POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
					"client_id": {cr["client_id"]}, "client_secret": {cr["client_secret"]}})
			}
			return e.call(acc, "POST", "/auth/refresh", map[string]string{"refreshToken": rt})
		}
		r := refresh()
		if r.status/100 != 2 {
			t.Fatalf("%s refresh: %d %s", acc, r.status, r.body)
		}
		m := r.json(t)
		tok, _ := m["access_token"].(string)
		if acc == "alforse-main" {
			tok, _ = m["accessToken"].(string)
			if m["expiresIn"] != "2m" {
				t.Errorf("alforse expiresIn %v, want 2m", m["expiresIn"])
			}
		} else if m["expires_in"] != float64(60) || m["token_type"] != "Bearer" {
			t.Errorf("factus token answer %s", r.body)
		}
		e.token[acc] = tok
		if r := e.call(acc, "GET", path, nil); r.status != 200 {
			t.Errorf("%s with the refreshed token: %d", acc, r.status)
		}
		if r := refresh(); r.status/100 != 4 || !bytes.Contains(r.body, []byte("revoked")) {
			t.Errorf("%s reusing a refresh token: %d %s, want revoked", acc, r.status, r.body)
		}
	}
	e.s.SetFaults("alforse-ops", Faults{TokenTTL: time.Second})
	e.login("alforse-ops")
	e.clock.add(time.Second)
	if r := e.call("alforse-ops", "GET", "/payments", nil); r.status != 401 {
		t.Errorf("alforse-ops token past its fault TTL: %d", r.status)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t, Options{Seed: 11})
	// 5xx after commit: the answer is the provider's 500, the emission landed.
	e.s.SetFaults("cf-madrid", Faults{ServerErrorAfterCommit: 1})
	e.s.Fix("cf-madrid")
	out := e.pick("cf-madrid", rejected, causeOutside)
	r := e.emit("cf-madrid", out)
	if r.status != 500 || r.json(t)["code"] != "INTERNAL_ERROR" {
		t.Errorf("5xx after commit: %d %s", r.status, r.body)
	}
	if g := e.call("cf-madrid", "GET", "/v1/invoices/"+out.id, nil); g.json(t)["status"] != "registered" && g.json(t)["status"] != "registered_with_errors" {
		t.Errorf("emission answered 500 did not land: %s", g.body)
	}
	// Timeout after commit: the client gives up, the emission landed.
	e.s.SetFaults("sv-main", Faults{TimeoutAfterCommit: 1, TimeoutDelay: time.Minute})
	e.s.Fix("sv-main")
	sv := e.pick("sv-main", rejected, causeOutside)
	a := e.s.byName["sv-main"]
	a.mu.Lock()
	dte := a.svDTE(sv)
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/sv-dte/factura/emitir", bytes.NewReader(dte))
	req.Header.Set("X-API-Key", e.creds["sv-main"]["api_key"])
	if res, err := http.DefaultClient.Do(req); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		if res != nil {
			res.Body.Close()
		}
		t.Errorf("timeout after commit answered in time: %v", err)
	}
	if g := e.call("sv-main", "GET", "/factura/"+sv.id, nil); g.json(t)["estado"] != "PROCESADO" {
		t.Errorf("emission that timed out did not land: %s", g.body)
	}
	if st := e.s.AccountStats("sv-main"); st.Emissions != 1 {
		t.Errorf("timed-out emission counted %d times, want 1", st.Emissions)
	}
	// Maintenance: 503 in the provider's shape, with Retry-After.
	e.s.SetFaults("alegra-co", Faults{Maintenance: []Span{{From: 0, Until: time.Hour}}})
	if r := e.call("alegra-co", "GET", "/invoices", nil); r.status != 503 || r.header.Get("Retry-After") == "" || r.json(t)["code"] != float64(503) {
		t.Errorf("maintenance: %d %v %s", r.status, r.header, r.body)
	}
	// Latency delays the answer.
	e.s.SetFaults("alegra-mx", Faults{Latency: 50 * time.Millisecond})
	start := time.Now()
	e.call("alegra-mx", "GET", "/invoices", nil)
	if time.Since(start) < 50*time.Millisecond {
		t.Error("latency fault did not delay the answer")
	}
	// Production traffic spends the budget, and the headers show it.
	e.s.SetFaults("cf-sevilla", Faults{ProductionRate: 1})
	e.clock.add(30 * time.Second)
	r = e.call("cf-sevilla", "GET", "/v1/invoices", nil)
	// Hits at 0, 1, ..., 30 s: 31 of them, then the client's.
	if got := r.header.Get("X-RateLimit-Remaining"); got != "68" {
		t.Errorf("remaining after 30 s of 1 req/s production traffic: %s, want 68", got)
	}
	if st := e.s.AccountStats("cf-sevilla"); st.Production != 31 || st.Requests != 1 {
		t.Errorf("cf-sevilla stats %+v, want 31 production and 1 client request", st)
	}
}

// TestStatusLag: with a status lag, an emission commits at once (a second one is a
// duplicate) while every provider's reads and listings show the document as it was until
// the lag has passed.
func TestStatusLag(t *testing.T) {
	e := newEnv(t, Options{Seed: 11})
	read := map[string]func(d *doc) string{
		"alegra-co": func(d *doc) string { return "/invoices/" + d.id },
		"sv-main":   func(d *doc) string { return "/factura/" + d.id },
		"cf-madrid": func(d *doc) string { return "/v1/invoices/" + d.id },
		// factus takes no second validation of a bill it holds rejected: the bill blocks
		// the account until deleted (TestFactusBlocksAndDeletes).
	}
	list := map[string]string{"sv-main": "/factura?estado=RECHAZADO&pageSize=50", "cf-madrid": "/v1/invoices?status=rejected&page_size=100"}
	for acc, path := range read {
		e.s.SetFaults(acc, Faults{StatusLag: time.Minute})
		e.s.Fix(acc)
		d := e.pick(acc, rejected, causeOutside)
		before := e.call(acc, "GET", path(d), nil)
		e.emit(acc, d)
		if e.stateOf(acc, d) != accepted {
			t.Fatalf("%s: the emission did not commit", acc)
		}
		if got := e.call(acc, "GET", path(d), nil); !bytes.Equal(got.body, before.body) {
			t.Errorf("%s: read during the lag shows the commit:\n%s\nwas\n%s", acc, got.body, before.body)
		}
		if l, ok := list[acc]; ok && !bytes.Contains(e.call(acc, "GET", l, nil).body, []byte(d.id)) {
			t.Errorf("%s: the listing of rejected documents during the lag lacks %s", acc, d.id)
		}
		e.emit(acc, d)
		if st := e.s.AccountStats(acc); st.DuplicateEmissions != 1 {
			t.Errorf("%s: an emission during the lag: %+v, want a duplicate", acc, st)
		}
		e.clock.add(time.Minute)
		if got := e.call(acc, "GET", path(d), nil); bytes.Equal(got.body, before.body) {
			t.Errorf("%s: read after the lag still shows %s", acc, got.body)
		}
	}
}

func TestChurn(t *testing.T) {
	e := newEnv(t, Options{Seed: 4, Scenario: "storm"})
	a := e.s.byName["cf-madrid"]
	count := func() (n, pend int) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, d := range a.docs {
			if d.state == pending {
				pend++
			}
		}
		return len(a.docs), pend
	}
	n0, p0 := count()
	if p0 == 0 {
		t.Fatal("storm starts with no pending invoices")
	}
	e.clock.add(100 * e.s.sc.step)
	e.call("cf-madrid", "GET", "/v1/invoices", nil)
	n1, _ := count()
	if n1 <= n0 {
		t.Errorf("no new invoices after 100 steps: %d → %d", n0, n1)
	}
	a.mu.Lock()
	for _, d := range a.docs {
		if d.state == pending && d.resolveAt < a.step {
			t.Errorf("%s still pending past its step %d (now %d)", d.id, d.resolveAt, a.step)
		}
	}
	a.mu.Unlock()
}

// TestConcurrent hammers every account with lists and emissions at once (run with -race).
func TestConcurrent(t *testing.T) {
	e := newEnv(t, Options{Seed: 8, Scenario: "storm"})
	for _, acc := range []string{"factus-bog", "alforse-main"} {
		e.login(acc)
	}
	paths := map[string]string{"alegra-co": "/invoices", "sv-main": "/factura", "cf-madrid": "/v1/invoices",
		"factus-bog": "/v1/bills", "alforse-main": "/payments"}
	docs := map[string]*doc{}
	for acc := range paths {
		docs[acc] = e.pick(acc, rejected, causeOutside)
	}
	var wg sync.WaitGroup
	for acc, p := range paths {
		for range 4 {
			wg.Go(func() {
				for range 25 {
					req := mustRequest("GET", e.url+e.s.byName[acc].d.base+p)
					cr := e.creds[acc]
					req.Header.Set("X-API-Key", cr["api_key"])
					if tok := e.token[acc]; tok != "" {
						req.Header.Set("Authorization", "Bearer "+tok)
					} else {
						req.SetBasicAuth(cr["email"], cr["token"])
					}
					if res, err := http.DefaultClient.Do(req); err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
					e.clock.add(50 * time.Millisecond)
				}
			})
		}
	}
	wg.Wait()
	for acc, d := range docs {
		e.emit(acc, d)
		if st := e.s.AccountStats(acc); st.Requests < 100 {
			t.Errorf("%s counted %d requests, want ≥ 100", acc, st.Requests)
		}
	}
}

// BenchmarkHandlers measures the cost of the handlers themselves (no network): a page of
// 30 alegra invoices, a page of 50 sv-dte answers, and a certifactu resubmission.
func BenchmarkHandlers(b *testing.B) {
	s, err := New(Options{Seed: 1, Scenario: "storm", NoFaults: true, Limits: Limits{
		Alegra: Rate{1 << 30, time.Minute}, Certifactu: Rate{1 << 30, time.Minute},
		SVDTE: []Throttler{{"short", 1 << 30, time.Second}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	accs := map[string]Account{}
	for _, a := range s.Accounts() {
		accs[a.Name] = a
	}
	cf := s.byName["cf-madrid"].docs[0].id
	cases := []struct {
		name, method, path string
		set                func(*http.Request)
	}{
		{"alegra-list", "GET", "/alegra/api/v1/invoices?limit=30", func(r *http.Request) {
			r.SetBasicAuth(accs["alegra-co"].Credentials["email"], accs["alegra-co"].Credentials["token"])
		}},
		{"svdte-list", "GET", "/sv-dte/factura?pageSize=50", func(r *http.Request) {
			r.Header.Set("X-API-Key", accs["sv-main"].Credentials["api_key"])
		}},
		{"certifactu-submit", "POST", "/certifactu/v1/invoices/" + cf + "/submit", func(r *http.Request) {
			r.Header.Set("X-API-Key", accs["cf-madrid"].Credentials["api_key"])
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(c.method, c.path, nil)
				c.set(req)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code >= 500 && c.method == "GET" {
					b.Fatalf("%d", w.Code)
				}
			}
		})
	}
}

// TestFleet: Options.Accounts serves that many accounts per provider, the documented ones
// first; each answers its own credentials only and spends a budget of its own.
func TestFleet(t *testing.T) {
	e := newEnv(t, Options{Seed: 5, Accounts: 4, Limits: Limits{SVDTE: []Throttler{{"short", 2, time.Second}}}})
	list := map[string]string{"alegra": "/invoices", "sv-dte": "/factura", "certifactu": "/v1/invoices", "factus": "/v1/bills", "alforse": "/payments"}
	perProvider := map[string]int{}
	keys := map[string]string{} // every credential value, to whom it belongs
	for _, a := range e.s.Accounts() {
		perProvider[a.Provider]++
		for k, v := range a.Credentials {
			if k == "email" || k == "username" {
				continue // alforse logs in by tenant and email: the tenant tells them apart
			}
			if other, dup := keys[v]; dup {
				t.Errorf("%s and %s share the %s %q", a.Name, other, k, v)
			}
			keys[v] = a.Name
		}
		if r := e.call(a.Name, "GET", list[a.Provider], nil); r.status != 200 {
			t.Errorf("%s lists its documents: %d %s", a.Name, r.status, r.body)
		}
	}
	if len(perProvider) != 5 {
		t.Fatalf("providers %v", perProvider)
	}
	for p, n := range perProvider {
		if n != 4 {
			t.Errorf("%s serves %d accounts, want 4", p, n)
		}
	}
	for _, name := range []string{"sv-main", "sv-branch", "sv-0003", "sv-0004", "alegra-0004", "cf-0003", "factus-0004", "alforse-0003"} {
		if e.s.byName[name] == nil {
			t.Errorf("no account %s", name)
		}
	}
	if e.s.byName["cf-valencia"] != nil || e.s.byName["factus-gw"] != nil {
		t.Error("a fleet keeps the demo's special accounts")
	}
	// sv-0003's budget is its own: spent (2 a second), sv-0004's is whole.
	for range 2 {
		e.call("sv-0003", "GET", "/factura", nil)
	}
	if r := e.call("sv-0003", "GET", "/factura", nil); r.status != 429 {
		t.Errorf("sv-0003 past its budget: %d", r.status)
	}
	if r := e.call("sv-0004", "GET", "/factura", nil); r.status != 200 {
		t.Errorf("sv-0004 while sv-0003 is spent: %d", r.status)
	}
	for _, n := range []int{-1, MaxAccounts + 1} {
		if _, err := New(Options{Accounts: n}); err == nil {
			t.Errorf("%d accounts per provider accepted", n)
		}
	}
}
