package poller

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"emitop/model"
	"emitop/pace"
)

// svdteName is the provider name of El Salvador's DTE gateway.
const svdteName = "sv-dte"

// svdteDialect is the El Salvador DTE gateway (PROVIDERS.md, "sv-dte"; seed 001): an API
// key, three NestJS throttlers, the Ministry's answer passed through.
var svdteDialect = &Dialect{
	name: svdteName,
	keys: secretKeys("api_key"),
	windows: []pace.Limit{
		{Name: "short", Max: 3, Per: time.Second},
		{Name: "medium", Max: 20, Per: 10 * time.Second},
		{Name: "long", Max: 100, Per: time.Minute},
	},
	auth:    apiKeyAuth,
	catalog: svdteCatalog(), body: svdteBody,
	document: svdteDocument, open: svdteOpen, readPath: svdteReadPath,
	rejected: svdteRejected, carries: svdteCarries, emission: svdteEmission,
	resend: svdteResend,
}

// The gateway gives its own errors no code, only a shape and a message. emitop names
// each shape the gateway documents so the table below can say what it means; the names
// are catalog keys (finding.key), never shown as the provider's code.
const (
	svdteKeyExpired = "API_KEY_EXPIRED"  // 401 "API Key expirada"
	svdteKeyDeleted = "API_KEY_DELETED"  // 401 "API Key eliminada"
	svdteItems      = "ITEMS_INVALID"    // 400 errores[].item
	svdtePayments   = "PAYMENTS_INVALID" // 400 errores[].pago
	svdteSchema     = "SCHEMA_INVALID"   // 400 errores[].path
	svdteTotals     = "TOTALS_MISMATCH"  // 400 esperado/recibido
	svdteQuota      = "QUOTA_EXHAUSTED"  // 403 usado/limite/plan
)

// mhFamily is a range of the Ministry's answer codes (codigoMsg) that mean the same.
type mhFamily struct {
	from, to int
	guide    model.Guidance
}

// mhFamilies group the Ministry's codes as integrators' notes do (PROVIDERS.md, "What the
// public sources say"): 003–034 a field of the DTE is wrong, 094–116 a general or
// credential error of the transmission. A code svdteCodes names keeps its own meaning.
var mhFamilies = []mhFamily{
	{3, 34, model.Guidance{Class: model.ClassRejected, Verdict: model.VerdictFix,
		Meaning: "The Ministry rejected the DTE: a field of the DTE is wrong (codes 003–034); its description or observations name the field in brackets.",
		Action:  "Correct the field named, then resend the DTE; a rejected DTE was not registered, so its codigoGeneracion may be sent again."}},
	{94, 116, model.Guidance{Class: model.ClassPermission, Verdict: model.VerdictEscalate,
		Meaning: "The Ministry refused the transmission for a general or credential reason (codes 094–116): the issuer's credentials with the Ministry, its authorisation to transmit, or the transmission itself, not the DTE's data.",
		Action:  "Have someone with access to the issuer's Ministry credentials and the gateway's configuration check them; resend once they are right."}},
}

// svdteCatalog is the Ministry's code families with svdteCodes over them.
func svdteCatalog() map[string]model.Guidance {
	catalog := make(map[string]model.Guidance, len(svdteCodes)+60)
	for _, fam := range mhFamilies {
		for n := fam.from; n <= fam.to; n++ {
			catalog[fmt.Sprintf("%03d", n)] = fam.guide
		}
	}
	for code, g := range svdteCodes {
		catalog[code] = g
	}
	return catalog
}

