package poller

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"emitop/model"
)

// factusCase is one Factus response and what it must decode to.
type factusCase struct {
	name    string
	status  int
	method  string
	body    string
	class   model.Class
	verdict model.Verdict
	code    string
	fields  []string
}

// factusCases holds every JSON example of seed 003 (first block) and of PROVIDERS.md
// "factus", then the shapes the seeds only describe.
var factusCases = []factusCase{
	// Seed 003, in page order.
	{"seed success envelope", 200, "POST",
		`{"success": true, "message": "Factura creada exitosamente", "data": {"number": "SETP990000123", "prefix": "SETP", "cufe": "abc123..."}, "errors": null}`,
		model.ClassOK, model.VerdictNone, "", nil},
	{"seed invalid customer data", 400, "POST",
		`{"detail": "Error al crear la factura: Invalid customer data"}`,
		model.ClassValidation, model.VerdictFix, "", nil},
	{"seed fastapi validation array", 422, "POST",
		`{"detail": [{"loc": ["body", "customer", "identification"], "msg": "field required", "type": "value_error.missing"}, {"loc": ["body", "items", 0, "price"], "msg": "price must have max 2 decimal places", "type": "value_error"}]}`,
		model.ClassValidation, model.VerdictFix, "value_error.missing", []string{"customer.identification", "items.0.price"}},
	{"seed could not validate credentials", 401, "GET",
		`{"detail": "Could not validate credentials"}`,
		model.ClassAuth, model.VerdictReauth, "", nil},
	{"seed incorrect local credentials", 401, "POST",
		`{"detail": "Incorrect username or password"}`,
		model.ClassAuth, model.VerdictEscalate, "", nil},
	{"seed factus authentication failed", 400, "POST",
		`{"detail": "No se pudo obtener el token de Factus: Invalid credentials"}`,
		model.ClassAuth, model.VerdictEscalate, "", nil},
	{"seed missing required field", 422, "POST",
		`{"detail": [{"loc": ["body", "customer", "identification"], "msg": "field required", "type": "value_error.missing"}]}`,
		model.ClassValidation, model.VerdictFix, "value_error.missing", []string{"customer.identification"}},
	{"seed invalid data type", 422, "POST",
		`{"detail": [{"loc": ["body", "items", 0, "quantity"], "msg": "value is not a valid integer", "type": "type_error.integer"}]}`,
		model.ClassValidation, model.VerdictFix, "type_error.integer", []string{"items.0.quantity"}},
	{"seed decimal precision", 400, "POST",
		`{"detail": [{"loc": ["body", "items", 0, "price"], "msg": "price must have max 2 decimal places", "type": "value_error"}]}`,
		model.ClassValidation, model.VerdictFix, "value_error", []string{"items.0.price"}},
	{"seed business rule names its field", 400, "POST",
		`{"detail": [{"loc": ["body"], "msg": "payment_due_date es obligatorio cuando payment_form es 2 (crédito)", "type": "value_error"}]}`,
		model.ClassValidation, model.VerdictFix, "value_error", []string{"payment_due_date"}},
	{"seed duplicate invoice reference", 400, "POST",
		`{"detail": "Error al crear la factura: Duplicate invoice reference"}`,
		model.ClassDuplicate, model.VerdictReconcile, "", nil},
	{"seed invoice not found", 400, "GET",
		`{"detail": "Error al descargar el PDF: Invoice not found"}`,
		model.ClassNotFound, model.VerdictFix, "", nil},
	{"seed refresh failed", 400, "POST",
		`{"detail": "No se pudo refrescar el token de Factus: Invalid refresh token"}`,
		model.ClassAuth, model.VerdictReauth, "", nil},
	{"seed invalid email", 422, "POST",
		`{"detail": [{"loc": ["body", "customer", "email"], "msg": "value is not a valid email address", "type": "value_error.email"}]}`,
		model.ClassValidation, model.VerdictFix, "value_error.email", []string{"customer.email"}},
	{"seed duplicate reference code", 400, "POST",
		`{"detail": "Error al crear la factura: Duplicate reference code"}`,
		model.ClassDuplicate, model.VerdictReconcile, "", nil},

	// PROVIDERS.md "factus".
	{"token answer", 200, "POST",
		`{"token_type":"Bearer","expires_in":3600,"access_token":"eyJ.a.b","refresh_token":"def502"}`,
		model.ClassOK, model.VerdictNone, "", nil},
	{"bill list page", 200, "GET",
		`{"status":"OK","data":{"data":[{"number":"SETP990000203","reference_code":"R-1","status":0,"errors":[]}],"pagination":{"total":1,"per_page":10,"current_page":1,"last_page":1}}}`,
		model.ClassOK, model.VerdictNone, "", nil},
	{"validation error list", 422, "POST",
		`{"status":"Validation error","message":"Los datos enviados no son válidos","data":{"errors":["El campo numbering_range_id es obligatorio"]}}`,
		model.ClassValidation, model.VerdictFix, "", nil},
	{"validation error field map", 422, "POST",
		`{"status":"Validation error","message":"Los datos enviados no son válidos","data":{"errors":{"customer.identification":["El campo customer.identification es obligatorio."],"items.0.price":["El precio debe ser numérico."]}}}`,
		model.ClassValidation, model.VerdictFix, "", []string{"customer.identification", "items.0.price"}},
	{"validation error bracketed keys", 422, "POST",
		`{"status":"Validation error","message":"Los datos enviados no son válidos","data":{"errors":{"items[0][price]":"El precio es obligatorio","customer[names]":["Requerido"]}}}`,
		model.ClassValidation, model.VerdictFix, "", []string{"items.0.price", "customer.names"}},
	{"pending bill conflict", 409, "POST",
		`{"status":"Conflict","message":"Se encontró una factura pendiente por enviar a la DIAN"}`,
		model.ClassConflict, model.VerdictFix, "", nil},
	{"rule 90 in the message", 422, "POST",
		`{"status":"Validation error","message":"Regla: 90, Rechazo: Documento procesado anteriormente","data":{"errors":[]}}`,
		model.ClassDuplicate, model.VerdictReconcile, "90", nil},
	{"rejection rules keyed by rule", 422, "POST",
		`{"status":"Validation error","message":"Documento con errores en campos mandatorios.","data":{"errors":{"FAJ43b":"Regla: FAJ43b, Notificación: Nombre informado No corresponde al registrado en el RUT con respecto al Nit suminstrado.","FAD06":"Regla: FAD06, Rechazo: Valor del CUFE no está calculado correctamente"}}}`,
		model.ClassRejected, model.VerdictFix, "FAD06", nil},
	{"rejection rule in a list", 422, "POST",
		`{"status":"Validation error","message":"Documento con errores en campos mandatorios.","data":{"errors":["Regla: FAK24, Rechazo: No fue informado el DV del adquirente"]}}`,
		model.ClassRejected, model.VerdictFix, "FAK24", nil},
	{"dian signature rejection", 422, "POST",
		`{"status":"Validation error","message":"Documento con errores en campos mandatorios.","data":{"errors":["Regla: ZE02, Rechazo: El certificado de firma digital está vencido o revocado."]}}`,
		model.ClassCertificate, model.VerdictEscalate, "ZE02", nil},
	{"rule 90 wins over other rejections", 422, "POST",
		`{"status":"Validation error","message":"Documento con errores","data":{"errors":["Regla: FAD06, Rechazo: Valor del CUFE no está calculado correctamente","Regla: 90, Rechazo: Documento procesado anteriormente"]}}`,
		model.ClassDuplicate, model.VerdictReconcile, "90", nil},
	{"unknown rejection rule", 422, "POST",
		`{"status":"Validation error","message":"Documento con errores","data":{"errors":["Regla: FAB05b, Rechazo: Número de la resolución no corresponde"]}}`,
		model.ClassRejected, model.VerdictFix, "FAB05b", nil},
	{"two rules in one text", 422, "POST",
		`{"message":"Regla: FAJ43b, Notificación: Nombre no corresponde; Regla: FAK24, Rechazo: DV no informado"}`,
		model.ClassRejected, model.VerdictFix, "FAK24", nil},
	{"field errors outrank a notification", 422, "POST",
		`{"status":"Validation error","message":"Datos no válidos","data":{"errors":{"items.0.price":["Requerido"],"FAJ43b":"Regla: FAJ43b, Notificación: Nombre no corresponde"}}}`,
		model.ClassValidation, model.VerdictFix, "", []string{"items.0.price"}},
	{"bill with notification only", 200, "GET",
		`{"status":"OK","message":"Solicitud exitosa","data":{"bill":{"number":"SETP990000203","reference_code":"R-203","status":1,"cufe":"a1b2","errors":["Regla: FAJ43b, Notificación: Nombre informado No corresponde al registrado en el RUT con respecto al Nit suminstrado."]}}}`,
		model.ClassOK, model.VerdictNone, "FAJ43b", nil},
	{"bill with a rejection", 200, "GET",
		`{"status":"OK","message":"Solicitud exitosa","data":{"bill":{"number":"SETP990000204","reference_code":"R-204","status":0,"errors":["Regla: FAJ43b, Notificación: Nombre no corresponde","Regla: FAD06, Rechazo: Valor del CUFE no está calculado correctamente"]}}}`,
		model.ClassRejected, model.VerdictFix, "FAD06", nil},
	{"bare data bill with rule 90", 200, "GET",
		`{"data":{"number":"SETP990000205","reference_code":"R-205","status":0,"errors":{"90":"Regla: 90, Rechazo: Documento procesado anteriormente"}}}`,
		model.ClassDuplicate, model.VerdictReconcile, "90", nil},
	{"oauth wrong password", 401, "POST",
		`{"error":"invalid_grant","error_description":"The user credentials were incorrect.","message":"The user credentials were incorrect."}`,
		model.ClassAuth, model.VerdictEscalate, "invalid_grant", nil},
	{"oauth refresh token revoked", 401, "POST",
		`{"error":"invalid_grant","error_description":"The refresh token is invalid.","hint":"Token has been revoked"}`,
		model.ClassAuth, model.VerdictReauth, "invalid_grant", nil},
	{"oauth invalid client", 401, "POST",
		`{"error":"invalid_client","error_description":"Client authentication failed","message":"Client authentication failed"}`,
		model.ClassAuth, model.VerdictEscalate, "invalid_client", nil},
	{"oauth invalid request", 400, "POST",
		`{"error":"invalid_request","error_description":"The request is missing a required parameter."}`,
		model.ClassValidation, model.VerdictFix, "invalid_request", nil},
	{"oauth unsupported grant", 400, "POST",
		`{"error":"unsupported_grant_type","error_description":"The authorization grant type is not supported."}`,
		model.ClassValidation, model.VerdictFix, "unsupported_grant_type", nil},
	{"oauth unauthorized client", 400, "POST",
		`{"error":"unauthorized_client","error_description":"The client is not authorized to use this grant."}`,
		model.ClassPermission, model.VerdictEscalate, "unauthorized_client", nil},
	{"oauth invalid scope", 400, "POST",
		`{"error":"invalid_scope","error_description":"The requested scope is invalid."}`,
		model.ClassValidation, model.VerdictFix, "invalid_scope", nil},

	// Bodies that say nothing: the HTTP status and the method decide.
	{"html on a write", 500, "POST", `<html><body>Server Error</body></html>`,
		model.ClassServer, model.VerdictVerify, "", nil},
	{"empty on a read", 503, "GET", ``,
		model.ClassUnavailable, model.VerdictRetry, "", nil},
	{"truncated json", 422, "POST", `{"status":"Validation error","data":{"errors":["Regla: FAD06, Rech`,
		model.ClassValidation, model.VerdictFix, "", nil},
	{"laravel unauthenticated", 401, "GET", `{"message":"Unauthenticated."}`,
		model.ClassAuth, model.VerdictReauth, "", nil},
	{"not found on a 5xx stays a server error", 500, "GET", `{"detail":"Invoice not found"}`,
		model.ClassServer, model.VerdictRetry, "", nil},
	{"the word reglas names no rule", 422, "POST",
		`{"status":"Validation error","message":"Incumple las reglas de validación","data":{"errors":["El campo numbering_range_id es obligatorio"]}}`,
		model.ClassValidation, model.VerdictFix, "", nil},
	{"rule without a colon", 422, "POST",
		`{"status":"Validation error","message":"Documento con errores","data":{"errors":["Regla 90 Rechazo: Documento procesado anteriormente"]}}`,
		model.ClassDuplicate, model.VerdictReconcile, "90", nil},
	{"wrong types skipped", 422, "POST", `{"status":7,"message":["x"],"data":{"errors":{"a[b]":[1,"Requerido"]}}}`,
		model.ClassValidation, model.VerdictFix, "", []string{"a.b"}},
}

