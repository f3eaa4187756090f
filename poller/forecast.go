package poller

import (
	"context"
	"time"

	"emitop/model"
)

// spendCap bounds the readings kept of one window: a poll every second for ForecastSpan
// would keep 300; the spend reads as well from the latest 64.
const spendCap = 64

// spendLog is what was left of each window of one account at its recent polls: the input
// of the forecast, kept in memory for model.ForecastSpan. It holds only the windows the
// account's Governor reports (a bounded set), and at most spendCap readings of each.
type spendLog struct {
	windows map[string][]model.Observation
}

// seeded reports whether the log has started: before the first poll it is seeded from the
// store, so a restart (or `poll --once`) forecasts from the samples already taken.
func (l *spendLog) seeded() bool { return l.windows != nil }

// observe records what ws had left at now, drops readings older than the span and
// forgets windows ws no longer has.
func (l *spendLog) observe(ws []model.Window, now time.Time) {
	next := make(map[string][]model.Observation, len(ws))
	for _, w := range ws {
		obs := l.windows[w.Name]
		if w.Remaining != model.Unknown {
			obs = append(obs, model.Observation{At: now, Remaining: w.Remaining})
		}
		next[w.Name] = trimObservations(obs, now)
	}
	l.windows = next
}

// trimObservations keeps the readings of the last model.ForecastSpan, at most spendCap.
func trimObservations(obs []model.Observation, now time.Time) []model.Observation {
	from := 0
	for from < len(obs) && now.Sub(obs[from].At) > model.ForecastSpan {
		from++
	}
	from = max(from, len(obs)-spendCap)
	if from == 0 {
		return obs
	}
	return append([]model.Observation(nil), obs[from:]...)
}

// forecast sets each window's ExhaustsIn from the readings kept of it.
func (l *spendLog) forecast(ws []model.Window, now time.Time) []model.Window {
	for i := range ws {
		ws[i].ExhaustsIn = model.Forecast(ws[i], l.windows[ws[i].Name], now)
	}
	return ws
}

// storedSpend reads the window samples the store kept of the last model.ForecastSpan,
// for the windows the account's Governor knows: the log's seed. A failed read seeds
// nothing (the forecast starts from this run's polls) and is reported.
func (p *Poller) storedSpend(ctx context.Context, a *account, now time.Time) map[string][]model.Observation {
	out := map[string][]model.Observation{}
	for _, w := range a.client.Governor().Windows(now) {
		samples, err := p.st.WindowSeries(ctx, a.cfg.Name, w.Name, now.Add(-model.ForecastSpan), spendCap)
		if err != nil {
			if ctx.Err() == nil {
				p.fail(a.cfg.Name, err)
			}
			continue
		}
		var obs []model.Observation
		for _, s := range samples {
			if s.Remaining != model.Unknown {
				obs = append(obs, model.Observation{At: s.Observed, Remaining: s.Remaining})
			}
		}
		out[w.Name] = obs
	}
	return out
}
