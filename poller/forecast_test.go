package poller

import (
	"context"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/sandbox"
	"emitop/store"
)

func TestSpendLog(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	win := func(name string, remaining int) model.Window {
		return model.Window{Name: name, Limit: 100, Remaining: remaining, Reset: -1, ExhaustsIn: -1}
	}
	var l spendLog
	if l.seeded() {
		t.Fatal("a new log is seeded")
	}
	// 6 spent every 30 s on "m" (12 a minute); "gone" disappears after the first poll.
	l.observe([]model.Window{win("m", 100), win("gone", 5)}, t0)
	for i := 1; i <= 20; i++ {
		l.observe([]model.Window{win("m", 100-6*i), {Name: "u", Limit: model.Unknown, Remaining: model.Unknown, Reset: -1}}, t0.Add(time.Duration(i)*30*time.Second))
	}
	now := t0.Add(10 * time.Minute)
	if _, ok := l.windows["gone"]; ok {
		t.Error("a window the governor no longer reports is still kept")
	}
	if n := len(l.windows["m"]); n != 11 {
		t.Errorf("kept %d readings of the last %v, want 11", n, model.ForecastSpan)
	}
	if n := len(l.windows["u"]); n != 0 {
		t.Errorf("kept %d readings of a window whose remaining is unknown", n)
	}
	got := l.forecast([]model.Window{win("m", 24), win("u", model.Unknown), win("new", 50)}, now)
	if want := 2 * time.Minute; got[0].ExhaustsIn < want-time.Second || got[0].ExhaustsIn > want+time.Second {
		t.Errorf("24 left at 12 a minute: out in %v, want %v", got[0].ExhaustsIn, want)
	}
	if !got[1].Holds() || !got[2].Holds() {
		t.Errorf("unknown spend forecast: %v, %v; want both to hold", got[1].ExhaustsIn, got[2].ExhaustsIn)
	}

	// A poll every second keeps at most spendCap readings.
	for i := range 1000 {
		l.observe([]model.Window{win("m", 50)}, now.Add(time.Duration(i)*time.Second/4))
	}
	if n := len(l.windows["m"]); n != spendCap {
		t.Errorf("kept %d readings, want the cap %d", n, spendCap)
	}
}

// The forecast survives a restart: the first poll seeds it from the window samples the
// store kept of the last few minutes.
func TestSpendSeededFromStore(t *testing.T) {
	cf := sandboxAccount(t, "cf-madrid", nil)
	st := openStore(t)
	p := newTestPoller(t, cf, st, nil)
	ctx := context.Background()
	now := time.Now()
	a := p.accounts[0]
	windows := a.client.Governor().Windows(now)
	if len(windows) == 0 {
		t.Fatal("the governor knows no window of cf-madrid")
	}
	for i := 4; i >= 1; i-- {
		ws := append([]model.Window(nil), windows...)
		for j := range ws {
			ws[j].Remaining = 90 - 10*i
		}
		if err := st.Enqueue(ctx, store.PutAccount(model.Account{Name: "cf-madrid", Provider: "certifactu"}),
			store.AddWindowSamples("cf-madrid", ws, now.Add(-time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.PollOnce(ctx)
	obs := a.spend.windows[windows[0].Name]
	if len(obs) != 5 || obs[0].Remaining != 50 || obs[3].Remaining != 80 {
		t.Errorf("readings after the first poll: %+v; want the 4 stored samples, then the poll's", obs)
	}
}

// An account never reached says so (LastGood zero), and the snapshot carries what the
// screens explain an account with: its configured interval and reserve.
func TestNeverReached(t *testing.T) {
	cf := sandboxAccount(t, "cf-madrid", func(a *config.Account) {
		a.BaseURL = "http://127.0.0.1:9"
		a.Reserve = 0.25
	})
	p := newTestPoller(t, cf, openStore(t), nil)
	got := stateOf(p.PollOnce(context.Background()), "cf-madrid")
	if got.LastPoll.IsZero() || !got.LastGood.IsZero() {
		t.Errorf("last poll %v, last good %v; want a poll and no success", got.LastPoll, got.LastGood)
	}
	if got.BaseInterval != cf[0].PollInterval || got.Reserve != 0.25 {
		t.Errorf("base interval %v, reserve %v; want %v, 0.25", got.BaseInterval, got.Reserve, cf[0].PollInterval)
	}
}

// sandboxAccount is the named account of a calm sandbox, changed by edit when not nil.
func sandboxAccount(t *testing.T, name string, edit func(*config.Account)) []config.Account {
	t.Helper()
	_, accounts := sandboxAccounts(t, sandbox.Options{Scenario: "calm", Seed: 4, NoFaults: true})
	for _, a := range accounts {
		if a.Name == name {
			if edit != nil {
				edit(&a)
			}
			return []config.Account{a}
		}
	}
	t.Fatalf("the sandbox has no account %s", name)
	return nil
}
