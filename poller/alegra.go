package poller

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"emitop/model"
)

// The alegra dialect: Alegra's accounting API (PROVIDERS.md, "alegra"; seed 000).
func init() {
	register(&dialect{name: "alegra", catalog: alegraCatalog, body: decodeAlegra})
}

// alegraCatalog is the guidance for Alegra's stamping codes (seed 000, "Stamping
// failures") and its HTTP statuses. AEP6012–6017 name their fields in the seed's order.
// Upstream codes leave the verdict to the method: verify after a stamp, retry a read.
var alegraCatalog = map[string]model.Guidance{
	"AEP1001": {Class: model.ClassCertificate, Verdict: model.VerdictEscalate,
		Meaning: "The digital signing certificate is invalid.",
		Action:  "Renew or upload the digital certificate in Alegra's settings, then stamp again."},
	"AEP1003": {Class: model.ClassCertificate, Verdict: model.VerdictEscalate,
		Meaning: "The digital signing certificate is missing.",
		Action:  "Upload the digital certificate in Alegra's settings, then stamp again."},
	"AEP1005": {Class: model.ClassCertificate, Verdict: model.VerdictEscalate,
		Meaning: "The digital signing certificate has expired.",
		Action:  "Renew the digital certificate and upload it in Alegra's settings, then stamp again."},
	"AEP6008": {Class: model.ClassPermission, Verdict: model.VerdictEscalate,
		Meaning: "The company is not authorised by DIAN to emit electronic invoices.",
		Action:  "Complete DIAN enablement (habilitación), then stamp again."},
	"AEP6009": {Class: model.ClassDuplicate, Verdict: model.VerdictReconcile,
		Meaning: "DIAN refused the number as a duplicate (Rule 90): a document with it was already processed.",
		Action:  "Load the existing invoice and its stamp; never re-emit this number."},
	"AEP6011": {Class: model.ClassValidation, Verdict: model.VerdictFix,
		Meaning: "The number is outside the authorised resolution range (Rule 90).",
		Action:  "Move the invoice to a numbering template with a valid resolution range; never re-emit this number."},
	"AEP6012": alegraMissing("the organisation type (natural or legal person)"),
	"AEP6013": alegraMissing("the identification type"),
	"AEP6014": alegraMissing("the name"),
	"AEP6015": alegraMissing("the tax regime"),
	"AEP6016": alegraMissing("the email"),
	"AEP6017": alegraMissing("the address"),
	"AEP2011": {Class: model.ClassProcessing, Verdict: model.VerdictVerify,
		Meaning: "The invoice was already sent and is still being processed: it may have been emitted.",
		Action:  "Read GET /invoices/{id} and check stamp.legalStatus before stamping again."},
	"3246": {Class: model.ClassProcessing, Verdict: model.VerdictVerify,
		Meaning: "The invoice is already in certification with DIAN.",
		Action:  "Wait, then read GET /invoices/{id} and check stamp.legalStatus; do not stamp it again meanwhile."},
	"EPR500": {Class: model.ClassUpstream,
		Meaning: "Alegra could not communicate with DIAN.",
		Action:  "Read GET /invoices/{id} and check stamp.legalStatus; stamp again only if it did not land."},
	"EPR503": {Class: model.ClassUpstream,
		Meaning: "DIAN did not answer in time.",
		Action:  "Read GET /invoices/{id} and check stamp.legalStatus; stamp again only if it did not land."},
	"HTTP 400": {
		Meaning: "Bad request: the body is malformed or misses required fields.",
		Action:  "Read the message, which usually names the field; for documents check the country's requirements (resolution, identification type, regime)."},
	"HTTP 401": {
		Meaning: "Authentication failed: wrong email or token.",
		Action:  "Check the account's email and API token, then repeat."},
	"HTTP 402": {
		Meaning: "Payment required: the plan does not include this action, or the account is suspended.",
		Action:  "Ask the account owner to upgrade the Alegra plan, or avoid this endpoint."},
	"HTTP 403": {
		Meaning: "The user lacks the permission for this action.",
		Action:  "Check the user's role and permissions in Alegra."},
	"HTTP 404": {
		Meaning: "The id does not exist, or the account is suspended.",
		Action:  "Verify the id with a list; if it should exist, check the account."},
	"HTTP 405": {
		Meaning: "The endpoint does not support this method: a client bug.",
		Action:  "Report it; do not repeat the request."},
	"HTTP 429": {
		Meaning: "The plan's per-minute ceiling is reached (150 requests a minute per user).",
		Action:  "Wait for the X-Rate-Limit window to reset, then repeat; slow down."},
	"HTTP 500": {
		Meaning: "Alegra failed unexpectedly.",
		Action:  "Reads may be repeated; after a stamp, read the invoice's stamp.legalStatus before stamping again."},
	"HTTP 503": {
		Meaning: "Alegra is unavailable (maintenance).",
		Action:  "Repeat later; after a stamp, read the invoice's stamp.legalStatus before stamping again."},
}

