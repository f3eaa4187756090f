package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"emitop/model"
)

// verdictHints says in a few words what each verdict asks of the operator.
var verdictHints = map[model.Verdict]string{
	model.VerdictNone:      "nothing to do",
	model.VerdictRetry:     "transient: repeating cannot duplicate anything",
	model.VerdictWait:      "repeat the same request after the wait",
	model.VerdictVerify:    "a write may have landed: read the status before any resend",
	model.VerdictFix:       "change the data, then resend",
	model.VerdictReauth:    "log in again, then repeat",
	model.VerdictEscalate:  "needs someone with authority",
	model.VerdictReconcile: "the provider already has it: never resend the same number",
}

// historyLimit is how many of a document's events the detail screen loads.
const historyLimit = 50

// detail is one document: its decoded problem with the verdict first, then its message,
// history and raw response in a scrollable viewport.
type detail struct {
	st  *styles
	now time.Time
	loc *time.Location

	doc     model.Document
	events  []model.Event
	loading bool
	err     string

	width int
	info  []string
	vp    *viewport.Model // by pointer: the Model is copied at every Update
	// infoStale and bodyStale say info and the viewport's content must be rendered again
	// before they are shown: the clock, the size and the styles change while the screen is
	// not on show, and the clock changes only info (its ages).
	infoStale, bodyStale bool
}

func newDetail(st *styles, loc *time.Location) detail {
	vp := viewport.New()
	vp.MouseWheelEnabled = false // the root routes the wheel
	return detail{st: st, vp: &vp, loc: loc}
}

// open shows a document and waits for its history.
func (d *detail) open(doc model.Document) {
	d.doc, d.events, d.loading, d.err = doc, nil, true, ""
	d.vp.GotoTop()
	d.infoStale, d.bodyStale = true, true
}

// setEvents receives the document's history.
func (d *detail) setEvents(events []model.Event, err error) {
	d.events, d.loading, d.err = events, false, ""
	if err != nil {
		d.err = model.Line(err.Error(), 0)
	}
	d.infoStale, d.bodyStale = true, true
}

// setSize sets the width; lines sets the viewport's height to what info leaves.
func (d *detail) setSize(w int) {
	d.width = w
	d.vp.SetWidth(w)
	d.infoStale, d.bodyStale = true, true
}

func (d *detail) tick(now time.Time) {
	d.now = now
	d.infoStale = true
}

func (d *detail) restyle(st *styles) {
	d.st = st
	d.infoStale, d.bodyStale = true, true
}

// scroll moves the viewport by n lines (negative: up).
// key handles a key in the detail: a movement scrolls it.
func (d *detail) key(msg tea.KeyPressMsg, k *keyMap) { scrollKey(k, msg, d.vp) }

func (d *detail) scroll(n int) {
	if n < 0 {
		d.vp.ScrollUp(-n)
	} else {
		d.vp.ScrollDown(n)
	}
}

// renderInfo rebuilds the fixed block above the viewport.
func (d *detail) renderInfo() {
	w, st, doc := d.width, d.st, &d.doc
	line := func(s string) string { return clip(s, w) }
	label := func(name, value string) string {
		return line(st.dim.Render(fmt.Sprintf("%-8s ", name)) + model.Line(value, max(1, w-9)))
	}
	number := doc.Number
	if number == "" {
		number = doc.ID
	}
	info := []string{
		line(st.title.Render("Document "+model.Line(number, 40)) + fmt.Sprintf(" · %s · %s · %s · attempts %d · seen %s · changed %s",
			model.Line(doc.Account, 30), model.Line(doc.Provider, 12), doc.Status, doc.Attempts,
			since(d.now.Sub(doc.FirstSeen)), since(d.now.Sub(doc.Changed)))),
	}
	p := doc.Problem
	if p == nil {
		info = append(info, line(st.dim.Render("no problem recorded for this document")))
	} else {
		g := model.ClassGuidance[p.Class]
		meaning, action := p.Meaning, p.Action
		if meaning == "" {
			meaning = g.Meaning
		}
		if action == "" {
			action = g.Action
		}
		vs, ok := st.verdict[p.Verdict]
		if !ok {
			vs = st.bold
		}
		badge := vs.Reverse(true).Render(" VERDICT " + strings.ToUpper(string(p.Verdict)) + " ")
		info = append(info, line(badge+"  "+st.bold.Render(verdictHints[p.Verdict])))
		facts := []string{"class " + string(p.Class)}
		if p.Code != "" {
			facts = append(facts, "code "+model.Line(p.Code, 24))
		}
		if p.Status != 0 {
			facts = append(facts, fmt.Sprintf("HTTP %d", p.Status))
		}
		if p.Method != "" {
			facts = append(facts, model.Line(p.Method, 8))
		}
		if p.HasWait {
			facts = append(facts, "wait "+countdown(p.Wait))
		}
		info = append(info,
			line(strings.Join(facts, " · ")),
			label("meaning", meaning),
			label("action", action))
		if len(p.Fields) > 0 {
			info = append(info, label("fields", strings.Join(p.Fields, ", ")))
		}
		info = append(info, label("message", p.Message))
	}
	info = append(info, line(st.title.Render("── message, history and raw response")))
	d.info = info
}

