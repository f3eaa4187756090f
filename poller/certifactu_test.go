package poller

import (
	"net/http"
	"testing"
	"time"

	"emitop/model"
)

// certifactuInvoice is a Certifactu invoice as GET /v1/invoices/{id} answers it.
func certifactuInvoice(status, aeat string) string {
	return `{"id":"550e8400-e29b-41d4-a716-446655440000","series_number":"F2024-001","issuer_nif":"B12345678","issue_date":"2024-01-30","status":"` + status + `","aeat":` + aeat + `}`
}

// certifactuCases holds every JSON example of seed 002, every code and status of
// certifactu in PROVIDERS.md, each AEAT code family, and bodies that are not JSON.
var certifactuCases = []decodeCase{
	// Seed 002, in its order.
	{"seed error structure", 400, "POST", nil, `{
  "detail": "Descripción legible del error",
  "code": "ERROR_CODE",
  "field": "campo_con_error",
  "timestamp": "2024-01-30T10:00:00Z"
}`, decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "ERROR_CODE", fields: []string{"campo_con_error"}, message: "Descripción legible del error"}},
	{"seed 401 invalid key", 401, "GET", nil, `{
  "detail": "Invalid or missing API key",
  "code": "INVALID_API_KEY"
}`, decodeWant{class: model.ClassAuth, verdict: model.VerdictReauth, code: "INVALID_API_KEY", message: "Invalid or missing API key"}},
	{"seed 400 missing field", 400, "POST", nil, `{
  "detail": "El campo 'issue_date' es obligatorio",
  "code": "MISSING_FIELD",
  "field": "issue_date"
}`, decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "MISSING_FIELD", fields: []string{"issue_date"}, message: "El campo 'issue_date' es obligatorio"}},
	{"seed 403 nif mismatch", 403, "POST", nil, `{
  "detail": "Issuer NIF does not match authenticated API key",
  "code": "NIF_MISMATCH",
  "field": "issuer_nif"
}`, decodeWant{class: model.ClassPermission, verdict: model.VerdictEscalate, code: "NIF_MISMATCH", fields: []string{"issuer_nif"}, message: "Issuer NIF does not match authenticated API key"}},
	{"seed 409 duplicate", 409, "POST", nil, `{
  "detail": "Invoice F2024-001 already exists for this issuer",
  "code": "DUPLICATE_INVOICE",
  "existing_id": "550e8400-e29b-41d4-a716-446655440000"
}`, decodeWant{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "DUPLICATE_INVOICE",
		message: "Invoice F2024-001 already exists for this issuer\nexisting_id: 550e8400-e29b-41d4-a716-446655440000"}},
	{"seed 429 rate limited", 429, "POST", nil, `{
  "detail": "Rate limit exceeded. Try again in 60 seconds",
  "code": "RATE_LIMITED",
  "retry_after": 60
}`, decodeWant{class: model.ClassRateLimited, verdict: model.VerdictWait, code: "RATE_LIMITED", hasWait: true, wait: 60 * time.Second, message: "Try again in 60 seconds"}},

	// Waits: the longest hint wins; a fraction of a second is kept.
	{"429 header longer than body", 429, "GET", http.Header{"Retry-After": {"90"}}, `{"detail":"Rate limit exceeded","code":"RATE_LIMITED","retry_after":60}`,
		decodeWant{class: model.ClassRateLimited, verdict: model.VerdictWait, code: "RATE_LIMITED", hasWait: true, wait: 90 * time.Second}},
	{"429 fractional retry_after as text", 429, "GET", nil, `{"detail":"Slow down","code":"RATE_LIMITED","retry_after":"1.5"}`,
		decodeWant{class: model.ClassRateLimited, verdict: model.VerdictWait, code: "RATE_LIMITED", hasWait: true, wait: 1500 * time.Millisecond}},
	{"429 absurd retry_after capped", 429, "GET", nil, `{"code":"RATE_LIMITED","retry_after":1e300}`,
		decodeWant{class: model.ClassRateLimited, verdict: model.VerdictWait, code: "RATE_LIMITED", hasWait: true, wait: 24 * time.Hour}},
	{"429 negative retry_after ignored", 429, "GET", nil, `{"code":"RATE_LIMITED","retry_after":-5}`,
		decodeWant{class: model.ClassRateLimited, verdict: model.VerdictWait, code: "RATE_LIMITED"}},

	// The NIF check letter, when the body shows the NIF.
	{"nif mismatch, wrong letter", 403, "POST", nil, `{"detail":"Issuer NIF 12345678A does not match authenticated API key","code":"NIF_MISMATCH","field":"issuer_nif"}`,
		decodeWant{class: model.ClassPermission, verdict: model.VerdictEscalate, code: "NIF_MISMATCH", fields: []string{"issuer_nif"}, message: "NIF 12345678A: check letter invalid"}},
	{"validation names issuer_nif, good NIE", 422, "POST", nil, `{"detail":"NIF not registered in the census","code":"NIF_NOT_CENSUSED","field":"issuer_nif","issuer_nif":"x1234567l"}`,
		decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "NIF_NOT_CENSUSED", fields: []string{"issuer_nif"}, message: "NIF X1234567L: check letter valid"}},

	// The statuses seed 002 documents, with and without a code.
	{"409 blocked series", 409, "POST", nil, `{"detail":"La serie F2024 está bloqueada","code":"SERIES_BLOCKED","field":"series_number"}`,
		decodeWant{class: model.ClassConflict, verdict: model.VerdictFix, code: "SERIES_BLOCKED", fields: []string{"series_number"}, message: "bloqueada"}},
	{"409 without code", 409, "POST", nil, `{"detail":"Series F2024 is blocked"}`,
		decodeWant{class: model.ClassConflict, verdict: model.VerdictFix, code: "", message: "blocked"}},
	{"422 business rule", 422, "POST", nil, `{"detail":"La fecha de expedición no puede ser futura","code":"BUSINESS_RULE","field":"lines[0].unit_price"}`,
		decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "BUSINESS_RULE", fields: []string{"lines.0.unit_price"}, message: "futura"}},
	{"422 fastapi list", 422, "POST", nil, `{"detail":[{"loc":["body","lines",0,"unit_price"],"msg":"ensure this value is greater than 0","type":"value_error"},{"loc":["body","issuer_nif"],"msg":"field required","type":"value_error.missing"}]}`,
		decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "", fields: []string{"lines.0.unit_price", "issuer_nif"},
			message: "lines.0.unit_price: ensure this value is greater than 0\nissuer_nif: field required"}},
	{"404", 404, "GET", nil, `{"detail":"Invoice not found","code":"NOT_FOUND"}`,
		decodeWant{class: model.ClassNotFound, verdict: model.VerdictFix, code: "NOT_FOUND", message: "Invoice not found"}},
	{"502 aeat on POST", 502, "POST", nil, `{"detail":"AEAT no responde","code":"AEAT_UNAVAILABLE"}`,
		decodeWant{class: model.ClassUpstream, verdict: model.VerdictVerify, code: "AEAT_UNAVAILABLE", message: "AEAT no responde"}},
	{"502 vies on GET", 502, "GET", nil, `{"detail":"VIES unreachable"}`,
		decodeWant{class: model.ClassUpstream, verdict: model.VerdictRetry, code: "", message: "VIES"}},
	{"503 json", 503, "POST", nil, `{"detail":"Mantenimiento"}`,
		decodeWant{class: model.ClassUnavailable, verdict: model.VerdictVerify, code: "", message: "Mantenimiento"}},

	// The method rule on a 500.
	{"500 on GET", 500, "GET", nil, `{"detail":"Unexpected error"}`,
		decodeWant{class: model.ClassServer, verdict: model.VerdictRetry, code: "", message: "Unexpected error"}},
	{"500 on POST", 500, "POST", nil, `{"detail":"Unexpected error"}`,
		decodeWant{class: model.ClassServer, verdict: model.VerdictVerify, code: "", message: "Unexpected error"}},
	{"500, method unknown", 500, "", nil, `{"detail":"Unexpected error"}`,
		decodeWant{class: model.ClassServer, verdict: model.VerdictVerify, code: "", message: "Unexpected error"}},

	// Bodies that are not JSON: the status decides.
	{"html 503 on GET", 503, "GET", nil, "<!DOCTYPE html><title>Service Unavailable</title>", decodeWant{class: model.ClassUnavailable, verdict: model.VerdictRetry}},
	{"empty 401", 401, "GET", nil, "", decodeWant{class: model.ClassAuth, verdict: model.VerdictReauth}},
	{"truncated 409", 409, "POST", nil, `{"detail":"Invoice F2024-001 already ex`, decodeWant{class: model.ClassConflict, verdict: model.VerdictFix}},

	// Invoices, and each AEAT code family.
	{"registered", 200, "GET", nil, certifactuInvoice("registered", `{"state":"Correcto","code":null,"description":null}`),
		decodeWant{class: model.ClassOK, verdict: model.VerdictNone}},
	{"pending", 200, "POST", nil, certifactuInvoice("pending", `null`), decodeWant{class: model.ClassOK, verdict: model.VerdictNone}},
	{"registered with errors 2004", 200, "GET", nil, certifactuInvoice("registered_with_errors", `{"state":"AceptadoConErrores","code":"2004","description":"El valor del campo FechaOperacion es posterior"}`),
		decodeWant{class: model.ClassOK, verdict: model.VerdictNone, code: "2004", message: "FechaOperacion"}},
	{"rejected 1105 data", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto","code":1105,"description":"El NIF del destinatario no está identificado"}`),
		decodeWant{class: model.ClassRejected, verdict: model.VerdictFix, code: "1105", message: "destinatario"}},
	{"rejected 3000 duplicate", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto","code":"3000","description":"Registro de facturación duplicado."}`),
		decodeWant{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "3000", message: "duplicado"}},
	{"rejected 3002 state conflict", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto","code":"3002","description":"No existe el registro de facturación."}`),
		decodeWant{class: model.ClassConflict, verdict: model.VerdictFix, code: "3002", message: "No existe"}},
	{"rejected 4102 schema", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto","code":"4102","description":"El XML no cumple el esquema."}`),
		decodeWant{class: model.ClassRejected, verdict: model.VerdictEscalate, code: "4102", message: "esquema"}},
	{"rejected 4104 issuer", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto","code":"4104","description":"NIF del obligado no identificado."}`),
		decodeWant{class: model.ClassPermission, verdict: model.VerdictEscalate, code: "4104", message: "obligado"}},
	{"rejected 4112 certificate holder", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto","code":"4112","description":"El titular del certificado debe ser Obligado Emisión."}`),
		decodeWant{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "4112", message: "certificado"}},
	{"rejected 4114 too many records in the submission", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto","code":"4114","description":"Se ha superado el número máximo de registros."}`),
		decodeWant{class: model.ClassRejected, verdict: model.VerdictRetry, code: "4114", message: "registros"}},
	{"rejected 4134 service not active", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto","code":"4134","description":"Servicio no activo."}`),
		decodeWant{class: model.ClassPermission, verdict: model.VerdictEscalate, code: "4134", message: "no activo"}},
	{"rejected 4141 access suspended", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto","code":"4141","description":"Acceso suspendido."}`),
		decodeWant{class: model.ClassPermission, verdict: model.VerdictEscalate, code: "4141", message: "suspendido"}},
	{"rejected without aeat code", 200, "GET", nil, certifactuInvoice("rejected", `{"state":"Incorrecto"}`),
		decodeWant{class: model.ClassRejected, verdict: model.VerdictFix}},
	{"rejected with unknown aeat code", 200, "GET", nil, certifactuInvoice("rejected", `{"code":"9999","description":"?"}`),
		decodeWant{class: model.ClassRejected, verdict: model.VerdictFix, code: "9999", message: "?"}},
	{"aeat state only", 200, "GET", nil, `{"id":"x","aeat":{"state":"Incorrecto","code":"1100","description":"Valor incorrecto"}}`,
		decodeWant{class: model.ClassRejected, verdict: model.VerdictFix, code: "1100", message: "Valor incorrecto"}},
	{"list page is ok", 200, "GET", nil, `{"data":[{"id":"x","status":"rejected"}],"page":1,"page_size":25,"total":1}`,
		decodeWant{class: model.ClassOK, verdict: model.VerdictNone}},
}