func TestDecodeFactus(t *testing.T) {
	for _, c := range factusCases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Decode("factus", Response{Status: c.status, Method: c.method, Body: []byte(c.body)})
			if err != nil {
				t.Fatal(err)
			}
			if p.Class != c.class || p.Verdict != c.verdict || p.Code != c.code || !slices.Equal(p.Fields, c.fields) {
				t.Fatalf("got class %s verdict %s code %q fields %q; want %s %s %q %q",
					p.Class, p.Verdict, p.Code, p.Fields, c.class, c.verdict, c.code, c.fields)
			}
			if g, ok := factusCatalog[c.code]; ok && p.Meaning != g.Meaning {
				t.Fatalf("meaning %q, want the catalog's %q", p.Meaning, g.Meaning)
			}
		})
	}
}

// Every JSON example of seed 003 is a case of the table above.
func TestFactusSeedExamplesCovered(t *testing.T) {
	bodies := map[string]bool{}
	for _, c := range factusCases {
		bodies[compactJSON(c.body)] = true
	}
	examples := examplesInSeed(t, "003_812dc9528a78b85e.txt")
	for _, ex := range examples {
		if !bodies[ex] {
			t.Errorf("seed 003 example has no case: %s", ex)
		}
	}
	if len(examples) < 15 {
		t.Fatalf("found %d examples in seed 003, expected at least 15", len(examples))
	}
}

