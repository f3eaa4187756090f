package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"emitop/model"
)

// Document columns, in display order.
const (
	colAccount = iota
	colProvider
	colNumber
	colStatus
	colClass
	colVerdict
	colAge
	colAttempts
	colCode
	colMessage
)

var docColumns = []column{
	colAccount:  {title: "ACCOUNT", min: 10, pref: 14},
	colProvider: {title: "PROVIDER", min: 10, pref: 10},
	colNumber:   {title: "NUMBER", min: 11, pref: 18},
	colStatus:   {title: "STATUS", min: 8, pref: 8},
	colClass:    {title: "CLASS", min: 10, pref: 12},
	colVerdict:  {title: "VERDICT", min: 9, pref: 9},
	colAge:      {title: "AGE", min: 3, pref: 4, right: true},
	colAttempts: {title: "ATT", min: 3, pref: 3, right: true},
	colCode:     {title: "CODE", min: 5, pref: 10},
	colMessage:  {title: "MESSAGE", min: 10, grow: true, drop: 9},
}

// sortOrder is the order `s` cycles through the sortable columns.
var sortOrder = []int{colAge, colAccount, colProvider, colNumber, colStatus, colClass, colVerdict, colAttempts, colCode}

// docKey is a document's identity across snapshots, and what a mark holds on to.
type docKey struct{ account, id string }

func keyOf(d *model.Document) docKey { return docKey{d.Account, d.ID} }

// documents is the table of pending and rejected documents across accounts.
type documents struct {
	grid
	now time.Time

	all    []*model.Document
	search []string // lower-cased text of each document, built when a text filter first needs it
	view   []int    // indices into all, filtered and sorted

	filter  filter
	sortCol int
	desc    bool
	marks   map[docKey]struct{} // documents marked for a retry; kept across snapshots
}

func newDocuments(st *styles) documents {
	return documents{grid: grid{st: st, cols: docColumns}, sortCol: colAge, marks: map[docKey]struct{}{}}
}

// setDocuments replaces the documents (after a snapshot), keeping the cursor on the same
// document when it is still there, and the marks of the documents still there.
func (d *documents) setDocuments(all []*model.Document) {
	keep, had := d.selectedKey()
	d.all, d.search = all, nil
	if len(d.marks) > 0 {
		still := make(map[docKey]struct{}, len(d.marks))
		for _, doc := range all {
			if _, ok := d.marks[keyOf(doc)]; ok {
				still[keyOf(doc)] = struct{}{}
			}
		}
		d.marks = still
	}
	d.rebuild(keep, had)
}

// toggleMark marks the document under the cursor, or unmarks it.
func (d *documents) toggleMark() {
	doc, ok := d.selected()
	if !ok {
		return
	}
	k := keyOf(doc)
	if _, on := d.marks[k]; on {
		delete(d.marks, k)
	} else {
		d.marks[k] = struct{}{}
	}
	d.list.invalidateRow(d.list.cursor)
}

// markView marks every document the filter shows; when all of them are marked already, it
// unmarks them instead. It reports whether it marked.
func (d *documents) markView() bool {
	all := true
	for _, i := range d.view {
		if _, on := d.marks[keyOf(d.all[i])]; !on {
			all = false
			break
		}
	}
	for _, i := range d.view {
		if all {
			delete(d.marks, keyOf(d.all[i]))
		} else {
			d.marks[keyOf(d.all[i])] = struct{}{}
		}
	}
	d.list.invalidate()
	return !all
}

// clearMarks unmarks every document.
func (d *documents) clearMarks() {
	if len(d.marks) > 0 {
		clear(d.marks)
		d.list.invalidate()
	}
}

// marked is the marked documents: those the filter shows in their order, then the others.
func (d *documents) marked() []model.Document {
	if len(d.marks) == 0 {
		return nil
	}
	out := make([]model.Document, 0, len(d.marks))
	shown := make(map[int]bool, len(d.view))
	for _, i := range d.view {
		shown[i] = true
		if _, on := d.marks[keyOf(d.all[i])]; on {
			out = append(out, *d.all[i])
		}
	}
	for i, doc := range d.all {
		if _, on := d.marks[keyOf(doc)]; on && !shown[i] {
			out = append(out, *doc)
		}
	}
	return out
}