func alegraMissing(what string) model.Guidance {
	return model.Guidance{Class: model.ClassValidation, Verdict: model.VerdictFix,
		Meaning: "A field DIAN requires is missing: " + what + " of the customer or company.",
		Action:  "Add it to the contact or the invoice, then stamp again."}
}

// alegraLegal maps stamp.legalStatus to the unified document status.
var alegraLegal = map[string]model.Status{
	"PENDING":                                model.StatusPending,
	"STAMPED_AND_WAITING_RESPONSE":           model.StatusPending,
	"STAMPED_AND_ACCEPTED":                   model.StatusAccepted,
	"STAMPED_AND_ACCEPTED_WITH_OBSERVATIONS": model.StatusAccepted,
	"STAMPED_AND_REJECTED":                   model.StatusRejected,
	"CANCELLED_AND_WAITING_RESPONSE":         model.StatusCancelled,
	"STAMPED_AND_CANCELLED":                  model.StatusCancelled,
}

// alegraError is an error object, bare, wrapped in "error", or one entry of the stamp
// answer's "error" array. Polymorphic fields stay raw.
type alegraError struct {
	ID      json.RawMessage `json:"id"`
	Code    json.RawMessage `json:"code"`
	Message json.RawMessage `json:"message"`
	Details json.RawMessage `json:"details"`
}

// alegraBody is every top-level shape Alegra answers with: an error, a wrapped error, a
// stamp answer, or an invoice.
type alegraBody struct {
	alegraError
	Error json.RawMessage `json:"error"`
	Data  json.RawMessage `json:"data"`
	Stamp json.RawMessage `json:"stamp"`
}

type alegraStamp struct {
	LegalStatus string            `json:"legalStatus"`
	Error       json.RawMessage   `json:"error"`
	Warnings    []json.RawMessage `json:"warnings"`
}

type alegraInvoice struct {
	ID             json.RawMessage `json:"id"`
	Status         string          `json:"status"`
	NumberTemplate struct {
		Prefix     string          `json:"prefix"`
		Number     json.RawMessage `json:"number"`
		FullNumber string          `json:"fullNumber"`
	} `json:"numberTemplate"`
	Stamp json.RawMessage `json:"stamp"`
}

// alegraUnmarshal decodes what it can: a field of an unexpected type is skipped, broken
// JSON leaves v empty. It reports whether anything was read.
func alegraUnmarshal(b []byte, v any) bool {
	err := json.Unmarshal(b, v)
	var typeErr *json.UnmarshalTypeError
	return err == nil || errors.As(err, &typeErr)
}

// decodeAlegra reads any Alegra response body.
func decodeAlegra(status int, body []byte) finding {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return finding{} // HTML, empty, a list: the status says it all
	}
	var b alegraBody
	if !alegraUnmarshal(body, &b) {
		return finding{}
	}
	var f finding
	switch alegraKind(b.Error) {
	case '[':
		f = alegraStampAnswer(status, b.Data, b.Error)
	case '{':
		var e alegraError
		alegraUnmarshal(b.Error, &e)
		f = alegraFinding(e)
	case '"':
		f.message = alegraText(b.Error)
		f.code = alegraText(b.Code)
	default:
		f = alegraFinding(b.alegraError)
		if f.code == "" && f.message == "" && alegraKind(b.Stamp) == '{' {
			f = alegraStampProblem(b.Stamp)
		}
	}
	alegraCodeFromMessage(&f)
	return f
}

