package pace

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"emitop/model"
)

var rlNow = time.Date(2025, 1, 16, 10, 30, 0, 0, time.UTC)

const unk = model.Unknown

// rlWin is a window as the tests state it: reset in seconds, -1 when not stated.
type rlWin struct {
	name             string
	limit, remaining int
	reset            float64
}

func rlHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestWindows(t *testing.T) {
	date := rlNow.Add(-5 * time.Second).Format(http.TimeFormat) // server 5 s behind
	epoch := rlNow.Unix()
	cases := []struct {
		name string
		h    http.Header
		want []rlWin
	}{
		{"none", rlHeader("Content-Type", "application/json"), nil},
		{"alegra delta", rlHeader("X-Rate-Limit-Limit", "150", "X-Rate-Limit-Remaining", "149", "X-Rate-Limit-Reset", "42"),
			[]rlWin{{"", 150, 149, 42}}},
		{"x-ratelimit epoch seconds against local clock", rlHeader("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "95",
			"X-RateLimit-Reset", fmt.Sprint(epoch+30)), []rlWin{{"", 100, 95, 30}}},
		{"x-ratelimit epoch seconds against Date", rlHeader("X-RateLimit-Reset", fmt.Sprint(epoch+30), "Date", date),
			[]rlWin{{"", unk, unk, 35}}},
		{"x-ratelimit epoch milliseconds", rlHeader("X-RateLimit-Reset", fmt.Sprint(rlNow.UnixMilli()+1500)),
			[]rlWin{{"", unk, unk, 1.5}}},
		{"epoch in the past", rlHeader("X-RateLimit-Reset", fmt.Sprint(epoch-100)), []rlWin{{"", unk, unk, 0}}},
		// The seeds' examples as written, each beside a Date of the seed's own time.
		{"seed 001 headers", rlHeader("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "95", "X-RateLimit-Reset", "1642341600",
			"Date", "Sun, 16 Jan 2022 13:59:30 GMT"), []rlWin{{"", 100, 95, 30}}},
		{"seed 002 headers", rlHeader("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "95", "X-RateLimit-Reset", "1706612460",
			"Date", "Tue, 30 Jan 2024 11:00:00 GMT"), []rlWin{{"", 100, 95, 60}}},
		{"fractional delta", rlHeader("X-RateLimit-Reset", "0.25"), []rlWin{{"", unk, unk, 0.25}}},
		{"nestjs suffixes", rlHeader(
			"X-RateLimit-Limit-short", "3", "X-RateLimit-Remaining-short", "0", "X-RateLimit-Reset-short", "1",
			"X-RateLimit-Limit-medium", "20", "X-RateLimit-Remaining-medium", "17", "X-RateLimit-Reset-medium", "8",
			"X-RateLimit-Limit-long", "100", "X-RateLimit-Remaining-long", "97", "X-RateLimit-Reset-long", "55"),
			[]rlWin{{"long", 100, 97, 55}, {"medium", 20, 17, 8}, {"short", 3, 0, 1}}},
		{"nestjs 429 retry-after per name", rlHeader("Retry-After-Medium", "9"), []rlWin{{"medium", unk, 0, 9}}},
		{"suffix keeps its own dashes", rlHeader("X-RateLimit-Limit-Long-Term", "5"), []rlWin{{"long-term", 5, unk, -1}}},
		{"draft headers", rlHeader("RateLimit-Limit", "10", "RateLimit-Remaining", "0", "RateLimit-Reset", "7"),
			[]rlWin{{"", 10, 0, 7}}},
		{"ietf structured", rlHeader("RateLimit-Policy", `"default";q=100;w=60`, "RateLimit", `"default";r=0;t=17`),
			[]rlWin{{"default", 100, 0, 17}}},
		{"express legacy and draft headers are one window", rlHeader(
			"X-RateLimit-Limit", "40", "X-RateLimit-Remaining", "12",
			"RateLimit-Policy", `"default";q=40;w=1`, "RateLimit", `"default";r=11;t=1`),
			[]rlWin{{"", 40, 11, 1}}},
		{"unnamed and default with other limits stay apart", rlHeader(
			"X-RateLimit-Limit", "40", "RateLimit-Policy", `"default";q=100;w=60`),
			[]rlWin{{"", 40, unk, -1}, {"default", 100, unk, -1}}},
		{"ietf several items joined by name", rlHeader(
			"RateLimit-Policy", `"burst";q=3;w=1, "Day";q=1000;w=86400`,
			"RateLimit", `"day";r=900;t=3600, "burst";r=0;t=1`),
			[]rlWin{{"burst", 3, 0, 1}, {"day", 1000, 900, 3600}}},
		{"ietf items across header lines", rlHeader("RateLimit", `"a";r=1;t=2`, "RateLimit", `"b";r=3;t=4`),
			[]rlWin{{"a", unk, 1, 2}, {"b", unk, 3, 4}}},
		{"ietf token names and spaces", rlHeader("RateLimit", `quota; r=5; t=9`), []rlWin{{"quota", unk, 5, 9}}},
		{"ietf quoted name with comma and escape", rlHeader("RateLimit-Policy", `"a,\"b";q=7`), []rlWin{{`a,"b`, 7, unk, -1}}},
		{"draft-07 integer policy", rlHeader("RateLimit-Policy", `100;w=60`), []rlWin{{"", 100, unk, -1}}},
		{"older dictionary", rlHeader("RateLimit", "limit=100, remaining=0, reset=17"), []rlWin{{"", 100, 0, 17}}},
		{"families merge cautiously", rlHeader("X-Rate-Limit-Limit", "150", "X-RateLimit-Limit", "100",
			"X-Rate-Limit-Remaining", "5", "X-RateLimit-Remaining", "9", "X-RateLimit-Reset", "3", "RateLimit-Reset", "8"),
			[]rlWin{{"", 100, 5, 8}}},
		{"repeated header joined by a proxy", rlHeader("X-RateLimit-Limit", "100, 100"), []rlWin{{"", 100, unk, -1}}},
		{"negative and non-numeric stay unknown", rlHeader("X-RateLimit-Limit", "-5", "X-RateLimit-Remaining", "lots",
			"X-RateLimit-Reset", "-1"), nil},
		{"exponent is not a number", rlHeader("X-RateLimit-Limit", "1e30", "X-RateLimit-Reset", "1e30"), nil},
		{"absurd numbers are capped", rlHeader("X-RateLimit-Limit", "1000000000000000000000000000000",
			"X-RateLimit-Reset", "1000000000000000000000000000000"), []rlWin{{"", rlMaxCount, unk, MaxWait.Seconds()}}},
		{"huge delta capped", rlHeader("X-RateLimit-Reset", "999999999"), []rlWin{{"", unk, unk, MaxWait.Seconds()}}},
		{"unknown field ignored", rlHeader("X-RateLimit-Used", "4"), nil},
		{"empty structured", rlHeader("RateLimit", ",,;", "RateLimit-Policy", `"`), nil},
		{"params without figures", rlHeader("RateLimit", `"a";w=5;q=3`), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Windows(c.h, rlNow)
			if len(got) != len(c.want) {
				t.Fatalf("Windows = %+v, want %d windows %+v", got, len(c.want), c.want)
			}
			for i, w := range c.want {
				g := got[i]
				wantReset := time.Duration(w.reset * float64(time.Second))
				if w.reset < 0 {
					wantReset = -1
				}
				if g.Name != w.name || g.Limit != w.limit || g.Remaining != w.remaining || g.Reset != wantReset {
					t.Errorf("window %d = {%q %d %d %v}, want {%q %d %d %v}", i,
						g.Name, g.Limit, g.Remaining, g.Reset, w.name, w.limit, w.remaining, wantReset)
				}
				if !g.Observed.Equal(rlNow) {
					t.Errorf("window %d observed %v, want %v", i, g.Observed, rlNow)
				}
			}
		})
	}
}