func TestDecodeCertifactu(t *testing.T) {
	runDecodeCases(t, certifactuName, certifactuCases)
}

func TestCertifactuCatalog(t *testing.T) {
	catalog := certifactuDialect.catalog
	cases := map[string]model.Class{
		"1100": model.ClassRejected, "1293": model.ClassRejected, "2000": model.ClassOK, "2009": model.ClassOK,
		"3000": model.ClassDuplicate, "3001": model.ClassConflict, "3004": model.ClassConflict,
		"4102": model.ClassRejected, "4104": model.ClassPermission, "4105": model.ClassRejected,
		"4112": model.ClassCertificate, "4114": model.ClassRejected, "4108": model.ClassUpstream, "3501": model.ClassUpstream, "4134": model.ClassPermission, "4141": model.ClassPermission,
		"1099": "", "1294": "", "2010": "", "3005": "", "4101": "", "4142": "",
	}
	for code, want := range cases {
		if got := catalog[code].Class; got != want {
			t.Errorf("catalog[%s].Class = %q, want %q", code, got, want)
		}
	}
	for code, g := range catalog {
		if !g.Class.Valid() || g.Meaning == "" || g.Action == "" || (g.Verdict != "" && !g.Verdict.Valid()) {
			t.Errorf("catalog[%s] = %+v: incomplete", code, g)
		}
	}
}

