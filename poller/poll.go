package poller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
	"emitop/store"
)

// Options tune a Poller; the zero value is production's choice.
type Options struct {
	Version string       // emitop's version, for the User-Agent
	Clock   pace.Clock   // nil: pace.RealClock
	Backoff pace.Backoff // how failed reads are tried again; zero: pace.DefaultBackoff
	// OnError is told of every failed poll and every write the store refused; main logs
	// it. The error's text may hold provider words: sanitize before showing it.
	OnError func(account string, err error)
	// OnHistory is told when history stops being saved (the database is locked by another
	// process, the disk is full), when the reason changes, and when it is saved again;
	// reason is "" once it is. Called from a poll loop after its poll.
	OnHistory func(gap model.HistoryGap, reason string)
	// Retention is how long the request log and window samples are kept; 0 means
	// store.DefaultRetention.
	Retention time.Duration
	// Observer, when set, is told of every request and every poll as it ends (metrics).
	Observer Observer
	// Share, when set, shares the accounts with the other emitop processes using the
	// store (package fleet): an account is polled only while this process holds its poll
	// lease (Hold, Drop), what each poll learned is written to the store for them, and an
	// account another process polls is shown as that process wrote it (Show). Without it
	// every account is polled here.
	Share Sharing
}

// Sharing is what a poller needs of the fleet it belongs to.
type Sharing interface {
	// Member names this process in what it shares: its registration, and its host as
	// the other processes show it.
	Member() (holder, host string)
	// Ask asks whoever polls the accounts to poll them now: the operator's refresh of
	// accounts another process polls. It must not block.
	Ask(accounts []string)
	// Holding is nil while this process may still spend the account's budget: asked
	// before every poll, so that a process that stalled (stopped, paused, starved) past
	// its registration polls nothing before it learns whether it lost the account.
	Holding(account string) error
}

// Observer is told what the poller does as it happens. Its methods are called from the
// polling goroutines and must return at once.
type Observer interface {
	// Exchanged is told of every round trip of every account's client, retries included.
	Exchanged(x Exchange)
	// Polled is told of every poll of an account that ran to its end: how long it took,
	// and its error (nil when it succeeded).
	Polled(account string, took time.Duration, err error)
}

// Health thresholds: an account is down after downAfter failed polls in a row, and up
// again after upAfter good ones (degraded in between).
const (
	downAfter = 3
	upAfter   = 2
)

// maxReads bounds the single-document reads of one poll; what is left waits for the next.
const maxReads = 20

// reloginEvery is how often a parked account (its credential refused) logs in again
// unasked: providers lock accounts that keep failing logins. An operator's Refresh tries
// at once.
const reloginEvery = 5 * time.Minute

// attemptsEvery is how often a poll reads the documents' attempts from the store, when
// it does not share the store with a fleet (which tells of every retry): the read costs
// about a fifth of a poll's CPU, and only the retry engine changes them.
const attemptsEvery = 30 * time.Second

// publishGap is how long Run waits, at least, between two snapshots: every poll changes
// one account, and a snapshot carries them all, so with thousands of accounts one per
// poll would cost more than the polls. It grows with the accounts: 25 ms for a few, about
// a second for 10,000 (at half a second the snapshots were a twentieth of the poller's
// CPU there, pprof), never more than the second a screen is redrawn at anyway.
func publishGap(accounts int) time.Duration {
	return min(time.Second, 25*time.Millisecond+time.Duration(accounts)*100*time.Microsecond)
}

// pruneEvery is how often Run prunes the request log and window samples, pruneBatch how
// many rows one pruning transaction deletes.
const (
	pruneEvery = time.Hour
	pruneBatch = 500
)

// History is what the poll loop needs of the store (*store.Store, on either engine):
// Enqueue must never wait for the database, WriteState says whether history is saved.
type History interface {
	Enqueue(ctx context.Context, ops ...store.Op) error
	Documents(ctx context.Context, f store.DocFilter) ([]model.Document, error)
	WindowSeries(ctx context.Context, account, window string, since time.Time, n int) ([]model.Window, error)
	Prune(ctx context.Context, before time.Time, batch int) (int, error)
	WriteState() store.WriteState
}

// Poller polls every configured account: one loop per account, every request through the
// account's Governor, every document change and request into the store, and one snapshot
// per poll to the Hub's subscribers.
type Poller struct {
	st       History
	opts     Options
	clock    pace.Clock
	hub      *Hub
	accounts []*account
	byName   map[string]*account
	running  atomic.Bool
	sweeping atomic.Bool   // a Refresh without Run is polling
	dirty    chan struct{} // an account changed since the last snapshot Run published
	shared   atomic.Bool   // what the polls learn is written for the other processes (Share)

	mu sync.Mutex // guards every account's state

	history model.HistoryGap // what OnHistory was last told, so each change is told once
}