// alegraFinding reads the code, message and details of one error object.
func alegraFinding(e alegraError) finding {
	f := finding{code: strings.ToUpper(alegraText(e.Code)), message: alegraText(e.Message)}
	switch alegraKind(e.Details) {
	case '"', '[', '{':
		detail, fields := alegraDetails(e.Details)
		if detail != "" {
			f.message = strings.TrimSpace(f.message + "\n" + detail)
		}
		f.fields = fields
	}
	return f
}

// alegraDetails reads "details": a text, a list of texts or of {field, message}
// objects, or an object of field → message.
func alegraDetails(raw json.RawMessage) (string, []string) {
	switch alegraKind(raw) {
	case '"':
		return alegraText(raw), nil
	case '{':
		var m map[string]json.RawMessage
		alegraUnmarshal(raw, &m)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var lines []string
		var fields []string
		for _, k := range keys {
			fields = append(fields, alegraPath(k))
			if t := alegraText(m[k]); t != "" {
				lines = append(lines, k+": "+t)
			}
		}
		return strings.Join(lines, "\n"), fields
	}
	var items []json.RawMessage
	alegraUnmarshal(raw, &items)
	var lines, fields []string
	for _, it := range items {
		if alegraKind(it) != '{' {
			if t := alegraText(it); t != "" {
				lines = append(lines, t)
			}
			continue
		}
		var d struct {
			Field   string          `json:"field"`
			Path    string          `json:"path"`
			Message json.RawMessage `json:"message"`
		}
		alegraUnmarshal(it, &d)
		if p := cmp.Or(d.Field, d.Path); p != "" {
			fields = append(fields, alegraPath(p))
		}
		if t := alegraText(d.Message); t != "" {
			lines = append(lines, t)
		}
	}
	return strings.Join(lines, "\n"), fields
}

// alegraStampAnswer reads POST /invoices/stamp's answer: the first failure's code and
// message, with how many invoices failed. All successes is no problem.
func alegraStampAnswer(status int, data, errs json.RawMessage) finding {
	var failed []alegraError
	alegraUnmarshal(errs, &failed)
	if len(failed) == 0 {
		return finding{}
	}
	var ok []json.RawMessage
	alegraUnmarshal(data, &ok)
	f := alegraFinding(failed[0])
	ids := make([]string, 0, min(len(failed), 10))
	for _, e := range failed[:min(len(failed), 10)] {
		ids = append(ids, alegraText(e.ID))
	}
	more := ""
	if len(failed) > len(ids) {
		more = ", …"
	}
	f.message = strings.TrimSpace(f.message + "\n" + strconv.Itoa(len(failed)) + " of " +
		strconv.Itoa(len(failed)+len(ok)) + " invoices failed to stamp (ids " + strings.Join(ids, ", ") + more + ")")
	if _, known := alegraCatalog[f.code]; !known && status >= 200 && status < 300 {
		f.class = model.ClassUnknown // a refused stamp on a 200: nothing says whether it landed
	}
	return f
}

// alegraStampProblem reads an invoice's stamp: a rejected one is a problem, with the code
// and message of stamp.error, else of its warnings.
func alegraStampProblem(raw json.RawMessage) finding {
	var s alegraStamp
	alegraUnmarshal(raw, &s)
	if strings.ToUpper(s.LegalStatus) != "STAMPED_AND_REJECTED" {
		return finding{}
	}
	f := finding{class: model.ClassRejected}
	switch alegraKind(s.Error) {
	case '{':
		var e alegraError
		alegraUnmarshal(s.Error, &e)
		g := alegraFinding(e)
		f.code, f.message, f.fields = g.code, g.message, g.fields
	case '"':
		f.message = alegraText(s.Error)
	}
	if f.message == "" && f.code == "" {
		var lines []string
		for _, w := range s.Warnings {
			if alegraKind(w) == '{' {
				var e alegraError
				alegraUnmarshal(w, &e)
				if f.code == "" {
					f.code = strings.ToUpper(alegraText(e.Code))
				}
				w = e.Message
			}
			if t := alegraText(w); t != "" {
				lines = append(lines, t)
			}
		}
		f.message = strings.Join(lines, "\n")
	}
	return f
}

