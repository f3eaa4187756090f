package sandbox_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"emitop/model"
	"emitop/poller"
	"emitop/sandbox"
)

// frozen is the sandbox clock of these tests: it never moves, so no document changes, no
// window rolls over and no token expires while a case runs, however slow the machine.
var frozen = time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)

// roomy leaves every limit out of the way (sv-dte's 3 a second would bite a frozen clock).
var roomy = sandbox.Limits{SVDTE: []sandbox.Throttler{{Name: "short", Limit: 1000, TTL: time.Second}}}

// tight makes the third request of an account a 429, in every limiter; the windows last
// a minute, far longer than a case.
var tight = sandbox.Limits{
	Alegra:       sandbox.Rate{Limit: 2, Period: time.Minute},
	Certifactu:   sandbox.Rate{Limit: 2, Period: time.Minute},
	Factus:       sandbox.Rate{Limit: 2, Period: time.Minute},
	AlforseLogin: sandbox.Rate{Limit: 2, Period: time.Minute},
	SVDTE: []sandbox.Throttler{
		{Name: "short", Limit: 2, TTL: time.Minute},
		{Name: "medium", Limit: 50, TTL: 10 * time.Minute},
		{Name: "long", Limit: 100, TTL: time.Hour},
	},
}

// harness is one sandbox on loopback and a client that speaks each provider's auth.
type harness struct {
	t       *testing.T
	s       *sandbox.Sandbox
	acc     map[string]sandbox.Account
	access  map[string]string // bearer tokens of factus and alforse accounts
	refresh map[string]string
}

