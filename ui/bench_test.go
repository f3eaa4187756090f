package ui

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/table"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
)

// big is a dashboard at 200×60 showing 100k documents across 1,000 accounts.
func big(tb testing.TB) (Model, *memBackend) {
	tb.Helper()
	s := bigSnapshot(1_000, 100_000)
	b := newMemBackend(s, nil)
	m := New(b, Options{Now: fixedNow, Env: "bench"})
	m = step(m, tea.ColorProfileMsg{Profile: colorprofile.TrueColor}, tea.WindowSizeMsg{Width: 200, Height: 60}, snapshotMsg{s})
	return m, b
}

// frameKey moves the cursor down for 1,000 frames, then up for 1,000: the cursor walks
// inside the page and scrolls it, so new rows keep coming into view.
func frameKey(i int) tea.KeyPressMsg {
	if i%2000 < 1000 {
		return press("j")
	}
	return press("k")
}

// BenchmarkFrame measures one frame (a cursor move and View) of the dashboard with 1,000
// accounts and 100k documents at 200×60, and the same document rows through
// bubbles/v2/table in the same run; x-faster is the ratio (the target is 10 or more).
func BenchmarkFrame(b *testing.B) {
	m, _ := big(b)
	_, docsH := m.split()
	rows := make([]table.Row, len(m.docs.view))
	for i, j := range m.docs.view {
		d := m.docs.all[j]
		p := problemOf(d)
		rows[i] = table.Row{d.Account, d.Provider, d.Number, string(d.Status), string(p.Class),
			string(p.Verdict), ago(clock.Sub(d.FirstSeen)), strconv.Itoa(d.Attempts), p.Code, p.Message}
	}
	var cols []table.Column
	for i, c := range m.docs.cols {
		cols = append(cols, table.Column{Title: c.title, Width: m.docs.widths[i]})
	}
	tbl := table.New(table.WithColumns(cols), table.WithRows(rows), table.WithHeight(docsH-1),
		table.WithWidth(200), table.WithFocused(true))

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		next, _ := m.Update(frameKey(i))
		m = next.(Model)
		_ = m.View()
	}
	ours := time.Since(start)
	b.StopTimer()

	n := min(b.N, 100)
	start = time.Now()
	for i := range n {
		if frameKey(i).Code == 'j' {
			tbl.MoveDown(1)
		} else {
			tbl.MoveUp(1)
		}
		_ = tbl.View()
	}
	theirs := time.Since(start)

	perOurs := float64(ours.Nanoseconds()) / float64(b.N)
	perTheirs := float64(theirs.Nanoseconds()) / float64(n)
	b.ReportMetric(perTheirs, "table-ns/frame")
	b.ReportMetric(perTheirs/perOurs, "x-faster")
}

// BenchmarkSnapshot measures taking a snapshot of 1,000 accounts and 100k documents
// (summarize and order the accounts, flatten, sort and lay out the documents).
func BenchmarkSnapshot(b *testing.B) {
	m, _ := big(b)
	s := bigSnapshot(1_000, 100_000)
	b.ResetTimer()
	for range b.N {
		m = step(m, snapshotMsg{s})
	}
}

// TestMemory100k measures the heap the dashboard holds with 1,000 accounts and 100k
// documents (snapshot included) after every page has been rendered once.
func TestMemory100k(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100k documents")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, _ := big(t)
	for range 100_000 / 50 {
		m = step(m, press("pgdown"))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("100k documents: heap in use %.1f MB, process RSS %s", float64(heap)/(1<<20), rss())
	if heap > 150<<20 {
		t.Errorf("heap in use %d MB, want ≤ 150 MB", heap>>20)
	}
	runtime.KeepAlive(m)
}

// rss is the process's resident set size as /proc reports it.
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "unknown"
}

// BenchmarkFilterTyping measures one key typed at the filter prompt over 100k documents
// (the text grows by one character, so the view narrows), and in the same run the
// baseline: filtering and sorting all 100k again for the same filter.
func BenchmarkFilterTyping(b *testing.B) {
	m, _ := big(b)
	d := &m.docs
	const text = "message number 12"
	d.setFilter(filter{}) // the search index is built at the first key, in both
	d.setFilter(filter{text: text[:1]})
	b.ResetTimer()
	for i := range b.N {
		k := 1 + i%(len(text)-1)
		if k == 1 {
			b.StopTimer()
			d.setFilter(filter{text: text[:1]})
			b.StartTimer()
		}
		d.setFilter(filter{text: text[:k+1]})
	}
	b.StopTimer()
	ours := b.Elapsed() // the keys only, not the resets to the first character

	n := min(b.N, 50)
	start := time.Now()
	for i := range n {
		d.filter = filter{text: text[:2+i%(len(text)-1)]}
		d.rebuild(docKey{}, false)
	}
	theirs := time.Since(start)
	perOurs := float64(ours.Nanoseconds()) / float64(b.N)
	perTheirs := float64(theirs.Nanoseconds()) / float64(n)
	b.ReportMetric(perTheirs, "rebuild-ns/key")
	b.ReportMetric(perTheirs/perOurs, "x-faster")
}
