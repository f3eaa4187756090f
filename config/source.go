package config

import (
	"regexp"
	"strings"
)

// source finds the lines of tables and keys in a TOML file, for messages: the TOML
// decoder gives positions only for syntax errors.
type source struct {
	lines   []string
	headers map[string][]int // the lines of each [[name]] header, in order
}

func newSource(data []byte) source {
	s := source{lines: strings.Split(string(data), "\n"), headers: map[string][]int{}}
	// Found once: a configuration of thousands of accounts asks for each one's lines.
	for i, l := range s.lines {
		if m := arrayHeader.FindStringSubmatch(l); m != nil {
			s.headers[m[1]] = append(s.headers[m[1]], i+1)
		}
	}
	return s
}

var (
	arrayHeader = regexp.MustCompile(`^\s*\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]`)
	tableHeader = regexp.MustCompile(`^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]`)
)

var keyLine = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+)\s*=`)

// keyOn is the key a line (from 1) assigns, "" when it assigns none.
func (s source) keyOn(line int) string {
	if line < 1 || line > len(s.lines) {
		return ""
	}
	if m := keyLine.FindStringSubmatch(s.lines[line-1]); m != nil {
		return m[1]
	}
	return ""
}

// header is the line (from 1) of the n-th [[name]] header, 0 when there is none.
func (s source) header(name string, n int) int {
	if hs := s.headers[name]; n >= 0 && n < len(hs) {
		return hs[n]
	}
	return 0
}

// elementKeyLine is the line of key inside the n-th [[name]] element (or in one of its
// sub-tables); the element's header line when the key is not written in it.
func (s source) elementKeyLine(name string, n int, key string) int {
	start := s.header(name, n)
	if start == 0 {
		return 0
	}
	if l := s.keyIn(start, name, key); l > 0 {
		return l
	}
	return start
}

// tableKeyLine is the line of key in [table], else the table's header line.
func (s source) tableKeyLine(table, key string) int {
	for i, l := range s.lines {
		if m := tableHeader.FindStringSubmatch(l); m != nil && !arrayHeader.MatchString(l) && m[1] == table {
			if k := s.keyIn(i+1, table, key); k > 0 {
				return k
			}
			return i + 1
		}
	}
	return 0
}

// tableLine is the line of the first [name] or [[name]] header, 0 when there is none.
func (s source) tableLine(name string) int {
	for i, l := range s.lines {
		if m := tableHeader.FindStringSubmatch(l); m != nil && m[1] == name {
			return i + 1
		}
		if m := arrayHeader.FindStringSubmatch(l); m != nil && m[1] == name {
			return i + 1
		}
	}
	return 0
}

// topKeyLine is the line of a key before the first table header.
func (s source) topKeyLine(key string) int {
	for i, l := range s.lines {
		if tableHeader.MatchString(l) {
			break
		}
		if isKey(l, key) {
			return i + 1
		}
	}
	return 0
}

// keyIn looks for key from the header at line start until the next table that does not
// belong to name ([name.sub] does).
func (s source) keyIn(start int, name, key string) int {
	for i := start; i < len(s.lines); i++ {
		l := s.lines[i]
		if arrayHeader.MatchString(l) {
			return 0 // the next element: what this one lacks is not found in another
		}
		if m := tableHeader.FindStringSubmatch(l); m != nil {
			if !strings.HasPrefix(m[1], name+".") {
				return 0
			}
			if m[1] == name+"."+key {
				return i + 1
			}
			continue
		}
		if isKey(l, key) {
			return i + 1
		}
	}
	return 0
}

// isKey reports whether line assigns key (bare, quoted, or the first part of a dotted key).
func isKey(line, key string) bool {
	l := strings.TrimSpace(line)
	for _, form := range []string{key, `"` + key + `"`, `'` + key + `'`} {
		if rest, ok := strings.CutPrefix(l, form); ok {
			rest = strings.TrimSpace(rest)
			if strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, ".") {
				return true
			}
		}
	}
	return false
}