func start(t *testing.T, lim sandbox.Limits) *harness {
	t.Helper()
	s, err := sandbox.New(sandbox.Options{Scenario: "calm", Seed: 1, NoFaults: true, Limits: lim,
		Clock: func() time.Time { return frozen }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := &harness{t: t, s: s, acc: map[string]sandbox.Account{}, access: map[string]string{}, refresh: map[string]string{}}
	for _, a := range s.Accounts() {
		h.acc[a.Name] = a
	}
	return h
}

// send makes one request as the account: its credentials go the provider's way (a bearer
// token is fetched first when needed), then edit may change the request. The answer comes
// back as the decoders take it.
func (h *harness) send(account, method, path string, body any, edit func(*http.Request)) poller.Response {
	h.t.Helper()
	a := h.acc[account]
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd = strings.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.BaseURL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	cr := a.Credentials
	switch a.Provider {
	case "alegra":
		req.SetBasicAuth(cr["email"], cr["token"])
	case "sv-dte", "certifactu":
		req.Header.Set("X-API-Key", cr["api_key"])
	case "factus", "alforse":
		if path != "/oauth/token" && !strings.HasPrefix(path, "/auth/") {
			req.Header.Set("Authorization", "Bearer "+h.token(account))
		}
	}
	if edit != nil {
		edit(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, poller.MaxBody))
	if err != nil {
		h.t.Fatal(err)
	}
	return poller.Response{Status: res.StatusCode, Method: method, Header: res.Header, Body: b, Received: time.Now()}
}

// token is the account's access token, logging in the first time.
func (h *harness) token(account string) string {
	h.t.Helper()
	if tok := h.access[account]; tok != "" {
		return tok
	}
	r := h.login(account, "")
	if r.Status/100 != 2 {
		h.t.Fatalf("%s: login %d %s", account, r.Status, r.Body)
	}
	var m map[string]any
	json.Unmarshal(r.Body, &m)
	access, refresh := "access_token", "refresh_token"
	if h.acc[account].Provider == "alforse" {
		access, refresh = "accessToken", "refreshToken"
	}
	h.access[account], _ = m[access].(string)
	h.refresh[account], _ = m[refresh].(string)
	return h.access[account]
}

// login sends the provider's password login; a non-empty password replaces the real one.
func (h *harness) login(account, password string) poller.Response {
	h.t.Helper()
	cr := h.acc[account].Credentials
	if password == "" {
		password = cr["password"]
	}
	if h.acc[account].Provider == "factus" {
		return h.send(account, "POST", "/oauth/token", url.Values{"grant_type": {"password"},
			"client_id": {cr["client_id"]}, "client_secret": {cr["client_secret"]},
			"username": {cr["username"]}, "password": {password}}, nil)
	}
	return h.send(account, "POST", "/auth/login", map[string]string{"tenantSlug": h.acc[account].Settings["tenant"], "email": cr["email"], "password": password}, nil)
}

// refreshWith redeems a refresh token with the provider's refresh call.
func (h *harness) refreshWith(account, rt string) poller.Response {
	h.t.Helper()
	cr := h.acc[account].Credentials
	if h.acc[account].Provider == "factus" {
		return h.send(account, "POST", "/oauth/token", url.Values{"grant_type": {"refresh_token"},
			"client_id": {cr["client_id"]}, "client_secret": {cr["client_secret"]}, "refresh_token": {rt}}, nil)
	}
	return h.send(account, "POST", "/auth/refresh", map[string]string{"refreshToken": rt}, nil)
}

// doc is one document as its provider lists it.
type doc struct {
	id, number, ref string
	state           string // draft, pending, accepted, rejected
	code            string // a rejected document's code
	raw             json.RawMessage
}

// listPath is the first page of each provider's list endpoint.
var listPath = map[string]string{
	"alegra":     "/invoices?start=0&limit=30",
	"sv-dte":     "/factura?page=1&pageSize=50",
	"certifactu": "/v1/invoices?page=1&page_size=100",
	"factus":     "/v1/bills?page=1",
	"alforse":    "/payments?tab=all&page=1&pageSize=200",
}

// getPath is the provider's read of one document, "" for alforse, which has none.
func getPath(provider string, d doc) string {
	switch provider {
	case "alegra":
		return "/invoices/" + d.id
	case "sv-dte":
		return "/factura/" + d.id
	case "certifactu":
		return "/v1/invoices/" + d.id
	case "factus":
		return "/v1/bills/show/" + d.number
	}
	return ""
}

var dianRule = regexp.MustCompile(`Regla: (\w+), Rechazo`)

// page lists one page of the account's documents.
func (h *harness) page(account, path string) []doc {
	h.t.Helper()
	prov := h.acc[account].Provider
	r := h.send(account, "GET", path, nil, nil)
	if r.Status != http.StatusOK {
		h.t.Fatalf("%s GET %s: %d %s", account, path, r.Status, r.Body)
	}
	var items []json.RawMessage
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	switch prov {
	case "alegra":
		json.Unmarshal(r.Body, &items)
	case "factus":
		json.Unmarshal(r.Body, &env)
		var inner struct {
			Data []json.RawMessage `json:"data"`
		}
		json.Unmarshal(env.Data, &inner)
		items = inner.Data
	default:
		json.Unmarshal(r.Body, &env)
		json.Unmarshal(env.Data, &items)
	}
	docs := make([]doc, 0, len(items))
	for _, raw := range items {
		var it struct {
			ID             json.RawMessage `json:"id"`
			Status         json.RawMessage `json:"status"`
			NumberTemplate json.RawMessage `json:"numberTemplate"` // an object, or an array of them
			Stamp          *struct {
				LegalStatus string `json:"legalStatus"`
				Error       struct {
					Code string `json:"code"`
				} `json:"error"`
				Warnings []string `json:"warnings"`
			} `json:"stamp"`
			Estado           string `json:"estado"`
			CodigoGeneracion string `json:"codigoGeneracion"`
			NumeroControl    string `json:"numeroControl"`
			CodigoMsg        string `json:"codigoMsg"`
			SeriesNumber     string `json:"series_number"`
			AEAT             *struct{ Code *string }
			Number           string   `json:"number"`
			ReferenceCode    string   `json:"reference_code"`
			Errors           []string `json:"errors"`
			Reference        string   `json:"reference"`
			InvoiceStatus    string   `json:"invoiceStatus"`
			Reconciliation   string   `json:"reconciliationStatus"`
			Note             string   `json:"reconciliationNote"`
		}
		if err := json.Unmarshal(raw, &it); err != nil {
			h.t.Fatalf("%s: list item %s: %v", account, raw, err)
		}
		d := doc{id: strings.Trim(string(it.ID), `"`), raw: raw}
		status := strings.Trim(string(it.Status), `"`)
		switch prov {
		case "alegra":
			var nt struct {
				FullNumber string `json:"fullNumber"`
			}
			if json.Unmarshal(it.NumberTemplate, &nt) != nil {
				var list []struct {
					FullNumber string `json:"fullNumber"`
				}
				json.Unmarshal(it.NumberTemplate, &list)
				if len(list) > 0 {
					nt = list[0]
				}
			}
			d.number = nt.FullNumber
			switch {
			case it.Stamp == nil:
				d.state = "draft"
			case it.Stamp.LegalStatus == "STAMPED_AND_REJECTED":
				d.state, d.code = "rejected", it.Stamp.Error.Code
				for _, w := range it.Stamp.Warnings {
					if m := dianRule.FindStringSubmatch(w); m != nil && d.code == "" {
						d.code = m[1] // a rejection told by the DIAN's rule alone
					}
				}
			case it.Stamp.LegalStatus == "STAMPED_AND_WAITING_RESPONSE":
				d.state = "pending"
			default:
				d.state = "accepted"
			}
		case "sv-dte":
			d.id, d.number = it.CodigoGeneracion, it.NumeroControl
			d.state = "accepted"
			if it.Estado == "RECHAZADO" {
				d.state, d.code = "rejected", it.CodigoMsg
			}
		case "certifactu":
			d.number = it.SeriesNumber
			d.state = map[string]string{"pending": "pending", "registered": "accepted", "registered_with_errors": "accepted", "rejected": "rejected"}[status]
			if d.state == "rejected" && it.AEAT != nil && it.AEAT.Code != nil {
				d.code = *it.AEAT.Code
			}
		case "factus":
			d.id, d.number, d.ref = it.Number, it.Number, it.ReferenceCode
			d.state = "pending"
			if status == "1" {
				d.state = "accepted"
			}
			for _, e := range it.Errors {
				if m := dianRule.FindStringSubmatch(e); m != nil {
					d.state, d.code = "rejected", m[1]
				}
			}
		case "alforse":
			d.number = it.Reference
			switch {
			case it.Reconciliation == "exception":
				d.state = "rejected"
				d.code, _, _ = strings.Cut(it.Note, ":") // the sandbox leads a note with its code
			case it.InvoiceStatus == "pending":
				d.state = "pending"
			default:
				d.state = "accepted"
			}
		}
		docs = append(docs, d)
	}
	return docs
}

// docs lists every document of the account (factus pages by ten).
func (h *harness) docs(account string) []doc {
	h.t.Helper()
	prov := h.acc[account].Provider
	if prov != "factus" {
		return h.page(account, listPath[prov])
	}
	var all []doc
	for p := 1; p <= 10; p++ {
		got := h.page(account, fmt.Sprintf("/v1/bills?page=%d", p))
		if len(got) == 0 {
			break
		}
		all = append(all, got...)
	}
	return all
}

// find is the account's first document in the state (with the code, for a rejected one).
func (h *harness) find(account, state, code string) doc {
	h.t.Helper()
	for _, d := range h.docs(account) {
		if d.state == state && (code == "" || d.code == code) {
			return d
		}
	}
	h.t.Fatalf("%s has no %s document %s", account, state, code)
	return doc{}
}

// get reads one document with the provider's read endpoint.
func (h *harness) get(account string, d doc) poller.Response {
	h.t.Helper()
	return h.send(account, "GET", getPath(h.acc[account].Provider, d), nil, nil)
}

// emit sends the provider's emission (or resend) of d.
func (h *harness) emit(account string, d doc) poller.Response {
	h.t.Helper()
	return h.emission(account, d)()
}

// emission prepares the emission of d (sv-dte resends the DTE its GET shows, and a
// bearer token is fetched) so that faults set afterwards meet only the emission itself.
func (h *harness) emission(account string, d doc) func() poller.Response {
	h.t.Helper()
	var method, path string
	var body any
	switch h.acc[account].Provider {
	case "alegra":
		method, path, body = "POST", "/invoices/stamp", map[string]any{"ids": []string{d.id}}
	case "sv-dte":
		var shown struct {
			DTE json.RawMessage `json:"dte"`
		}
		r := h.get(account, d)
		if err := json.Unmarshal(r.Body, &shown); err != nil || len(shown.DTE) == 0 {
			h.t.Fatalf("%s: GET %s gave no dte: %d %s", account, d.id, r.Status, r.Body)
		}
		method, path, body = "POST", "/factura/emitir", shown.DTE
	case "certifactu":
		method, path = "POST", "/v1/invoices/"+d.id+"/submit"
	case "factus":
		h.token(account)
		method, path, body = "POST", "/v1/bills/validate", map[string]any{"reference_code": d.ref}
	default:
		h.token(account)
		method, path = "PATCH", "/payments/"+d.id+"/invoice"
		body = map[string]any{"invoiceAmount": "150.00", "invoiceDate": "2025-06-02", "invoiceNo": "FV-" + d.number}
	}
	return func() poller.Response { return h.send(account, method, path, body, nil) }
}

// newDTE is a DTE the sv-dte gateway has never seen.
func newDTE(id string) json.RawMessage {
	return json.RawMessage(`{"identificacion":{"version":1,"ambiente":"00","tipoDte":"01","numeroControl":"DTE-01-M001P001-000000000777001",` +
		`"codigoGeneracion":"` + id + `","tipoModelo":1,"tipoOperacion":1,"fecEmi":"2025-06-02","horEmi":"12:00:00","tipoMoneda":"USD"},` +
		`"emisor":{"nit":"06141234567890","nombre":"Sandbox sv-main","codEstable":"M001"},"resumen":{"totalGravada":100,"totalPagar":100}}`)
}

// The codes each provider's seeded rejections carry, by cause (see the sandbox catalogs):
// the first four documents of every account are rejected for each cause its provider knows.
type causeCodes struct{ data, outside, duplicate, transient string }

var codes = map[string]causeCodes{
	"alegra":     {"AEP6016", "AEP1005", "AEP6009", "EPR500"},
	"sv-dte":     {"804", "801", "004", ""},
	"certifactu": {"1100", "4112", "3000", "4108"},
	"factus":     {"FAK24", "ZE02", "90", ""},
	"alforse":    {"INVOICE_AMOUNT_EXCEEDS_TARGET", "PLAN_FEATURE_NOT_ENABLED", "", ""},
}

// duplicateCode is the code each provider answers a resent accepted document with ("-":
// alforse's 409 has none, only its message).
var duplicateCode = map[string]string{
	"alegra": "AEP6009", "sv-dte": "004", "certifactu": "DUPLICATE_INVOICE", "factus": "90", "alforse": "-",
}

// firstAccount is the account each provider's cases use.
var firstAccount = map[string]string{
	"alegra": "alegra-co", "sv-dte": "sv-main", "certifactu": "cf-madrid", "factus": "factus-bog", "alforse": "alforse-main",
}

// expect is what the decoded Problem of a case must say.
type expect struct {
	class   model.Class
	verdict model.Verdict
	code    string   // "" means any; "-" means none
	windows []string // the window names, exactly; nil means not checked
	spent   string   // the window (by name) a 429 reports spent, with a reset
	wait    bool     // a wait > 0 must be stated
	noWait  bool     // no wait may be stated
}

// decodeCase is one request against a fresh sandbox and what its answer decodes to.
type decodeCase struct {
	provider, name string
	limits         *sandbox.Limits // nil means roomy
	run            func(h *harness, acc string) poller.Response
	want           expect
}

var (
	ok        = expect{class: model.ClassOK, verdict: model.VerdictNone}
	authAgain = expect{class: model.ClassAuth, verdict: model.VerdictReauth}
	maint     = []sandbox.Span{{From: 0, Until: time.Hour}}
)

// caseList is every endpoint of every provider, with each answer the sandbox can give it.
func caseList() []decodeCase {
	var cs []decodeCase
	add := func(provider, name string, want expect, run func(h *harness, acc string) poller.Response) {
		cs = append(cs, decodeCase{provider: provider, name: name, want: want, run: run})
	}
	addTight := func(provider, name string, lim sandbox.Limits, want expect, run func(h *harness, acc string) poller.Response) {
		cs = append(cs, decodeCase{provider: provider, name: name, limits: &lim, want: want, run: run})
	}
	getState := func(state, code string) func(h *harness, acc string) poller.Response {
		return func(h *harness, acc string) poller.Response { return h.get(acc, h.find(acc, state, code)) }
	}
	emitState := func(state, code string) func(h *harness, acc string) poller.Response {
		return func(h *harness, acc string) poller.Response { return h.emit(acc, h.find(acc, state, code)) }
	}
	afterFix := func(code string) func(h *harness, acc string) poller.Response {
		return func(h *harness, acc string) poller.Response {
			d := h.find(acc, "rejected", code)
			h.s.Fix(acc)
			return h.emit(acc, d)
		}
	}
	list := func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", listPath[h.acc[acc].Provider], nil, nil)
	}
	// faulty sets the faults once the request is ready (and logged in: a login would meet
	// them too), then sends it.
	faulty := func(f sandbox.Faults, write bool, code string) func(h *harness, acc string) poller.Response {
		return func(h *harness, acc string) poller.Response {
			send := func() poller.Response { return list(h, acc) }
			if write {
				send = h.emission(acc, h.find(acc, "rejected", code))
			} else if p := h.acc[acc].Provider; p == "factus" || p == "alforse" {
				h.token(acc)
			}
			h.s.SetFaults(acc, f)
			return send()
		}
	}
	thirdOf := func(f func(h *harness, acc string) poller.Response) func(h *harness, acc string) poller.Response {
		return func(h *harness, acc string) poller.Response {
			for i := range 2 {
				if r := f(h, acc); r.Status/100 != 2 {
					h.t.Fatalf("request %d: %d %s", i+1, r.Status, r.Body)
				}
			}
			return f(h, acc)
		}
	}
	wrongKey := func(path string) func(h *harness, acc string) poller.Response {
		return func(h *harness, acc string) poller.Response {
			return h.send(acc, "GET", path, nil, func(r *http.Request) {
				r.SetBasicAuth(h.acc[acc].Credentials["email"], "0000")
				r.Header.Set("X-API-Key", "sk_user_wrong")
				if r.Header.Get("Authorization") != "" && !strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
					r.Header.Set("Authorization", "Bearer wrong")
				}
			})
		}
	}
	expired := func(path string) func(h *harness, acc string) poller.Response {
		return func(h *harness, acc string) poller.Response {
			h.s.SetFaults(acc, sandbox.Faults{KeyExpired: true})
			return h.send(acc, "GET", path, nil, nil)
		}
	}

	for _, prov := range []string{"alegra", "sv-dte", "certifactu", "factus", "alforse"} {
		c := codes[prov]
		lp := listPath[prov]
		// Happy paths.
		add(prov, "list", ok, list)
		if prov != "alforse" {
			add(prov, "get accepted", ok, getState("accepted", ""))
		}
		// Wrong credentials.
		add(prov, "wrong credentials", authAgain, wrongKey(lp))
		// Maintenance: a read may wait out the Retry-After, a write must be verified.
		add(prov, "maintenance read", expect{class: model.ClassUnavailable, verdict: model.VerdictWait, wait: true},
			faulty(sandbox.Faults{Maintenance: maint}, false, ""))
		add(prov, "maintenance write", expect{class: model.ClassUnavailable, verdict: model.VerdictVerify, wait: true},
			faulty(sandbox.Faults{Maintenance: maint}, true, c.data))
		if prov == "factus" {
			continue // a rejected bill blocks every validation until it is deleted: its own cases
		}
		// A 5xx after the write committed.
		add(prov, "500 after commit", expect{class: model.ClassServer, verdict: model.VerdictVerify},
			faulty(sandbox.Faults{ServerErrorAfterCommit: 1}, true, c.data))
		// Resends: an accepted document is a duplicate, a data rejection needs a fix, an
		// outside cause needs someone with authority until it is fixed.
		add(prov, "resend accepted", expect{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: duplicateCode[prov]}, emitState("accepted", ""))
		add(prov, "resend outside after fix", ok, afterFix(c.outside))
	}

	// alegra: Basic email:token, X-Rate-Limit-* with a delta reset, stamp answers on a 200.
	const A = "alegra"
	add(A, "get rejected data", expect{class: model.ClassValidation, verdict: model.VerdictFix, code: "AEP6016"}, getState("rejected", "AEP6016"))
	add(A, "get rejected certificate", expect{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "AEP1005"}, getState("rejected", "AEP1005"))
	add(A, "get rejected duplicate", expect{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "AEP6009"}, getState("rejected", "AEP6009"))
	add(A, "get rejected upstream", expect{class: model.ClassUpstream, verdict: model.VerdictRetry, code: "EPR500"}, getState("rejected", "EPR500"))
	add(A, "get draft", ok, getState("draft", ""))
	add(A, "get unknown", expect{class: model.ClassNotFound, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/invoices/99999", nil, nil)
	})
	add(A, "delete", expect{class: model.ClassMethod, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "DELETE", "/invoices/1000", nil, nil)
	})
	add(A, "list limit 31", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/invoices?limit=31", nil, nil)
	})
	add(A, "list with windows", expect{class: model.ClassOK, verdict: model.VerdictNone, windows: []string{""}}, list)
	add(A, "token expired", authAgain, expired("/invoices"))
	add(A, "stamp transient", ok, emitState("rejected", "EPR500"))
	add(A, "stamp pending", expect{class: model.ClassProcessing, verdict: model.VerdictVerify, code: "AEP2011"}, emitState("pending", ""))
	add(A, "stamp data", expect{class: model.ClassValidation, verdict: model.VerdictFix, code: "AEP6016"}, emitState("rejected", "AEP6016"))
	add(A, "stamp certificate", expect{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "AEP1005"}, emitState("rejected", "AEP1005"))
	add(A, "stamp duplicate rejection", expect{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "AEP6009"}, emitState("rejected", "AEP6009"))
	add(A, "stamp no ids", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "POST", "/invoices/stamp", map[string]any{"ids": []string{}}, nil)
	})
	addTight(A, "429", tight, expect{class: model.ClassRateLimited, verdict: model.VerdictWait, windows: []string{""}, spent: "", wait: true}, thirdOf(list))

	// sv-dte: X-API-Key, three named throttlers, the Ministry's answer even on a 500.
	const S = "sv-dte"
	add(S, "get rejected data", expect{class: model.ClassRejected, verdict: model.VerdictFix, code: "804"}, getState("rejected", "804"))
	add(S, "get rejected certificate", expect{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "801"}, getState("rejected", "801"))
	add(S, "get rejected duplicate", expect{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "004"}, getState("rejected", "004"))
	add(S, "get unknown", expect{class: model.ClassNotFound, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/factura/00000000-0000-4000-8000-000000000000", nil, nil)
	})
	add(S, "list pageSize 51", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/factura?pageSize=51", nil, nil)
	})
	add(S, "key expired", expect{class: model.ClassAuth, verdict: model.VerdictReauth, code: "-"}, expired("/factura"))
	add(S, "emit new", ok, func(h *harness, acc string) poller.Response {
		return h.send(acc, "POST", "/factura/emitir", newDTE("5F1C8A2E-3B4D-4E6F-9A1B-2C3D4E5F6A7B"), nil)
	})
	add(S, "emit bad schema", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "POST", "/factura/emitir", newDTE("not-a-uuid"), nil)
	})
	add(S, "resend data", expect{class: model.ClassRejected, verdict: model.VerdictFix, code: "804"}, emitState("rejected", "804"))
	add(S, "resend certificate", expect{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "801"}, emitState("rejected", "801"))
	add(S, "resend duplicate rejection", expect{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "004"}, emitState("rejected", "004"))
	addTight(S, "list with windows", tight, expect{class: model.ClassOK, verdict: model.VerdictNone, windows: []string{"long", "medium", "short"}}, list)
	addTight(S, "429 named", tight, expect{class: model.ClassRateLimited, verdict: model.VerdictWait, windows: []string{"short"}, spent: "short", wait: true}, thirdOf(list))
	epoch := tight
	epoch.SVDTEEpoch = true
	addTight(S, "429 documented epoch form", epoch, expect{class: model.ClassRateLimited, verdict: model.VerdictWait, windows: []string{""}, spent: "", wait: true}, thirdOf(list))

	// certifactu: X-API-Key, X-RateLimit-* with an epoch reset and Date, retry_after.
	const C = "certifactu"
	add(C, "get rejected data", expect{class: model.ClassRejected, verdict: model.VerdictFix, code: "1100"}, getState("rejected", "1100"))
	add(C, "get rejected certificate", expect{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "4112"}, getState("rejected", "4112"))
	add(C, "get rejected duplicate", expect{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "3000"}, getState("rejected", "3000"))
	add(C, "get pending", ok, getState("pending", ""))
	add(C, "get unknown", expect{class: model.ClassNotFound, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/v1/invoices/nope", nil, nil)
	})
	add(C, "put", expect{class: model.ClassMethod, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "PUT", "/v1/invoices/nope", nil, nil)
	})
	add(C, "list page_size 101", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/v1/invoices?page_size=101", nil, nil)
	})
	add(C, "list with windows", expect{class: model.ClassOK, verdict: model.VerdictNone, windows: []string{""}}, list)
	add(C, "key expired", expect{class: model.ClassAuth, verdict: model.VerdictReauth, code: "INVALID_API_KEY"}, expired("/v1/invoices"))
	add(C, "submit data", expect{class: model.ClassRejected, verdict: model.VerdictFix, code: "1100"}, emitState("rejected", "1100"))
	add(C, "submit certificate", expect{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "4112"}, emitState("rejected", "4112"))
	add(C, "submit duplicate rejection", expect{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "3000"}, emitState("rejected", "3000"))
	add(C, "submit pending", ok, emitState("pending", ""))
	add(C, "submit unknown", expect{class: model.ClassNotFound, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "POST", "/v1/invoices/nope/submit", nil, nil)
	})
	addTight(C, "429", tight, expect{class: model.ClassRateLimited, verdict: model.VerdictWait, code: "RATE_LIMITED", windows: []string{""}, spent: "", wait: true}, thirdOf(list))

	// factus: OAuth2 password grant, Laravel headers, bills keyed by reference_code.
	const F = "factus"
	add(F, "token password", ok, func(h *harness, acc string) poller.Response { return h.login(acc, "") })
	add(F, "token refresh", ok, func(h *harness, acc string) poller.Response {
		h.token(acc)
		return h.refreshWith(acc, h.refresh[acc])
	})
	add(F, "token refresh reused", expect{class: model.ClassAuth, verdict: model.VerdictReauth, code: "invalid_grant"}, func(h *harness, acc string) poller.Response {
		h.token(acc)
		h.refreshWith(acc, h.refresh[acc])
		return h.refreshWith(acc, h.refresh[acc])
	})
	add(F, "token wrong password", expect{class: model.ClassAuth, verdict: model.VerdictEscalate, code: "invalid_grant"}, func(h *harness, acc string) poller.Response {
		return h.login(acc, "wrong")
	})
	add(F, "token wrong client", expect{class: model.ClassAuth, verdict: model.VerdictEscalate, code: "invalid_client"}, func(h *harness, acc string) poller.Response {
		cr := h.acc[acc].Credentials
		return h.send(acc, "POST", "/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {cr["client_id"]},
			"client_secret": {"wrong"}, "username": {cr["username"]}, "password": {cr["password"]}}, nil)
	})
	add(F, "token get", expect{class: model.ClassMethod, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/oauth/token", nil, nil)
	})
	add(F, "get rejected data", expect{class: model.ClassRejected, verdict: model.VerdictFix, code: "FAK24"}, getState("rejected", "FAK24"))
	add(F, "get rejected certificate", expect{class: model.ClassCertificate, verdict: model.VerdictEscalate, code: "ZE02"}, getState("rejected", "ZE02"))
	add(F, "get rejected duplicate", expect{class: model.ClassDuplicate, verdict: model.VerdictReconcile, code: "90"}, getState("rejected", "90"))
	add(F, "get pending", ok, getState("pending", ""))
	add(F, "get unknown", expect{class: model.ClassNotFound, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/v1/bills/show/NOPE1", nil, nil)
	})
	add(F, "list bad filter", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/v1/bills?filter[status]=2", nil, nil)
	})
	add(F, "list with windows", expect{class: model.ClassOK, verdict: model.VerdictNone, windows: []string{""}}, list)
	// A rejected bill blocks the account's next ones until it is deleted (Factus's docs).
	add(F, "validate blocked", expect{class: model.ClassConflict, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "POST", "/v1/bills/validate", map[string]any{"reference_code": "REF-NEW-000001"}, nil)
	})
	add(F, "validate no reference", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "POST", "/v1/bills/validate", map[string]any{}, nil)
	})
	add(F, "validate once cleared", ok, func(h *harness, acc string) poller.Response {
		for _, d := range h.docs(acc) {
			if d.state == "rejected" {
				if r := h.send(acc, "DELETE", "/v1/bills/destroy/reference/"+d.ref, nil, nil); r.Status != http.StatusOK {
					h.t.Fatalf("delete %s: %d %s", d.ref, r.Status, r.Body)
				}
			}
		}
		for i := range 20 { // until one is accepted (the catalog may reject the first)
			r := h.send(acc, "POST", "/v1/bills/validate", map[string]any{"reference_code": fmt.Sprintf("REF-NEW-%06d", i)}, nil)
			if r.Status == http.StatusCreated {
				return r
			}
			h.send(acc, "DELETE", fmt.Sprintf("/v1/bills/destroy/reference/REF-NEW-%06d", i), nil, nil)
		}
		h.t.Fatal("no new bill accepted in 20")
		return poller.Response{}
	})
	add(F, "delete rejected", ok, func(h *harness, acc string) poller.Response {
		return h.send(acc, "DELETE", "/v1/bills/destroy/reference/"+h.find(acc, "rejected", "FAK24").ref, nil, nil)
	})
	add(F, "delete accepted", expect{class: model.ClassConflict, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "DELETE", "/v1/bills/destroy/reference/"+h.find(acc, "accepted", "").ref, nil, nil)
	})
	add(F, "delete unknown", expect{class: model.ClassNotFound, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "DELETE", "/v1/bills/destroy/reference/NOPE", nil, nil)
	})
	add(F, "expired token", authAgain, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/v1/bills", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer expired") })
	})
	addTight(F, "429", tight, expect{class: model.ClassRateLimited, verdict: model.VerdictWait, windows: []string{""}, spent: "", wait: true}, thirdOf(list))

	// alforse: login for a JWT, payments awaiting their invoice, a limited login only.
	const L = "alforse"
	add(L, "login", ok, func(h *harness, acc string) poller.Response { return h.login(acc, "") })
	add(L, "login wrong password", expect{class: model.ClassAuth, verdict: model.VerdictEscalate}, func(h *harness, acc string) poller.Response {
		return h.login(acc, "wrong")
	})
	add(L, "login malformed", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "POST", "/auth/login", "{", nil)
	})
	add(L, "refresh", ok, func(h *harness, acc string) poller.Response {
		h.token(acc)
		return h.refreshWith(acc, h.refresh[acc])
	})
	add(L, "refresh reused", authAgain, func(h *harness, acc string) poller.Response {
		h.token(acc)
		h.refreshWith(acc, h.refresh[acc])
		return h.refreshWith(acc, h.refresh[acc])
	})
	add(L, "missing bearer", authAgain, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/payments", nil, func(r *http.Request) { r.Header.Del("Authorization") })
	})
	add(L, "list pageSize 201", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "GET", "/payments?pageSize=201", nil, nil)
	})
	// A payment awaiting its invoice takes it, unless the payment will meet an exception:
	// every refusal on the way must decode to its catalog's problem.
	add(L, "invoice pending", ok, func(h *harness, acc string) poller.Response {
		for _, name := range []string{acc, "alforse-ops"} {
			for _, d := range h.docs(name) {
				if d.state != "pending" {
					continue
				}
				r := h.emit(name, d)
				if r.Status/100 == 2 {
					return r
				}
				if p, _ := poller.Decode(L, r); p.OK() || p.Code == "" || p.Verdict != model.VerdictEscalate && p.Verdict != model.VerdictFix {
					h.t.Errorf("refused invoice decodes to %s/%s code %q: %d %s", p.Class, p.Verdict, p.Code, r.Status, r.Body)
				}
			}
		}
		h.t.Fatal("no payment awaiting its invoice took it")
		return poller.Response{}
	})
	add(L, "invoice data", expect{class: model.ClassValidation, verdict: model.VerdictFix, code: "INVOICE_AMOUNT_EXCEEDS_TARGET"}, emitState("rejected", "INVOICE_AMOUNT_EXCEEDS_TARGET"))
	add(L, "invoice plan", expect{class: model.ClassPlan, verdict: model.VerdictEscalate, code: "PLAN_FEATURE_NOT_ENABLED"}, emitState("rejected", "PLAN_FEATURE_NOT_ENABLED"))
	add(L, "invoice missing fields", expect{class: model.ClassValidation, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "PATCH", "/payments/"+h.find(acc, "pending", "").id+"/invoice", map[string]any{}, nil)
	})
	add(L, "invoice unknown payment", expect{class: model.ClassNotFound, verdict: model.VerdictFix}, func(h *harness, acc string) poller.Response {
		return h.send(acc, "PATCH", "/payments/nope/invoice", map[string]any{"invoiceAmount": "1", "invoiceDate": "2025-06-02", "invoiceNo": "X"}, nil)
	})
	addTight(L, "login 429", tight, expect{class: model.ClassRateLimited, verdict: model.VerdictWait, windows: []string{}, noWait: true},
		thirdOf(func(h *harness, acc string) poller.Response { return h.login(acc, "") }))
	return cs
}

