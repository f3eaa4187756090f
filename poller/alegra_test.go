package poller

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"emitop/model"
	"emitop/pace"
)

// alegraCase is one response and the problem it must decode to.
type alegraCase struct {
	name    string
	status  int
	method  string
	header  http.Header
	body    string
	class   model.Class
	verdict model.Verdict
	code    string
	wait    time.Duration // checked when > 0
	message string        // a substring the message must hold
	fields  []string
}

func runAlegraCases(t *testing.T, cases []alegraCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Decode("alegra", Response{Status: c.status, Method: c.method, Header: c.header,
				Body: []byte(c.body), Received: rlNow})
			if err != nil {
				t.Fatal(err)
			}
			if p.Class != c.class || p.Verdict != c.verdict || p.Code != c.code {
				t.Fatalf("got class %s verdict %s code %q; want %s %s %q (message %q)",
					p.Class, p.Verdict, p.Code, c.class, c.verdict, c.code, p.Message)
			}
			if c.wait > 0 && (!p.HasWait || p.Wait != c.wait) {
				t.Errorf("wait = %v (%v), want %v", p.Wait, p.HasWait, c.wait)
			}
			if !strings.Contains(p.Message, c.message) {
				t.Errorf("message %q does not hold %q", p.Message, c.message)
			}
			if strings.Join(p.Fields, ",") != strings.Join(c.fields, ",") {
				t.Errorf("fields = %q, want %q", p.Fields, c.fields)
			}
			if p.Meaning == "" || p.Action == "" || p.Provider != "alegra" {
				t.Errorf("no guidance: %+v", p)
			}
		})
	}
}

// TestAlegraStatuses covers every HTTP status of seed 000, and the method rule.
func TestAlegraStatuses(t *testing.T) {
	rl := rlHeader("X-Rate-Limit-Limit", "150", "X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", "17")
	msg := func(s string) string { return `{"message":"` + s + `","code":` + "0" + `}` }
	runAlegraCases(t, []alegraCase{
		{name: "200 ok", status: 200, method: "GET", body: `{"id":"1","status":"open"}`, class: model.ClassOK, verdict: model.VerdictNone},
		{name: "200 list", status: 200, method: "GET", body: `[{"id":1}]`, class: model.ClassOK, verdict: model.VerdictNone},
		{name: "400", status: 400, method: "POST", body: msg("El cliente es obligatorio"), class: model.ClassValidation, verdict: model.VerdictFix, code: "0", message: "cliente"},
		{name: "401", status: 401, method: "GET", body: `{"message":"Unauthorized","code":401}`, class: model.ClassAuth, verdict: model.VerdictReauth, code: "401"},
		{name: "402", status: 402, method: "GET", body: msg("Plan"), class: model.ClassPlan, verdict: model.VerdictEscalate, code: "0"},
		{name: "403", status: 403, method: "POST", body: msg("No tienes permiso"), class: model.ClassPermission, verdict: model.VerdictEscalate, code: "0"},
		{name: "404", status: 404, method: "GET", body: `{"message":"No se encontró la factura","code":404}`, class: model.ClassNotFound, verdict: model.VerdictFix, code: "404"},
		{name: "405", status: 405, method: "DELETE", body: ``, class: model.ClassMethod, verdict: model.VerdictFix},
		{name: "429 waits for the window", status: 429, method: "GET", header: rl, body: `{"message":"Too many requests"}`,
			class: model.ClassRateLimited, verdict: model.VerdictWait, wait: 17 * time.Second},
		{name: "500 on a stamp verifies", status: 500, method: "POST", body: msg("Internal"), class: model.ClassServer, verdict: model.VerdictVerify, code: "0"},
		{name: "500 on a read retries", status: 500, method: "GET", body: msg("Internal"), class: model.ClassServer, verdict: model.VerdictRetry, code: "0"},
		{name: "500 with unknown method is a write", status: 500, body: msg("Internal"), class: model.ClassServer, verdict: model.VerdictVerify, code: "0"},
		{name: "503 read with retry-after waits", status: 503, method: "GET", header: rlHeader("Retry-After", "120"),
			body: "<html><body>Mantenimiento</body></html>", class: model.ClassUnavailable, verdict: model.VerdictWait, wait: 2 * time.Minute},
		{name: "503 write verifies", status: 503, method: "PATCH", body: "", class: model.ClassUnavailable, verdict: model.VerdictVerify},
		{name: "502 read", status: 502, method: "GET", body: "Bad Gateway", class: model.ClassUpstream, verdict: model.VerdictRetry},
	})
}

