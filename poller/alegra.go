package poller

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"emitop/model"
	"emitop/pace"
)

// alegraDialect is Alegra's accounting API (PROVIDERS.md, "alegra"; seed 000): Basic
// email:token, 150 requests a minute per user.
var alegraDialect = &Dialect{
	name: "alegra", baseURL: "https://api.alegra.com/api/v1",
	keys:    secretKeys("email=id", "token"),
	windows: []pace.Limit{{Name: "", Max: 150, Per: time.Minute}},
	auth:    alegraAuth,
	catalog: alegraCatalog, body: decodeAlegra,
	document: alegraDocument, open: alegraOpen, readPath: alegraReadPath,
	resend: alegraResend, batch: alegraStampMax, resent: alegraResent,
}

// alegraAuth is HTTP Basic email:token.
func alegraAuth(c *Client) authenticator {
	creds := c.account.Credentials
	basic := base64.StdEncoding.EncodeToString([]byte(creds.Get("email") + ":" + creds.Get("token")))
	return static{credential{{"Authorization", "Basic " + basic}}}
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

// alegraScalar is a JSON string, number or boolean read as text (a list of strings joins
// with newlines); objects and null read as "". Polymorphic fields (id, code, message)
// decode into it without a copy of their raw bytes.
type alegraScalar string

func (s *alegraScalar) UnmarshalJSON(b []byte) error {
	*s = alegraScalar(jsonText(b))
	return nil
}

// alegraDetail is "details" read in place: its text and the fields it names.
type alegraDetail struct {
	text   string
	fields []string
}

func (d *alegraDetail) UnmarshalJSON(b []byte) error {
	d.text, d.fields = alegraDetails(b)
	return nil
}

// alegraError is an error object, bare, wrapped in "error", or one entry of the stamp
// answer's "error" array.
type alegraError struct {
	ID      alegraScalar `json:"id"`
	Code    alegraScalar `json:"code"`
	Message alegraScalar `json:"message"`
	Details alegraDetail `json:"details"`
}

// alegraErrors is an "error" member: an object (a wrapped error), a list (the stamp
// answer's failures) or a text.
type alegraErrors struct {
	kind byte // '{', '[', '"'; 0 when absent
	list []alegraError
	text string
}

func (e *alegraErrors) UnmarshalJSON(b []byte) error {
	e.kind = jsonKind(b)
	switch e.kind {
	case '{':
		e.list = make([]alegraError, 1)
		lenientJSON(b, &e.list[0])
	case '[':
		lenientJSON(b, &e.list)
	case '"':
		e.text = jsonText(b)
	default:
		e.kind = 0
	}
	return nil
}

// alegraWarning is one of stamp.warnings: a text or an error object.
type alegraWarning alegraError

func (w *alegraWarning) UnmarshalJSON(b []byte) error {
	if jsonKind(b) == '{' {
		lenientJSON(b, (*alegraError)(w))
		return nil
	}
	w.Message = alegraScalar(jsonText(b))
	return nil
}

type alegraStamp struct {
	LegalStatus string          `json:"legalStatus"`
	Error       alegraErrors    `json:"error"`
	Warnings    []alegraWarning `json:"warnings"`
}

// alegraBody is every top-level shape Alegra answers with: an error, a wrapped error, the
// e-Provider API's list of errors, a stamp answer, or an invoice.
type alegraBody struct {
	alegraError
	Error  alegraErrors       `json:"error"`
	Errors []alegraError      `json:"errors"` // the e-Provider API's {"errors":[{code, message}]}
	Data   []alegraStampEntry `json:"data"`
	Stamp  *alegraStamp       `json:"stamp"`
}

// alegraStampEntry is one invoice in the stamp answer's data: public clients read an entry
// whose success is not true as that invoice's failure, with its message (PROVIDERS.md,
// "What the public sources say").
type alegraStampEntry struct {
	alegraError
	Success        *bool  `json:"success"`
	EmissionStatus string `json:"emissionStatus"`
}

// refused reports whether the entry says its invoice was not stamped: success is there
// and not true.
func (e alegraStampEntry) refused() bool { return e.Success != nil && !*e.Success }

type alegraInvoice struct {
	ID             alegraScalar         `json:"id"`
	Status         string               `json:"status"`
	NumberTemplate alegraNumberTemplate `json:"numberTemplate"`
	Stamp          *alegraStamp         `json:"stamp"`
}

// alegraNumberTemplate is an invoice's numbering: Alegra serializes it as an object or as
// an array of objects, depending on the record (jjuanrivvera/alegra-cli,
// internal/api/invoices.go); the first object of an array is the invoice's.
type alegraNumberTemplate struct {
	Prefix     string       `json:"prefix"`
	Number     alegraScalar `json:"number"`
	FullNumber string       `json:"fullNumber"`
}

func (n *alegraNumberTemplate) UnmarshalJSON(b []byte) error {
	type plain alegraNumberTemplate
	switch jsonKind(b) {
	case '{':
		lenientJSON(b, (*plain)(n))
	case '[':
		var list []plain
		lenientJSON(b, &list)
		if len(list) > 0 {
			*n = alegraNumberTemplate(list[0])
		}
	}
	return nil
}

// decodeAlegra reads any Alegra response body.
func decodeAlegra(status int, body []byte) finding {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return finding{} // HTML, empty, a list: the status says it all
	}
	var b alegraBody
	if !lenientJSON(body, &b) {
		return finding{}
	}
	var f finding
	failed := b.Error.list
	succeeded := 0
	for _, e := range b.Data {
		if e.refused() {
			failed = append(failed, e.alegraError)
		} else {
			succeeded++
		}
	}
	switch {
	case len(b.Errors) > 0:
		f = alegraErrorList(b.Errors)
	case b.Error.kind == '[' || len(b.Data) > 0:
		f = alegraStampAnswer(status, succeeded, failed)
	case b.Error.kind == '{':
		f = alegraFinding(b.Error.list[0])
	case b.Error.kind == '"':
		f.message = b.Error.text
		f.code = strings.ToUpper(string(b.Code))
	default:
		f = alegraFinding(b.alegraError)
		if f.code == "" && f.message == "" && b.Stamp != nil {
			f = alegraStampProblem(b.Stamp)
		}
	}
	alegraCodeFromMessage(&f)
	return f
}

