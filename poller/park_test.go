package poller

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"emitop/config"
	"emitop/internal/fakeclock"
	"emitop/model"
	"emitop/sandbox"
	"emitop/store"
)

// TestRefusedCredentialParks: a refused login parks the account. Unasked, it logs in
// again at most once every reloginEvery; asked (Refresh, PollOnce), at once. A refusal
// that needs a person (Alforse's MFA) logs in again only when asked.
func TestRefusedCredentialParks(t *testing.T) {
	_, all := sandboxAccounts(t, sandbox.Options{Scenario: "demo", Seed: 5, NoFaults: true})
	var accounts []config.Account
	for _, a := range all {
		switch a.Name {
		case "factus-bog":
			creds := map[string]string{}
			for _, k := range a.Credentials.Names() {
				creds[k] = a.Credentials.Get(k)
			}
			creds["password"] = "wrong-password"
			a.Credentials = config.NewCredentials(creds)
			accounts = append(accounts, a)
		case "alforse-mfa":
			accounts = append(accounts, a)
		}
	}
	if len(accounts) != 2 {
		t.Fatalf("%d accounts", len(accounts))
	}
	clock := fakeclock.New()
	st := openStore(t)
	p, err := New(accounts, st, Options{Version: "test", Clock: clock, Backoff: quick})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	requests := func(name string) int {
		t.Helper()
		if err := st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		reqs, err := st.Requests(ctx, store.RequestFilter{Account: name, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(reqs)
	}
	poll := func(name string, asked bool) (bool, model.AccountState) {
		t.Helper()
		changed := p.pollAccount(ctx, p.byName[name], asked)
		return changed, stateOf(p.Snapshot(), name)
	}

	// factus-bog: the password is refused.
	_, s := poll("factus-bog", false)
	if s.Health != model.HealthRefused || s.LastError == nil || s.LastError.Class != model.ClassAuth || !strings.Contains(s.Err, "parked: next login at 12:05:00") {
		t.Fatalf("refused: %s %q %+v", s.Health, s.Err, s.LastError)
	}
	if !s.Parked || s.NextLogin.Format(time.TimeOnly) != "12:05:00" {
		t.Fatalf("the snapshot of a parked account says parked %v, next login %v", s.Parked, s.NextLogin)
	}
	n := requests("factus-bog")
	for range 4 { // polls every minute: nothing is sent
		clock.Advance(time.Minute)
		if changed, _ := poll("factus-bog", false); changed {
			t.Fatal("a parked account was polled before its next login")
		}
	}
	if got := requests("factus-bog"); got != n {
		t.Fatalf("%d requests while parked", got-n)
	}
	clock.Advance(time.Minute) // 5 minutes: one login
	if changed, s := poll("factus-bog", false); !changed || s.Health != model.HealthRefused || !strings.Contains(s.Err, "next login at 12:10:00") {
		t.Fatalf("after 5 minutes: %v %s %q", changed, s.Health, s.Err)
	}
	if got := requests("factus-bog"); got != n+1 {
		t.Fatalf("%d requests after 5 minutes, want 1", got-n)
	}
	if changed, _ := poll("factus-bog", true); !changed || requests("factus-bog") != n+2 { // the operator asks
		t.Fatalf("an asked poll sent %d requests", requests("factus-bog")-n-1)
	}

	// alforse-mfa: the login needs a second factor; only an asked poll tries again.
	_, s = poll("alforse-mfa", false)
	if s.Health != model.HealthRefused || s.LastError == nil || !strings.Contains(s.LastError.Meaning, "MFA") || s.LastError.Verdict != model.VerdictReauth ||
		!strings.Contains(s.Err, "only when the operator refreshes") {
		t.Fatalf("mfa: %s %q %+v", s.Health, s.Err, s.LastError)
	}
	if !s.Parked || !s.NextLogin.IsZero() {
		t.Fatalf("the snapshot of an account waiting for a person says parked %v, next login %v", s.Parked, s.NextLogin)
	}
	m := requests("alforse-mfa")
	clock.Advance(time.Hour)
	if changed, _ := poll("alforse-mfa", false); changed || requests("alforse-mfa") != m {
		t.Fatal("an account that needs a person logged in again unasked")
	}
	p.Refresh() // not running: polls every account once in the background, as asked
	deadline := time.Now().Add(10 * time.Second)
	for requests("alforse-mfa") == m && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if requests("alforse-mfa") != m+1 {
		t.Errorf("Refresh sent %d requests for alforse-mfa, want 1", requests("alforse-mfa")-m)
	}
}

// TestRefusedLoginParks: a login refused for any reason a repetition cannot change (a 4xx
// other than 408 and 429) parks the account as a refused credential does, not only one
// whose body reads as a credentials problem. Alforse's human verification (Turnstile,
// which its FAQ says is on in production) waits for a person: no repetition can pass it.
func TestRefusedLoginParks(t *testing.T) {
	cases := []struct {
		name, provider string
		status         int
		body           string
		settings       map[string]string
		creds          map[string]string
		needsPerson    bool
		class          model.Class
	}{
		{"alforse human verification", "alforse", 400, `{"statusCode":400,"message":"Human verification is required","error":"Bad Request"}`,
			map[string]string{"tenant": "acme"}, map[string]string{"email": "ops@acme.example", "password": "pw-123456"}, true, model.ClassAuth},
		{"factus oauth invalid_request", "factus", 400, `{"error":"invalid_request","error_description":"The request is missing a required parameter"}`,
			nil, map[string]string{"client_id": "cid-1", "client_secret": "cs-123456", "username": "ops", "password": "pw-123456"}, false, model.ClassValidation},
		{"factus oauth unauthorized_client", "factus", 403, `{"error":"unauthorized_client","error_description":"The client may not use this grant"}`,
			nil, map[string]string{"client_id": "cid-1", "client_secret": "cs-123456", "username": "ops", "password": "pw-123456"}, false, model.ClassPermission},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			}))
			defer srv.Close()
			acc := testAccount(c.provider, srv.URL, c.creds)
			acc.Settings = c.settings
			clock := fakeclock.New()
			p, err := New([]config.Account{acc}, openStore(t), Options{Version: "test", Clock: clock, Backoff: quick})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			p.pollAccount(ctx, p.byName[acc.Name], false)
			s := stateOf(p.Snapshot(), acc.Name)
			if s.Health != model.HealthRefused || !s.Parked || s.LastError == nil || s.LastError.Class != c.class || hits.Load() != 1 {
				t.Fatalf("after a refused login: %s parked %v %d requests %+v", s.Health, s.Parked, hits.Load(), s.LastError)
			}
			if c.needsPerson != s.NextLogin.IsZero() {
				t.Fatalf("needs a person %v, next login %v", c.needsPerson, s.NextLogin)
			}
			for range 4 {
				clock.Advance(time.Minute)
				p.pollAccount(ctx, p.byName[acc.Name], false)
			}
			if hits.Load() != 1 {
				t.Fatalf("%d logins in 4 minutes parked", hits.Load()-1)
			}
			clock.Advance(time.Hour)
			p.pollAccount(ctx, p.byName[acc.Name], false)
			want := int64(2)
			if c.needsPerson {
				want = 1
			}
			if hits.Load() != want {
				t.Fatalf("%d logins an hour later, want %d", hits.Load(), want)
			}
			p.pollAccount(ctx, p.byName[acc.Name], true)
			if hits.Load() != want+1 {
				t.Fatalf("asked, %d logins", hits.Load()-want)
			}
		})
	}
}