// TestAlegraCodes covers every stamping code of seed 000 and PROVIDERS.md.
func TestAlegraCodes(t *testing.T) {
	type code struct {
		code    string
		class   model.Class
		verdict model.Verdict // on a POST
	}
	codes := []code{
		{"AEP1001", model.ClassCertificate, model.VerdictEscalate},
		{"AEP1003", model.ClassCertificate, model.VerdictEscalate},
		{"AEP1005", model.ClassCertificate, model.VerdictEscalate},
		{"AEP6008", model.ClassPermission, model.VerdictEscalate},
		{"AEP6009", model.ClassDuplicate, model.VerdictReconcile},
		{"AEP6011", model.ClassValidation, model.VerdictFix},
		{"AEP6012", model.ClassValidation, model.VerdictFix},
		{"AEP6013", model.ClassValidation, model.VerdictFix},
		{"AEP6014", model.ClassValidation, model.VerdictFix},
		{"AEP6015", model.ClassValidation, model.VerdictFix},
		{"AEP6016", model.ClassValidation, model.VerdictFix},
		{"AEP6017", model.ClassValidation, model.VerdictFix},
		{"AEP2011", model.ClassProcessing, model.VerdictVerify},
		{"EPR500", model.ClassUpstream, model.VerdictVerify},
		{"EPR503", model.ClassUpstream, model.VerdictVerify},
		{"3246", model.ClassProcessing, model.VerdictVerify},
	}
	var cases []alegraCase
	for _, c := range codes {
		q := `"` + c.code + `"`
		if c.code == "3246" {
			q = c.code // a number, as Alegra sends it
		}
		cases = append(cases,
			alegraCase{name: c.code + " bare", status: 400, method: "POST", body: `{"message":"m ` + c.code + `","code":` + q + `}`,
				class: c.class, verdict: c.verdict, code: c.code, message: "m"},
			alegraCase{name: c.code + " wrapped", status: 400, method: "POST", body: `{"error":{"message":"m","code":` + q + `,"details":null}}`,
				class: c.class, verdict: c.verdict, code: c.code, message: "m"})
		if c.code != "3246" {
			cases = append(cases, alegraCase{name: c.code + " in the message only", status: 400, method: "POST",
				body: `{"message":"Error en la emisión: ` + c.code + ` - detalle"}`, class: c.class, verdict: c.verdict, code: c.code})
		}
	}
	runAlegraCases(t, cases)
	for _, c := range codes {
		if _, ok := alegraCatalog[c.code]; !ok {
			t.Errorf("%s missing from the catalog", c.code)
		}
	}
	for _, s := range []int{400, 401, 402, 403, 404, 405, 429, 500, 503} {
		if g, ok := alegraCatalog[httpStatusKey(s)]; !ok || g.Meaning == "" || g.Action == "" {
			t.Errorf("HTTP %d has no guidance", s)
		}
	}
}

// TestAlegraCodesOnARead checks that upstream codes leave the verdict to the method.
func TestAlegraCodesOnARead(t *testing.T) {
	runAlegraCases(t, []alegraCase{
		{name: "EPR500 on GET", status: 502, method: "GET", body: `{"code":"EPR500","message":"DIAN"}`,
			class: model.ClassUpstream, verdict: model.VerdictRetry, code: "EPR500"},
		{name: "AEP2011 stays verify on GET", status: 409, method: "GET", body: `{"code":"AEP2011","message":"x"}`,
			class: model.ClassProcessing, verdict: model.VerdictVerify, code: "AEP2011"},
	})
}

