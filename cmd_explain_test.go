package main

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"emitop/model"
	"emitop/poller"
)

// explain runs `emitop explain args...` with in as standard input.
func explain(t *testing.T, in io.Reader, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(append([]string{"explain"}, args...), in, &o, &e)
	return code, o.String(), e.String()
}

const alegra400 = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n" +
	"X-Rate-Limit-Limit: 150\r\nX-Rate-Limit-Remaining: 0\r\nX-Rate-Limit-Reset: 17\r\n\r\n" +
	`{"error":{"message":"Error AEP6016: falta el correo","code":3061,"details":{"client.email":"required"}}}`

func TestExplainText(t *testing.T) {
	code, out, errOut := explain(t, strings.NewReader(alegra400), "--provider", "alegra", "--method", "post")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(out, "\n")
	if lines[0] != "VALIDATION · FIX" || lines[1] != "alegra · HTTP 400 · POST · code AEP6016" {
		t.Fatalf("head:\n%s", out)
	}
	for _, want := range []string{
		"meaning:  A field DIAN requires is missing: the email",
		"action:   Add it to the contact",
		"fields:   client.email",
		"wait:     17s",
		"windows:  (unnamed)    0/150 left  reset in 17s",
		"message:  Error AEP6016: falta el correo\n          client.email: required",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestExplainJSON(t *testing.T) {
	code, out, _ := explain(t, strings.NewReader(alegra400), "-o", "json", "--provider", "alegra")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value: %s", out)
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"action", "class", "code", "fields", "meaning", "message", "method", "provider", "status", "verdict", "wait_seconds", "windows"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	if got["class"] != "validation" || got["verdict"] != "fix" || got["code"] != "AEP6016" || got["method"] != "" ||
		got["status"] != 400.0 || got["wait_seconds"] != 17.0 || got["provider"] != "alegra" {
		t.Fatalf("values: %v", got)
	}
	w := got["windows"].([]any)[0].(map[string]any)
	if w["name"] != model.UnnamedWindow || w["remaining"] != 0.0 || w["limit"] != 150.0 || w["reset_seconds"] != 17.0 {
		t.Fatalf("window: %v", w)
	}
}

func TestExplainUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		in   string
		args []string
		want string
	}{
		{"no provider", alegra400, nil, "--provider is required"},
		{"unknown provider", alegra400, []string{"--provider", "acme"}, "unknown provider"},
		{"bad output", alegra400, []string{"--provider", "alegra", "-o", "yaml"}, "-o must be text or json"},
		{"bad flag", alegra400, []string{"--provider", "alegra", "--nope"}, "flag provided but not defined"},
		{"two files", alegra400, []string{"--provider", "alegra", "a", "b"}, "one response at a time"},
		{"missing file", "", []string{"--provider", "alegra", "testdata/explain/none.http"}, "no such file"},
		{"not http", "<html>oops</html>", []string{"--provider", "alegra"}, "no HTTP status line"},
		{"empty", "", []string{"--provider", "alegra"}, "the input is empty"},
		{"bad status", "HTTP/1.1 abc OK\r\n\r\n", []string{"--provider", "alegra"}, "no HTTP status line"},
		{"status out of range", "HTTP/1.1 999 Odd\r\n\r\n", []string{"--provider", "alegra"}, "no HTTP status line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := explain(t, strings.NewReader(c.in), c.args...)
			if code != 2 || out != "" || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and one line with %q", code, out, errOut, c.want)
			}
		})
	}
}

