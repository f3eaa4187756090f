package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"emitop/model"
	"emitop/pace"
)

var quick = pace.Backoff{Base: time.Millisecond, Cap: 5 * time.Millisecond, Retries: 3}

func newTestClient(t *testing.T, provider string, h http.Handler, creds map[string]string) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// A roomy governor: these tests are about the client, not about pacing.
	g := pace.NewGovernor([]pace.Limit{{Name: "", Max: 1000, Per: time.Minute}}, 0, nil)
	c, err := NewClient(testAccount(provider, srv.URL, creds), ClientOptions{Version: "1.2.3", Backoff: quick, Governor: g})
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func TestClientStaticAuth(t *testing.T) {
	tests := []struct {
		provider string
		creds    map[string]string
		header   string
		want     string
	}{
		{"alegra", map[string]string{"email": "ops@x.co", "token": "t0k"}, "Authorization", "Basic b3BzQHguY286dDBr"},
		{"sv-dte", map[string]string{"api_key": "sk_user_1"}, "X-API-Key", "sk_user_1"},
		{"certifactu", map[string]string{"api_key": "ck"}, "X-API-Key", "ck"},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			var got, ua string
			c, _ := newTestClient(t, tt.provider, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, ua = r.Header.Get(tt.header), r.UserAgent()
				fmt.Fprint(w, "{}")
			}), tt.creds)
			res, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/invoices?start=0", nil)
			if err != nil || res.Response.Status != 200 || res.Latency <= 0 || res.Response.Received.IsZero() {
				t.Fatalf("res %+v err %v", res, err)
			}
			if got != tt.want || ua != "emitop/1.2.3" {
				t.Errorf("%s = %q, User-Agent %q", tt.header, got, ua)
			}
		})
	}
}

func TestClientRetriesReadsOnly(t *testing.T) {
	var gets, posts atomic.Int32
	c, _ := newTestClient(t, "sv-dte", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if gets.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "{}")
	}), map[string]string{"api_key": "k"})
	res, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/factura", nil)
	if err != nil || res.Response.Status != 200 || res.Attempts != 3 {
		t.Fatalf("read: %+v %v", res, err)
	}
	res, err = c.Do(context.Background(), pace.Write, http.MethodPost, "/factura/emitir", []byte(`{}`))
	if err != nil || res.Response.Status != 500 || res.Attempts != 1 || posts.Load() != 1 {
		t.Fatalf("write: %+v %v, %d posts", res, err, posts.Load())
	}
	gets.Store(-100) // always 503 now: give up after the retries
	res, err = c.Do(context.Background(), pace.Poll, http.MethodGet, "/factura", nil)
	if err != nil || res.Response.Status != 503 || res.Attempts != 1+quick.Retries {
		t.Fatalf("persistent 503: %+v %v", res, err)
	}
}

func TestClient429NotRetried(t *testing.T) {
	var hits atomic.Int32
	c, _ := newTestClient(t, "sv-dte", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After-medium", "9")
		w.WriteHeader(http.StatusTooManyRequests)
	}), map[string]string{"api_key": "k"})
	res, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/factura", nil)
	if err != nil || res.Response.Status != 429 || hits.Load() != 1 {
		t.Fatalf("%+v %v hits %d", res, err, hits.Load())
	}
	if left := time.Until(c.Governor().Held()); left < 8*time.Second || left > 9*time.Second {
		t.Errorf("held for %v, want about 9s", left)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, pace.Write, http.MethodGet, "/factura", nil); !errors.Is(err, context.DeadlineExceeded) || hits.Load() != 1 {
		t.Errorf("during the hold: %v, hits %d", err, hits.Load())
	}
}

