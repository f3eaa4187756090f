package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
	"emitop/store"
)

// Options tune a Notifier; the zero value is production's choice.
type Options struct {
	Version string             // emitop's version, for the User-Agent
	Reserve map[string]float64 // each account's reserve: a window below it is low
	// Redact removes every credential emitop knows from a text, in case a provider
	// echoed one back where a message quotes it; nil leaves texts as they are.
	Redact func(string) string
	// Outcome is told of every message's fate ("sent", "failed", "dropped"), for metrics.
	Outcome func(notifier, outcome string)
	Log     *slog.Logger // nil: slog.Default()
	// Backoff paces the attempts at one message: 5 attempts, 1 s doubling to 30 s, with
	// full jitter, when zero.
	Backoff pace.Backoff
	// Cooldown is how long a state whose message failed waits before it is tried again:
	// a minute when zero.
	Cooldown time.Duration
	// Settle is how long an account must stay degraded before it is announced (a poll
	// that failed once, a window spent for a moment): a minute when zero. Down, refused
	// and recovery are announced at once.
	Settle time.Duration
}

// maxPending bounds the messages waiting to be sent: one per key, and at most this many keys.
const maxPending = 256

// maxBody bounds what is read of a receiver's answer (which is then thrown away).
const maxBody = 64 << 10

// defaultBackoff is how the attempts at one message are spaced.
var defaultBackoff = pace.Backoff{Base: time.Second, Cap: 30 * time.Second, Retries: 4}

// History is what a notifier needs of the store (*store.Store, on either engine): what
// the receiver already heard, and where each message is recorded.
type History interface {
	LastSent(ctx context.Context, notifier string) (map[string]store.Notification, error)
	Enqueue(ctx context.Context, ops ...store.Op) error
}

// Notifier is one [[notify]] entry at work: it turns snapshots into messages and delivers
// them, one at a time, in the order their keys first waited.
type Notifier struct {
	cfg     config.Notify
	st      History
	opt     Options
	log     *slog.Logger
	http    *http.Client
	limiter *rate.Limiter

	mu       sync.Mutex
	heard    map[string]store.Notification // per key, what the receiver last took
	observed map[string]string             // per key, the state of the last snapshot
	failed   map[string]time.Time          // per key, when its last message failed
	since    map[string]time.Time          // per key, since when its state has been what it is
	order    []string                      // keys waiting, oldest first
	pending  map[string]Message
	sending  map[string]Message // per key, the message being delivered
	wake     chan struct{}
}

