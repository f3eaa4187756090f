package poller

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"emitop/model"
)

// Helpers the JSON dialects share: lenient decoding, ordered objects, texts, fields.

// phraseClass places a message that carries no code by a phrase it contains.
type phraseClass struct {
	status  int    // the HTTP status it applies to; 0 for any 4xx
	phrase  string // lower case
	class   model.Class
	verdict model.Verdict // "" leaves the verdict to the class and the method
}

// classByPhrase is the class and verdict of the first rule that applies to status and
// whose phrase msg contains. Only 4xx responses are placed by their words: a 5xx is the
// provider failing, whatever its text says.
func classByPhrase(rules []phraseClass, status int, msg string) (model.Class, model.Verdict) {
	if status < 400 || status > 499 {
		return "", ""
	}
	low := strings.ToLower(msg)
	for _, r := range rules {
		if (r.status == 0 || r.status == status) && strings.Contains(low, r.phrase) {
			return r.class, r.verdict
		}
	}
	return "", ""
}

// jsonPair is one key of a JSON object, in the order the body gave it.
type jsonPair struct {
	key   string
	value json.RawMessage
}

// jsonPairs reads a JSON object keeping its keys' order; nil when raw is not an object.
func jsonPairs(raw json.RawMessage) []jsonPair {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	pairs := []jsonPair{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return pairs
		}
		key, ok := t.(string)
		if !ok {
			return pairs
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return pairs
		}
		pairs = append(pairs, jsonPair{key, v})
	}
	return pairs
}

// jsonTexts reads a text or a list of texts; other values give none.
func jsonTexts(raw json.RawMessage) []string {
	if s := jsonText(raw); s != "" {
		return []string{s}
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	var out []string
	for _, item := range list {
		if s := jsonText(item); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// jsonText is raw as a JSON string, or "".
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// lenientJSON decodes raw into v as far as the types allow: a value of an unexpected
// type is skipped, not fatal. It reports whether raw was JSON at all.
func lenientJSON(raw []byte, v any) bool {
	if len(raw) == 0 {
		return false
	}
	err := json.Unmarshal(raw, v)
	var typeErr *json.UnmarshalTypeError
	return err == nil || errors.As(err, &typeErr)
}

// addField adds a non-empty field once.
func addField(fields []string, field string) []string {
	if field == "" {
		return fields
	}
	for _, f := range fields {
		if f == field {
			return fields
		}
	}
	return append(fields, field)
}

// joinLines adds lines under a message, one per line.
func joinLines(msg string, lines []string) string {
	if len(lines) == 0 {
		return msg
	}
	all := strings.Join(lines, "\n")
	if msg == "" {
		return all
	}
	return msg + "\n" + all
}

// compactText is raw JSON on one line, or raw itself when it is not JSON.
func compactText(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}
