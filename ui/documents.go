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

// docColumns' prefs for the account, number and code columns are set by the longest value
// shown (up to a cap): names and numbers are shown whole when there is room.
var docColumns = []column{
	colAccount:  {title: "ACCOUNT", min: 8, pref: 10},
	colProvider: {title: "PROVIDER", min: 9, pref: 10, prio: 6},
	colNumber:   {title: "NUMBER", min: 12, pref: 14},
	colStatus:   {title: "STATUS", min: 9, prio: 1},
	colClass:    {title: "CLASS", min: 13, prio: 4},
	colVerdict:  {title: "VERDICT", min: 10, prio: 1},
	colAge:      {title: "AGE", min: 4, right: true, prio: 2},
	colAttempts: {title: "ATT", min: 4, right: true, prio: 5},
	colCode:     {title: "CODE", min: 6, pref: 8, prio: 2},
	colMessage:  {title: "MESSAGE", min: 12, pref: 40, grow: true, prio: 3},
}

// Caps of the prefs the data sets: a longer value is shortened.
const (
	maxAccountPref = 24
	maxNumberPref  = 40
	maxCodePref    = 16
)

// docGutter is the cursor, the mark and the change marker.
const docGutter = 3

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
	hidden  int                 // marks of documents the filter does not show

	// Change awareness: a document whose Changed is after baseline and after the time it
	// was last acknowledged is news, marked until the operator has seen it.
	baseline time.Time
	acked    map[docKey]time.Time
	fresh    int       // news in the view
	newest   time.Time // the latest Changed of all the documents: none is news unless it is after baseline

	// attempts are emissions a retry reported before the next snapshot says so.
	attempts map[docKey]int
}

func newDocuments(st *styles) documents {
	return documents{grid: newGrid(st, docColumns, docGutter), sortCol: colAge, marks: map[docKey]struct{}{},
		acked: map[docKey]time.Time{}, attempts: map[docKey]int{}}
}

// setDocuments replaces the documents (after a snapshot), keeping the cursor on the same
// document when it is still there, and the marks of the documents still there.
func (d *documents) setDocuments(all []*model.Document) {
	keep, had := d.selectedKey()
	d.all, d.search = all, nil
	d.newest = time.Time{}
	for _, doc := range all {
		if doc.Changed.After(d.newest) {
			d.newest = doc.Changed
		}
	}
	if len(d.marks) > 0 || len(d.attempts) > 0 || len(d.acked) > len(all)+ackSlack {
		still := make(map[docKey]struct{}, len(d.marks))
		acked := d.acked
		if len(d.acked) > len(all)+ackSlack {
			acked = make(map[docKey]time.Time, len(all))
		}
		for _, doc := range all {
			k := keyOf(doc)
			if _, ok := d.marks[k]; ok {
				still[k] = struct{}{}
			}
			if n, ok := d.attempts[k]; ok && doc.Attempts >= n {
				delete(d.attempts, k) // the snapshot knows it now
			}
			if t, ok := d.acked[k]; ok {
				acked[k] = t
			}
		}
		d.marks, d.acked = still, acked
	}
	d.rebuild(keep, had)
}

// ackSlack is how many acknowledgements of documents no longer listed are kept before
// they are dropped: the map never grows past the documents listed and this.
const ackSlack = 1024

// setBaseline says which changes are not news: those at or before t, what the operator
// saw when the dashboard first showed every account.
func (d *documents) setBaseline(t time.Time) {
	if !t.Equal(d.baseline) {
		d.baseline = t
		d.countFresh()
		d.list.invalidate()
	}
}

// change is what a document's marker says: "+" appeared, "~" changed state, "" neither
// since the operator last saw it.
func (d *documents) change(doc *model.Document) string {
	if !doc.Changed.After(d.baseline) {
		return ""
	}
	if t, ok := d.acked[keyOf(doc)]; ok && !doc.Changed.After(t) {
		return ""
	}
	if doc.Changed.Equal(doc.FirstSeen) {
		return "+"
	}
	return "~"
}

// countFresh counts the news in the view.
func (d *documents) countFresh() {
	d.fresh = 0
	if !d.newest.After(d.baseline) {
		return // nothing changed since the operator first looked
	}
	for _, i := range d.view {
		if d.change(d.all[i]) != "" {
			d.fresh++
		}
	}
}

