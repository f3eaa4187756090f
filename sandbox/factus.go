package sandbox

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// factus is Factus (Laravel, before the DIAN): OAuth2 password grant with expiring
// tokens, 80 requests a minute with Laravel rate-limit headers, bills validated with
// reference_code as the key, the v1 and v2 APIs side by side (the demo's factus-cal
// speaks v2), and the deletion of a bill the DIAN has not validated.
//
// As Factus's docs say (manejo-errores): a bill the DIAN rejected stays status 0
// (is_validated false) with its "Regla: …, Rechazo: …" texts in errors, and blocks the
// account's next bills until it is deleted; a bill awaiting the DIAN is status 0 with no
// rejection. GET /v1/bills?filter[status]=0 lists both.
var factus = &dialect{
	name: "factus", root: "factus", base: "/factus",
	accounts: []string{"factus-bog", "factus-med"},
	extra:    []string{"factus-cal"},
	settings: func(a *account) map[string]string {
		if a.name == "factus-cal" {
			return map[string]string{"api_version": "v2"}
		}
		return nil
	},
	pending: true,
	catalog: []reason{
		{"FAK24", "Regla: FAK24, Rechazo: No fue informado el número de documento de identificación del adquiriente.", causeData},
		{"ZE02", "Regla: ZE02, Rechazo: El certificado de firma digital está vencido o revocado.", causeOutside},
		{"90", "Regla: 90, Rechazo: Documento procesado anteriormente", causeDuplicate},
		{"FAD06", "Regla: FAD06, Rechazo: El valor del CUFE no está calculado correctamente.", causeData},
		{"FAB05b", "Regla: FAB05b, Rechazo: El número de la factura no está dentro del rango de numeración autorizado.", causeData},
		{"FAJ44b", "Regla: FAJ44b, Rechazo: El NIT del adquiriente no está registrado en el RUT.", causeData},
	},
	ident: func(a *account, d *doc, rng *rand.Rand) {
		factusIdent(a, d, d.n, rng)
	},
	creds: func(a *account, rng *rand.Rand) map[string]string {
		return map[string]string{
			"client_id": uuid4(rng, false), "client_secret": hexOf(rng, 40),
			"username": a.name + "@sandbox.emitop.test", "password": "sandbox-" + hexOf(rng, 12),
		}
	},
	limiter: func(_ *account, l Limits) limiter { return &fixedWindow{rate: l.Factus, style: styleLaravel} },
	rate:    func(l Limits) float64 { return float64(l.Factus.Limit) / l.Factus.Period.Seconds() },
	tooMany: func(w http.ResponseWriter, _ time.Duration) {
		writeJSON(w, http.StatusTooManyRequests, obj{"message": "Too Many Attempts."})
	},
	unavailable: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusServiceUnavailable, obj{"message": "Service Unavailable"})
	},
	serverError: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusInternalServerError, obj{"message": "Server Error"})
	},
	serve: serveFactus,
}

func factusIdent(a *account, d *doc, k int, rng *rand.Rand) {
	prefix, first, tag := "SETP", 990000000, "BOG"
	switch a.name {
	case "factus-med":
		prefix, tag = "SETT", "MED"
	case "factus-cal":
		prefix, tag = "SETC", "CAL"
	case "factus-gw":
		prefix, tag = "SETG", "GW"
	}
	d.id = strconv.Itoa(first + k + 1)
	d.number = prefix + d.id
	d.ref = fmt.Sprintf("REF-%s-%06d", tag, k+1)
	d.cufe = hexOf(rng, 96)
}

func factusOAuthError(w http.ResponseWriter, status int, code, desc, hint string) {
	writeJSON(w, status, obj{"error": code, "error_description": desc, "hint": hint, "message": desc})
}

