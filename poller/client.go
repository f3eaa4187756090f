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
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
)

// Client talks to one account's provider. It builds requests on the account's base URL,
// identifies emitop in the User-Agent, applies the account's timeout to each request,
// authenticates as the provider wants, and passes every request, logins included, through
// the account's Governor. Reads that fail transiently are tried again with backoff; a
// write is never repeated by the Client, and redirects are never followed (a redirect
// could carry an API key to another host, or repeat an emission).
type Client struct {
	account config.Account
	d       *Dialect
	http    *http.Client
	gov     *pace.Governor
	clock   pace.Clock
	backoff pace.Backoff
	agent   string
	auth    authenticator
	trace   func(Exchange)
	listed  *decoded    // the last listing's documents, decoded (OpenDocuments)
	secrets secretForms // the configured credentials' forms, found once (scrub)
}

// ClientOptions tune a Client; the zero value is production's choice.
type ClientOptions struct {
	Version  string         // emitop's version, for the User-Agent
	HTTP     *http.Client   // nil: a client of its own
	Governor *pace.Governor // nil: one seeded with the dialect's documented windows
	Clock    pace.Clock     // nil: pace.RealClock
	Backoff  pace.Backoff   // zero: pace.DefaultBackoff
	// Trace, when set, is told of every request that was sent or tried (logins and
	// retries included), after its round trip: the request log is built from it.
	Trace func(Exchange)
}

// Exchange is one round trip of a Client, as the request log keeps it.
type Exchange struct {
	Account string
	Kind    pace.Kind
	Method  string
	Path    string // without the query, which may hold filters or credentials
	Status  int    // 0 when no complete response came
	Latency time.Duration
	Class   model.Class // ok for a 2xx; else the decoded class; unknown when no response came
	At      time.Time   // when the request was sent
}

// Result is what one call of Do produced: the last response and how long it took.
type Result struct {
	Response Response
	Latency  time.Duration // of the last attempt, from sending to the end of its body
	Attempts int           // requests sent, retries included
}

// SendError is a request that got no complete HTTP response: the connection failed, the
// request timed out, or the body broke off.
type SendError struct {
	Account string
	Method  string
	Path    string // without the query, which may hold filters or credentials
	Timeout bool
	// MayHaveReached says the request was written out before it failed: the server may
	// have acted on it. For a write that means the outcome is unknown; read the
	// document's status before any resend.
	MayHaveReached bool
	Err            error
}

// Error says what failed and whether the server may have acted on the request, which
// decides whether a write may be resent.
func (e *SendError) Error() string {
	what := e.Err.Error()
	if e.Timeout {
		what = "timed out"
	}
	switch {
	case e.MayHaveReached && model.IsWrite(e.Method):
		what += " (outcome unknown: the request may have reached the server; read the status before any resend)"
	case e.MayHaveReached:
		what += " (after the request was sent)"
	default:
		what += " (the request did not reach the server)"
	}
	return fmt.Sprintf("%s: %s %s: %s", e.Account, e.Method, e.Path, what)
}

// Unwrap returns the transport's error, so errors.Is sees context deadlines and the like.
func (e *SendError) Unwrap() error { return e.Err }

// NewClient makes the client of one account.
func NewClient(acc config.Account, opt ClientOptions) (*Client, error) {
	d, err := dialectOf(acc.Provider)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", acc.Name, err)
	}
	if !strings.HasPrefix(acc.BaseURL, "http://") && !strings.HasPrefix(acc.BaseURL, "https://") {
		return nil, fmt.Errorf("account %s: base_url is not an http(s) URL", acc.Name)
	}
	acc.BaseURL = strings.TrimRight(acc.BaseURL, "/")
	c := &Client{account: acc, d: d, clock: opt.Clock, gov: opt.Governor, backoff: opt.Backoff, trace: opt.Trace, listed: newDecoded()}
	for _, s := range acc.Credentials.Secrets() {
		c.secrets.add(s)
	}
	if c.clock == nil {
		c.clock = pace.RealClock
	}
	if c.gov == nil {
		c.gov = pace.NewGovernor(d.windows, acc.Reserve, c.clock)
	}
	if c.backoff == (pace.Backoff{}) {
		c.backoff = pace.DefaultBackoff
	}
	if acc.Timeout <= 0 {
		c.account.Timeout = config.DefaultTimeout
	}
	version := opt.Version
	if version == "" {
		version = "dev"
	}
	c.agent = "emitop/" + version
	hc := http.Client{Transport: newTransport(1)}
	if opt.HTTP != nil {
		hc = *opt.HTTP
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.Timeout = 0 // the account's timeout applies per request, through the context
	c.http = &hc
	c.auth = d.auth(c)
	return c, nil
}

