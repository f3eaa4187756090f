package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"emitop/model"
)

// Factus (Colombia, DIAN) speaks four shapes, all decoded here:
//
//   - its own envelope: {"status","message","data":{"errors":[texts] | {key: text | [texts]}}},
//     where a key is a field path ("items.0.price", "items[0][price]") or a DIAN rule id;
//   - a bill, inside {"status":"OK","data":{"bill":{...}}} or {"data":{...}}, whose errors are
//     DIAN rule texts ("Regla: FAD06, Rechazo: ...");
//   - the OAuth errors of POST /oauth/token: {"error","error_description","message"?};
//   - the FastAPI shapes of services built on Factus: {"detail": text} and
//     {"detail":[{"loc","msg","type"}]}.
func init() {
	register(&dialect{name: "factus", catalog: factusCatalog, body: factusBody,
		document: factusDocument, open: factusOpen, readPath: factusReadPath,
		resend: factusResend})
}

// factusCatalog is the guidance for every code a Factus response can carry: DIAN rule ids
// (from "Regla: X" texts), the OAuth token errors (RFC 6749 §5.2, the complete set), and the
// FastAPI validation types of seed 003. A DIAN rule not listed here still decodes: a
// "Rechazo" makes it rejected, a "Notificación" leaves the HTTP status to decide.
var factusCatalog = map[string]model.Guidance{
	"90": {Class: model.ClassDuplicate, Verdict: model.VerdictReconcile,
		Meaning: "DIAN rule 90: the document was processed before; DIAN already holds a bill with this CUFE.",
		Action:  "Load the existing bill by its number or reference_code; never resend it and never renumber it."},
	"FAD06": {Class: model.ClassRejected,
		Meaning: "DIAN rule FAD06 (rejection): the CUFE is not computed correctly.",
		Action:  "Check the data the CUFE is computed from (number, dates, totals, taxes, issuer and buyer ids), correct it, then send the bill again."},
	"FAK24": {Class: model.ClassRejected,
		Meaning: "DIAN rule FAK24 (rejection): the buyer's identification fails DIAN's checks (for a NIT, its check digit dv).",
		Action:  "Correct the customer's identification and dv, then send the bill again."},
	"ZE02": {Class: model.ClassCertificate, Verdict: model.VerdictEscalate,
		Meaning: "DIAN rule ZE02 (rejection): the digital signature is not valid: the signing certificate is expired, revoked or not the issuer's.",
		Action:  "Have the issuer's signing certificate renewed and loaded into Factus, then send the bill again."},
	"FAJ43b": {
		Meaning: "DIAN rule FAJ43b (notification, not a rejection): the issuer's name differs from the one registered in the RUT for its NIT.",
		Action:  "Nothing blocks this bill; align the company name in Factus with the RUT so later bills are clean."},

	"invalid_request": {Class: model.ClassValidation, Verdict: model.VerdictFix,
		Meaning: "The token request is malformed: a parameter is missing, repeated or unsupported.",
		Action:  "Report it: the login request emitop builds is wrong; do not repeat it unchanged."},
	"invalid_client": {Class: model.ClassAuth, Verdict: model.VerdictEscalate,
		Meaning: "Factus does not recognise the client_id and client_secret.",
		Action:  "Ask the account owner for the client credentials Factus issued to the account and update the configuration; logging in again will not help."},
	"invalid_grant": {Class: model.ClassAuth,
		Meaning: "The grant was refused: the username or password is wrong, or the refresh token expired or was revoked.",
		Action:  "After a failed refresh, log in again with the password grant; if the password grant fails, correct the account's username and password."},
	"unauthorized_client": {Class: model.ClassPermission, Verdict: model.VerdictEscalate,
		Meaning: "The client is not allowed to use this grant type.",
		Action:  "Ask Factus or the account owner to enable the password grant for this client."},
	"unsupported_grant_type": {Class: model.ClassValidation, Verdict: model.VerdictFix,
		Meaning: "Factus does not support the grant type requested.",
		Action:  "Report it: emitop must use grant_type password or refresh_token."},
	"invalid_scope": {Class: model.ClassValidation, Verdict: model.VerdictFix,
		Meaning: "The scope requested is unknown or exceeds what the client may ask for.",
		Action:  "Request the token without a scope, or with one the account allows."},

	"value_error.missing": {Class: model.ClassValidation,
		Meaning: "A required field is missing from the request.",
		Action:  "Provide the field named, then send again."},
	"type_error.integer": {Class: model.ClassValidation,
		Meaning: "A field that must be an integer holds another type (quantity is an integer).",
		Action:  "Send the field as an integer, then send again."},
	"value_error.email": {Class: model.ClassValidation,
		Meaning: "A field that must be an email address is not a valid one.",
		Action:  "Correct the email address, then send again."},
	"value_error": {Class: model.ClassValidation,
		Meaning: "A value breaks a rule of the service: a format, a precision (prices, discount and tax rates take at most 2 decimals) or a business rule.",
		Action:  "Read the message, correct the value (round decimals to 2 places), then send again."},
}