func TestFactusMessageKept(t *testing.T) {
	body := `{"status":"Validation error","message":"Documento con errores","data":{"errors":{"FAD06":"Regla: FAD06, Rechazo: Valor del CUFE no está calculado correctamente","items[0][price]":["Requerido"]}}}`
	p, _ := Decode("factus", Response{Status: 422, Method: "POST", Body: []byte(body)})
	want := "Documento con errores\nRegla: FAD06, Rechazo: Valor del CUFE no está calculado correctamente\nitems.0.price: Requerido"
	if p.Message != want {
		t.Fatalf("message %q, want %q", p.Message, want)
	}
	p, _ = Decode("factus", Response{Status: 422, Body: []byte(factusCases[2].body)})
	want = "customer.identification: field required\nitems.0.price: price must have max 2 decimal places"
	if p.Message != want {
		t.Fatalf("message %q, want %q", p.Message, want)
	}
	p, _ = Decode("factus", Response{Status: 400, Body: []byte(`{"detail":"REJECTED\rACCEPTED \u001b[8mhidden"}`)})
	if p.Message != "REJECTED␍ACCEPTED hidden" {
		t.Fatalf("message not sanitized: %q", p.Message)
	}
}

func TestFactusRateLimited(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "30")
	h.Set("X-RateLimit-Limit", "60")
	h.Set("X-RateLimit-Remaining", "0")
	p, _ := Decode("factus", Response{Status: 429, Method: "POST", Header: h, Body: []byte(`{"message":"Too Many Attempts."}`)})
	if p.Class != model.ClassRateLimited || p.Verdict != model.VerdictWait || !p.HasWait || p.Wait != 30*time.Second {
		t.Fatalf("got %s %s wait %v %v", p.Class, p.Verdict, p.HasWait, p.Wait)
	}
	if p.Message != "Too Many Attempts." {
		t.Fatalf("message %q", p.Message)
	}
}