// New makes the notifier of one entry. It reads from st what the receiver already heard,
// so that a restarted emitop does not announce the same states again.
func New(ctx context.Context, cfg config.Notify, st History, opt Options) (*Notifier, error) {
	heard, err := st.LastSent(ctx, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("notify %s: %w", cfg.Name, err)
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Backoff == (pace.Backoff{}) {
		opt.Backoff = defaultBackoff
	}
	if opt.Cooldown <= 0 {
		opt.Cooldown = time.Minute
	}
	if opt.Settle <= 0 {
		opt.Settle = time.Minute
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	n := &Notifier{
		cfg: cfg, st: st, opt: opt, log: opt.Log.With("notify", cfg.Name),
		http: &http.Client{Transport: transport, Timeout: cfg.Timeout,
			// A redirect would carry the message, and a token, somewhere not configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		limiter:  rate.NewLimiter(rate.Every(time.Minute/time.Duration(cfg.MaxPerMinute)), cfg.MaxPerMinute),
		heard:    heard,
		observed: map[string]string{},
		failed:   map[string]time.Time{},
		since:    map[string]time.Time{},
		pending:  map[string]Message{},
		sending:  map[string]Message{},
		wake:     make(chan struct{}, 1),
	}
	return n, nil
}

// Run watches snaps and delivers what they call for until ctx ends or snaps is closed;
// messages still waiting then are recorded as dropped.
func (n *Notifier) Run(ctx context.Context, snaps <-chan model.Snapshot) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { n.deliverLoop(ctx) })
	for {
		select {
		case s, ok := <-snaps:
			if !ok {
				cancel()
				wg.Wait()
				n.dropPending("emitop stopped")
				return
			}
			n.Evaluate(s)
		case <-ctx.Done():
			wg.Wait()
			n.dropPending("emitop stopped")
			return
		}
	}
}

// wants reports whether the entry takes messages of kind.
func (n *Notifier) wants(kind string) bool { return slices.Contains(n.cfg.Events, kind) }

// Evaluate queues what a snapshot calls for: a message for every state the receiver has
// not heard, a reminder for a state that lasts once repeat has passed since it was heard.
func (n *Notifier) Evaluate(s model.Snapshot) {
	now := s.At
	if now.IsZero() {
		now = time.Now()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range conditions(s, n.opt.Reserve, n.cfg.Triage) {
		before := n.observed[c.key]
		n.observed[c.key] = c.state
		if before != c.state {
			n.since[c.key] = now
		}
		if c.quiet || c.state == string(model.HealthDegraded) && now.Sub(n.since[c.key]) < n.opt.Settle {
			continue
		}
		heard, known := n.heard[c.key]
		// A message waiting or on its way will be heard: the state it carries is not news.
		if m, ok := n.pending[c.key]; ok {
			heard, known = store.Notification{At: m.At, State: m.state}, true
		} else if m, ok := n.sending[c.key]; ok {
			heard, known = store.Notification{At: m.At, State: m.state}, true
		}
		var fresh bool
		switch {
		case !known:
			fresh = !(strings.HasPrefix(c.key, "health/") && c.state == string(model.HealthUp)) // up is what a receiver assumes
		case c.isNew != nil:
			fresh = c.isNew(heard.State)
		default:
			fresh = heard.State != c.state
		}
		due := known && c.remind && now.Sub(heard.At) >= n.cfg.Repeat
		if !fresh && !due {
			continue
		}
		if at, ok := n.failed[c.key]; ok && now.Sub(at) < n.opt.Cooldown {
			continue
		}
		// Not news is a reminder while the state has held: since the last snapshot, or,
		// first seen by this process, since the receiver heard it before a restart.
		m := c.message(!fresh && (before == c.state || before == ""))
		if !n.wants(m.Kind) {
			continue
		}
		if m.Kind == KindHealth || m.Kind == KindRefused {
			from := model.HealthUp
			switch {
			case before != "" && before != c.state:
				from = model.Health(before)
			case known:
				from = model.Health(heard.State)
			}
			m.Health = &Health{From: from, To: model.Health(c.state)}
		}
		m.key, m.state = c.key, c.state
		n.enqueue(m)
	}
}

// enqueue puts m in line, replacing a message of the same key still waiting (the newer
// state is what matters). Called with mu held.
func (n *Notifier) enqueue(m Message) {
	if _, waiting := n.pending[m.key]; !waiting {
		if len(n.order) >= maxPending {
			n.record(m, "dropped: too many messages waiting", 0)
			return
		}
		n.order = append(n.order, m.key)
	}
	n.pending[m.key] = m
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest waiting message, waiting for one until ctx ends.
func (n *Notifier) next(ctx context.Context) (Message, bool) {
	for {
		n.mu.Lock()
		if len(n.order) > 0 {
			key := n.order[0]
			n.order = n.order[1:]
			m := n.pending[key]
			delete(n.pending, key)
			n.sending[key] = m
			n.mu.Unlock()
			return m, true
		}
		n.mu.Unlock()
		select {
		case <-n.wake:
		case <-ctx.Done():
			return Message{}, false
		}
	}
}

func (n *Notifier) deliverLoop(ctx context.Context) {
	for {
		m, ok := n.next(ctx)
		if !ok {
			return
		}
		if err := n.limiter.Wait(ctx); err != nil {
			n.record(m, "dropped: emitop stopped", 0)
			return
		}
		m.ID = rand.Text()
		n.clean(&m)
		attempts, err := n.deliver(ctx, m)
		n.mu.Lock()
		delete(n.sending, m.key)
		if err != nil {
			n.failed[m.key] = time.Now()
			n.mu.Unlock()
			n.log.Warn("notification not delivered", "kind", m.Kind, "account", m.Account, "attempts", attempts, "err", err)
			n.record(m, "failed: "+err.Error(), attempts)
			continue
		}
		delete(n.failed, m.key)
		n.heard[m.key] = store.Notification{At: m.At, Key: m.key, State: m.state}
		n.mu.Unlock()
		n.log.Info("notified", "kind", m.Kind, "account", m.Account, "reminder", m.Reminder, "attempts", attempts)
		n.record(m, store.NotificationSent, attempts)
	}
}

// dropPending records the messages still waiting as dropped.
func (n *Notifier) dropPending(why string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, key := range n.order {
		n.record(n.pending[key], "dropped: "+why, 0)
	}
	n.order, n.pending = nil, map[string]Message{}
}

// record puts a message's fate in the history and tells Outcome.
func (n *Notifier) record(m Message, outcome string, attempts int) {
	kind, _, _ := strings.Cut(outcome, ":")
	if n.opt.Outcome != nil {
		n.opt.Outcome(n.cfg.Name, kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// At is when the state was seen, the clock reminders are measured by.
	err := n.st.Enqueue(ctx, store.RecordNotification(store.Notification{At: m.At, Notifier: n.cfg.Name,
		Kind: m.Kind, Key: m.key, State: m.state, Account: m.Account, Reminder: m.Reminder,
		Summary: text(n.redact(m.Summary), 300), Outcome: outcome, Attempts: attempts}))
	if err != nil && !errors.Is(err, store.ErrClosed) {
		n.log.Error("notification not recorded", "err", err)
	}
}

func (n *Notifier) redact(s string) string {
	if n.opt.Redact == nil {
		return s
	}
	return n.opt.Redact(s)
}

// clean redacts every text of m that could hold what a provider wrote.
func (n *Notifier) clean(m *Message) {
	m.Summary = n.redact(m.Summary)
	for i := range m.Details {
		m.Details[i] = n.redact(m.Details[i])
	}
	for i := range m.Documents {
		m.Documents[i].Number = n.redact(m.Documents[i].Number)
		m.Documents[i].Code = n.redact(m.Documents[i].Code)
	}
}

// errPermanent marks an answer that another attempt would not change.
var errPermanent = errors.New("permanent")

// deliver tries m up to 1+Retries times with backoff; it returns how many attempts it made.
func (n *Notifier) deliver(ctx context.Context, m Message) (int, error) {
	body, err := n.encode(m)
	if err != nil {
		return 0, err
	}
	var last error
	for attempt := 0; attempt <= n.opt.Backoff.Retries; attempt++ {
		if attempt > 0 {
			wait := n.opt.Backoff.Delay(attempt - 1)
			var ra retryAfter
			if errors.As(last, &ra) {
				wait = min(max(wait, time.Duration(ra)), n.opt.Backoff.Cap)
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return attempt, fmt.Errorf("emitop stopped after %d attempts: %w", attempt, last)
			}
		}
		last = n.post(ctx, body)
		if last == nil {
			return attempt + 1, nil
		}
		if ctx.Err() != nil {
			return attempt + 1, fmt.Errorf("emitop stopped during attempt %d", attempt+1)
		}
		if errors.Is(last, errPermanent) {
			return attempt + 1, last
		}
	}
	return n.opt.Backoff.Retries + 1, fmt.Errorf("%w (after %d attempts)", last, n.opt.Backoff.Retries+1)
}

// retryAfter is a 429's wait.
type retryAfter time.Duration

func (r retryAfter) Error() string {
	return fmt.Sprintf("HTTP 429 (retry after %s)", time.Duration(r).Round(time.Second))
}

// post sends one attempt. Its errors never quote the URL, which is a credential.
func (n *Notifier) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.Secrets.Get("url"), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bad url: %w", errPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "emitop/"+n.opt.Version)
	if tok := n.cfg.Secrets.Get("token"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return transportError(err, n.cfg.Timeout)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)) // never read, never logged: it may echo anything
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code/100 == 2:
		return nil
	case code == http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return retryAfter(time.Duration(max(secs, 1)) * time.Second)
	case code/100 == 5:
		return fmt.Errorf("HTTP %d", code)
	default:
		return fmt.Errorf("HTTP %d: %w", code, errPermanent)
	}
}

// transportError says why no answer came, in words that hold nothing of the URL.
func transportError(err error, timeout time.Duration) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, context.Canceled):
		return errors.New("emitop stopped")
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return errors.New("host not found")
	}
	return errors.New("no answer: the connection failed")
}