// factusTexts places the messages that carry no code, by a phrase they contain (lower
// case), in 4xx responses; the first match wins, so the phrases naming
// wrong credentials come before those naming a failed token.
var factusTexts = []phraseClass{
	// 409 "Se encontró una factura pendiente por enviar a la DIAN": an earlier bill with this
	// reference_code is still on its way; check it rather than create another.
	{0, "pendiente por enviar", model.ClassProcessing, model.VerdictVerify},
	// The reference_code is Factus's idempotency key: a duplicate means a bill exists.
	{0, "duplicate invoice reference", model.ClassDuplicate, model.VerdictReconcile},
	{0, "duplicate reference", model.ClassDuplicate, model.VerdictReconcile},
	{0, "invalid credentials", model.ClassAuth, model.VerdictEscalate},
	{0, "incorrect username or password", model.ClassAuth, model.VerdictEscalate},
	{0, "credentials were incorrect", model.ClassAuth, model.VerdictEscalate},
	{0, "no se pudo obtener el token", model.ClassAuth, model.VerdictReauth},
	{0, "no se pudo refrescar el token", model.ClassAuth, model.VerdictReauth},
	{0, "invalid refresh token", model.ClassAuth, model.VerdictReauth},
	{0, "could not validate credentials", model.ClassAuth, model.VerdictReauth},
	{0, "not found", model.ClassNotFound, ""},
}

