package poller

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"emitop/model"
)

// decodeCase is one response a dialect must decode, and what it must decode to.
type decodeCase struct {
	name   string
	status int
	method string
	header http.Header
	body   string
	want   decodeWant
}

// decodeWant is what a decoded Problem must say. Class, verdict, code and fields are
// always compared (nil fields means none); the wait only when hasWait; message is a
// substring the message must contain.
type decodeWant struct {
	class   model.Class
	verdict model.Verdict
	code    string
	fields  []string
	hasWait bool
	wait    time.Duration
	message string
}

// runDecodeCases decodes every case with provider's dialect and checks the result.
func runDecodeCases(t *testing.T, provider string, cases []decodeCase) {
	t.Helper()
	received := time.Date(2025, 1, 16, 10, 30, 0, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Decode(provider, Response{Status: c.status, Method: c.method, Header: c.header, Body: []byte(c.body), Received: received})
			if err != nil {
				t.Fatal(err)
			}
			c.want.check(t, p)
			checkSafeProblem(t, p)
		})
	}
}

func (w decodeWant) check(t *testing.T, p model.Problem) {
	t.Helper()
	if p.Class != w.class || p.Verdict != w.verdict || p.Code != w.code {
		t.Errorf("class/verdict/code = %s/%s/%q, want %s/%s/%q", p.Class, p.Verdict, p.Code, w.class, w.verdict, w.code)
	}
	if !slices.Equal(p.Fields, w.fields) {
		t.Errorf("fields = %q, want %q", p.Fields, w.fields)
	}
	if p.HasWait != w.hasWait || (w.hasWait && p.Wait != w.wait) {
		t.Errorf("wait = %v (has %v), want %v (has %v)", p.Wait, p.HasWait, w.wait, w.hasWait)
	}
	if !strings.Contains(p.Message, w.message) {
		t.Errorf("message = %q, want it to contain %q", p.Message, w.message)
	}
	if p.Meaning == "" || p.Action == "" {
		t.Errorf("no guidance: meaning %q, action %q", p.Meaning, p.Action)
	}
}

// checkSafeProblem fails when a decoded problem is outside the closed vocabularies or
// holds text a terminal would act on.
func checkSafeProblem(t *testing.T, p model.Problem) {
	t.Helper()
	if !p.Class.Valid() || !p.Verdict.Valid() {
		t.Fatalf("class %q verdict %q out of vocabulary", p.Class, p.Verdict)
	}
	for _, s := range append([]string{p.Code}, p.Fields...) {
		checkSafeText(t, s, false)
	}
	checkSafeText(t, p.Message, true)
}

// checkSafeText fails when s holds a control character (newlines and tabs allowed when
// multiline) or a bidi control.
func checkSafeText(t *testing.T, s string, multiline bool) {
	t.Helper()
	for _, r := range s {
		if (r == '\n' || r == '\t') && multiline {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			t.Fatalf("unsafe %U in %q", r, s)
		}
	}
}

// caseSeeds adds every case to a fuzzer's corpus.
func caseSeeds(f *testing.F, cases []decodeCase) {
	for _, c := range cases {
		f.Add(c.status, c.method, []byte(c.body))
	}
}

// mustDialect is the dialect of provider.
func mustDialect(t testing.TB, provider string) *Dialect {
	t.Helper()
	d, err := dialectOf(provider)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
