package poller

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"emitop/model"
)

// alforseCase is one Alforse response and what it must decode to.
type alforseCase struct {
	name    string
	status  int
	method  string
	body    string
	class   model.Class
	verdict model.Verdict
	code    string
	fields  []string
}

// alforseNest is a NestJS default body.
func alforseNest(status int, message, errText string) string {
	return fmt.Sprintf(`{"statusCode":%d,"message":%q,"error":%q}`, status, message, errText)
}

// alforseCases holds both JSON examples of seed 004, every message of its authentication
// and security table, one case per HTTP status it lists, then shapes the seed describes.
var alforseCases = []alforseCase{
	{"seed nest default", 400, "PATCH",
		`{"statusCode": 400, "message": "Validation failed", "error": "Bad Request"}`,
		model.ClassValidation, model.VerdictFix, "", nil},
	{"seed domain error", 403, "POST",
		`{"error": {"code": "PLAN_FEATURE_NOT_ENABLED", "message": "Feature is not enabled for this plan", "details": {"feature": "workflowAutomation"}}}`,
		model.ClassPlan, model.VerdictEscalate, "PLAN_FEATURE_NOT_ENABLED", nil},

	// Seed 004, "Authentication and security", every message.
	{"human verification required", 400, "POST", alforseNest(400, "Human verification is required", "Bad Request"), model.ClassAuth, model.VerdictEscalate, "", nil},
	{"human verification failed", 400, "POST", alforseNest(400, "Human verification failed", "Bad Request"), model.ClassAuth, model.VerdictEscalate, "", nil},
	{"human verification action", 400, "POST", alforseNest(400, "Human verification action is invalid", "Bad Request"), model.ClassAuth, model.VerdictEscalate, "", nil},
	{"human verification hostname", 400, "POST", alforseNest(400, "Human verification hostname is invalid", "Bad Request"), model.ClassAuth, model.VerdictEscalate, "", nil},
	{"invitation token required", 400, "POST", alforseNest(400, "Invitation token is required", "Bad Request"), model.ClassValidation, model.VerdictFix, "", nil},
	{"invitation not pending", 400, "POST", alforseNest(400, "Invitation is not pending", "Bad Request"), model.ClassValidation, model.VerdictFix, "", nil},
	{"invitation expired", 400, "POST", alforseNest(400, "Invitation has expired", "Bad Request"), model.ClassValidation, model.VerdictFix, "", nil},
	{"reset token invalid", 400, "POST", alforseNest(400, "Password reset token is invalid", "Bad Request"), model.ClassValidation, model.VerdictFix, "", nil},
	{"reset token expired", 400, "POST", alforseNest(400, "Password reset token has expired", "Bad Request"), model.ClassValidation, model.VerdictFix, "", nil},
	{"unsupported sso provider", 400, "GET", alforseNest(400, "Unsupported SSO provider", "Bad Request"), model.ClassPermission, model.VerdictEscalate, "", nil},
	{"unsupported sso client", 400, "GET", alforseNest(400, "Unsupported SSO client", "Bad Request"), model.ClassPermission, model.VerdictEscalate, "", nil},
	{"sso not configured", 400, "GET", alforseNest(400, "Google SSO is not configured", "Bad Request"), model.ClassPermission, model.VerdictEscalate, "", nil},
	{"missing bearer token", 401, "GET", alforseNest(401, "Missing bearer token", "Unauthorized"), model.ClassAuth, model.VerdictReauth, "", nil},
	{"expired access token", 401, "GET", alforseNest(401, "Invalid or expired access token", "Unauthorized"), model.ClassAuth, model.VerdictReauth, "", nil},
	{"invalid tenant token", 401, "GET", alforseNest(401, "Invalid tenant access token", "Unauthorized"), model.ClassAuth, model.VerdictReauth, "", nil},
	{"invalid credentials", 401, "POST", alforseNest(401, "Invalid credentials", "Unauthorized"), model.ClassAuth, model.VerdictEscalate, "", nil},
	{"invalid mfa code", 401, "POST", alforseNest(401, "Invalid MFA code", "Unauthorized"), model.ClassAuth, model.VerdictReauth, "", nil},
	{"invalid refresh token", 401, "POST", alforseNest(401, "Invalid refresh token", "Unauthorized"), model.ClassAuth, model.VerdictReauth, "", nil},
	{"refresh token revoked", 401, "POST", alforseNest(401, "Refresh token has been revoked", "Unauthorized"), model.ClassAuth, model.VerdictReauth, "", nil},
	{"membership inactive", 401, "GET", alforseNest(401, "Tenant membership is no longer active", "Unauthorized"), model.ClassAuth, model.VerdictEscalate, "", nil},
	{"role inactive", 401, "GET", alforseNest(401, "Tenant role is no longer active", "Unauthorized"), model.ClassAuth, model.VerdictEscalate, "", nil},
	{"user inactive", 401, "GET", alforseNest(401, "User is not active", "Unauthorized"), model.ClassAuth, model.VerdictEscalate, "", nil},
	{"origin required", 403, "PATCH", alforseNest(403, "Browser write requests require an origin or referer", "Forbidden"), model.ClassPermission, model.VerdictEscalate, "", nil},
	{"origin not allowed", 403, "PATCH", alforseNest(403, "Browser write request origin is not allowed", "Forbidden"), model.ClassPermission, model.VerdictEscalate, "", nil},
	{"signature invalid", 403, "PATCH", alforseNest(403, "API request signature is invalid", "Forbidden"), model.ClassPermission, model.VerdictEscalate, "", nil},
	{"login rate limited", 429, "POST", alforseNest(429, "Too many requests", "Too Many Requests"), model.ClassRateLimited, model.VerdictWait, "", nil},
	{"verification unavailable", 503, "POST", alforseNest(503, "Human verification is temporarily unavailable", "Service Unavailable"), model.ClassUnavailable, model.VerdictVerify, "", nil},

	// Seed 004, "HTTP status codes", the ones not met above.
	{"payment not found", 404, "GET", alforseNest(404, "Payment not found", "Not Found"), model.ClassNotFound, model.VerdictFix, "", nil},
	{"unique value exists", 409, "POST", alforseNest(409, "Stage code already exists", "Conflict"), model.ClassConflict, model.VerdictFix, "", nil},
	{"invoice number exists", 409, "PATCH", alforseNest(409, "Invoice number already exists", "Conflict"), model.ClassDuplicate, model.VerdictReconcile, "", nil},
	{"domain rule", 422, "PATCH", alforseNest(422, "Contract import exceeds 1000 rows", "Unprocessable Entity"), model.ClassValidation, model.VerdictFix, "", nil},
	{"server error on a write", 500, "PATCH", alforseNest(500, "Internal server error", "Internal Server Error"), model.ClassServer, model.VerdictVerify, "", nil},
	{"server error on a read", 500, "GET", alforseNest(500, "Internal server error", "Internal Server Error"), model.ClassServer, model.VerdictRetry, "", nil},
	{"storage unavailable on a read", 503, "GET", alforseNest(503, "Object storage unavailable", "Service Unavailable"), model.ClassUnavailable, model.VerdictRetry, "", nil},

	// Shapes and codes.
	{"class-validator messages", 400, "PATCH",
		`{"statusCode":400,"message":["invoiceAmount must be a positive number","invoiceDate must be a valid ISO 8601 date string","items.0.price should not be empty","property foo should not exist","each value in tags must be a string","Invoice has expired"],"error":"Bad Request"}`,
		model.ClassValidation, model.VerdictFix, "", []string{"invoiceAmount", "invoiceDate", "items.0.price", "foo", "tags"}},
	{"required fields in details", 422, "PATCH",
		`{"error":{"code":"REQUIRED_FIELDS_MISSING","message":"Tenant rules require additional contract fields","details":{"fields":["signedAt","counterparty.taxId"]}}}`,
		model.ClassValidation, model.VerdictFix, "REQUIRED_FIELDS_MISSING", []string{"signedAt", "counterparty.taxId"}},
	{"invoice exceeds target", 400, "PATCH",
		`{"statusCode":400,"error":{"code":"INVOICE_AMOUNT_EXCEEDS_TARGET","message":"Cumulative invoice amount would exceed the payment target","details":{"field":"invoiceAmount","target":"1500.00"}}}`,
		model.ClassValidation, model.VerdictFix, "INVOICE_AMOUNT_EXCEEDS_TARGET", []string{"invoiceAmount"}},
	{"scanner down on a write", 503, "POST",
		`{"error":{"code":"FILE_SCAN_REQUEST_FAILED","message":"Scanner request failed"}}`,
		model.ClassUpstream, model.VerdictVerify, "FILE_SCAN_REQUEST_FAILED", nil},
	{"scanner down on a read", 503, "GET",
		`{"error":{"code":"FILE_SCAN_REQUEST_FAILED","message":"Scanner request failed"}}`,
		model.ClassUpstream, model.VerdictRetry, "FILE_SCAN_REQUEST_FAILED", nil},
	{"owner scope", 422, "POST",
		`{"error":{"code":"OWNER_SCOPE_RESTRICTED","message":"Sales users can only own their contracts"}}`,
		model.ClassPermission, model.VerdictFix, "OWNER_SCOPE_RESTRICTED", nil},
	{"receivables open", 422, "POST",
		`{"error":{"code":"WORKFLOW_RECEIVABLES_OPEN","message":"Transition requires receivables to be closed"}}`,
		model.ClassConflict, model.VerdictFix, "WORKFLOW_RECEIVABLES_OPEN", nil},
	{"message as a domain object", 422, "POST",
		`{"statusCode":422,"message":{"code":"WORKFLOW_NOTE_REQUIRED","message":"Transition requires a note"},"error":"Unprocessable Entity"}`,
		model.ClassValidation, model.VerdictFix, "WORKFLOW_NOTE_REQUIRED", nil},
	{"unknown code keeps the status class", 422, "POST",
		`{"error":{"code":"SOMETHING_NEW","message":"New rule"}}`,
		model.ClassValidation, model.VerdictFix, "SOMETHING_NEW", nil},
	{"html from a proxy on a write", 502, "PATCH", `<html><body>502 Bad Gateway</body></html>`,
		model.ClassUpstream, model.VerdictVerify, "", nil},
	{"empty on a read", 500, "GET", ``, model.ClassServer, model.VerdictRetry, "", nil},
	{"truncated", 400, "PATCH", `{"statusCode":400,"message":["invoiceAmount must`, model.ClassValidation, model.VerdictFix, "", nil},
	{"payments page", 200, "GET", `{"data":[{"id":"pay_1","invoiceNo":null}],"total":1}`, model.ClassOK, model.VerdictNone, "", nil},
	{"payment with an exception", 200, "GET",
		`{"id":"pay_2","reference":"PAY-2","invoiceNo":"FV-2","reconciliationStatus":"exception","reconciliationNote":"PLAN_FEATURE_NOT_ENABLED: Feature is not enabled for this plan"}`,
		model.ClassPlan, model.VerdictEscalate, "PLAN_FEATURE_NOT_ENABLED", nil},
	{"payment with an unknown exception", 200, "PATCH",
		`{"id":"pay_3","invoiceNo":"FV-3","reconciliationStatus":"exception","reconciliationNote":"NEW_RULE: the amount received does not match"}`,
		model.ClassRejected, model.VerdictFix, "", nil},
	{"matched payment", 200, "PATCH",
		`{"id":"pay_4","invoiceNo":"FV-4","reconciliationStatus":"matched","reconciliationNote":null}`,
		model.ClassOK, model.VerdictNone, "", nil},
}

