package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// svdte is the El Salvador DTE gateway (NestJS before the Ministerio de Hacienda):
// X-API-Key, three named throttlers, emission answered synchronously by the Ministry.
var svdte = &dialect{
	name: "sv-dte", root: "sv-dte", base: "/sv-dte",
	accounts: []string{"sv-main", "sv-branch"},
	catalog: []reason{
		{"804", "NIT del emisor inválido", causeData},
		{"801", "Certificado de firma inválido o expirado", causeOutside},
		{"004", "[identificacion.codigoGeneracion] YA EXISTE UN REGISTRO CON ESE VALOR", causeDuplicate},
		{"802", "Número de control duplicado", causeData},
		{"803", "Establecimiento no registrado", causeOutside},
		{"805", "Firma digital inválida", causeOutside},
		{"020", "[receptor.nrc] NRC DEL RECEPTOR NO VALIDO", causeData},
		{"096", "CREDENCIALES DE TRANSMISION NO VALIDAS", causeOutside},
	},
	ident: func(a *account, d *doc, rng *rand.Rand) {
		d.id = uuid4(rng, true)
		d.number = fmt.Sprintf("DTE-01-%s-%015d", svEstablishment(a), d.n+1)
		d.cufe = d.created.Format("2006") + upperASCII(hexOf(rng, 36))
	},
	creds: func(a *account, rng *rand.Rand) map[string]string {
		return map[string]string{"api_key": "sk_user_" + hexOf(rng, 32)}
	},
	limiter: func(_ *account, l Limits) limiter { return newNestThrottler(l.SVDTE, l.SVDTEEpoch) },
	rate: func(l Limits) float64 {
		r := 0.0
		for i, t := range l.SVDTE {
			if x := float64(t.Limit) / t.TTL.Seconds(); i == 0 || x < r {
				r = x
			}
		}
		return r
	},
	tooMany: func(w http.ResponseWriter, _ time.Duration) {
		writeJSON(w, http.StatusTooManyRequests, obj{"message": "ThrottlerException: Too Many Requests", "statusCode": 429})
	},
	unavailable: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusServiceUnavailable, obj{"message": "Service Unavailable", "statusCode": 503})
	},
	serverError: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusInternalServerError, obj{"message": "Internal server error", "statusCode": 500})
	},
	serve: serveSVDTE,
}

// svObservations are what the Ministry adds to each of its codes.
var svObservations = map[string][]string{
	"801": {"El certificado X.509 ha expirado", "Debe renovar su certificado digital ante el Ministerio de Hacienda"},
	"802": {"El numeroControl ya fue utilizado por otro DTE del emisor"},
	"803": {"El código de establecimiento no está registrado para el NIT del emisor"},
	"804": {"El NIT del emisor no coincide con el registro del contribuyente"},
	"805": {"La firma del documento no corresponde al certificado registrado"},
	"004": {"El DTE ya fue procesado anteriormente; consulte su estado"},
	"020": {"Verifique el NRC del receptor"},
	"096": {"Las credenciales del emisor ante el Ministerio no son válidas"},
}

var numeroControl = regexp.MustCompile(`^DTE-\d{2}-[A-Z0-9]{8}-\d{15}$`)

func svEstablishment(a *account) string {
	if a.name == "sv-branch" {
		return "S002P001"
	}
	return "M001P001"
}

