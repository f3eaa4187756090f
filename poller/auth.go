package poller

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// authenticator gives the header that authenticates a request of one account.
type authenticator interface {
	// credential returns the header, logging in or renewing a token first if needed.
	credential(ctx context.Context) (credential, error)
	// renews reports whether a 401 may be cured by renewing (token authentication).
	renews() bool
	// invalidate says a 401 came back for a request sent with value.
	invalidate(value string)
}

func newAuthenticator(c *Client) authenticator {
	creds := c.account.Credentials
	switch c.account.Provider {
	case "alegra":
		basic := base64.StdEncoding.EncodeToString([]byte(creds.Get("email") + ":" + creds.Get("token")))
		return static{credential{"Authorization", "Basic " + basic}}
	case "sv-dte", "certifactu":
		return static{credential{"X-API-Key", creds.Get("api_key")}}
	case "factus":
		return newTokens(c, factusLogin, factusRefresh)
	default: // alforse; NewClient refuses unknown providers
		return newTokens(c, alforseLogin, alforseRefresh)
	}
}

// static is a credential that never changes: HTTP Basic or an API key.
type static struct{ c credential }

func (s static) credential(context.Context) (credential, error) { return s.c, nil }
func (static) renews() bool                                     { return false }
func (static) invalidate(string)                                {}

// AuthError is a login or a token renewal the provider refused.
type AuthError struct {
	Account  string
	Step     string   // "login" or "refresh"
	Response Response // the refusal, for Decode
}

// Error names the account, the step refused and the HTTP status; never a credential.
func (e *AuthError) Error() string {
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
// renewal fails. One acquisition runs at a time; the others wait for it.
type tokens struct {
	c       *Client
	login   func(ctx context.Context, c *Client) (grant, error)
	refresh func(ctx context.Context, c *Client, refresh string) (grant, error)
	turn    chan struct{} // held by the goroutine acquiring a token

	mu       sync.Mutex
	access   string
	renewTok string
	renewBy  time.Time // zero: renew before the next use
}

func newTokens(c *Client, login func(context.Context, *Client) (grant, error), refresh func(context.Context, *Client, string) (grant, error)) *tokens {
	return &tokens{c: c, login: login, refresh: refresh, turn: make(chan struct{}, 1)}
}

func (t *tokens) renews() bool { return true }

func (t *tokens) invalidate(value string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if "Bearer "+t.access == value {
		t.renewBy = time.Time{}
	}
}

func (t *tokens) fresh(now time.Time) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.access, t.access != "" && !t.renewBy.IsZero() && now.Before(t.renewBy)
}

func (t *tokens) credential(ctx context.Context) (credential, error) {
	if tok, ok := t.fresh(t.c.clock.Now()); ok {
		return credential{"Authorization", "Bearer " + tok}, nil
	}
	select {
	case t.turn <- struct{}{}:
	case <-ctx.Done():
		return credential{}, ctx.Err()
	}
	defer func() { <-t.turn }()
	now := t.c.clock.Now()
	if tok, ok := t.fresh(now); ok { // another request renewed it meanwhile
		return credential{"Authorization", "Bearer " + tok}, nil
	}
	t.mu.Lock()
	renewTok := t.renewTok
	t.mu.Unlock()
	var g grant
	var err error
	if renewTok != "" {
		g, err = t.refresh(ctx, t.c, renewTok)
	}
	if renewTok == "" || err != nil {
		if ctx.Err() != nil {
			return credential{}, ctx.Err()
		}
		g, err = t.login(ctx, t.c)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.access, t.renewTok = "", ""
		return credential{}, err
	}
	t.access = g.access
	if g.refresh != "" {
		t.renewTok = g.refresh
	}
	t.renewBy = now.Add(100 * 365 * 24 * time.Hour)
	if g.ttl > 0 {
		t.renewBy = now.Add(time.Duration(float64(g.ttl) * renewAt))
	}
	return credential{"Authorization", "Bearer " + t.access}, nil
}