// ack marks the rows on screen as seen: the operator acted with them in view.
func (d *documents) ack() {
	if d.fresh == 0 {
		return
	}
	end := min(d.list.n, d.list.offset+d.list.height)
	for i := d.list.offset; i < end; i++ {
		doc := d.all[d.view[i]]
		if d.change(doc) != "" {
			d.acked[keyOf(doc)] = doc.Changed
			d.fresh--
			d.list.invalidateRow(i)
		}
	}
}

// retried takes a retry's results: each document's attempts show at once, not at the
// next poll.
func (d *documents) retried(results []RetryResult) {
	for _, r := range results {
		if r.Sent {
			k := docKey{r.Doc.Account, r.Doc.ID}
			d.attempts[k] = max(d.attempts[k], r.Doc.Attempts)
		}
	}
	d.list.invalidate()
}

// attemptsOf is a document's attempts, with those a retry reported since the snapshot.
func (d *documents) attemptsOf(doc *model.Document) int {
	if n, ok := d.attempts[keyOf(doc)]; ok {
		return max(n, doc.Attempts)
	}
	return doc.Attempts
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
	d.list.hold()
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
		d.hidden = 0
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

// settle starts the list over on the new view, the cursor on keep when had and still shown;
// it counts the marks the view hides and the news it shows, and lets the account, number
// and code columns grow to the longest value shown.
func (d *documents) settle(keep docKey, had bool) {
	d.list.reset(len(d.view))
	shown, account, number, code := 0, 0, 0, 0
	for _, i := range d.view {
		doc := d.all[i]
		if len(d.marks) > 0 {
			if _, on := d.marks[keyOf(doc)]; on {
				shown++
			}
		}
		account = max(account, len(doc.Account))
		number = max(number, len(doc.Number))
		if doc.Problem != nil {
			code = max(code, len(doc.Problem.Code))
		}
	}
	d.hidden = len(d.marks) - shown
	d.countFresh()
	relaid := d.setPref(colAccount, min(maxAccountPref, max(docColumns[colAccount].pref, account)))
	relaid = d.setPref(colNumber, min(maxNumberPref, max(docColumns[colNumber].pref, number))) || relaid
	relaid = d.setPref(colCode, min(maxCodePref, max(docColumns[colCode].pref, code))) || relaid
	if relaid {
		d.renderHead()
	}
	if had {
		for i, j := range d.view {
			if keyOf(d.all[j]) == keep {
				d.list.follow(i)
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
		colNumber:   shortNumber(model.Line(dash(doc.Number), 0), d.widths[colNumber]),
		colStatus:   string(doc.Status),
		colClass:    dash(string(p.Class)),
		colVerdict:  dash(string(p.Verdict)),
		colAge:      ago(d.now.Sub(doc.FirstSeen)),
		colAttempts: strconv.Itoa(d.attemptsOf(doc)),
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
	switch ch := d.change(doc); {
	case ch == "":
		prefix += " "
	case selected:
		prefix += ch
	default:
		prefix += d.st.paint("fresh", d.st.fresh, ch)
	}
	return d.cache.get(prefix, cells[:], func() string {
		return tableRow(d.st, prefix, d.cols, cells[:], d.widths, d.width, selected, func(c int, text string) string {
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
	if d.fresh > 0 {
		title += fmt.Sprintf(" · %s new or changed (+ ~)", count(d.fresh))
	}
	if len(d.marks) > 0 {
		title += " · " + d.marksText()
	}
	if !d.filter.empty() {
		title += " · filter " + d.filter.String()
	}
	out := make([]string, 0, h)
	out = append(out, d.titleLine(title, focused))
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

// marksText says how many documents are marked and how many of them the filter hides:
// "2 marked, 1 hidden by the filter".
func (d *documents) marksText() string {
	s := count(len(d.marks)) + " marked"
	if d.hidden > 0 {
		s += fmt.Sprintf(", %s hidden by the filter", count(d.hidden))
	}
	return s
}

// panelTitle renders a panel's title line, marked when the panel has the focus, with the
// list's position at its right; the title gives way to the position.
func panelTitle(st *styles, title, pos string, focused bool, w int) string {
	lead, style := "  ", st.titleW
	if focused {
		lead, style = "▶ ", st.focusedW
	}
	left := lead + title
	if pos == "" || w-width(pos)-1 < 12 {
		return style.wrap(clip(left, w))
	}
	left = clip(left, w-width(pos)-1)
	return style.wrap(left + strings.Repeat(" ", w-width(left)-width(pos)) + pos)
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