func svError(w http.ResponseWriter, status int, msg any, extra obj) {
	body := obj{"message": msg, "statusCode": status}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

func serveSVDTE(s *Sandbox, dl *dialect, w http.ResponseWriter, r *http.Request, rest string) {
	key := r.Header.Get("X-API-Key")
	var a *account
	if key != "" {
		a = s.find(dl, "api_key", func(a *account) string { return a.creds["api_key"] }, key)
	}
	if a == nil {
		svError(w, http.StatusUnauthorized, "Unauthorized", nil)
		return
	}
	if a.expired() {
		svError(w, http.StatusUnauthorized, "API Key expirada", nil)
		return
	}
	now, ok := s.gate(w, r, a, a.limit)
	if !ok {
		return
	}
	switch {
	case rest == "/factura/emitir" && r.Method == http.MethodPost:
		a.svEmit(w, r, now)
	case rest == "/factura" && r.Method == http.MethodGet:
		a.svList(w, r)
	case strings.HasPrefix(rest, "/factura/") && strings.Count(rest, "/") == 2 && r.Method == http.MethodGet:
		d := a.view(a.byID[strings.TrimPrefix(rest, "/factura/")], now)
		if d == nil {
			a.mu.Unlock()
			svError(w, http.StatusNotFound, "DTE no encontrado", obj{"error": "Not Found"})
			return
		}
		ans := a.svAnswer(d, "")
		ans["dte"] = a.svDTE(d)
		body := mustJSON(ans)
		a.mu.Unlock()
		writeRaw(w, http.StatusOK, body)
	default:
		a.mu.Unlock()
		svError(w, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path, obj{"error": "Not Found"})
	}
}

// svAnswer is the Ministry's answer for d; code overrides the code it answers (MH 004).
func (a *account) svAnswer(d *doc, code string) obj {
	ans := obj{
		"version": 2, "ambiente": "00", "versionApp": 2,
		"codigoGeneracion": d.id, "numeroControl": d.number,
		"fhProcesamiento": d.changed.UTC().Format("2006-01-02T15:04:05.000Z"),
		"observaciones":   []string{},
	}
	switch {
	case code != "":
		why := firstOf(a.d.catalog, causeDuplicate)
		ans["estado"], ans["codigoMsg"], ans["descripcionMsg"], ans["clasificaMsg"] = "RECHAZADO", why.code, why.message, "ERROR"
		ans["observaciones"] = svObservations[why.code]
		ans["selloRecibido"] = nil
	case d.state == rejected:
		ans["estado"], ans["codigoMsg"], ans["descripcionMsg"], ans["clasificaMsg"] = "RECHAZADO", d.why.code, d.why.message, "ERROR"
		ans["observaciones"] = svObservations[d.why.code]
		ans["selloRecibido"] = nil
	case d.observed:
		ans["estado"], ans["codigoMsg"], ans["descripcionMsg"], ans["clasificaMsg"] = "PROCESADO", "002", "RECIBIDO CON OBSERVACIONES", "ADVERTENCIA"
		ans["observaciones"] = []string{"[receptor.correo] el correo del receptor no pudo validarse"}
		ans["selloRecibido"] = d.cufe
	default:
		ans["estado"], ans["codigoMsg"], ans["descripcionMsg"], ans["clasificaMsg"] = "PROCESADO", "001", "RECIBIDO", "INFO"
		ans["selloRecibido"] = d.cufe
	}
	return ans
}

// svDTE is the DTE as last emitted, or the one the document was made from.
func (a *account) svDTE(d *doc) json.RawMessage {
	if d.dte != nil {
		return d.dte
	}
	total := float64(d.amount) / 100
	return mustJSON(obj{
		"identificacion": obj{
			"version": 1, "ambiente": "00", "tipoDte": "01", "numeroControl": d.number,
			"codigoGeneracion": d.id, "tipoModelo": 1, "tipoOperacion": 1,
			"fecEmi": d.created.Format("2006-01-02"), "horEmi": d.created.Format("15:04:05"), "tipoMoneda": "USD",
		},
		"emisor":          obj{"nit": "06141234567890", "nombre": "Sandbox " + a.name, "codEstable": svEstablishment(a)[:4]},
		"receptor":        obj{"nombre": clientNames[d.n%len(clientNames)], "correo": "cliente@example.com"},
		"cuerpoDocumento": []obj{{"numItem": 1, "tipoItem": 2, "cantidad": 1, "descripcion": "Servicios profesionales", "precioUni": total, "ventaGravada": total}},
		"resumen":         obj{"totalGravada": total, "totalPagar": total},
	})
}

// svEmit answers POST /factura/emitir. A known codigoGeneracion is a resend; a new one is
// a new DTE. a.mu is held and released here.
func (a *account) svEmit(w http.ResponseWriter, r *http.Request, now time.Time) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var dte struct {
		Identificacion struct {
			CodigoGeneracion string `json:"codigoGeneracion"`
			NumeroControl    string `json:"numeroControl"`
		} `json:"identificacion"`
	}
	if err == nil {
		err = json.Unmarshal(raw, &dte)
	}
	id := dte.Identificacion.CodigoGeneracion
	if err != nil || !uuidUpper.MatchString(id) {
		a.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, obj{
			"mensaje":    "❌ El DTE no cumple con el schema JSON del Ministerio de Hacienda",
			"errores":    []obj{{"path": "/identificacion/codigoGeneracion", "message": "must match pattern \"" + uuidUpper.String() + "\"", "expected": "UUID v4 en mayúsculas"}},
			"statusCode": http.StatusBadRequest,
		})
		return
	}
	fault, delay := a.nextEmitFault(), a.faults.TimeoutDelay
	d := a.byID[id]
	if d == nil {
		d = &doc{id: id, n: 100000 + a.created, created: now, changed: now, state: draft, amount: 10000}
		a.created++
		d.number = dte.Identificacion.NumeroControl
		if !numeroControl.MatchString(d.number) {
			d.number = fmt.Sprintf("DTE-01-%s-%015d", svEstablishment(a), 500000+d.n)
		}
		d.cufe = now.Format("2006") + upperASCII(strings.ReplaceAll(id, "-", "")[:32]) + "0000"
		a.add(d)
	}
	out := a.emit(d, now)
	if out != outDuplicate {
		d.dte = raw
	}
	status, code := http.StatusCreated, ""
	switch out {
	case outRejected:
		status = http.StatusInternalServerError
	case outDuplicate:
		status, code = http.StatusInternalServerError, "004"
	}
	body := mustJSON(a.svAnswer(d, code))
	a.mu.Unlock()
	a.finish(w, r, fault, delay, status, body)
}