// factusEnvelope is the top-level keys of a Factus body that carry a problem; polymorphic
// ones stay raw. Its "status" word ("Validation error", "Conflict") repeats the HTTP status.
type factusEnvelope struct {
	Message          string          `json:"message"`
	Data             json.RawMessage `json:"data"`
	Detail           json.RawMessage `json:"detail"`
	Errors           json.RawMessage `json:"errors"` // the wrapper's ApiResponse keeps them here
	Error            json.RawMessage `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// factusBill is what emitop reads of a Factus bill as the list and show endpoints return it.
type factusBill struct {
	Number        string          `json:"number"`
	ReferenceCode string          `json:"reference_code"`
	Status        json.RawMessage `json:"status"` // 1 validated, 0 pending; a number or a string
	Errors        json.RawMessage `json:"errors"` // DIAN rule texts: a list or a map by rule
}

// fastAPIError is one item of FastAPI's {"detail":[...]} validation answer.
type fastAPIError struct {
	Loc  []json.RawMessage `json:"loc"`
	Msg  string            `json:"msg"`
	Type string            `json:"type"`
}

// dianRule is one DIAN validation result quoted in a Factus text.
type dianRule struct {
	id        string
	rejection bool // the text says "Rechazo"; otherwise it is a notification
}

var (
	// dianRulePattern finds "Regla: FAD06" or "Regla 90": a rule id holds a digit, so that
	// "reglas de validación" names no rule.
	dianRulePattern = regexp.MustCompile(`(?i)\bregla(?:\s*:\s*|\s+)([a-z]*[0-9][a-z0-9]*)\b`)
	// factusSnakeField finds a field named at the start of a message, as in
	// "payment_due_date es obligatorio cuando ...": only snake_case names count, so that an
	// ordinary first word is never taken for a field.
	factusSnakeField = regexp.MustCompile(`^([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b`)
)

// factusBody decodes any Factus body; bytes that are not a JSON object give no finding.
func factusBody(status int, body []byte) finding {
	var env factusEnvelope
	if !lenientJSON(body, &env) {
		return finding{}
	}
	var f finding
	switch {
	case len(env.Detail) > 0 && string(env.Detail) != "null":
		f = factusDetail(env.Detail)
	case rawText(env.Error) != "":
		f.code = rawText(env.Error)
		f.message = env.ErrorDescription
		if f.message == "" {
			f.message = env.Message
		}
	default:
		f = factusEnvelopeFinding(env)
	}
	if f.class == "" {
		f.class, f.verdict = classByPhrase(factusTexts, status, f.message)
	}
	return f
}

// factusEnvelopeFinding reads Factus's own envelope: the message and the errors, those
// of a bill when data holds one, else those under data and at the top level.
func factusEnvelopeFinding(env factusEnvelope) finding {
	var errs json.RawMessage
	if bill, ok := factusBillOf(env.Data); ok {
		errs = bill.Errors
	} else {
		var data struct {
			Errors json.RawMessage `json:"errors"`
		}
		if lenientJSON(env.Data, &data) {
			errs = data.Errors
		}
	}
	lines, fields := factusErrors(errs)
	top, topFields := factusErrors(env.Errors)
	lines = append(lines, top...)
	for _, field := range topFields {
		fields = addField(fields, field)
	}
	rf := factusRuleFinding(factusRules(append([]string{env.Message}, lines...)), len(fields) > 0)
	return finding{code: rf.code, class: rf.class, fields: fields, message: joinLines(append([]string{env.Message}, lines...)...)}
}

// factusRuleFinding picks the code among DIAN rules: rule 90 (a duplicate) first, then the
// first rejection, then, when no field error speaks for the response, the first
// notification. A rejection makes the class rejected; a notification leaves it open.
func factusRuleFinding(rules []dianRule, hasFields bool) finding {
	for _, r := range rules {
		if r.rejection && r.id == "90" {
			return finding{code: r.id, class: model.ClassDuplicate}
		}
	}
	for _, r := range rules {
		if r.rejection {
			return finding{code: r.id, class: model.ClassRejected}
		}
	}
	if len(rules) > 0 && !hasFields {
		return finding{code: rules[0].id}
	}
	return finding{}
}

// factusDetail reads FastAPI's "detail": a text, or a list of validation errors whose
// loc is the field path.
func factusDetail(raw json.RawMessage) finding {
	if s := rawText(raw); s != "" {
		return finding{message: s}
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' {
		return finding{message: string(raw)}
	}
	var items []fastAPIError
	lenientJSON(raw, &items)
	var f finding
	var lines []string
	for _, it := range items {
		path := fastAPIPath(it.Loc)
		if path == "" {
			if m := factusSnakeField.FindStringSubmatch(it.Msg); m != nil {
				path = m[1]
			}
		}
		line := it.Msg
		if path != "" {
			f.fields = addField(f.fields, path)
			if !strings.HasPrefix(it.Msg, path) {
				line = path + ": " + it.Msg
			}
		}
		lines = append(lines, line)
		if f.code == "" {
			f.code = it.Type
		}
	}
	f.message = strings.Join(lines, "\n")
	return f
}

// fastAPIPath turns a FastAPI loc into a dotted path: the leading location (body, query,
// path, header, cookie) is dropped and numbers become segments, so
// ["body","items",0,"price"] is "items.0.price".
func fastAPIPath(loc []json.RawMessage) string {
	var parts []string
	for i, raw := range loc {
		seg := rawText(raw)
		if seg == "" {
			continue
		}
		if i == 0 {
			switch seg {
			case "body", "query", "path", "header", "cookie":
				continue
			}
		}
		parts = append(parts, seg)
	}
	return strings.Join(parts, ".")
}

// factusErrors reads a Factus errors value: a list of texts, or a map whose keys are field
// paths (with a list or a text of messages) or DIAN rule ids (with the rule's text). It
// returns one line per message, prefixed by its field, and the fields in order.
func factusErrors(raw json.RawMessage) (lines, fields []string) {
	if pairs := jsonPairs(raw); pairs != nil {
		for _, p := range pairs {
			msgs := rawTexts(p.value)
			rule := len(msgs) > 0 && dianRulePattern.MatchString(msgs[0])
			if !rule {
				fields = addField(fields, factusFieldPath(p.key))
			}
			for _, m := range msgs {
				if rule {
					lines = append(lines, m)
				} else {
					lines = append(lines, factusFieldPath(p.key)+": "+m)
				}
			}
		}
		return lines, fields
	}
	return rawTexts(raw), nil
}

// factusFieldPath turns a bracketed field key ("items[0][price]") into a dotted path.
func factusFieldPath(key string) string {
	key = strings.ReplaceAll(key, "][", ".")
	key = strings.ReplaceAll(key, "[", ".")
	key = strings.ReplaceAll(key, "]", "")
	return strings.Trim(key, ".")
}

// factusRules finds every DIAN rule quoted in texts, in order. A text quoting several rules
// is split at each "Regla".
func factusRules(texts []string) []dianRule {
	var rules []dianRule
	for _, t := range texts {
		locs := dianRulePattern.FindAllStringSubmatchIndex(t, -1)
		for i, loc := range locs {
			end := len(t)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			rules = append(rules, dianRule{
				id:        t[loc[2]:loc[3]],
				rejection: strings.Contains(strings.ToLower(t[loc[0]:end]), "rechazo"),
			})
		}
	}
	return rules
}

// factusBillOf finds the bill in a data value: {"bill":{...}} or the bill itself, known
// by its number or its reference_code.
func factusBillOf(data json.RawMessage) (factusBill, bool) {
	var wrap struct {
		Bill json.RawMessage `json:"bill"`
	}
	if lenientJSON(data, &wrap) && len(wrap.Bill) > 0 && string(wrap.Bill) != "null" {
		data = wrap.Bill
	}
	var b factusBill
	if !lenientJSON(data, &b) || b.Number == "" && b.ReferenceCode == "" {
		return factusBill{}, false
	}
	return b, true
}

// factusBillIn finds the bill in raw: a bare bill, or one inside the show envelope.
func factusBillIn(raw []byte) (factusBill, bool) {
	if b, ok := factusBillOf(raw); ok {
		return b, true
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if !lenientJSON(raw, &env) {
		return factusBill{}, false
	}
	return factusBillOf(env.Data)
}

// factusDocument reads one Factus bill (bare, or inside the show envelope) as a document.
// ID is the bill's number as Factus wrote it, what GET /v1/bills/show/{number} takes; Number
// is the same, sanitized. A DIAN
// "Rechazo" among its errors makes it rejected (rule 90 too: DIAN holds it, and the finding
// says duplicate); otherwise status 1 is accepted and 0 pending. The finding is empty when
// the bill has nothing to report; an accepted bill with DIAN notifications carries the
// first one, class ok. ok is false when raw holds no bill.
func factusDocument(raw []byte) (doc model.Document, f finding, ok bool) {
	b, ok := factusBillIn(raw)
	if !ok || b.Number == "" {
		return model.Document{}, finding{}, false
	}
	doc = model.Document{Provider: "factus", ID: b.Number, Number: model.Line(b.Number, 80)}
	lines, _ := factusErrors(b.Errors)
	rf := factusRuleFinding(factusRules(lines), false)
	switch {
	case rf.class != "":
		doc.Status = model.StatusRejected
		f = finding{code: rf.code, class: rf.class, message: strings.Join(lines, "\n")}
	case factusBillStatus(b.Status) == "1":
		doc.Status = model.StatusAccepted
		if rf.code != "" {
			f = finding{code: rf.code, class: model.ClassOK, message: strings.Join(lines, "\n")}
		}
	case factusBillStatus(b.Status) == "0":
		doc.Status = model.StatusPending
	default:
		doc.Status = model.StatusUnknown
	}
	return doc, f, true
}

// factusReferenceCode is a bill's reference_code: Factus's idempotency key, by which the
// retry engine finds a bill an earlier attempt may have created. "" when raw has none.
func factusReferenceCode(raw []byte) string {
	b, _ := factusBillIn(raw)
	return b.ReferenceCode
}

// factusBillStatus reads a bill's status, a number or a string, as text.
func factusBillStatus(raw json.RawMessage) string {
	if s := rawText(raw); s != "" {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		return strconv.FormatInt(i, 10)
	}
	return n.String()
}

// factusOpen lists the bills not yet validated (filter[status]=0), ten a page: pending
// ones and, with their "Rechazo" rules, rejected ones.
func factusOpen(ctx context.Context, c *Client) ([][]byte, error) {
	path := c.Path("bills", "/v1/bills")
	return pages(ctx, c, 1, func(n int) string {
		return fmt.Sprintf("%s?filter%%5Bstatus%%5D=0&page=%d", path, n)
	}, func(body []byte, n int) ([][]byte, bool, error) {
		var env struct {
			Data struct {
				Data       json.RawMessage `json:"data"`
				Pagination struct {
					CurrentPage int `json:"current_page"`
					LastPage    int `json:"last_page"`
				} `json:"pagination"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return nil, false, fmt.Errorf("malformed listing: %w", err)
		}
		items, err := rawItems(env.Data.Data)
		return items, n < env.Data.Pagination.LastPage, err
	})
}

