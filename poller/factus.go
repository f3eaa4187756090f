package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
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
//
// An account speaks Factus's v1 API, its v2 (api_version = "v2": /v2/bills, is_validated),
// or the FastAPI service of seed 003 in front of Factus (gateway = "fastapi": its own
// login or shared key, plus an X-Factus-Token it obtains for the account).
var factusDialect = &Dialect{
	name: "factus",
	keys: append(secretKeys("client_id=id", "client_secret", "username=id", "password", "api_key", "gateway_username=id", "gateway_password"),
		config.Key{Name: "api_version", Values: []string{"v1", "v2"}},
		config.Key{Name: "gateway", Values: []string{"fastapi"}}),
	check:   factusCheck,
	windows: []pace.Limit{{Name: "", Max: 80, Per: time.Minute}}, // v2 docs, limite-de-request: 80 a minute per user
	auth:    factusAuth,
	catalog: factusCatalog, body: factusBody,
	document: factusDocument, open: factusOpen, readPath: factusReadPath,
	clear: factusClear, noResend: factusNoResend,
}

// factusGateway reports whether the account speaks to the FastAPI service in front of
// Factus rather than to Factus itself.
func factusGateway(c *Client) bool { return c.account.Setting("gateway") == "fastapi" }

// factusV2 reports whether the account speaks Factus's v2 API.
func factusV2(c *Client) bool { return c.account.Setting("api_version") == "v2" }

// factusCheck checks an account's keys: Factus itself takes the OAuth client and the
// user; the FastAPI gateway takes the user (for the Factus token it obtains) and either
// its shared api_key or its own login, and speaks v1 only.
func factusCheck(settings map[string]string, creds []string) []string {
	has := func(k string) bool { return containsString(creds, k) }
	var out []string
	if settings["gateway"] == "" {
		out = requireKeys("factus", []string{"client_id", "client_secret", "username", "password"}, creds)
		for _, k := range []string{"api_key", "gateway_username", "gateway_password"} {
			if has(k) {
				out = append(out, k+` applies only with gateway = "fastapi"`)
			}
		}
		return out
	}
	out = requireKeys("factus", []string{"username", "password"}, creds)
	for _, k := range []string{"client_id", "client_secret"} {
		if has(k) {
			out = append(out, k+" does not apply with a gateway: the gateway holds Factus's client itself")
		}
	}
	if settings["api_version"] == "v2" {
		out = append(out, `api_version "v2" does not apply with a gateway: the gateway speaks Factus v1`)
	}
	login := has("gateway_username") || has("gateway_password")
	switch {
	case has("api_key") && login:
		out = append(out, "api_key and gateway_username/gateway_password exclude each other: the gateway takes one of them")
	case !has("api_key") && !login:
		out = append(out, "missing credential: the gateway's api_key, or its own gateway_username and gateway_password")
	case login && !(has("gateway_username") && has("gateway_password")):
		out = append(out, "gateway_username and gateway_password go together")
	}
	return out
}

// factusAuth is the OAuth2 password grant renewed with the refresh_token grant; through
// the gateway, its own credential (shared key or login) with the Factus token it obtains
// for the account in X-Factus-Token.
func factusAuth(c *Client) authenticator {
	if !factusGateway(c) {
		return newTokens(c, factusLogin, factusRefresh)
	}
	var local authenticator
	if key := c.account.Credentials.Get("api_key"); key != "" {
		local = static{credential{{"X-API-Key", key}}}
	} else {
		local = newTokens(c, gatewayLogin, nil)
	}
	remote := newTokens(c, gatewayFactusLogin(local), gatewayFactusRefresh(local))
	remote.key = "X-Factus-Token"
	return pair{local, remote}
}

