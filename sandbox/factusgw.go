package sandbox

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// factusGateway is the FastAPI service of seed 003 in front of Factus, as its public
// copies serve it (soporte-ainovapro/factus-api): its own login (POST /api/v1/auth/login,
// form username and password, a JWT), a Factus token it obtains for the account's Factus
// user (POST /api/v1/auth/factus/login, sent back in X-Factus-Token), the invoices under
// /api/v1/invoices/, and errors in FastAPI's {"detail": …}. Its bills are Factus's, and
// rejected, pending and deleted the same way. Only the demo has one.
var factusGateway = &dialect{
	name: "factus", root: "factus-gw", base: "/factus-gw",
	extra:    []string{"factus-gw"},
	settings: func(*account) map[string]string { return map[string]string{"gateway": "fastapi"} },
	pending:  true,
	catalog:  factus.catalog,
	ident:    func(a *account, d *doc, rng *rand.Rand) { factusIdent(a, d, d.n, rng) },
	creds: func(a *account, rng *rand.Rand) map[string]string {
		return map[string]string{
			"gateway_username": "ops-" + a.name, "gateway_password": "gw-" + hexOf(rng, 12),
			"username": a.name + "@sandbox.emitop.test", "password": "sandbox-" + hexOf(rng, 12),
		}
	},
	// The gateway forwards each call to Factus, whose limit (80 a minute per user) applies;
	// it forwards no rate-limit header.
	limiter: func(_ *account, l Limits) limiter { return &fixedWindow{rate: l.Factus, style: styleNone} },
	rate:    func(l Limits) float64 { return float64(l.Factus.Limit) / l.Factus.Period.Seconds() },
	tooMany: func(w http.ResponseWriter, retry time.Duration) {
		w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(retry), 10))
		writeJSON(w, http.StatusTooManyRequests, obj{"detail": "Too Many Attempts."})
	},
	unavailable: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusServiceUnavailable, obj{"detail": "El servicio de Factus no está disponible temporalmente"})
	},
	serverError: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusInternalServerError, obj{"detail": "Error interno: Server Error"})
	},
	serve: serveFactusGateway,
}

// gatewayTokenTTL is how long the gateway's own JWT lasts (ACCESS_TOKEN_EXPIRE_MINUTES).
const gatewayTokenTTL = 30 * time.Minute

// apiResponse is the gateway's envelope (seed 003, ApiResponse).
func apiResponse(message string, data any) obj {
	return obj{"success": true, "message": message, "data": data, "errors": nil}
}

func detail(w http.ResponseWriter, status int, msg any) {
	writeJSON(w, status, obj{"detail": msg})
}

func serveFactusGateway(s *Sandbox, dl *dialect, w http.ResponseWriter, r *http.Request, rest string) {
	now := s.now()
	if rest == "/api/v1/auth/login" && r.Method == http.MethodPost {
		s.gatewayLogin(dl, w, r, now)
		return
	}
	a, ok := s.bearer(r, now)
	if !ok || a.d != dl || !s.scoped(r.Header.Get("Authorization"), scopeGateway) {
		detail(w, http.StatusUnauthorized, "Could not validate credentials")
		return
	}
	switch {
	case rest == "/api/v1/auth/factus/login" && r.Method == http.MethodPost:
		s.gatewayFactusLogin(a, w, r, now)
		return
	case rest == "/api/v1/auth/factus/refresh" && r.Method == http.MethodPost:
		s.gatewayFactusRefresh(a, w, r, now)
		return
	}
	ft := r.Header.Get("X-Factus-Token")
	if ft == "" {
		detail(w, http.StatusUnprocessableEntity, []obj{{"loc": []string{"header", "x-factus-token"}, "msg": "field required", "type": "value_error.missing"}})
		return
	}
	if fa, ok := s.token(ft, now); !ok || fa != a || s.scoped("Bearer "+ft, scopeGateway) {
		detail(w, http.StatusUnauthorized, "Unauthenticated.")
		return
	}
	if _, ok = s.gate(w, r, a, a.limit); !ok {
		return
	}
	switch {
	case rest == "/api/v1/invoices/" && r.Method == http.MethodGet:
		// Factus's listing passed through: the service filters by number, reference_code,
		// identification and names, never by status.
		a.factusList(w, r, a.factusBill)
	case strings.HasPrefix(rest, "/api/v1/invoices/reference/") && r.Method == http.MethodDelete:
		status, body := a.destroy(strings.TrimPrefix(rest, "/api/v1/invoices/reference/"))
		a.mu.Unlock()
		if status != http.StatusOK {
			detail(w, status, body["message"])
			return
		}
		writeJSON(w, status, apiResponse("Factura eliminada exitosamente", body))
	case strings.HasPrefix(rest, "/api/v1/invoices/") && strings.Count(rest, "/") == 4 && r.Method == http.MethodGet:
		d := a.view(a.byNumber[strings.TrimPrefix(rest, "/api/v1/invoices/")], now)
		if d == nil {
			a.mu.Unlock()
			detail(w, http.StatusNotFound, "Factura no encontrada")
			return
		}
		body := mustJSON(apiResponse("Factura obtenida exitosamente", a.factusEnvelope(d)))
		a.mu.Unlock()
		writeRaw(w, http.StatusOK, body)
	default:
		a.mu.Unlock()
		detail(w, http.StatusNotFound, "Not Found")
	}
}

