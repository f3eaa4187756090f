package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// alforse is Alforse (NestJS, contracts and receivables): login to a tenant for a 15-minute
// JWT and a refresh token (a user with MFA is answered mfaRequired instead: the demo's
// alforse-mfa), payments that await their invoice, reconciliation exceptions (with their
// reconciliationNote) as rejections. Only the login is rate limited, with no headers.
//
// Assumed, kept here: the list's envelope and a payment's id and reference; a note
// quoting a business code first; attaching an invoice (PATCH /payments/{id}/invoice) is
// the emission, and attaching one to a matched payment is a duplicate (409, invoice
// number already exists); logins answer 201, as NestJS answers a POST.
var alforse = &dialect{
	name: "alforse", root: "alforse", base: "/alforse/api/v1",
	accounts: []string{"alforse-main", "alforse-ops"},
	extra:    []string{"alforse-mfa"}, // its user has MFA: emitop cannot log in
	settings: func(a *account) map[string]string { return map[string]string{"tenant": alforseTenant(a)} },
	pending:  true, awaits: true,
	catalog: []reason{
		{"INVOICE_AMOUNT_EXCEEDS_TARGET", "Cumulative invoice amount would exceed the payment target.", causeData},
		{"PLAN_FEATURE_NOT_ENABLED", "Feature is not enabled for this plan", causeOutside},
		{"AMOUNT_SCALE_INVALID", "Amount has more decimal places than allowed.", causeData},
		{"UNSUPPORTED_CURRENCY", "Currency code is not supported.", causeData},
		{"FILE_SCAN_NOT_CLEAN", "The invoice file has not passed a clean scan.", causeOutside},
	},
	ident: func(a *account, d *doc, rng *rand.Rand) {
		d.id = uuid4(rng, false)
		tag := "MAIN"
		if a.name == "alforse-ops" {
			tag = "OPS"
		}
		d.number = fmt.Sprintf("PAY-%s-%05d", tag, d.n+1)
		d.due = d.created.AddDate(0, 0, rng.IntN(40)-10)
	},
	creds: func(a *account, rng *rand.Rand) map[string]string {
		return map[string]string{"email": a.name + "@sandbox.emitop.test", "password": "Sandbox-" + hexOf(rng, 12)}
	},
	limiter: func(_ *account, l Limits) limiter { return &fixedWindow{rate: l.AlforseLogin, style: styleNone} }, // login only
	rate:    func(l Limits) float64 { return float64(l.AlforseLogin.Limit) / l.AlforseLogin.Period.Seconds() },
	tooMany: func(w http.ResponseWriter, _ time.Duration) {
		nestError(w, http.StatusTooManyRequests, "Too many requests")
	},
	unavailable: func(w http.ResponseWriter) { nestError(w, http.StatusServiceUnavailable, "Service Unavailable") },
	serverError: func(w http.ResponseWriter) { nestError(w, http.StatusInternalServerError, "Internal server error") },
	serve:       serveAlforse,
}

// alforseTenant is the account's tenant slug, which the login names.
func alforseTenant(a *account) string { return "tenant-" + strings.TrimPrefix(a.name, "alforse-") }

// alforseStatus is the HTTP status each exception code is answered with.
var alforseStatus = map[string]int{"PLAN_FEATURE_NOT_ENABLED": http.StatusForbidden}

var nestErrorNames = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
	429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
}

// nestError answers in the NestJS default shape.
func nestError(w http.ResponseWriter, status int, msg any) {
	writeJSON(w, status, obj{"statusCode": status, "message": msg, "error": nestErrorNames[status]})
}

func serveAlforse(s *Sandbox, dl *dialect, w http.ResponseWriter, r *http.Request, rest string) {
	switch rest {
	case "/auth/login", "/auth/refresh":
		if r.Method != http.MethodPost {
			nestError(w, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path)
			return
		}
		if rest == "/auth/login" {
			s.alforseLogin(dl, w, r)
		} else {
			s.alforseRefresh(w, r)
		}
		return
	}
	now := s.now()
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		nestError(w, http.StatusUnauthorized, "Missing bearer token")
		return
	}
	a, ok := s.bearer(r, now)
	if !ok || a.d != dl {
		nestError(w, http.StatusUnauthorized, "Invalid or expired access token")
		return
	}
	now, ok = s.gate(w, r, a, nil)
	if !ok {
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	switch {
	case rest == "/payments" && r.Method == http.MethodGet:
		a.alforseList(w, r, now)
	case rest == "/payments/stats" && r.Method == http.MethodGet:
		body := mustJSON(a.alforseStats(now))
		a.mu.Unlock()
		writeRaw(w, http.StatusOK, body)
	case len(parts) == 3 && parts[0] == "payments" && parts[2] == "invoice" && r.Method == http.MethodPatch:
		a.alforseInvoice(w, r, parts[1], now)
	default:
		a.mu.Unlock()
		nestError(w, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path)
	}
}