func TestWaitHint(t *testing.T) {
	date := rlNow.Add(-10 * time.Second)
	cases := []struct {
		name string
		h    http.Header
		want float64 // seconds; -1 means no hint
	}{
		{"none", rlHeader("X-RateLimit-Remaining", "5", "X-RateLimit-Reset", "30"), -1},
		{"retry-after seconds", rlHeader("Retry-After", "17"), 17},
		{"retry-after http-date against Date", rlHeader("Retry-After", date.Add(40*time.Second).Format(http.TimeFormat),
			"Date", date.Format(http.TimeFormat)), 40},
		{"retry-after http-date against local clock", rlHeader("Retry-After", rlNow.Add(20*time.Second).Format(http.TimeFormat)), 20},
		{"retry-after date in the past", rlHeader("Retry-After", rlNow.Add(-time.Hour).Format(http.TimeFormat)), 0},
		{"longest named hint", rlHeader("Retry-After-Short", "1", "Retry-After-Long", "44", "Retry-After", "3"), 44},
		{"spent window reset", rlHeader("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "25"), 25},
		{"spent window longer than retry-after", rlHeader("Retry-After", "5", "RateLimit", `"d";r=0;t=60`), 60},
		{"retry-after longer than spent window", rlHeader("Retry-After", "90", "RateLimit", `"d";r=0;t=60`), 90},
		{"unspent window is no hint", rlHeader("RateLimit", `"d";r=1;t=60`), -1},
		{"garbage retry-after", rlHeader("Retry-After", "soon"), -1},
		{"negative retry-after", rlHeader("Retry-After", "-30"), -1},
		{"absurd retry-after capped", rlHeader("Retry-After", "99999999999999999999999"), MaxWait.Seconds()},
		{"retry-afterlife is not retry-after", rlHeader("Retry-Afterlife", "30"), -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := WaitHint(c.h, Windows(c.h, rlNow), rlNow)
			if c.want < 0 {
				if ok {
					t.Fatalf("WaitHint = %v, want none", got)
				}
				return
			}
			if want := time.Duration(c.want * float64(time.Second)); !ok || got != want {
				t.Fatalf("WaitHint = %v, %v; want %v", got, ok, want)
			}
		})
	}
}

func TestWindowsCapsHostileHeaderCounts(t *testing.T) {
	h := http.Header{}
	for i := range 5000 {
		h.Set(fmt.Sprintf("X-RateLimit-Limit-w%d", i), "1")
	}
	h.Set("RateLimit", strings.Repeat(`"x";r=0;t=1, `, 10000))
	got := Windows(h, rlNow)
	if len(got) != rlMaxWindows {
		t.Fatalf("got %d windows, want the cap %d", len(got), rlMaxWindows)
	}
}

// TestWindowsBeyondTheCap: headers describing more windows than are read give the same
// windows, every figure of each read, whatever order the headers come in (a Header is a
// map: each read meets another order): the names that sort first, or, for a governor,
// the windows it keeps first.
func TestWindowsBeyondTheCap(t *testing.T) {
	h := http.Header{}
	for i := range 3 * rlMaxWindows {
		name := fmt.Sprintf("w%03d", i)
		h.Set("X-RateLimit-Limit-"+name, "10")
		h.Set("X-RateLimit-Remaining-"+name, "4")
		h.Set("X-RateLimit-Reset-"+name, "5")
	}
	tests := []struct {
		name  string
		known keeper
		want  []string
	}{
		{name: "by name", want: rlNames(0, rlMaxWindows)},
		{name: "known first", known: kept{"w095": true, "w050": true}, want: append(rlNames(0, rlMaxWindows-2), "w050", "w095")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 {
				got := readWindows(h, rlNow, tt.known)
				names := make([]string, len(got))
				for i, w := range got {
					names[i] = w.Name
					if w.Limit != 10 || w.Remaining != 4 || w.Reset != 5*time.Second {
						t.Fatalf("window %s lost a figure: %+v", w.Name, w)
					}
				}
				if !slices.Equal(names, tt.want) {
					t.Fatalf("read %v, want %v", names, tt.want)
				}
			}
		})
	}
}