// account is one account's client and what its polls learned.
type account struct {
	cfg    config.Account
	client *Client
	wake   chan struct{} // a refresh asks the loop to poll now
	asked  atomic.Bool   // the operator asked for a poll (Refresh) since the last one
	poll   sync.Mutex    // one poll of the account at a time
	lease  lease         // whether this process polls it (always, without Options.Share)

	// Owned by the goroutine holding poll.
	known      map[string]model.Document // open documents as last listed; nil before the first poll
	attempts   map[string]int            // emissions per document, as the store last said
	attemptsAt time.Time                 // when attempts was read
	sampled    map[string]sample         // each window as the last poll saw it
	capped     bool                      // the governor's window cap was reported
	sharedDocs uint64                    // the fingerprint of the documents last shared (Options.Share)
	sharedBy   string                    // the registration they were shared under
	retried    atomic.Bool               // a retry changed attempts: read them at the next poll

	// Guarded by Poller.mu.
	health    model.Health
	fails     int // failed polls in a row
	goods     int // good polls in a row
	lastPoll  time.Time
	lastGood  time.Time // when a poll last succeeded
	spend     spendLog  // what each window had left at the recent polls; written only while holding poll
	err       string
	lastError *model.Problem // err decoded, when a provider's answer carried it
	documents []model.Document
	// A refused credential parks the account: no request until reloginEvery has passed
	// since parked, or until the operator asks; never unasked when the refusal needs a
	// person (a second factor).
	parked      time.Time
	needsPerson bool
	// shown is the account as the process that polls it last wrote it, while another
	// does; nil when none has.
	shown *model.AccountState
}

// lease is whether this process holds an account's poll lease, and the context of the
// polls it makes under it: dropping the lease cancels a poll under way.
type lease struct {
	mu     sync.Mutex
	held   bool
	ctx    context.Context
	cancel context.CancelFunc
	due    time.Time     // when the first poll under the lease is due; zero: at once
	why    string        // why it was dropped, when this process had to let it go
	gained chan struct{} // signalled when the lease is taken
}

// current is the lease's context and when its next poll is due, while held.
func (l *lease) current() (ctx context.Context, due time.Time, held bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx, l.due, l.held
}

// New builds one Client and Governor per account. st receives documents, events, window
// samples and the request log.
func New(accounts []config.Account, st History, opts Options) (*Poller, error) {
	if st == nil {
		return nil, errors.New("poller: no store")
	}
	p := &Poller{st: st, opts: opts, clock: opts.Clock, hub: NewHub(), byName: map[string]*account{}, dirty: make(chan struct{}, 1)}
	if p.clock == nil {
		p.clock = pace.RealClock
	}
	if p.opts.Retention <= 0 {
		p.opts.Retention = store.DefaultRetention
	}
	// One connection pool for every account: enough idle connections per host for the
	// polls under way at once, about an account's in five. The polls come in waves (every
	// loop starts at once, and its interval keeps it in its wave): at 10,000 accounts of
	// one host about 2,000 requests are under way at a wave's crest, and with one
	// connection kept in a hundred every wave dialed and closed a thousand or more afresh
	// (about 100 a second), each with its buffers and goroutines.
	hc := &http.Client{Transport: newTransport(max(2, min(4096, len(accounts)/5)))}
	for _, acc := range accounts {
		if _, dup := p.byName[acc.Name]; dup {
			return nil, fmt.Errorf("poller: account %s configured twice", acc.Name)
		}
		c, err := NewClient(acc, ClientOptions{Version: opts.Version, Clock: p.clock, Backoff: opts.Backoff, Trace: p.logRequest, HTTP: hc})
		if err != nil {
			return nil, fmt.Errorf("poller: %w", err)
		}
		a := &account{cfg: c.Account(), client: c, wake: make(chan struct{}, 1), health: model.HealthUp, goods: upAfter}
		a.lease.gained = make(chan struct{}, 1)
		if opts.Share == nil {
			a.lease.held, a.lease.ctx = true, context.Background()
		}
		p.accounts = append(p.accounts, a)
		p.byName[acc.Name] = a
	}
	return p, nil
}

// Hub is where snapshots are published.
func (p *Poller) Hub() *Hub { return p.hub }

// Client is the client of the named account, nil for an unknown one: the retry engine
// sends through it so that its requests share the account's Governor with the polls.
func (p *Poller) Client(name string) *Client {
	if a := p.byName[name]; a != nil {
		return a.client
	}
	return nil
}

// Run polls every account in its own loop until ctx ends: each loop polls, publishes a
// snapshot, then waits for the interval its Governor advises (or a Refresh). It also
// prunes old request-log rows and window samples. It returns nil once ctx ends and
// every loop has stopped, or an error if the Poller is already running.
func (p *Poller) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("poller: already running")
	}
	defer p.running.Store(false)
	var wg sync.WaitGroup
	for _, a := range p.accounts {
		wg.Go(func() { p.loop(ctx, a) })
	}
	wg.Go(func() { p.pruneLoop(ctx) })
	wg.Go(func() { p.publishLoop(ctx) })
	wg.Wait()
	return nil
}