// renderBody rebuilds the viewport's content: the message, the history and the raw response.
func (d *detail) renderBody() {
	w, st, p := d.width, d.st, d.doc.Problem
	line := func(s string) string { return clip(s, w) }
	var body []string
	section := func(title string) { body = append(body, line(st.title.Render(title))) }
	if p != nil && p.Message != "" {
		section("Message")
		body = append(body, wrap(model.Sanitize(p.Message, true), w, "  ")...)
	}
	section(fmt.Sprintf("History (%d)", len(d.events)))
	switch {
	case d.loading:
		body = append(body, line(st.dim.Render("  loading…")))
	case d.err != "":
		body = append(body, line(st.errText.Render("  history unavailable: "+d.err)))
	case len(d.events) == 0:
		body = append(body, line(st.dim.Render("  no events recorded")))
	}
	var raw *model.Event
	for i := range d.events {
		e := &d.events[i]
		body = append(body, line("  "+eventLine(st, e, d.loc)))
		if raw == nil && len(e.Raw) > 0 {
			raw = e
		}
	}
	if raw != nil {
		section(fmt.Sprintf("Raw response (%s, %s)", raw.At.In(d.loc).Format(longTime), model.Line(raw.Kind, 16)))
		body = append(body, wrap(model.Sanitize(readable(raw.Raw), true), w, "  ")...)
	} else if !d.loading {
		section("Raw response")
		body = append(body, line(st.dim.Render("  none recorded")))
	}
	d.vp.SetContentLines(body)
}

// readable is a raw response as a person reads it: JSON indented, anything else as sent.
func readable(raw []byte) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") == nil {
		return b.String()
	}
	return string(raw)
}

// eventLine renders one event on one line, its time in loc.
func eventLine(st *styles, e *model.Event, loc *time.Location) string {
	p := problemOfEvent(e)
	parts := []string{
		e.At.In(loc).Format(longTime),
		fmt.Sprintf("%-8s", model.Line(e.Kind, 8)),
		paint(st.status, e.Status, fmt.Sprintf("%-8s", e.Status)),
	}
	if p.Class != "" {
		parts = append(parts, string(p.Class), paint(st.verdict, p.Verdict, string(p.Verdict)))
	}
	if p.Code != "" {
		parts = append(parts, model.Line(p.Code, 16))
	}
	if p.Message != "" {
		parts = append(parts, model.Line(p.Message, 0))
	}
	return strings.Join(parts, "  ")
}

func problemOfEvent(e *model.Event) *model.Problem {
	if e.Problem == nil {
		return &noProblem
	}
	return e.Problem
}

// wrap breaks sanitized multi-line text into lines of at most w cells, each indented.
func wrap(s string, w int, indent string) []string {
	s = strings.ReplaceAll(s, "\t", "    ")
	inner := max(1, w-width(indent))
	var out []string
	for _, l := range strings.Split(ansi.Wrap(s, inner, ""), "\n") {
		out = append(out, clip(indent+l, w))
	}
	return out
}

// lines renders the screen in h lines.
func (d *detail) lines(h int) []string {
	if d.st != nil && d.width > 0 {
		if d.infoStale {
			d.renderInfo()
		}
		if d.bodyStale {
			d.renderBody()
		}
		d.infoStale, d.bodyStale = false, false
	}
	out := append([]string(nil), d.info...)
	if rest := h - len(out); rest > 0 {
		d.vp.SetHeight(rest)
		if pos := scrollPosition(d.vp); pos != "" && len(out) > 0 {
			out[len(out)-1] = panelTitle(d.st, "── message, history and raw response", pos, false, d.width)
		}
		out = append(out, strings.Split(d.vp.View(), "\n")...)
	}
	return pad(out, h)
}