// Governor is the account's governor: the polling loop asks it for the poll interval and
// the dashboard for the windows.
func (c *Client) Governor() *pace.Governor { return c.gov }

// Account is the account the client speaks for.
func (c *Client) Account() config.Account { return c.account }

// Path is the account's endpoint path called name (its override), else def.
func (c *Client) Path(name, def string) string { return c.account.Path(name, def) }

// newTransport is the HTTP transport of accounts clients share, keeping up to idle
// connections to each host: one connection pool serves every account of a poller, as
// accounts of one provider share its host (10,000 accounts would otherwise keep 10,000
// connections, each with its buffers and goroutines).
func newTransport(idle int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxResponseHeaderBytes = maxHeaderBytes
	tr.MaxIdleConnsPerHost = idle
	tr.MaxIdleConns = 0 // bounded per host
	return tr
}

// maxHeaderBytes bounds a response's headers: rate-limit headers take a few hundred bytes,
// and a server whose headers never stop growing must not grow emitop (Go's default is 10 MB).
const maxHeaderBytes = 64 << 10

// Do sends method path (relative to the base URL, query included) with an optional JSON
// body, as a request of kind. A read (GET, HEAD, OPTIONS) that meets a transport error
// other than a timeout, or a 500, 502, 503 or 504, is tried again with backoff, each time
// through the governor, unless the answer stated a wait (a 503's Retry-After): then, like
// a 429, it is returned as it is, and the governor holds the account for that wait. With
// token authentication a 401 renews the token once, and a read is then repeated. A
// response of any status is a Result, not an error; the error is a *SendError, an
// *AuthError, or the context's.
func (c *Client) Do(ctx context.Context, kind pace.Kind, method, path string, body []byte) (*Result, error) {
	return c.do(ctx, kind, nil, method, path, body)
}

// DoFenced is Do for a request that must pass fence once the governor has admitted it,
// just before it leaves: fence's error keeps it from leaving (a *SendError that did not
// reach the server). A wait in the governor can be long; the retry engine checks there
// that it still holds the documents' leases, and moves its intents' deadlines to the
// request's own timeout.
func (c *Client) DoFenced(ctx context.Context, kind pace.Kind, fence func() error, method, path string, body []byte) (*Result, error) {
	return c.do(ctx, kind, fence, method, path, body)
}

func (c *Client) do(ctx context.Context, kind pace.Kind, fence func() error, method, path string, body []byte) (*Result, error) {
	read := !model.IsWrite(method)
	attempts := 0
	renewed := false
	for retry := 0; ; {
		cred, err := c.auth.credential(ctx)
		if err != nil {
			return nil, err
		}
		res, err := c.roundTrip(ctx, kind, fence, method, path, body, jsonType, cred)
		attempts++
		if res != nil {
			res.Attempts = attempts
		}
		if err != nil && ctx.Err() != nil {
			return res, err // the caller gave up; a *SendError still says whether it was sent
		}
		if err == nil && res.Response.Status == http.StatusUnauthorized && c.auth.renews() && !renewed {
			renewed = true
			c.auth.invalidate(cred)
			if read {
				continue
			}
			return res, nil
		}
		// A read that timed out is not tried again: it already took a whole timeout, and
		// a provider dripping its answer would take one per try.
		var se *SendError
		timedOut := errors.As(err, &se) && se.Timeout
		transient := err != nil || isTransient(res.Response.Status)
		held := c.gov.Held().After(c.clock.Now()) // a stated wait holds the account
		if !read || !transient || timedOut || held || retry >= c.backoff.Retries {
			return res, err
		}
		if err := pace.Sleep(ctx, c.clock, c.backoff.Delay(retry)); err != nil {
			return res, err
		}
		retry++
	}
}

