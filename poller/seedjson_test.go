package poller

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// examplesInSeed returns every JSON example of a seed page in testdata/seeds, compacted:
// each block that opens with a line holding only "{" and closes where its braces balance.
func examplesInSeed(t *testing.T, name string) []string {
	t.Helper()
	text, err := os.ReadFile("testdata/seeds/" + name)
	if err != nil {
		t.Fatalf("read seed: %v", err)
	}
	var out []string
	lines := strings.Split(string(text), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "{" {
			continue
		}
		var block strings.Builder
		depth := 0
		for ; i < len(lines); i++ {
			block.WriteString(lines[i] + "\n")
			depth += strings.Count(lines[i], "{") - strings.Count(lines[i], "}")
			if depth == 0 {
				break
			}
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(block.String())); err != nil {
			t.Fatalf("seed %s: example is not JSON: %v\n%s", name, err, block.String())
		}
		out = append(out, buf.String())
	}
	if len(out) == 0 {
		t.Fatalf("seed %s: no JSON examples found", name)
	}
	return out
}

// compactJSON is body compacted, or body itself when it is not JSON.
func compactJSON(body string) string {
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(body)) != nil {
		return body
	}
	return buf.String()
}
