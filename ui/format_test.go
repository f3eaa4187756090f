package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"

	"emitop/model"
)

func TestElideMiddleKeepsBothEnds(t *testing.T) {
	cases := []struct {
		in   string
		w    int
		want string
	}{
		{"DTE-01-M001P001-000000000000001", 18, "DTE-01…00000000001"},
		{"DTE-01-M001P001-000000000000002", 11, "DTE…0000002"},
		{"FE1009", 18, "FE1009"},
		{"SETP990000203", 4, "SETP990000203"}, // too narrow to elide: fit cuts it
	}
	for _, c := range cases {
		got := elideMiddle(c.in, c.w)
		if got != c.want {
			t.Errorf("elideMiddle(%q, %d) = %q, want %q", c.in, c.w, got, c.want)
		}
		if c.w >= 5 && width(got) > c.w {
			t.Errorf("elideMiddle(%q, %d) is %d cells wide", c.in, c.w, width(got))
		}
	}
}

func TestReadableIndentsJSONOnly(t *testing.T) {
	if got := readable([]byte(`{"estado":"RECHAZADO","observaciones":["x"]}`)); got != "{\n  \"estado\": \"RECHAZADO\",\n  \"observaciones\": [\n    \"x\"\n  ]\n}" {
		t.Errorf("JSON: %q", got)
	}
	if got := readable([]byte("<html>502</html>")); got != "<html>502</html>" {
		t.Errorf("HTML: %q", got)
	}
}

func TestHeaderSaysWhenHistoryIsNotSaved(t *testing.T) {
	st := newStyles(colorprofile.ASCII, true, true)
	now := time.Date(2026, 3, 14, 15, 4, 5, 0, time.UTC)
	snap := &model.Snapshot{At: now, Accounts: []model.AccountState{{
		Account: model.Account{Name: "sv-main", Provider: "sv-dte"}, Health: model.HealthUp,
		LastPoll: now, PollInterval: time.Minute,
	}}}
	if got := header(st, Options{}, snap, nil, now, 160); strings.Contains(got, "NOT SAVED") {
		t.Fatalf("history is fine, header says %q", got)
	}
	snap.History = "store: commit: database or disk is full\x1b[2J"
	got := header(st, Options{}, snap, nil, now, 160)
	if !strings.Contains(got, "HISTORY NOT SAVED: store: commit: database or disk is full") || strings.Contains(got, "\x1b[2J") {
		t.Fatalf("header %q", got)
	}
	if w := width(header(st, Options{}, snap, nil, now, 80)); w > 80 {
		t.Fatalf("header is %d cells wide at 80", w)
	}

	// The store's gap: how long it has lasted, what was lost, and for a while after it
	// ends, that history is saved again.
	snap.HistoryGap = model.HistoryGap{Since: now.Add(-3 * time.Minute), Lost: 12}
	if got := header(st, Options{}, snap, nil, now, 160); !strings.Contains(got, "HISTORY NOT SAVED for 3m: store: commit: database or disk is full, 12 writes lost") {
		t.Fatalf("header during a gap %q", got)
	}
	snap.History, snap.HistoryGap.Until = "", now.Add(-time.Minute)
	if got := header(st, Options{}, snap, nil, now, 160); !strings.Contains(got, "history saved again 1m ago (gap 2m, 12 writes lost)") {
		t.Fatalf("header after a gap %q", got)
	}
	if got := header(st, Options{}, snap, nil, now.Add(resumedShown), 160); strings.Contains(got, "history") {
		t.Fatalf("header long after a gap %q", got)
	}
}

// TestHeaderNamesTheStore: the header says where history and leases live when there is
// room, gives that way first on a narrow terminal, and never shows hostile text raw.
func TestHeaderNamesTheStore(t *testing.T) {
	st := newStyles(colorprofile.ASCII, true, true)
	now := time.Date(2026, 3, 14, 15, 4, 5, 0, time.UTC)
	snap := &model.Snapshot{At: now, Accounts: []model.AccountState{{
		Account: model.Account{Name: "sv-main", Provider: "sv-dte"}, Health: model.HealthUp,
		LastPoll: now, PollInterval: time.Minute,
	}}}
	cases := []struct {
		store string
		w     int
		want  string // "" when the store is not named
	}{
		{"PostgreSQL emitop@db.example:5432/emitop", 160, "store: PostgreSQL emitop@db.example:5432/emitop · 15:04:05 UTC"},
		{"this host", 120, "store: this host · 15:04:05 UTC"},
		{"PostgreSQL emitop@db.example:5432/emitop", 70, ""},
		{"", 160, ""},
		{"evil\x1b[2J\rhost", 160, "store: evil␍host"},
	}
	for _, c := range cases {
		got := header(st, Options{Store: c.store}, snap, nil, now, c.w)
		if c.want != "" && !strings.Contains(got, c.want) || c.want == "" && strings.Contains(got, "store:") {
			t.Errorf("store %q at %d: header %q, want %q", c.store, c.w, got, c.want)
		}
		if width(got) > c.w || strings.Contains(got, "\x1b[2J") {
			t.Errorf("store %q at %d: header %q is %d cells wide", c.store, c.w, got, width(got))
		}
	}
}

func TestShortNumberKeepsWhatTellsDocumentsApart(t *testing.T) {
	const dte = "DTE-01-M001P001-000000000000002"
	cases := []struct {
		in   string
		w    int
		want string
	}{
		{dte, 40, dte},
		{dte, 20, "DTE-01-M001P001-…002"},
		{dte, 18, "DTE-01-M001P001-…2"},
		{dte, 14, "…M001P001-…002"},
		{dte, 12, "…M001P001-…2"},
		{"SETP990000002", 11, "SETP…000002"},
		{"SETP990000002", 8, "SETP…002"},
		{"DTE-01-0000001", 11, "DTE-01-…001"},
		{"F2026/7", 7, "F2026/7"},
		{"FACTURA-SIN-NUMERO", 10, "FAC…NUMERO"},
		{"ÑANDÚ-0000000001", 10, elideMiddle("ÑANDÚ-0000000001", 10)},
	}
	for _, c := range cases {
		got := shortNumber(c.in, c.w)
		if got != c.want {
			t.Errorf("shortNumber(%q, %d) = %q, want %q", c.in, c.w, got, c.want)
		}
		if width(got) > c.w {
			t.Errorf("shortNumber(%q, %d) is %d cells wide", c.in, c.w, width(got))
		}
	}
}
