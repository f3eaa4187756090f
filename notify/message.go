// Package notify sends on-call messages without Prometheus: each [[notify]] entry (a
// webhook taking JSON, or a Slack incoming webhook) hears of changes of an account's
// health, credentials refused, windows about to run out and new documents whose verdict is
// escalate. Messages are deduplicated (one per change, a reminder at most every repeat
// while a condition lasts, also across restarts: the history remembers what was sent),
// rate-limited, retried with backoff and recorded in the history. They carry no
// credential and no provider text that is not sanitized: the words come from emitop's own
// guidance, and what a provider wrote is limited to codes and document numbers, cleaned.
package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"emitop/model"
)

// Kinds of message, as config.NotifyEvents names them.
const (
	KindHealth   = "health"
	KindRefused  = "refused"
	KindWindow   = "window"
	KindEscalate = "escalate"
)

// Message is one notification, ready for any receiver.
type Message struct {
	ID        string    `json:"id"` // unique, for receivers that deduplicate
	Kind      string    `json:"kind"`
	Account   string    `json:"account"`
	Provider  string    `json:"provider"`
	At        time.Time `json:"at"`
	Reminder  bool      `json:"reminder"` // the state was announced before and still holds
	Summary   string    `json:"summary"`  // one line
	Details   []string  `json:"details"`  // what it means and what to do, one line each
	Triage    string    `json:"triage"`   // the ssh command that opens the dashboard on it
	Health    *Health   `json:"health,omitempty"`
	Window    *Window   `json:"window,omitempty"`
	Documents []Doc     `json:"documents,omitempty"`

	key   string // what it is about: one pending message per key
	state string // the state it announces
}

// Health is a change of an account's health.
type Health struct {
	From model.Health `json:"from"`
	To   model.Health `json:"to"`
}

// Window is a rate-limit window about to run out.
type Window struct {
	Name              string  `json:"name"`
	Limit             *int    `json:"limit"`
	Remaining         *int    `json:"remaining"`
	ExhaustsInSeconds *int64  `json:"exhausts_in_seconds"`
	Reserve           float64 `json:"reserve"`
}

// Doc is a document a message is about.
type Doc struct {
	Number  string        `json:"number"`
	Class   model.Class   `json:"class"`
	Verdict model.Verdict `json:"verdict"`
	Code    string        `json:"code"`
}

// Thresholds of the conditions, the same as the shipped alert rules'.
const (
	windowSoon = 10 * time.Minute // a window forecast to run out within this is low
	maxDocs    = 10               // documents named in one message; the rest are counted
	maxState   = 200              // documents remembered per escalate state
	// maxWindows is how many of an account's windows are watched, the first ones it
	// reported (as the metrics expose them): window names come from a provider's headers,
	// and one that invents a name on every response must not grow what is remembered.
	maxWindows = 8
)

// condition is what a snapshot says about one key: its state now, and the message that
// would announce it. A quiet state (a window with room, no escalation) is announced by
// no message.
type condition struct {
	key, state string
	quiet      bool
	remind     bool // worth a reminder while it lasts
	message    func(reminder bool) Message
	// isNew reports whether the state holds something the receiver has not heard,
	// given the state it last heard; nil means any different state is new.
	isNew func(heard string) bool
}

// text cleans what came from outside emitop for a message: sanitized, one line, cut.
func text(s string, width int) string { return model.Line(s, width) }

// conditions lists what one snapshot says, account by account; reserve gives each
// account's configured reserve, triage the ssh command prefix.
func conditions(s model.Snapshot, reserve map[string]float64, triage string) []condition {
	var out []condition
	for _, a := range s.Accounts {
		if a.LastPoll.IsZero() || a.PolledBy != "" {
			// Not polled yet: nothing is known. Polled by another emitop sharing the
			// store: that one tells of it, once.
			continue
		}
		out = append(out, healthCondition(s.At, a, triage))
		for _, w := range a.Windows[:min(len(a.Windows), maxWindows)] {
			out = append(out, windowCondition(s.At, a, w, reserve[a.Account.Name], triage))
		}
		if a.Err == "" {
			out = append(out, escalateCondition(s.At, a, triage))
		}
	}
	return out
}

func accountTriage(triage, account string) string { return triage + " -t account " + account }

func healthCondition(at time.Time, a model.AccountState, triage string) condition {
	name, provider := a.Account.Name, a.Account.Provider
	return condition{
		key: "health/" + name, state: string(a.Health),
		remind: a.Health == model.HealthDown || a.Health == model.HealthRefused,
		message: func(reminder bool) Message {
			m := Message{Kind: KindHealth, Account: name, Provider: provider, At: at, Reminder: reminder,
				Triage: accountTriage(triage, name)}
			switch a.Health {
			case model.HealthRefused:
				m.Kind = KindRefused
				m.Summary = fmt.Sprintf("%s refuses the credentials of %s", provider, name)
				m.Details = []string{"Polling cannot recover by itself: renew the credentials emitop reads, then restart it."}
			case model.HealthDown:
				m.Summary = fmt.Sprintf("%s (%s) is down", name, provider)
				m.Details = []string{"emitop has failed to poll it 3 times in a row: documents are not being listed."}
			case model.HealthDegraded:
				m.Summary = fmt.Sprintf("%s (%s) is degraded", name, provider)
				m.Details = []string{"A poll failed, or one of its rate-limit windows is spent."}
			default:
				m.Summary = fmt.Sprintf("%s (%s) is %s", name, provider, a.Health)
			}
			if p := a.LastError; p != nil {
				m.Details = append(m.Details, problemLines(p)...)
			}
			return m
		},
	}
}