// TestAlegraShapes covers every body shape PROVIDERS.md describes for alegra.
func TestAlegraShapes(t *testing.T) {
	runAlegraCases(t, []alegraCase{
		{name: "numeric unknown code keeps the status class", status: 400, method: "POST",
			body: `{"message":"La numeración no es válida","code":3061}`, class: model.ClassValidation, verdict: model.VerdictFix, code: "3061"},
		{name: "known code in message beats an unknown numeric code", status: 400, method: "POST",
			body: `{"message":"Rechazo AEP6009: número duplicado","code":3061}`, class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "AEP6009"},
		{name: "code needs word boundaries", status: 400, method: "POST",
			body: `{"message":"XAEP6009 AEP60 EPR5000 EPR_500 D12345 XD1000 D100"}`, class: model.ClassValidation, verdict: model.VerdictFix},
		// jjuanrivvera/alegra-cli internal/api/errors.go (stampCodeRe): the stamping codes
		// Alegra surfaces include D-codes such as D1000 beside AEP and EPR ones.
		{name: "D-code in the message", status: 400, method: "POST",
			body: `{"message":"Error en la emisión: D1000 - documento no procesado"}`, class: model.ClassValidation, verdict: model.VerdictFix, code: "D1000"},
		{name: "lower-case code", status: 400, method: "POST", body: `{"message":"x","code":"aep1005"}`,
			class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "AEP1005"},
		{name: "error as a string", status: 401, method: "GET", body: `{"error":"Invalid credentials"}`,
			class: model.ClassAuth, verdict: model.VerdictReauth, message: "Invalid credentials"},
		{name: "details as text", status: 400, method: "POST", body: `{"message":"Datos inválidos","code":"x1","details":"client is required"}`,
			class: model.ClassValidation, verdict: model.VerdictFix, code: "X1", message: "Datos inválidos\nclient is required"},
		{name: "details object names fields", status: 400, method: "POST",
			body:  `{"error":{"message":"Datos inválidos","code":1,"details":{"items[0].price":"must be positive","client.identification":"required"}}}`,
			class: model.ClassValidation, verdict: model.VerdictFix, code: "1", message: "items[0].price: must be positive",
			fields: []string{"items.0.price", "client.identification"}},
		{name: "details list", status: 400, method: "POST",
			body:  `{"message":"Datos inválidos","details":[{"field":"numberTemplate/id","message":"required"},"otro"]}`,
			class: model.ClassValidation, verdict: model.VerdictFix, message: "required\notro", fields: []string{"numberTemplate.id"}},
		{name: "stamp answer all success", status: 200, method: "POST",
			body:  `{"data":[{"id":"12","success":true,"emissionStatus":"STAMPED_AND_ACCEPTED","message":"ok"}],"error":[]}`,
			class: model.ClassOK, verdict: model.VerdictNone},
		{name: "stamp answer partial failure", status: 200, method: "POST",
			body: `{"data":[{"id":"12","success":true,"emissionStatus":"STAMPED_AND_ACCEPTED","message":"ok"}],` +
				`"error":[{"id":13,"code":"AEP6016","emissionStatus":"STAMPED_AND_REJECTED","message":"Falta el correo"},` +
				`{"id":"14","code":"AEP1005","emissionStatus":"STAMPED_AND_REJECTED","message":"Certificado vencido"}]}`,
			class: model.ClassValidation, verdict: model.VerdictFix, code: "AEP6016", message: "Falta el correo\n2 of 3 invoices failed to stamp (ids 13, 14)"},
		{name: "stamp answer unknown code on 200 is verified", status: 200, method: "POST",
			body:  `{"data":[],"error":[{"id":"13","code":"X9","emissionStatus":"","message":"Error inesperado"}]}`,
			class: model.ClassUnknown, verdict: model.VerdictVerify, code: "X9", message: "1 of 1 invoices failed"},
		{name: "stamp answer processing", status: 200, method: "POST",
			body:  `{"error":[{"id":"13","code":3246,"message":"La factura ya está en proceso de certificación"}]}`,
			class: model.ClassProcessing, verdict: model.VerdictVerify, code: "3246"},
		{name: "invoice rejected with stamp.error", status: 200, method: "GET",
			body:  `{"id":"77","status":"open","numberTemplate":{"prefix":"FE","number":"77","fullNumber":"FE77"},"stamp":{"legalStatus":"STAMPED_AND_REJECTED","error":{"code":"AEP6011","message":"Número fuera de rango"}}}`,
			class: model.ClassValidation, verdict: model.VerdictFix, code: "AEP6011", message: "fuera de rango"},
		{name: "invoice rejected with an unknown code", status: 200, method: "GET",
			body:  `{"id":"77","stamp":{"legalStatus":"STAMPED_AND_REJECTED","error":{"code":"FAD06","message":"Rechazo: CUFE inválido"}}}`,
			class: model.ClassRejected, verdict: model.VerdictFix, code: "FAD06", message: "Rechazo"},
		{name: "invoice rejected with warnings only", status: 200, method: "GET",
			body:  `{"id":77,"stamp":{"legalStatus":"STAMPED_AND_REJECTED","warnings":["Regla: FAJ43b, Rechazo: nombre","segunda"]}}`,
			class: model.ClassRejected, verdict: model.VerdictFix, code: "FAJ43b", message: "Regla: FAJ43b, Rechazo: nombre\nsegunda"},
		{name: "invoice accepted", status: 200, method: "GET",
			body:  `{"id":"77","stamp":{"legalStatus":"STAMPED_AND_ACCEPTED_WITH_OBSERVATIONS","warnings":["obs"]}}`,
			class: model.ClassOK, verdict: model.VerdictNone},
		{name: "html error page", status: 502, method: "POST", body: "<!DOCTYPE html><h1>502</h1>", class: model.ClassUpstream, verdict: model.VerdictVerify},
		{name: "truncated json", status: 400, method: "POST", body: `{"message":"AEP1001 cert`, class: model.ClassValidation, verdict: model.VerdictFix},
		{name: "wrong types", status: 400, method: "POST", body: `{"message":{"x":1},"code":[1],"error":5,"stamp":"x"}`,
			class: model.ClassValidation, verdict: model.VerdictFix},
		{name: "escape sequences sanitized", status: 400, method: "POST", body: `{"message":"REJECTED\rACCEPTED \u001b[8mhidden\u001b[0m \u202eevil"}`,
			class: model.ClassValidation, verdict: model.VerdictFix, message: "REJECTED␍ACCEPTED hidden evil"},
	})
}