// TestDecodeEveryAnswer drives every endpoint of every provider over real HTTP and decodes
// each answer with the provider's dialect.
func TestDecodeEveryAnswer(t *testing.T) {
	for _, c := range caseList() {
		t.Run(c.provider+"/"+c.name, func(t *testing.T) {
			lim := roomy
			if c.limits != nil {
				lim = *c.limits
			}
			h := start(t, lim)
			acc := firstAccount[c.provider]
			r := c.run(h, acc)
			p, err := poller.Decode(c.provider, r)
			if err != nil {
				t.Fatal(err)
			}
			c.want.check(t, p, r)
		})
	}
}

func (w expect) check(t *testing.T, p model.Problem, r poller.Response) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format+"\nanswer %d %s: %.400s", append(args, r.Status, r.Header, r.Body)...)
	}
	if p.Class != w.class || p.Verdict != w.verdict {
		fail("decoded %s/%s (code %q), want %s/%s", p.Class, p.Verdict, p.Code, w.class, w.verdict)
	}
	switch w.code {
	case "":
	case "-":
		if p.Code != "" {
			fail("code %q, want none", p.Code)
		}
	default:
		if p.Code != w.code {
			fail("code %q, want %q", p.Code, w.code)
		}
	}
	if p.Meaning == "" || p.Action == "" {
		fail("no meaning or action: %+v", p)
	}
	if w.windows != nil {
		names := []string{}
		for _, win := range p.Windows {
			names = append(names, win.Name)
			if win.Limit <= 0 && win.Limit != model.Unknown {
				fail("window %q limit %d", win.Name, win.Limit)
			}
		}
		if !slices.Equal(names, w.windows) {
			fail("windows %q, want %q", names, w.windows)
		}
	}
	if w.class == model.ClassRateLimited && w.windows != nil && len(w.windows) > 0 {
		found := false
		for _, win := range p.Windows {
			if win.Name == w.spent {
				found = true
				if !win.Spent() || !win.HasReset() || win.Reset <= 0 {
					fail("window %q is not spent with a reset: %+v", win.Name, win)
				}
			}
		}
		if !found {
			fail("no spent window %q", w.spent)
		}
	}
	if w.wait && (!p.HasWait || p.Wait <= 0) {
		fail("no wait stated (%v, %v)", p.HasWait, p.Wait)
	}
	if w.noWait && p.HasWait {
		fail("a wait of %v, but nothing in the answer says how long", p.Wait)
	}
}

