package ui

import "strings"

// numberSeparators split a document number's head into the parts shortening may drop
// from the left: DTE-01-M001P001-…, F2026/…
const numberSeparators = "-/_. "

// shortNumber shortens a document number to w cells keeping what tells documents apart:
// the end of its sequence (the digits it ends with) and, before it, as much of what
// precedes as fits, cut at a separator. Numbers share their beginning and differ at the
// end: an sv-dte control number DTE-01-M001P001-000000000000002 keeps its establishment
// code and the end of its sequence ("…M001P001-…002"); a Factus number SETP990000002
// keeps its prefix ("SETP…000002"). Numbers that end in no digit are cut in the middle.
func shortNumber(s string, w int) string {
	if width(s) <= w || w < 4 || width(s) != len(s) {
		return elideMiddle(s, w)
	}
	cut := len(s)
	for cut > 0 && s[cut-1] >= '0' && s[cut-1] <= '9' {
		cut--
	}
	head, seq := s[:cut], s[cut:]
	if seq == "" {
		return elideMiddle(s, w)
	}
	sig := len(strings.TrimLeft(seq, "0"))
	heads := []string{head}
	for i := 0; i < len(head)-1; i++ {
		if strings.IndexByte(numberSeparators, head[i]) >= 0 {
			heads = append(heads, "…"+head[i+1:])
		}
	}
	// First the heads that leave room for the significant digits (at least 4 of a long
	// sequence), then any that leaves room for one.
	for _, need := range []int{max(1, min(sig, 4)), 1} {
		for _, h := range heads {
			room := w - width(h) - 1
			switch {
			case room+1 >= len(seq):
				return h + seq
			case room >= need:
				return h + "…" + seq[len(seq)-room:]
			}
		}
	}
	return elideMiddle(s, w)
}
