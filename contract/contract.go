// Package contract reads the provider contract fixtures of testdata/contracts: one file
// per exchange with a provider (a request emitop makes and the answer it must handle, or
// an answer alone), each naming the public source it was taken from, or saying that it
// is assumed. The dialects' tests drive emitop's own requests against the fixtures, and
// the sandbox's tests check that the sandbox answers in the same shapes.
//
// A fixture file reads:
//
//	# source: sbetav/factus-js factus-docs/v1/facturas/ver.md, "Ejemplo de respuesta" (read 2026-12-02)
//	# call: read
//	# args: id=SETP990000493
//	# expect: doc=SETP990000493 status=accepted
//	# sandbox: factus-bog accepted
//	> GET /v1/bills/show/SETP990000493
//	>
//	< HTTP/1.1 200 OK
//	< Content-Type: application/json
//	<
//	{"status":"Created", ...}
//
// Lines starting "# " before the exchange are metadata, "key: value"; a key may repeat.
// Lines starting ">" are the request (its line, headers, a lone ">", body lines); lines
// starting "<" the response's status line and headers up to a lone "<"; the rest of the
// file is the response body, as the provider sends it.
package contract

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Fixture is one exchange with a provider.
type Fixture struct {
	Provider string // the folder it lives in
	Name     string // the file name without .http
	Path     string
	Meta     map[string][]string // metadata values by key, in file order

	Request  *Request // nil when the fixture is an answer alone
	Response Response
}

// Request is the request emitop makes, as the fixture writes it.
type Request struct {
	Method string
	Target string // path and query, relative to the account's base URL
	Header http.Header
	Body   []byte
}

// Path is the target without its query.
func (r *Request) Path() string {
	p, _, _ := strings.Cut(r.Target, "?")
	return p
}

// Query is the target's query.
func (r *Request) Query() url.Values {
	_, q, _ := strings.Cut(r.Target, "?")
	v, _ := url.ParseQuery(q)
	return v
}

// Response is the provider's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Get is the first value of the metadata key, "" when absent.
func (f Fixture) Get(key string) string {
	if v := f.Meta[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Pairs reads every value of the metadata key as space-separated key=value pairs, merged
// in order (a later pair wins). A value with spaces is written in double quotes.
func (f Fixture) Pairs(key string) map[string]string {
	out := map[string]string{}
	for _, line := range f.Meta[key] {
		for k, v := range ParsePairs(line) {
			out[k] = v
		}
	}
	return out
}

// ParsePairs reads `a=1 b="two words"` into a map.
func ParsePairs(line string) map[string]string {
	out := map[string]string{}
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		k, rest, _ := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				end = len(rest) - 1
			}
			v, line = rest[1:1+end], rest[min(len(rest), end+2):]
		} else {
			v, line, _ = strings.Cut(rest, " ")
		}
		out[k] = v
	}
	return out
}

// Load reads every fixture under dir (testdata/contracts), sorted by provider and name.
func Load(dir string) ([]Fixture, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.http"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	out := make([]Fixture, 0, len(files))
	for _, file := range files {
		f, err := LoadFile(file)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// LoadFile reads one fixture file; its provider is the name of its folder.
func LoadFile(path string) (Fixture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Fixture{}, err
	}
	f, err := Parse(data)
	if err != nil {
		return Fixture{}, fmt.Errorf("%s: %w", path, err)
	}
	f.Path = path
	f.Provider = filepath.Base(filepath.Dir(path))
	f.Name = strings.TrimSuffix(filepath.Base(path), ".http")
	return f, nil
}

// Parse reads one fixture. It requires a source and a response.
func Parse(data []byte) (Fixture, error) {
	f := Fixture{Meta: map[string][]string{}}
	lines := strings.Split(string(data), "\n")
	i := 0
	for ; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
		k, v, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(lines[i], "#")), ":")
		if !ok {
			return f, fmt.Errorf("line %d: metadata without a key: %q", i+1, lines[i])
		}
		f.Meta[strings.TrimSpace(k)] = append(f.Meta[strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	if f.Get("source") == "" {
		return f, fmt.Errorf("no source: say where the exchange was read, or that it is assumed")
	}
	var req []string
	for ; i < len(lines) && strings.HasPrefix(lines[i], ">"); i++ {
		req = append(req, strings.TrimPrefix(strings.TrimPrefix(lines[i], ">"), " "))
	}
	if len(req) > 0 {
		r, err := parseRequest(req)
		if err != nil {
			return f, err
		}
		f.Request = r
	}
	var head []string
	for ; i < len(lines) && strings.HasPrefix(lines[i], "<"); i++ {
		l := strings.TrimPrefix(strings.TrimPrefix(lines[i], "<"), " ")
		if l == "" {
			i++
			break
		}
		head = append(head, l)
	}
	if len(head) == 0 {
		return f, fmt.Errorf("no response: want lines starting with <")
	}
	raw := strings.Join(head, "\r\n") + "\r\n\r\n"
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		return f, fmt.Errorf("response: %w", err)
	}
	resp.Body.Close()
	f.Response = Response{Status: resp.StatusCode, Header: resp.Header,
		Body: bytes.TrimRight([]byte(strings.Join(lines[min(i, len(lines)):], "\n")), "\n")}
	return f, nil
}

// parseRequest reads the request lines: its line, headers, a blank line, the body.
func parseRequest(lines []string) (*Request, error) {
	method, target, ok := strings.Cut(strings.TrimSpace(lines[0]), " ")
	if !ok || method == "" || !strings.HasPrefix(target, "/") {
		return nil, fmt.Errorf("request line %q: want METHOD /path", lines[0])
	}
	r := &Request{Method: method, Target: strings.TrimSpace(target), Header: http.Header{}}
	i := 1
	for ; i < len(lines) && lines[i] != ""; i++ {
		k, v, ok := strings.Cut(lines[i], ":")
		if !ok {
			return nil, fmt.Errorf("request header %q: want Name: value", lines[i])
		}
		r.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if i < len(lines) {
		r.Body = []byte(strings.Join(lines[i+1:], "\n"))
		r.Body = bytes.TrimSpace(r.Body)
	}
	if len(r.Body) == 0 {
		r.Body = nil
	}
	return r, nil
}

// WriteResponse answers w with the fixture's response.
func (f Fixture) WriteResponse(w http.ResponseWriter) {
	for k, vs := range f.Response.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Response.Body)))
	w.WriteHeader(f.Response.Status)
	w.Write(f.Response.Body)
}

// ReadBody reads a request's body, at most 1 MiB.
func ReadBody(r *http.Request) []byte {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	return b
}