func TestDecodeAlforse(t *testing.T) {
	for _, c := range alforseCases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Decode("alforse", Response{Status: c.status, Method: c.method, Body: []byte(c.body)})
			if err != nil {
				t.Fatal(err)
			}
			if p.Class != c.class || p.Verdict != c.verdict || p.Code != c.code || !slices.Equal(p.Fields, c.fields) {
				t.Fatalf("got class %s verdict %s code %q fields %q; want %s %s %q %q",
					p.Class, p.Verdict, p.Code, p.Fields, c.class, c.verdict, c.code, c.fields)
			}
		})
	}
}

// Every JSON example of seed 004 is a case of the table above.
func TestAlforseSeedExamplesCovered(t *testing.T) {
	bodies := map[string]bool{}
	for _, c := range alforseCases {
		bodies[compactJSON(c.body)] = true
	}
	examples := examplesInSeed(t, "004_b6a64611a4ab49b7.txt")
	for _, ex := range examples {
		if !bodies[ex] {
			t.Errorf("seed 004 example has no case: %s", ex)
		}
	}
	if len(examples) != 2 {
		t.Fatalf("found %d examples in seed 004, expected 2", len(examples))
	}
}

// seedCodes are the business codes of seed 004: the first column of its code tables.
func seedCodes(t *testing.T) []string {
	t.Helper()
	text, err := os.ReadFile("testdata/seeds/004_b6a64611a4ab49b7.txt")
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(string(text), -1) {
		codes = append(codes, m[1])
	}
	return codes
}

