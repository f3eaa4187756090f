package poller

import (
	"net/http"
	"testing"
	"time"

	"emitop/model"
)

// svdteCases holds every JSON example of seed 001, every code of sv-dte in PROVIDERS.md,
// and the bodies that are not JSON at all.
var svdteCases = []decodeCase{
	// Seed 001, in its order.
	{"seed 401 unauthorized", 401, "POST", nil, `{
  "message": "Unauthorized",
  "statusCode": 401
}`, decodeWant{class: model.ClassAuth, verdict: model.VerdictReauth, code: "", message: "Unauthorized"}},
	{"seed 400 item price", 400, "POST", nil, `{
  "mensaje": "📝 Items inválidos",
  "errores": [
    {
      "item": 1,
      "campo": "precioUni",
      "valor": -10,
      "regla": "El precio unitario debe ser mayor o igual a 0"
    }
  ],
  "statusCode": 400
}`, decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "",
		fields: []string{"items.0.precioUni"}, message: "items.0.precioUni = -10: El precio unitario debe ser mayor o igual a 0"}},
	{"seed 401 expired key", 401, "POST", nil, `{
  "message": "API Key expirada",
  "statusCode": 401
}`, decodeWant{class: model.ClassAuth, verdict: model.VerdictReauth, code: "", message: "API Key expirada"}},
	{"seed 401 deleted key", 401, "GET", nil, `{
  "message": "API Key eliminada",
  "statusCode": 401
}`, decodeWant{class: model.ClassAuth, verdict: model.VerdictEscalate, code: "", message: "API Key eliminada"}},
	{"seed 400 items", 400, "POST", nil, `{
  "mensaje": "📝 Items inválidos",
  "errores": [
    {
      "item": 1,
      "campo": "cantidad",
      "valor": 0,
      "regla": "La cantidad debe ser mayor a 0"
    },
    {
      "item": 2,
      "campo": "descripcion",
      "regla": "La descripción es requerida"
    }
  ],
  "statusCode": 400
}`, decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "",
		fields: []string{"items.0.cantidad", "items.1.descripcion"}, message: "📝 Items inválidos\nitems.0.cantidad = 0: La cantidad debe ser mayor a 0\nitems.1.descripcion: La descripción es requerida"}},
	{"seed 400 payments", 400, "POST", nil, `{
  "mensaje": "💰 Pagos inválidos",
  "errores": [
    {
      "pago": 1,
      "campo": "montoPago",
      "valor": -100,
      "regla": "El monto de pago debe ser mayor a 0"
    }
  ],
  "sugerencia": "Revise los montos de los pagos",
  "statusCode": 400
}`, decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "",
		fields: []string{"pagos.0.montoPago"}, message: "pagos.0.montoPago = -100: El monto de pago debe ser mayor a 0\nRevise los montos de los pagos"}},
	{"seed 400 totals", 400, "POST", nil, `{
  "mensaje": "🧮 Totales incorrectos",
  "esperado": 150.00,
  "recibido": 148.50,
  "diferencia": 1.50,
  "sugerencia": "La diferencia excede la tolerancia de $0.01",
  "statusCode": 400
}`, decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "",
		message: "🧮 Totales incorrectos (esperado 150.00, recibido 148.50, diferencia 1.50)\nLa diferencia excede la tolerancia de $0.01"}},
	{"seed 400 schema", 400, "POST", nil, `{
  "mensaje": "❌ El DTE no cumple con el schema JSON del Ministerio de Hacienda",
  "errores": [
    {
      "path": "/receptor/numDocumento",
      "message": "must match pattern \"^[0-9]{4}-[0-9]{6}-[0-9]{3}-[0-9]$\"",
      "expected": "NIT con formato 0614-010190-103-1"
    }
  ],
  "statusCode": 400
}`, decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "",
		fields: []string{"receptor.numDocumento"}, message: "receptor.numDocumento: must match pattern \"^[0-9]{4}-[0-9]{6}-[0-9]{3}-[0-9]$\" (expected: NIT con formato 0614-010190-103-1)"}},
	{"seed 403 quota", 403, "POST", nil, `{
  "mensaje": "🚫 Cuota de DTEs agotada",
  "usado": 30,
  "limite": 30,
  "plan": "FREE",
  "sugerencia": "Actualiza tu plan para emitir más DTEs este mes",
  "statusCode": 403
}`, decodeWant{class: model.ClassPlan, verdict: model.VerdictEscalate, code: "",
		message: "🚫 Cuota de DTEs agotada (usado 30, limite 30, plan FREE)\nActualiza tu plan"}},
	{"seed 500 ministry rejection", 500, "POST", nil, `{
  "estado": "RECHAZADO",
  "codigoGeneracion": "A1B2C3D4-E5F6-7890-ABCD-EF1234567890",
  "fhProcesamiento": "2025-01-16T10:30:05.000Z",
  "codigoMsg": "801",
  "descripcionMsg": "Certificado de firma inválido o expirado",
  "observaciones": [
    "El certificado X.509 ha expirado",
    "Debe renovar su certificado digital ante el Ministerio de Hacienda"
  ],
  "clasificaMsg": "ERROR"
}`, decodeWant{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "801",
		message: "Certificado de firma inválido o expirado\nEl certificado X.509 ha expirado\nDebe renovar"}},
	{"seed 429 throttler", 429, "POST", nil, `{
  "message": "ThrottlerException: Too Many Requests",
  "statusCode": 429
}`, decodeWant{class: model.ClassRateLimited, verdict: model.VerdictWait, code: "", message: "ThrottlerException"}},
	{"429 with stock NestJS retry header", 429, "POST", http.Header{"Retry-After-Short": {"1"}},
		`{"message":"ThrottlerException: Too Many Requests","statusCode":429}`,
		decodeWant{class: model.ClassRateLimited, verdict: model.VerdictWait, code: "", hasWait: true, wait: time.Second}},

	// The Ministry's codes, as the gateway and the Ministry document them.
	{"001 processed", 200, "POST", nil, `{"estado":"PROCESADO","codigoGeneracion":"A1B2C3D4-E5F6-4890-ABCD-EF1234567890","numeroControl":"DTE-01-M001P001-000000000000001","selloRecibido":"2025A1B2C3","fhProcesamiento":"16/01/2025 10:30:05","codigoMsg":"001","descripcionMsg":"RECIBIDO","observaciones":[],"clasificaMsg":"10"}`,
		decodeWant{class: model.ClassOK, verdict: model.VerdictNone, code: "001", message: "RECIBIDO"}},
	{"002 with observations", 200, "POST", nil, `{"estado":"PROCESADO","codigoGeneracion":"A1B2C3D4-E5F6-4890-ABCD-EF1234567890","codigoMsg":"002","descripcionMsg":"RECIBIDO CON OBSERVACIONES","observaciones":["[receptor.correo] CORREO NO VALIDO"],"clasificaMsg":"10"}`,
		decodeWant{class: model.ClassOK, verdict: model.VerdictNone, code: "002", fields: []string{"receptor.correo"}, message: "CORREO NO VALIDO"}},
	{"004 duplicate on 200", 200, "POST", nil, `{"estado":"RECHAZADO","codigoGeneracion":"A1B2C3D4-E5F6-4890-ABCD-EF1234567890","codigoMsg":"004","descripcionMsg":"[identificacion.codigoGeneracion] YA EXISTE UN REGISTRO CON ESE VALOR","observaciones":[]}`,
		decodeWant{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "004", fields: []string{"identificacion.codigoGeneracion"}, message: "YA EXISTE"}},
	{"802 control number duplicated", 500, "POST", nil, `{"estado":"RECHAZADO","codigoMsg":"802","descripcionMsg":"Número de control duplicado","observaciones":[]}`,
		decodeWant{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "802", message: "Número de control duplicado"}},
	{"803 establishment", 500, "POST", nil, `{"estado":"RECHAZADO","codigoMsg":"803","descripcionMsg":"Establecimiento no registrado"}`,
		decodeWant{class: model.ClassRejected, verdict: model.VerdictFix, code: "803", message: "Establecimiento"}},
	{"804 issuer nit", 500, "POST", nil, `{"estado":"RECHAZADO","codigoMsg":"804","descripcionMsg":"NIT del emisor inválido","observaciones":["[emisor.nit] NO REGISTRADO"]}`,
		decodeWant{class: model.ClassRejected, verdict: model.VerdictFix, code: "804", fields: []string{"emisor.nit"}, message: "NIT del emisor"}},
	{"805 signature", 500, "POST", nil, `{"estado":"RECHAZADO","codigoMsg":"805","descripcionMsg":"Firma digital inválida"}`,
		decodeWant{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "805", message: "Firma digital"}},
	{"999 not found on status query", 200, "GET", nil, `{"codigoMsg":"999","descripcionMsg":"NO SE ENCONTRÓ REGISTRO"}`,
		decodeWant{class: model.ClassNotFound, verdict: model.VerdictRetry, code: "999", message: "NO SE ENCONTR"}},
	{"unknown ministry code rejected", 500, "POST", nil, `{"estado":"RECHAZADO","codigoMsg":"060","descripcionMsg":"[cuerpoDocumento[1].precioUni] VALOR NO VALIDO"}`,
		decodeWant{class: model.ClassRejected, verdict: model.VerdictFix, code: "060", fields: []string{"cuerpoDocumento.1.precioUni"}, message: "VALOR NO VALIDO"}},
	{"numeric codigoMsg", 200, "POST", nil, `{"estado":"procesado","codigoMsg":1,"descripcionMsg":"RECIBIDO"}`,
		decodeWant{class: model.ClassOK, verdict: model.VerdictNone, code: "001", message: "RECIBIDO"}},

	// The statuses of seed 001 when the body is the gateway's plain NestJS shape.
	{"404 nest", 404, "GET", nil, `{"message":"Cannot GET /factura/x","error":"Not Found","statusCode":404}`,
		decodeWant{class: model.ClassNotFound, verdict: model.VerdictFix, code: "", message: "Cannot GET"}},
	{"403 nest", 403, "POST", nil, `{"message":"Forbidden resource","statusCode":403}`,
		decodeWant{class: model.ClassPlan, verdict: model.VerdictEscalate, code: "", message: "Forbidden"}},
	{"400 nest list", 400, "POST", nil, `{"message":["dte must be an object","tipoDte should not be empty"],"error":"Bad Request","statusCode":400}`,
		decodeWant{class: model.ClassValidation, verdict: model.VerdictFix, code: "", message: "dte must be an object\ntipoDte should not be empty"}},

	// The method rule: a 500 without the Ministry's answer.
	{"500 nest on GET", 500, "GET", nil, `{"statusCode":500,"message":"Internal server error"}`,
		decodeWant{class: model.ClassServer, verdict: model.VerdictRetry, code: "", message: "Internal server error"}},
	{"500 nest on POST", 500, "POST", nil, `{"statusCode":500,"message":"Internal server error"}`,
		decodeWant{class: model.ClassServer, verdict: model.VerdictVerify, code: "", message: "Internal server error"}},
	{"500 nest, method unknown", 500, "", nil, `{"statusCode":500,"message":"Internal server error"}`,
		decodeWant{class: model.ClassServer, verdict: model.VerdictVerify, code: "", message: "Internal server error"}},

	// Bodies that are not JSON: the status decides.
	{"html 502 on POST", 502, "POST", nil, "<html><body><h1>502 Bad Gateway</h1></body></html>",
		decodeWant{class: model.ClassUpstream, verdict: model.VerdictVerify}},
	{"empty 500 on GET", 500, "GET", nil, "", decodeWant{class: model.ClassServer, verdict: model.VerdictRetry}},
	{"truncated 400", 400, "POST", nil, `{"mensaje":"📝 Items inválidos","errores":[{"item":1,`,
		decodeWant{class: model.ClassValidation, verdict: model.VerdictFix}},
	{"bare array 503 on GET", 503, "GET", nil, `["down"]`, decodeWant{class: model.ClassUnavailable, verdict: model.VerdictRetry}},
	{"list page is ok", 200, "GET", nil, `{"data":[{"estado":"RECHAZADO","codigoMsg":"801"}],"page":1,"total":1}`,
		decodeWant{class: model.ClassOK, verdict: model.VerdictNone}},
}

