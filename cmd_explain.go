package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"emitop/model"
	"emitop/poller"
)

func init() {
	register("explain", "decode one raw HTTP response: class, verdict, what it means, what to do", runExplain)
}

// Limits on what explain reads of a response besides its body (poller.MaxBody).
const (
	maxHeaderBytes = 64 << 10
	maxHeaderLines = 1000
)

func runExplain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("explain", io.Discard)
	provider := fs.String("provider", "", "the provider that sent the response: "+strings.Join(poller.DialectNames(), ", "))
	method := fs.String("method", "", "the request's HTTP method; empty means unknown, treated as a write")
	output := fs.String("o", "text", "output: text or json")
	var files []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			explainUsage(stdout, fs)
			return nil
		}
		if err != nil {
			return usagef("%v (see emitop explain -h)", err)
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			files = append(files, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		files, args = append(files, rest[0]), rest[1:]
	}
	switch {
	case *provider == "":
		return usagef("--provider is required (one of %s)", strings.Join(poller.DialectNames(), ", "))
	case *output != "text" && *output != "json":
		return usagef("-o must be text or json, not %q", model.Line(*output, 20))
	case len(files) > 1:
		return usagef("one response at a time (got %d files)", len(files))
	}
	in := stdin
	if len(files) == 1 && files[0] != "-" {
		f, err := os.Open(files[0])
		if err != nil {
			return usagef("%v", err)
		}
		defer f.Close()
		in = f
	}
	resp, err := readResponse(in)
	if err != nil {
		return usagef("%v", err)
	}
	resp.Method = *method
	p, err := poller.Decode(*provider, resp)
	if err != nil {
		return usagef("%v", err)
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(p)
	}
	_, err = io.WriteString(stdout, explainText(p))
	return err
}

func explainUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: emitop explain --provider NAME [--method METHOD] [-o text|json] [FILE]")
	fmt.Fprintln(w, "\nReads one raw HTTP response (status line, headers, blank line, body) from FILE,")
	fmt.Fprintln(w, "or standard input when FILE is absent or -, and says what it means and what to do.")
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// readResponse reads a raw HTTP/1.x response as a person pastes it: CRLF or LF line
// ends, Content-Length ignored (the body is whatever follows the headers, at most
// poller.MaxBody bytes), a chunked body de-chunked when it really is chunked. It fails
// only when there is no HTTP status line.
func readResponse(r io.Reader) (poller.Response, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxHeaderBytes+poller.MaxBody), 16<<10)
	status, err := readStatusLine(br)
	if err != nil {
		return poller.Response{}, err
	}
	resp := poller.Response{Status: status, Header: http.Header{}, Received: time.Now()}
	last, headerBytes := "", 0
	for n := 0; ; n++ {
		line, err := readLine(br)
		headerBytes += len(line)
		if line == "" {
			break // the blank line, or the input ends with the headers
		}
		if n >= maxHeaderLines || headerBytes > maxHeaderBytes {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' { // obsolete line folding
			if vals := resp.Header[last]; len(vals) > 0 {
				vals[len(vals)-1] += " " + strings.TrimSpace(line)
			}
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			continue
		}
		last = textproto.CanonicalMIMEHeaderKey(key)
		resp.Header.Add(last, strings.TrimSpace(val))
		if err != nil {
			break
		}
	}
	body, _ := io.ReadAll(io.LimitReader(br, poller.MaxBody))
	if strings.Contains(strings.ToLower(resp.Header.Get("Transfer-Encoding")), "chunked") {
		plain, err := io.ReadAll(io.LimitReader(httputil.NewChunkedReader(bytes.NewReader(body)), poller.MaxBody))
		if len(plain) > 0 || err == nil {
			body = plain
		}
	}
	resp.Body = body
	return resp, nil
}

// readStatusLine reads "HTTP/1.1 429 Too Many Requests", after any blank lines or a
// byte-order mark.
func readStatusLine(br *bufio.Reader) (int, error) {
	for range 10 {
		line, err := readLine(br)
		line = strings.TrimPrefix(line, "\uFEFF")
		if strings.TrimSpace(line) == "" {
			if err != nil {
				return 0, errors.New("no HTTP response: the input is empty")
			}
			continue
		}
		proto, rest, _ := strings.Cut(line, " ")
		code, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		status, convErr := strconv.Atoi(code)
		if !strings.HasPrefix(proto, "HTTP/") || len(code) != 3 || convErr != nil || status < 100 || status > 599 {
			return 0, fmt.Errorf("no HTTP status line (want e.g. \"HTTP/1.1 429 Too Many Requests\", got %q)", model.Line(line, 60))
		}
		return status, nil
	}
	return 0, errors.New("no HTTP status line: only blank lines")
}

// readLine reads one line without its line end; a line longer than the reader's buffer
// is cut there and the rest of it skipped.
func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	line := string(bytes.TrimRight(b, "\r\n"))
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = br.ReadSlice('\n')
	}
	return line, err
}

// explainText renders a Problem for a person: class and verdict first, in capitals.
func explainText(p model.Problem) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(string(p.Class)) + " · " + strings.ToUpper(string(p.Verdict)))
	if p.Verdict == model.VerdictWait && p.HasWait {
		b.WriteString(" " + explainWait(p.Wait))
	}
	method := p.Method
	if method == "" {
		method = "method unknown (treated as a write)"
	}
	fmt.Fprintf(&b, "\n%s · HTTP %d · %s", p.Provider, p.Status, method)
	if p.Code != "" {
		b.WriteString(" · code " + p.Code)
	}
	b.WriteString("\n\n")
	row := func(label, text string) {
		fmt.Fprintf(&b, "%-9s %s\n", label+":", strings.ReplaceAll(text, "\n", "\n"+strings.Repeat(" ", 10)))
	}
	row("meaning", p.Meaning)
	row("action", p.Action)
	if len(p.Fields) > 0 {
		row("fields", strings.Join(p.Fields, ", "))
	}
	if p.HasWait {
		row("wait", explainWait(p.Wait))
	}
	for i, w := range p.Windows {
		label := ""
		if i == 0 {
			label = "windows:"
		}
		reset := "reset ?"
		if w.HasReset() {
			reset = "reset in " + explainWait(w.Reset)
		}
		fmt.Fprintf(&b, "%-9s %-12s %s/%s left  %s\n", label, w.Label(), explainFigure(w.Remaining), explainFigure(w.Limit), reset)
	}
	if p.Message != "" {
		row("message", p.Message)
	}
	return b.String()
}

func explainWait(d time.Duration) string {
	return (time.Duration(model.CeilSeconds(d)) * time.Second).String()
}

func explainFigure(n int) string {
	if n == model.Unknown {
		return "?"
	}
	return strconv.Itoa(n)
}
