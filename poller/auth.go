package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// authenticator gives the headers that authenticate a request of one account.
type authenticator interface {
	// credential returns the headers, logging in or renewing a token first if needed.
	credential(ctx context.Context) (credential, error)
	// renews reports whether a 401 may be cured by renewing (token authentication).
	renews() bool
	// invalidate says a 401 came back for a request sent with cred.
	invalidate(cred credential)
	// headers names the headers the credential sets, for plans that show a request
	// with its values redacted.
	headers() []string
}

// credHeader is one request header that authenticates.
type credHeader struct{ key, value string }

// credential is the headers that authenticate one request; empty for none (a login).
type credential []credHeader

// has reports whether the credential sends value in header key.
func (c credential) has(key, value string) bool {
	for _, h := range c {
		if h.key == key && h.value == value {
			return true
		}
	}
	return false
}

// static is a credential that never changes: HTTP Basic or an API key.
type static struct{ c credential }

func (s static) credential(context.Context) (credential, error) { return s.c, nil }
func (static) renews() bool                                     { return false }
func (static) invalidate(credential)                            {}
func (s static) headers() []string {
	names := make([]string, len(s.c))
	for i, h := range s.c {
		names[i] = h.key
	}
	return names
}

// apiKeyAuth sends the account's api_key as X-API-Key.
func apiKeyAuth(c *Client) authenticator {
	return static{credential{{"X-API-Key", c.account.Credentials.Get("api_key")}}}
}

// pair authenticates with two credentials at once, as a service in front of a provider
// may ask (its own login, and the provider's token): every request carries both, a 401
// renews whichever renews.
type pair struct{ first, second authenticator }

func (p pair) credential(ctx context.Context) (credential, error) {
	a, err := p.first.credential(ctx)
	if err != nil {
		return nil, err
	}
	b, err := p.second.credential(ctx)
	if err != nil {
		return nil, err
	}
	return append(append(credential{}, a...), b...), nil
}
func (p pair) renews() bool { return p.first.renews() || p.second.renews() }
func (p pair) invalidate(c credential) {
	p.first.invalidate(c)
	p.second.invalidate(c)
}
func (p pair) headers() []string { return append(p.first.headers(), p.second.headers()...) }

// AuthError is a login or a token renewal the provider refused.
type AuthError struct {
	Account  string
	Step     string   // "login" or "refresh"
	Response Response // the refusal, for Decode
	// NeedsPerson says that no repetition can succeed until a person acts (the provider
	// asks for a second factor): the account logs in again only when the operator asks.
	NeedsPerson bool
}

// Error names the account, the step refused and the HTTP status; never a credential.
func (e *AuthError) Error() string {
	if e.NeedsPerson {
		return fmt.Sprintf("%s: %s refused: the provider asks for a person (HTTP %d)", e.Account, e.Step, e.Response.Status)
	}
	return fmt.Sprintf("%s: %s refused: HTTP %d", e.Account, e.Step, e.Response.Status)
}

// grant is a token as a provider issued it.
type grant struct {
	access, refresh string
	ttl             time.Duration // 0 when not stated: renewed only after a 401
}

// renewAt is the share of a token's life after which it is renewed before use.
const renewAt = 0.9

// tokens keeps a bearer token fresh: it logs in, renews the token with the refresh token
// before it expires (at 90% of its life) and after a 401, and logs in afresh when a
// renewal fails. One acquisition runs at a time; the others wait for it. The token goes
// in Authorization as a Bearer token, or in the header key when set.
type tokens struct {
	c       *Client
	login   func(ctx context.Context, c *Client) (grant, error)
	refresh func(ctx context.Context, c *Client, refresh string) (grant, error) // nil: log in again
	key     string                                                              // "" for Authorization: Bearer
	turn    chan struct{}                                                       // held by the goroutine acquiring a token

	mu       sync.Mutex
	access   string
	renewTok string
	renewBy  time.Time // zero: renew before the next use
}

func newTokens(c *Client, login func(context.Context, *Client) (grant, error), refresh func(context.Context, *Client, string) (grant, error)) *tokens {
	return &tokens{c: c, login: login, refresh: refresh, turn: make(chan struct{}, 1)}
}

func (t *tokens) renews() bool { return true }

func (t *tokens) invalidate(c credential) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.access != "" && c.has(t.header(t.access).key, t.header(t.access).value) {
		t.renewBy = time.Time{}
	}
}

func (t *tokens) headers() []string { return []string{t.header("").key} }

// header is the header that carries token.
func (t *tokens) header(token string) credHeader {
	if t.key != "" {
		return credHeader{t.key, token}
	}
	return credHeader{"Authorization", "Bearer " + token}
}

func (t *tokens) fresh(now time.Time) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.access, t.access != "" && !t.renewBy.IsZero() && now.Before(t.renewBy)
}

func (t *tokens) credential(ctx context.Context) (credential, error) {
	if tok, ok := t.fresh(t.c.clock.Now()); ok {
		return credential{t.header(tok)}, nil
	}
	select {
	case t.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.turn }()
	now := t.c.clock.Now()
	if tok, ok := t.fresh(now); ok { // another request renewed it meanwhile
		return credential{t.header(tok)}, nil
	}
	t.mu.Lock()
	renewTok := t.renewTok
	t.mu.Unlock()
	var g grant
	var err error
	renewed := false
	if renewTok != "" && t.refresh != nil {
		g, err = t.refresh(ctx, t.c, renewTok)
		renewed = err == nil
	}
	if !renewed {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		g, err = t.login(ctx, t.c)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.access, t.renewTok = "", ""
		return nil, err
	}
	t.access = g.access
	if g.refresh != "" {
		t.renewTok = g.refresh
	}
	t.renewBy = now.Add(100 * 365 * 24 * time.Hour)
	if g.ttl > 0 {
		t.renewBy = now.Add(time.Duration(float64(g.ttl) * renewAt))
	}
	return credential{t.header(t.access)}, nil
}

// tokenCall sends a token request through the governor (kind Auth), authenticated by
// cred (nil for none), and decodes its JSON into into. It returns the answer, which a
// dialect may read further (a second factor asked for).
func tokenCall(ctx context.Context, c *Client, step, path string, body []byte, contentType string, cred credential, into any) (Response, error) {
	res, err := c.roundTrip(ctx, Auth, http.MethodPost, path, body, contentType, cred)
	if err != nil {
		return Response{}, fmt.Errorf("%s: %w", step, err)
	}
	if res.Response.Status/100 != 2 {
		return res.Response, &AuthError{Account: c.account.Name, Step: step, Response: res.Response}
	}
	if err := json.Unmarshal(res.Response.Body, into); err != nil {
		return res.Response, fmt.Errorf("%s: %s: the token answer is not JSON: %w", c.account.Name, step, err)
	}
	return res.Response, nil
}

// lifetime reads a token's lifetime: seconds as a number or a numeric string, or a Go
// duration string ("15m"). Anything else is 0 (unknown).
func lifetime(raw json.RawMessage) time.Duration {
	var n float64
	if err := json.Unmarshal(raw, &n); err == nil && n > 0 {
		return time.Duration(n * float64(time.Second))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil && n > 0 {
		return time.Duration(n * float64(time.Second))
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return 0
}