func serveFactus(s *Sandbox, dl *dialect, w http.ResponseWriter, r *http.Request, rest string) {
	if rest == "/oauth/token" {
		if r.Method != http.MethodPost {
			writeJSON(w, http.StatusMethodNotAllowed, obj{"message": "The " + r.Method + " method is not supported for route oauth/token. Supported methods: POST."})
			return
		}
		s.factusToken(dl, w, r)
		return
	}
	now := s.now()
	a, ok := s.bearer(r, now)
	if !ok || a.d != dl {
		writeJSON(w, http.StatusUnauthorized, obj{"message": "Unauthenticated."})
		return
	}
	now, ok = s.gate(w, r, a, a.limit)
	if !ok {
		return
	}
	switch {
	case rest == "/v1/bills" && r.Method == http.MethodGet:
		a.factusList(w, r, a.factusBill)
	case rest == "/v2/bills" && r.Method == http.MethodGet:
		a.factusList(w, r, a.factusV2Item)
	case strings.HasPrefix(rest, "/v1/bills/show/") && r.Method == http.MethodGet:
		a.factusShow(w, a.view(a.byNumber[strings.TrimPrefix(rest, "/v1/bills/show/")], now), a.factusEnvelope)
	case strings.HasPrefix(rest, "/v1/bills/destroy/reference/") && r.Method == http.MethodDelete:
		a.factusDestroy(w, strings.TrimPrefix(rest, "/v1/bills/destroy/reference/"))
	case strings.HasPrefix(rest, "/v2/bills/destroy/reference/") && r.Method == http.MethodDelete:
		a.factusDestroy(w, strings.TrimPrefix(rest, "/v2/bills/destroy/reference/"))
	case strings.HasPrefix(rest, "/v2/bills/") && strings.Count(rest, "/") == 3 && r.Method == http.MethodGet:
		a.factusShow(w, a.view(a.byNumber[strings.TrimPrefix(rest, "/v2/bills/")], now), a.factusV2Bill)
	case rest == "/v1/bills/validate" && r.Method == http.MethodPost:
		a.factusValidate(w, r, now)
	default:
		a.mu.Unlock()
		writeJSON(w, http.StatusNotFound, obj{"message": "The route " + strings.TrimPrefix(r.URL.Path, "/") + " could not be found."})
	}
}

// factusToken answers POST /oauth/token: the password and refresh_token grants.
func (s *Sandbox) factusToken(dl *dialect, w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		factusOAuthError(w, http.StatusBadRequest, "invalid_request", "The request is missing a required parameter.", "")
		return
	}
	f := r.PostForm
	a := s.find(dl, "client", func(a *account) string { return credKey(a.creds["client_id"], a.creds["client_secret"]) },
		credKey(f.Get("client_id"), f.Get("client_secret")))
	grant := f.Get("grant_type")
	if grant != "password" && grant != "refresh_token" {
		factusOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.", "Check that all required parameters have been provided")
		return
	}
	if a == nil {
		factusOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed", "")
		return
	}
	now, ok := s.gate(w, r, a, nil)
	if !ok {
		return
	}
	ttl := cmp(a.faults.TokenTTL, s.ttl["factus"])
	a.mu.Unlock()
	switch grant {
	case "password":
		if f.Get("username") != a.creds["username"] || f.Get("password") != a.creds["password"] {
			factusOAuthError(w, http.StatusBadRequest, "invalid_grant", "The user credentials were incorrect.", "")
			return
		}
	case "refresh_token":
		owner, revoked := s.redeem(f.Get("refresh_token"))
		if owner != a {
			hint := "Cannot decrypt the refresh token"
			if revoked {
				hint = "Token has been revoked"
			}
			factusOAuthError(w, http.StatusBadRequest, "invalid_grant", "The refresh token is invalid.", hint)
			return
		}
	}
	access, refresh := s.issue(a, ttl, now, "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.")
	writeJSON(w, http.StatusOK, obj{
		"token_type": "Bearer", "expires_in": int64(ttl / time.Second), "access_token": access, "refresh_token": refresh,
	})
}

// factusErrors are the DIAN texts a bill carries.
func factusErrors(d *doc) []string {
	switch {
	case d.state == rejected:
		return []string{d.why.message}
	case d.state == accepted && d.observed:
		return []string{"Regla: FAJ43b, Notificación: Nombre informado no corresponde al registrado en el RUT con respecto al Nit suministrado."}
	}
	return []string{}
}