// tokenCall sends a token request through the governor (kind Auth) and decodes its JSON.
func tokenCall(ctx context.Context, c *Client, step, path string, body []byte, contentType string, into any) error {
	res, err := c.roundTrip(ctx, Auth, http.MethodPost, path, body, contentType, credential{})
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	if res.Response.Status/100 != 2 {
		return &AuthError{Account: c.account.Name, Step: step, Response: res.Response}
	}
	if err := json.Unmarshal(res.Response.Body, into); err != nil {
		return fmt.Errorf("%s: %s: the token answer is not JSON: %w", c.account.Name, step, err)
	}
	return nil
}

// factusAnswer is an OAuth2 token response.
type factusAnswer struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
}

func (a factusAnswer) grant(c *Client, step string) (grant, error) {
	if a.AccessToken == "" {
		return grant{}, fmt.Errorf("%s: %s: the answer has no access_token", c.account.Name, step)
	}
	return grant{access: a.AccessToken, refresh: a.RefreshToken, ttl: lifetime(a.ExpiresIn)}, nil
}

// factusLogin is the OAuth2 password grant.
func factusLogin(ctx context.Context, c *Client) (grant, error) {
	creds := c.account.Credentials
	form := url.Values{
		"grant_type": {"password"}, "client_id": {creds.Get("client_id")}, "client_secret": {creds.Get("client_secret")},
		"username": {creds.Get("username")}, "password": {creds.Get("password")},
	}
	var a factusAnswer
	if err := tokenCall(ctx, c, "login", c.Path("token", "/oauth/token"), []byte(form.Encode()), "application/x-www-form-urlencoded", &a); err != nil {
		return grant{}, err
	}
	return a.grant(c, "login")
}

// factusRefresh is the OAuth2 refresh_token grant.
func factusRefresh(ctx context.Context, c *Client, refresh string) (grant, error) {
	creds := c.account.Credentials
	form := url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh},
		"client_id": {creds.Get("client_id")}, "client_secret": {creds.Get("client_secret")},
	}
	var a factusAnswer
	if err := tokenCall(ctx, c, "refresh", c.Path("token", "/oauth/token"), []byte(form.Encode()), "application/x-www-form-urlencoded", &a); err != nil {
		return grant{}, err
	}
	return a.grant(c, "refresh")
}

// alforseAnswer is Alforse's login answer, flat or wrapped in "data".
type alforseAnswer struct {
	AccessToken  string          `json:"accessToken"`
	RefreshToken string          `json:"refreshToken"`
	ExpiresIn    json.RawMessage `json:"expiresIn"`
	Data         *alforseAnswer  `json:"data"`
}

func (a alforseAnswer) grant(c *Client, step string) (grant, error) {
	if a.AccessToken == "" && a.Data != nil {
		a = *a.Data
	}
	if a.AccessToken == "" {
		return grant{}, fmt.Errorf("%s: %s: the answer has no accessToken", c.account.Name, step)
	}
	return grant{access: a.AccessToken, refresh: a.RefreshToken, ttl: lifetime(a.ExpiresIn)}, nil
}

// alforseLogin is POST /auth/login {email, password}.
func alforseLogin(ctx context.Context, c *Client) (grant, error) {
	creds := c.account.Credentials
	body, err := json.Marshal(map[string]string{"email": creds.Get("email"), "password": creds.Get("password")})
	if err != nil {
		return grant{}, err
	}
	var a alforseAnswer
	if err := tokenCall(ctx, c, "login", c.Path("login", "/auth/login"), body, "application/json", &a); err != nil {
		return grant{}, err
	}
	return a.grant(c, "login")
}

// alforseRefresh is POST /auth/refresh {refreshToken} (assumed: Alforse does not document it).
func alforseRefresh(ctx context.Context, c *Client, refresh string) (grant, error) {
	body, err := json.Marshal(map[string]string{"refreshToken": refresh})
	if err != nil {
		return grant{}, err
	}
	var a alforseAnswer
	if err := tokenCall(ctx, c, "refresh", c.Path("refresh", "/auth/refresh"), body, "application/json", &a); err != nil {
		return grant{}, err
	}
	return a.grant(c, "refresh")
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