func isTransient(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// jsonType is the media type of the bodies Do sends and of the answers it accepts.
const jsonType = "application/json"

// headers gives set every header a request carries besides those the transport adds
// (Host, Content-Length, Accept-Encoding): the one place that says which, so that a
// planned request (PlannedHeaders) shows what leaves. A request without a body has no
// Content-Type.
func (c *Client) headers(body bool, contentType string, cred credential, set func(key, value string)) {
	set("User-Agent", c.agent)
	set("Accept", jsonType)
	if body {
		set("Content-Type", contentType)
	}
	for _, h := range cred {
		set(h.key, h.value)
	}
}

// roundTrip sends one request through the governor, and through fence (when not nil)
// once the governor admits it, and reads its response.
func (c *Client) roundTrip(ctx context.Context, kind pace.Kind, fence func() error, method, path string, body []byte, contentType string, cred credential) (*Result, error) {
	fail := func(err error, reached bool) *SendError {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the path is already in the message, and the base URL is the account's
		}
		var ne net.Error
		timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
		return &SendError{Account: c.account.Name, Method: method, Path: stripQuery(path), Timeout: timeout, MayHaveReached: reached, Err: err}
	}
	ticket, err := c.gov.Acquire(ctx, kind)
	if err != nil {
		return nil, err
	}
	if fence != nil {
		if err := fence(); err != nil {
			c.gov.Release(ticket)
			return nil, fail(err, false)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, c.account.Timeout)
	defer cancel()
	var wrote atomic.Bool
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{
		WroteHeaders: func() { wrote.Store(true) },
	})
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, c.account.BaseURL+path, reader)
	if err != nil {
		c.gov.Release(ticket)
		return nil, fmt.Errorf("%s: %s %s: %w", c.account.Name, method, stripQuery(path), err)
	}
	c.headers(body != nil, contentType, cred, req.Header.Set)
	start := c.clock.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		if wrote.Load() {
			c.gov.Done(ticket, 0, nil, nil)
		} else {
			c.gov.Release(ticket)
		}
		c.traced(kind, method, path, start, nil, nil)
		return nil, fail(err, wrote.Load())
	}
	data, err := readBody(resp.Body, resp.ContentLength)
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBody)) // let the connection be reused
	}
	resp.Body.Close()
	if err != nil {
		c.gov.Done(ticket, 0, nil, nil)
		c.traced(kind, method, path, start, nil, nil)
		return nil, fail(err, true)
	}
	data, header := c.scrub(data, resp.Header, cred)
	out := &Result{Response: Response{Status: resp.StatusCode, Method: method, Header: header, Body: data, Received: c.clock.Now()}}
	out.Latency = out.Response.Received.Sub(start)
	var problem *model.Problem
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		// The body may say how long to wait (Certifactu's retry_after).
		p := c.d.decode(out.Response)
		problem = &p
	}
	c.gov.Done(ticket, out.Response.Status, out.Response.Header, problem)
	c.traced(kind, method, path, start, &out.Response, problem)
	return out, nil
}

// readBody reads at most MaxBody bytes of a response body into a buffer of its own size:
// io.ReadAll would grow one from 512 bytes, copying and discarding on the way about as
// much again as the body, on every request. A body of a stated length is read straight
// into its buffer; one of unknown length (chunked) through a pooled one.
func readBody(body io.Reader, length int64) ([]byte, error) {
	r := io.LimitReader(body, MaxBody)
	if length <= 0 || length > MaxBody {
		buf := bodyBuffers.Get().(*bytes.Buffer)
		buf.Reset()
		_, err := buf.ReadFrom(r)
		data := append([]byte{}, buf.Bytes()...)
		if buf.Cap() <= maxPooledBody {
			bodyBuffers.Put(buf)
		}
		return data, err
	}
	data := make([]byte, length)
	if n, err := io.ReadFull(r, data); err != nil {
		return data[:n], err
	}
	var more [1]byte
	if n, _ := r.Read(more[:]); n > 0 { // longer than stated: keep reading, up to MaxBody
		rest, err := io.ReadAll(r)
		return append(append(data, more[0]), rest...), err
	}
	return data, nil
}

// bodyBuffers are the buffers readBody reads a body of unknown length through; one that
// grew past maxPooledBody is left to the garbage collector.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 1 << 20

// secretForms are the forms a credential may be echoed in, as scrub looks for them: the
// value and its URL-encoded form, and each lowered for header names.
type secretForms struct{ forms, lower []string }