// alegraCodeFromMessage takes a stamping code from the message text when the body gave
// none, or gave one the catalog does not know.
func alegraCodeFromMessage(f *finding) {
	if _, known := alegraCatalog[f.code]; known && f.code != "" {
		return
	}
	c := alegraCodeIn(f.message)
	if _, known := alegraCatalog[c]; c != "" && (f.code == "" || known) {
		f.code = c
	}
}

// alegraCodeIn finds the first \b(AEP\d{3,5}|EPR\d{3})\b in s.
func alegraCodeIn(s string) string {
	for i := 0; i+6 <= len(s); i++ {
		if i > 0 && alegraWordByte(s[i-1]) {
			continue
		}
		var lo, hi int
		switch s[i : i+3] {
		case "AEP":
			lo, hi = 3, 5
		case "EPR":
			lo, hi = 3, 3
		default:
			continue
		}
		n := 0
		for i+3+n < len(s) && s[i+3+n] >= '0' && s[i+3+n] <= '9' {
			n++
		}
		end := i + 3 + n
		if n >= lo && n <= hi && (end == len(s) || !alegraWordByte(s[end])) {
			return s[i:end]
		}
	}
	return ""
}

func alegraWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// alegraDocument maps one invoice object of GET /invoices to a Document, with the
// finding its state carries when it has a problem (a rejected stamp). Account is left to
// the caller. ok is false for bytes that are not an invoice object.
func alegraDocument(raw []byte) (model.Document, finding, bool) {
	raw = bytes.TrimSpace(raw)
	var inv alegraInvoice
	if len(raw) == 0 || raw[0] != '{' || !alegraUnmarshal(raw, &inv) {
		return model.Document{}, finding{}, false
	}
	doc := model.Document{Provider: "alegra", ID: alegraText(inv.ID), Status: model.StatusUnknown}
	nt := inv.NumberTemplate
	doc.Number = nt.FullNumber
	if doc.Number == "" {
		doc.Number = nt.Prefix + alegraText(nt.Number)
	}
	var stamp alegraStamp
	if alegraKind(inv.Stamp) == '{' {
		alegraUnmarshal(inv.Stamp, &stamp)
	}
	legal := strings.ToUpper(strings.TrimSpace(stamp.LegalStatus))
	switch st := strings.ToLower(inv.Status); {
	case st == "void":
		doc.Status = model.StatusCancelled
	case legal != "":
		if s, ok := alegraLegal[legal]; ok {
			doc.Status = s
		}
	case st == "draft" || st == "open" || st == "closed":
		doc.Status = model.StatusDraft // never stamped
	}
	if doc.Status != model.StatusRejected {
		return doc, finding{}, false
	}
	f := alegraStampProblem(inv.Stamp)
	alegraCodeFromMessage(&f)
	return doc, f, true
}

// alegraKind is the first byte of a JSON value ('{', '[', '"', a digit...), 0 for none
// or null.
func alegraKind(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' {
		return 0
	}
	return raw[0]
}

// alegraText is a JSON string, number or boolean as text; a list of strings joined by
// newlines; "" for anything else.
func alegraText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch alegraKind(raw) {
	case 0, '{':
		return ""
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return strings.TrimSpace(s)
	case '[':
		var items []json.RawMessage
		alegraUnmarshal(raw, &items)
		lines := make([]string, 0, len(items))
		for _, it := range items {
			if alegraKind(it) == '"' {
				lines = append(lines, alegraText(it))
			}
		}
		return strings.Join(lines, "\n")
	}
	return string(raw)
}

// alegraPath turns a field name such as items[0].price into the dotted items.0.price.
func alegraPath(p string) string {
	if !strings.ContainsAny(p, "[]/") {
		return p
	}
	p = strings.NewReplacer("[", ".", "]", "", "/", ".").Replace(p)
	return strings.Trim(strings.ReplaceAll(p, "..", "."), ".")
}