func TestDecodeSVDTE(t *testing.T) {
	runDecodeCases(t, svdteName, svdteCases)
}

func TestSVDTEDocument(t *testing.T) {
	cases := []struct {
		name       string
		raw        string
		ok         bool
		want       model.Document
		code       string
		findsClass model.Class // the finding's own class, before the catalog
		problem    model.Class // after the shared steps
	}{
		{"rejected with dte", `{"estado":"RECHAZADO","codigoGeneracion":"A1B2C3D4-E5F6-4890-ABCD-EF1234567890","numeroControl":"DTE-01-M001P001-000000000000007","codigoMsg":"801","descripcionMsg":"Certificado de firma inválido o expirado","observaciones":["El certificado X.509 ha expirado"],"dte":{"identificacion":{"tipoDte":"01"}}}`,
			true, model.Document{Provider: "sv-dte", ID: "A1B2C3D4-E5F6-4890-ABCD-EF1234567890", Number: "DTE-01-M001P001-000000000000007", Status: model.StatusRejected},
			"801", model.ClassRejected, model.ClassCertificate},
		{"processed", `{"estado":"PROCESADO","codigoGeneracion":"B1B2C3D4-E5F6-4890-ABCD-EF1234567890","numeroControl":"DTE-01-M001P001-000000000000008","codigoMsg":"002","observaciones":["[receptor.correo] CORREO NO VALIDO"]}`,
			true, model.Document{Provider: "sv-dte", ID: "B1B2C3D4-E5F6-4890-ABCD-EF1234567890", Number: "DTE-01-M001P001-000000000000008", Status: model.StatusAccepted},
			"002", model.ClassOK, model.ClassOK},
		{"processed cleanly", `{"estado":"PROCESADO","codigoGeneracion":"D1B2C3D4-E5F6-4890-ABCD-EF1234567890","numeroControl":"DTE-01-M001P001-000000000000010","codigoMsg":"001","descripcionMsg":"RECIBIDO","observaciones":[]}`,
			true, model.Document{Provider: "sv-dte", ID: "D1B2C3D4-E5F6-4890-ABCD-EF1234567890", Number: "DTE-01-M001P001-000000000000010", Status: model.StatusAccepted},
			"", "", ""},
		{"ids only in the dte", `{"dte":{"identificacion":{"codigoGeneracion":"C1B2C3D4-E5F6-4890-ABCD-EF1234567890","numeroControl":"DTE-03-M001P001-000000000000009"}}}`,
			true, model.Document{Provider: "sv-dte", ID: "C1B2C3D4-E5F6-4890-ABCD-EF1234567890", Number: "DTE-03-M001P001-000000000000009", Status: model.StatusPending},
			"", "", ""},
		{"hostile id kept exactly, number sanitized", `{"estado":"RECHAZADO","codigoGeneracion":"AB\rOK","numeroControl":"\u001b[8mX","codigoMsg":"803","descripcionMsg":"Establecimiento no registrado"}`,
			true, model.Document{Provider: "sv-dte", ID: "AB\rOK", Number: "X", Status: model.StatusRejected},
			"803", model.ClassRejected, model.ClassRejected},
		{"no id", `{"estado":"RECHAZADO","codigoMsg":"801"}`, false, model.Document{}, "", "", ""},
		{"not json", `<html>`, false, model.Document{}, "", "", ""},
		{"array", `[{"codigoGeneracion":"X"}]`, false, model.Document{}, "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, f, ok := svdteDocument([]byte(c.raw))
			if ok != c.ok || doc != c.want {
				t.Fatalf("svdteDocument = %+v, %v; want %+v, %v", doc, ok, c.want, c.ok)
			}
			if f.code != c.code || f.class != c.findsClass {
				t.Fatalf("finding code %q class %q, want %q %q", f.code, f.class, c.code, c.findsClass)
			}
			if f.class == "" {
				return
			}
			p := svdteDialect.finish(Response{Method: "GET"}, f)
			if p.Class != c.problem || p.Message == "" {
				t.Fatalf("problem %s %q, want class %s and the Ministry's reasons", p.Class, p.Message, c.problem)
			}
		})
	}
}

func TestDotPath(t *testing.T) {
	cases := map[string]string{
		"/receptor/nit":                "receptor.nit",
		"receptor.nit":                 "receptor.nit",
		"/cuerpoDocumento/0/precioUni": "cuerpoDocumento.0.precioUni",
		"lines[2].unit_price":          "lines.2.unit_price",
		`a["b"].c`:                     "a.b.c",
		"/a~1b/c~0d":                   "a/b.c~d",
		"issue_date":                   "issue_date",
		"":                             "",
		"/":                            "",
		" .x.. ":                       "x",
	}
	for in, want := range cases {
		if got := dotPath(in); got != want {
			t.Errorf("dotPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzDecodeSVDTE(f *testing.F) {
	caseSeeds(f, svdteCases)
	f.Fuzz(func(t *testing.T, status int, method string, body []byte) {
		p, err := Decode(svdteName, Response{Status: status, Method: method, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		checkSafeProblem(t, p)
		if doc, _, ok := svdteDocument(body); ok {
			if !doc.Status.Valid() || doc.ID == "" {
				t.Fatalf("document %+v", doc)
			}
			checkSafeText(t, doc.ID, false)
			checkSafeText(t, doc.Number, false)
		}
	})
}