func TestAlegraDocument(t *testing.T) {
	cases := []struct {
		name, raw, id, number string
		status                model.Status
		problem               bool
		code                  string
	}{
		{"draft without stamp", `{"id":1,"status":"draft","numberTemplate":{"prefix":"FE","number":12}}`, "1", "FE12", model.StatusDraft, false, ""},
		{"open never stamped", `{"id":"2","status":"open"}`, "2", "", model.StatusDraft, false, ""},
		{"void", `{"id":"3","status":"void","stamp":{"legalStatus":"STAMPED_AND_ACCEPTED"}}`, "3", "", model.StatusCancelled, false, ""},
		{"pending", `{"id":"4","status":"open","stamp":{"legalStatus":"PENDING"}}`, "4", "", model.StatusPending, false, ""},
		{"waiting", `{"id":"5","stamp":{"legalStatus":"STAMPED_AND_WAITING_RESPONSE"}}`, "5", "", model.StatusPending, false, ""},
		{"accepted", `{"id":"6","numberTemplate":{"fullNumber":"SETP990000203","prefix":"X","number":"1"},"stamp":{"legalStatus":"STAMPED_AND_ACCEPTED","cufe":"ab"}}`,
			"6", "SETP990000203", model.StatusAccepted, false, ""},
		{"accepted with observations", `{"id":"7","stamp":{"legalStatus":"STAMPED_AND_ACCEPTED_WITH_OBSERVATIONS"}}`, "7", "", model.StatusAccepted, false, ""},
		{"rejected", `{"id":8,"stamp":{"legalStatus":"STAMPED_AND_REJECTED","error":{"code":"AEP6009","message":"Regla 90"}}}`, "8", "", model.StatusRejected, true, "AEP6009"},
		{"rejected, code in warning", `{"id":9,"stamp":{"legalStatus":"STAMPED_AND_REJECTED","warnings":[{"code":"AEP6016","message":"Falta email"}]}}`, "9", "", model.StatusRejected, true, "AEP6016"},
		{"cancel waiting", `{"id":"10","stamp":{"legalStatus":"CANCELLED_AND_WAITING_RESPONSE"}}`, "10", "", model.StatusCancelled, false, ""},
		{"cancelled", `{"id":"11","stamp":{"legalStatus":"STAMPED_AND_CANCELLED"}}`, "11", "", model.StatusCancelled, false, ""},
		{"unknown legal status", `{"id":"12","stamp":{"legalStatus":"SOMETHING_NEW"}}`, "12", "", model.StatusUnknown, false, ""},
		{"unknown status no stamp", `{"id":"13","status":"weird"}`, "13", "", model.StatusUnknown, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, f, ok := alegraDocument([]byte(c.raw))
			problem := f.class != ""
			if !ok {
				t.Fatal("an invoice read as no document")
			}
			if doc.ID != c.id || doc.Number != c.number || doc.Status != c.status || doc.Provider != "alegra" {
				t.Fatalf("doc = %+v, want id %q number %q status %s", doc, c.id, c.number, c.status)
			}
			if problem != c.problem || f.code != c.code {
				t.Fatalf("problem %v code %q, want %v %q", problem, f.code, c.problem, c.code)
			}
			if problem && f.class != model.ClassRejected {
				t.Fatalf("finding class %q, want rejected", f.class)
			}
		})
	}
	for _, raw := range []string{"", "[]", "<html>", `{"id":`, "null"} {
		if _, _, problem := alegraDocument([]byte(raw)); problem {
			t.Errorf("alegraDocument(%q) reported a problem", raw)
		}
	}
}