// setFilter applies a filter, keeping the cursor on the same document when it still matches.
// A filter that only lengthens the text (a key typed at the filter prompt) can only drop
// documents, so it narrows the sorted view instead of filtering and sorting all of them.
func (d *documents) setFilter(f filter) {
	keep, had := d.selectedKey()
	old := d.filter
	d.filter = f
	if f.narrows(old) {
		d.narrow(keep, had)
		return
	}
	d.rebuild(keep, had)
}

// narrow drops from the view the documents the text filter no longer matches; the view
// stays sorted.
func (d *documents) narrow(keep docKey, had bool) {
	d.index()
	kept := d.view[:0]
	for _, i := range d.view {
		if strings.Contains(d.search[i], d.filter.text) {
			kept = append(kept, i)
		}
	}
	d.view = kept
	d.settle(keep, had)
}

// cycleSort moves the sort to the next column.
func (d *documents) cycleSort() {
	keep, had := d.selectedKey()
	i := slices.Index(sortOrder, d.sortCol)
	d.sortCol, d.desc = sortOrder[(i+1)%len(sortOrder)], false
	d.rebuild(keep, had)
	d.renderHead()
}

// flipSort reverses the sort direction.
func (d *documents) flipSort() {
	keep, had := d.selectedKey()
	d.desc = !d.desc
	d.rebuild(keep, had)
	d.renderHead()
}

// selectedKey is the identity of the document under the cursor.
func (d *documents) selectedKey() (docKey, bool) {
	if doc, ok := d.selected(); ok {
		return keyOf(doc), true
	}
	return docKey{}, false
}

// rebuild filters and sorts again, puts the cursor back on keep when had, and lets rows
// re-render lazily. The column headers show the sort: who changes it renders them.
func (d *documents) rebuild(keep docKey, had bool) {
	if d.filter.text != "" {
		d.index()
	}
	d.view = d.view[:0]
	for i, doc := range d.all {
		if !d.filter.fields(doc.Account, doc.Provider, doc.Status) {
			continue
		}
		if d.filter.text != "" && !strings.Contains(d.search[i], d.filter.text) {
			continue
		}
		d.view = append(d.view, i)
	}
	slices.SortFunc(d.view, func(a, b int) int {
		x, y := d.all[a], d.all[b]
		c := compareDocs(x, y, d.sortCol)
		if c == 0 {
			c = cmp.Or(strings.Compare(x.Account, y.Account), strings.Compare(x.ID, y.ID))
		}
		if d.desc {
			c = -c
		}
		return c
	})
	d.settle(keep, had)
}

// index builds the lower-cased text of every document the text filter searches, once.
func (d *documents) index() {
	if d.search == nil {
		d.search = make([]string, len(d.all))
		for i, doc := range d.all {
			d.search[i] = searchText(doc)
		}
	}
}

// settle starts the list over on the new view, the cursor on keep when had and still shown.
func (d *documents) settle(keep docKey, had bool) {
	d.list.reset(len(d.view))
	if had {
		for i, j := range d.view {
			if keyOf(d.all[j]) == keep {
				d.list.jump(i)
				break
			}
		}
	}
}

func searchText(d *model.Document) string {
	parts := []string{d.Account, d.Provider, d.Number, d.ID, string(d.Status)}
	if p := d.Problem; p != nil {
		parts = append(parts, string(p.Class), string(p.Verdict), p.Code, p.Message)
	}
	return strings.ToLower(model.Sanitize(strings.Join(parts, " "), false))
}

// compareDocs orders two documents by a column; age orders newest first.
func compareDocs(a, b *model.Document, col int) int {
	switch col {
	case colAccount:
		return strings.Compare(a.Account, b.Account)
	case colProvider:
		return strings.Compare(a.Provider, b.Provider)
	case colNumber:
		return strings.Compare(a.Number, b.Number)
	case colStatus:
		return strings.Compare(string(a.Status), string(b.Status))
	case colClass:
		return strings.Compare(string(problemOf(a).Class), string(problemOf(b).Class))
	case colVerdict:
		return strings.Compare(string(problemOf(a).Verdict), string(problemOf(b).Verdict))
	case colAttempts:
		return cmp.Compare(a.Attempts, b.Attempts)
	case colCode:
		return strings.Compare(problemOf(a).Code, problemOf(b).Code)
	}
	return b.FirstSeen.Compare(a.FirstSeen)
}

var noProblem model.Problem

func problemOf(d *model.Document) *model.Problem {
	if d.Problem == nil {
		return &noProblem
	}
	return d.Problem
}

