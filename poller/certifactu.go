package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"emitop/model"
)

// certifactuName is the provider name of Certifactu (Spain, VeriFactu).
const certifactuName = "certifactu"

// certifactuDialect is Certifactu (PROVIDERS.md, "certifactu"; seed 002): an API key, 100
// requests a minute per key.
var certifactuDialect = &Dialect{
	name:    certifactuName,
	keys:    secretKeys("api_key"),
	windows: []Limit{{Name: "", Max: 100, Per: time.Minute}},
	auth:    apiKeyAuth,
	catalog: certifactuCatalog(), body: certifactuBody,
	document: certifactuDocument, open: certifactuOpen, readPath: certifactuReadPath,
	resend: certifactuResend,
}

// Certifactu's own error codes (seed 002).
const (
	certifactuInvalidKey = "INVALID_API_KEY"
	certifactuMissing    = "MISSING_FIELD"
	certifactuNIF        = "NIF_MISMATCH"
	certifactuDuplicate  = "DUPLICATE_INVOICE"
	certifactuRateLimit  = "RATE_LIMITED"
)

// certifactuCodes is what Certifactu's error codes and documented HTTP statuses mean.
var certifactuCodes = map[string]model.Guidance{
	certifactuInvalidKey: {Class: model.ClassAuth, Verdict: model.VerdictReauth, Meaning: "The API key is missing or invalid.", Action: "Check the account's X-API-Key; put a valid key in its configuration, then repeat."},
	certifactuMissing:    {Class: model.ClassValidation, Verdict: model.VerdictFix, Meaning: "A required field of the invoice is missing.", Action: "Fill in the field named, then resend."},
	certifactuNIF:        {Class: model.ClassPermission, Verdict: model.VerdictEscalate, Meaning: "The invoice's issuer NIF is not the one the API key belongs to.", Action: "Use the API key of the issuer's account, or ask the account owner to authorise this NIF."},
	certifactuDuplicate:  {Class: model.ClassDuplicate, Verdict: model.VerdictReconcile, Meaning: "Certifactu already holds an invoice with this series number for this issuer; its id is in the message.", Action: "Load the existing invoice by that id; never resend the same series number."},
	certifactuRateLimit:  {Class: model.ClassRateLimited, Verdict: model.VerdictWait, Meaning: "The key's rate limit (100 requests a minute) is spent.", Action: "Wait retry_after seconds, then repeat."},

	"HTTP 400": {Class: model.ClassValidation, Verdict: model.VerdictFix, Meaning: "The request's data is wrong: bad format or missing fields.", Action: "Correct the request, then resend."},
	"HTTP 401": {Class: model.ClassAuth, Verdict: model.VerdictReauth, Meaning: "The API key is missing or invalid.", Action: "Check the account's X-API-Key, then repeat."},
	"HTTP 403": {Class: model.ClassPermission, Verdict: model.VerdictEscalate, Meaning: "The API key may not do this (for example, the issuer NIF is not its own).", Action: "Ask the account owner for the permission, or use the right account."},
	"HTTP 404": {Class: model.ClassNotFound, Meaning: "The invoice or resource does not exist.", Action: "Check the invoice id and the account."},
	"HTTP 409": {Class: model.ClassConflict, Verdict: model.VerdictFix, Meaning: "The request conflicts with the current state: a duplicate invoice or a blocked series.", Action: "Look for an existing invoice with this series number; if the series is blocked, ask the account owner or use another series."},
	"HTTP 422": {Class: model.ClassValidation, Verdict: model.VerdictFix, Meaning: "The data is well formed but breaks a business rule.", Action: "Correct the invoice as the detail says, then resend."},
	"HTTP 429": {Class: model.ClassRateLimited, Meaning: "The key's rate limit (100 requests a minute) is spent.", Action: "Wait until the window resets, then repeat."},
	"HTTP 500": {Class: model.ClassServer, Meaning: "Certifactu failed unexpectedly.", Action: "Read the invoice's status before resending a write; reads may be retried; tell support if it persists."},
	"HTTP 502": {Class: model.ClassUpstream, Meaning: "Certifactu could not reach AEAT or VIES.", Action: "Read the invoice's status, then submit again only if it did not reach AEAT."},
	"HTTP 503": {Class: model.ClassUnavailable, Meaning: "Certifactu is briefly unavailable.", Action: "Wait and repeat; read a submission's status before resending it."},
}

// aeatFamily is a range of AEAT VeriFactu response codes that mean the same thing.
type aeatFamily struct {
	from, to int
	guide    model.Guidance
}

// aeatTechnicalWait is how long to wait before submitting again after one of AEAT's
// technical errors: long enough for a passing fault on AEAT's side to clear, short
// enough that the invoice reaches AEAT the same hour.
const aeatTechnicalWait = time.Minute