// svdteCodes holds the Ministry of Finance's answer codes (codigoMsg) known one by one,
// the gateway's own error shapes, and the HTTP statuses the gateway documents.
var svdteCodes = map[string]model.Guidance{
	// The Ministry's answer codes.
	"001": {Class: model.ClassOK, Meaning: "The Ministry processed the DTE and gave it a reception stamp.", Action: "Nothing to do."},
	"002": {Class: model.ClassOK, Meaning: "The Ministry received the DTE with observations: it is accepted.", Action: "Read the observations and correct them in future documents; do not resend."},
	"004": {Class: model.ClassDuplicate, Verdict: model.VerdictReconcile, Meaning: "The Ministry already holds a DTE with this codigoGeneracion: an earlier attempt landed.", Action: "Query the DTE by its codigoGeneracion and keep that answer; never resend it."},
	"801": {Class: model.ClassCertificate, Verdict: model.VerdictEscalate, Meaning: "The signing certificate is invalid or expired.", Action: "Have the issuer renew the certificate with the Ministry and load it into the gateway, then resend."},
	"802": {Class: model.ClassDuplicate, Verdict: model.VerdictReconcile, Meaning: "The control number (numeroControl) was already used for another DTE.", Action: "Check whether a DTE with this control number is this same sale; if not, give the document a new control number before resending."},
	"803": {Class: model.ClassRejected, Verdict: model.VerdictFix, Meaning: "The establishment in the DTE is not registered with the Ministry.", Action: "Correct the establishment code, or have the establishment registered with the Ministry, then resend."},
	"804": {Class: model.ClassRejected, Verdict: model.VerdictFix, Meaning: "The issuer's NIT is invalid.", Action: "Correct emisor.nit to the issuer's registered NIT, then resend."},
	"805": {Class: model.ClassCertificate, Verdict: model.VerdictEscalate, Meaning: "The DTE's digital signature is invalid: the certificate or its key does not sign for this issuer.", Action: "Have the issuer's certificate and its password checked in the gateway, then resend."},
	"999": {Class: model.ClassNotFound, Verdict: model.VerdictRetry, Meaning: "The Ministry has no DTE with this codigoGeneracion: the emission queried did not land.", Action: "Resending the same DTE is safe (the Ministry would answer 004 if it had landed); check the codigoGeneracion if it should exist."},

	// The gateway's own error shapes.
	svdteKeyExpired: {Class: model.ClassAuth, Verdict: model.VerdictReauth, Meaning: "The account's API key has expired.", Action: "Create a new API key in the gateway, put it in the account's configuration, then repeat."},
	svdteKeyDeleted: {Class: model.ClassAuth, Verdict: model.VerdictEscalate, Meaning: "The account's API key was deleted: logging in again cannot fix it.", Action: "Ask the account owner why the key was deleted and for a new one; then update the account's configuration."},
	svdteItems:      {Class: model.ClassValidation, Verdict: model.VerdictFix, Meaning: "Some items of the DTE are invalid.", Action: "Correct the items' fields named, then resend."},
	svdtePayments:   {Class: model.ClassValidation, Verdict: model.VerdictFix, Meaning: "Some payments of the DTE are invalid.", Action: "Correct the payments' fields named, then resend."},
	svdteSchema:     {Class: model.ClassValidation, Verdict: model.VerdictFix, Meaning: "The DTE does not match the Ministry's JSON schema.", Action: "Correct the fields named to the expected format, then resend."},
	svdteTotals:     {Class: model.ClassValidation, Verdict: model.VerdictFix, Meaning: "The DTE's totals do not add up (the tolerance is $0.01).", Action: "Recompute the totals from the items, then resend."},
	svdteQuota:      {Class: model.ClassPlan, Verdict: model.VerdictEscalate, Meaning: "The account's monthly DTE quota is spent.", Action: "Ask the account owner to upgrade the plan, or wait for next month's quota."},

	// The HTTP statuses the gateway documents, for JSON bodies of no known shape.
	"HTTP 400": {Class: model.ClassValidation, Verdict: model.VerdictFix, Meaning: "The request has invalid or missing parameters.", Action: "Check the payload's structure, correct it, then resend."},
	"HTTP 401": {Class: model.ClassAuth, Verdict: model.VerdictReauth, Meaning: "The API key is missing or invalid.", Action: "Check the account's X-API-Key, then repeat."},
	"HTTP 403": {Class: model.ClassPlan, Verdict: model.VerdictEscalate, Meaning: "The gateway refused the request; it documents 403 only for a spent monthly DTE quota.", Action: "Check the account's plan and quota with its owner."},
	"HTTP 404": {Class: model.ClassNotFound, Meaning: "The resource does not exist, or the endpoint is wrong.", Action: "Check the codigoGeneracion and the account's base URL."},
	"HTTP 429": {Class: model.ClassRateLimited, Meaning: "A rate-limit window is exhausted (3/s, 20/10 s, 100/min); the gateway blocks the key for the whole window.", Action: "Wait until the window resets, then repeat."},
	"HTTP 500": {Class: model.ClassServer, Meaning: "The gateway or the Ministry failed unexpectedly, without the Ministry's answer.", Action: "Query the DTE's status before resending an emission; reads may be retried with backoff (5 s, 10 s, 20 s)."},
}