// withArrow marks a sorted column's title, within its width.
func withArrow(title string, w int, desc bool) string {
	arrow := "▲"
	if desc {
		arrow = "▼"
	}
	if r := []rune(title); len(r)+1 > w && w > 1 {
		title = string(r[:w-1])
	}
	return title + arrow
}

// selected is the document under the cursor.
func (d *documents) selected() (*model.Document, bool) {
	if d.list.cursor < 0 || d.list.cursor >= len(d.view) {
		return nil, false
	}
	return d.all[d.view[d.list.cursor]], true
}

// setSize lays the table out for w×h cells (title and column headers included).
func (d *documents) setSize(w, h int) {
	d.resize(w, h)
	d.renderHead()
}

// tick moves the clock; ages re-render as rows come into view.
func (d *documents) tick(now time.Time) {
	d.now = now
	d.list.invalidate()
}

// restyle switches styles and drops the cache.
func (d *documents) restyle(st *styles) {
	d.setStyles(st)
	d.renderHead()
}

// renderHead renders the column headers, the sort column's with its arrow.
func (d *documents) renderHead() {
	if d.widths == nil {
		return
	}
	cells := titles(docColumns)
	cells[d.sortCol] = withArrow(cells[d.sortCol], d.widths[d.sortCol], d.desc)
	d.renderHeadCells(cells)
}

// renderRow renders the document at view position i.
func (d *documents) renderRow(i int, selected bool) string {
	doc := d.all[d.view[i]]
	p := problemOf(doc)
	dash := func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	}
	cells := [...]string{
		colAccount:  model.Line(doc.Account, 0),
		colProvider: model.Line(doc.Provider, 0),
		colNumber:   elideMiddle(model.Line(dash(doc.Number), 0), d.widths[colNumber]),
		colStatus:   string(doc.Status),
		colClass:    dash(string(p.Class)),
		colVerdict:  dash(string(p.Verdict)),
		colAge:      ago(d.now.Sub(doc.FirstSeen)),
		colAttempts: strconv.Itoa(doc.Attempts),
		colCode:     model.Line(dash(p.Code), 0),
		colMessage:  model.Line(p.Message, 0),
	}
	prefix := " "
	if selected {
		prefix = "›"
	}
	if _, on := d.marks[keyOf(doc)]; on {
		prefix += "*"
	} else {
		prefix += " "
	}
	return d.cache.get(prefix, cells[:], func() string {
		return tableRow(d.st, prefix, docColumns, cells[:], d.widths, d.width, selected, func(c int, text string) string {
			switch c {
			case colStatus:
				return paint(d.st.status, doc.Status, text)
			case colVerdict:
				return paint(d.st.verdict, p.Verdict, text)
			}
			return text
		})
	})
}

// lines renders the panel: a title, the column headers and the visible rows, h lines in all.
func (d *documents) lines(h int, focused bool) []string {
	sortName := strings.ToLower(docColumns[d.sortCol].title)
	dir := "▲"
	if d.desc {
		dir = "▼"
	}
	title := fmt.Sprintf("Documents %s of %s · sort %s %s", count(len(d.view)), count(len(d.all)), sortName, dir)
	if len(d.marks) > 0 {
		title += fmt.Sprintf(" · %s marked", count(len(d.marks)))
	}
	if !d.filter.empty() {
		title += " · filter " + d.filter.String()
	}
	out := make([]string, 0, h)
	out = append(out, d.title.get(d.st, titleKey{title, focused}, d.width, func() string {
		return panelTitle(d.st, title, focused, d.width)
	}))
	if h > 1 {
		out = append(out, d.head)
	}
	body := d.list.visible(d.renderRow)
	if len(body) == 0 && h > 2 {
		msg := "no pending or rejected documents"
		if !d.filter.empty() {
			msg = "no documents match the filter (esc or :all clears it)"
		}
		body = []string{d.empty.get(d.st, msg, d.width, func() string {
			return d.st.dim.Render(clip("  "+msg, d.width))
		})}
	}
	out = append(out, body...)
	return pad(out, h)
}

// panelTitle renders a panel's title line, marked when the panel has the focus.
func panelTitle(st *styles, title string, focused bool, w int) string {
	if focused {
		return st.focused.Render(clip("▶ "+title, w))
	}
	return st.title.Render(clip("  "+title, w))
}

// pad cuts or fills lines to exactly h.
func pad(lines []string, h int) []string {
	if len(lines) > h {
		return lines[:max(0, h)]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return lines
}

// count formats n with thousands separators.
func count(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