// encode writes m as the entry's kind of receiver reads it.
func (n *Notifier) encode(m Message) ([]byte, error) {
	if n.cfg.Kind == config.NotifySlack {
		return json.Marshal(map[string]string{"text": slackText(m)})
	}
	return json.Marshal(m)
}

// slackEscape escapes the three characters Slack reads as markup (links, mentions such as
// <!channel>), as its incoming-webhook documentation asks.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackCode shows what a provider wrote (a number, a code) as an inline code span, its
// backticks replaced: no *bold*, _italic_ or ~strike~ in it can format the message.
func slackCode(s string) string { return "`" + strings.ReplaceAll(s, "`", "'") + "`" }

// slackText is m as one Slack message in its mrkdwn.
func slackText(m Message) string {
	var b strings.Builder
	b.WriteString("*" + slackEscape.Replace(m.Summary) + "*")
	if m.Reminder {
		b.WriteString(" (reminder)")
	}
	for _, d := range m.Details {
		b.WriteString("\n" + slackEscape.Replace(d))
	}
	for _, d := range m.Documents {
		line := fmt.Sprintf("\n• %s: %s · %s", slackCode(d.Number), d.Class, d.Verdict)
		if d.Code != "" {
			line += " · code " + slackCode(d.Code)
		}
		b.WriteString(slackEscape.Replace(line))
	}
	b.WriteString("\nTriage: `" + slackEscape.Replace(m.Triage) + "`")
	return b.String()
}