// svdteReply is every JSON shape the gateway answers with, merged: NestJS errors
// (message, statusCode), the gateway's own errors (mensaje, errores, ...) and the
// Ministry's answer (estado, codigoMsg, ...). Every field stays raw: each may come as a
// string, a number, a list or not at all.
type svdteReply struct {
	Message    json.RawMessage `json:"message"` // a string, or a list of strings
	Mensaje    json.RawMessage `json:"mensaje"`
	Errores    json.RawMessage `json:"errores"`
	Sugerencia json.RawMessage `json:"sugerencia"`
	Esperado   json.RawMessage `json:"esperado"`
	Recibido   json.RawMessage `json:"recibido"`
	Diferencia json.RawMessage `json:"diferencia"`
	Usado      json.RawMessage `json:"usado"`
	Limite     json.RawMessage `json:"limite"`
	Plan       json.RawMessage `json:"plan"`

	Estado           json.RawMessage `json:"estado"`
	CodigoGeneracion json.RawMessage `json:"codigoGeneracion"`
	NumeroControl    json.RawMessage `json:"numeroControl"`
	CodigoMsg        json.RawMessage `json:"codigoMsg"`
	DescripcionMsg   json.RawMessage `json:"descripcionMsg"`
	Observaciones    json.RawMessage `json:"observaciones"`
	FhProcesamiento  json.RawMessage `json:"fhProcesamiento"`
	DTE              json.RawMessage `json:"dte"`
}

// svdteFieldError is one entry of errores: an item or payment rule, or a schema error.
type svdteFieldError struct {
	Item     json.RawMessage `json:"item"`
	Pago     json.RawMessage `json:"pago"`
	Campo    json.RawMessage `json:"campo"`
	Valor    json.RawMessage `json:"valor"`
	Regla    json.RawMessage `json:"regla"`
	Path     json.RawMessage `json:"path"`
	Message  json.RawMessage `json:"message"`
	Expected json.RawMessage `json:"expected"`
}

// svdteBody decodes one gateway response body.
func svdteBody(status int, body []byte) finding {
	var r svdteReply
	if !jsonObject(body, &r) {
		return finding{}
	}
	if r.isAnswer() {
		return r.answer()
	}
	suggestion := rawText(r.Sugerencia)
	if f, ok := r.fieldErrors(); ok {
		f.message = joinLines(f.message, suggestion)
		return f
	}
	if rawPresent(r.Esperado) || rawPresent(r.Recibido) {
		return finding{key: svdteTotals, message: joinLines(rawText(r.Mensaje)+svdteFigures(
			svdteFigure{"esperado", r.Esperado}, svdteFigure{"recibido", r.Recibido}, svdteFigure{"diferencia", r.Diferencia}), suggestion)}
	}
	if rawPresent(r.Usado) || rawPresent(r.Limite) {
		return finding{key: svdteQuota, message: joinLines(rawText(r.Mensaje)+svdteFigures(
			svdteFigure{"usado", r.Usado}, svdteFigure{"limite", r.Limite}, svdteFigure{"plan", r.Plan}), suggestion)}
	}
	message := joinLines(append(rawTexts(r.Message), rawText(r.Mensaje), suggestion)...)
	key := ""
	switch lower := strings.ToLower(message); {
	case strings.Contains(lower, "api key expirada"):
		key = svdteKeyExpired
	case strings.Contains(lower, "api key eliminada"):
		key = svdteKeyDeleted
	}
	return finding{key: key, message: message}
}

// svdteFigure is one named figure of a body, such as the quota's "usado".
type svdteFigure struct {
	name  string
	value json.RawMessage
}

