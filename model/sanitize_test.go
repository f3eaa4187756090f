package model

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	cases := []struct {
		name, in, want string
		multiline      bool
	}{
		{"plain", "Factura rechazada", "Factura rechazada", false},
		{"carriage return shows", "REJECTED\rACCEPTED", "REJECTED␍ACCEPTED", false},
		{"sgr hidden text", "ok \x1b[8msecret\x1b[0m", "ok secret", false},
		{"hyperlink", "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", "click", false},
		{"raw csi byte", "a\x9b31mb", "a\uFFFD31mb", false},
		{"encoded c1", "a\u009b31mb", "a\uFFFD31mb", false},
		{"bidi override", "abc\u202Edef\u2066g", "abcdefg", false},
		{"del", "a\x7fb", "a␡b", false},
		{"newline single", "a\nb\tc", "a b c", false},
		{"newline multi", "a\nb\tc", "a\nb\tc", true},
		{"bell and nul", "a\x07b\x00", "a␇b␀", false},
		{"accents kept", "Código de generación inválido", "Código de generación inválido", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Sanitize(c.in, c.multiline); got != c.want {
				t.Fatalf("Sanitize(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestLineTruncatesByWidth(t *testing.T) {
	got := Line("日本語のメッセージ", 7)
	if w := len([]rune(got)); w > 4 || !strings.HasSuffix(got, "…") {
		t.Fatalf("Line = %q", got)
	}
}

// checkSafe fails when s holds anything a terminal would act on.
func checkSafe(t *testing.T, in, s string, multiline bool) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("invalid UTF-8 from %q: %q", in, s)
	}
	for _, r := range s {
		bad := (r < 0x20 && r != '\t' && r != '\n') || r == 0x7F ||
			(r >= 0x80 && r <= 0x9F) || isBidiControl(r) || (!multiline && (r == '\n' || r == '\t'))
		if bad {
			t.Fatalf("Sanitize(%q, %v) kept %U: %q", in, multiline, r, s)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		"REJECTED\rACCEPTED", "\x1b[8mhidden", "\x1b]8;;http://x\x07y\x1b]8;;\x07", "\x9b31m",
		"\u202Eabc", "\xff\xfe", "\x1b", "\x1bP+q\x1b\\", "tab\there", "ok",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkSafe(t, in, Sanitize(in, false), false)
		checkSafe(t, in, Sanitize(in, true), true)
		checkSafe(t, in, Line(in, 20), false)
	})
}
