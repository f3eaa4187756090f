package poller

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
	"emitop/sandbox"
	"emitop/store"
)

// endlessCertifactu is a Certifactu that claims a billion invoices of each status and
// serves a full page of new ones for every page asked. It counts the requests.
func endlessCertifactu(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		status := r.URL.Query().Get("status")
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		var b strings.Builder
		b.WriteString(`{"data":[`)
		for i := range size {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":"%s-%d-%d","series_number":"F-%d","status":%q,"aeat":{"state":"Incorrecto","code":"1100","description":"Valor incorrecto"}}`,
				status, page, i, i, status)
		}
		b.WriteString(`],"page":` + strconv.Itoa(page) + `,"page_size":` + strconv.Itoa(size) + `,"total":1000000000}`)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

func endlessAccount(url string) config.Account {
	return config.Account{Name: "cf-endless", Provider: "certifactu", BaseURL: url, Timeout: 10 * time.Second,
		PollInterval: time.Minute, Reserve: 0.1, Credentials: config.NewCredentials(map[string]string{"api_key": "cf_test"})}
}

// TestListingIsCut: a provider claiming a billion documents costs one poll a bounded
// listing: it is cut at maxListed documents, and the account says so.
func TestListingIsCut(t *testing.T) {
	srv, requests := endlessCertifactu(t)
	acc := endlessAccount(srv.URL)
	c, err := NewClient(acc, ClientOptions{Version: "test", Governor: pace.NewGovernor(nil, 0.1, nil)})
	if err != nil {
		t.Fatal(err)
	}
	items, err := OpenDocuments(context.Background(), c, pace.Poll)
	var cut *ListingCut
	if !errors.As(err, &cut) || cut.Kept != maxListed || len(items) != maxListed {
		t.Fatalf("OpenDocuments: %d items, %v", len(items), err)
	}
	if got := requests.Load(); got > maxListed/certifactuPage+1 {
		t.Fatalf("%d pages asked for %d documents", got, maxListed)
	}

	// The poller watches what was listed and says the rest is not watched; it reads none
	// of the documents a cut listing left out.
	st := openStore(t)
	p, err := New([]config.Account{acc}, st, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p.accounts[0].client.gov = pace.NewGovernor(nil, 0.1, nil)
	for range 2 {
		requests.Store(0)
		a := stateOf(p.PollOnce(context.Background()), acc.Name)
		if !strings.Contains(a.Err, "listing cut at 10000 documents (more than 10000 documents)") ||
			a.Health != model.HealthDegraded || len(a.Documents) != maxListed {
			t.Fatalf("after a cut listing: %s %q, %d documents", a.Health, a.Err, len(a.Documents))
		}
		if got := requests.Load(); got > maxListed/certifactuPage+1 {
			t.Fatalf("a poll made %d requests", got)
		}
	}
}

// TestHeadersAreBounded: a response whose headers never stop growing is refused, not read.
func TestHeadersAreBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 2000 {
			w.Header().Set(fmt.Sprintf("X-RateLimit-Limit-w%d", i), strings.Repeat("9", 40))
		}
		w.Write([]byte(`{"data":[],"total":0}`))
	}))
	defer srv.Close()
	c, err := NewClient(endlessAccount(srv.URL), ClientOptions{Version: "test", Governor: pace.NewGovernor(nil, 0.1, nil), Backoff: quick})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/v1/invoices", nil); err == nil || !strings.Contains(err.Error(), "header") {
		t.Fatalf("a response with %d KiB of headers: %v", 2000*70>>10, err)
	}
}

// windowGrowth wraps a provider so that every response names 32 rate-limit windows no
// response named before: the growth attack of issue 12.
func windowGrowth(next http.Handler) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := n.Add(32)
		for i := range int64(32) {
			name := "g" + strconv.FormatInt(base+i, 36)
			w.Header().Set("X-RateLimit-Limit-"+name, "1000")
			w.Header().Set("X-RateLimit-Remaining-"+name, "999")
			w.Header().Set("X-RateLimit-Reset-"+name, "60")
		}
		next.ServeHTTP(w, r)
	})
}