func TestExplainHelp(t *testing.T) {
	code, out, _ := explain(t, strings.NewReader(""), "-h")
	if code != 0 || !strings.Contains(out, "usage: emitop explain --provider NAME") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestExplainArguments(t *testing.T) {
	file := "testdata/explain/alegra-429.http"
	for _, args := range [][]string{
		{"--provider", "alegra", file},
		{file, "--provider", "alegra"},
		{"--provider=alegra", "-o", "text", "--", file},
	} {
		code, out, errOut := explain(t, strings.NewReader(""), args...)
		if code != 0 || !strings.HasPrefix(out, "RATE_LIMITED · WAIT 17s\n") {
			t.Errorf("%v: exit %d %q %q", args, code, out, errOut)
		}
	}
	code, out, _ := explain(t, strings.NewReader(alegra400), "--provider", "alegra", "-")
	if code != 0 || !strings.HasPrefix(out, "VALIDATION · FIX") {
		t.Errorf("stdin as -: exit %d %q", code, out)
	}
}

// TestExplainSamples decodes the sample responses the README shows.
func TestExplainSamples(t *testing.T) {
	cases := []struct {
		file, provider, method, first string
	}{
		{"alegra-429.http", "alegra", "GET", "RATE_LIMITED · WAIT 17s"},
		{"alegra-stamp-400.http", "alegra", "POST", "VALIDATION · FIX"},
		{"alegra-stamp-partial.http", "alegra", "POST", "DUPLICATE · RECONCILE"},
		{"alegra-503-html.http", "alegra", "POST", "UNAVAILABLE · VERIFY"},
		{"alegra-503-html.http", "alegra", "GET", "UNAVAILABLE · WAIT 2m0s"},
		{"sv-dte-429.http", "sv-dte", "POST", "RATE_LIMITED · WAIT 9s"},
	}
	for _, c := range cases {
		t.Run(c.file+" "+c.method, func(t *testing.T) {
			if !slices.Contains(poller.DialectNames(), c.provider) {
				t.Skipf("the %s dialect is not in this build", c.provider)
			}
			code, out, errOut := explain(t, strings.NewReader(""), "--provider", c.provider, "--method", c.method,
				"testdata/explain/"+c.file)
			if code != 0 || strings.Split(out, "\n")[0] != c.first {
				t.Fatalf("exit %d, stderr %q, output:\n%s\nwant first line %q", code, errOut, out, c.first)
			}
		})
	}
}

// countingReader counts the bytes explain takes from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// endless is an endless body of one byte.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

func TestExplainReadsAtMostOneMebibyte(t *testing.T) {
	head := "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 10000000\r\n\r\n{\"message\":\""
	in := &countingReader{r: io.MultiReader(strings.NewReader(head), io.LimitReader(endless('a'), 10<<20))}
	code, out, _ := explain(t, in, "--provider", "alegra", "--method", "GET")
	if code != 0 || !strings.HasPrefix(out, "SERVER · RETRY") {
		t.Fatalf("exit %d: %.200s", code, out)
	}
	if limit := poller.MaxBody + maxHeaderBytes; in.n > limit {
		t.Fatalf("read %d bytes, want at most %d", in.n, limit)
	}
}

func TestExplainHostile(t *testing.T) {
	cases := []struct {
		name, in, first string
	}{
		{"html body", "HTTP/1.1 502 Bad Gateway\n\n<html><body>nginx</body></html>", "UPSTREAM · VERIFY"},
		{"empty body", "HTTP/1.1 401 Unauthorized\r\n\r\n", "AUTH · REAUTH"},
		{"headers only, no blank line", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain", "NOT_FOUND · FIX"},
		{"truncated body, lying length", "HTTP/1.1 400 Bad Request\r\nContent-Length: 500\r\n\r\n{\"message\":\"AEP10", "VALIDATION · FIX"},
		{"chunked marker without chunks", "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n{\"code\":\"AEP1005\",\"message\":\"x\"}", "CERTIFICATE · ESCALATE"},
		{"real chunks", "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"code\":\"AEP2011\r\n0E\r\n\",\"message\":1}\r\n0\r\n\r\n", "PROCESSING · VERIFY"},
		{"unknown status", "HTTP/1.1 299 Odd\r\n\r\n", "OK · NONE"},
		{"informational status", "HTTP/1.1 101 Switching\r\n\r\n", "UNKNOWN · VERIFY"},
		{"hostile header values", "HTTP/1.1 429 Too Many Requests\r\nX-RateLimit-Limit: -5\r\nX-RateLimit-Remaining: lots\r\n" +
			"X-RateLimit-Reset: 1e30\r\nRetry-After: 99999999999999999999999999\r\nRateLimit: \"\x1b[31m\";r=0;t=-1\r\n" +
			"X-RateLimit-Limit-\x1b]8;;x\x07: 3\r\n folded\r\nno colon line\r\n: empty key\r\n\r\n", "RATE_LIMITED · WAIT 24h0m0s"},
		{"escapes in the message", "HTTP/1.1 400 Bad Request\n\n{\"message\":\"REJECTED\\rACCEPTED \\u001b[8mhidden\\u001b[0m \\u009b31m \\u202eevil\\u007f \\u0007\"}",
			"VALIDATION · FIX"},
		{"raw escapes in the body", "HTTP/1.1 400 Bad Request\n\n\x1b[2J\x9b\r\x00", "VALIDATION · FIX"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, format := range []string{"text", "json"} {
				code, out, errOut := explain(t, strings.NewReader(c.in), "--provider", "alegra", "-o", format)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", format, code, errOut)
				}
				if format == "text" && strings.Split(out, "\n")[0] != c.first {
					t.Fatalf("first line %q, want %q:\n%s", strings.Split(out, "\n")[0], c.first, out)
				}
				for _, r := range out {
					if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7F || (r >= 0x80 && r <= 0x9F) ||
						r == 0x200E || r == 0x200F || r == 0x061C || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
						t.Fatalf("%s output holds %U:\n%q", format, r, out)
					}
				}
			}
		})
	}
}
