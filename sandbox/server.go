// Package sandbox simulates the five providers emitop speaks to (alegra, sv-dte, certifactu,
// factus, alforse) on one real HTTP server: their endpoints, auth, bodies, rate limits and
// header dialects as PROVIDERS.md describes them, with documents that change over time and
// faults on demand. Everything a scenario does follows from its seed (see Options).
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a sandbox.
//
// What is deterministic: with the same Scenario and Seed, two sandboxes hold the same
// accounts, credentials, documents (ids, numbers, amounts, states, rejection codes) and
// faults (latency, maintenance spans, fix times); logical step k (Scenario step length
// after the start) changes the same documents the same way; the n-th emission request of
// an account meets the same after-commit fault; and the outcome of emitting a document
// depends only on the document, its attempts and whether the account is fixed. What is
// not: which step a request lands in (that is the clock's business; inject Clock to pin
// it), the order of concurrent requests to one account, timestamps, and tokens.
type Options struct {
	Scenario string           // "demo" (default), "calm" or "storm"
	Seed     uint64           // every random choice derives from it
	Clock    func() time.Time // nil means time.Now
	Limits   Limits           // zero fields keep the providers' real limits
	// Documents, when > 0, is how many documents each account starts with, instead of
	// the scenario's own number (12, 20 or 30): a bulk retry long enough to measure. At
	// most MaxDocuments.
	Documents int
	// FactusTokenTTL and AlforseTokenTTL are the access tokens' lives: 1 h and 15 min
	// unless set (a Faults.TokenTTL overrides them per account).
	FactusTokenTTL  time.Duration
	AlforseTokenTTL time.Duration
	// NoFaults starts every account without the scenario's faults (tests set them).
	NoFaults bool
	// Accounts, when > 0, is how many accounts each provider serves, a fleet to test on:
	// its documented ones first, then more named like them (alegra-0003, sv-0003, …),
	// each with its own credentials, documents and budget; the demo's accounts that each
	// show a case of their own are left out. At most MaxAccounts.
	Accounts int
}

// MaxDocuments bounds Options.Documents.
const MaxDocuments = 10_000

// MaxAccounts bounds Options.Accounts: a fleet of 10,000 accounts per provider.
const MaxAccounts = 10_000

// Limits overrides the providers' rate limits, per account (per credential).
type Limits struct {
	Alegra     Rate        // 150/min, X-Rate-Limit-* with delta reset
	SVDTE      []Throttler // short 3/1 s, medium 20/10 s, long 100/60 s, suffixed headers
	SVDTEEpoch bool        // sv-dte speaks the documented unsuffixed epoch form instead
	Certifactu Rate        // 100/min, X-RateLimit-* with epoch reset and Date
	// CertifactuStock is the stock limiter of the demo's cf-valencia: a server whose
	// headers state a shorter window than the documented one (20 per 10 s).
	CertifactuStock Rate
	Factus          Rate // 80/min (Factus v2 docs, limite-de-request), Laravel headers
	AlforseLogin    Rate // 5/min on POST /auth/login, per email; no headers
}

func (l Limits) withDefaults() Limits {
	def := func(r *Rate, limit int, period time.Duration) {
		if r.Limit <= 0 || r.Period <= 0 {
			*r = Rate{Limit: limit, Period: period}
		}
	}
	def(&l.Alegra, 150, time.Minute)
	def(&l.Certifactu, 100, time.Minute)
	def(&l.CertifactuStock, 20, 10*time.Second)
	def(&l.Factus, 80, time.Minute)
	def(&l.AlforseLogin, 5, time.Minute)
	if len(l.SVDTE) == 0 {
		l.SVDTE = []Throttler{
			{Name: "short", Limit: 3, TTL: time.Second},
			{Name: "medium", Limit: 20, TTL: 10 * time.Second},
			{Name: "long", Limit: 100, TTL: time.Minute},
		}
	}
	return l
}

