package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"emitop/config"
	"emitop/metrics"
	"emitop/notify"
	"emitop/poller"
	"emitop/ui"
)

// onCall is what runs beside a long-lived poller (`emitop poll`, `emitop serve`) for the
// people on call: the Prometheus metrics of --metrics-listen and the notifiers of
// [[notify]]. It never blocks the poller: it reads the poller's snapshots from the hub.
type onCall struct {
	log       *slog.Logger
	metrics   *metrics.Metrics // nil without --metrics-listen
	listener  net.Listener
	notifiers []*notify.Notifier // one per [[notify]]

	cancel  context.CancelFunc
	done    sync.WaitGroup
	stopped sync.Once
}

// metricsFlag declares --metrics-listen, with one wording for poll and serve.
func metricsFlag(fs *flag.FlagSet) *string {
	return fs.String("metrics-listen", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464); off when empty")
}

// onCallHistory is what on call needs of the store (*store.Store, on either engine): the
// notifiers' record, and the count of failed writes for the metrics.
type onCallHistory interface {
	notify.History
	WriteErrors() uint64
}

// newOnCall listens on metricsListen (when given) at once, so that a bad address stops
// the command before it polls anything, and readies a notifier per [[notify]].
func newOnCall(cfg *config.Config, metricsListen string, st onCallHistory, log *slog.Logger) (*onCall, error) {
	oc := &onCall{log: log}
	if metricsListen != "" {
		l, err := net.Listen("tcp", metricsListen)
		if err != nil {
			return nil, fmt.Errorf("--metrics-listen: %w", err)
		}
		accounts := make([]metrics.Account, len(cfg.Accounts))
		for i, a := range cfg.Accounts {
			accounts[i] = metrics.Account{Name: a.Name, Provider: a.Provider, Reserve: a.Reserve}
		}
		oc.listener = l
		oc.metrics = metrics.New(metrics.Options{Version: version, Accounts: accounts, WriteErrors: st.WriteErrors})
	}
	reserve := map[string]float64{}
	for _, a := range cfg.Accounts {
		reserve[a.Name] = a.Reserve
	}
	opt := notify.Options{Version: version, Reserve: reserve, Redact: redactor(cfg), Log: log}
	if oc.metrics != nil {
		opt.Outcome = oc.metrics.Notified
	}
	for _, entry := range cfg.Notify {
		n, err := notify.New(context.Background(), entry, st, opt)
		if err != nil {
			oc.stop()
			return nil, err
		}
		oc.notifiers = append(oc.notifiers, n)
	}
	return oc, nil
}

// redactor replaces every credential of the configuration, should a provider echo one
// back in what a notification quotes.
func redactor(cfg *config.Config) func(string) string {
	var pairs []string
	add := func(c config.Credentials) {
		for _, name := range c.Names() {
			if v := c.Get(name); v != "" {
				pairs = append(pairs, v, "[redacted]")
			}
		}
	}
	for _, a := range cfg.Accounts {
		add(a.Credentials)
	}
	for _, n := range cfg.Notify {
		add(n.Secrets)
	}
	return strings.NewReplacer(pairs...).Replace
}

// observe adds what on call observes to a poller's options.
func (oc *onCall) observe(o poller.Options) poller.Options {
	if oc.metrics != nil {
		o.Observer = oc.metrics
	}
	return o
}

// backend is the dashboards' backend, its retries counted in the metrics.
func (oc *onCall) backend(x *pollerProc, st history) ui.Backend {
	b := newBackend(x, st)
	if oc.metrics != nil {
		b.retry.Retried = oc.metrics.Retried
	}
	return b
}

// start serves the metrics and runs the notifiers, reading p's state; sessions, when not
// nil, counts the SSH dashboards.
func (oc *onCall) start(p *poller.Poller, sessions func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	oc.cancel = cancel
	for _, n := range oc.notifiers {
		snaps, unsubscribe := p.Hub().Subscribe()
		oc.done.Go(func() {
			defer unsubscribe()
			n.Run(ctx, snaps)
		})
	}
	if oc.metrics == nil {
		return
	}
	if sessions != nil {
		oc.metrics.CountSessions(sessions)
	}
	oc.metrics.SetSource(p.Snapshot)
	snaps, unsubscribe := p.Hub().Subscribe()
	oc.done.Go(func() { oc.metrics.Watch(snaps) })
	oc.done.Go(func() {
		<-ctx.Done()
		unsubscribe()
	})
	oc.done.Go(func() {
		if err := oc.metrics.Serve(ctx, oc.listener); err != nil {
			oc.log.Error("metrics server stopped", "err", err)
		}
	})
	oc.log.Info("serving metrics", "url", "http://"+oc.listener.Addr().String()+"/metrics")
}

// stop ends everything start began and waits for it; before start, it closes the
// listener. It may be called more than once.
func (oc *onCall) stop() {
	oc.stopped.Do(func() {
		if oc.cancel == nil {
			if oc.listener != nil {
				oc.listener.Close()
			}
			return
		}
		oc.cancel()
		oc.done.Wait()
	})
}