// loop polls one account for as long as ctx lasts, while this process holds its lease:
// a poll, then the interval its Governor advises (or a Refresh), then the next.
func (p *Poller) loop(ctx context.Context, a *account) {
	for {
		leased, due, held := a.lease.current()
		if !held {
			select {
			case <-ctx.Done():
				return
			case <-a.lease.gained:
			}
			continue
		}
		if wait := due.Sub(p.clock.Now()); wait > 0 {
			// The process that held it before polled it lately: no sooner than due.
			if !p.sleep(ctx, leased, a, wait) {
				return
			}
			a.lease.mu.Lock()
			a.lease.due = time.Time{}
			a.lease.mu.Unlock()
			continue
		}
		if s := p.opts.Share; s != nil && s.Holding(a.cfg.Name) != nil {
			// Its renewal decides, soon: the lease dropped, or held on.
			if !p.sleep(ctx, leased, a, holdingEvery) {
				return
			}
			continue
		}
		pollCtx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(leased, cancel)
		if p.pollAccount(pollCtx, a, a.asked.Swap(false)) {
			p.changed()
		}
		stop()
		cancel()
		if !p.sleep(ctx, leased, a, a.client.Governor().PollInterval(a.cfg.PollInterval)) {
			return
		}
	}
}

// holdingEvery is how often a loop whose poll the fleet holds back (Sharing.Holding)
// asks again.
const holdingEvery = 100 * time.Millisecond

// sleep waits d, a refresh, or the end of the lease; false when ctx ended.
func (p *Poller) sleep(ctx, leased context.Context, a *account, d time.Duration) bool {
	fire, stop := p.clock.Timer(d)
	defer stop()
	select {
	case <-ctx.Done():
		return false
	case <-leased.Done():
	case <-a.wake:
	case <-fire:
	}
	return true
}

// changed tells publishLoop that an account changed.
func (p *Poller) changed() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// publishLoop publishes a snapshot after accounts change, at most one every publishGap.
func (p *Poller) publishLoop(ctx context.Context) {
	gap := publishGap(len(p.accounts))
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.dirty:
		}
		s := p.Snapshot()
		p.reportHistory(s)
		p.hub.Publish(s)
		fire, stop := p.clock.Timer(gap)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-fire:
		}
	}
}

func (p *Poller) pruneLoop(ctx context.Context) {
	for {
		if _, err := p.st.Prune(ctx, p.clock.Now().Add(-p.opts.Retention), pruneBatch); err != nil && ctx.Err() == nil {
			p.fail("", fmt.Errorf("prune: %w", err))
		}
		fire, stop := p.clock.Timer(pruneEvery)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-fire:
		}
	}
}

// PollOnce polls every account once, all at the same time, publishes the snapshot and
// returns it. It counts as the operator's asking: a parked account logs in again. An
// account whose poll ctx ended before it finished is reported down, with "not polled: "
// and ctx's cause as its error: nothing is known of it.
func (p *Poller) PollOnce(ctx context.Context) model.Snapshot {
	var wg sync.WaitGroup
	polled := make([]bool, len(p.accounts))
	mine := make([]bool, len(p.accounts))
	for i, a := range p.accounts {
		leased, _, held := a.lease.current()
		if !held {
			continue // another process polls it: it is shown as that one wrote it
		}
		mine[i] = true
		wg.Go(func() {
			pollCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			defer context.AfterFunc(leased, cancel)()
			polled[i] = p.pollAccount(pollCtx, a, true)
		})
	}
	wg.Wait()
	p.mu.Lock()
	for i, a := range p.accounts {
		if mine[i] && !polled[i] {
			a.health, a.lastError = model.HealthDown, nil
			a.err = model.Line("not polled: "+context.Cause(ctx).Error(), 300)
		}
	}
	p.mu.Unlock()
	s := p.Snapshot()
	p.hub.Publish(s)
	return s
}

