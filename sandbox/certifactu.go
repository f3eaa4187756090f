package sandbox

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// certifactu is Certifactu (VeriFactu before the AEAT): X-API-Key, 100 requests/min per
// key with X-RateLimit-* (epoch reset) and retry_after in the 429 body.
var certifactu = &dialect{
	name: "certifactu", root: "certifactu", base: "/certifactu",
	accounts: []string{"cf-madrid", "cf-sevilla"},
	extra:    []string{"cf-valencia"}, // its stock limiter states 20 per 10 s, not the documented 100/min
	pending:  true,
	catalog: []reason{
		{"1100", "Valor o tipo incorrecto del campo: FechaExpedicionFactura", causeData},
		{"4112", "El titular del certificado debe ser el obligado a expedir, su representante o un colaborador social", causeOutside},
		{"3000", "Registro de facturación duplicado", causeDuplicate},
		{"1104", "Valor del campo NumSerieFactura incorrecto", causeData},
		{"1189", "Si TipoFactura es F1 o F3, el bloque Destinatarios es obligatorio", causeData},
		{"1237", "El valor del campo CalificacionOperacion es incorrecto", causeData},
		{"4104", "Error en la cabecera: el NIF del obligado a expedir no está identificado", causeOutside},
		{"4134", "Servicio no activo para el obligado a expedir", causeOutside},
		{"4108", "Error técnico al obtener el certificado", causeTransient},
	},
	ident: func(a *account, d *doc, rng *rand.Rand) {
		d.id = uuid4(rng, false)
		series := map[string]string{"cf-sevilla": "SV2025", "cf-valencia": "VL2025"}[a.name]
		if series == "" {
			series = "F2025"
		}
		d.number = fmt.Sprintf("%s-%04d", series, d.n+1)
	},
	creds: func(a *account, rng *rand.Rand) map[string]string {
		return map[string]string{"api_key": "cf_live_" + hexOf(rng, 40)}
	},
	limiter: func(a *account, l Limits) limiter {
		if a.name == "cf-valencia" {
			return &fixedWindow{rate: l.CertifactuStock, style: styleEpoch}
		}
		return &fixedWindow{rate: l.Certifactu, style: styleEpoch}
	},
	rate: func(l Limits) float64 { return float64(l.Certifactu.Limit) / l.Certifactu.Period.Seconds() },
	tooMany: func(w http.ResponseWriter, retry time.Duration) {
		secs := ceilSeconds(retry)
		writeJSON(w, http.StatusTooManyRequests, obj{
			"detail": fmt.Sprintf("Rate limit exceeded. Try again in %d seconds", secs), "code": "RATE_LIMITED", "retry_after": secs,
		})
	},
	unavailable: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusServiceUnavailable, obj{"detail": "Service temporarily unavailable", "code": "SERVICE_UNAVAILABLE"})
	},
	serverError: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusInternalServerError, obj{"detail": "Internal server error", "code": "INTERNAL_ERROR"})
	},
	serve: serveCertifactu,
}

// nifLetters is the DNI/NIE check-letter table.
const nifLetters = "TRWAGMYFPDXBNJZSQVHLCKE"

// issuerNIF is the account's NIF: a DNI for cf-madrid, a NIE for cf-sevilla, both with
// a valid check letter.
func issuerNIF(a *account) string {
	if a.name == "cf-sevilla" {
		n := 1234567 // X → 0
		return fmt.Sprintf("X%07d%c", n, nifLetters[n%23])
	}
	n := 12345678
	return fmt.Sprintf("%08d%c", n, nifLetters[n%23])
}