// add adds secret's forms; one shorter than minSecret is not looked for.
func (f *secretForms) add(secret string) {
	if len(secret) < minSecret {
		return
	}
	f.forms = append(f.forms, secret)
	if q := url.QueryEscape(secret); q != secret {
		f.forms = append(f.forms, q)
	}
	for _, s := range f.forms[len(f.lower):] {
		f.lower = append(f.lower, strings.ToLower(s))
	}
}

// minSecret is the shortest credential value scrubbed from provider text: a shorter one
// would blot out ordinary words, and no provider issues one.
const minSecret = 4

// scrub replaces every credential of the account a response may echo (the configured
// secrets, and the token or key this request carried) in its body and header values with
// [redacted], as it arrives: nothing downstream stores, logs or shows provider text that
// still holds one. Their URL-encoded forms (a form body echoed back) go too.
func (c *Client) scrub(body []byte, h http.Header, cred credential) ([]byte, http.Header) {
	// The configured ones, and this request's (clipped: adding never writes into the
	// client's, which other requests read at the same time).
	all := secretForms{slices.Clip(c.secrets.forms), slices.Clip(c.secrets.lower)}
	for _, ch := range cred {
		if _, v, ok := strings.Cut(ch.value, " "); ok {
			all.add(v) // Basic or Bearer
		}
		all.add(ch.value)
	}
	forms, lower := all.forms, all.lower
	for _, s := range forms {
		if bytes.Contains(body, []byte(s)) {
			body = bytes.ReplaceAll(body, []byte(s), []byte(redacted))
		}
	}
	// Each header's name is lowered once, not once per credential form.
	for k, vs := range h {
		if lk := strings.ToLower(k); slices.ContainsFunc(lower, func(s string) bool { return strings.Contains(lk, s) }) {
			delete(h, k) // a header named after a credential (a rate-limit window's suffix)
			continue
		}
		for i, v := range vs {
			for _, s := range forms {
				if strings.Contains(v, s) {
					v = strings.ReplaceAll(v, s, redacted)
				}
			}
			vs[i] = v
		}
	}
	return scrubEscaped(body, forms), h
}

// scrubEscaped scrubs the credentials from each JSON string of body written with
// escapes: a credential escaped in part ("ab\/cd" as PHP writes "ab/cd", "\u0061b…")
// passes the literal scrub, and decoding the string would bring it back. A string that
// holds one is written anew, escaped as encoding/json escapes. Bytes that are not JSON are
// left as they are.
func scrubEscaped(body []byte, secrets []string) []byte {
	if len(secrets) == 0 || bytes.IndexByte(body, '\\') < 0 {
		return body
	}
	var out []byte // nil until a string changes
	last := 0
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		j, escaped := i+1, false
		for j < len(body) && body[j] != '"' {
			if body[j] == '\\' {
				escaped = true
				j++
			}
			j++
		}
		if j >= len(body) {
			break
		}
		if escaped {
			var text string
			if json.Unmarshal(body[i:j+1], &text) == nil {
				clean := text
				for _, s := range secrets {
					clean = strings.ReplaceAll(clean, s, redacted)
				}
				if clean != text {
					lit, _ := json.Marshal(clean)
					out = append(append(out, body[last:i]...), lit...)
					last = j + 1
				}
			}
		}
		i = j
	}
	if out == nil {
		return body
	}
	return append(out, body[last:]...)
}

// redacted stands for a credential scrubbed from provider text.
const redacted = "[redacted]"

// traced tells the Trace hook of one round trip; resp nil means no response came, and
// decoded is the problem already decoded from it, if any, reused for its class.
func (c *Client) traced(kind pace.Kind, method, path string, start time.Time, resp *Response, decoded *model.Problem) {
	if c.trace == nil {
		return
	}
	x := Exchange{Account: c.account.Name, Kind: kind, Method: method, Path: stripQuery(path), Class: model.ClassUnknown, At: start}
	if resp != nil {
		x.Status, x.Latency = resp.Status, resp.Received.Sub(start)
		switch {
		case resp.Status/100 == 2:
			x.Class = model.ClassOK
		case decoded != nil:
			x.Class = decoded.Class
		default:
			x.Class = c.d.decode(*resp).Class
		}
	} else {
		x.Latency = c.clock.Now().Sub(start)
	}
	c.trace(x)
}
