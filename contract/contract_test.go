package contract

import (
	"net/http/httptest"
	"strings"
	"testing"
)

const sample = `# source: assumed
# call: read
# args: id=SETP1 note="two words"
> POST /v1/bills/validate?page=2
> Authorization: *
> Content-Type: application/json
>
> {"a": 1, "b": [true]}
< HTTP/1.1 409 Conflict
< Content-Type: application/json
< Retry-After: 7
<
{"status": "Conflict", "errors": [{"code": 409, "detail": null}]}
`

func TestParse(t *testing.T) {
	f, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if f.Get("call") != "read" || f.Pairs("args")["note"] != "two words" || f.Pairs("args")["id"] != "SETP1" {
		t.Errorf("meta %v, args %v", f.Meta, f.Pairs("args"))
	}
	r := f.Request
	if r == nil || r.Method != "POST" || r.Path() != "/v1/bills/validate" || r.Query().Get("page") != "2" || string(r.Body) != `{"a": 1, "b": [true]}` {
		t.Fatalf("request %+v", r)
	}
	if f.Response.Status != 409 || f.Response.Header.Get("Retry-After") != "7" || !strings.HasPrefix(string(f.Response.Body), `{"status"`) {
		t.Errorf("response %+v", f.Response)
	}
	for _, bad := range []string{
		"> GET /x\n< HTTP/1.1 200 OK\n<\n{}",                 // no source
		"# source: assumed\n> GET /x\n",                      // no response
		"# source: assumed\n> GET x\n< HTTP/1.1 200 OK\n<\n", // not a path
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestMismatches(t *testing.T) {
	f, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	match := httptest.NewRequest("POST", "/v1/bills/validate?page=2", nil)
	match.Header.Set("Authorization", "Bearer abc")
	match.Header.Set("Content-Type", "application/json; charset=utf-8")
	if m := f.Request.Mismatches(match, []byte(`{"b":[true],"a":1}`)); len(m) != 0 {
		t.Errorf("a matching request: %v", m)
	}
	other := httptest.NewRequest("PUT", "/v1/bills?page=3", nil)
	other.Header.Set("Content-Type", "text/plain")
	m := f.Request.Mismatches(other, []byte(`{"a":2,"b":[true]}`))
	for _, want := range []string{"method PUT", "path /v1/bills", "query page=3", "no header Authorization", "header Content-Type", "body"} {
		if !strings.Contains(strings.Join(m, "\n"), want) {
			t.Errorf("mismatches %q lack %q", m, want)
		}
	}
}

func TestShape(t *testing.T) {
	want := ShapeOf([]byte(`{"data": {"id": 1, "tags": ["a"], "note": null}, "list": [{"x": "y"}]}`))
	if m := ShapeOf([]byte(`{"data": {"id": 2, "tags": [], "note": "n"}, "list": [{"x": "z", "extra": 1}]}`)).Missing(want); len(m) != 0 {
		t.Errorf("same shape: %v", m)
	}
	m := ShapeOf([]byte(`{"data": {"id": "2", "tags": ["a"]}, "list": []}`)).Missing(want)
	if strings.Join(m, "\n") != "data.id: string, want number\ndata.note: absent, want null" {
		t.Errorf("missing: %q", m)
	}
	if ShapeOf([]byte("<xml/>")) != nil {
		t.Error("XML has a JSON shape")
	}
}