// aeatTechnical is AEAT's guidance for its technical errors (PROVIDERS.md, "What the
// public sources say"): transient, nothing about the record is wrong.
var aeatTechnical = model.Guidance{Class: model.ClassUpstream, Verdict: model.VerdictWait,
	Meaning: "AEAT failed with a technical error (an unparsable submission, a certificate it could not look up, its database): a passing fault on AEAT's side, not the record's.",
	Action:  "Wait a minute, then submit the invoice again; if the same code persists for an hour, tell Certifactu's support."}

// aeatFamilies are the AEAT codes Certifactu passes through in an invoice's aeat.code,
// wide families first; a later, narrower entry overrides the codes it covers. AEAT's
// published list ends at 4140: 4141 comes from PROVIDERS.md alone.
var aeatFamilies = []aeatFamily{
	{1100, 1293, model.Guidance{Class: model.ClassRejected, Verdict: model.VerdictFix, Meaning: "AEAT refused the record: its data is wrong (Incorrecto).", Action: "Correct the invoice as AEAT's description says, then submit it again."}},
	{2000, 2009, model.Guidance{Class: model.ClassOK, Verdict: model.VerdictNone, Meaning: "AEAT accepted the record with errors (AceptadoConErrores): it is filed.", Action: "Do not resend; correct the data with a correcting record (subsanación) when convenient."}},
	{3000, 3000, model.Guidance{Class: model.ClassDuplicate, Verdict: model.VerdictReconcile, Meaning: "AEAT already holds this record: an earlier submission was filed.", Action: "Keep the record AEAT holds; never submit this invoice again."}},
	{3001, 3004, model.Guidance{Class: model.ClassConflict, Verdict: model.VerdictFix, Meaning: "The record conflicts with the state of a record AEAT holds (for example, it corrects or cancels one AEAT does not have or has cancelled).", Action: "Check the invoice's records at AEAT, then send the kind of record that state allows."}},
	{4102, 4141, model.Guidance{Class: model.ClassRejected, Verdict: model.VerdictEscalate, Meaning: "AEAT refused the whole submission: its schema, its issuer or the certificate's holder.", Action: "Someone with authority over the account must act on AEAT's description; do not resend until then."}},
	{4104, 4104, model.Guidance{Class: model.ClassPermission, Verdict: model.VerdictEscalate, Meaning: "AEAT does not recognise the issuer NIF of the submission.", Action: "Ask the account owner to check the issuer's NIF and its census registration with AEAT."}},
	{4112, 4112, model.Guidance{Class: model.ClassCertificate, Verdict: model.VerdictEscalate, Meaning: "The certificate's holder is neither the issuer nor entitled to file for it.", Action: "Have the issuer's certificate, or a registered representative's, installed; then submit again."}},
	{4114, 4114, model.Guidance{Class: model.ClassRejected, Verdict: model.VerdictRetry, Meaning: "AEAT refused the submission: it held more records than one submission may; the invoice's own data is not at fault.", Action: "Submit the invoice again on its own (a retry sends one invoice per submit); if 4114 comes back, tell Certifactu's support."}},
	{4134, 4134, model.Guidance{Class: model.ClassPermission, Verdict: model.VerdictEscalate, Meaning: "The service is not active for this issuer.", Action: "Ask the account owner to activate VeriFactu for the issuer."}},
	{4141, 4141, model.Guidance{Class: model.ClassPermission, Verdict: model.VerdictEscalate, Meaning: "The issuer's access is suspended.", Action: "Ask the account owner to resolve the suspension with AEAT or Certifactu."}},
}

// aeatTechnicalCodes are the ranges of AEAT's technical errors, over aeatFamilies.
var aeatTechnicalCodes = [][2]int{{3500, 3503}, {4103, 4103}, {4108, 4108}, {4110, 4111}, {4128, 4128}}

// isAEATTechnical reports whether an AEAT code is one of its technical errors.
func isAEATTechnical(code string) bool {
	n, err := strconv.Atoi(code)
	if err != nil {
		return false
	}
	for _, r := range aeatTechnicalCodes {
		if n >= r[0] && n <= r[1] {
			return true
		}
	}
	return false
}

// certifactuCatalog is Certifactu's codes with every AEAT code of aeatFamilies.
func certifactuCatalog() map[string]model.Guidance {
	catalog := make(map[string]model.Guidance, len(certifactuCodes)+300)
	for code, g := range certifactuCodes {
		catalog[code] = g
	}
	for _, fam := range aeatFamilies {
		for n := fam.from; n <= fam.to; n++ {
			catalog[strconv.Itoa(n)] = fam.guide
		}
	}
	for _, r := range aeatTechnicalCodes {
		for n := r[0]; n <= r[1]; n++ {
			catalog[strconv.Itoa(n)] = aeatTechnical
		}
	}
	return catalog
}