// factusStamp is Factus's date format ("17-07-2024 03:54:10 PM").
const factusStamp = "02-01-2006 03:04:05 PM"

// factusBill is a bill as GET /v1/bills lists it (factus-docs v1, ver-y-filtrar).
func (a *account) factusBill(d *doc) obj {
	status := 0
	if d.state == accepted {
		status = 1
	}
	id, _ := strconv.Atoi(d.id)
	name := clientNames[d.n%len(clientNames)]
	return obj{
		"id": id - 990000000, "document": obj{"code": "01", "name": "Factura electrónica de Venta"},
		"number": d.number, "api_client_name": "emitop sandbox", "reference_code": d.ref,
		"identification": strconv.Itoa(900100000 + d.n%997), "graphic_representation_name": name,
		"company": name, "trade_name": "", "names": name, "email": "cliente@example.com",
		"total": money(d.amount), "status": status, "errors": factusErrors(d),
		"send_email": 1, "has_claim": 0, "is_negotiable_instrument": 0,
		"payment_form": obj{"code": "1", "name": "Pago de contado"},
		"created_at":   d.created.Format(factusStamp), "credit_notes": []any{}, "debit_notes": []any{},
	}
}

// factusEnvelope is the data of GET /v1/bills/show/{number} (factus-docs v1, ver).
func (a *account) factusEnvelope(d *doc) obj {
	bill := obj{
		"id": d.n + 1, "document": obj{"code": "01", "name": "Factura electrónica de Venta"},
		"operation_type": obj{"code": "10", "name": "Estándar"},
		"number":         d.number, "reference_code": d.ref, "order_reference": nil,
		"status": 0, "send_email": 0, "qr": "https://catalogo-vpfe-hab.dian.gov.co/document/searchqr?documentkey=" + d.cufe,
		"cufe": d.cufe, "validated": nil, "total": money(d.amount), "observation": nil,
		"errors": factusErrors(d), "created_at": d.created.Format(factusStamp),
	}
	if d.state == accepted {
		bill["status"], bill["validated"] = 1, d.changed.Format(factusStamp)
	}
	return obj{
		"company":         obj{"nit": "900555111", "dv": "7", "company": "Sandbox " + a.name, "name": "Sandbox " + a.name},
		"customer":        obj{"identification": strconv.Itoa(900100000 + d.n%997), "dv": nil, "names": clientNames[d.n%len(clientNames)], "email": "cliente@example.com"},
		"numbering_range": obj{"prefix": strings.TrimRight(d.number, "0123456789"), "from": 990000000, "to": 995000000, "resolution_number": "18760000001"},
		"billing_period":  []any{}, "bill": bill, "related_documents": []any{}, "items": []any{},
		"allowance_charges": []any{}, "withholding_taxes": []any{}, "credit_notes": []any{}, "debit_notes": []any{},
	}
}

// factusV2Errors are a bill's DIAN texts as v2 gives them: an object keyed by rule.
func factusV2Errors(d *doc) obj {
	errs := obj{}
	for _, e := range factusErrors(d) {
		rule, _, _ := strings.Cut(strings.TrimPrefix(e, "Regla: "), ",")
		errs[rule] = e
	}
	return errs
}

// factusValidated is v2's validated_at: the DIAN's time, or null.
func factusValidated(d *doc) any {
	if d.state == accepted {
		return d.changed.Format(factusStamp)
	}
	return nil
}

// factusV2Item is a bill as GET /v2/bills lists it (factus-js BillListItem).
func (a *account) factusV2Item(d *doc) obj {
	return obj{
		"api_client_name": "emitop sandbox", "number": d.number, "reference_code": d.ref,
		"identification": strconv.Itoa(900100000 + d.n%997), "names": clientNames[d.n%len(clientNames)],
		"total": money(d.amount), "errors": factusV2Errors(d), "send_email": true, "has_claim": false,
		"is_negotiable_instrument": false, "is_validated": d.state == accepted, "validated_at": factusValidated(d),
		"created_at": d.created.Format(factusStamp),
	}
}

