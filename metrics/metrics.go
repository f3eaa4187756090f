// Package metrics exposes emitop to Prometheus (`--metrics-listen` on `emitop poll` and
// `emitop serve`): each account's windows, health, documents and problems as the poller
// sees them at every scrape, and counters of what the poller, the retry engine, the store,
// the notifiers and the SSH server did.
//
// Labels take bounded sets of values: account and provider come from the configuration,
// window names are cleaned and capped per account, everything else is a closed vocabulary
// (class, verdict, health, status, outcome). No document id, no text from a provider and
// no credential ever becomes a label or a help text.
package metrics

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"emitop/model"
	"emitop/poller"
)

// Account is a configured account as the metrics label it, with the reserve the rules
// compare its windows with. Nothing else of the configuration enters this package.
type Account struct {
	Name     string
	Provider string
	Reserve  float64 // share of every window emitop never spends
}

// Options configure Metrics.
type Options struct {
	Version  string
	Accounts []Account
	// WriteErrors counts the history's failed writes (store.Store.WriteErrors).
	WriteErrors func() uint64
}

// maxWindows caps the windows exposed per account: window names come from provider
// headers, and a provider that invents a new name on every response must not grow the
// number of series without end.
const maxWindows = 8

// Metrics is every metric family emitop exposes. It implements poller.Observer.
type Metrics struct {
	reg      *prometheus.Registry
	accounts map[string]Account
	order    []Account

	mu     sync.Mutex
	source func() model.Snapshot // the poller's current state; nil until SetSource
	// rejected is, per account, the documents rejected in the last snapshot taken from
	// a successful poll: a document that joins it was rejected since.
	rejected map[string]map[string]bool

	lastSuccess   *prometheus.GaugeVec
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	polls         *prometheus.HistogramVec
	pollFailures  *prometheus.CounterVec
	rejections    *prometheus.CounterVec
	retrySends    *prometheus.CounterVec
	retryOutcomes *prometheus.CounterVec
	notifications *prometheus.CounterVec
}

var _ poller.Observer = (*Metrics)(nil)

// New registers every family. The snapshot families stay empty until SetSource.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), accounts: map[string]Account{}, rejected: map[string]map[string]bool{}}
	for _, a := range o.Accounts {
		if _, dup := m.accounts[a.Name]; !dup {
			m.accounts[a.Name] = a
			m.order = append(m.order, a)
		}
	}
	ap := []string{"account", "provider"}
	m.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "emitop_account_last_success_timestamp_seconds",
		Help: "When the account's last successful poll ended (Unix time); 0 before the first."}, ap)
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "emitop_requests_total",
		Help: "Requests sent to the account's provider (polls, logins, retries), by HTTP status class: 2xx, 3xx, 4xx, 5xx, or none when no response came."},
		[]string{"account", "provider", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "emitop_request_duration_seconds",
		Help:    "Time from sending a request to the end of its response (or its failure).",
		Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, ap)
	m.polls = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "emitop_poll_duration_seconds",
		Help:    "Time one poll of the account took: its listing, the reads it needed and its waits for the budget.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}}, ap)
	m.pollFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "emitop_poll_failures_total",
		Help: "Polls of the account that failed."}, ap)
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "emitop_rejections_total",
		Help: "Documents the poller found newly rejected (the open ones when emitop started are not counted)."}, ap)
	m.retrySends = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "emitop_retry_sends_total",
		Help: "Documents the retry engine resent (an emission request left for each)."}, ap)
	m.retryOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "emitop_retry_documents_total",
		Help: "Documents the retry engine worked on, by outcome: accepted, rejected, skipped or unknown."},
		[]string{"account", "provider", "outcome"})
	m.notifications = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "emitop_notifications_total",
		Help: "Notifications of each [[notify]] entry, by outcome: sent, failed or dropped."},
		[]string{"notifier", "outcome"})
	// Every account's series exist from the start, at zero, so that increase() and rate()
	// see the first event rather than a series born with it.
	for _, a := range m.order {
		m.lastSuccess.WithLabelValues(a.Name, a.Provider)
		m.pollFailures.WithLabelValues(a.Name, a.Provider)
		m.rejections.WithLabelValues(a.Name, a.Provider)
		m.retrySends.WithLabelValues(a.Name, a.Provider)
		for _, out := range model.Outcomes {
			m.retryOutcomes.WithLabelValues(a.Name, a.Provider, string(out))
		}
	}
	m.reg.MustRegister(m.lastSuccess, m.requests, m.latency, m.polls, m.pollFailures, m.rejections,
		m.retrySends, m.retryOutcomes, m.notifications, stateCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "emitop_build_info",
			Help: "Always 1; the version label says which emitop is running.", ConstLabels: prometheus.Labels{"version": o.Version}},
			func() float64 { return 1 }))
	if o.WriteErrors != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "emitop_store_write_errors_total",
			Help: "Writes to the history that failed (a full disk, a read-only file)."},
			func() float64 { return float64(o.WriteErrors()) }))
	}
	return m
}