func TestClientSendErrors(t *testing.T) {
	release := make(chan struct{})
	c, _ := newTestClient(t, "sv-dte", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			<-release
		case "/big":
			w.Write([]byte(strings.Repeat("x", 2*MaxBody)))
		case "/moved":
			http.Redirect(w, r, "http://127.0.0.1:1/stolen", http.StatusTemporaryRedirect)
		}
	}), map[string]string{"api_key": "k"})
	defer close(release)
	c.account.Timeout = 100 * time.Millisecond

	_, err := c.Do(context.Background(), pace.Write, http.MethodPost, "/slow", []byte(`{"a":1}`))
	var se *SendError
	if !errors.As(err, &se) || !se.Timeout || !se.MayHaveReached || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("write timeout: %v", err)
	}
	res, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/big", nil)
	if err != nil || len(res.Response.Body) != MaxBody {
		t.Fatalf("big body: %v", err)
	}
	res, err = c.Do(context.Background(), pace.Write, http.MethodPost, "/moved", nil)
	if err != nil || res.Response.Status != http.StatusTemporaryRedirect {
		t.Fatalf("redirect followed: %+v %v", res, err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	d, err := NewClient(testAccount("sv-dte", dead, map[string]string{"api_key": "k"}), ClientOptions{Backoff: quick})
	if err != nil {
		t.Fatal(err)
	}
	res, err = d.Do(context.Background(), pace.Write, http.MethodPost, "/factura/emitir", []byte(`{}`))
	if !errors.As(err, &se) || se.MayHaveReached || se.Timeout || res != nil {
		t.Fatalf("refused: %v", err)
	}
	if strings.Contains(err.Error(), "outcome unknown") || !strings.Contains(err.Error(), "did not reach") {
		t.Errorf("refused message: %v", err)
	}
}

// oauthServer issues short-lived tokens like Factus (form grants) or Alforse (JSON login).
type oauthServer struct {
	life time.Duration

	mu         sync.Mutex
	n          int
	valid      map[string]time.Time // access token → expiry
	refreshes  map[string]bool
	logins     int
	renewals   int
	unauth     int
	posts      int
	refuseRenw bool
}

func newOAuthServer(life time.Duration) *oauthServer {
	return &oauthServer{life: life, valid: map[string]time.Time{}, refreshes: map[string]bool{}}
}

func (s *oauthServer) issue() (access, refresh string) {
	s.n++
	access, refresh = fmt.Sprintf("a%d", s.n), fmt.Sprintf("r%d", s.n)
	s.valid[access] = time.Now().Add(s.life)
	s.refreshes[refresh] = true
	return access, refresh
}

// revoke makes every access token invalid, as a server restart or a revocation would.
func (s *oauthServer) revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.valid)
}

