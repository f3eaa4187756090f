// Package poller talks to the providers: one file per dialect (its decoder, its code
// table, its endpoints), the rate-limit governor, the polling loop and the retry engine.
package poller

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"emitop/model"
)

// MaxBody is the most of a response body emitop reads; the rest is ignored.
const MaxBody = 1 << 20

// Response is one provider HTTP response as the decoders see it.
type Response struct {
	Status   int
	Method   string // of the request; "" when not known
	Header   http.Header
	Body     []byte    // at most MaxBody bytes
	Received time.Time // local clock when the response arrived; zero means now
}

// finding is what a dialect reads out of one response body, before the shared steps
// (catalog, class, verdict, wait, windows, sanitizing) turn it into a Problem.
type finding struct {
	code    string // the provider's or authority's own code, shown to the operator
	key     string // a catalog key for a body shape that carries no code; never shown
	message string
	fields  []string
	class   model.Class // "" leaves the class to the catalog or the HTTP status
	verdict model.Verdict
	wait    time.Duration // a wait the body states (Certifactu retry_after)
	hasWait bool
	note    string // a sentence added to the action, whatever the code (what else this state entails)
}

// Decode turns one response of provider into a Problem (class ok when all is well). It
// fails only for a provider it does not know; any body, however broken, decodes.
func Decode(provider string, r Response) (model.Problem, error) {
	d, err := dialectOf(provider)
	if err != nil {
		return model.Problem{}, err
	}
	return d.decode(r), nil
}

// decode turns one response into a Problem, as Decode does.
func (d *Dialect) decode(r Response) model.Problem {
	body := r.Body
	if len(body) > MaxBody {
		body = body[:MaxBody]
	}
	return d.finish(r, d.body(r.Status, body))
}

// Caps on what one finding may carry into a Problem.
const (
	maxMessage = 8 << 10
	maxFields  = 50
)

// httpStatusKey is the catalog key of an HTTP status: a dialect's table may give guidance for
// "HTTP 429" beside its own codes. It applies when the body named no known code and set
// no class of its own.
func httpStatusKey(status int) string { return "HTTP " + strconv.Itoa(status) }

// finish applies the steps every dialect shares: the rate-limit windows and wait from the
// headers, the guidance for the code, the class and verdict, and sanitizing.
func (d *Dialect) finish(r Response, f finding) model.Problem {
	now := responseTime(r)
	msg := f.message
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	p := model.Problem{
		Provider: d.name,
		Status:   r.Status,
		Method:   model.Line(strings.ToUpper(r.Method), 16),
		Code:     model.Line(f.code, 80),
		Message:  model.Sanitize(msg, true),
		Windows:  Windows(r.Header, now),
	}
	if len(f.fields) > 0 {
		p.Fields = make([]string, 0, min(len(f.fields), maxFields))
		for _, field := range f.fields[:min(len(f.fields), maxFields)] {
			p.Fields = append(p.Fields, model.Line(field, 200))
		}
	}
	if wait, ok := WaitHint(r.Header, p.Windows, now); ok {
		p.Wait, p.HasWait = wait, true
	}
	if f.hasWait && (!p.HasWait || f.wait > p.Wait) {
		p.Wait, p.HasWait = capWait(f.wait), true
	}
	key := f.code
	if key == "" {
		key = f.key
	}
	g, known := d.catalog[key]
	if !known && f.class == "" {
		g, known = d.catalog[httpStatusKey(r.Status)]
	}
	p.Class = f.class
	if known && g.Class != "" {
		p.Class = g.Class
	}
	if !p.Class.Valid() {
		p.Class = model.ClassForStatus(r.Status)
	}
	p.Verdict = f.verdict
	if known && g.Verdict != "" {
		p.Verdict = g.Verdict
	}
	if !p.Verdict.Valid() {
		p.Verdict = model.VerdictFor(p.Class, r.Method, p.HasWait)
	}
	def := model.ClassGuidance[p.Class]
	p.Meaning, p.Action = def.Meaning, def.Action
	if known {
		if g.Meaning != "" {
			p.Meaning = g.Meaning
		}
		if g.Action != "" {
			p.Action = g.Action
		}
	}
	if f.note != "" {
		p.Action = strings.TrimSpace(p.Action + " " + f.note)
	}
	return p
}

// responseTime is when the response was received, by the local clock.
func responseTime(r Response) time.Time {
	if r.Received.IsZero() {
		return time.Now()
	}
	return r.Received
}