var uuidUpper = regexp.MustCompile(`^[A-F0-9]{8}-[A-F0-9]{4}-4[A-F0-9]{3}-[89AB][A-F0-9]{3}-[A-F0-9]{12}$`)

// svList answers GET /factura?estado=&page=&pageSize= (assumed). a.mu is held and released.
func (a *account) svList(w http.ResponseWriter, r *http.Request) {
	estado := r.URL.Query().Get("estado")
	pageNo, ok1 := intParam(r, "page", 1)
	size, ok2 := intParam(r, "pageSize", 20)
	var msgs []string
	if estado != "" && estado != "PROCESADO" && estado != "RECHAZADO" {
		msgs = append(msgs, "estado must be one of the following values: PROCESADO, RECHAZADO")
	}
	if !ok1 || pageNo < 1 {
		msgs = append(msgs, "page must not be less than 1")
	}
	if !ok2 || size < 1 || size > 50 {
		msgs = append(msgs, "pageSize must not be greater than 50")
	}
	if msgs != nil {
		a.mu.Unlock()
		svError(w, http.StatusBadRequest, msgs, obj{"error": "Bad Request"})
		return
	}
	all := a.sortedByN(func(d *doc) bool {
		switch estado {
		case "PROCESADO":
			return d.state == accepted
		case "RECHAZADO":
			return d.state == rejected
		}
		return d.state == accepted || d.state == rejected
	})
	items := []obj{}
	for _, d := range page(all, pageNo, size) {
		items = append(items, a.svAnswer(d, ""))
	}
	body := mustJSON(obj{"data": items, "page": pageNo, "pageSize": size, "total": len(all)})
	a.mu.Unlock()
	writeRaw(w, http.StatusOK, body)
}
