package ui

import (
	"testing"
	"time"

	"emitop/model"
)

// TestReason: what the header says of the worst account names the status and the
// provider's code once each, with the class and what to do.
func TestReason(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		health model.Health
		p      *model.Problem
		want   string
	}{
		{"refused, the code is the status", model.HealthRefused, &model.Problem{Class: model.ClassAuth, Status: 401, Code: "401"}, "401 auth, check the credentials"},
		{"refused with a code of its own", model.HealthRefused, &model.Problem{Class: model.ClassAuth, Status: 401, Code: "AEP401"}, "401 AEP401 auth, check the credentials"},
		{"refused after a 201 that asks for MFA", model.HealthRefused, &model.Problem{Class: model.ClassAuth, Status: 201,
			Meaning: "This user needs MFA; use a service user without it."}, "auth: This user needs MFA"},
		{"down, waiting", model.HealthDown, &model.Problem{Class: model.ClassUnavailable, Status: 503, Code: "503", HasWait: true, Wait: 54 * time.Second}, "503 unavailable, wait 54s"},
		{"degraded, no status", model.HealthDegraded, &model.Problem{Class: model.ClassUpstream, Code: "EPR500"}, "EPR500 upstream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := model.AccountState{Account: model.Account{Name: "alegra-mx"}, Health: c.health, LastError: c.p, LastPoll: now}
			s := summarize(&a)
			if got := s.reason(now); got != c.want {
				t.Errorf("reason %q, want %q", got, c.want)
			}
		})
	}
}