func cfError(w http.ResponseWriter, status int, code, detail string, extra obj) {
	body := obj{"detail": detail, "code": code}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

func serveCertifactu(s *Sandbox, dl *dialect, w http.ResponseWriter, r *http.Request, rest string) {
	key := r.Header.Get("X-API-Key")
	var a *account
	if key != "" {
		a = s.find(dl, "api_key", func(a *account) string { return a.creds["api_key"] }, key)
	}
	if a == nil || a.expired() {
		cfError(w, http.StatusUnauthorized, "INVALID_API_KEY", "Invalid or missing API key", nil)
		return
	}
	now, ok := s.gate(w, r, a, a.limit)
	if !ok {
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	switch {
	case rest == "/v1/invoices" && r.Method == http.MethodGet:
		a.cfList(w, r)
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "invoices" && r.Method == http.MethodGet:
		d := a.view(a.byID[parts[2]], now)
		if d == nil {
			a.mu.Unlock()
			cfError(w, http.StatusNotFound, "NOT_FOUND", "Invoice not found", nil)
			return
		}
		body := mustJSON(a.cfInvoice(d))
		a.mu.Unlock()
		writeRaw(w, http.StatusOK, body)
	case len(parts) == 4 && parts[0] == "v1" && parts[1] == "invoices" && parts[3] == "submit" && r.Method == http.MethodPost:
		a.cfSubmit(w, r, parts[2], now)
	case len(parts) >= 2 && parts[0] == "v1" && parts[1] == "invoices":
		a.mu.Unlock()
		cfError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method Not Allowed", nil)
	default:
		a.mu.Unlock()
		cfError(w, http.StatusNotFound, "NOT_FOUND", "Not Found", nil)
	}
}

// cfStatus is the invoice's status as Certifactu names it.
func cfStatus(d *doc) string {
	switch d.state {
	case pending:
		return "pending"
	case rejected:
		return "rejected"
	}
	if d.observed {
		return "registered_with_errors"
	}
	return "registered"
}

func (a *account) cfInvoice(d *doc) obj {
	inv := obj{
		"id": d.id, "series_number": d.number, "issuer_nif": issuerNIF(a),
		"issue_date": d.created.Format("2006-01-02"), "total_amount": money(d.amount), "currency": "EUR",
		"status": cfStatus(d), "aeat": nil,
		"created_at": d.created.UTC().Format(time.RFC3339), "updated_at": d.changed.UTC().Format(time.RFC3339),
	}
	switch {
	case d.state == rejected:
		inv["aeat"] = obj{"state": "Incorrecto", "code": d.why.code, "description": d.why.message}
	case d.state == accepted && d.observed:
		inv["aeat"] = obj{"state": "AceptadoConErrores", "code": "2004", "description": "El valor del campo FechaOperacion no es coherente con FechaExpedicionFactura"}
	case d.state == accepted:
		inv["aeat"] = obj{"state": "Correcto", "code": nil, "description": nil}
	}
	return inv
}

var cfStatuses = map[string]bool{"pending": true, "registered": true, "registered_with_errors": true, "rejected": true}

// cfList answers GET /v1/invoices?status=&page=&page_size= (assumed); a.mu is released here.
func (a *account) cfList(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	pageNo, ok1 := intParam(r, "page", 1)
	size, ok2 := intParam(r, "page_size", 25)
	field := ""
	switch {
	case status != "" && !cfStatuses[status]:
		field = "status"
	case !ok1 || pageNo < 1:
		field = "page"
	case !ok2 || size < 1 || size > 100:
		field = "page_size"
	}
	if field != "" {
		a.mu.Unlock()
		cfError(w, http.StatusBadRequest, "INVALID_PARAMETER", fmt.Sprintf("Invalid value for '%s'", field), obj{"field": field})
		return
	}
	all := a.sortedByN(func(d *doc) bool { return status == "" || cfStatus(d) == status })
	items := []obj{}
	for _, d := range page(all, pageNo, size) {
		items = append(items, a.cfInvoice(d))
	}
	body := mustJSON(obj{"data": items, "page": pageNo, "page_size": size, "total": len(all)})
	a.mu.Unlock()
	writeRaw(w, http.StatusOK, body)
}

// cfSubmit answers POST /v1/invoices/{id}/submit: the stored record goes to the AEAT
// again. a.mu is held and released here.
func (a *account) cfSubmit(w http.ResponseWriter, r *http.Request, id string, now time.Time) {
	d := a.byID[id]
	if d == nil {
		a.mu.Unlock()
		cfError(w, http.StatusNotFound, "NOT_FOUND", "Invoice not found", nil)
		return
	}
	fault, delay := a.nextEmitFault(), a.faults.TimeoutDelay
	var body []byte
	status := http.StatusOK
	if a.emit(d, now) == outDuplicate {
		status = http.StatusConflict
		body = mustJSON(obj{
			"detail": fmt.Sprintf("Invoice %s already exists for this issuer", d.number),
			"code":   "DUPLICATE_INVOICE", "existing_id": d.id,
		})
	} else {
		body = mustJSON(a.cfInvoice(d))
	}
	a.mu.Unlock()
	a.finish(w, r, fault, delay, status, body)
}
