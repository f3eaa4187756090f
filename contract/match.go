package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
)

// Mismatches lists how got differs from the fixture's request: method, path, query
// (compared as sets of values), the headers the fixture names (a value of * only needs
// the header present), and the body (JSON compared as values, a form as fields, anything
// else byte for byte). Nothing is a match.
func (r *Request) Mismatches(got *http.Request, body []byte) []string {
	var out []string
	if got.Method != r.Method {
		out = append(out, fmt.Sprintf("method %s, want %s", got.Method, r.Method))
	}
	if got.URL.Path != r.Path() {
		out = append(out, fmt.Sprintf("path %s, want %s", got.URL.Path, r.Path()))
	}
	if q := got.URL.Query(); !sameValues(q, r.Query()) {
		out = append(out, fmt.Sprintf("query %s, want %s", q.Encode(), r.Query().Encode()))
	}
	for k, want := range r.Header {
		v := got.Header.Get(k)
		switch {
		case v == "":
			out = append(out, "no header "+k)
		case want[0] != "*" && !headerValueMatches(k, v, want[0]):
			out = append(out, fmt.Sprintf("header %s: %q, want %q", k, v, want[0]))
		}
	}
	if msg := bodyMismatch(got.Header.Get("Content-Type"), body, r.Body); msg != "" {
		out = append(out, msg)
	}
	return out
}

// headerValueMatches compares a header's value; a Content-Type by its media type only.
func headerValueMatches(key, got, want string) bool {
	if strings.EqualFold(key, "Content-Type") {
		g, _, _ := mime.ParseMediaType(got)
		w, _, _ := mime.ParseMediaType(want)
		return g == w
	}
	return got == want
}

func sameValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb := b[k]
		if len(va) != len(vb) {
			return false
		}
		sa, sb := append([]string(nil), va...), append([]string(nil), vb...)
		sort.Strings(sa)
		sort.Strings(sb)
		if !reflect.DeepEqual(sa, sb) {
			return false
		}
	}
	return true
}

// bodyMismatch compares a request body with the fixture's; "" when they agree.
func bodyMismatch(contentType string, got, want []byte) string {
	got, want = bytes.TrimSpace(got), bytes.TrimSpace(want)
	switch {
	case len(want) == 0 && len(got) == 0:
		return ""
	case len(want) == 0:
		return fmt.Sprintf("body %q, want none", got)
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" {
		g, err1 := url.ParseQuery(string(got))
		w, err2 := url.ParseQuery(string(want))
		if err1 != nil || err2 != nil || !sameValues(g, w) {
			return fmt.Sprintf("form %q, want %q", got, want)
		}
		return ""
	}
	var g, w any
	if json.Unmarshal(want, &w) == nil {
		if json.Unmarshal(got, &g) != nil || !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("body %s, want %s", got, want)
		}
		return ""
	}
	if !bytes.Equal(got, want) {
		return fmt.Sprintf("body %q, want %q", got, want)
	}
	return ""
}

// Shape is a JSON document's shape: the kind of value (object, array, string, number,
// bool, null) at each path, arrays' elements merged under "[]" (items[].price).
type Shape map[string]string

// ShapeOf reads the shape of a JSON body; nil when body is not JSON.
func ShapeOf(body []byte) Shape {
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return nil
	}
	s := Shape{}
	s.add("", v)
	return s
}

func (s Shape) add(path string, v any) {
	kind := "null"
	switch x := v.(type) {
	case map[string]any:
		kind = "object"
		for k, e := range x {
			s.add(join(path, k), e)
		}
	case []any:
		kind = "array"
		for _, e := range x {
			s.add(path+"[]", e)
		}
	case string:
		kind = "string"
	case json.Number:
		kind = "number"
	case bool:
		kind = "bool"
	}
	// A path seen with two kinds (an array of mixed items) keeps the first non-null one.
	if old, ok := s[path]; !ok || old == "null" {
		s[path] = kind
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Missing lists what of want the shape s lacks: a path absent, or of another kind. A
// null in want fits any kind (the fixture's value was absent), and the paths under an
// empty array in either shape cannot be compared.
func (s Shape) Missing(want Shape) []string {
	var out []string
	for path, kind := range want {
		got, ok := s[path]
		switch {
		case !ok && underEmptyArray(s, path):
		case !ok:
			out = append(out, fmt.Sprintf("%s: absent, want %s", displayPath(path), kind))
		case kind != "null" && got != "null" && got != kind:
			out = append(out, fmt.Sprintf("%s: %s, want %s", displayPath(path), got, kind))
		}
	}
	sort.Strings(out)
	return out
}

// underEmptyArray reports whether path lies under an array that s holds empty (or null).
func underEmptyArray(s Shape, path string) bool {
	for i := strings.Index(path, "[]"); i >= 0; {
		prefix := path[:i]
		if k, ok := s[prefix]; ok && (k == "array" || k == "null") {
			if _, has := s[prefix+"[]"]; !has && !hasPrefixKey(s, prefix+"[]") {
				return true
			}
		}
		next := strings.Index(path[i+2:], "[]")
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return false
}

func hasPrefixKey(s Shape, prefix string) bool {
	for k := range s {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func displayPath(p string) string {
	if p == "" {
		return "(the body)"
	}
	return p
}