// factusV2Bill is the data of GET /v2/bills/{number} (factus-docs v2, crear-y-validar).
func (a *account) factusV2Bill(d *doc) obj {
	return obj{
		"reference_code": d.ref, "number": d.number, "order_reference": nil, "send_email": true,
		"has_claim": false, "is_negotiable_instrument": false, "is_validated": d.state == accepted,
		"validated_at": factusValidated(d), "errors": factusV2Errors(d), "observation": nil,
		"created_at":     d.created.Format(factusStamp),
		"document_type":  obj{"code": "01", "name": "Factura electrónica de Venta"},
		"operation_type": obj{"code": "10", "name": "Estándar"}, "payment_details": []any{},
		"company":  obj{"nit": "900555111", "dv": "7"},
		"customer": obj{"identification": strconv.Itoa(900100000 + d.n%997), "names": clientNames[d.n%len(clientNames)]},
		"items":    []any{}, "cufe": d.cufe,
	}
}

// factusShow answers a read of one bill, rendered by data; a.mu is released here.
func (a *account) factusShow(w http.ResponseWriter, d *doc, data func(*doc) obj) {
	if d == nil {
		a.mu.Unlock()
		writeJSON(w, http.StatusNotFound, obj{"status": "Not Found", "message": "No se encontró la factura"})
		return
	}
	body := mustJSON(obj{"status": "OK", "message": "Solicitud exitosa", "data": data(d)})
	a.mu.Unlock()
	writeRaw(w, http.StatusOK, body)
}

// factusDestroy answers DELETE …/bills/destroy/reference/{reference_code}; a.mu is
// released here.
func (a *account) factusDestroy(w http.ResponseWriter, ref string) {
	status, body := a.destroy(ref)
	a.mu.Unlock()
	writeJSON(w, status, body)
}

// destroy deletes the bill of a reference_code when the DIAN has not validated it
// (factus-docs, eliminar); a validated one cannot be (that answer is assumed). It
// returns Factus's answer; a.mu is held.
func (a *account) destroy(ref string) (int, obj) {
	d := a.byRef[ref]
	switch {
	case d == nil:
		return http.StatusNotFound, obj{"status": "Not Found", "message": "No se encontró la factura con código de referencia " + ref}
	case d.state == accepted:
		msg := "La factura " + d.number + " ya fue validada por la DIAN y no se puede eliminar"
		return http.StatusConflict, obj{"status": "Conflict", "message": msg,
			"errors": []obj{{"code": 409, "message": msg, "detail": d.number, "api_version": "v1"}}}
	}
	a.remove(d)
	a.stats.Deleted++
	return http.StatusOK, obj{"status": "OK", "message": "Documento con código de referencia " + ref + " eliminado con éxito"}
}

// factusList answers GET /v1/bills (and /v2/bills) with filter[status|number|
// reference_code], 10 a page, newest first, each bill rendered by item. a.mu is held and
// released here.
func (a *account) factusList(w http.ResponseWriter, r *http.Request, item func(*doc) obj) {
	q := r.URL.Query()
	pageNo, ok := intParam(r, "page", 1)
	status := q.Get("filter[status]")
	if !ok || pageNo < 1 || status != "" && status != "0" && status != "1" {
		a.mu.Unlock()
		writeJSON(w, http.StatusUnprocessableEntity, obj{"status": "Validation error", "message": "Los datos proporcionados no son válidos.",
			"data": obj{"errors": obj{"filter.status": []string{"El campo filter.status debe ser 0 o 1."}}}})
		return
	}
	number, ref := q.Get("filter[number]"), q.Get("filter[reference_code]")
	all := a.sortedByN(func(d *doc) bool {
		if d.state == draft {
			return false
		}
		if status == "1" && d.state != accepted || status == "0" && d.state == accepted {
			return false
		}
		return (number == "" || d.number == number) && (ref == "" || d.ref == ref)
	})
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	const per = 10
	items := []obj{}
	for _, d := range page(all, pageNo, per) {
		items = append(items, item(d))
	}
	body := mustJSON(obj{"status": "OK", "message": "Solicitud exitosa", "data": obj{
		"data": items, "pagination": factusPagination(len(all), pageNo, per, len(items)),
	}})
	a.mu.Unlock()
	writeRaw(w, http.StatusOK, body)
}