// problemLines are a decoded problem in emitop's words: class, verdict and the
// provider's code (cleaned), then what it means and what to do.
func problemLines(p *model.Problem) []string {
	head := fmt.Sprintf("%s · %s", p.Class, p.Verdict)
	if p.Code != "" {
		head += " · code " + text(p.Code, 40)
	}
	g := model.ClassGuidance[p.Class]
	return []string{head, "Meaning: " + g.Meaning, "Action: " + g.Action}
}

func windowCondition(at time.Time, a model.AccountState, w model.Window, reserve float64, triage string) condition {
	name, provider := a.Account.Name, a.Account.Provider
	wname := text(w.Label(), 32)
	// A window already out (remaining 0) is below any reserve; a forecast of zero says
	// no more than that.
	soon := w.ExhaustsIn > 0 && w.ExhaustsIn <= windowSoon
	below := w.Limit > 0 && w.Remaining != model.Unknown && float64(w.Remaining) < reserve*float64(w.Limit)
	c := condition{key: "window/" + name + "/" + w.Name, state: "ok", quiet: true}
	if !soon && !below {
		return c
	}
	c.state, c.quiet, c.remind = "low", false, true
	c.message = func(reminder bool) Message {
		m := Message{Kind: KindWindow, Account: name, Provider: provider, At: at, Reminder: reminder,
			Triage: accountTriage(triage, name), Window: &Window{Name: wname, Reserve: reserve}}
		if w.Limit != model.Unknown {
			m.Window.Limit = &w.Limit
		}
		if w.Remaining != model.Unknown {
			m.Window.Remaining = &w.Remaining
		}
		if soon {
			s := model.CeilSeconds(w.ExhaustsIn)
			m.Window.ExhaustsInSeconds = &s
			m.Summary = fmt.Sprintf("%s: window %s runs out in %s", name, wname, w.ExhaustsIn.Round(time.Second))
		} else {
			m.Summary = fmt.Sprintf("%s: window %s is below its reserve (%d of %d left)", name, wname, w.Remaining, w.Limit)
		}
		m.Details = []string{"emitop slows its polls and retries wait for the window; look for another client spending the same budget."}
		return m
	}
	return c
}

func escalateCondition(at time.Time, a model.AccountState, triage string) condition {
	name, provider := a.Account.Name, a.Account.Provider
	var docs []model.Document
	for _, d := range a.Documents {
		if d.Problem != nil && d.Problem.Verdict == model.VerdictEscalate {
			docs = append(docs, d)
		}
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	slices.Sort(ids)
	ids = ids[:min(len(ids), maxState)]
	state, _ := json.Marshal(ids)
	c := condition{key: "escalate/" + name, state: string(state), quiet: len(ids) == 0, remind: len(ids) > 0}
	c.isNew = func(heard string) bool {
		var old []string
		json.Unmarshal([]byte(heard), &old)
		for _, id := range ids {
			if !slices.Contains(old, id) {
				return true
			}
		}
		return false
	}
	c.message = func(reminder bool) Message {
		m := Message{Kind: KindEscalate, Account: name, Provider: provider, At: at, Reminder: reminder,
			Triage: accountTriage(triage, name)}
		if reminder {
			m.Summary = fmt.Sprintf("%s: %d documents still need someone with authority", name, len(docs))
		} else {
			m.Summary = fmt.Sprintf("%s: %d documents need someone with authority", name, len(docs))
		}
		for _, d := range docs[:min(len(docs), maxDocs)] {
			number := text(d.Number, 64)
			if number == "" {
				number = text(d.ID, 64)
			}
			m.Documents = append(m.Documents, Doc{Number: number, Class: d.Problem.Class, Verdict: d.Problem.Verdict, Code: text(d.Problem.Code, 40)})
		}
		if len(docs) == 1 && docs[0].Number != "" && model.Line(docs[0].Number, 0) == docs[0].Number && !strings.ContainsAny(docs[0].Number, " '\"\\$`") {
			m.Triage = triage + " -t doc " + docs[0].Number
		}
		g := model.ClassGuidance[docs[0].Problem.Class]
		m.Details = []string{"Their rejection has a cause outside the document: no resend helps until someone with authority fixes it.",
			"Meaning: " + g.Meaning, "Action: " + g.Action}
		if len(docs) > maxDocs {
			m.Details = append(m.Details, fmt.Sprintf("%d more not listed.", len(docs)-maxDocs))
		}
		return m
	}
	return c
}