// Account is one simulated account as a client configures it.
type Account struct {
	Name        string
	Provider    string
	Path        string            // the base path on the sandbox, e.g. "/sv-dte"
	BaseURL     string            // the sandbox's URL + Path; "" until Start
	Credentials map[string]string // config keys: email, token, api_key, client_id, ...
	Settings    map[string]string // the provider's settings: api_version, gateway, tenant
}

// Sandbox is the five providers on one HTTP handler.
type Sandbox struct {
	seed    uint64
	sc      scenario
	now     func() time.Time
	start   time.Time
	limits  Limits
	ttl     map[string]time.Duration // default access-token life by provider
	dialect map[string]*dialect      // by path root ("alegra", "sv-dte", ...)
	order   []*account
	byName  map[string]*account
	idxMu   sync.Mutex
	index   map[string]map[string]*account // accounts by credentials: see find
	base    atomic.Pointer[string]

	tokMu  sync.Mutex
	tokens map[string]*token // access and refresh tokens of factus and alforse

	srv *http.Server
}

// token is an issued access or refresh token.
type token struct {
	account *account
	expires time.Time // access tokens only
	refresh bool
	used    bool   // a refresh token already redeemed (refresh tokens rotate)
	scope   string // "" for a provider's token; scopeGateway for a gateway's own JWT
}

// scopeGateway marks the JWT the FastAPI gateway issues for its own login.
const scopeGateway = "gateway"

// dialect is what one provider contributes: its accounts' shapes, its catalog of
// rejections, its answers to the common troubles and its routes.
type dialect struct {
	name     string // provider name
	root     string // first path segment
	base     string // base path of every account
	accounts []string
	extra    []string // accounts only the demo has, to show a case of its own
	catalog  []reason
	drafts   bool // documents can be drafts (alegra)
	pending  bool // documents wait for the authority after sending
	awaits   bool // a pending document awaits the client's emission (alforse: its invoice)
	ident    func(a *account, d *doc, rng *mrand.Rand)
	creds    func(a *account, rng *mrand.Rand) map[string]string
	settings func(a *account) map[string]string // the account's provider settings; nil for none
	limiter  func(a *account, l Limits) limiter
	rate     func(l Limits) float64 // the sustained requests per second the limits allow
	// tooMany, unavailable and serverError answer those troubles in the dialect's shape.
	tooMany     func(w http.ResponseWriter, retry time.Duration)
	unavailable func(w http.ResponseWriter)
	serverError func(w http.ResponseWriter)
	serve       func(s *Sandbox, d *dialect, w http.ResponseWriter, r *http.Request, rest string)
}

// dialects are the providers in the order their accounts are listed; the FastAPI
// service in front of Factus (seed 003) is one more, of provider factus.
var dialects = []*dialect{alegra, svdte, certifactu, factus, factusGateway, alforse}

// account is one simulated account with its documents, limits, faults and counters.
type account struct {
	s     *Sandbox
	d     *dialect
	name  string
	creds map[string]string

	mu           sync.Mutex
	churn        *mrand.Rand
	docs         []*doc
	byID         map[string]*doc
	byRef        map[string]*doc
	byNumber     map[string]*doc
	seq          int     // next churn document
	created      int     // documents created by clients' emissions
	step         int     // last logical step applied
	limit        limiter // alforse: the login's
	faults       Faults
	prodNext     time.Time // next production-traffic hit
	fixAfter     time.Duration
	fixedNow     bool
	emitRequests int
	stats        AccountStats
}

