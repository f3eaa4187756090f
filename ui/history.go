package ui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"emitop/model"
)

// History columns, in display order.
const (
	hcDate = iota
	hcTime
	hcAccount
	hcNumber
	hcKind
	hcStatus
	hcClass
	hcVerdict
	hcCode
	hcMessage
)

var historyColumns = []column{
	hcDate:    {title: "DATE", min: 10, prio: 5},
	hcTime:    {title: "TIME", min: 14},
	hcAccount: {title: "ACCOUNT", min: 8, pref: 10},
	hcNumber:  {title: "NUMBER", min: 12, pref: 14},
	hcKind:    {title: "KIND", min: 7, pref: 8, prio: 4},
	hcStatus:  {title: "STATUS", min: 8, prio: 1},
	hcClass:   {title: "CLASS", min: 12, prio: 5},
	hcVerdict: {title: "VERDICT", min: 9, prio: 2},
	hcCode:    {title: "CODE", min: 6, pref: 8, prio: 4},
	hcMessage: {title: "MESSAGE", min: 12, pref: 40, grow: true, prio: 3},
}

// longTime is a time with its date and zone.
const longTime = "2006-01-02 15:04:05 MST"

// eventsLimit is how many events the history screen loads.
const eventsLimit = 2000

// history is the event timeline, newest first, filtered like the documents.
type history struct {
	grid
	loc *time.Location

	events  []model.Event
	view    []int
	filter  filter
	loading bool
	err     string
}

func newHistory(st *styles, loc *time.Location) history {
	return history{grid: newGrid(st, historyColumns, 2), loc: loc}
}

// eventRequest is what the history asks the backend for under a filter; the account
// narrows the query, the rest is applied here.
func eventRequest(f filter) EventFilter {
	return EventFilter{Account: f.account, Limit: eventsLimit}
}

// load marks the history as waiting for events.
func (h *history) load() {
	h.loading, h.err = true, ""
}

// setEvents receives events.
func (h *history) setEvents(events []model.Event, err error) {
	h.loading = false
	if err != nil {
		h.err = model.Line(err.Error(), 0)
		return
	}
	h.events, h.err = events, ""
	h.rebuild()
}

func (h *history) setFilter(f filter) {
	h.filter = f
	h.rebuild()
}

func (h *history) rebuild() {
	h.view = h.view[:0]
	for i := range h.events {
		e := &h.events[i]
		if !h.filter.fields(e.Account, e.Provider, e.Status) {
			continue
		}
		if h.filter.text != "" && !strings.Contains(eventSearchText(e), h.filter.text) {
			continue
		}
		h.view = append(h.view, i)
	}
	h.list.reset(len(h.view))
	account, number, code := 0, 0, 0
	for _, i := range h.view {
		e := &h.events[i]
		account = max(account, len(e.Account))
		number = max(number, len(e.Number), min(len(e.DocID), maxNumberPref))
		code = max(code, len(problemOfEvent(e).Code))
	}
	relaid := h.setPref(hcAccount, min(maxAccountPref, max(historyColumns[hcAccount].pref, account)))
	relaid = h.setPref(hcNumber, min(maxNumberPref, max(historyColumns[hcNumber].pref, number))) || relaid
	relaid = h.setPref(hcCode, min(maxCodePref, max(historyColumns[hcCode].pref, code))) || relaid
	if relaid {
		h.renderHeadCells(titles(historyColumns))
	}
}

func eventSearchText(e *model.Event) string {
	p := problemOfEvent(e)
	return strings.ToLower(model.Sanitize(strings.Join([]string{
		e.Account, e.Provider, e.Number, e.DocID, e.Kind, string(e.Status),
		string(p.Class), string(p.Verdict), p.Code, p.Message}, " "), false))
}

// selected is the event under the cursor.
// key handles a key in the history: a movement moves the cursor; enter asks for the
// event under it to be opened.
func (h *history) key(msg tea.KeyPressMsg, k *keyMap) (open *model.Event) {
	if key.Matches(msg, k.Enter) {
		e, _ := h.selected()
		return e
	}
	navigate(k, msg, &h.list)
	return nil
}

func (h *history) selected() (*model.Event, bool) {
	if h.list.cursor >= len(h.view) {
		return nil, false
	}
	return &h.events[h.view[h.list.cursor]], true
}

func (h *history) setSize(w, ht int) {
	h.resize(w, ht)
	h.renderHeadCells(titles(historyColumns))
}

func (h *history) restyle(st *styles) {
	h.setStyles(st)
	h.renderHeadCells(titles(historyColumns))
}

func (h *history) renderRow(i int, selected bool) string {
	e := &h.events[h.view[i]]
	p := problemOfEvent(e)
	at := e.At.In(h.loc)
	number := e.Number
	if number == "" {
		number = e.DocID
	}
	cells := [...]string{
		hcDate:    at.Format("2006-01-02"),
		hcTime:    at.Format(clockFormat),
		hcAccount: model.Line(e.Account, 0),
		hcNumber:  shortNumber(model.Line(number, 0), h.widths[hcNumber]),
		hcKind:    model.Line(e.Kind, 0),
		hcStatus:  string(e.Status),
		hcClass:   string(p.Class),
		hcVerdict: string(p.Verdict),
		hcCode:    model.Line(p.Code, 0),
		hcMessage: model.Line(p.Message, 0),
	}
	prefix := "  "
	if selected {
		prefix = "› "
	}
	return tableRow(h.st, prefix, h.cols, cells[:], h.widths, h.width, selected, func(c int, text string) string {
		switch c {
		case hcStatus:
			return paint(h.st.status, e.Status, text)
		case hcVerdict:
			return paint(h.st.verdict, p.Verdict, text)
		}
		return text
	})
}

// lines renders the screen in ht lines.
func (h *history) lines(ht int) []string {
	title := fmt.Sprintf("History · %s of %s events", count(len(h.view)), count(len(h.events)))
	if !h.filter.empty() {
		title += " · filter " + h.filter.String()
	}
	out := []string{h.titleLine(title, true)}
	if ht > 1 {
		out = append(out, h.head)
	}
	body := h.list.visible(h.renderRow)
	if len(body) == 0 && ht > 2 {
		msg := "no events"
		switch {
		case h.loading:
			msg = "loading…"
		case h.err != "":
			msg = "history unavailable: " + h.err
		case !h.filter.empty():
			msg = "no events match the filter (esc or :all clears it)"
		}
		body = []string{h.empty.get(h.st, msg, h.width, func() string {
			return h.st.dim.Render(clip("  "+msg, h.width))
		})}
	}
	return pad(append(out, body...), ht)
}