func TestFactusCatalogComplete(t *testing.T) {
	for code, g := range factusCatalog {
		if g.Meaning == "" || g.Action == "" {
			t.Errorf("%s: meaning and action are required", code)
		}
		if g.Class != "" && !g.Class.Valid() || g.Verdict != "" && !g.Verdict.Valid() {
			t.Errorf("%s: class %q or verdict %q not in the vocabulary", code, g.Class, g.Verdict)
		}
	}
	for _, code := range []string{
		"90", "FAD06", "FAK24", "FAJ43b", // the DIAN rules PROVIDERS.md names
		"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope",
		"value_error.missing", "type_error.integer", "value_error", "value_error.email", // seed 003's types
	} {
		if _, ok := factusCatalog[code]; !ok {
			t.Errorf("catalog lacks %s", code)
		}
	}
}

func TestFactusDocument(t *testing.T) {
	cases := []struct {
		name, raw      string
		ok             bool
		status         model.Status
		number, refcod string
		code           string
		class          model.Class
	}{
		{"validated", `{"number":"SETP990000203","reference_code":"R-203","status":1,"cufe":"ab","errors":[]}`,
			true, model.StatusAccepted, "SETP990000203", "R-203", "", ""},
		{"validated with a notification", `{"number":"SETP990000203","reference_code":"R-203","status":"1","errors":["Regla: FAJ43b, Notificación: Nombre no corresponde"]}`,
			true, model.StatusAccepted, "SETP990000203", "R-203", "FAJ43b", model.ClassOK},
		{"pending", `{"number":"SETP990000204","reference_code":"R-204","status":0,"errors":null}`,
			true, model.StatusPending, "SETP990000204", "R-204", "", ""},
		{"rejected", `{"number":"SETP990000205","reference_code":"R-205","status":0,"errors":["Regla: FAJ43b, Notificación: x","Regla: FAK24, Rechazo: DV no informado"]}`,
			true, model.StatusRejected, "SETP990000205", "R-205", "FAK24", model.ClassRejected},
		{"rejected as a duplicate", `{"number":"SETP990000206","reference_code":"R-206","status":0,"errors":{"90":"Regla: 90, Rechazo: Documento procesado anteriormente"}}`,
			true, model.StatusRejected, "SETP990000206", "R-206", "90", model.ClassDuplicate},
		{"inside the show envelope", `{"status":"OK","data":{"bill":{"number":"SETP990000207","reference_code":"R-207","status":1}}}`,
			true, model.StatusAccepted, "SETP990000207", "R-207", "", ""},
		{"inside a bare data", `{"data":{"number":"SETP990000208","reference_code":"R-208","status":0}}`,
			true, model.StatusPending, "SETP990000208", "R-208", "", ""},
		{"status unreadable", `{"number":"SETP990000209","status":"x"}`,
			true, model.StatusUnknown, "SETP990000209", "", "", ""},
		{"no number", `{"reference_code":"R-1","status":1}`, false, "", "", "R-1", "", ""},
		{"not json", `<html>`, false, "", "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, f, ok := factusDocument([]byte(c.raw))
			if ok != c.ok || doc.Status != c.status || doc.ID != c.number || doc.Number != c.number {
				t.Fatalf("got ok %v %+v", ok, doc)
			}
			if f.code != c.code || f.class != c.class {
				t.Fatalf("finding %+v, want code %q class %q", f, c.code, c.class)
			}
			if c.class != "" && !strings.Contains(f.message, "Regla: "+c.code) {
				t.Fatalf("finding message %q lacks the rule text", f.message)
			}
			if b, _ := factusBillIn([]byte(c.raw)); b.ReferenceCode != c.refcod {
				t.Fatalf("reference code %q, want %q", b.ReferenceCode, c.refcod)
			}
		})
	}
}

func FuzzDecodeFactus(f *testing.F) {
	for _, c := range factusCases {
		f.Add(c.status, c.body)
	}
	f.Add(200, `{"data":{"bill":{"number":"S1","errors":{"x":[{"y":1}]}}}}`)
	f.Add(422, `{"detail":[{"loc":[null,{},"body",1e400],"msg":3}]}`)
	f.Fuzz(func(t *testing.T, status int, body string) {
		p, err := Decode("factus", Response{Status: status, Method: "POST", Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Class.Valid() || !p.Verdict.Valid() {
			t.Fatalf("class %q verdict %q", p.Class, p.Verdict)
		}
		doc, fd, ok := factusDocument([]byte(body))
		if ok && (doc.ID == "" || !doc.Status.Valid()) {
			t.Fatalf("document %+v", doc)
		}
		if fd.class != "" && !fd.class.Valid() {
			t.Fatalf("finding class %q", fd.class)
		}
	})
}
