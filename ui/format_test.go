package ui

import "testing"

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