// alegraErrorList reads the e-Provider API's list of errors: the first one's code, and
// every error on a line of its own, its code before its message.
func alegraErrorList(errs []alegraError) finding {
	f := alegraFinding(errs[0])
	lines := make([]string, 0, min(len(errs), maxEntries))
	for _, e := range errs[:min(len(errs), maxEntries)] {
		g := alegraFinding(e)
		lines = append(lines, strings.TrimSpace(strings.TrimSpace(g.code+": ")+" "+g.message))
		for _, field := range g.fields {
			f.fields = addField(f.fields, field)
		}
	}
	f.message = strings.Join(lines, "\n")
	return f
}

// alegraFinding reads the code, message and details of one error object.
func alegraFinding(e alegraError) finding {
	f := finding{code: strings.ToUpper(string(e.Code)), message: string(e.Message), fields: e.Details.fields}
	if e.Details.text != "" {
		f.message = strings.TrimSpace(f.message + "\n" + e.Details.text)
	}
	return f
}

// alegraDetailItem is one entry of a "details" list: a text or a {field, message}.
type alegraDetailItem struct {
	Field   string       `json:"field"`
	Path    string       `json:"path"`
	Message alegraScalar `json:"message"`
}

func (d *alegraDetailItem) UnmarshalJSON(b []byte) error {
	if jsonKind(b) == '{' {
		type plain alegraDetailItem
		lenientJSON(b, (*plain)(d))
		return nil
	}
	d.Message = alegraScalar(jsonText(b))
	return nil
}

// alegraDetails reads "details": a text, a list of texts or of {field, message}
// objects, or an object of field → message (kept in the order sent).
func alegraDetails(raw []byte) (string, []string) {
	var lines, fields []string
	switch jsonKind(raw) {
	case '"':
		return jsonText(raw), nil
	case '{':
		jsonMembers(raw, func(key string, value json.RawMessage) {
			k := strings.TrimSpace(key)
			fields = append(fields, dotPath(k))
			if t := jsonText(value); t != "" {
				lines = append(lines, k+": "+t)
			}
		})
	case '[':
		var items []alegraDetailItem
		lenientJSON(raw, &items)
		for _, it := range items {
			if p := cmp.Or(it.Field, it.Path); p != "" {
				fields = append(fields, dotPath(p))
			}
			if it.Message != "" {
				lines = append(lines, string(it.Message))
			}
		}
	}
	return strings.Join(lines, "\n"), fields
}

// alegraStampAnswer reads POST /invoices/stamp's answer: the first failure's code and
// message, with how many invoices failed. All successes is no problem.
func alegraStampAnswer(status, succeeded int, failed []alegraError) finding {
	if len(failed) == 0 {
		return finding{}
	}
	f := alegraFinding(failed[0])
	ids := make([]string, 0, min(len(failed), 10))
	for _, e := range failed[:min(len(failed), 10)] {
		ids = append(ids, string(e.ID))
	}
	more := ""
	if len(failed) > len(ids) {
		more = ", …"
	}
	f.message = strings.TrimSpace(f.message + "\n" + strconv.Itoa(len(failed)) + " of " +
		strconv.Itoa(len(failed)+succeeded) + " invoices failed to stamp (ids " + strings.Join(ids, ", ") + more + ")")
	if _, known := alegraCatalog[f.code]; !known && status >= 200 && status < 300 {
		f.class = model.ClassUnknown // a refused stamp on a 200: nothing says whether it landed
	}
	return f
}