// TestSoakWindowGrowth polls a provider that names 32 new rate-limit windows in every
// response: the governor, the memory and the history stay flat. EMITOP_SOAK_POLLS runs it
// longer by hand (the figures in the closing note).
func TestSoakWindowGrowth(t *testing.T) {
	polls := 300
	if v := os.Getenv("EMITOP_SOAK_POLLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("EMITOP_SOAK_POLLS=%q: want a number of polls ≥ 100", v)
		}
		polls = n
	}
	sb, err := sandbox.New(sandbox.Options{Scenario: "calm", Seed: 3, NoFaults: true,
		Limits: sandbox.Limits{Factus: sandbox.Rate{Limit: 1_000_000, Period: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(windowGrowth(sb.Handler()))
	defer srv.Close()
	var acc config.Account
	for _, a := range sb.Accounts() {
		if a.Name == "factus-bog" {
			acc = config.Account{Name: a.Name, Provider: a.Provider, BaseURL: srv.URL + a.Path, Timeout: 10 * time.Second,
				PollInterval: time.Second, Reserve: 0.1, Credentials: config.NewCredentials(a.Credentials)}
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "emitop.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var errs errorLog
	p := newTestPoller(t, []config.Account{acc}, st, &errs)
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type figures struct {
		heap, db      int64
		samples, once int // window samples; those of windows a response named once
	}
	measure := func() figures {
		if err := st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		f := figures{heap: int64(ms.HeapInuse)}
		for _, name := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(name); err == nil {
				f.db += fi.Size()
			}
		}
		if err := db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE name LIKE 'g%') FROM window_samples`).Scan(&f.samples, &f.once); err != nil {
			t.Fatal(err)
		}
		return f
	}
	var warm figures
	for i := range polls {
		s := p.PollOnce(ctx)
		if a := stateOf(s, acc.Name); a.Err != "" || len(a.Windows) > pace.MaxWindows {
			t.Fatalf("poll %d: %d windows, %q", i, len(a.Windows), a.Err)
		}
		if i == 99 {
			warm = measure()
		}
	}
	end := measure()
	t.Logf("%d polls: heap in use %d KiB after 100 polls, %d KiB after %d; database %d KiB, then %d KiB; %d window samples, %d of windows named once",
		polls, warm.heap>>10, end.heap>>10, polls, warm.db>>10, end.db>>10, end.samples, end.once)
	if end.once != 0 {
		t.Errorf("%d samples of windows named once", end.once)
	}
	if end.heap-warm.heap > 8<<20 {
		t.Errorf("heap grew %d KiB from poll 100 to poll %d", (end.heap-warm.heap)>>10, polls)
	}
	// Every poll logs its requests and samples the window its own requests move (both
	// pruned after the retention); the windows the server names add nothing.
	if perPoll := float64(end.db-warm.db) / float64(polls-100); perPoll > 4096 {
		t.Errorf("the database grew %.0f bytes a poll", perPoll)
	}
	if e := errs.list(); len(e) != 1 || !strings.Contains(e[0], "names more than 16 rate-limit windows") {
		t.Errorf("the window cap was said %d times: %q", len(e), e)
	}
}

// TestEchoedCredentialsAreScrubbed: a provider that echoes the account's credential back
// (in a rejection message, in a header, URL-encoded) gets it replaced before anything
// decodes, stores, logs or shows its answer.
func TestEchoedCredentialsAreScrubbed(t *testing.T) {
	const key = "cf_live_0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echo := r.Header.Get("X-API-Key")
		w.Header().Set("X-Debug-Key", echo)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"detail":"key %s (%s) may not list pending invoices","code":"NIF_MISMATCH"}`, echo, url.QueryEscape(echo+"/"))
			return
		}
		fmt.Fprintf(w, `{"data":[{"id":"inv-1","series_number":"F-1","status":"rejected","aeat":{"state":"Incorrecto","code":"1100","description":"sent with key %s"}}],"page":1,"page_size":100,"total":1}`, echo)
	}))
	defer srv.Close()
	acc := endlessAccount(srv.URL)
	acc.Credentials = config.NewCredentials(map[string]string{"api_key": key})
	st := openStore(t)
	p, err := New([]config.Account{acc}, st, Options{Version: "test", Backoff: quick})
	if err != nil {
		t.Fatal(err)
	}
	if a := stateOf(p.PollOnce(context.Background()), acc.Name); a.Err != "" {
		t.Fatal(a.Err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, err := st.Events(context.Background(), store.EventFilter{Account: acc.Name})
	if err != nil || len(evs) == 0 {
		t.Fatalf("events: %d, %v", len(evs), err)
	}
	for _, e := range evs {
		if strings.Contains(string(e.Raw), key) || e.Problem == nil || !strings.Contains(e.Problem.Message, "sent with key [redacted]") {
			t.Fatalf("stored: %s / %+v", e.Raw, e.Problem)
		}
	}
	c, err := NewClient(acc, ClientOptions{Version: "test", Governor: pace.NewGovernor(nil, 0.1, nil)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/refuse", nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := Decode(acc.Provider, res.Response)
	if got := res.Response.Header.Get("X-Debug-Key"); got != "[redacted]" || strings.Contains(string(res.Response.Body), url.QueryEscape(key)) ||
		strings.Contains(p2.Message, key) || !strings.Contains(p2.Message, "key [redacted] ([redacted]%2F)") {
		t.Fatalf("header %q, body %s, message %q", got, res.Response.Body, p2.Message)
	}
}

// TestEscapedEchoesAreScrubbed: a credential a provider echoes inside a JSON string in
// escaped form (PHP writes "/" as "\/", Go writes "<" as "\u003c", anyone may write any
// character as \uXXXX) is scrubbed as well as a literal one: decoding the string would
// bring it back. One named in a header's name (a rate-limit window named after the key)
// goes with its header.
func TestEscapedEchoesAreScrubbed(t *testing.T) {
	const key = "cf_live_0123/456789<abcdef"
	escapes := []struct {
		name string
		echo func(string) string
	}{
		{"php slashes", func(s string) string { return strings.ReplaceAll(s, "/", `\/`) }},
		{"go html escapes", func(s string) string { return strings.ReplaceAll(s, "<", `\u003c`) }},
		{"every character", func(s string) string {
			var b strings.Builder
			for _, r := range s {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
			return b.String()
		}},
	}
	for _, e := range escapes {
		t.Run(e.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-RateLimit-Limit-hdr_secret_77", "50")
				w.Header().Set("X-RateLimit-Remaining-HDR_SECRET_77", "49")
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"data":[{"id":"inv-1","series_number":"F-1","status":"rejected","aeat":{"state":"Incorrecto","code":"1100","description":"sent with key %s"}}],"page":1,"page_size":100,"total":1}`,
					e.echo(r.Header.Get("X-API-Key")))
			}))
			defer srv.Close()
			acc := endlessAccount(srv.URL)
			acc.Credentials = config.NewCredentials(map[string]string{"api_key": key, "token": "hdr_secret_77"})
			st := openStore(t)
			p, err := New([]config.Account{acc}, st, Options{Version: "test", Backoff: quick})
			if err != nil {
				t.Fatal(err)
			}
			a := stateOf(p.PollOnce(context.Background()), acc.Name)
			if a.Err != "" {
				t.Fatal(a.Err)
			}
			for _, w := range a.Windows {
				if strings.Contains(strings.ToLower(w.Name), "secret_77") {
					t.Errorf("a window is named after a credential: %q", w.Name)
				}
			}
			if err := st.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			evs, err := st.Events(context.Background(), store.EventFilter{Account: acc.Name})
			if err != nil || len(evs) == 0 {
				t.Fatalf("events: %d, %v", len(evs), err)
			}
			for _, ev := range evs {
				var decoded any
				if err := json.Unmarshal(ev.Raw, &decoded); err != nil {
					t.Fatalf("the raw answer is no longer JSON: %v: %s", err, ev.Raw)
				}
				if text := fmt.Sprint(decoded); strings.Contains(text, "456789") || ev.Problem == nil || strings.Contains(ev.Problem.Message, "456789") ||
					!strings.Contains(ev.Problem.Message, "sent with key [redacted]") {
					t.Fatalf("stored: %s / %+v", ev.Raw, ev.Problem)
				}
			}
		})
	}
}

// TestIssuedTokenEchoIsScrubbed: a token the provider issued at login (no configured
// secret) that a later answer echoes, in its body and in a header's value and name, is
// scrubbed as a configured one is. Login shape: testdata/contracts/factus/login.http.
func TestIssuedTokenEchoIsScrubbed(t *testing.T) {
	const token = "issued-0123456789abcdef"
	c, _ := newTestClient(t, "factus", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth/token" {
			fmt.Fprintf(w, `{"token_type": "Bearer", "expires_in": 600, "access_token": %q, "refresh_token": "r-0123456789abcdef"}`, token)
			return
		}
		auth := r.Header.Get("Authorization")
		w.Header().Set("X-Echo", auth)
		w.Header().Set("X-Limit-"+token, "5")
		fmt.Fprintf(w, `{"seen": %q, "token": %q}`, auth, strings.TrimPrefix(auth, "Bearer "))
	}), map[string]string{"client_id": "cid", "client_secret": "csecret-0123", "username": "ops@x.co", "password": "pw-0123456"})
	res, err := c.Do(context.Background(), pace.Poll, http.MethodGet, "/v1/bills", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := res.Response.Header
	if strings.Contains(string(res.Response.Body), token) || strings.Contains(h.Get("X-Echo"), token) || h.Get("X-Echo") == "" {
		t.Fatalf("echoed token kept: body %s, X-Echo %q", res.Response.Body, h.Get("X-Echo"))
	}
	for k := range h {
		if strings.Contains(strings.ToLower(k), token) {
			t.Fatalf("a header named after the token was kept: %s", k)
		}
	}
}
