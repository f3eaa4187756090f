package poller

import (
	"bytes"
	"encoding/json"
	"strings"

	"emitop/model"
)

// maxEntries caps how many entries of a provider's error list a decoder reads: enough for
// any real document, and a hostile body cannot make a finding grow without bound.
const maxEntries = 50

// jsonObject decodes body into v when body is one JSON object. It reports false for
// anything else (HTML, empty, truncated, a bare array or scalar), so the caller can leave
// the class to the HTTP status. Decoders give v only json.RawMessage fields, so a value of
// an unexpected type never fails the whole body.
func jsonObject(body []byte, v any) bool {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return false
	}
	return json.Unmarshal(body, v) == nil
}

// rawText is the text of a JSON scalar: a string unquoted, a number or a boolean as
// written; "" for null, an object, an array or nothing.
func rawText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	case '{', '[', 'n':
		return ""
	}
	return string(raw)
}

// jsonText is a scalar as text, trimmed: a string unquoted, a number or a boolean as
// written; a list of strings joined by newlines; "" for anything else. A string without
// escapes is read in place, without a copy through encoding/json.
func jsonText(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	switch jsonKind(raw) {
	case 0, '{':
		return ""
	case '"':
		if len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
			return strings.TrimSpace(string(raw[1 : len(raw)-1]))
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return strings.TrimSpace(s)
	case '[':
		var items []json.RawMessage
		lenientJSON(raw, &items)
		lines := make([]string, 0, len(items))
		for _, it := range items {
			if jsonKind(it) == '"' {
				lines = append(lines, jsonText(it))
			}
		}
		return strings.Join(lines, "\n")
	}
	return string(raw)
}

// jsonKind is the first byte of a JSON value ('{', '[', '"', a digit...), 0 for none or
// null.
func jsonKind(raw []byte) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' {
		return 0
	}
	return raw[0]
}

// rawTexts is the text of a scalar, or of each scalar in an array (at most maxEntries),
// skipping empty ones.
func rawTexts(raw json.RawMessage) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		if s := rawText(raw); s != "" {
			return []string{s}
		}
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	var out []string
	for _, item := range items {
		if len(out) == maxEntries {
			break
		}
		if s := rawText(item); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// rawList is the elements of a JSON array (at most maxEntries); nil for anything else.
func rawList(raw json.RawMessage) []json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	if len(items) > maxEntries {
		items = items[:maxEntries]
	}
	return items
}

// dotPath writes a field path the dotted way emitop shows every field (items.0.price):
// a JSON pointer ("/receptor/nit"), a bracketed path ("lines[0].price", `a["b"]`), a
// slashed one ("items/0/price") and a dotted one all come out the same. Underscores are
// part of a key, never a separator.
func dotPath(p string) string {
	p = strings.TrimSpace(p)
	if !strings.ContainsAny(p, "[]\"'/ \t\n") && !strings.HasPrefix(p, ".") && !strings.HasSuffix(p, ".") && !strings.Contains(p, "..") {
		return p // dotted already, the common case
	}
	var parts []string
	if rest, ok := strings.CutPrefix(p, "/"); ok {
		for _, seg := range strings.Split(rest, "/") {
			parts = append(parts, strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~"))
		}
	} else {
		parts = strings.Split(pathMarks.Replace(p), ".")
	}
	kept := parts[:0]
	for _, part := range parts {
		if part = strings.TrimSpace(part); part != "" {
			kept = append(kept, part)
		}
	}
	return strings.Join(kept, ".")
}

// pathMarks turns a bracketed or slashed path's marks into dots.
var pathMarks = strings.NewReplacer("[", ".", "]", "", `"`, "", "'", "", "/", ".")

// rawPresent reports whether a raw field is present and not null.
func rawPresent(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// joinPath joins the non-empty parts of a dotted path.
func joinPath(parts ...string) string {
	return dotPath(strings.Join(parts, "."))
}

// joinLines joins the non-empty texts, one per line.
func joinLines(texts ...string) string {
	kept := make([]string, 0, len(texts))
	for _, t := range texts {
		if t = strings.TrimSpace(t); t != "" {
			kept = append(kept, t)
		}
	}
	return strings.Join(kept, "\n")
}

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
	if i := skipSpace(raw, 0); i >= len(raw) || raw[i] != '{' {
		return nil
	}
	pairs := []jsonPair{}
	jsonMembers(raw, func(key string, value json.RawMessage) {
		pairs = append(pairs, jsonPair{key, value})
	})
	return pairs
}

// jsonMembers calls fn with the key and value of each member of the JSON object raw, in
// order, read in place: raw comes from a document encoding/json has already read (a
// json.RawMessage); on anything else it stops early, never failing.
func jsonMembers(raw []byte, fn func(key string, value json.RawMessage)) {
	jsonQuotedMembers(raw, func(quoted []byte, value json.RawMessage) { fn(jsonKey(quoted), value) })
}

// jsonQuotedMembers is jsonMembers with each key as written, quotes and escapes
// included: a caller that only compares keys need not copy each one.
func jsonQuotedMembers(raw []byte, fn func(quoted []byte, value json.RawMessage)) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return
	}
	for i++; ; i++ {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return
		}
		kEnd := valueEnd(raw, i)
		key := raw[i:kEnd]
		i = skipSpace(raw, kEnd)
		if i >= len(raw) || raw[i] != ':' {
			return
		}
		i = skipSpace(raw, i+1)
		vEnd := valueEnd(raw, i)
		if vEnd <= i {
			return
		}
		fn(key, raw[i:vEnd])
		if i = skipSpace(raw, vEnd); i >= len(raw) || raw[i] != ',' {
			return
		}
	}
}

// jsonKey is a member's quoted key unquoted: read in place when it is plain printable
// ASCII (as encoding/json would read it), else through encoding/json.
func jsonKey(quoted []byte) string {
	if n := len(quoted); n >= 2 && quoted[n-1] == '"' {
		plain := true
		for _, c := range quoted[1 : n-1] {
			if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
				plain = false
				break
			}
		}
		if plain {
			return string(quoted[1 : n-1])
		}
	}
	return rawText(quoted)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd is the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	depth, inString := 0, false
	for j := i; j < len(b); j++ {
		c := b[j]
		switch {
		case inString:
			if c == '\\' {
				j++
			} else if c == '"' {
				inString = false
				if depth == 0 {
					return j + 1
				}
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 {
				return j // the end of the object holding a bare value
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return j
		}
	}
	return len(b)
}

// lenientJSON decodes raw into v as far as the types allow: a value of an unexpected
// type is skipped, not fatal. It reports whether raw was JSON at all.
func lenientJSON(raw []byte, v any) bool {
	if len(raw) == 0 {
		return false
	}
	err := json.Unmarshal(raw, v)
	_, typeErr := err.(*json.UnmarshalTypeError) // as Unmarshal returns it: asserting costs no allocation
	return err == nil || typeErr
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

// compactText is raw JSON on one line, or raw itself when it is not JSON.
func compactText(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}