// certifactuReply is Certifactu's error body, or an invoice (a 200 from GET or submit).
// Every field stays raw: each may come as a string, a number, a list or not at all.
type certifactuReply struct {
	Detail     json.RawMessage `json:"detail"` // a string, or FastAPI's list of {loc, msg}
	Code       json.RawMessage `json:"code"`
	Field      json.RawMessage `json:"field"` // a string, or a list of them
	ExistingID json.RawMessage `json:"existing_id"`
	RetryAfter json.RawMessage `json:"retry_after"`

	ID           json.RawMessage `json:"id"`
	SeriesNumber json.RawMessage `json:"series_number"`
	IssuerNIF    json.RawMessage `json:"issuer_nif"`
	Status       json.RawMessage `json:"status"`
	AEAT         json.RawMessage `json:"aeat"`
}

// certifactuDetailError is one entry of a FastAPI validation detail.
type certifactuDetailError struct {
	Loc json.RawMessage `json:"loc"`
	Msg json.RawMessage `json:"msg"`
}

// certifactuBody decodes one Certifactu response body.
func certifactuBody(status int, body []byte) finding {
	var r certifactuReply
	if !jsonObject(body, &r) {
		return finding{}
	}
	if !rawPresent(r.Detail) && !rawPresent(r.Code) && (rawPresent(r.Status) || rawPresent(r.AEAT)) {
		_, f := r.invoice()
		return f
	}
	f := finding{code: strings.TrimSpace(rawText(r.Code))}
	for _, field := range rawTexts(r.Field) {
		if p := dotPath(field); p != "" {
			f.fields = append(f.fields, p)
		}
	}
	lines := []string{rawText(r.Detail)}
	for _, raw := range rawList(r.Detail) {
		var e certifactuDetailError
		if !jsonObject(raw, &e) {
			continue
		}
		path := certifactuLoc(e.Loc)
		if path != "" {
			f.fields = append(f.fields, path)
		}
		lines = append(lines, certifactuLine(path, rawText(e.Msg)))
	}
	if id := rawText(r.ExistingID); id != "" {
		lines = append(lines, "existing_id: "+id)
	}
	if f.code == certifactuNIF || hasIssuerNIF(f.fields) {
		lines = append(lines, nifNote(rawText(r.Detail), rawText(r.IssuerNIF)))
	}
	f.message = joinLines(lines...)
	f.wait, f.hasWait = retryAfterSeconds(rawText(r.RetryAfter))
	return f
}

// certifactuLine writes "path: message", or whichever is there.
func certifactuLine(path, msg string) string {
	if path == "" || msg == "" {
		return path + msg
	}
	return path + ": " + msg
}

// certifactuLoc is the dotted field of a FastAPI loc, without its leading "body", "query",
// "path" or "header".
func certifactuLoc(loc json.RawMessage) string {
	parts := rawTexts(loc)
	if len(parts) > 1 {
		switch parts[0] {
		case "body", "query", "path", "header":
			parts = parts[1:]
		}
	}
	return joinPath(parts...)
}

// hasIssuerNIF reports whether the fields name the issuer's NIF.
func hasIssuerNIF(fields []string) bool {
	for _, f := range fields {
		if f == "issuer_nif" || strings.HasSuffix(f, ".issuer_nif") {
			return true
		}
	}
	return false
}

// nifToken finds a DNI or NIE in a text.
var nifToken = regexp.MustCompile(`\b[0-9XYZ][0-9]{7}[A-Z]\b`)

// nifNote says whether the check letter of the NIF an error is about is right, when the
// body shows that NIF (in issuer_nif or in the detail). A wrong letter means a typo in the
// NIF rather than a key of another issuer.
func nifNote(detail, issuerNIF string) string {
	nif := strings.ToUpper(strings.TrimSpace(issuerNIF))
	if nif == "" {
		nif = nifToken.FindString(detail)
	}
	if !nifToken.MatchString(nif) || len(nif) != 9 {
		return ""
	}
	if validNIF(nif) {
		return "NIF " + nif + ": check letter valid"
	}
	return "NIF " + nif + ": check letter invalid (a typo in the NIF?)"
}

// dniLetters are the check letters of a DNI or NIE, indexed by the number modulo 23.
const dniLetters = "TRWAGMYFPDXBNJZSQVHLCKE"

