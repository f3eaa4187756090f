package model

import "time"

// Observation is what was left of a window at one moment: the forecast's input.
type Observation struct {
	At        time.Time
	Remaining int
}

// ForecastSpan is how far back the spend is measured: "the last few minutes".
const ForecastSpan = 5 * time.Minute

// minSpan is the shortest stretch of observations a spend is read from: two readings a
// second apart say more about the poll that took them than about the spend.
const minSpan = 10 * time.Second

// Spend is the requests per minute obs (oldest first) show spent: every drop in what was
// left, summed, over the time they span. A rise (the window reset, or old hits left a
// sliding window) spends nothing, so across a reset the spend reads low, never high.
// ok is false when fewer than two observations span at least minSpan.
func Spend(obs []Observation) (perMinute float64, ok bool) {
	if len(obs) < 2 {
		return 0, false
	}
	span := obs[len(obs)-1].At.Sub(obs[0].At)
	if span < minSpan {
		return 0, false
	}
	spent := 0
	for i := 1; i < len(obs); i++ {
		if d := obs[i-1].Remaining - obs[i].Remaining; d > 0 {
			spent += d
		}
	}
	return float64(spent) / span.Minutes(), true
}

// Forecast is how long, seen at now, until w runs out at the spend obs show: zero when it
// has run out, negative when it holds (nothing was spent, or the window resets before it
// would run out) and when nothing is known (what is left, or too few observations).
func Forecast(w Window, obs []Observation, now time.Time) time.Duration {
	if w.Remaining == Unknown {
		return -1
	}
	if w.Remaining == 0 {
		return 0
	}
	rate, ok := Spend(obs)
	if !ok || rate <= 0 {
		return -1
	}
	out := time.Duration(float64(w.Remaining) / rate * float64(time.Minute))
	if w.HasReset() && w.ResetIn(now) < out {
		return -1
	}
	return out
}

// SpendPerMinute is the spend the window's forecast was made at: what is left over the
// time it lasts. Zero when the window holds or has run out.
func (w Window) SpendPerMinute() float64 {
	if w.ExhaustsIn <= 0 || w.Remaining <= 0 {
		return 0
	}
	return float64(w.Remaining) / w.ExhaustsIn.Minutes()
}