// factusReadPath is GET /v1/bills/show/{number}.
func factusReadPath(c *Client, number string) string {
	return c.Path("bill", "/v1/bills/show") + "/" + pathID(number)
}

// factusResend validates a bill again: POST /v1/bills/validate with the bill's own
// reference_code, Factus's idempotency key, so that an earlier attempt that landed is
// found rather than a second bill created. The code comes from the bill as read.
func factusResend(c *Client, ids []string, raws [][]byte) (Resend, error) {
	if len(ids) != 1 {
		return Resend{}, fmt.Errorf("factus: one bill per validation, not %d", len(ids))
	}
	r := Resend{Method: http.MethodPost, Path: c.Path("validate", "/v1/bills/validate"), IDs: ids}
	ref := ""
	if len(raws) > 0 && raws[0] != nil {
		ref = factusReferenceCode(raws[0])
	}
	if ref == "" {
		if len(raws) > 0 && raws[0] != nil {
			return Resend{}, fmt.Errorf("factus: bill %s: no reference_code to validate it by", model.Line(ids[0], 80))
		}
		r.Note = "{\"reference_code\": the bill's own, as GET " + factusReadPath(c, ids[0]) + " returns it}"
		return r, nil
	}
	body, err := json.Marshal(map[string]string{"reference_code": ref})
	if err != nil {
		return Resend{}, err
	}
	r.Body = body
	return r, nil
}