// CountSessions adds the number of SSH dashboards running, as sessions says (`emitop
// serve`); call it once, before serving.
func (m *Metrics) CountSessions(sessions func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "emitop_ssh_sessions",
		Help: "SSH dashboards running."}, func() float64 { return float64(sessions()) }))
}

// Registry is where every family is registered (for tests and the HTTP handler).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetSource gives the metrics the poller's current state, read at every scrape.
func (m *Metrics) SetSource(source func() model.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.source = source
}

// labels are an account's name and provider, and whether it is configured: a name the
// configuration does not hold is not exposed.
func (m *Metrics) labels(account string) (string, string, bool) {
	a, ok := m.accounts[account]
	return a.Name, a.Provider, ok
}

// Exchanged counts one request and its latency.
func (m *Metrics) Exchanged(x poller.Exchange) {
	name, provider, ok := m.labels(x.Account)
	if !ok {
		return
	}
	m.requests.WithLabelValues(name, provider, statusClass(x.Status)).Inc()
	m.latency.WithLabelValues(name, provider).Observe(x.Latency.Seconds())
}

// Polled times one poll, and notes when the account last polled successfully.
func (m *Metrics) Polled(account string, took time.Duration, err error) {
	name, provider, ok := m.labels(account)
	if !ok {
		return
	}
	m.polls.WithLabelValues(name, provider).Observe(took.Seconds())
	if err != nil {
		m.pollFailures.WithLabelValues(name, provider).Inc()
		return
	}
	m.lastSuccess.WithLabelValues(name, provider).SetToCurrentTime()
}

// Retried counts what one account's retry batch did.
func (m *Metrics) Retried(rep model.RetryReport) {
	name, provider, ok := m.labels(rep.Account)
	if !ok {
		return
	}
	for _, r := range rep.Results {
		if r.Sent {
			m.retrySends.WithLabelValues(name, provider).Inc()
		}
		m.retryOutcomes.WithLabelValues(name, provider, string(r.Outcome)).Inc()
	}
}

// Notified counts one notification's outcome ("sent", "failed" or "dropped").
func (m *Metrics) Notified(notifier, outcome string) {
	m.notifications.WithLabelValues(notifier, outcome).Inc()
}

// Watch counts the documents each snapshot finds newly rejected, until snaps is closed.
// The first snapshot of an account taken from a successful poll sets what it already had.
func (m *Metrics) Watch(snaps <-chan model.Snapshot) {
	for s := range snaps {
		m.observe(s)
	}
}

func (m *Metrics) observe(s model.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range s.Accounts {
		name, provider, ok := m.labels(a.Account.Name)
		if ok && a.PolledBy != "" {
			// Polled by another emitop sharing the store: its gauges come from what that
			// one wrote, its counters from that one's metrics (a sum over the processes
			// counts each rejection once), and this one forgets what it counted, so as
			// not to count again should the account come back.
			if !a.LastGood.IsZero() {
				m.lastSuccess.WithLabelValues(name, provider).Set(float64(a.LastGood.UnixNano()) / 1e9)
			}
			delete(m.rejected, name)
			continue
		}
		if !ok || a.LastPoll.IsZero() || a.Err != "" {
			continue // its documents are not (yet) from a successful poll
		}
		now := make(map[string]bool)
		prev, known := m.rejected[name]
		for _, d := range a.Documents {
			if d.Status != model.StatusRejected {
				continue
			}
			now[d.ID] = true
			if known && !prev[d.ID] {
				m.rejections.WithLabelValues(name, provider).Inc()
			}
		}
		m.rejected[name] = now
	}
}

// statusClass is an HTTP status as a label: 2xx … 5xx, or none when no response came.
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "none"
	}
	return string(rune('0'+status/100)) + "xx"
}

// windowLabel is a window's name as a label value: lower-case letters, digits, '_', '-'
// and '.', at most 32 of them; model.UnnamedWindow for a window without a name (as every
// face of emitop names it) and "invalid" for a
// name that is anything else (it came from a provider's header).
func windowLabel(name string) string {
	if name == "" {
		return model.UnnamedWindow
	}
	if len(name) > 32 {
		return "invalid"
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.", r)) {
			return "invalid"
		}
	}
	return name
}