// factusNoResend is why emitop sends no Factus bill again, and what it does instead.
// POST /v1/bills/validate creates and validates a whole bill from its original data
// (customer, items, numbering range), which emitop does not hold; Factus's docs
// (manejo-errores) say what to do with each state, and the plan says it.
func factusNoResend(doc model.Document) string {
	switch doc.Status {
	case model.StatusRejected:
		return "not resent: a resend needs the bill's original data, which only the system that made it holds; " +
			"the DIAN's rejection blocks this account's next bills until the bill is deleted: " +
			"`emitop clear --account " + doc.Account + " --doc " + doc.ID + " --reason …` deletes it (confirmed, recorded), " +
			"then that system sends it again, corrected"
	case model.StatusPending, model.StatusUnknown:
		return "not resent: the bill awaits the DIAN; emitop reads it back every poll, and the system that made it " +
			"sends it again with the same original data if the DIAN's answer is late (never delete it)"
	}
	return "not resent: status " + string(doc.Status)
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
		Meaning: "DIAN rule FAJ43b: the name informed differs from the one registered in the RUT for its NIT (a rejection when the text says Rechazo, else a notification).",
		Action:  "Align the name with the RUT; after a notification nothing blocks the bill."},
	factusPendingBill: {Class: model.ClassConflict, Verdict: model.VerdictFix,
		Meaning: "Factus refused a new bill: a bill of this account is not validated by the DIAN (one it rejected, which stays until deleted, or one still awaiting its answer), and Factus takes no new bill until that one is settled.",
		Action: "Find the blocking bill (named below when Factus names it; else this account's rejected or pending bills). If the DIAN rejected it, delete it (`emitop clear`, confirmed and recorded) and have the system that made it send it again, corrected; " +
			"if it awaits the DIAN, have that system send it again with the same data. Then send the new bill again."},

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

// factusPendingBill is the catalog key of Factus's 409 "Se encontró una factura pendiente
// por enviar a la DIAN", which carries no code.
const factusPendingBill = "PENDING_BILL"

// factusBlocks is what a rejected bill's problem adds to its action: Factus's docs
// (manejo-errores, "Si la factura es rechazada") say that a rejected bill blocks the
// account's next ones until it is deleted.
const factusBlocks = "Until then this bill blocks the account's next ones: delete it with `emitop clear` (confirmed and recorded), and the system that made it sends it again, corrected."

// factusBillNumber finds a bill's number (prefix and consecutive, SETP990000204) in a text.
var factusBillNumber = regexp.MustCompile(`\b[A-Z]{1,8}[0-9]{4,}\b`)