// TestDecodeListedDocuments reads back every document on the first page of every account's
// list: a rejected one decodes to a problem with its code, meaning and action; an accepted
// one to ok. Alforse has no read of one payment: its list items are decoded as they come.
func TestDecodeListedDocuments(t *testing.T) {
	h := start(t, roomy)
	for _, a := range h.s.Accounts() {
		docs := h.page(a.Name, listPath[a.Provider])
		seen := map[string]int{}
		for _, d := range docs {
			seen[d.state]++
			var r poller.Response
			if a.Provider == "alforse" {
				r = poller.Response{Status: http.StatusOK, Method: "GET", Body: d.raw, Received: time.Now()}
			} else {
				r = h.get(a.Name, d)
			}
			p, err := poller.Decode(a.Provider, r)
			if err != nil {
				t.Fatal(err)
			}
			switch d.state {
			case "rejected":
				if p.OK() || p.Code != d.code || d.code == "" || p.Meaning == "" || p.Action == "" || p.Verdict == model.VerdictNone {
					t.Errorf("%s: rejected %s (%s) decodes to %s/%s code %q meaning %q\n%.300s", a.Name, d.id, d.code, p.Class, p.Verdict, p.Code, p.Meaning, r.Body)
				}
			case "accepted", "pending", "draft":
				if !p.OK() || p.Verdict != model.VerdictNone {
					t.Errorf("%s: %s %s decodes to %s/%s code %q\n%.300s", a.Name, d.state, d.id, p.Class, p.Verdict, p.Code, r.Body)
				}
			default:
				t.Errorf("%s: %s has no state: %.200s", a.Name, d.id, d.raw)
			}
		}
		if seen["rejected"] == 0 || seen["accepted"] == 0 {
			t.Errorf("%s: first page holds %v; want rejected and accepted documents", a.Name, seen)
		}
	}
}
