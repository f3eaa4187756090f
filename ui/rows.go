package ui

import (
	"fmt"

	"charm.land/bubbles/v2/viewport"
)

// rows is a scrolling list of n items with a cursor whose rendered lines are cached: an item
// is rendered the first time it scrolls into view after the cache was invalidated, and a
// cursor move renders only the row under the cursor (the selected style) again.
type rows struct {
	n, cursor, offset, height int
	// held is set once the operator has put the cursor somewhere: from then on it follows
	// its item when the list changes. Until then it stays on the first row, so that a
	// list that fills and re-sorts as polls arrive still opens on its top: the worst
	// account, the first document.
	held bool

	lines  []string // rendered items by index, valid when epochs[i] == epoch
	epochs []uint32
	epoch  uint32

	sel      string // the cursor's row rendered as selected
	selAt    int
	selEpoch uint32
}

// reset sets a new item count and drops every cached line.
func (r *rows) reset(n int) {
	r.n = n
	if cap(r.lines) >= n {
		r.lines, r.epochs = r.lines[:n], r.epochs[:n]
	} else {
		r.lines, r.epochs = make([]string, n), make([]uint32, n)
	}
	r.invalidate()
	r.clamp()
}

// invalidate drops every cached line (the clock, the styles or the width changed).
func (r *rows) invalidate() {
	r.epoch++
	if r.epoch == 0 { // wrapped: old lines could look valid again
		clear(r.epochs)
		r.epoch = 1
	}
}

// invalidateRow drops item i's cached line (its mark changed).
func (r *rows) invalidateRow(i int) {
	if i >= 0 && i < r.n {
		r.epochs[i] = r.epoch - 1
	}
	if r.selAt == i {
		r.selEpoch = r.epoch - 1
	}
}

// setHeight sets how many rows are visible.
func (r *rows) setHeight(h int) {
	r.height = max(0, h)
	r.clamp()
}

// move moves the cursor by delta rows, clamped.
func (r *rows) move(delta int) {
	r.cursor += delta
	r.held = true
	r.clamp()
}

// jump puts the cursor on item i, clamped.
func (r *rows) jump(i int) {
	r.cursor = i
	r.held = true
	r.clamp()
}

// hold keeps the cursor on its item from now on: the operator acted on it (opened it,
// marked it) without moving the cursor there.
func (r *rows) hold() { r.held = true }

// follow puts the cursor back on its item, now at i, after the list changed; a cursor the
// operator has not moved stays on the first row.
func (r *rows) follow(i int) {
	if r.held {
		r.cursor = i
		r.clamp()
	}
}

// page is a page's worth of rows for pgup/pgdown.
func (r *rows) page() int { return max(1, r.height-1) }

func (r *rows) clamp() {
	r.cursor = max(0, min(r.cursor, r.n-1))
	if r.height <= 0 {
		r.offset = 0
		return
	}
	if r.cursor < r.offset {
		r.offset = r.cursor
	}
	if r.cursor >= r.offset+r.height {
		r.offset = r.cursor - r.height + 1
	}
	r.offset = max(0, min(r.offset, r.n-r.height))
}

// visible returns the visible rows, rendering the ones not cached; render(i, selected)
// renders item i.
func (r *rows) visible(render func(i int, selected bool) string) []string {
	end := min(r.n, r.offset+r.height)
	out := make([]string, 0, max(0, end-r.offset))
	for i := r.offset; i < end; i++ {
		if i == r.cursor {
			if r.selAt != i || r.selEpoch != r.epoch {
				r.sel, r.selAt, r.selEpoch = render(i, true), i, r.epoch
			}
			out = append(out, r.sel)
			continue
		}
		if r.epochs[i] != r.epoch {
			r.lines[i], r.epochs[i] = render(i, false), r.epoch
		}
		out = append(out, r.lines[i])
	}
	return out
}

// rowCacheSize is how many rendered rows a rowCache holds before it starts a new
// generation: a few pages of the largest terminal.
const rowCacheSize = 512

// rowCache keeps rendered table rows by the text they were rendered from (the prefix and
// the cells, which also decide their colours), across the invalidations of rows: a new
// snapshot brings mostly the same documents, and a tick changes few of their ages, so most
// rows come back without lipgloss. It keeps two generations of at most rowCacheSize rows;
// a change of widths or styles clears it.
type rowCache struct {
	cur, prev map[string]string
	key       []byte // scratch for the key; not a strings.Builder, which must not be copied
}

// get returns the row rendered from prefix and cells, calling render when it has none.
func (c *rowCache) get(prefix string, cells []string, render func() string) string {
	k := append(c.key[:0], prefix...)
	for _, s := range cells {
		k = append(append(k, 0), s...)
	}
	c.key = k
	if s, ok := c.cur[string(k)]; ok {
		return s
	}
	s, ok := c.prev[string(k)]
	if !ok {
		s = render()
	}
	if len(c.cur) >= rowCacheSize || c.cur == nil {
		c.prev, c.cur = c.cur, make(map[string]string, rowCacheSize)
	}
	c.cur[string(k)] = s
	return s
}

// clear drops every row (the widths or the styles changed).
func (c *rowCache) clear() { c.cur, c.prev = nil, nil }

// scrollPosition says where a viewport is in its content, like a list's position: the
// first line shown of the total, and how many lines lie above and below. Empty when the
// whole content shows.
func scrollPosition(vp *viewport.Model) string {
	total, shown := vp.TotalLineCount(), vp.Height()
	if total <= shown || shown <= 0 {
		return ""
	}
	top := vp.YOffset()
	s := fmt.Sprintf("[%s/%s]", count(top+1), count(total))
	if top > 0 {
		s += " ▲" + count(top)
	}
	if below := total - top - shown; below > 0 {
		s += " ▼" + count(below)
	}
	return s
}
