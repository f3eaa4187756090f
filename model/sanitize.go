package model

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// Sanitize makes untrusted provider text safe for a terminal or a log line: it repairs
// invalid UTF-8, neutralises C1 controls (so a raw CSI cannot swallow the text after it),
// strips escape sequences, shows every other control as its Unicode picture (so
// "REJECTED\rACCEPTED" reads as "REJECTED␍ACCEPTED"), drops bidi overrides, and keeps
// newlines only when multiline is true. Tabs become a space on a single line.
func Sanitize(s string, multiline bool) string {
	if isPlain(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r >= 0x80 && r <= 0x9F {
			return '\uFFFD'
		}
		return r
	}, s)
	s = ansi.Strip(s)
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n':
			if multiline {
				b.WriteRune(r)
			} else {
				b.WriteRune(' ')
			}
		case r == '\t':
			if multiline {
				b.WriteRune(r)
			} else {
				b.WriteRune(' ')
			}
		case r < 0x20:
			b.WriteRune(0x2400 + r) // control pictures: ␀ … ␟
		case r == 0x7F:
			b.WriteRune('\u2421') // ␡
		case r >= 0x80 && r <= 0x9F:
			b.WriteRune('\uFFFD')
		case isBidiControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Line sanitizes s for one line of a terminal and truncates it to width cells (no
// truncation when width <= 0), ending a cut line with "…".
func Line(s string, width int) string {
	s = Sanitize(s, false)
	if width > 0 && ansi.StringWidth(s) > width {
		s = ansi.Truncate(s, width, "…")
	}
	return s
}

// isPlain reports whether s is printable ASCII, the common case, which needs no work.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7F {
			return false
		}
	}
	return true
}

// isBidiControl reports the characters that reorder text on screen and so can make a
// provider message read differently from what it says.
func isBidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