// kept is a keeper of the windows it holds true.
type kept map[string]bool

func (k kept) keeps(name string) bool { return k[name] }

// rlNames is w<from>..w<to-1>, as TestWindowsBeyondTheCap names its windows.
func rlNames(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("w%03d", i))
	}
	return out
}

func TestWindowsDeterministic(t *testing.T) {
	h := rlHeader("X-Rate-Limit-Remaining", "7", "X-RateLimit-Remaining", "3", "RateLimit-Remaining", "5",
		"X-RateLimit-Limit-B", "1", "X-RateLimit-Limit-a", "1", "X-RateLimit-Limit-C", "1")
	first := Windows(h, rlNow)
	for range 50 {
		if got := Windows(h, rlNow); !slices.Equal(got, first) {
			t.Fatalf("Windows changed between calls: %+v vs %+v", got, first)
		}
	}
	if first[0].Name != "" || first[0].Remaining != 3 || first[1].Name != "a" || first[3].Name != "c" {
		t.Fatalf("order or merge wrong: %+v", first)
	}
}

// checkRLWindows fails when Windows or WaitHint broke one of their promises.
func checkRLWindows(t *testing.T, h http.Header) {
	t.Helper()
	ws := Windows(h, rlNow)
	if len(ws) > rlMaxWindows {
		t.Fatalf("%d windows", len(ws))
	}
	for i, w := range ws {
		if w.Name != strings.ToLower(w.Name) || w.Name != model.Line(w.Name, 0) {
			t.Fatalf("name %q not lower-case and clean", w.Name)
		}
		if i > 0 && ws[i-1].Name >= w.Name {
			t.Fatalf("windows not sorted by unique name: %q then %q", ws[i-1].Name, w.Name)
		}
		if w.Limit < unk || w.Remaining < unk || w.Reset < -1 || w.Reset > MaxWait {
			t.Fatalf("figure out of range: %+v", w)
		}
	}
	if d, ok := WaitHint(h, ws, rlNow); ok && (d < 0 || d > MaxWait) {
		t.Fatalf("wait %v out of range", d)
	}
}

func FuzzParseWindows(f *testing.F) {
	seeds := [][3]string{
		{"X-RateLimit-Reset", "1706612460", ""},
		{"X-RateLimit-Reset-short", "1", "Thu, 16 Jan 2025 10:29:55 GMT"},
		{"X-Rate-Limit-Remaining", "0", ""},
		{"RateLimit", `"default";r=0;t=17`, ""},
		{"RateLimit-Policy", `"default";q=100;w=60, "x";q=1`, ""},
		{"RateLimit", "limit=100, remaining=0, reset=17", ""},
		{"Retry-After", "Thu, 16 Jan 2025 10:31:00 GMT", "garbage"},
		{"Retry-After-long", "60", ""},
		{"X-RateLimit-Limit", "1e30", ""},
		{"X-RateLimit-Reset", "-5", ""},
		{"RateLimit", `"\`, ""},
		{"X-RateLimit-Limit-\x1b[31m", "3", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, key, value, date string) {
		h := http.Header{key: {value}, "Date": {date}}
		checkRLWindows(t, h)
		h = http.Header{"RateLimit": {value}, "RateLimit-Policy": {key}, "Retry-After": {date}}
		checkRLWindows(t, h)
	})
}