func (s *oauthServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	secs := int(s.life / time.Second)
	switch r.URL.Path {
	case "/oauth/token":
		r.ParseForm()
		f := r.PostForm
		if f.Get("client_id") != "cid" || f.Get("client_secret") != "cs" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch f.Get("grant_type") {
		case "password":
			if f.Get("username") != "u" || f.Get("password") != "p" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			s.logins++
		case "refresh_token":
			if s.refuseRenw || !s.refreshes[f.Get("refresh_token")] {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			delete(s.refreshes, f.Get("refresh_token"))
			s.renewals++
		}
		a, rt := s.issue()
		json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": secs, "access_token": a, "refresh_token": rt})
	case "/auth/login", "/auth/refresh":
		var in map[string]string
		json.NewDecoder(r.Body).Decode(&in)
		if r.URL.Path == "/auth/login" {
			if in["email"] != "e@x.co" || in["password"] != "p" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			s.logins++
		} else {
			if s.refuseRenw || !s.refreshes[in["refreshToken"]] {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			delete(s.refreshes, in["refreshToken"])
			s.renewals++
		}
		a, rt := s.issue()
		json.NewEncoder(w).Encode(map[string]any{"accessToken": a, "refreshToken": rt, "expiresIn": fmt.Sprintf("%ds", secs)})
	default:
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if exp, ok := s.valid[tok]; !ok || time.Now().After(exp) {
			s.unauth++
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message":"Unauthorized","statusCode":401}`)
			return
		}
		if r.Method == http.MethodPost {
			s.posts++
		}
		io.WriteString(w, `{"status":"OK","data":{"data":[]}}`)
	}
}

func TestClientTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider, read, write string
		creds                 map[string]string
	}{
		{"factus", "/v1/bills?page=1", "/v1/bills/validate", map[string]string{"client_id": "cid", "client_secret": "cs", "username": "u", "password": "p"}},
		{"alforse", "/payments?tab=invoice", "/payments/7/invoice", map[string]string{"email": "e@x.co", "password": "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			s := newOAuthServer(time.Second)
			c, _ := newTestClient(t, tt.provider, s, tt.creds)
			ctx := context.Background()
			get := func() *Result {
				t.Helper()
				res, err := c.Do(ctx, pace.Poll, http.MethodGet, tt.read, nil)
				if err != nil || res.Response.Status != 200 {
					t.Fatalf("read: %+v %v", res, err)
				}
				return res
			}
			// Reads across two lifetimes: renewed before expiry, never a 401.
			deadline := time.Now().Add(2200 * time.Millisecond)
			reads := 0
			for time.Now().Before(deadline) {
				get()
				reads++
				time.Sleep(50 * time.Millisecond)
			}
			s.mu.Lock()
			logins, renewals, unauth := s.logins, s.renewals, s.unauth
			s.mu.Unlock()
			if logins != 1 || renewals < 2 || unauth != 0 {
				t.Fatalf("%d reads: %d logins, %d renewals, %d 401s", reads, logins, renewals, unauth)
			}
			// Token requests pass the governor like any other.
			if w := c.Governor().Windows(time.Now()); w[0].Remaining != 1000-reads-logins-renewals {
				t.Errorf("governor counted %d, want %d requests", 1000-w[0].Remaining, reads+logins+renewals)
			}
			// A revoked token: one renewal, then the read is repeated.
			s.revoke()
			if res := get(); res.Attempts != 2 {
				t.Errorf("read after revocation took %d attempts", res.Attempts)
			}
			// Renewal refused: a fresh login, then the read.
			s.mu.Lock()
			s.refuseRenw = true
			s.mu.Unlock()
			s.revoke()
			get()
			// A write meeting a 401 is not repeated; the next call has a fresh token.
			s.revoke()
			res, err := c.Do(ctx, pace.Write, http.MethodPost, tt.write, []byte(`{}`))
			if err != nil || res.Response.Status != 401 || res.Attempts != 1 {
				t.Fatalf("write after revocation: %+v %v", res, err)
			}
			res, err = c.Do(ctx, pace.Write, http.MethodPost, tt.write, []byte(`{}`))
			if err != nil || res.Response.Status != 200 {
				t.Fatalf("write with a fresh token: %+v %v", res, err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.logins != 3 || s.renewals != renewals+1 || s.posts != 1 {
				t.Errorf("logins %d renewals %d (before %d) posts %d", s.logins, s.renewals, renewals, s.posts)
			}
		})
	}
}

func TestClientLoginRefused(t *testing.T) {
	s := newOAuthServer(time.Second)
	c, _ := newTestClient(t, "factus", s, map[string]string{"client_id": "cid", "client_secret": "cs", "username": "u", "password": "wrong"})
	_, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/v1/bills", nil)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Step != "login" || ae.Response.Status != 401 {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "cs") {
		t.Errorf("error shows a credential: %v", err)
	}
}

func TestLifetime(t *testing.T) {
	tests := map[string]time.Duration{
		`3600`: time.Hour, `"15m"`: 15 * time.Minute, `"900"`: 15 * time.Minute, `1.5`: 1500 * time.Millisecond,
		`null`: 0, `"soon"`: 0, `-5`: 0, ``: 0, `{}`: 0,
	}
	for in, want := range tests {
		if got := lifetime(json.RawMessage(in)); got != want {
			t.Errorf("lifetime(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	b := pace.Backoff{Base: 100 * time.Millisecond, Cap: time.Second}
	for attempt, ceiling := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		ceiling *= time.Millisecond
		for range 200 {
			if d := b.Delay(attempt); d < 0 || d >= ceiling {
				t.Fatalf("attempt %d: delay %v outside [0, %v)", attempt, d, ceiling)
			}
		}
	}
	if d := (pace.Backoff{}).Delay(3); d != 0 {
		t.Errorf("zero backoff delays %v", d)
	}
}

func TestClientTrace(t *testing.T) {
	var mu sync.Mutex
	var got []Exchange
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, "{}")
		case "/gone":
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"detail":"Invoice not found","code":"NOT_FOUND"}`)
		}
	}))
	g := pace.NewGovernor([]pace.Limit{{Name: "", Max: 1000, Per: time.Minute}}, 0, nil)
	c, err := NewClient(testAccount("certifactu", srv.URL, map[string]string{"api_key": "secret-key"}), ClientOptions{
		Governor: g, Backoff: pace.Backoff{Base: time.Millisecond, Cap: time.Millisecond, Retries: 1},
		Trace: func(x Exchange) { mu.Lock(); got = append(got, x); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Do(ctx, pace.Poll, http.MethodGet, "/ok?api_key=secret-key&page=2", nil)
	c.Do(ctx, pace.Write, http.MethodGet, "/gone", nil)
	srv.Close()
	c.Do(ctx, pace.Poll, http.MethodGet, "/ok", nil)
	want := []Exchange{
		{Account: "acct", Kind: pace.Poll, Method: "GET", Path: "/ok", Status: 200, Class: model.ClassOK},
		{Account: "acct", Kind: pace.Write, Method: "GET", Path: "/gone", Status: 404, Class: model.ClassNotFound},
		{Account: "acct", Kind: pace.Poll, Method: "GET", Path: "/ok", Status: 0, Class: model.ClassUnknown},
		{Account: "acct", Kind: pace.Poll, Method: "GET", Path: "/ok", Status: 0, Class: model.ClassUnknown}, // the retry
	}
	if len(got) != len(want) {
		t.Fatalf("traced %+v", got)
	}
	for i, x := range got {
		if x.At.IsZero() || x.Latency <= 0 {
			t.Errorf("exchange %d: at %v latency %v", i, x.At, x.Latency)
		}
		x.At, x.Latency = time.Time{}, 0
		if x != want[i] {
			t.Errorf("exchange %d = %+v, want %+v", i, x, want[i])
		}
	}
}

// TestSendErrorDropsQuery: a send error reaches logs and the terminal; the query of its
// path (a path override may carry a key there) must not.
func TestSendErrorDropsQuery(t *testing.T) {
	c, _ := newTestClient(t, "sv-dte", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // no response at all
		}
	}), map[string]string{"api_key": "k"})
	_, err := c.Do(context.Background(), pace.Write, http.MethodPost, "/factura/emitir?key=s3cr3t-in-query", []byte(`{}`))
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *SendError", err)
	}
	if se.Path != "/factura/emitir" || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("send error %q keeps the query (path %q)", err, se.Path)
	}
}

// TestSlowDripReadTakesOneTimeout: a provider that drips its answer slower than the
// account's timeout costs one timeout, not one per retry.
func TestSlowDripReadTakesOneTimeout(t *testing.T) {
	var asked atomic.Int64
	c, _ := newTestClient(t, "sv-dte", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for range 50 {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}), map[string]string{"api_key": "k"})
	c.account.Timeout = 100 * time.Millisecond
	_, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/factura", nil)
	var se *SendError
	if !errors.As(err, &se) || !se.Timeout {
		t.Fatalf("a dripping read: %v", err)
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("the read was sent %d times", n)
	}
}

// FuzzScrubEscaped: any bytes are scrubbed without a panic, JSON stays JSON, and no
// string of it decodes to text that holds the credential.
func FuzzScrubEscaped(f *testing.F) {
	for _, s := range []string{`{"m":"key sk\/live"}`, `["\u0073k/live", "x"]`, `"unterminated \`, `{"a":"\"sk/live\""}`, `<p>"sk/live"</p>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out := scrubEscaped(body, []string{"sk/live"})
		if !json.Valid(body) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil || !json.Valid(out) {
			t.Fatalf("JSON %s scrubbed to %s: %v", body, out, err)
		}
		if strings.Contains(fmt.Sprint(v), "sk/live") && !bytes.Contains(out, []byte("sk/live")) {
			t.Fatalf("%s scrubbed to %s still decodes to the credential", body, out)
		}
	})
}
