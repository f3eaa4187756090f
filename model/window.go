package model

import (
	"encoding/json"
	"time"
)

// Unknown marks a window figure (limit, remaining) that the provider did not state.
const Unknown = -1

// Window is one rate-limit window of an account as a response described it: for example
// sv-dte's "short" window, 3 requests per second.
type Window struct {
	Name       string        // lower-case; "" for an unnamed window
	Limit      int           // requests allowed per window; Unknown when not stated
	Remaining  int           // requests left; Unknown when not stated
	Reset      time.Duration // time until the window resets, from Observed; negative when not stated
	Observed   time.Time     // when the response was received (server clock when it said)
	ExhaustsIn time.Duration // at the recent spend, time until the window runs out; negative when it holds or nothing is known
}

// UnnamedWindow is what every face of emitop (screens, explain, JSON, metrics, messages)
// calls the window a provider did not name. No header can name a window so (parentheses
// are not allowed in a header field's name), so it never meets a named one; "default"
// would: an IETF RateLimit "default" policy can stand beside the unnamed window.
const UnnamedWindow = "(unnamed)"

// Label is the window's name as shown and written: UnnamedWindow for the unnamed one.
func (w Window) Label() string {
	if w.Name == "" {
		return UnnamedWindow
	}
	return w.Name
}

// Holds reports whether the window is not forecast to run out at the recent spend (or
// nothing is known of the spend).
func (w Window) Holds() bool { return w.ExhaustsIn < 0 }

// HasReset reports whether the window's reset time is known.
func (w Window) HasReset() bool { return w.Reset >= 0 }

// Spent reports whether the window has no requests left.
func (w Window) Spent() bool { return w.Remaining == 0 }

// ResetIn is the time left until the window resets, seen at now. It is never negative;
// with no known reset it is zero.
func (w Window) ResetIn(now time.Time) time.Duration {
	if !w.HasReset() {
		return 0
	}
	left := w.Reset
	if !w.Observed.IsZero() {
		left -= now.Sub(w.Observed)
	}
	if left < 0 {
		return 0
	}
	return left
}

// CeilSeconds rounds d up to whole seconds: a wait is never shortened by rounding.
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

type windowJSON struct {
	Name              string `json:"name"`
	Limit             *int   `json:"limit"`
	Remaining         *int   `json:"remaining"`
	ResetSeconds      *int64 `json:"reset_seconds"`
	ExhaustsInSeconds *int64 `json:"exhausts_in_seconds"`
}

// MarshalJSON writes {name, limit, remaining, reset_seconds, exhausts_in_seconds}; the
// unnamed window is named UnnamedWindow, a figure the provider did not state is null,
// reset_seconds is rounded up, exhausts_in_seconds rounded down (a forecast never says
// later than it is) and null when the window holds.
func (w Window) MarshalJSON() ([]byte, error) {
	out := windowJSON{Name: w.Label()}
	if w.Limit != Unknown {
		out.Limit = &w.Limit
	}
	if w.Remaining != Unknown {
		out.Remaining = &w.Remaining
	}
	if w.HasReset() {
		s := CeilSeconds(w.Reset)
		out.ResetSeconds = &s
	}
	if !w.Holds() {
		s := int64(w.ExhaustsIn / time.Second)
		out.ExhaustsInSeconds = &s
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (w *Window) UnmarshalJSON(b []byte) error {
	var in windowJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*w = Window{Name: in.Name, Limit: Unknown, Remaining: Unknown, Reset: -1, ExhaustsIn: -1}
	if w.Name == UnnamedWindow {
		w.Name = ""
	}
	if in.Limit != nil {
		w.Limit = *in.Limit
	}
	if in.Remaining != nil {
		w.Remaining = *in.Remaining
	}
	if in.ResetSeconds != nil {
		w.Reset = time.Duration(*in.ResetSeconds) * time.Second
	}
	if in.ExhaustsInSeconds != nil {
		w.ExhaustsIn = time.Duration(*in.ExhaustsInSeconds) * time.Second
	}
	return nil
}