// factusTexts places the messages that carry no code, by a phrase they contain (lower
// case), in 4xx responses; the first match wins, so the phrases naming
// wrong credentials come before those naming a failed token.
var factusTexts = []phraseClass{
	// The gateway's shared key, refused: 403 "API Key inválida o ausente.".
	{403, "api key inválida", model.ClassAuth, model.VerdictEscalate},
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
	Errors           json.RawMessage `json:"errors"` // a list of {code, message, detail}, a map by field, or the gateway's
	Error            json.RawMessage `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// factusBill is what emitop reads of a Factus bill as the list and show endpoints return it.
type factusBill struct {
	Number        string          `json:"number"`
	ReferenceCode string          `json:"reference_code"`
	Status        json.RawMessage `json:"status"`       // v1: 1 validated, 0 not; a number or a string
	IsValidated   *bool           `json:"is_validated"` // v2
	Errors        json.RawMessage `json:"errors"`       // DIAN rule texts: a list, or a map by rule
}

// fastAPIError is one item of FastAPI's {"detail":[...]} validation answer.
type fastAPIError struct {
	Loc  []json.RawMessage `json:"loc"`
	Msg  string            `json:"msg"`
	Type string            `json:"type"`
}

var (
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
	if strings.Contains(strings.ToLower(f.message), "pendiente por enviar") {
		f.key, f.class, f.verdict = factusPendingBill, model.ClassConflict, model.VerdictFix
		if n := factusBillNumber.FindString(f.message); n != "" {
			f.message = joinLines(f.message, "blocking bill: "+n)
		}
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
	rf := dianFinding(dianRules(append([]string{env.Message}, lines...)), len(fields) > 0)
	return finding{code: rf.code, class: rf.class, fields: fields, message: joinLines(append([]string{env.Message}, lines...)...)}
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

// factusError is one entry of an errors list as public clients type it ({code, message,
// detail}: sbetav/factus-js, types/common.ts).
type factusError struct {
	Code    json.RawMessage `json:"code"`
	Message json.RawMessage `json:"message"`
	Detail  json.RawMessage `json:"detail"`
}

// factusDetailField finds a field path given as an error's whole detail.
var factusDetailField = regexp.MustCompile(`^[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+$|^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$`)

// factusErrors reads a Factus errors value: a list of texts or of {code, message, detail}
// objects, or a map whose keys are field paths (with a list or a text of messages) or
// DIAN rule ids (with the rule's text). It returns one line per message, prefixed by its
// field, and the fields in order.
func factusErrors(raw json.RawMessage) (lines, fields []string) {
	if items := rawList(raw); len(items) > 0 && jsonPairs(items[0]) != nil {
		for _, it := range items {
			var e factusError
			if !jsonObject(it, &e) {
				continue
			}
			msg, detail := rawText(e.Message), rawText(e.Detail)
			if factusDetailField.MatchString(detail) {
				fields = addField(fields, detail)
			}
			if detail != "" && detail != msg {
				msg = joinLines(msg, detail)
				msg = strings.ReplaceAll(msg, "\n", ": ")
			}
			lines = append(lines, msg)
		}
		return lines, fields
	}
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

// factusBillOf finds the bill in a data value: {"bill":{...}} or the bill itself, known
// by its number or its reference_code.
func factusBillOf(data json.RawMessage) (factusBill, bool) {
	// The "bill" member is looked up in place: decoding the object into a wrapper first
	// read every bill twice.
	if obj, ok := validObject(data); ok {
		if bill := member(obj, "bill", true); len(bill) > 0 && string(bill) != "null" {
			data = bill
		}
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

// factusDocument reads one Factus bill (bare, inside the show envelope, or inside the
// gateway's) as a document. ID is the bill's number as Factus wrote it, what the read
// takes; Number is the same, sanitized. A DIAN "Rechazo" among its errors makes it
// rejected (rule 90 too: DIAN holds it, and the finding says duplicate), and a rejected
// bill's action says that it blocks the account's next bills until deleted; otherwise
// v2's is_validated, or v1's status (1 accepted, 0 pending), decides. The finding is
// empty when the bill has nothing to report; an accepted bill with DIAN notifications
// carries the first one, class ok. ok is false when raw holds no bill.
func factusDocument(raw []byte) (doc model.Document, f finding, ok bool) {
	b, ok := factusBillIn(raw)
	if !ok || b.Number == "" {
		return model.Document{}, finding{}, false
	}
	doc = model.Document{ID: b.Number, Number: model.Line(b.Number, 80)}
	lines, _ := factusErrors(b.Errors)
	rf := dianFinding(dianRules(lines), false)
	switch {
	case rf.class != "":
		doc.Status = model.StatusRejected
		f = finding{code: rf.code, class: rf.class, message: strings.Join(lines, "\n")}
		if rf.class == model.ClassRejected {
			f.note = factusBlocks
		}
	case b.IsValidated != nil && *b.IsValidated, b.IsValidated == nil && factusBillStatus(b.Status) == "1":
		doc.Status = model.StatusAccepted
		if rf.code != "" {
			f = finding{code: rf.code, class: model.ClassOK, message: strings.Join(lines, "\n")}
		}
	case b.IsValidated != nil, factusBillStatus(b.Status) == "0":
		doc.Status = model.StatusPending
	default:
		doc.Status = model.StatusUnknown
	}
	return doc, f, true
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
// ones and, with their "Rechazo" rules, rejected ones. The gateway filters by no status:
// every bill is listed, and the caller keeps the open ones.
func factusOpen(c *Client) []pages {
	var page func(n int) string
	switch {
	case factusGateway(c):
		path := c.Path("bills", "/api/v1/invoices/")
		page = func(n int) string { return fmt.Sprintf("%s?page=%d", path, n) }
	case factusV2(c):
		path := c.Path("bills", "/v2/bills")
		page = func(n int) string { return fmt.Sprintf("%s?filter%%5Bstatus%%5D=0&page=%d", path, n) }
	default:
		path := c.Path("bills", "/v1/bills")
		page = func(n int) string { return fmt.Sprintf("%s?filter%%5Bstatus%%5D=0&page=%d", path, n) }
	}
	return []pages{{first: 1, path: page, split: func(body []byte, n int) ([][]byte, bool, error) {
		var env struct {
			Data struct {
				Data       json.RawMessage `json:"data"`
				Pagination struct {
					CurrentPage int `json:"current_page"`
					LastPage    int `json:"last_page"`
				} `json:"pagination"`
			} `json:"data"`
		}
		// Read in place when the envelope has the usual shape and its pagination decodes
		// alone; anything else is decoded whole, as encoding/json would have it.
		obj, ok := validObject(body)
		var outer json.RawMessage
		if ok {
			outer = member(obj, "data", true)
			ok = jsonKind(outer) == '{'
		}
		if ok {
			env.Data.Data = member(outer, "data", true)
			if pg := member(outer, "pagination", true); pg != nil {
				ok = json.Unmarshal(pg, &env.Data.Pagination) == nil
			}
		}
		if !ok {
			if err := json.Unmarshal(body, &env); err != nil {
				return nil, false, fmt.Errorf("malformed listing: %w", err)
			}
		}
		items, err := checkedItems(env.Data.Data)
		return items, n < env.Data.Pagination.LastPage, err
	}}}
}

// factusReadPath is the read of one bill by its number: GET /v1/bills/show/{number}, v2's
// /v2/bills/{number}, the gateway's /api/v1/invoices/{number}.
func factusReadPath(c *Client, number string) string {
	switch {
	case factusGateway(c):
		return c.Path("bill", "/api/v1/invoices") + "/" + pathID(number)
	case factusV2(c):
		return c.Path("bill", "/v2/bills") + "/" + pathID(number)
	}
	return c.Path("bill", "/v1/bills/show") + "/" + pathID(number)
}

// factusClear deletes a bill the DIAN has not validated, by the reference_code it was
// created with (read from the bill as just read): DELETE /v1/bills/destroy/reference/{code}
// (v2 alike; the gateway's /api/v1/invoices/reference/{code}). Factus's docs give it as the
// way to clear a bill with validation errors so that it can be created again, corrected.
func factusClear(c *Client, ids []string, raws [][]byte) (Resend, error) {
	if len(ids) != 1 {
		return Resend{}, fmt.Errorf("one bill per deletion, not %d", len(ids))
	}
	path := c.Path("destroy", "/v1/bills/destroy/reference")
	switch {
	case factusGateway(c):
		path = c.Path("destroy", "/api/v1/invoices/reference")
	case factusV2(c):
		path = c.Path("destroy", "/v2/bills/destroy/reference")
	}
	r := Resend{Method: http.MethodDelete, IDs: ids}
	if len(raws) == 0 || raws[0] == nil {
		r.Path, r.Note = path+"/{reference_code}", "no body: the bill's reference_code, as its read returns it, goes in the path"
		return r, nil
	}
	b, _ := factusBillIn(raws[0])
	if b.ReferenceCode == "" {
		return Resend{}, fmt.Errorf("bill %s: its read carries no reference_code to delete it by", model.Line(ids[0], 80))
	}
	r.Path = path + "/" + pathID(b.ReferenceCode)
	return r, nil
}

// factusAnswer is an OAuth2 token response.
type factusAnswer struct {
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
}

func (a factusAnswer) grant(c *Client, step string) (grant, error) {
	if a.AccessToken == "" {
		return grant{}, fmt.Errorf("%s: %s: the answer has no access_token", c.account.Name, step)
	}
	return grant{access: a.AccessToken, refresh: a.RefreshToken, ttl: lifetime(a.ExpiresIn)}, nil
}

// factusLogin is the OAuth2 password grant.
func factusLogin(ctx context.Context, c *Client) (grant, error) {
	creds := c.account.Credentials
	form := url.Values{
		"grant_type": {"password"}, "client_id": {creds.Get("client_id")}, "client_secret": {creds.Get("client_secret")},
		"username": {creds.Get("username")}, "password": {creds.Get("password")},
	}
	var a factusAnswer
	if _, err := tokenCall(ctx, c, "login", c.Path("token", "/oauth/token"), []byte(form.Encode()), "application/x-www-form-urlencoded", nil, &a); err != nil {
		return grant{}, err
	}
	return a.grant(c, "login")
}

// factusRefresh is the OAuth2 refresh_token grant.
func factusRefresh(ctx context.Context, c *Client, refresh string) (grant, error) {
	creds := c.account.Credentials
	form := url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh},
		"client_id": {creds.Get("client_id")}, "client_secret": {creds.Get("client_secret")},
	}
	var a factusAnswer
	if _, err := tokenCall(ctx, c, "refresh", c.Path("token", "/oauth/token"), []byte(form.Encode()), "application/x-www-form-urlencoded", nil, &a); err != nil {
		return grant{}, err
	}
	return a.grant(c, "refresh")
}

// gatewayLogin is the gateway's own login: POST /api/v1/auth/login, form username and
// password, answered with a JWT (seed 003) that lasts until the gateway says otherwise.
func gatewayLogin(ctx context.Context, c *Client) (grant, error) {
	creds := c.account.Credentials
	form := url.Values{"username": {creds.Get("gateway_username")}, "password": {creds.Get("gateway_password")}}
	var a factusAnswer
	if _, err := tokenCall(ctx, c, "login", c.Path("login", "/api/v1/auth/login"), []byte(form.Encode()), "application/x-www-form-urlencoded", nil, &a); err != nil {
		return grant{}, err
	}
	return a.grant(c, "login")
}

// gatewayAnswer is a Factus token as the gateway answers it: inside its ApiResponse
// envelope (seed 003's versions), or alone (later ones: response_model AuthToken).
type gatewayAnswer struct {
	Success *bool        `json:"success"`
	Data    factusAnswer `json:"data"`
	factusAnswer
}

// gatewayFactusLogin obtains, through the gateway and with its credential local, the
// Factus token of the account's Factus user: POST /api/v1/auth/factus/login {email,
// password}.
func gatewayFactusLogin(local authenticator) func(ctx context.Context, c *Client) (grant, error) {
	return func(ctx context.Context, c *Client) (grant, error) {
		creds := c.account.Credentials
		return gatewayFactusToken(ctx, c, local, "login", c.Path("factus_login", "/api/v1/auth/factus/login"),
			map[string]string{"email": creds.Get("username"), "password": creds.Get("password")})
	}
}

// gatewayFactusRefresh renews the Factus token through the gateway: POST
// /api/v1/auth/factus/refresh {refresh_token}.
func gatewayFactusRefresh(local authenticator) func(ctx context.Context, c *Client, refresh string) (grant, error) {
	return func(ctx context.Context, c *Client, refresh string) (grant, error) {
		return gatewayFactusToken(ctx, c, local, "refresh", c.Path("factus_refresh", "/api/v1/auth/factus/refresh"),
			map[string]string{"refresh_token": refresh})
	}
}

// gatewayFactusToken asks the gateway for a Factus token, authenticated by local.
func gatewayFactusToken(ctx context.Context, c *Client, local authenticator, step, path string, fields map[string]string) (grant, error) {
	cred, err := local.credential(ctx)
	if err != nil {
		return grant{}, err
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return grant{}, err
	}
	var a gatewayAnswer
	if _, err := tokenCall(ctx, c, step, path, body, "application/json", cred, &a); err != nil {
		return grant{}, err
	}
	if a.Success != nil && !*a.Success {
		return grant{}, fmt.Errorf("%s: %s: the gateway says it failed", c.account.Name, step)
	}
	if a.Data.AccessToken == "" {
		return a.factusAnswer.grant(c, step)
	}
	return a.Data.grant(c, step)
}