// alforseTokens issues an access token shaped like a JWT (its payload names the account
// and the expiry) and a refresh token.
func (s *Sandbox) alforseTokens(w http.ResponseWriter, a *account, now time.Time) {
	a.mu.Lock()
	ttl := cmp(a.faults.TokenTTL, s.ttl["alforse"])
	a.mu.Unlock()
	payload := base64.RawURLEncoding.EncodeToString(mustJSON(obj{"sub": a.name, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}))
	access, refresh := s.issue(a, ttl, now, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."+payload+".")
	writeJSON(w, http.StatusCreated, obj{"accessToken": access, "refreshToken": refresh, "expiresIn": shortDuration(ttl),
		"tenant": obj{"id": "t_" + a.name, "slug": alforseTenant(a), "name": "Sandbox " + a.name},
		"user":   obj{"id": "u_" + a.name, "email": a.creds["email"], "name": "Sandbox operator"}})
}

// shortDuration writes d the way the JWT libraries take it: "15m", "1h", "90s".
func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(ceilSeconds(d), 10) + "s"
}

// alforseLogin answers POST /auth/login {tenantSlug, email, password}, limited per email.
// The demo's alforse-mfa has MFA enrolled: without mfaCode it is answered mfaRequired.
func (s *Sandbox) alforseLogin(dl *dialect, w http.ResponseWriter, r *http.Request) {
	var req struct{ TenantSlug, Email, Password, MfaCode string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.TenantSlug == "" {
		nestError(w, http.StatusBadRequest, []string{"tenantSlug should not be empty", "email must be an email", "password should not be empty"})
		return
	}
	a := s.find(dl, "login", func(a *account) string { return credKey(a.creds["email"], alforseTenant(a)) }, credKey(req.Email, req.TenantSlug))
	if a == nil {
		nestError(w, http.StatusUnauthorized, "Invalid credentials")
		return
	}
	now, ok := s.gate(w, r, a, a.limit)
	if !ok {
		return
	}
	a.mu.Unlock()
	switch {
	case req.Password != a.creds["password"]:
		nestError(w, http.StatusUnauthorized, "Invalid credentials")
	case a.name == "alforse-mfa" && req.MfaCode == "":
		writeJSON(w, http.StatusCreated, obj{"mfaRequired": true, "enrollmentRequired": false,
			"message": "MFA verification required", "emailFallbackAvailable": true})
	case a.name == "alforse-mfa":
		nestError(w, http.StatusUnauthorized, "Invalid MFA code")
	default:
		s.alforseTokens(w, a, now)
	}
}

// alforseRefresh answers POST /auth/refresh: refresh tokens rotate.
func (s *Sandbox) alforseRefresh(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refreshToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.RefreshToken == "" {
		nestError(w, http.StatusBadRequest, []string{"refreshToken should not be empty"})
		return
	}
	a, revoked := s.redeem(req.RefreshToken)
	if a == nil {
		msg := "Invalid refresh token"
		if revoked {
			msg = "Refresh token has been revoked"
		}
		nestError(w, http.StatusUnauthorized, msg)
		return
	}
	now, ok := s.gate(w, r, a, nil)
	if !ok {
		return
	}
	a.mu.Unlock()
	s.alforseTokens(w, a, now)
}

// alforseState is a payment's status, invoice status and reconciliation status.
func alforseState(d *doc, now time.Time) (status, invoice, recon string) {
	status = "due"
	if d.due.Before(now) {
		status = "overdue"
	}
	switch d.state {
	case accepted:
		return "paid", "invoiced", "matched"
	case rejected:
		return status, "invoiced", "exception"
	}
	return status, "pending", "pending"
}

func (a *account) alforsePayment(d *doc, now time.Time) obj {
	status, invoice, recon := alforseState(d, now)
	amount := float64(d.amount) / 100
	p := obj{
		"id": d.id, "reference": d.number, "contractId": fmt.Sprintf("ctr_%04d", 1+d.n%23),
		"subjectName": clientNames[d.n%len(clientNames)], "amount": money(d.amount), "currency": "USD",
		"dueDate": d.due.Format("2006-01-02"), "status": status,
		"receivedAmount": amount, "receivedDate": d.created.Format("2006-01-02"),
		"invoiceStatus": invoice, "reconciliationStatus": recon, "reconciliationNote": nil,
		"invoiceNo": nil, "invoiceAmount": nil, "invoiceDate": nil, "updatedAt": d.changed.UTC().Format(time.RFC3339),
	}
	if invoice == "invoiced" {
		no := d.invoiceNo
		if no == "" {
			no = "FV-" + d.number[4:]
		}
		p["invoiceNo"], p["invoiceAmount"], p["invoiceDate"] = no, amount, d.changed.Format("2006-01-02")
	}
	if d.state == rejected {
		// A person's note; the sandbox leads it with the business code it stands for.
		p["reconciliationNote"] = d.why.code + ": " + d.why.message
	}
	return p
}

var alforseTabs = map[string]func(d *doc, now time.Time) bool{
	"all":       func(*doc, time.Time) bool { return true },
	"invoice":   func(d *doc, _ time.Time) bool { return d.state == pending },
	"reconcile": func(d *doc, _ time.Time) bool { return d.state == rejected },
	"overdue":   func(d *doc, now time.Time) bool { s, _, _ := alforseState(d, now); return s == "overdue" },
	"due":       func(d *doc, now time.Time) bool { s, _, _ := alforseState(d, now); return s == "due" },
}

// alforseList answers GET /payments?tab=&page=&pageSize=; a.mu is released here.
func (a *account) alforseList(w http.ResponseWriter, r *http.Request, now time.Time) {
	tab := r.URL.Query().Get("tab")
	if tab == "" {
		tab = "all"
	}
	keep := alforseTabs[tab]
	pageNo, ok1 := intParam(r, "page", 1)
	size, ok2 := intParam(r, "pageSize", 20)
	var msgs []string
	if keep == nil {
		msgs = append(msgs, "tab must be one of the following values: invoice, reconcile, overdue, due, all")
	}
	if !ok1 || pageNo < 1 {
		msgs = append(msgs, "page must not be less than 1")
	}
	if !ok2 || size < 1 || size > 200 {
		msgs = append(msgs, "pageSize must not be greater than 200")
	}
	if msgs != nil {
		a.mu.Unlock()
		nestError(w, http.StatusBadRequest, msgs)
		return
	}
	all := a.sortedByN(func(d *doc) bool { return keep(d, now) })
	items := []obj{}
	for _, d := range page(all, pageNo, size) {
		items = append(items, a.alforsePayment(d, now))
	}
	body := mustJSON(obj{"data": items, "page": pageNo, "pageSize": size, "total": len(all)})
	a.mu.Unlock()
	writeRaw(w, http.StatusOK, body)
}

func (a *account) alforseStats(now time.Time) obj {
	counts := map[string]int{}
	var outstanding int64
	for _, d := range a.docs {
		status, _, _ := alforseState(d, now)
		counts[status]++
		counts[d.state.String()]++
		if d.state != accepted {
			outstanding += d.amount
		}
	}
	return obj{
		"total": len(a.docs), "awaitingInvoice": counts["pending"], "exceptions": counts["rejected"],
		"matched": counts["accepted"], "overdue": counts["overdue"], "due": counts["due"],
		"amountOutstanding": money(outstanding), "currency": "USD",
	}
}

// alforseInvoice answers PATCH /payments/{id}/invoice: attaching the invoice is the
// emission. a.mu is held and released here.
func (a *account) alforseInvoice(w http.ResponseWriter, r *http.Request, id string, now time.Time) {
	d := a.byID[id]
	if d == nil {
		a.mu.Unlock()
		nestError(w, http.StatusNotFound, "Payment not found")
		return
	}
	var req struct {
		InvoiceAmount json.Number `json:"invoiceAmount"`
		InvoiceDate   string      `json:"invoiceDate"`
		InvoiceNo     string      `json:"invoiceNo"`
	}
	err := json.NewDecoder(r.Body).Decode(&req)
	var msgs []string
	if err != nil || req.InvoiceAmount == "" {
		msgs = append(msgs, "invoiceAmount must be a number string")
	}
	if err != nil || req.InvoiceDate == "" {
		msgs = append(msgs, "invoiceDate must be a valid ISO 8601 date string")
	}
	if err != nil || req.InvoiceNo == "" {
		msgs = append(msgs, "invoiceNo should not be empty")
	}
	if msgs != nil {
		a.mu.Unlock()
		nestError(w, http.StatusBadRequest, msgs)
		return
	}
	fault, delay := a.nextEmitFault(), a.faults.TimeoutDelay
	var status int
	var body []byte
	switch a.emit(d, now) {
	case outAccepted:
		d.invoiceNo = req.InvoiceNo
		status, body = http.StatusOK, mustJSON(a.alforsePayment(d, now))
	case outRejected:
		status = http.StatusBadRequest
		if s, ok := alforseStatus[d.why.code]; ok {
			status = s
		}
		body = mustJSON(obj{"error": obj{"code": d.why.code, "message": d.why.message, "details": obj{"paymentId": d.id}}})
	case outDuplicate:
		status = http.StatusConflict
		body = mustJSON(obj{"statusCode": status, "message": "Invoice number already exists", "error": "Conflict"})
	}
	a.mu.Unlock()
	a.finish(w, r, fault, delay, status, body)
}
