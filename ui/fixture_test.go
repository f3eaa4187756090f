package ui

import (
	"context"
	"fmt"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"emitop/model"
)

// clock is the fixed time every test renders at.
var clock = time.Date(2026, 3, 14, 15, 4, 5, 0, time.UTC)

// zone is the zone every test shows times in: not the machine's, and not UTC, so that a
// time shown without its zone, or in the wrong one, shows in the golden files.
var zone = time.FixedZone("CST", -6*60*60)

func fixedNow() time.Time { return clock }

// memBackend is an in-memory Backend with fixed data.
type memBackend struct {
	snap     model.Snapshot
	events   []model.Event
	mu       sync.Mutex
	refreshN int
	ch       chan model.Snapshot

	hold    bool // RunRetry waits after the first document until its ctx is cancelled
	plans   []RetryRequest
	reports []model.RetryReport
}

func newMemBackend(s model.Snapshot, events []model.Event) *memBackend {
	return &memBackend{snap: s, events: events}
}

func (b *memBackend) Subscribe() (<-chan model.Snapshot, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ch = make(chan model.Snapshot, 1)
	b.ch <- b.snap
	var once sync.Once
	return b.ch, func() { once.Do(func() { close(b.ch) }) }
}

func (b *memBackend) Refresh() {
	b.mu.Lock()
	b.refreshN++
	b.mu.Unlock()
}

func (b *memBackend) refreshes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refreshN
}