// alegraStampProblem reads an invoice's stamp: a rejected one is a problem, with the code
// and message of stamp.error, else of its warnings: a warning object's code, or the DIAN
// rule its text quotes ("Regla: FAD06, Rechazo: …"), a rejection before a notification.
func alegraStampProblem(s *alegraStamp) finding {
	if !strings.EqualFold(s.LegalStatus, "STAMPED_AND_REJECTED") {
		return finding{}
	}
	f := finding{class: model.ClassRejected}
	switch s.Error.kind {
	case '{':
		g := alegraFinding(s.Error.list[0])
		f.code, f.message, f.fields = g.code, g.message, g.fields
	case '"':
		f.message = s.Error.text
	}
	if f.message == "" && f.code == "" {
		var lines []string
		for _, w := range s.Warnings {
			if f.code == "" {
				f.code = strings.ToUpper(string(w.Code))
			}
			if w.Message != "" {
				lines = append(lines, string(w.Message))
			}
		}
		f.message = strings.Join(lines, "\n")
		if f.code == "" {
			if rf := dianFinding(dianRules(lines), false); rf.code != "" {
				f.code = rf.code
				if rf.class == model.ClassDuplicate {
					f.class = rf.class
				}
			}
		}
	}
	return f
}

// alegraCodeFromMessage takes a stamping code from the message text when the body gave
// none, or gave one the catalog does not know; failing that, the DIAN rule the message
// quotes ("Regla: FAD06, Rechazo: …").
func alegraCodeFromMessage(f *finding) {
	if _, known := alegraCatalog[f.code]; known && f.code != "" {
		return
	}
	c := alegraCodeIn(f.message)
	if _, known := alegraCatalog[c]; c != "" && (f.code == "" || known) {
		f.code = c
	}
	if f.code == "" {
		f.code = dianFinding(dianRules([]string{f.message}), false).code
	}
}

// alegraCodeIn finds the first \b(AEP\d{3,5}|EPR\d{3}|D\d{4})\b in s: the stamping codes
// Alegra surfaces, as jjuanrivvera/alegra-cli (internal/api/errors.go) matches them.
func alegraCodeIn(s string) string {
	for i := 0; i+5 <= len(s); i++ {
		if i > 0 && alegraWordByte(s[i-1]) {
			continue
		}
		var prefix, lo, hi int
		switch {
		case strings.HasPrefix(s[i:], "AEP"):
			prefix, lo, hi = 3, 3, 5
		case strings.HasPrefix(s[i:], "EPR"):
			prefix, lo, hi = 3, 3, 3
		case s[i] == 'D':
			prefix, lo, hi = 1, 4, 4
		default:
			continue
		}
		n := 0
		for i+prefix+n < len(s) && s[i+prefix+n] >= '0' && s[i+prefix+n] <= '9' {
			n++
		}
		end := i + prefix + n
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
// the caller. ok is false for bytes that are not an invoice object. ID is kept exactly;
// Number is sanitized: it reaches screens, logs and error texts.
func alegraDocument(raw []byte) (model.Document, finding, bool) {
	raw = bytes.TrimSpace(raw)
	var inv alegraInvoice
	if len(raw) == 0 || raw[0] != '{' || !lenientJSON(raw, &inv) {
		return model.Document{}, finding{}, false
	}
	doc := model.Document{Provider: "alegra", ID: string(inv.ID), Status: model.StatusUnknown}
	nt := inv.NumberTemplate
	number := nt.FullNumber
	if number == "" {
		number = nt.Prefix + string(nt.Number)
	}
	doc.Number = model.Line(number, 80)
	legal := ""
	if inv.Stamp != nil {
		legal = strings.ToUpper(strings.TrimSpace(inv.Stamp.LegalStatus))
	}
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
		return doc, finding{}, true
	}
	f := alegraStampProblem(inv.Stamp)
	alegraCodeFromMessage(&f)
	return doc, f, true
}

// alegraPage is the most invoices Alegra lists at once.
const alegraPage = 30

// alegraOpen lists every invoice, 30 at a time: Alegra's listing has no filter by legal
// status, so the pending and rejected ones are picked out by the caller.
func alegraOpen(c *Client) []pages {
	path := c.Path("invoices", "/invoices")
	return []pages{{first: 0, path: func(n int) string {
		return fmt.Sprintf("%s?start=%d&limit=%d&metadata=true", path, n*alegraPage, alegraPage)
	}, split: func(body []byte, n int) ([][]byte, bool, error) {
		if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
			items, err := rawItems(b)
			return items, len(items) == alegraPage, err
		}
		var env struct {
			Metadata struct {
				Total int `json:"total"`
			} `json:"metadata"`
			Data json.RawMessage `json:"data"`
		}
		obj, ok := validObject(body) // read in place when the metadata decodes alone
		if ok {
			env.Data = member(obj, "data", true)
			if meta := member(obj, "metadata", true); meta != nil {
				ok = json.Unmarshal(meta, &env.Metadata) == nil
			}
		}
		if !ok {
			if err := json.Unmarshal(body, &env); err != nil {
				return nil, false, fmt.Errorf("malformed listing: %w", err)
			}
		}
		items, err := checkedItems(env.Data)
		return items, (n+1)*alegraPage < env.Metadata.Total, err
	}}}
}