// gatewayLogin answers the gateway's own login, form username and password.
func (s *Sandbox) gatewayLogin(dl *dialect, w http.ResponseWriter, r *http.Request, now time.Time) {
	if err := r.ParseForm(); err != nil {
		detail(w, http.StatusUnprocessableEntity, []obj{{"loc": []string{"body", "username"}, "msg": "field required", "type": "value_error.missing"}})
		return
	}
	f := r.PostForm
	a := s.find(dl, "gateway", func(a *account) string { return credKey(a.creds["gateway_username"], a.creds["gateway_password"]) },
		credKey(f.Get("username"), f.Get("password")))
	if a == nil {
		detail(w, http.StatusUnauthorized, "Incorrect username or password")
		return
	}
	access, _ := s.issueScoped(a, gatewayTokenTTL, now, "gwjwt.", scopeGateway)
	writeJSON(w, http.StatusOK, obj{"access_token": access, "token_type": "bearer"})
}

// gatewayFactusLogin obtains a Factus token for the account's Factus user.
func (s *Sandbox) gatewayFactusLogin(a *account, w http.ResponseWriter, r *http.Request, now time.Time) {
	var req struct{ Email, Password string }
	if json.NewDecoder(r.Body).Decode(&req) != nil || !strings.Contains(req.Email, "@") {
		detail(w, http.StatusUnprocessableEntity, []obj{{"loc": []string{"body", "email"}, "msg": "value is not a valid email address", "type": "value_error.email"}})
		return
	}
	if req.Email != a.creds["username"] || req.Password != a.creds["password"] {
		detail(w, http.StatusBadRequest, "No se pudo obtener el token de Factus: Invalid credentials")
		return
	}
	s.gatewayToken(a, w, now, "Autenticación exitosa")
}

// gatewayFactusRefresh renews the account's Factus token.
func (s *Sandbox) gatewayFactusRefresh(a *account, w http.ResponseWriter, r *http.Request, now time.Time) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if json.NewDecoder(r.Body).Decode(&req) != nil || req.RefreshToken == "" {
		detail(w, http.StatusUnprocessableEntity, []obj{{"loc": []string{"body", "refresh_token"}, "msg": "field required", "type": "value_error.missing"}})
		return
	}
	if owner, _ := s.redeem(req.RefreshToken); owner != a {
		detail(w, http.StatusBadRequest, "No se pudo refrescar el token de Factus: Invalid refresh token")
		return
	}
	s.gatewayToken(a, w, now, "Token refrescado exitosamente")
}

func (s *Sandbox) gatewayToken(a *account, w http.ResponseWriter, now time.Time, message string) {
	a.mu.Lock()
	ttl := cmp(a.faults.TokenTTL, s.ttl["factus"])
	a.mu.Unlock()
	access, refresh := s.issue(a, ttl, now, "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.")
	writeJSON(w, http.StatusOK, apiResponse(message, obj{
		"access_token": access, "token_type": "Bearer", "expires_in": int64(ttl / time.Second), "refresh_token": refresh,
	}))
}