// factusPagination is Laravel's pagination block as Factus lists it.
func factusPagination(total, pageNo, per, n int) obj {
	from, to := (pageNo-1)*per+1, (pageNo-1)*per+n
	if n == 0 {
		from, to = 0, 0
	}
	return obj{"total": total, "per_page": per, "current_page": pageNo,
		"last_page": max(1, (total+per-1)/per), "from": from, "to": to, "links": []any{}}
}

// factusValidate answers POST /v1/bills/validate. reference_code is the key: a known one
// answers for its bill (resent when rejected), a new one creates a bill. a.mu is released.
func (a *account) factusValidate(w http.ResponseWriter, r *http.Request, now time.Time) {
	var req struct {
		ReferenceCode string `json:"reference_code"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.ReferenceCode == "" {
		a.mu.Unlock()
		writeJSON(w, http.StatusUnprocessableEntity, obj{"status": "Validation error", "message": "Los datos proporcionados no son válidos.",
			"data": obj{"errors": obj{"reference_code": []string{"El campo reference code es obligatorio."}}}})
		return
	}
	if b := a.factusBlocking(req.ReferenceCode); b != nil {
		a.mu.Unlock()
		factusPending(w, b)
		return
	}
	fault, delay := a.nextEmitFault(), a.faults.TimeoutDelay
	d := a.byRef[req.ReferenceCode]
	if d == nil {
		k := 500000 + a.created
		a.created++
		d = &doc{n: 100000 + k, created: now, changed: now, state: draft, amount: 11900000}
		factusIdent(a, d, k, seeded(a.s.seed, a.name, saltOutcome|uint64(k)))
		d.ref = req.ReferenceCode
		a.add(d)
	}
	var status int
	var body []byte
	switch a.emit(d, now) {
	case outAccepted:
		status = http.StatusCreated
		body = mustJSON(obj{"status": "Created", "message": "Documento con el número " + d.number + " ha sido validado",
			"data": a.factusEnvelope(d)})
	case outRejected:
		status = http.StatusUnprocessableEntity
		body = mustJSON(obj{"status": "Validation error", "message": "Documento con errores en campos mandatorios.",
			"data": obj{"errors": []string{d.why.message}}})
	case outDuplicate:
		status = http.StatusConflict
		body = mustJSON(obj{"status": "Conflict", "message": firstOf(a.d.catalog, causeDuplicate).message,
			"data": obj{"bill": a.factusBill(d)}})
	case outProcessing:
		status, body = http.StatusConflict, factusPendingBody(d)
	}
	a.mu.Unlock()
	a.finish(w, r, fault, delay, status, body)
}

// factusBlocking is the bill that keeps a new bill from being validated: one the DIAN
// rejected (it stays until deleted, factus-docs manejo-errores), or the bill of this very
// reference_code while it awaits the DIAN. nil when none.
func (a *account) factusBlocking(ref string) *doc {
	if d := a.byRef[ref]; d != nil && d.state == pending {
		return d
	}
	for _, d := range a.docs {
		if d.state == rejected && d.why.cause != causeDuplicate {
			return d
		}
	}
	return nil
}

// factusPendingBody is the 409 for a pending bill, in the shape public clients read
// (errors of {code, message, detail, api_version}); its detail naming the blocking bill is
// assumed.
func factusPendingBody(b *doc) []byte {
	const msg = "Se encontró una factura pendiente por enviar a la DIAN"
	return mustJSON(obj{"status": "Conflict", "message": msg, "errors": []obj{{
		"code": 409, "message": msg, "api_version": "v1",
		"detail": "La factura " + b.number + " (código de referencia " + b.ref + ") no ha sido validada por la DIAN",
	}}})
}

func factusPending(w http.ResponseWriter, b *doc) {
	writeRaw(w, http.StatusConflict, factusPendingBody(b))
}