// New builds a sandbox for the scenario and seed.
func New(opts Options) (*Sandbox, error) {
	if opts.Scenario == "" {
		opts.Scenario = "demo"
	}
	sc, ok := scenarios[opts.Scenario]
	if !ok {
		return nil, fmt.Errorf("sandbox: unknown scenario %q (want calm, demo or storm)", opts.Scenario)
	}
	if opts.Documents < 0 || opts.Documents > MaxDocuments {
		return nil, fmt.Errorf("sandbox: %d documents per account: want 0 to %d", opts.Documents, MaxDocuments)
	}
	if opts.Documents > 0 {
		sc.initial = opts.Documents
	}
	if opts.Accounts < 0 || opts.Accounts > MaxAccounts {
		return nil, fmt.Errorf("sandbox: %d accounts per provider: want 1 to %d", opts.Accounts, MaxAccounts)
	}
	now := opts.Clock
	if now == nil {
		now = time.Now
	}
	s := &Sandbox{
		seed: opts.Seed, sc: sc, now: now, start: now(), limits: opts.Limits.withDefaults(),
		ttl: map[string]time.Duration{
			"factus": cmp(opts.FactusTokenTTL, time.Hour), "alforse": cmp(opts.AlforseTokenTTL, 15*time.Minute),
		},
		dialect: map[string]*dialect{}, byName: map[string]*account{}, index: map[string]map[string]*account{}, tokens: map[string]*token{},
	}
	for _, d := range dialects {
		s.dialect[d.root] = d
		names := d.accounts
		switch {
		case opts.Accounts > 0:
			names = fleet(d.accounts, opts.Accounts)
		case sc.extra:
			names = append(append([]string(nil), names...), d.extra...)
		}
		for _, name := range names {
			a := &account{
				s: s, d: d, name: name, churn: seeded(s.seed, name, saltChurn),
				byID: map[string]*doc{}, byRef: map[string]*doc{}, byNumber: map[string]*doc{},
				fixAfter: sc.fixAfter[name],
				stats:    AccountStats{Attempts: map[string]int{}},
			}
			a.limit = d.limiter(a, s.limits)
			a.creds = d.creds(a, seeded(s.seed, name, saltCreds))
			if !opts.NoFaults {
				a.faults = sc.faults(a, seeded(s.seed, name, saltFaults))
			}
			a.prodNext = s.start
			a.seed(sc, s.start)
			s.order = append(s.order, a)
			s.byName[name] = a
		}
	}
	return s, nil
}

// fleet is n account names of a provider: its documented ones first, then more with the
// first one's prefix (alegra-co → alegra-0003, …).
func fleet(documented []string, n int) []string {
	if len(documented) == 0 {
		return nil
	}
	names := slices.Clone(documented[:min(n, len(documented))])
	prefix, _, _ := strings.Cut(documented[0], "-")
	for i := len(names) + 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("%s-%04d", prefix, i))
	}
	return names
}