// The catalog holds exactly the codes of seed 004 and the keys of the login's MFA answer
// (documented on docs.alforse.com) and of its human verification (seed 004's auth table),
// and each code decodes to its guidance.
func TestAlforseEveryCode(t *testing.T) {
	codes := seedCodes(t)
	if len(codes) != 54 {
		t.Fatalf("found %d codes in seed 004, expected 54", len(codes))
	}
	for _, code := range codes {
		g, ok := alforseCatalog[code]
		if !ok {
			t.Errorf("catalog lacks %s", code)
			continue
		}
		if g.Meaning == "" || g.Action == "" || !g.Class.Valid() || g.Verdict != "" && !g.Verdict.Valid() {
			t.Errorf("%s: incomplete guidance %+v", code, g)
		}
		body := fmt.Sprintf(`{"error":{"code":%q,"message":"provider text","details":{}}}`, code)
		p, _ := Decode("alforse", Response{Status: 400, Method: "PATCH", Body: []byte(body)})
		want := g.Verdict
		if want == "" {
			want = model.VerdictFor(g.Class, "PATCH", false)
		}
		if p.Code != code || p.Class != g.Class || p.Verdict != want || p.Meaning != g.Meaning || p.Action != g.Action || p.Message != "provider text" {
			t.Errorf("%s decoded to %+v", code, p)
		}
	}
	seed := map[string]bool{alforseMFA: true, alforseHuman: true}
	for _, c := range codes {
		seed[c] = true
	}
	var extra []string
	for code := range alforseCatalog {
		if !seed[code] {
			extra = append(extra, code)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("catalog codes not in seed 004: %v", extra)
	}
}

// Plan codes escalate; what the seed says to fix, fixes.
func TestAlforseCodeFamilies(t *testing.T) {
	for code, g := range alforseCatalog {
		v := g.Verdict
		if v == "" {
			v = model.VerdictFor(g.Class, "PATCH", false)
		}
		switch {
		case strings.HasPrefix(code, "PLAN_"):
			if g.Class != model.ClassPlan || v != model.VerdictEscalate {
				t.Errorf("%s: %s %s", code, g.Class, v)
			}
		case strings.HasPrefix(code, "AMOUNT_"), strings.HasPrefix(code, "DYNAMIC_"), strings.HasPrefix(code, "UPLOAD_"):
			if v != model.VerdictFix {
				t.Errorf("%s: %s %s", code, g.Class, v)
			}
		}
	}
}

func TestAlforseMessageKept(t *testing.T) {
	p, _ := Decode("alforse", Response{Status: 403, Body: []byte(alforseCases[1].body)})
	want := "Feature is not enabled for this plan\ndetails: {\"feature\":\"workflowAutomation\"}"
	if p.Message != want {
		t.Fatalf("message %q, want %q", p.Message, want)
	}
	p, _ = Decode("alforse", Response{Status: 400, Body: []byte(`{"statusCode":400,"message":["amount must be positive","note\u001b[2J must be short"]}`)})
	if p.Message != "amount must be positive\nnote must be short" {
		t.Fatalf("message %q", p.Message)
	}
}

func TestAlforseDocument(t *testing.T) {
	cases := []struct {
		name, raw  string
		ok         bool
		status     model.Status
		id, number string
		code, msg  string
		class      model.Class
	}{
		{"awaiting its invoice", `{"id":"pay_01","reference":"PAY-2024-0001","amount":"1500.00","invoiceNo":null,"reconciliationStatus":"pending"}`,
			true, model.StatusPending, "pay_01", "PAY-2024-0001", "", "", ""},
		{"invoiced", `{"id":42,"reference":"PAY-2024-0002","invoiceNo":"FV-1001","invoiceAmount":"1500.00","reconciliationStatus":"matched"}`,
			true, model.StatusAccepted, "42", "FV-1001", "", "", ""},
		{"reconciliation exception", `{"id":"pay_03","reference":"PAY-3","invoiceNo":"FV-1002","reconciliationStatus":"exception","reconciliationNote":"Invoice total exceeds the receivable"}`,
			true, model.StatusRejected, "pay_03", "FV-1002", "", "Invoice total exceeds the receivable", model.ClassRejected},
		{"reconciliation note quoting a code", `{"id":"pay_08","reference":"PAY-8","invoiceNo":"FV-1008","reconciliationStatus":"exception","reconciliationNote":"FILE_SCAN_NOT_CLEAN: the invoice file has not passed a clean scan."}`,
			true, model.StatusRejected, "pay_08", "FV-1008", "FILE_SCAN_NOT_CLEAN", "FILE_SCAN_NOT_CLEAN: the invoice file has not passed a clean scan.", model.ClassRejected},
		{"exception without a reason", `{"id":"pay_04","reference":"PAY-4","reconciliationStatus":"EXCEPTION"}`,
			true, model.StatusRejected, "pay_04", "PAY-4", "", "", model.ClassRejected},
		{"cancelled", `{"id":"pay_05","reference":"PAY-5","status":"cancelled"}`,
			true, model.StatusCancelled, "pay_05", "PAY-5", "", "", ""},
		{"wrong types skipped", `{"id":"pay_06","reference":7,"invoiceNo":"FV-9","status":{}}`,
			true, model.StatusAccepted, "pay_06", "FV-9", "", "", ""},
		{"no id", `{"reference":"PAY-7"}`, false, "", "", "", "", "", ""},
		{"not json", `<html>`, false, "", "", "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, f, ok := alforseDocument([]byte(c.raw))
			if ok != c.ok || doc.Status != c.status || doc.ID != c.id || doc.Number != c.number {
				t.Fatalf("got ok %v %+v", ok, doc)
			}
			if ok && doc.Provider != "alforse" {
				t.Fatalf("provider %q", doc.Provider)
			}
			if f.code != c.code || f.message != c.msg || f.class != c.class {
				t.Fatalf("finding %+v", f)
			}
		})
	}
}

func FuzzDecodeAlforse(f *testing.F) {
	for _, c := range alforseCases {
		f.Add(c.status, c.body)
	}
	f.Add(200, `{"id":1e400,"invoiceNo":"FV-1","reconciliationStatus":"exception"}`)
	f.Add(422, `{"error":{"code":7,"message":[1,{}],"details":[]},"message":{"x":[]}}`)
	f.Fuzz(func(t *testing.T, status int, body string) {
		p, err := Decode("alforse", Response{Status: status, Method: "PATCH", Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Class.Valid() || !p.Verdict.Valid() {
			t.Fatalf("class %q verdict %q", p.Class, p.Verdict)
		}
		doc, fd, ok := alforseDocument([]byte(body))
		if ok && (doc.ID == "" || !doc.Status.Valid()) {
			t.Fatalf("document %+v", doc)
		}
		if fd.class != "" && !fd.class.Valid() {
			t.Fatalf("finding class %q", fd.class)
		}
	})
}
