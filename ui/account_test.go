package ui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"emitop/model"
)

// TestParkedAccountSaysWhy: the account view of an account whose credentials the
// provider refused says that it is parked and when it logs in again, not that the
// budget stretched its interval.
func TestParkedAccountSaysWhy(t *testing.T) {
	next := clock.Add(4*time.Minute + 30*time.Second)
	cases := []struct {
		name      string
		nextLogin time.Time
		interval  time.Duration
		want      []string
	}{
		{"parked for five minutes", next, 5 * time.Minute,
			[]string{"parked: the provider refused its credentials", "next login at " + next.In(zone).Format(clockFormat), "in 4m30s", "at once when you refresh"}},
		{"parked until a person acts", time.Time{}, 0,
			[]string{"parked: the provider refused its credentials", "logs in again only when you refresh"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, ev := fixture()
			b := newMemBackend(s, ev)
			a := &s.Accounts[0]
			a.Health, a.Parked, a.NextLogin = model.HealthRefused, true, c.nextLogin
			a.PollInterval, a.BaseInterval = c.interval, 30*time.Second
			m := New(b, Options{Now: fixedNow, Env: "prod", Demo: true, Operator: "local", Location: zone})
			m = step(m, tea.ColorProfileMsg{Profile: colorprofile.ASCII}, tea.WindowSizeMsg{Width: 160, Height: 40}, snapshotMsg{s})
			m = step(m, press("tab"))
			for name, _ := m.accounts.selectedAccount(); name != a.Account.Name; name, _ = m.accounts.selectedAccount() {
				m = step(m, press("j"))
			}
			m = step(m, press("enter"))
			f := strings.Join(strings.Fields(ansi.Strip(frame(m))), " ")
			for _, w := range c.want {
				if !strings.Contains(f, w) {
					t.Errorf("the account view lacks %q:\n%s", w, f)
				}
			}
			for _, bad := range []string{"stretched", "not known yet"} {
				if strings.Contains(f, bad) {
					t.Errorf("the account view of a parked account says %q:\n%s", bad, f)
				}
			}
		})
	}
}
