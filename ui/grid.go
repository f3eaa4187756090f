package ui

// grid is what the three scrolling tables (budgets, documents, history) share: their
// columns laid out for a width, the visible rows, the rendered rows kept by their text,
// and the column headers.
type grid struct {
	st     *styles
	cols   []column
	list   rows
	width  int
	widths []int
	head   string
	title  memo[titleKey, string]
	empty  memo[string, string]
	cache  rowCache
}

// resize lays the table out for w×h cells (title and column headers included); every
// row renders again.
func (t *grid) resize(w, h int) {
	t.width = w
	t.widths = layout(t.cols, w)
	t.list.setHeight(h - 2)
	t.list.invalidate()
	t.cache.clear()
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
	t.head = t.st.colHead.Render(headRow(t.cols, cells, t.widths, t.width))
}

// titles is each column's title.
func titles(cols []column) []string {
	cells := make([]string, len(cols))
	for i, c := range cols {
		cells[i] = c.title
	}
	return cells
}
