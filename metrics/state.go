package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"emitop/model"
)

// The families read from the poller's state at every scrape: gauges of what is true now.
var (
	accountLabels = []string{"account", "provider"}
	windowLabels  = []string{"account", "provider", "window"}

	descWindowLimit = prometheus.NewDesc("emitop_window_limit",
		"Requests the rate-limit window allows; absent while the provider has not said.", windowLabels, nil)
	descWindowRemaining = prometheus.NewDesc("emitop_window_remaining",
		"Requests left in the rate-limit window as emitop counts them and the provider says; absent while unknown.", windowLabels, nil)
	descWindowReset = prometheus.NewDesc("emitop_window_reset_seconds",
		"Seconds until the rate-limit window frees requests again; absent while unknown.", windowLabels, nil)
	descWindowExhausts = prometheus.NewDesc("emitop_window_exhausts_in_seconds",
		"Seconds until the window runs out at the recent spend; absent while it holds, nothing is known, or it is out (remaining 0).", windowLabels, nil)
	descReserve = prometheus.NewDesc("emitop_account_reserve_ratio",
		"Share of every window of the account that emitop never spends (its configured reserve).", accountLabels, nil)
	descHealth = prometheus.NewDesc("emitop_account_health",
		"1 for the account's current health (up, degraded, down, refused: credentials refused), 0 for the others.",
		[]string{"account", "provider", "health"}, nil)
	descLastPoll = prometheus.NewDesc("emitop_account_last_poll_timestamp_seconds",
		"When the account's last poll ended, successful or not (Unix time); 0 before the first.", accountLabels, nil)
	descInterval = prometheus.NewDesc("emitop_account_poll_interval_seconds",
		"The interval the poller currently waits between polls of the account (stretched as windows run low).", accountLabels, nil)
	descDocuments = prometheus.NewDesc("emitop_documents",
		"Documents of the account emitop currently lists as open, by status.", []string{"account", "provider", "status"}, nil)
	descProblems = prometheus.NewDesc("emitop_problems",
		"Open documents of the account with a problem, by its class and verdict (only the pairs present).",
		[]string{"account", "provider", "class", "verdict"}, nil)
	descHistoryFailing = prometheus.NewDesc("emitop_history_failing",
		"1 while the history is not being saved (the last write failed and none has committed since), else 0.", nil, nil)

	healths = []model.Health{model.HealthUp, model.HealthDegraded, model.HealthDown, model.HealthRefused}
)

// stateCollector turns the poller's current snapshot into gauges at each scrape, so no
// series outlives what it describes.
type stateCollector struct{ m *Metrics }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWindowLimit, descWindowRemaining, descWindowReset, descWindowExhausts,
		descReserve, descHealth, descLastPoll, descInterval, descDocuments, descProblems, descHistoryFailing} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	source := c.m.source
	c.m.mu.Unlock()
	if source == nil {
		return
	}
	s := source()
	failing := 0.0
	if s.History != "" {
		failing = 1
	}
	ch <- prometheus.MustNewConstMetric(descHistoryFailing, prometheus.GaugeValue, failing)
	for _, a := range s.Accounts {
		acc, ok := c.m.accounts[a.Account.Name]
		if !ok {
			continue
		}
		c.account(ch, acc, a)
	}
}

func (c stateCollector) account(ch chan<- prometheus.Metric, acc Account, a model.AccountState) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{acc.Name, acc.Provider}, labels...)...)
	}
	gauge(descReserve, acc.Reserve)
	for _, h := range healths {
		v := 0.0
		if a.Health == h {
			v = 1
		}
		gauge(descHealth, v, string(h))
	}
	gauge(descLastPoll, unixSeconds(a))
	gauge(descInterval, a.PollInterval.Seconds())

	seen := map[string]bool{}
	for _, w := range a.Windows {
		name := windowLabel(w.Name)
		if seen[name] || len(seen) >= maxWindows {
			continue
		}
		seen[name] = true
		if w.Limit != model.Unknown {
			gauge(descWindowLimit, float64(w.Limit), name)
		}
		if w.Remaining != model.Unknown {
			gauge(descWindowRemaining, float64(w.Remaining), name)
		}
		if w.HasReset() {
			gauge(descWindowReset, w.Reset.Seconds(), name)
		}
		if w.ExhaustsIn > 0 { // a window already out shows as remaining 0
			gauge(descWindowExhausts, w.ExhaustsIn.Seconds(), name)
		}
	}

	docs := make(map[model.Status]int, len(model.Statuses))
	type pair struct {
		class   model.Class
		verdict model.Verdict
	}
	problems := map[pair]int{}
	for _, d := range a.Documents {
		st := d.Status
		if !st.Valid() {
			st = model.StatusUnknown
		}
		docs[st]++
		if p := d.Problem; p != nil && p.Class != model.ClassOK {
			k := pair{p.Class, p.Verdict}
			if !k.class.Valid() {
				k.class = model.ClassUnknown
			}
			if !k.verdict.Valid() {
				k.verdict = model.VerdictVerify
			}
			problems[k]++
		}
	}
	for _, st := range model.Statuses {
		gauge(descDocuments, float64(docs[st]), string(st))
	}
	keys := make([]pair, 0, len(problems))
	for k := range problems {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].class < keys[j].class || keys[i].class == keys[j].class && keys[i].verdict < keys[j].verdict
	})
	for _, k := range keys {
		gauge(descProblems, float64(problems[k]), string(k.class), string(k.verdict))
	}
}

// unixSeconds is when the account's last poll ended, 0 before the first.
func unixSeconds(a model.AccountState) float64 {
	if a.LastPoll.IsZero() {
		return 0
	}
	return float64(a.LastPoll.UnixNano()) / 1e9
}
