package model

import (
	"testing"
	"time"
)

func TestForecast(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// steady spends 12 a minute: 6 every 30 s for two minutes.
	steady := []Observation{{at(0), 100}, {at(30), 94}, {at(60), 88}, {at(90), 82}, {at(120), 76}}
	now := at(120)
	win := func(remaining int, reset time.Duration) Window {
		return Window{Name: "m", Limit: 100, Remaining: remaining, Reset: reset, Observed: now}
	}
	tests := []struct {
		name string
		w    Window
		obs  []Observation
		want time.Duration
	}{
		{"runs out at the recent spend", win(76, -1), steady, 76 * time.Minute / 12},
		{"resets before it runs out: holds", win(76, 2*time.Minute), steady, -1},
		{"resets after it runs out", win(76, time.Hour), steady, 76 * time.Minute / 12},
		{"spent: out now", win(0, time.Minute), steady, 0},
		{"remaining unknown", win(Unknown, -1), steady, -1},
		{"one observation: nothing known", win(76, -1), steady[:1], -1},
		{"two readings too close together", win(76, -1), []Observation{{at(0), 80}, {at(2), 76}}, -1},
		{"nothing spent: holds", win(76, -1), []Observation{{at(0), 76}, {at(60), 76}}, -1},
		{"a reset's rise spends nothing",
			win(94, -1), []Observation{{at(0), 10}, {at(30), 4}, {at(60), 100}, {at(90), 94}}, 94 * time.Minute / 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Forecast(tt.w, tt.obs, now)
			if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("Forecast = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSpend(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	rate, ok := Spend([]Observation{{t0, 60}, {t0.Add(time.Minute), 48}, {t0.Add(2 * time.Minute), 36}})
	if !ok || rate != 12 {
		t.Errorf("Spend = %v, %v; want 12 a minute", rate, ok)
	}
	w := Window{Remaining: 36, ExhaustsIn: 3 * time.Minute}
	if got := w.SpendPerMinute(); got != 12 {
		t.Errorf("SpendPerMinute = %v, want 12", got)
	}
	if _, ok := Spend(nil); ok {
		t.Error("Spend of nothing is known")
	}
}