func cmp(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// rateShare is the sustained requests per second the account's limits allow.
func (a *account) rateShare() float64 { return a.d.rate(a.s.limits) }

// Handler serves every provider under its path prefix.
func (s *Sandbox) Handler() http.Handler { return http.HandlerFunc(s.route) }

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background; it returns
// the base URL ("http://127.0.0.1:PORT").
func (s *Sandbox) Start(addr string) (string, error) {
	if s.srv != nil {
		return "", errors.New("sandbox: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sandbox: listen %s: %w", addr, err)
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String()
	s.base.Store(&base)
	go s.srv.Serve(ln)
	return base, nil
}

// Close stops the server started by Start, cutting open connections (and the answers
// that faults hold back).
func (s *Sandbox) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// Shutdown stops the server gracefully, waiting for answers in flight until ctx ends.
func (s *Sandbox) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// Accounts lists the accounts in a fixed order: by provider, then by name.
func (s *Sandbox) Accounts() []Account {
	base := ""
	if p := s.base.Load(); p != nil {
		base = *p
	}
	out := make([]Account, 0, len(s.order))
	for _, a := range s.order {
		acc := Account{Name: a.name, Provider: a.d.name, Path: a.d.base, Credentials: map[string]string{}, Settings: map[string]string{}}
		if a.d.settings != nil {
			acc.Settings = a.d.settings(a)
		}
		if base != "" {
			acc.BaseURL = base + a.d.base
		}
		for k, v := range a.creds {
			acc.Credentials[k] = v
		}
		out = append(out, acc)
	}
	return out
}

// Fix removes the outside cause (certificate, plan, enablement) of the account's
// rejections: from now on resending such a document gets it accepted.
func (s *Sandbox) Fix(account string) {
	if a := s.byName[account]; a != nil {
		a.mu.Lock()
		a.fixedNow = true
		a.mu.Unlock()
	}
}

// SetFaults replaces the account's faults (the scenario's included).
func (s *Sandbox) SetFaults(account string, f Faults) {
	if a := s.byName[account]; a != nil {
		a.mu.Lock()
		a.faults = f
		a.prodNext = s.now()
		a.mu.Unlock()
	}
}

// Faults returns the account's current faults.
func (s *Sandbox) Faults(account string) Faults {
	a := s.byName[account]
	if a == nil {
		return Faults{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.faults
}

// route dispatches by the first path segment to a provider, and serves the counters.
func (s *Sandbox) route(w http.ResponseWriter, r *http.Request) {
	root, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	d := s.dialect[root]
	if d == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	rest, ok := strings.CutPrefix(r.URL.Path, d.base)
	if r.URL.Path == "/"+root+"/__sandbox/stats" || ok && rest == "/__sandbox/stats" {
		writeJSON(w, http.StatusOK, s.Stats(d.name))
		return
	}
	if !ok || rest != "" && rest[0] != '/' {
		http.NotFound(w, r)
		return
	}
	d.serve(s, d, w, r, rest)
}

// gate is what every request of an account passes before its handler: documents advance,
// production traffic spends its share, maintenance answers 503, the rate limit counts it,
// and latency delays it. It locks a.mu and returns with it held when the request may go
// on; when it answered, the lock is released and ok is false.
func (s *Sandbox) gate(w http.ResponseWriter, r *http.Request, a *account, lim limiter) (now time.Time, ok bool) {
	now = s.now()
	a.mu.Lock()
	a.stats.Requests++
	a.advance(now)
	a.produce(now)
	since := now.Sub(s.start)
	for _, sp := range a.faults.Maintenance {
		if in, left := sp.covers(since); in {
			latency := a.faults.Latency
			a.mu.Unlock()
			w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(left), 10))
			if sleep(r.Context(), latency) {
				a.d.unavailable(w)
			}
			return now, false
		}
	}
	if lim != nil {
		if pass, retry := lim.take(now, w.Header()); !pass {
			a.stats.RateLimited++
			latency := a.faults.Latency
			a.mu.Unlock()
			if sleep(r.Context(), latency) {
				a.d.tooMany(w, retry)
			}
			return now, false
		}
	}
	if latency := a.faults.Latency; latency > 0 {
		a.mu.Unlock()
		if !sleep(r.Context(), latency) {
			return now, false
		}
		a.mu.Lock()
	}
	return now, true
}

// produce spends the account's budget as another client would have until now.
func (a *account) produce(now time.Time) {
	rate := a.faults.ProductionRate
	if rate <= 0 {
		return
	}
	every := time.Duration(float64(time.Second) / rate)
	if every <= 0 {
		every = time.Nanosecond
	}
	if oldest := now.Add(-a.limit.span()); a.prodNext.Before(oldest) {
		a.prodNext = oldest
	}
	for !a.prodNext.After(now) {
		if a.limit.spend(a.prodNext) {
			a.stats.Production++
		}
		a.prodNext = a.prodNext.Add(every)
	}
}

// finish writes an emission's answer, after the fault decided for it: faultLate holds the
// answer back for TimeoutDelay (the client has given up), faultServer answers 500 instead.
// The caller has released a.mu; body is the answer as committed.
func (a *account) finish(w http.ResponseWriter, r *http.Request, f emitFault, delay time.Duration, status int, body []byte) {
	switch f {
	case faultLate:
		if !sleep(r.Context(), cmp(delay, 35*time.Second)) {
			return
		}
	case faultServer:
		a.d.serverError(w)
		return
	}
	writeRaw(w, status, body)
}

// sleep waits d or until ctx ends; it reports whether the whole wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// mustJSON marshals values the sandbox builds itself (maps, slices, strings, numbers).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sandbox: marshal: %v", err))
	}
	return b
}