func TestValidNIF(t *testing.T) {
	cases := map[string]bool{
		"12345678Z": true,  // 12345678 % 23 = 14 → Z
		"00000000T": true,  // 0 → T
		"X1234567L": true,  // NIE: X → 0
		"Y1234567X": true,  // Y → 1
		"Z1234567R": true,  // Z → 2
		"12345678A": false, // wrong letter
		"12345678z": false, // the letter is upper-case
		"X1234567A": false,
		"1234567Z":  false, // seven digits
		"123456789": false,
		"B12345678": false, // a company NIF is not checked
		"W1234567L": false,
		"":          false,
		"12345678Ñ": false,
	}
	for in, want := range cases {
		if got := validNIF(in); got != want {
			t.Errorf("validNIF(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestCertifactuDocument(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		ok      bool
		want    model.Document
		code    string
		class   model.Class // the finding's own class
		problem model.Class // after the shared steps
	}{
		{"rejected", certifactuInvoice("rejected", `{"state":"Incorrecto","code":"4112","description":"El titular del certificado debe ser Obligado Emisión."}`), true,
			model.Document{Provider: "certifactu", ID: "550e8400-e29b-41d4-a716-446655440000", Number: "F2024-001", Status: model.StatusRejected},
			"4112", model.ClassRejected, model.ClassCertificate},
		{"registered with errors", certifactuInvoice("registered_with_errors", `{"state":"AceptadoConErrores","code":2001,"description":"Aviso"}`), true,
			model.Document{Provider: "certifactu", ID: "550e8400-e29b-41d4-a716-446655440000", Number: "F2024-001", Status: model.StatusAccepted},
			"2001", model.ClassOK, model.ClassOK},
		{"registered", certifactuInvoice("registered", `{"state":"Correcto"}`), true,
			model.Document{Provider: "certifactu", ID: "550e8400-e29b-41d4-a716-446655440000", Number: "F2024-001", Status: model.StatusAccepted}, "", "", ""},
		{"pending", certifactuInvoice("pending", `null`), true,
			model.Document{Provider: "certifactu", ID: "550e8400-e29b-41d4-a716-446655440000", Number: "F2024-001", Status: model.StatusPending}, "", "", ""},
		{"unknown status", `{"id":7,"series_number":"A-1","status":"archived"}`, true,
			model.Document{Provider: "certifactu", ID: "7", Number: "A-1", Status: model.StatusUnknown}, "", "", ""},
		{"hostile number", `{"id":"a","series_number":"F1\u001b]8;;http://x\u0007link\u001b]8;;\u0007\r","status":"pending"}`, true,
			model.Document{Provider: "certifactu", ID: "a", Number: "F1link␍", Status: model.StatusPending}, "", "", ""},
		{"no id", `{"series_number":"F2024-001","status":"rejected"}`, false, model.Document{}, "", "", ""},
		{"error body", `{"detail":"Invoice not found","code":"NOT_FOUND"}`, false, model.Document{}, "", "", ""},
		{"not json", `<html>`, false, model.Document{}, "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, f, ok := certifactuDocument([]byte(c.raw))
			if ok != c.ok || doc != c.want {
				t.Fatalf("certifactuDocument = %+v, %v; want %+v, %v", doc, ok, c.want, c.ok)
			}
			if f.code != c.code || f.class != c.class {
				t.Fatalf("finding code %q class %q, want %q %q", f.code, f.class, c.code, c.class)
			}
			if f.class == "" {
				return
			}
			if p := certifactuDialect.finish(Response{Method: "GET"}, f); p.Class != c.problem || p.Message == "" {
				t.Fatalf("problem %s %q, want class %s and AEAT's description", p.Class, p.Message, c.problem)
			}
		})
	}
}

func FuzzDecodeCertifactu(f *testing.F) {
	caseSeeds(f, certifactuCases)
	f.Fuzz(func(t *testing.T, status int, method string, body []byte) {
		p, err := Decode(certifactuName, Response{Status: status, Method: method, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		checkSafeProblem(t, p)
		if p.HasWait && (p.Wait < 0 || p.Wait > 24*time.Hour) {
			t.Fatalf("wait %v", p.Wait)
		}
		if doc, _, ok := certifactuDocument(body); ok {
			if !doc.Status.Valid() || doc.ID == "" {
				t.Fatalf("document %+v", doc)
			}
			checkSafeText(t, doc.ID, false)
			checkSafeText(t, doc.Number, false)
		}
	})
}