// Refresh asks for a poll of every account now and returns at once: the operator's ask,
// which also has a parked account log in again. While Run runs it wakes the loops (a
// wake-up already pending is not doubled); otherwise it polls every account once in the
// background, unless such a poll is already under way.
func (p *Poller) Refresh() {
	if p.opts.Share != nil {
		var elsewhere []string
		for _, a := range p.accounts {
			if !p.Holds(a.cfg.Name) {
				elsewhere = append(elsewhere, a.cfg.Name)
			}
		}
		if len(elsewhere) > 0 {
			p.opts.Share.Ask(elsewhere)
		}
	}
	if p.running.Load() {
		for _, a := range p.accounts {
			a.asked.Store(true)
			select {
			case a.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	if !p.sweeping.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.sweeping.Store(false)
		p.PollOnce(context.Background())
	}()
}

// Retried tells the poller that a retry of the named account's documents ended: the
// next poll reads their attempts from the store again instead of from its cache.
func (p *Poller) Retried(account string) {
	if a := p.byName[account]; a != nil {
		a.retried.Store(true)
	}
}

// Hold gives this process the account's poll lease (Options.Share): its loop polls it.
// When the process that held it before wrote a later poll than this one made (Show),
// this one takes up where that one left off: the health it judged, a refused credential
// it parked, and the time of its next poll.
func (p *Poller) Hold(account string) {
	a := p.byName[account]
	if a == nil {
		return
	}
	var due time.Time
	p.mu.Lock()
	if sh := a.shown; sh != nil && sh.LastPoll.After(a.lastPoll) {
		due = sh.LastPoll.Add(sh.PollInterval)
		a.health, a.fails, a.goods = sh.Health, 0, 0
		if sh.Health == model.HealthUp {
			a.goods = upAfter
		}
		a.parked, a.needsPerson = time.Time{}, false
		if sh.Parked {
			a.parked, a.needsPerson = sh.LastPoll, sh.NextLogin.IsZero()
			due = time.Time{} // the loop's own parking decides
		}
	}
	p.mu.Unlock()
	a.lease.mu.Lock()
	if !a.lease.held {
		a.lease.held, a.lease.due, a.lease.why = true, due, ""
		a.lease.ctx, a.lease.cancel = context.WithCancel(context.Background())
		a.retried.Store(true) // whoever held it meanwhile may have retried its documents
	}
	a.lease.mu.Unlock()
	select {
	case a.lease.gained <- struct{}{}:
	default:
	}
	p.changed()
}

// Drop takes the account's poll lease back: a poll under way is cancelled, and none
// starts until Hold. why, when not "", says why this process let it go when no other
// process may have taken it (the store could not be reached to renew it): the account
// shows it until another process polls it.
func (p *Poller) Drop(account, why string) {
	a := p.byName[account]
	if a == nil {
		return
	}
	a.lease.mu.Lock()
	if a.lease.held && a.lease.cancel != nil {
		a.lease.cancel()
	}
	a.lease.held, a.lease.why = false, why
	a.lease.mu.Unlock()
	p.changed()
}

// Shared turns on or off the writing of what the polls learn for the other processes
// sharing the store (Options.Share): a process alone in its fleet writes nothing for
// nobody, as a lone emitop always did. Turned on, it writes at once what it knows of every
// account it holds, and each one's documents again at its next poll.
func (p *Poller) Shared(on bool) {
	if p.opts.Share == nil || !p.shared.CompareAndSwap(!on, on) || !on {
		return
	}
	holder, host := p.opts.Share.Member()
	now := p.clock.Now()
	var ops []store.Op
	p.mu.Lock()
	for _, a := range p.accounts {
		if _, _, held := a.lease.current(); held && !a.lastPoll.IsZero() {
			ops = append(ops, store.ShareState(holder, host, a.state(now), true))
		}
		a.sharedBy = ""
	}
	p.mu.Unlock()
	if err := p.st.Enqueue(context.Background(), ops...); err != nil && !errors.Is(err, store.ErrClosed) {
		p.fail("", err)
	}
}

// Poke asks for a poll of the account now, as Refresh does of every account: another
// process's operator asked for it.
func (p *Poller) Poke(account string) {
	a := p.byName[account]
	if a == nil {
		return
	}
	a.asked.Store(true)
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Holds reports whether this process holds the account's poll lease: always, for a
// configured account, without Options.Share.
func (p *Poller) Holds(account string) bool {
	a := p.byName[account]
	if a == nil {
		return false
	}
	_, _, held := a.lease.current()
	return held
}

// Show takes what the processes polling other accounts last wrote of them. A state is
// shown with its times moved onto this host's clock: written is when its process wrote
// it by that process's clock, age how long ago by the database's.
func (p *Poller) Show(states []store.SharedState) {
	holder := ""
	if p.opts.Share != nil {
		holder, _ = p.opts.Share.Member()
	}
	now := p.clock.Now()
	p.mu.Lock()
	for _, st := range states {
		a := p.byName[st.State.Account.Name]
		if a == nil || st.Holder == holder {
			continue
		}
		shown := rebase(st.State, now.Add(-st.Age).Sub(st.Written))
		shown.PolledBy = st.Host
		if st.SameDocuments && a.shown != nil {
			shown.Documents = a.shown.Documents
		}
		a.shown = &shown
	}
	p.mu.Unlock()
	p.changed()
}

// fingerprint sums up what a document list shows, to share it only when it changed.
// It runs at every poll of a shared account, so it writes into one buffer rather than
// formatting each document.
func fingerprint(docs []model.Document) uint64 {
	h := fnv.New64a()
	var b []byte
	text := func(s ...string) {
		for _, x := range s {
			b = append(append(b, x...), 0)
		}
	}
	for _, d := range docs {
		b = b[:0]
		text(d.ID, d.Number, string(d.Status))
		for _, n := range [...]int64{int64(d.Attempts), d.FirstSeen.UnixNano(), d.Changed.UnixNano()} {
			b = append(strconv.AppendInt(b, n, 10), 0)
		}
		if p := d.Problem; p != nil {
			text(string(p.Class), string(p.Verdict), p.Code, p.Message)
		}
		h.Write(b)
	}
	return h.Sum64()
}

// rebase moves every time of a state by d.
func rebase(a model.AccountState, d time.Duration) model.AccountState {
	move := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.Add(d)
	}
	a.LastPoll, a.LastGood, a.NextLogin = move(a.LastPoll), move(a.LastGood), move(a.NextLogin)
	for i := range a.Windows {
		a.Windows[i].Observed = move(a.Windows[i].Observed)
	}
	for i := range a.Documents {
		a.Documents[i].FirstSeen, a.Documents[i].Changed = move(a.Documents[i].FirstSeen), move(a.Documents[i].Changed)
	}
	return a
}

// Snapshot is every account's latest state, with its windows as the Governor sees them now.
func (p *Poller) Snapshot() model.Snapshot {
	now := p.clock.Now()
	s := model.Snapshot{At: now, Accounts: make([]model.AccountState, len(p.accounts))}
	ws := p.st.WriteState()
	s.HistoryGap = ws.Gap()
	if ws.Err != nil {
		s.History = model.Line(ws.Err.Error(), 300)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, a := range p.accounts {
		_, _, held := a.lease.current()
		switch {
		case held && a.shown != nil && a.shown.LastPoll.After(a.lastPoll):
			s.Accounts[i] = *a.shown // taken over, not polled here yet
		case held || a.shown == nil:
			s.Accounts[i] = a.state(now)
			if !held {
				s.Accounts[i].Unpolled = a.unpolled()
			}
		default:
			s.Accounts[i] = *a.shown
		}
	}
	return s
}

// unpolled is why nobody polls an account this process does not hold, as far as it
// knows: it let the lease go, or no process has polled it yet.
func (a *account) unpolled() string {
	a.lease.mu.Lock()
	defer a.lease.mu.Unlock()
	return a.lease.why
}

// state is what this process knows of the account now (under Poller.mu).
func (a *account) state(now time.Time) model.AccountState {
	g := a.client.Governor()
	st := model.AccountState{
		Account:      model.Account{Name: a.cfg.Name, Provider: a.cfg.Provider},
		Health:       a.health,
		Windows:      a.spend.forecast(g.Windows(now), now),
		PollInterval: a.interval(g),
		BaseInterval: a.cfg.PollInterval,
		Reserve:      a.cfg.Reserve,
		LastPoll:     a.lastPoll,
		LastGood:     a.lastGood,
		Err:          a.err,
		LastError:    a.lastError,
		Documents:    a.documents,
		Parked:       !a.parked.IsZero(),
	}
	if !a.parked.IsZero() && !a.needsPerson {
		st.NextLogin = a.parked.Add(reloginEvery)
	}
	return st
}

// pollAccount polls one account: it lists the open documents, reads the details the list
// lacks, stores every change with the raw JSON that showed it, samples the windows and
// updates the account's health. It reports false when it changed nothing: ctx ended
// before the poll finished, or the account is parked and asked is false (asked: the
// operator asked for this poll). While a wait the server stated holds the account (a
// 429's, a 503's Retry-After) the poll sends nothing and counts as failed.
func (p *Poller) pollAccount(ctx context.Context, a *account, asked bool) bool {
	a.poll.Lock()
	defer a.poll.Unlock()
	if ctx.Err() != nil || !asked && p.stayParked(a) {
		return false
	}
	start := p.clock.Now()
	if a.known == nil {
		a.known = p.storedOpen(ctx, a)
	}
	var seed map[string][]model.Observation
	if !a.spend.seeded() { // written only by the goroutine holding poll: read without Poller.mu
		seed = p.storedSpend(ctx, a, p.clock.Now())
	}
	var items []Item
	var err error
	if until := a.client.Governor().Held(); until.After(p.clock.Now()) {
		err = &heldError{account: a.cfg.Name, until: until}
	} else {
		items, err = OpenDocuments(ctx, a.client, pace.Poll)
	}
	if ctx.Err() != nil {
		return false
	}
	var cut *ListingCut
	if errors.As(err, &cut) {
		err = nil // what was listed is watched; the account says the rest is not
	}
	now := p.clock.Now()
	var docs []model.Document
	var ops []store.Op
	if err == nil {
		docs, ops = p.reconcile(ctx, a, items, now, cut == nil)
		if ctx.Err() != nil {
			return false
		}
	}
	windows := a.client.Governor().Windows(now)
	var changed []model.Window
	if changed, a.sampled = sampleWindows(a.sampled, windows); len(changed) > 0 {
		ops = append(ops, store.AddWindowSamples(a.cfg.Name, changed, now))
	}
	if n := a.client.Governor().DroppedWindows(); n > 0 && !a.capped {
		a.capped = true
		p.fail(a.cfg.Name, fmt.Errorf("the provider names more than %d rate-limit windows: the ones it named longest ago are dropped, the documented ones kept (%d so far)", pace.MaxWindows, n))
	}
	switch werr := p.st.Enqueue(ctx, ops...); {
	case errors.Is(werr, store.ErrBacklogFull):
		// The store has refused writes for long enough to be full, and counts this loss;
		// the next poll compares the listing with what the store holds, so the documents'
		// states reach it once it takes writes again.
		a.known = nil
	case werr != nil:
		p.fail(a.cfg.Name, werr)
	}
	if err != nil {
		p.fail(a.cfg.Name, err)
	} else {
		p.attempts(ctx, a, docs)
	}

	p.mu.Lock()
	a.lastPoll = p.clock.Now()
	if seed != nil {
		a.spend.windows = seed
	}
	a.spend.observe(windows, now)
	var held *heldError
	switch {
	case errors.As(err, &held):
		// Nothing was sent: the problem that stated the wait stays the account's last.
		a.fails, a.goods = a.fails+1, 0
		a.err = model.Line(err.Error(), 300)
	case err != nil:
		a.fails, a.goods = a.fails+1, 0
		a.err = model.Line(err.Error(), 300)
		a.lastError = decodedError(a.client.d, err)
	default:
		a.fails, a.goods = 0, a.goods+1
		a.err, a.lastError = "", nil
		a.documents = docs
		a.lastGood = a.lastPoll
		if cut != nil {
			a.err = model.Line(cut.Error(), 300)
		}
	}
	was := a.health
	a.health = health(a.health, a.fails, a.goods, windows)
	if cut != nil && a.health == model.HealthUp {
		a.health = model.HealthDegraded
	}
	if held == nil {
		a.parked, a.needsPerson = time.Time{}, false
	}
	refused := held == nil && refusesLogin(err, a.lastError)
	if refused {
		// A refused credential parks the account: repeating the login every poll would
		// only get it locked.
		var ae *AuthError
		a.needsPerson = errors.As(err, &ae) && ae.NeedsPerson
		a.parked = a.lastPoll
		if a.needsPerson {
			a.err = model.Line(err.Error()+"; parked: emitop logs in again only when the operator refreshes", 300)
		} else {
			a.err = model.Line(err.Error()+"; parked: next login at "+a.parked.Add(reloginEvery).Format(time.TimeOnly)+", or at once on refresh", 300)
		}
	}
	if refused || a.lastError != nil && a.lastError.Class == model.ClassAuth {
		a.health = model.HealthRefused
	}
	change := store.HealthChange{At: a.lastPoll, Account: a.cfg.Name, Provider: a.cfg.Provider,
		From: was, To: a.health, Detail: a.err, Problem: a.lastError}
	var shared store.Op
	if p.opts.Share != nil && p.shared.Load() {
		holder, host := p.opts.Share.Member()
		st := a.state(p.clock.Now())
		sum := fingerprint(st.Documents)
		shared = store.ShareState(holder, host, st, sum != a.sharedDocs || holder != a.sharedBy)
		a.sharedDocs, a.sharedBy = sum, holder
	}
	p.mu.Unlock()
	if change.From != change.To {
		p.recordHealth(ctx, change)
	}
	if shared != nil {
		// For the other processes' screens: what this poll learned, whatever else the
		// store took of it.
		if err := p.st.Enqueue(ctx, shared); err != nil && !errors.Is(err, store.ErrBacklogFull) && ctx.Err() == nil {
			p.fail(a.cfg.Name, err)
		}
	}
	if p.opts.Observer != nil {
		p.opts.Observer.Polled(a.cfg.Name, change.At.Sub(start), err)
	}
	return true
}

// refusesLogin reports whether a poll failed because the provider refused the account's
// credentials or its login for a reason a repetition cannot change: a credentials problem,
// or a login or token renewal answered with a 4xx other than 408 and 429 (a malformed
// grant, a client not allowed the grant, a human verification asked for).
func refusesLogin(err error, p *model.Problem) bool {
	if p != nil && p.Class == model.ClassAuth {
		return true
	}
	var ae *AuthError
	if !errors.As(err, &ae) {
		return false
	}
	s := ae.Response.Status
	return s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}

// recordHealth puts an account's change of health in the history, for the shift report.
func (p *Poller) recordHealth(ctx context.Context, c store.HealthChange) {
	if err := p.st.Enqueue(ctx, store.RecordHealth(c)); err != nil && ctx.Err() == nil {
		p.fail(c.Account, err)
	}
}

// interval is how often the account is polled now (under Poller.mu): the governor's
// advice, reloginEvery while a refused credential parks it, 0 (none scheduled) while the
// refusal waits for a person.
func (a *account) interval(g *pace.Governor) time.Duration {
	switch {
	case a.parked.IsZero():
		return g.PollInterval(a.cfg.PollInterval)
	case a.needsPerson:
		return 0
	}
	return reloginEvery
}

// stayParked reports whether a parked account must not be polled now, unasked: its
// refusal needs a person, or reloginEvery has not passed since it was parked.
func (p *Poller) stayParked(a *account) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a.parked.IsZero() {
		return false
	}
	return a.needsPerson || p.clock.Now().Before(a.parked.Add(reloginEvery))
}

// heldError is a poll not sent: the provider stated a wait that has not passed.
type heldError struct {
	account string
	until   time.Time
}

func (e *heldError) Error() string {
	return fmt.Sprintf("%s: not polled: the provider asked to wait until %s", e.account, e.until.Format(time.TimeOnly))
}

// decodedError is the problem a failed poll's error carries: the provider's answer to a
// read or to a login, decoded. nil when no answer came (a transport failure).
func decodedError(d *Dialect, err error) *model.Problem {
	var pe *ProblemError
	if errors.As(err, &pe) {
		p := pe.Problem
		return &p
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		p := d.decode(ae.Response)
		if p.Class == model.ClassOK || p.Class == model.ClassUnknown {
			p.Class = model.ClassAuth // a refused login is a credentials problem, whatever its body
		}
		return &p
	}
	return nil
}

// health is an account's health after a poll: down after downAfter failures in a row,
// up after upAfter good polls (and none of its windows spent), degraded in between.
func health(prev model.Health, fails, goods int, windows []model.Window) model.Health {
	switch {
	case fails >= downAfter:
		return model.HealthDown
	case fails > 0:
		if prev == model.HealthDown {
			return model.HealthDown
		}
		return model.HealthDegraded
	case goods < upAfter && prev != model.HealthUp:
		return model.HealthDegraded
	}
	for _, w := range windows {
		if w.Spent() {
			return model.HealthDegraded
		}
	}
	return model.HealthUp
}

// reconcile turns one listing into the account's open documents and the store ops that
// record what changed. A document the list left out since the last poll changed state
// (accepted, cancelled, deleted): it is read, when the provider offers a read, so that its
// new status reaches the history.
//
// A listed document's detail is read only when the listing lacks what the detail has: a
// rejected document that came without its reason. In every dialect emitop speaks the
// list item is the same object as the detail as far as status and problem go (alegra's
// invoices carry stamp.error, certifactu's aeat{code,description}, factus's bills their
// DIAN rule texts, sv-dte's list items the Ministry's answer with codigoMsg and
// observaciones; sv-dte's detail adds only the DTE as last emitted, which the retry
// engine reads when it resends; alforse has no read). So a detail read happens only for
// a new or changed rejected item without a problem, which a provider's trimmed listing
// could produce. A listing that was cut (complete false) says nothing of the documents it
// left out: they are not read, and the poller forgets them (their rows stay in the store).
func (p *Poller) reconcile(ctx context.Context, a *account, items []Item, now time.Time, complete bool) ([]model.Document, []store.Op) {
	docs := make([]model.Document, 0, len(items))
	ops := make([]store.Op, 0, len(items)+1)
	listed := make(map[string]model.Document, len(items))
	reads := 0
	for _, it := range items {
		prev, seen := a.known[it.Doc.ID]
		if it.Problem == nil && it.Doc.Status == model.StatusRejected && reads < maxReads &&
			(!seen || prev.Status != it.Doc.Status) {
			reads++
			switch detail, err := ReadDocument(ctx, a.client, pace.Poll, it.Doc.ID); {
			case err == nil && detail.Doc.ID == it.Doc.ID:
				it = detail
			case err != nil && !errors.Is(err, ErrNoRead) && ctx.Err() == nil:
				p.fail(a.cfg.Name, fmt.Errorf("read document %s: %w", model.Line(it.Doc.ID, 80), err))
			}
		}
		d := it.Doc
		d.Problem = it.Problem
		d.FirstSeen, d.Changed = now, now
		same := seen && prev.Status == d.Status && sameProblem(prev.Problem, d.Problem)
		if seen {
			d.FirstSeen = cmp.Or(prev.FirstSeen, now)
			if same {
				d.Changed = cmp.Or(prev.Changed, now)
			}
		}
		if !same || prev.Number != d.Number {
			// The store records an event only for a change; an unchanged document
			// would cost the writer a read and nothing more.
			ops = append(ops, store.UpsertDocument(d, it.Raw, now))
		}
		docs = append(docs, d)
		listed[d.ID] = d
	}
	for id, prev := range a.known {
		if _, ok := listed[id]; ok {
			continue
		}
		if !complete {
			continue // a cut listing says nothing of it; forgotten, so memory stays bounded
		}
		if reads >= maxReads {
			listed[id] = prev // still to learn: the next poll reads it
			continue
		}
		reads++
		it, err := ReadDocument(ctx, a.client, pace.Poll, id)
		var pe *ProblemError
		switch {
		case err == nil:
			d := it.Doc
			d.Problem = it.Problem
			ops = append(ops, store.UpsertDocument(d, it.Raw, now))
		case errors.Is(err, ErrNoRead), errors.As(err, &pe) && pe.Problem.Class == model.ClassNotFound:
			// Nothing more can be learned of it.
		case ctx.Err() != nil:
			listed[id] = prev
		default:
			listed[id] = prev
			p.fail(a.cfg.Name, fmt.Errorf("read document %s: %w", model.Line(id, 80), err))
		}
	}
	a.known = listed
	return docs, ops
}

// storedOpen is what the history last knew open of an account: the first poll compares
// the listing with it, so that a document settled while emitop was away is read once.
// The attempts come with it.
func (p *Poller) storedOpen(ctx context.Context, a *account) map[string]model.Document {
	// The attempts come with the documents: the poll need not read them again for a
	// retry that ended before this read (Hold asks for one), only for one after.
	a.retried.Store(false)
	docs, err := p.st.Documents(ctx, store.DocFilter{Account: a.cfg.Name,
		Statuses: []model.Status{model.StatusPending, model.StatusRejected, model.StatusUnknown}, Limit: 10000})
	known := make(map[string]model.Document, len(docs))
	if err != nil {
		if ctx.Err() == nil {
			p.fail(a.cfg.Name, err)
		}
		return known
	}
	a.attempts, a.attemptsAt = make(map[string]int), p.clock.Now()
	for _, d := range docs {
		known[d.ID] = d
		if d.Attempts > 0 {
			a.attempts[d.ID] = d.Attempts
		}
	}
	return known
}

// attempts fills each document's Attempts from the store, where the retry ledger counts
// them, read again at most every attemptsEvery.
func (p *Poller) attempts(ctx context.Context, a *account, docs []model.Document) {
	if len(docs) == 0 {
		return
	}
	// Sharing a store, this process runs every retry of the accounts it polls (package
	// fleet), and is told of each: their attempts change no other way.
	now := p.clock.Now()
	stale := p.opts.Share == nil && now.Sub(a.attemptsAt) >= attemptsEvery
	if a.retried.Swap(false) || a.attempts == nil || stale {
		stored, err := p.st.Documents(ctx, store.DocFilter{Account: a.cfg.Name,
			Statuses: []model.Status{model.StatusPending, model.StatusRejected, model.StatusUnknown}, Limit: 10000})
		if err != nil {
			if ctx.Err() == nil {
				p.fail(a.cfg.Name, err)
			}
			return
		}
		a.attempts, a.attemptsAt = make(map[string]int), now
		for _, d := range stored {
			if d.Attempts > 0 {
				a.attempts[d.ID] = d.Attempts
			}
		}
	}
	for i := range docs {
		docs[i].Attempts = a.attempts[docs[i].ID]
	}
}

// sample is a window as a poll saw it, and whether a sample of it is in the history.
type sample struct {
	limit, remaining int
	written          bool
}

// sampleWindows is the windows worth a history sample, and what to remember for the next
// poll: a window's figures are written when they change (its reset counts down at every
// poll, and is no change), and only once two polls in a row have seen it, so that a server
// naming new windows in every response adds nothing to the history. A window no longer
// seen is forgotten: the memory is bounded by the governor's windows.
func sampleWindows(prev map[string]sample, ws []model.Window) ([]model.Window, map[string]sample) {
	var write []model.Window
	next := make(map[string]sample, len(ws))
	for _, w := range ws {
		s := sample{limit: w.Limit, remaining: w.Remaining}
		p, seen := prev[w.Name]
		switch {
		case !seen:
		case p.written && p.limit == s.limit && p.remaining == s.remaining:
			s.written = true
		default:
			write, s.written = append(write, w), true
		}
		next[w.Name] = s
	}
	return write, next
}

// sameProblem reports whether two problems say the same: class, code and message.
func sameProblem(a, b *model.Problem) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Class == b.Class && a.Code == b.Code && a.Message == b.Message
}

// logRequest puts one exchange in the request log, through the batched writer.
func (p *Poller) logRequest(x Exchange) {
	err := p.st.Enqueue(context.Background(), store.LogRequest(store.Request{
		Account: x.Account, Method: x.Method, Path: x.Path, Status: x.Status,
		Latency: x.Latency, Class: x.Class, At: x.At,
	}))
	if err != nil && !errors.Is(err, store.ErrClosed) {
		p.fail(x.Account, err)
	}
	if p.opts.Observer != nil {
		p.opts.Observer.Exchanged(x)
	}
}

// reportHistory tells OnHistory when history stops being saved and when it is saved
// again; the snapshot carries the same for the screens.
func (p *Poller) reportHistory(s model.Snapshot) {
	gap := s.HistoryGap
	p.mu.Lock()
	was := p.history
	p.history = gap
	p.mu.Unlock()
	if p.opts.OnHistory == nil {
		return
	}
	if !gap.Since.Equal(was.Since) {
		start := gap
		start.Until = time.Time{}
		p.opts.OnHistory(start, p.historyCause())
	}
	if !gap.Until.IsZero() && !gap.Until.Equal(was.Until) {
		p.opts.OnHistory(gap, "")
	}
}

// historyCause is why the store's current or last spell of failed writes began,
// sanitized.
func (p *Poller) historyCause() string {
	if err := p.st.WriteState().Cause; err != nil {
		return model.Line(err.Error(), 300)
	}
	return "writes failed"
}

func (p *Poller) fail(account string, err error) {
	if p.opts.OnError != nil {
		p.opts.OnError(account, err)
	}
}