// obj is a JSON object; encoding/json sorts its keys, which keeps answers byte-stable.
type obj = map[string]any

// page cuts one page out of docs: page numbers start at 1.
func page[T any](all []T, pageNo, size int) []T {
	from := (pageNo - 1) * size
	if from >= len(all) || from < 0 {
		return []T{}
	}
	return all[from:min(len(all), from+size)]
}

// intParam reads a query integer, def when absent; ok is false when it is not a number.
func intParam(r *http.Request, name string, def int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// sortedByN lists the account's documents matching keep, oldest first, as reads show them
// now (see view).
func (a *account) sortedByN(keep func(*doc) bool) []*doc {
	out := make([]*doc, 0, len(a.docs))
	now := a.s.now()
	for _, d := range a.docs {
		if d = a.view(d, now); keep(d) {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out
}

// find is the provider's account whose credentials, as key puts them, are want; nil
// when none. The accounts are indexed by that key (one index per provider and kind,
// built at first use), so that a lookup costs the same with 10,000 accounts as with one;
// the first account in the listing order wins a key two share.
func (s *Sandbox) find(d *dialect, kind string, key func(a *account) string, want string) *account {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	idx := s.index[d.name+"/"+kind]
	if idx == nil {
		idx = map[string]*account{}
		for _, a := range s.order {
			if k := key(a); a.d == d && idx[k] == nil {
				idx[k] = a
			}
		}
		s.index[d.name+"/"+kind] = idx
	}
	return idx[want]
}

// credKey joins credential values into one key of an index.
func credKey(values ...string) string { return strings.Join(values, "\x00") }

// randomText is an unguessable token body.
func randomText() string { return rand.Text() }

// issue creates an access (and refresh) token for a.
func (s *Sandbox) issue(a *account, ttl time.Duration, now time.Time, prefix string) (access, refresh string) {
	return s.issueScoped(a, ttl, now, prefix, "")
}

// issueScoped creates an access (and refresh) token of a scope for a.
func (s *Sandbox) issueScoped(a *account, ttl time.Duration, now time.Time, prefix, scope string) (access, refresh string) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	access = prefix + randomText()
	refresh = "rt_" + randomText()
	s.tokens[access] = &token{account: a, expires: now.Add(ttl), scope: scope}
	s.tokens[refresh] = &token{account: a, refresh: true, scope: scope}
	return access, refresh
}

// bearer finds the account of a valid access token in Authorization.
func (s *Sandbox) bearer(r *http.Request, now time.Time) (*account, bool) {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, false
	}
	return s.token(strings.TrimSpace(v), now)
}

// token finds the account of a valid access token; expired tokens are dropped.
func (s *Sandbox) token(v string, now time.Time) (*account, bool) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	t := s.tokens[v]
	if t == nil || t.refresh {
		return nil, false
	}
	if !now.Before(t.expires) {
		delete(s.tokens, v)
		return nil, false
	}
	return t.account, true
}

// scoped reports whether the bearer token in an Authorization value has the scope.
func (s *Sandbox) scoped(authorization, scope string) bool {
	v, _ := strings.CutPrefix(authorization, "Bearer ")
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	t := s.tokens[strings.TrimSpace(v)]
	return t != nil && t.scope == scope
}

// redeem spends a refresh token (refresh tokens rotate) and says whose it was; revoked
// is true when it had been used already.
func (s *Sandbox) redeem(rt string) (a *account, revoked bool) {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	t := s.tokens[rt]
	if t == nil || !t.refresh {
		return nil, false
	}
	if t.used {
		return nil, true
	}
	t.used = true
	return t.account, false
}