func (b *memBackend) DocumentEvents(_ context.Context, account, docID string, limit int) ([]model.Event, error) {
	var out []model.Event
	for _, e := range b.events {
		if e.Account == account && e.DocID == docID && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (b *memBackend) Events(_ context.Context, f EventFilter) ([]model.Event, error) {
	var out []model.Event
	for _, e := range b.events {
		if (f.Account == "" || e.Account == f.Account) && (f.DocID == "" || e.DocID == f.DocID) && !e.At.Before(f.Since) {
			out = append(out, e)
		}
	}
	return out, nil
}

// WindowSeries returns a fixed wave: the last value is the window's remaining.
func (b *memBackend) WindowSeries(_ context.Context, account, window string, _ time.Time, n int) ([]int, error) {
	for _, a := range b.snap.Accounts {
		if a.Account.Name != account {
			continue
		}
		for _, w := range a.Windows {
			if w.Name != window || w.Limit <= 0 {
				continue
			}
			out := make([]int, n)
			for i := range out {
				out[i] = w.Limit * ((i*7)%10 + 1) / 10
			}
			out[0], out[n-1] = 0, w.Remaining
			return out, nil
		}
	}
	return nil, nil
}

// Requests returns a fixed request log: a request a minute for the last 40 minutes; an
// account that is down or refused failed from 25 minutes ago, a degraded one every third
// minute.
func (b *memBackend) Requests(_ context.Context, account string, since time.Time, limit int) ([]Request, error) {
	var health model.Health
	for _, a := range b.snap.Accounts {
		if a.Account.Name == account {
			health = a.Health
		}
	}
	var out []Request
	for i := range 40 {
		r := Request{At: clock.Add(-time.Duration(i)*time.Minute - 3*time.Second), Method: "GET", Path: "/v1/documents",
			Status: 200, Latency: time.Duration(80+i*7) * time.Millisecond, Class: model.ClassOK}
		switch {
		case (health == model.HealthDown || health == model.HealthRefused) && i < 25:
			r.Status, r.Class, r.Latency = 0, model.ClassUnknown, 30*time.Second
			if health == model.HealthRefused {
				r.Status, r.Class, r.Latency = 401, model.ClassAuth, 90*time.Millisecond
			}
		case health == model.HealthDegraded && i%3 == 0:
			r.Status, r.Class = 429, model.ClassRateLimited
		}
		if r.At.Before(since) || len(out) >= limit {
			break
		}
		out = append(out, r)
	}
	return out, nil
}

// fixtureReason is a reason the fixture words itself, shown as it is.
func fixtureReason(text string) model.RetryReason {
	return model.RetryReason{Kind: model.ReasonProvider, Note: text}
}

// PlanRetry plans like the engine's policy: outside causes are resent, fix and reconcile
// only when forced; each resend reads, then posts. Every request takes 1.5 s.
func (b *memBackend) PlanRetry(_ context.Context, req RetryRequest) (model.RetryPlan, error) {
	b.mu.Lock()
	b.plans = append(b.plans, req)
	b.mu.Unlock()
	p := model.RetryPlan{Force: req.Force, Reason: req.Reason}
	for _, d := range req.Docs {
		it := model.RetryItem{Doc: d, Verdict: problemOf(&d).Verdict}
		switch it.Verdict {
		case model.VerdictFix, model.VerdictReconcile:
			it.Resend, it.Forced = req.Force, req.Force
			it.Why = fixtureReason("verdict " + string(it.Verdict) + ": the data must change first")
			if req.Force {
				it.Why = fixtureReason("forced past verdict " + string(it.Verdict))
			}
		default:
			it.Resend, it.Why = true, fixtureReason("verdict "+string(it.Verdict)+": read the status, then resend if still rejected")
		}
		if it.Resend {
			url := "https://" + d.Provider + ".sandbox.test/v1/documents/" + d.ID
			it.Requests = []model.PlannedRequest{
				{Method: "GET", URL: url, Header: []string{"Authorization: [redacted]"}},
				{Method: "POST", URL: url + "/resend", Header: []string{"Authorization: [redacted]", "Content-Type: application/json"}, Body: `{"id":"` + d.ID + `"}`},
			}
			p.Requests += 2
		}
		p.Items = append(p.Items, it)
	}
	p.ETA = time.Duration(p.Requests) * 1500 * time.Millisecond
	return p, nil
}

// RunRetry accepts every resend and skips the rest, reporting each document; with hold
// it stops after the first document until ctx is cancelled, and the rest are cancelled.
func (b *memBackend) RunRetry(ctx context.Context, p model.RetryPlan, progress func(model.RetryProgress)) (model.RetryReport, error) {
	rep := model.RetryReport{Elapsed: 3200 * time.Millisecond}
	n := len(p.Items)
	progress(model.RetryProgress{Total: n, Current: p.Items[0].Doc.ID, ETA: p.ETA})
	for i, it := range p.Items {
		if i == 1 && b.hold {
			<-ctx.Done()
		}
		res := model.RetryResult{Doc: it.Doc, Verdict: it.Verdict, Forced: it.Forced}
		switch {
		case !it.Resend:
			res.Outcome, res.Why, res.Detail = model.OutcomeSkipped, it.Why, it.Why.String()
		case ctx.Err() != nil:
			res.Outcome, res.Detail, rep.Cancelled = model.OutcomeSkipped, "cancelled before it was sent", true
		default:
			res.Outcome, res.Detail, res.Sent = model.OutcomeAccepted, "resent: accepted", true
			res.Doc.Attempts++
			rep.Requests += 2
		}
		rep.Results = append(rep.Results, res)
		pr := model.RetryProgress{Done: i + 1, Total: n, Result: &res, ETA: time.Duration(n-i-1) * 3 * time.Second}
		if i+1 < n {
			pr.Current = p.Items[i+1].Doc.ID
		}
		progress(pr)
	}
	b.mu.Lock()
	b.reports = append(b.reports, rep)
	b.mu.Unlock()
	b.Refresh()
	return rep, nil
}

func problem(provider string, status int, code string, class model.Class, msg string) *model.Problem {
	g := model.ClassGuidance[class]
	return &model.Problem{
		Provider: provider, Status: status, Method: "POST", Code: code, Class: class,
		Verdict: model.VerdictFor(class, "POST", false), Message: msg, Meaning: g.Meaning, Action: g.Action,
	}
}

// fixture is a small, varied snapshot: every health, budget level, stale data, verdicts and a
// hostile provider message.
func fixture() (model.Snapshot, []model.Event) {
	ago := func(d time.Duration) time.Time { return clock.Add(-d) }
	win := func(name string, limit, remaining int, reset time.Duration) model.Window {
		return model.Window{Name: name, Limit: limit, Remaining: remaining, Reset: reset, Observed: ago(5 * time.Second), ExhaustsIn: -1}
	}
	medium := win("medium", 100, 12, 42*time.Second)
	medium.Reset, medium.ExhaustsIn = 50*time.Minute, 3*time.Minute // 12 left at 4 a minute
	refusal := problem("sv-dte", 401, "", model.ClassAuth, "Unauthorized: API key revoked")
	refusal.Method, refusal.Verdict = "GET", model.VerdictReauth
	refusal.Meaning = "The provider refused the account's API key: it is wrong, expired or revoked."
	refusal.Action = "Put a valid API key in the account's configuration, then refresh."
	rejected := problem("sv-dte", 400, "017", model.ClassRejected, "Código de generación inválido")
	rejected.Fields = []string{"identificacion.codigoGeneracion", "resumen.totalPagar"}
	dup := problem("factus", 409, "Regla 90", model.ClassDuplicate, "Documento procesado anteriormente")
	rate := problem("alegra", 429, "", model.ClassRateLimited, "Too Many Requests")
	rate.Verdict, rate.HasWait, rate.Wait = model.VerdictWait, true, 42*time.Second
	hostile := problem("certifactu", 502, "AEAT-3000", model.ClassUpstream, "REJECTED\rACCEPTED\x1b[8m hidden\u202e")
	s := model.Snapshot{At: clock, Accounts: []model.AccountState{
		{
			Account: model.Account{Name: "sv-main", Provider: "sv-dte"}, Health: model.HealthUp,
			Windows:      []model.Window{win("short", 10, 8, 7*time.Second), medium, win("long", 1000, 940, 50*time.Minute)},
			PollInterval: 90 * time.Second, BaseInterval: 30 * time.Second, Reserve: 0.1, LastPoll: ago(4 * time.Second), LastGood: ago(4 * time.Second),
			Documents: []model.Document{
				{Account: "sv-main", Provider: "sv-dte", ID: "a1", Number: "DTE-01-0000001", Status: model.StatusRejected, Problem: rejected, Attempts: 2, FirstSeen: ago(3 * time.Hour), Changed: ago(5 * time.Minute)},
				{Account: "sv-main", Provider: "sv-dte", ID: "a2", Number: "DTE-01-0000002", Status: model.StatusPending, Attempts: 1, FirstSeen: ago(40 * time.Second), Changed: ago(40 * time.Second)},
			},
		},
		{
			Account: model.Account{Name: "alegra-co", Provider: "alegra"}, Health: model.HealthDegraded,
			Windows:      []model.Window{win("", 60, 0, 42*time.Second)},
			PollInterval: 42 * time.Second, BaseInterval: 15 * time.Second, Reserve: 0.1, LastPoll: ago(2 * time.Second), LastGood: ago(17 * time.Second),
			Err: "GET /invoices: 429 Too Many Requests", LastError: rate,
			Documents: []model.Document{
				{Account: "alegra-co", Provider: "alegra", ID: "981", Number: "FE-981", Status: model.StatusRejected, Problem: rate, Attempts: 1, FirstSeen: ago(12 * time.Minute), Changed: ago(12 * time.Minute)},
			},
		},
		{
			Account: model.Account{Name: "factus-prod", Provider: "factus"}, Health: model.HealthDown,
			Windows:      []model.Window{{Name: "minute", Limit: model.Unknown, Remaining: model.Unknown, Reset: -1}},
			PollInterval: 30 * time.Second, BaseInterval: 30 * time.Second, Reserve: 0.1, LastPoll: ago(3 * time.Minute),
			Err: "GET /v1/bills: dial tcp 127.0.0.1:9: connect: connection refused",
			Documents: []model.Document{
				{Account: "factus-prod", Provider: "factus", ID: "SETP990000002", Number: "SETP990000002", Status: model.StatusRejected, Problem: dup, Attempts: 3, FirstSeen: ago(26 * time.Hour), Changed: ago(2 * time.Hour)},
			},
		},
		{
			Account: model.Account{Name: "certi-es", Provider: "certifactu"}, Health: model.HealthUp,
			PollInterval: time.Minute, BaseInterval: time.Minute, Reserve: 0.1, LastPoll: ago(20 * time.Second), LastGood: ago(20 * time.Second),
			Documents: []model.Document{
				{Account: "certi-es", Provider: "certifactu", ID: "F2026-7", Number: "F2026/7", Status: model.StatusPending, Problem: hostile, Attempts: 1, FirstSeen: ago(9 * time.Minute), Changed: ago(time.Minute)},
			},
		},
		{
			// Refused: the provider's last answer still carried a healthy budget.
			Account: model.Account{Name: "sv-branch", Provider: "sv-dte"}, Health: model.HealthRefused,
			Windows:      []model.Window{win("", 150, 143, 38*time.Second)},
			PollInterval: 30 * time.Second, BaseInterval: 30 * time.Second, Reserve: 0.1, LastPoll: ago(6 * time.Second), LastGood: ago(26 * time.Minute),
			Err: "GET /factura: 401 auth", LastError: refusal,
			Documents: []model.Document{
				{Account: "sv-branch", Provider: "sv-dte", ID: "b7", Number: "DTE-01-M001P001-000000000000002", Status: model.StatusRejected, Problem: rejected, Attempts: 0, FirstSeen: ago(30 * time.Hour), Changed: ago(50 * time.Minute)},
				{Account: "sv-branch", Provider: "sv-dte", ID: "b8", Number: "DTE-01-M002P001-000000000000017", Status: model.StatusPending, Attempts: 1, FirstSeen: ago(40 * time.Hour), Changed: ago(45 * time.Minute)},
			},
		},
	}}
	events := []model.Event{
		{ID: 5, At: ago(time.Minute), Account: "certi-es", Provider: "certifactu", DocID: "F2026-7", Number: "F2026/7", Status: model.StatusPending, Problem: hostile, Kind: "problem", Raw: []byte("<html>502 Bad Gateway</html>")},
		{ID: 6, At: ago(5 * time.Minute), Account: "sv-main", Provider: "sv-dte", DocID: "a1", Number: "DTE-01-0000001", Status: model.StatusRejected, Problem: rejected, Kind: "problem",
			Raw: []byte("{\n\t\"estado\": \"RECHAZADO\",\n\t\"codigoMsg\": \"017\",\n\t\"descripcionMsg\": \"Código de generación inválido\",\n\t\"observaciones\": [\"\x1b[31mcampo\x1b[0m identificacion.codigoGeneracion\"]\n}")},
		{ID: 4, At: ago(12 * time.Minute), Account: "alegra-co", Provider: "alegra", DocID: "981", Number: "FE-981", Status: model.StatusRejected, Problem: rate, Kind: "problem"},
		{ID: 3, At: ago(2 * time.Hour), Account: "factus-prod", Provider: "factus", DocID: "SETP990000002", Number: "SETP990000002", Status: model.StatusRejected, Problem: dup, Kind: "emit"},
		{ID: 2, At: ago(3 * time.Hour), Account: "sv-main", Provider: "sv-dte", DocID: "a1", Number: "DTE-01-0000001", Status: model.StatusPending, Kind: "emit"},
		{ID: 1, At: ago(3*time.Hour + time.Minute), Account: "sv-main", Provider: "sv-dte", DocID: "a1", Number: "DTE-01-0000001", Status: model.StatusDraft, Kind: "seen"},
	}
	return s, events
}

// newsSnapshot is the fixture a second later: a document appeared (alegra-co's FE-982)
// and another changed (FE-981).
func newsSnapshot() model.Snapshot {
	s, _ := fixture()
	s.Accounts[1].Documents = append([]model.Document{{Account: "alegra-co", Provider: "alegra", ID: "982", Number: "FE-982",
		Status: model.StatusPending, FirstSeen: clock.Add(time.Second), Changed: clock.Add(time.Second)}}, s.Accounts[1].Documents...)
	s.Accounts[1].Documents[1].Changed = clock.Add(time.Second)
	return s
}

// bigSnapshot has docs documents spread over accounts accounts with three windows each.
func bigSnapshot(accounts, docs int) model.Snapshot {
	s := model.Snapshot{At: clock}
	classes := []model.Class{model.ClassValidation, model.ClassRejected, model.ClassDuplicate, model.ClassUpstream, model.ClassProcessing}
	providers := []string{"alegra", "sv-dte", "certifactu", "factus", "alforse"}
	healths := []model.Health{model.HealthUp, model.HealthUp, model.HealthUp, model.HealthDegraded, model.HealthUp, model.HealthDown, model.HealthRefused}
	for a := range accounts {
		prov := providers[a%len(providers)]
		name := fmt.Sprintf("acct-%04d", a)
		st := model.AccountState{
			Account: model.Account{Name: name, Provider: prov}, Health: healths[a%len(healths)],
			PollInterval: 30 * time.Second, BaseInterval: 30 * time.Second, Reserve: 0.1,
			LastPoll: clock.Add(-time.Duration(a%60) * time.Second), LastGood: clock.Add(-time.Duration(a%60) * time.Second),
		}
		for i, wn := range []string{"short", "medium", "long"} {
			st.Windows = append(st.Windows, model.Window{Name: wn, Limit: 100 * (i + 1), Remaining: (a * 7 * (i + 1)) % (100 * (i + 1)),
				Reset: time.Duration(i+1) * time.Minute, Observed: clock, ExhaustsIn: time.Duration(a%13-3) * time.Minute})
		}
		s.Accounts = append(s.Accounts, st)
	}
	for i := range docs {
		a := &s.Accounts[i%accounts]
		c := classes[i%len(classes)]
		status := model.StatusRejected
		if i%3 == 0 {
			status = model.StatusPending
		}
		a.Documents = append(a.Documents, model.Document{
			Account: a.Account.Name, Provider: a.Account.Provider, ID: fmt.Sprintf("id-%07d", i),
			Number: fmt.Sprintf("N-%07d", i), Status: status,
			Problem:  problem(a.Account.Provider, 400, fmt.Sprintf("E%03d", i%500), c, fmt.Sprintf("message number %d about field items.%d.price", i, i%9)),
			Attempts: i % 4, FirstSeen: clock.Add(-time.Duration(i) * time.Second), Changed: clock,
		})
	}
	return s
}

// step feeds messages to a model directly, without a program, and returns it.
func step(m Model, msgs ...tea.Msg) Model {
	for _, msg := range msgs {
		next, _ := m.Update(msg)
		m = next.(Model)
	}
	return m
}

// press is a key press as a terminal would deliver it.
func press(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// typed is the key presses for typing s.
func typed(s string) []tea.Msg {
	var out []tea.Msg
	for _, r := range s {
		out = append(out, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	return out
}
