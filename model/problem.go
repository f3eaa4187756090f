package model

import (
	"encoding/json"
	"time"
)

// Problem is one provider response decoded into emitop's vocabulary: what went wrong
// (Class), what may be done (Verdict), and guidance in plain English beside the
// provider's own words. Every text field is sanitized before it is stored here.
type Problem struct {
	Provider string
	Status   int    // HTTP status; 0 when the problem came from a document's state
	Method   string // HTTP method of the request; "" when not known (treated as a write)
	Code     string // the provider's or authority's code; "" when there is none
	Class    Class
	Verdict  Verdict
	Wait     time.Duration // how long to wait before repeating; meaningful when HasWait
	HasWait  bool          // whether anything in the response said how long to wait
	Fields   []string      // dotted paths of the offending fields (items.0.price)
	Message  string        // the provider's own message, sanitized
	Meaning  string        // what it means, in English
	Action   string        // what to do about it
	Windows  []Window      // rate-limit windows the response described
}

// OK reports whether the problem is no problem at all.
func (p Problem) OK() bool { return p.Class == ClassOK }

type problemJSON struct {
	Provider    string   `json:"provider"`
	Status      int      `json:"status"`
	Method      string   `json:"method"`
	Code        string   `json:"code"`
	Class       Class    `json:"class"`
	Verdict     Verdict  `json:"verdict"`
	WaitSeconds *int64   `json:"wait_seconds"`
	Fields      []string `json:"fields"`
	Message     string   `json:"message"`
	Meaning     string   `json:"meaning"`
	Action      string   `json:"action"`
	Windows     []Window `json:"windows"`
}

// MarshalJSON writes exactly the keys of `emitop explain -o json`: wait_seconds is null
// when nothing said how long, fields and windows are never null.
func (p Problem) MarshalJSON() ([]byte, error) {
	out := problemJSON{
		Provider: p.Provider, Status: p.Status, Method: p.Method, Code: p.Code,
		Class: p.Class, Verdict: p.Verdict, Fields: p.Fields, Message: p.Message,
		Meaning: p.Meaning, Action: p.Action, Windows: p.Windows,
	}
	if p.HasWait {
		s := CeilSeconds(p.Wait)
		out.WaitSeconds = &s
	}
	if out.Fields == nil {
		out.Fields = []string{}
	}
	if out.Windows == nil {
		out.Windows = []Window{}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes (the store keeps problems as JSON).
func (p *Problem) UnmarshalJSON(b []byte) error {
	var in problemJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*p = Problem{
		Provider: in.Provider, Status: in.Status, Method: in.Method, Code: in.Code,
		Class: in.Class, Verdict: in.Verdict, Fields: in.Fields, Message: in.Message,
		Meaning: in.Meaning, Action: in.Action, Windows: in.Windows,
	}
	if in.WaitSeconds != nil {
		p.HasWait = true
		p.Wait = time.Duration(*in.WaitSeconds) * time.Second
	}
	return nil
}
