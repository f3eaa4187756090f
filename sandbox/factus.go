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
// tokens, Laravel rate-limit headers, bills validated with reference_code as the key.
//
// Listing rejected bills (assumed, kept here): a bill the DIAN rejected stays
// status 0 ("not validated") with its "Regla: …, Rechazo: …" texts in errors, so
// GET /v1/bills?filter[status]=0 lists pending and rejected bills together; a client
// tells them apart by the Rechazo texts.
var factus = &dialect{
	name: "factus", root: "factus", base: "/factus",
	accounts: []string{"factus-bog", "factus-med"},
	pending:  true,
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
	limiter: func(l Limits) limiter { return &fixedWindow{rate: l.Factus, style: styleLaravel} },
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
	if a.name == "factus-med" {
		prefix, tag = "SETT", "MED"
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
	if !ok {
		writeJSON(w, http.StatusUnauthorized, obj{"message": "Unauthenticated."})
		return
	}
	now, ok = s.gate(w, r, a, a.limit)
	if !ok {
		return
	}
	switch {
	case rest == "/v1/bills" && r.Method == http.MethodGet:
		a.factusList(w, r)
	case strings.HasPrefix(rest, "/v1/bills/show/") && r.Method == http.MethodGet:
		d := a.view(a.byNumber[strings.TrimPrefix(rest, "/v1/bills/show/")], now)
		if d == nil {
			a.mu.Unlock()
			writeJSON(w, http.StatusNotFound, obj{"status": "Not Found", "message": "No se encontró la factura"})
			return
		}
		body := mustJSON(obj{"status": "OK", "message": "Solicitud exitosa", "data": a.factusEnvelope(d)})
		a.mu.Unlock()
		writeRaw(w, http.StatusOK, body)
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
	a := s.find(dl, func(a *account) bool {
		return a.creds["client_id"] == f.Get("client_id") && a.creds["client_secret"] == f.Get("client_secret")
	})
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

func (a *account) factusBill(d *doc) obj {
	status := 0
	if d.state == accepted {
		status = 1
	}
	id, _ := strconv.Atoi(d.id)
	return obj{
		"id": id - 990000000, "document": obj{"code": "01", "name": "Factura electrónica de Venta"},
		"number": d.number, "reference_code": d.ref, "api_client_name": "emitop sandbox",
		"identification": strconv.Itoa(900100000 + d.n%997), "names": clientNames[d.n%len(clientNames)],
		"email": "cliente@example.com", "total": money(d.amount), "status": status, "cufe": d.cufe,
		"errors": factusErrors(d), "created_at": d.created.Format("02-01-2006 15:04:05"),
	}
}

func (a *account) factusEnvelope(d *doc) obj {
	return obj{
		"company":  obj{"nit": "900555111", "company": "Sandbox " + a.name},
		"customer": obj{"identification": strconv.Itoa(900100000 + d.n%997), "names": clientNames[d.n%len(clientNames)]},
		"bill":     a.factusBill(d),
	}
}

// factusList answers GET /v1/bills with filter[status|number|reference_code], 10 a page,
// newest first. a.mu is held and released here.
func (a *account) factusList(w http.ResponseWriter, r *http.Request) {
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
		items = append(items, a.factusBill(d))
	}
	body := mustJSON(obj{"status": "OK", "message": "Solicitud exitosa", "data": obj{
		"data": items,
		"pagination": obj{"total": len(all), "per_page": per, "current_page": pageNo,
			"last_page": max(1, (len(all)+per-1)/per)},
	}})
	a.mu.Unlock()
	writeRaw(w, http.StatusOK, body)
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
		status = http.StatusConflict
		body = mustJSON(obj{"status": "Conflict", "message": "Se encontró una factura pendiente por enviar a la DIAN"})
	}
	a.mu.Unlock()
	a.finish(w, r, fault, delay, status, body)
}
