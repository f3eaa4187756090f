package poller

import (
	"encoding/json"
	"testing"
)

// checkPairs compares jsonPairs with encoding/json on a valid object.
func checkPairs(t *testing.T, b []byte) {
	t.Helper()
	var want map[string]json.RawMessage
	if !json.Valid(b) || json.Unmarshal(b, &want) != nil || want == nil {
		return
	}
	got := map[string]bool{}
	for _, p := range jsonPairs(b) {
		if !json.Valid(p.value) {
			t.Fatalf("member %q: %q is not a value", p.key, p.value)
		}
		if w, ok := want[p.key]; !ok || !json.Valid(w) {
			t.Fatalf("member %q: encoding/json has no such key", p.key)
		}
		got[p.key] = true
	}
	if len(got) != len(want) {
		t.Fatalf("jsonPairs saw %v, encoding/json %d keys", got, len(want))
	}
}

func TestJSONPairs(t *testing.T) {
	for _, b := range []string{
		`{}`, ` { "a" : 1 , "b":"x}\"," , "c":{"d":[1,{"e":"]"}]}, "f":[], "g":null,"h":-1.5e3,"i":true}`,
		`{"\u0061b":{"x":"}"}}`, `{"a":1}`,
	} {
		checkPairs(t, []byte(b))
	}
	if got := jsonPairs([]byte(`{"a":1,"b":`)); len(got) != 1 || got[0].key != "a" {
		t.Fatalf("truncated object: %+v, want a alone", got)
	}
	if jsonPairs([]byte(`[1]`)) != nil || jsonPairs(nil) != nil {
		t.Fatal("not an object, yet pairs")
	}
}