// validNIF reports whether s is a DNI (8 digits and a letter) or a NIE (X, Y or Z, 7
// digits and a letter) whose check letter is right. Company NIFs (CIF) are not checked:
// they report false.
func validNIF(s string) bool {
	if len(s) != 9 {
		return false
	}
	digits := s[:8]
	switch s[0] {
	case 'X':
		digits = "0" + s[1:8]
	case 'Y':
		digits = "1" + s[1:8]
	case 'Z':
		digits = "2" + s[1:8]
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return s[8] == dniLetters[n%23]
}

// maxRetryAfter caps a body's retry_after: a day is already absurdly long.
const maxRetryAfter = 24 * time.Hour

// retryAfterSeconds reads retry_after, in seconds (a fraction allowed).
func retryAfterSeconds(s string) (time.Duration, bool) {
	secs, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || secs < 0 || math.IsNaN(secs) || math.IsInf(secs, 0) {
		return 0, false
	}
	if secs >= maxRetryAfter.Seconds() {
		return maxRetryAfter, true
	}
	return time.Duration(math.Ceil(secs * float64(time.Second))), true
}

// certifactuAEAT is AEAT's answer about one invoice's record.
type certifactuAEAT struct {
	State       json.RawMessage `json:"state"`
	Code        json.RawMessage `json:"code"`
	Description json.RawMessage `json:"description"`
}

// invoice reads the invoice's status and, when AEAT answered, its code and description.
// A rejected invoice is class rejected unless its AEAT code says more; an invoice
// registered with errors keeps AEAT's code with class ok.
func (r *certifactuReply) invoice() (model.Status, finding) {
	var a certifactuAEAT
	jsonObject(r.AEAT, &a)
	f := finding{code: aeatCode(rawText(a.Code)), message: rawText(a.Description)}
	state := strings.ToLower(strings.TrimSpace(rawText(r.Status)))
	if state == "" {
		state = aeatStates[strings.ToLower(strings.TrimSpace(rawText(a.State)))]
	}
	switch state {
	case "pending":
		return model.StatusPending, finding{}
	case "registered":
		return model.StatusAccepted, finding{}
	case "registered_with_errors":
		f.class = model.ClassOK
		return model.StatusAccepted, f
	case "rejected":
		f.class = model.ClassRejected
		if isAEATTechnical(f.code) {
			f.wait, f.hasWait = aeatTechnicalWait, true
		}
		return model.StatusRejected, f
	}
	return model.StatusUnknown, finding{}
}

// aeatStates maps AEAT's own record states to Certifactu's invoice status, for an
// invoice that carries no status.
var aeatStates = map[string]string{
	"correcto":           "registered",
	"aceptadoconerrores": "registered_with_errors",
	"incorrecto":         "rejected",
}

// aeatCode writes a numeric AEAT code without leading zeros, as the table keys it.
func aeatCode(code string) string {
	code = strings.TrimSpace(code)
	if n, err := strconv.Atoi(code); err == nil && n >= 0 {
		return strconv.Itoa(n)
	}
	return code
}

// certifactuDocument reads one invoice as Certifactu lists or shows it. ok is false when
// raw is not an invoice. f carries AEAT's code and description when the invoice was
// rejected or registered with errors; f.class is empty otherwise.
func certifactuDocument(raw []byte) (doc model.Document, f finding, ok bool) {
	var r certifactuReply
	if !jsonObject(raw, &r) {
		return model.Document{}, finding{}, false
	}
	id := strings.TrimSpace(rawText(r.ID))
	if id == "" {
		return model.Document{}, finding{}, false
	}
	doc = model.Document{Provider: certifactuName, ID: id, Number: model.Line(rawText(r.SeriesNumber), 80)}
	doc.Status, f = r.invoice()
	return doc, f, true
}

// certifactuPage is the most invoices Certifactu lists at once (assumed endpoint).
const certifactuPage = 100

// certifactuOpen lists the rejected, then the pending invoices.
func certifactuOpen(ctx context.Context, c *Client) ([][]byte, error) {
	path := c.Path("invoices", "/v1/invoices")
	return pagesOf(ctx, c, []string{"rejected", "pending"}, func(status string, n int) string {
		return fmt.Sprintf("%s?status=%s&page=%d&page_size=%d", path, status, n, certifactuPage)
	}, envelope("total", certifactuPage))
}

// certifactuReadPath is GET /v1/invoices/{id} (assumed endpoint).
func certifactuReadPath(c *Client, id string) string {
	return c.Path("invoices", "/v1/invoices") + "/" + pathID(id)
}

// certifactuResend sends an invoice's stored record to AEAT again: POST
// /v1/invoices/{id}/submit, no body (assumed endpoint).
func certifactuResend(c *Client, ids []string, _ [][]byte) (Resend, error) {
	if len(ids) != 1 {
		return Resend{}, fmt.Errorf("certifactu: one invoice per submit, not %d", len(ids))
	}
	return Resend{Method: http.MethodPost, Path: certifactuReadPath(c, ids[0]) + "/submit", IDs: ids}, nil
}
