package sandbox

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// alegra is Alegra's accounting API: Basic email:token, 150 requests/min per user with
// X-Rate-Limit-* (delta reset), invoices stamped through POST /invoices/stamp. alegra-mx
// serializes numberTemplate as an array and its ids as numbers; a rejection told by the
// DIAN's rule alone comes in the stamp's warnings ("Regla: FAD06, Rechazo: …").
var alegra = &dialect{
	name: "alegra", root: "alegra", base: "/alegra/api/v1",
	accounts: []string{"alegra-co", "alegra-mx"},
	drafts:   true, pending: true,
	catalog: []reason{
		{"AEP1005", "El certificado digital está vencido. Renueva el certificado de firma en la configuración de Alegra.", causeOutside},
		{"AEP1001", "El certificado digital no es válido.", causeOutside},
		{"AEP1003", "No hay un certificado digital cargado para firmar.", causeOutside},
		{"AEP6008", "La empresa no está habilitada para emitir facturas electrónicas ante la DIAN.", causeOutside},
		{"AEP6016", "Falta el correo electrónico del cliente.", causeData},
		{"AEP6012", "Falta el tipo de organización del cliente.", causeData},
		{"AEP6013", "Falta el tipo de identificación del cliente.", causeData},
		{"AEP6014", "Falta el nombre del cliente.", causeData},
		{"AEP6015", "Falta el régimen del cliente.", causeData},
		{"AEP6017", "Falta la dirección del cliente.", causeData},
		{"AEP6011", "Regla 90: el número está fuera del rango de numeración autorizado.", causeData},
		{"AEP6009", "Regla 90: documento procesado anteriormente, la numeración ya fue emitida.", causeDuplicate},
		{"EPR500", "EPR500 Error de comunicación con la DIAN.", causeTransient},
		{"EPR503", "EPR503 Tiempo de espera agotado con la DIAN.", causeTransient},
		{"FAD06", "Regla: FAD06, Rechazo: El valor del CUFE no está calculado correctamente", causeData},
	},
	ident: func(a *account, d *doc, rng *rand.Rand) {
		first, prefix := 1000, "FE"
		if a.name == "alegra-mx" {
			first, prefix = 5000, "A"
		}
		d.id = strconv.Itoa(first + d.n)
		d.number = prefix + d.id
		d.cufe = hexOf(rng, 96)
	},
	creds: func(a *account, rng *rand.Rand) map[string]string {
		return map[string]string{"email": a.name + "@sandbox.emitop.test", "token": hexOf(rng, 20)}
	},
	limiter: func(_ *account, l Limits) limiter { return &fixedWindow{rate: l.Alegra, style: styleAlegra} },
	rate:    func(l Limits) float64 { return float64(l.Alegra.Limit) / l.Alegra.Period.Seconds() },
	tooMany: func(w http.ResponseWriter, _ time.Duration) {
		writeJSON(w, http.StatusTooManyRequests, obj{"message": "Has superado el límite de peticiones por minuto de tu plan.", "code": 429})
	},
	unavailable: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusServiceUnavailable, obj{"message": "Alegra está en mantenimiento. Intenta más tarde.", "code": 503})
	},
	serverError: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusInternalServerError, obj{"message": "Error interno del servidor.", "code": 500})
	},
	serve: serveAlegra,
}

func alegraError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, obj{"message": msg, "code": status})
}

func serveAlegra(s *Sandbox, dl *dialect, w http.ResponseWriter, r *http.Request, rest string) {
	email, tok, ok := r.BasicAuth()
	var a *account
	if ok {
		a = s.find(dl, "basic", func(a *account) string { return credKey(a.creds["email"], a.creds["token"]) }, credKey(email, tok))
	}
	if a == nil {
		alegraError(w, http.StatusUnauthorized, "Autenticación fallida: el correo o el token no son válidos.")
		return
	}
	if a.expired() {
		alegraError(w, http.StatusUnauthorized, "Autenticación fallida: el token fue revocado o expiró.")
		return
	}
	now, ok := s.gate(w, r, a, a.limit)
	if !ok {
		return
	}
	switch {
	case rest == "/invoices" && r.Method == http.MethodGet:
		a.alegraList(w, r)
	case rest == "/invoices/stamp" && r.Method == http.MethodPost:
		a.alegraStamp(w, r, now)
		return
	case strings.HasPrefix(rest, "/invoices/") && strings.Count(rest, "/") == 2 && r.Method == http.MethodGet:
		d := a.view(a.byID[strings.TrimPrefix(rest, "/invoices/")], now)
		if d == nil {
			a.mu.Unlock()
			// Alegra wraps some errors in "error" (alegra-cli, internal/api/errors.go).
			writeJSON(w, http.StatusNotFound, obj{"error": obj{"message": "La factura no existe.", "code": http.StatusNotFound}})
			return
		}
		body := mustJSON(a.alegraInvoice(d))
		a.mu.Unlock()
		writeRaw(w, http.StatusOK, body)
		return
	case rest == "/invoices" || rest == "/invoices/stamp" || strings.HasPrefix(rest, "/invoices/"):
		a.mu.Unlock()
		alegraError(w, http.StatusMethodNotAllowed, "Método no permitido para este recurso.")
		return
	default:
		a.mu.Unlock()
		alegraError(w, http.StatusNotFound, "Recurso no encontrado.")
		return
	}
}

// expired reports whether a static credential of the account has been expired by a fault.
func (a *account) expired() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.faults.KeyExpired
}

