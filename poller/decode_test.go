package poller

import (
	"strings"
	"testing"
	"time"

	"emitop/model"
)

func TestFinish(t *testing.T) {
	d := &Dialect{name: "test", catalog: map[string]model.Guidance{
		"DUP":      {Class: model.ClassDuplicate, Meaning: "dup meaning"},
		"HTTP 418": {Meaning: "teapot meaning", Action: "teapot action"},
	}}
	cases := []struct {
		name    string
		r       Response
		f       finding
		class   model.Class
		verdict model.Verdict
		wait    time.Duration // -1: no wait
		meaning string
	}{
		{"body wait longer than header", Response{Status: 429, Method: "POST", Header: rlHeader("Retry-After", "5")},
			finding{wait: 60 * time.Second, hasWait: true}, model.ClassRateLimited, model.VerdictWait, time.Minute, ""},
		{"header wait longer than body", Response{Status: 429, Header: rlHeader("Retry-After", "90")},
			finding{wait: 60 * time.Second, hasWait: true}, model.ClassRateLimited, model.VerdictWait, 90 * time.Second, ""},
		{"absurd body wait capped", Response{Status: 429}, finding{wait: 1 << 62, hasWait: true},
			model.ClassRateLimited, model.VerdictWait, maxWait, ""},
		{"5xx write verifies", Response{Status: 500, Method: "post"}, finding{}, model.ClassServer, model.VerdictVerify, -1, ""},
		{"5xx read retries", Response{Status: 500, Method: "get"}, finding{}, model.ClassServer, model.VerdictRetry, -1, ""},
		{"5xx unknown method verifies", Response{Status: 504}, finding{}, model.ClassUpstream, model.VerdictVerify, -1, ""},
		{"catalog class wins over the body's", Response{Status: 200}, finding{code: "DUP", class: model.ClassRejected},
			model.ClassDuplicate, model.VerdictReconcile, -1, "dup meaning"},
		{"status guidance", Response{Status: 418, Method: "GET"}, finding{code: "nope"}, model.ClassUnknown, model.VerdictRetry, -1, "teapot meaning"},
		{"status guidance yields to the body's class", Response{Status: 418}, finding{class: model.ClassRejected},
			model.ClassRejected, model.VerdictFix, -1, model.ClassGuidance[model.ClassRejected].Meaning},
		{"invalid class and verdict fall back", Response{Status: 403}, finding{class: "bogus", verdict: "maybe"},
			model.ClassPermission, model.VerdictEscalate, -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.r.Received = rlNow
			p := d.finish(c.r, c.f)
			if p.Class != c.class || p.Verdict != c.verdict {
				t.Fatalf("got %s/%s, want %s/%s", p.Class, p.Verdict, c.class, c.verdict)
			}
			if c.wait < 0 && p.HasWait || c.wait >= 0 && (!p.HasWait || p.Wait != c.wait) {
				t.Fatalf("wait %v (%v), want %v", p.Wait, p.HasWait, c.wait)
			}
			if c.meaning != "" && p.Meaning != c.meaning {
				t.Fatalf("meaning %q, want %q", p.Meaning, c.meaning)
			}
		})
	}
}

func TestFinishCapsText(t *testing.T) {
	d := &Dialect{name: "test"}
	fields := make([]string, 500)
	for i := range fields {
		fields[i] = strings.Repeat("f", 1000)
	}
	p := d.finish(Response{Status: 400, Received: rlNow}, finding{message: strings.Repeat("m", 1<<20), fields: fields})
	if len(p.Message) > maxMessage || len(p.Fields) != maxFields || len(p.Fields[0]) > 200*3 {
		t.Fatalf("message %d bytes, %d fields of %d bytes", len(p.Message), len(p.Fields), len(p.Fields[0]))
	}
}

func TestDecodeUnknownProvider(t *testing.T) {
	if _, err := Decode("nobody", Response{Status: 200}); err == nil || !strings.Contains(err.Error(), "alegra") {
		t.Fatalf("err = %v, want one naming the known providers", err)
	}
}