// svdteFigures writes a body's figures as " (name value, ...)", skipping absent ones.
func svdteFigures(fs ...svdteFigure) string {
	var parts []string
	for _, f := range fs {
		if v := rawText(f.value); v != "" {
			parts = append(parts, f.name+" "+v)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// isAnswer reports whether the body is the Ministry's answer about one DTE.
func (r *svdteReply) isAnswer() bool {
	return rawText(r.Estado) != "" || rawText(r.CodigoMsg) != ""
}

// answer reads the Ministry's answer: PROCESADO is ok, RECHAZADO rejected (whatever the
// HTTP status: the gateway passes rejections through as 500), and codigoMsg is the code.
func (r *svdteReply) answer() finding {
	f := finding{
		code:    svdteMsgCode(rawText(r.CodigoMsg)),
		message: joinLines(append([]string{rawText(r.DescripcionMsg)}, rawTexts(r.Observaciones)...)...),
	}
	switch r.estado() {
	case "PROCESADO":
		f.class = model.ClassOK
	case "RECHAZADO":
		f.class = model.ClassRejected
	}
	f.fields = mhFields(f.message)
	return f
}

func (r *svdteReply) estado() string {
	return strings.ToUpper(strings.TrimSpace(rawText(r.Estado)))
}

// svdteMsgCode writes a numeric codigoMsg with the Ministry's three digits (1 → "001").
func svdteMsgCode(code string) string {
	code = strings.TrimSpace(code)
	if n, err := strconv.Atoi(code); err == nil && n >= 0 && n < 1000 {
		return fmt.Sprintf("%03d", n)
	}
	return code
}

// mhFieldRef finds the fields the Ministry names in its texts: "[receptor.nrc] ...".
var mhFieldRef = regexp.MustCompile(`\[([A-Za-z][A-Za-z0-9_]*(?:(?:\.[A-Za-z0-9_]+)|(?:\[[0-9]+\]))*)\]`)

// mhFields lists the dotted paths named in brackets in the Ministry's texts.
func mhFields(text string) []string {
	var fields []string
	for _, m := range mhFieldRef.FindAllStringSubmatch(text, maxEntries) {
		fields = append(fields, dotPath(m[1]))
	}
	return fields
}

// fieldErrors reads errores: item and payment rules and schema errors. An item or a
// payment is numbered from 1 in the gateway's errors (the seed's first example reports a
// lone bad item as "item": 1), so item N is the field path items.<N-1>.campo, and payment
// N is pagos.<N-1>.campo, in the zero-based form every emitop field path uses.
func (r *svdteReply) fieldErrors() (finding, bool) {
	entries := rawList(r.Errores)
	if len(entries) == 0 {
		return finding{}, false
	}
	f := finding{}
	lines := []string{rawText(r.Mensaje)}
	var items, payments, schema bool
	for _, raw := range entries {
		var e svdteFieldError
		if !jsonObject(raw, &e) {
			continue
		}
		field := dotPath(rawText(e.Campo))
		switch {
		case rawPresent(e.Path):
			schema = true
			field = dotPath(rawText(e.Path))
		case rawPresent(e.Item):
			items = true
			field = joinPath("items", svdteIndex(e.Item), field)
		case rawPresent(e.Pago):
			payments = true
			field = joinPath("pagos", svdteIndex(e.Pago), field)
		}
		if field != "" {
			f.fields = append(f.fields, field)
		}
		line := field
		if v := rawText(e.Valor); v != "" {
			line += " = " + v
		}
		rule := joinLines(rawText(e.Regla), rawText(e.Message))
		if line != "" && rule != "" {
			line += ": "
		}
		line += rule
		if x := rawText(e.Expected); x != "" {
			line += " (expected: " + x + ")"
		}
		lines = append(lines, line)
	}
	switch {
	case schema:
		f.key = svdteSchema
	case payments:
		f.key = svdtePayments
	case items:
		f.key = svdteItems
	}
	f.message = joinLines(lines...)
	return f, true
}

// svdteIndex turns the gateway's 1-based item or payment number into a 0-based index;
// anything else is kept as written.
func svdteIndex(raw json.RawMessage) string {
	s := strings.TrimSpace(rawText(raw))
	if n, err := strconv.Atoi(s); err == nil && n >= 1 {
		return strconv.Itoa(n - 1)
	}
	return s
}

// svdteDocument reads one DTE as the gateway lists or shows it (the answer's fields plus
// "dte", the DTE as last emitted). ok is false when raw is not a DTE. f carries the
// Ministry's code and reasons when the DTE was rejected, or accepted with observations
// (class ok); f.class is empty otherwise.
func svdteDocument(raw []byte) (doc model.Document, f finding, ok bool) {
	var r svdteReply
	if !jsonObject(raw, &r) {
		return model.Document{}, finding{}, false
	}
	id, number := rawText(r.CodigoGeneracion), rawText(r.NumeroControl)
	if id == "" || number == "" {
		var dte struct {
			Identificacion struct {
				CodigoGeneracion json.RawMessage `json:"codigoGeneracion"`
				NumeroControl    json.RawMessage `json:"numeroControl"`
			} `json:"identificacion"`
		}
		if jsonObject(r.DTE, &dte) {
			if id == "" {
				id = rawText(dte.Identificacion.CodigoGeneracion)
			}
			if number == "" {
				number = rawText(dte.Identificacion.NumeroControl)
			}
		}
	}
	if strings.TrimSpace(id) == "" {
		return model.Document{}, finding{}, false
	}
	doc = model.Document{Provider: svdteName, ID: id, Number: model.Line(number, 80)}
	switch r.estado() {
	case "PROCESADO":
		doc.Status = model.StatusAccepted
		if len(rawTexts(r.Observaciones)) > 0 {
			f = r.answer()
		}
	case "RECHAZADO":
		doc.Status = model.StatusRejected
		f = r.answer()
	default:
		doc.Status = model.StatusPending
	}
	return doc, f, true
}

// svdtePage is the most DTEs the gateway lists at once (assumed endpoint).
const svdtePage = 50

// svdteOpen lists the rejected DTEs. The Ministry answers an emission at once, so a DTE
// is never pending for long: rejected ones are what needs an operator.
func svdteOpen(c *Client) []pages {
	return []pages{svdteRejected(c)}
}

// svdteRejected is the listing of the rejected DTEs.
func svdteRejected(c *Client) pages {
	path := c.Path("list", "/factura")
	return pages{first: 1, path: func(n int) string {
		return fmt.Sprintf("%s?estado=RECHAZADO&page=%d&pageSize=%d", path, n, svdtePage)
	}, split: envelope("total", svdtePage)}
}

// svdteReadPath is GET /factura/{codigoGeneracion} (assumed endpoint).
func svdteReadPath(c *Client, id string) string {
	return c.Path("list", "/factura") + "/" + pathID(id)
}

// svdteCarries reports whether a DTE's JSON holds the DTE itself ("dte", as GET
// /factura/{codigoGeneracion} returns it): a listed DTE does not, and its resend needs
// the read.
func svdteCarries(raw []byte) bool {
	var stored struct {
		DTE json.RawMessage `json:"dte"`
	}
	return jsonObject(raw, &stored) && jsonKind(stored.DTE) == '{'
}

// svdteEmission names the Ministry's answer a DTE's JSON carries: its codigoGeneracion,
// estado, codigoMsg and fhProcesamiento, the moment the Ministry processed its last
// emission. The gateway's stored DTE is the one last emitted, so JSON read with the same
// answer holds the DTE the gateway holds now. "" when it names no processing time.
func svdteEmission(raw []byte) string {
	var r svdteReply
	if !jsonObject(raw, &r) {
		return ""
	}
	when := rawText(r.FhProcesamiento)
	if when == "" {
		return ""
	}
	return strings.Join([]string{rawText(r.CodigoGeneracion), r.estado(), rawText(r.CodigoMsg), when}, "\x00")
}

// svdteResend emits a DTE again: POST /factura/emitir with the DTE exactly as the
// gateway stored it (the "dte" of GET /factura/{codigoGeneracion}), so its
// codigoGeneracion, and with it the Ministry's duplicate check, stays the same.
func svdteResend(c *Client, ids []string, raws [][]byte) (Resend, error) {
	if len(ids) != 1 {
		return Resend{}, fmt.Errorf("sv-dte: one DTE per emission, not %d", len(ids))
	}
	r := Resend{Method: http.MethodPost, Path: c.Path("emit", "/factura/emitir"), IDs: ids, Whole: true}
	if len(raws) == 0 || raws[0] == nil {
		r.Note, r.BodyToCome = "the DTE as GET "+svdteReadPath(c, ids[0])+" returns it (its \"dte\")", true
		return r, nil
	}
	var stored struct {
		DTE json.RawMessage `json:"dte"`
	}
	var dte struct {
		Identificacion struct {
			CodigoGeneracion string `json:"codigoGeneracion"`
		} `json:"identificacion"`
	}
	if !jsonObject(raws[0], &stored) || !jsonObject(stored.DTE, &dte) {
		return Resend{}, fmt.Errorf("sv-dte: DTE %s: the gateway returned no stored DTE to emit again", model.Line(ids[0], 80))
	}
	if !strings.EqualFold(dte.Identificacion.CodigoGeneracion, ids[0]) {
		return Resend{}, fmt.Errorf("sv-dte: DTE %s: the stored DTE names another codigoGeneracion", model.Line(ids[0], 80))
	}
	r.Body = stored.DTE
	return r, nil
}