// alegraReadPath is GET /invoices/{id}.
func alegraReadPath(c *Client, id string) string {
	return c.Path("invoices", "/invoices") + "/" + pathID(id)
}

// alegraStampMax is the most invoices one POST /invoices/stamp takes.
const alegraStampMax = 10

// alegraResend stamps invoices again: POST /invoices/stamp {"ids":[...]}. Each id keeps
// the JSON type the invoice's own "id" has (a number on some accounts), else a string.
func alegraResend(c *Client, ids []string, raws [][]byte) (Resend, error) {
	if len(ids) == 0 || len(ids) > alegraStampMax {
		return Resend{}, fmt.Errorf("alegra: stamp takes 1 to %d invoices, not %d", alegraStampMax, len(ids))
	}
	list := make([]json.RawMessage, len(ids))
	for i, id := range ids {
		v, err := json.Marshal(id)
		if err != nil {
			return Resend{}, err
		}
		list[i] = v
		if i < len(raws) && raws[i] != nil {
			var inv struct {
				ID json.RawMessage `json:"id"`
			}
			var n json.Number
			if json.Unmarshal(raws[i], &inv) == nil && json.Unmarshal(inv.ID, &n) == nil && n.String() == id {
				list[i] = inv.ID
			}
		}
	}
	body, err := json.Marshal(struct {
		IDs []json.RawMessage `json:"ids"`
	}{list})
	if err != nil {
		return Resend{}, err
	}
	return Resend{Method: http.MethodPost, Path: c.Path("stamp", "/invoices/stamp"), Body: body, IDs: ids}, nil
}

// alegraResent reads the stamp answer, {"data":[{id, success, emissionStatus, message}],
// "error":[{id, code, emissionStatus, message}]}, into each invoice's state: a data entry
// whose success is there and not true is that invoice's rejection, with the code its
// message names; another data entry is what its emissionStatus says (accepted when
// none); an error entry is rejected with its code, unless its emissionStatus says
// otherwise, and class unknown when the catalog does not know its code on a 2xx: nothing
// says whether that stamp landed.
func alegraResent(d *Dialect, account string, r Response, ids []string) map[string]Item {
	var b struct {
		Data  []alegraStampEntry `json:"data"`
		Error []alegraStampEntry `json:"error"`
	}
	body := bytes.TrimSpace(r.Body)
	if len(body) == 0 || body[0] != '{' || !lenientJSON(body, &b) {
		return nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	doc := func(id, emission string, def model.Status) model.Document {
		st, ok := alegraLegal[strings.ToUpper(strings.TrimSpace(emission))]
		if !ok {
			st = def
		}
		return model.Document{Account: account, Provider: d.name, ID: id, Status: st}
	}
	out := map[string]Item{}
	refuse := func(e alegraStampEntry, unknownClass model.Class) {
		id := string(e.ID)
		if !want[id] {
			return
		}
		f := alegraFinding(e.alegraError)
		alegraCodeFromMessage(&f)
		if _, known := d.catalog[f.code]; !known && r.Status/100 == 2 {
			f.class = unknownClass
		}
		p := d.finish(Response{Status: r.Status, Method: http.MethodPost, Received: r.Received}, f)
		out[id] = Item{Doc: doc(id, e.EmissionStatus, model.StatusRejected), Problem: &p, Raw: r.Body}
	}
	for _, e := range b.Data {
		switch id := string(e.ID); {
		case !want[id]:
		case e.refused():
			// A refusal the catalog does not know is still a refusal: never "accepted".
			refuse(e, model.ClassRejected)
		default:
			out[id] = Item{Doc: doc(id, e.EmissionStatus, model.StatusAccepted), Raw: r.Body}
		}
	}
	for _, e := range b.Error {
		// A failure that names no known code, on a 2xx: nothing says whether it landed.
		refuse(e, model.ClassUnknown)
	}
	return out
}