// checkProblem fails when a decoded Problem breaks a promise of Decode.
func checkProblem(t *testing.T, p model.Problem) {
	t.Helper()
	if !p.Class.Valid() || !p.Verdict.Valid() {
		t.Fatalf("invalid class %q or verdict %q", p.Class, p.Verdict)
	}
	if p.Meaning == "" || p.Action == "" {
		t.Fatalf("no guidance for %+v", p)
	}
	if p.HasWait && (p.Wait < 0 || p.Wait > pace.MaxWait) {
		t.Fatalf("wait %v", p.Wait)
	}
	for _, s := range append([]string{p.Code, p.Message}, p.Fields...) {
		for _, r := range s {
			if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7F || (r >= 0x80 && r <= 0x9F) ||
				r == 0x202E || r == 0x2066 || r == 0x200F {
				t.Fatalf("unsanitized %U in %q", r, s)
			}
		}
	}
}

func FuzzDecodeAlegra(f *testing.F) {
	for _, s := range []string{
		`{"message":"x","code":"AEP6009","details":{"a[0]":"b"}}`,
		`{"error":{"message":"m","code":3246}}`,
		`{"data":[{"id":"1","success":true}],"error":[{"id":2,"code":"EPR500","message":"DIAN"}]}`,
		`{"id":"8","status":"open","numberTemplate":{"prefix":"FE","number":8},"stamp":{"legalStatus":"STAMPED_AND_REJECTED","error":{"code":"AEP6011","message":"x"},"warnings":[1,{"code":2}]}}`,
		`{"message":"AEP1001 \u001b[31m\r\u009b"}`, "<html>", `{"a":{"b":"}\""},"c":[1,"]"],"d":2}`, "", `{"error":[1,"x",null]}`, `{"message":["a",1]}`,
	} {
		f.Add(400, s)
	}
	f.Fuzz(func(t *testing.T, status int, body string) {
		p, err := Decode("alegra", Response{Status: status, Body: []byte(body), Received: rlNow})
		if err != nil {
			t.Fatal(err)
		}
		checkProblem(t, p)
		checkPairs(t, []byte(body))
		doc, fd, ok := alegraDocument([]byte(body))
		if ok && fd.class != "" && (doc.Status != model.StatusRejected || fd.class != model.ClassRejected) {
			t.Fatalf("problem on a %s document: %+v", doc.Status, fd)
		}
	})
}
