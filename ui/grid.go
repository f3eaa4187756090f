package ui

import (
	"fmt"
	"slices"
)

// grid is what the three scrolling tables (accounts, documents, history) share: their
// columns laid out for a width, the visible rows, the rendered rows kept by their text,
// and the column headers.
type grid struct {
	st     *styles
	cols   []column // the table's own copy: prefs follow the data shown
	gutter int      // cells left of every row: the cursor and the row's markers
	list   rows
	width  int
	widths []int
	head   string
	title  memo[titleKey, string]
	empty  memo[string, string]
	cache  rowCache
}

func newGrid(st *styles, cols []column, gutter int) grid {
	return grid{st: st, cols: slices.Clone(cols), gutter: gutter}
}

// resize lays the table out for w×h cells (title and column headers included); every
// row renders again.
func (t *grid) resize(w, h int) {
	t.width = w
	t.list.setHeight(h - 2)
	t.relayout()
}

// relayout lays the columns out again for the width; every row renders again.
func (t *grid) relayout() {
	if t.width <= 0 {
		return
	}
	t.widths = layout(t.cols, t.gutter, t.width)
	t.list.invalidate()
	t.cache.clear()
}

// setPref sets what column c grows to (the longest value shown, say), and reports whether
// that changed the layout.
func (t *grid) setPref(c, pref int) bool {
	if t.cols[c].pref == pref {
		return false
	}
	t.cols[c].pref = pref
	old := t.widths
	t.relayout()
	return !slices.Equal(old, t.widths)
}

// setStyles switches styles; every row renders again.
func (t *grid) setStyles(st *styles) {
	t.st = st
	t.list.invalidate()
	t.cache.clear()
}

// renderHeadCells renders the column headers from one title per column.
func (t *grid) renderHeadCells(cells []string) {
	if t.st == nil || t.widths == nil {
		return
	}
	t.head = t.st.colHead.Render(headRow(t.gutter, t.cols, cells, t.widths, t.width))
}

// titleLine is the panel's title line with the list's position at its right.
func (t *grid) titleLine(title string, focused bool) string {
	pos := t.list.position()
	return t.title.get(t.st, titleKey{title + "\x00" + pos, focused}, t.width, func() string {
		return panelTitle(t.st, title, pos, focused, t.width)
	})
}

// titles is each column's title.
func titles(cols []column) []string {
	cells := make([]string, len(cols))
	for i, c := range cols {
		cells[i] = c.title
	}
	return cells
}

// position says where the cursor is in the list and how much lies above and below the
// rows shown: "[12/114] ▲7 ▼95". Empty for an empty list.
func (r *rows) position() string {
	if r.n == 0 {
		return ""
	}
	s := fmt.Sprintf("[%s/%s]", count(r.cursor+1), count(r.n))
	if r.offset > 0 {
		s += " ▲" + count(r.offset)
	}
	if below := r.n - r.offset - r.height; below > 0 && r.height > 0 {
		s += " ▼" + count(below)
	}
	return s
}