// alegraList answers GET /invoices; a.mu is held and released here.
func (a *account) alegraList(w http.ResponseWriter, r *http.Request) {
	start, ok1 := intParam(r, "start", 0)
	limit, ok2 := intParam(r, "limit", 30)
	if !ok1 || !ok2 || start < 0 || limit < 1 || limit > 30 {
		a.mu.Unlock()
		alegraError(w, http.StatusBadRequest, "Parámetros inválidos: start ≥ 0 y 1 ≤ limit ≤ 30.")
		return
	}
	all := a.sortedByN(func(*doc) bool { return true })
	items := make([]obj, 0, limit)
	for _, d := range all[min(start, len(all)):min(start+limit, len(all))] {
		items = append(items, a.alegraInvoice(d))
	}
	var body []byte
	if r.URL.Query().Get("metadata") == "true" {
		body = mustJSON(obj{"metadata": obj{"total": len(all)}, "data": items})
	} else {
		body = mustJSON(items)
	}
	a.mu.Unlock()
	writeRaw(w, http.StatusOK, body)
}

func (a *account) alegraID(d *doc) any {
	if a.name == "alegra-mx" {
		n, _ := strconv.Atoi(d.id)
		return n
	}
	return d.id
}

// legalStatus is the stamp's legal status for a document that is not a draft.
func legalStatus(d *doc) string {
	switch d.state {
	case pending:
		return "STAMPED_AND_WAITING_RESPONSE"
	case rejected:
		return "STAMPED_AND_REJECTED"
	}
	if d.observed {
		return "STAMPED_AND_ACCEPTED_WITH_OBSERVATIONS"
	}
	return "STAMPED_AND_ACCEPTED"
}

func (a *account) alegraInvoice(d *doc) obj {
	prefix := strings.TrimSuffix(d.number, d.id)
	var template any = obj{"prefix": prefix, "number": d.id, "fullNumber": d.number}
	if a.name == "alegra-mx" {
		template = []any{template}
	}
	inv := obj{
		"id":             a.alegraID(d),
		"date":           d.created.Format("2006-01-02"),
		"dueDate":        d.created.AddDate(0, 0, 30).Format("2006-01-02"),
		"numberTemplate": template,
		"total":          float64(d.amount) / 100,
		"client":         obj{"id": strconv.Itoa(100 + d.n%17), "name": clientNames[d.n%len(clientNames)]},
		"status":         "open",
	}
	if d.state == draft {
		inv["status"] = "draft"
		return inv
	}
	st := obj{"legalStatus": legalStatus(d), "date": d.changed.Format("2006-01-02 15:04:05"), "warnings": []string{}}
	if d.state == accepted {
		st["cufe"] = d.cufe
		if d.observed {
			st["warnings"] = []string{"Regla: FAZ09, Notificación: El valor del descuento no coincide con el calculado"}
		}
	}
	switch {
	case d.state == rejected && strings.HasPrefix(d.why.message, "Regla:"):
		st["warnings"] = []string{"Regla: FAZ09, Notificación: El valor del descuento no coincide con el calculado", d.why.message}
	case d.state == rejected:
		st["error"] = obj{"code": d.why.code, "message": d.why.message}
	}
	inv["stamp"] = st
	return inv
}

var clientNames = []string{"Comercial Andina SAS", "Distribuidora El Prado", "Ferretería La 80", "Inversiones Río Claro", "Café Sierra Nevada"}

// alegraStamp answers POST /invoices/stamp: up to 10 ids, each stamped on its own, each
// answered in data with success true or false and a message that names the code (public
// clients read success, PROVIDERS.md; the shape is assumed). a.mu is held and released.
func (a *account) alegraStamp(w http.ResponseWriter, r *http.Request, now time.Time) {
	var req struct {
		IDs []json.RawMessage `json:"ids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.IDs) == 0 || len(req.IDs) > 10 {
		a.mu.Unlock()
		alegraError(w, http.StatusBadRequest, "El cuerpo debe tener \"ids\" con entre 1 y 10 facturas.")
		return
	}
	fault, delay := a.nextEmitFault(), a.faults.TimeoutDelay
	data := []obj{}
	refused := func(id any, status, code, msg string) obj {
		return obj{"id": id, "success": false, "emissionStatus": status, "message": "Error en la emisión: " + code + " - " + msg}
	}
	for _, raw := range req.IDs {
		id := string(bytes.Trim(raw, `"`))
		d := a.byID[id]
		if d == nil {
			data = append(data, obj{"id": id, "success": false, "emissionStatus": "", "message": "La factura no existe."})
			continue
		}
		switch a.emit(d, now) {
		case outAccepted:
			data = append(data, obj{"id": a.alegraID(d), "success": true, "emissionStatus": legalStatus(d), "message": "Factura emitida y aceptada por la DIAN."})
		case outRejected:
			data = append(data, refused(a.alegraID(d), legalStatus(d), d.why.code, d.why.message))
		case outDuplicate:
			dup := firstOf(a.d.catalog, causeDuplicate)
			data = append(data, refused(a.alegraID(d), legalStatus(d), dup.code, dup.message))
		case outProcessing:
			data = append(data, refused(a.alegraID(d), legalStatus(d), "AEP2011", "El documento ya fue enviado y está en proceso de validación."))
		}
	}
	body := mustJSON(obj{"data": data})
	a.mu.Unlock()
	a.finish(w, r, fault, delay, http.StatusOK, body)
}
