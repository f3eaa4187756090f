// Package fleet lets any number of emitop processes, on one host or several, share the
// accounts of one store: each account is polled by one process at a time, the one that
// holds its poll lease, and every retry or deletion of an account's documents is carried
// out under that process's governor, so that no two processes ever spend one account's
// budget unknowingly.
//
// Every process that polls (the dashboard, `emitop poll`, `emitop serve`) is a member: it
// registers in the store and renews its registration three times a lease period, by the
// database's clock. Accounts are spread evenly over the live members that poll: a member
// takes free accounts up to its share and gives back what it holds beyond it. What a
// holder's polls learn is written to the store, and the other members show the account
// as it wrote it (poller.Poller.Show). A member that dies stops renewing: once its
// registration runs out the others take its accounts, within two lease periods. A
// member that cannot reach the store stops polling before its registration can run out:
// by then another may have taken its accounts over.
//
// A retry asked for in a process that does not hold the account becomes a job in the
// store (jobs.go), which the holder runs and whose results reach whoever asked; a
// command (`emitop retry`, `emitop clear`) is a member that polls nothing: it takes the
// account's lease when no live process holds it and runs its job itself, else waits for
// the holder's.
package fleet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"emitop/model"
	"emitop/poller"
	"emitop/retry"
	"emitop/store"
)

// Store is what a member needs of the store (*store.Store, on either engine): the
// registrations and poll leases, the shared states, the jobs, and the retry ledger its
// jobs keep.
type Store interface {
	retry.Ledger
	Join(ctx context.Context, m store.Member, ttl time.Duration) error
	Renew(ctx context.Context, holder string, ttl time.Duration) (store.Fleet, error)
	Claim(ctx context.Context, holder string, accounts []string, n int) ([]string, error)
	ClaimIdle(ctx context.Context, holder string, accounts []string, idle time.Duration) ([]string, error)
	ReleaseAccounts(ctx context.Context, holder string, accounts []string) error
	Leave(ctx context.Context, holder string) error
	AskPoll(ctx context.Context, accounts []string) error
	SharedStates(ctx context.Context, since store.StatesMark, except string) ([]store.SharedState, store.StatesMark, error)
	SubmitJob(ctx context.Context, account, kind string, request []byte, askedBy string) (int64, error)
	Job(ctx context.Context, id int64) (store.Job, error)
	CancelJob(ctx context.Context, id int64) error
	ClaimJobs(ctx context.Context, holder, host string, only int64) ([]store.Job, error)
	JobProgress(ctx context.Context, id int64, holder string, progress []byte) (bool, error)
	FinishJob(ctx context.Context, id int64, holder, state, why string) error
	JobResults(ctx context.Context, job, after int64) ([]store.JobResult, error)
}

// Options tune a Member.
type Options struct {
	// Lease is how long the member's poll leases outlive its last renewal; it renews
	// them three times a lease. 10 s when zero (config.DefaultLease).
	Lease time.Duration
	// Command says that the member is a command (`emitop retry`, `emitop clear`,
	// `emitop poll --once`) rather than a process that polls until stopped: it counts
	// for no share when the accounts are spread, and takes each of its accounts that no
	// live member holds.
	Command bool
	// Client is the client of an account, for the jobs the member runs; nil: the
	// attached poller's.
	Client func(account string) *poller.Client
	// Memory is what the member's retries remember between runs (retry.Memory).
	Memory *retry.Memory
	// Retried, when set, is told of each account's report of a job this member ran
	// (metrics).
	Retried func(model.RetryReport)
	// OnError is told of what went wrong with the store; the member tries again at its
	// next renewal.
	OnError func(error)
}

// jobsEvery is how often a member looks for jobs to run: a retry asked for elsewhere
// starts within it.
const jobsEvery = time.Second

// statesEvery is how often a member reads every shared state again, not only those
// written since it last read.
const statesEvery = time.Minute

// Member is this process in the fleet of processes sharing a store.
type Member struct {
	st       Store
	opt      Options
	poller   *poller.Poller // polls the accounts the member holds, and shows the others; nil: none
	accounts []string
	host     string // host/pid, as the other processes name this one
	ready    chan struct{}
	readyNow sync.Once

	mu     sync.Mutex
	holder string          // the current registration; "" before joining, or after losing one
	owned  map[string]bool // the accounts whose poll lease the registration holds
	valid  time.Time       // the registration lives at least until then (this host's clock)
	lent   bool            // the poller polls the owned accounts (the registration is valid)
	busy   map[string]int  // jobs running here, by account: those accounts are not given back
	jobs   sync.WaitGroup
	// free is how many accounts were free when the last claim found none of ours among
	// them: claiming again is pointless until that changes. -1 before the first claim,
	// which also enters the accounts in the store.
	free int
	// kept is the accounts taken past the share because no other member took them in a
	// lease period (ClaimIdle): they are not given back until the live members that poll
	// change (pollers), when a newcomer may have them in its configuration.
	kept    map[string]bool
	pollers int
	// idle paces the claims of idle accounts: not before next; none while the free
	// accounts stay what they were when two claims in a row found none of ours.
	idle struct {
		next   time.Time
		free   int
		misses int
	}

	mark    store.StatesMark
	readAll time.Time
}

// New makes the member of a process whose configuration holds accounts. Run joins the
// fleet.
func New(st Store, accounts []string, opt Options) *Member {
	if opt.Lease <= 0 {
		opt.Lease = 10 * time.Second
	}
	host, _ := os.Hostname()
	return &Member{st: st, opt: opt, accounts: slices.Clone(accounts), host: fmt.Sprintf("%s/%d", host, os.Getpid()),
		ready: make(chan struct{}), owned: map[string]bool{}, busy: map[string]int{}, kept: map[string]bool{}}
}

// Attach gives the member the poller that polls the accounts it holds and shows the
// others (its poller.Options.Share is the member); call it before Run.
func (m *Member) Attach(p *poller.Poller) {
	m.poller = p
	if m.opt.Client == nil {
		m.opt.Client = p.Client
	}
}

// Member names this process's registration and host (poller.Sharing).
func (m *Member) Member() (holder, host string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holder, m.host
}

// Host is how the other processes name this one: host/pid.
func (m *Member) Host() string { return m.host }

// Ask asks whoever polls the accounts to poll them now (poller.Sharing); it returns at
// once.
func (m *Member) Ask(accounts []string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.opt.Lease)
		defer cancel()
		if err := m.st.AskPoll(ctx, accounts); err != nil {
			m.fail(err)
		}
	}()
}

// Ready is closed once the member has tried to join and take its share for the first
// time.
func (m *Member) Ready() <-chan struct{} { return m.ready }

// margin is how long before its registration may run out a member stops acting on it.
func (m *Member) margin() time.Duration { return m.opt.Lease / 10 }

// Holding is nil while this process holds the account's poll lease, and why not
// otherwise (retry.Fleet): the retry engine asks it before every emission.
func (m *Member) Holding(account string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.holder == "" || !m.owned[account]:
		return fmt.Errorf("%s is polled by another process, which carries out its retries", model.Line(account, 80))
	case time.Now().After(m.valid.Add(-m.margin())):
		return fmt.Errorf("%s: this process could not renew its poll lease in time: another may poll it now", model.Line(account, 80))
	}
	return nil
}

// Run joins the fleet, takes this member's share of the accounts and keeps it, runs the
// jobs of the accounts it holds, and shows the others' states, until ctx ends; then it
// stops its jobs and leaves, freeing its accounts at once for the other members.
func (m *Member) Run(ctx context.Context) error {
	renew := time.NewTicker(m.opt.Lease / 3)
	defer renew.Stop()
	jobs := time.NewTicker(jobsEvery)
	defer jobs.Stop()
	m.tick(ctx)
	m.readyNow.Do(func() { close(m.ready) })
	for {
		select {
		case <-ctx.Done():
			m.jobs.Wait()
			m.leave()
			return nil
		case <-renew.C:
			m.tick(ctx)
		case <-jobs.C:
			m.pickJobs(ctx)
		}
	}
}

// tick renews the registration (joining first when there is none), keeps the poller's
// leases in step with it, reads the other members' states and balances the accounts.
func (m *Member) tick(ctx context.Context) {
	m.mu.Lock()
	holder, valid := m.holder, m.valid
	if holder != "" && !time.Now().Before(valid.Add(-m.margin())) {
		// The registration may have run out (the store could not be reached in time):
		// another member may hold its accounts by now, and no renewal can be had before
		// it runs out. Join again under another name, and take a share again.
		lost := m.ownedList()
		m.holder, m.owned = "", map[string]bool{}
		m.mu.Unlock()
		m.drop(lost, "not polled: this process's poll lease ran out before it could reach the store to renew it; it takes its share again once the store answers")
		m.mu.Lock()
		holder = ""
	}
	m.mu.Unlock()
	sent := time.Now()
	if holder == "" {
		holder = m.newHolder()
		if err := m.st.Join(ctx, store.Member{Holder: holder, Host: m.host, Polls: !m.opt.Command}, m.opt.Lease); err != nil {
			m.fail(fmt.Errorf("fleet: join: %w", err))
			return
		}
		m.mu.Lock()
		m.holder, m.valid, m.free = holder, sent.Add(m.opt.Lease), -1
		m.mu.Unlock()
		valid = sent.Add(m.opt.Lease)
	}
	// A renewal that cannot be had before the registration may run out is no renewal.
	rctx, cancel := context.WithDeadline(ctx, valid.Add(-m.margin()))
	f, err := m.st.Renew(rctx, holder, m.opt.Lease)
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		return
	case err != nil:
		m.fail(fmt.Errorf("fleet: renew: %w", err))
		if !time.Now().Before(valid.Add(-m.margin())) {
			m.lend(false, "not polled: this process cannot reach the store to renew its poll lease ("+model.Line(err.Error(), 160)+"), and another may have taken it")
		}
		return
	case !f.Alive:
		// Another member found the registration run out and took its accounts.
		m.mu.Lock()
		lost := m.ownedList()
		m.holder, m.owned = "", map[string]bool{}
		m.mu.Unlock()
		m.drop(lost, "")
		m.tick(ctx) // join again, under another name
		return
	}
	m.mu.Lock()
	m.valid = sent.Add(m.opt.Lease)
	m.mu.Unlock()
	m.lend(true, "")
	if p := m.poller; p != nil {
		// Alone, there is nobody to show what the polls learn to; once another process
		// joins, it is written for it.
		p.Shared(f.Members > 1)
		for _, a := range f.Asked {
			p.Poke(a)
		}
	}
	m.readStates(ctx)
	m.balance(ctx, holder, f)
}

// newHolder is a name for a new registration, unique to it.
func (m *Member) newHolder() string { return m.host + "/" + rand.Text()[:8] }

// lend has the poller poll the owned accounts (on) or stop polling them, saying why.
func (m *Member) lend(on bool, why string) {
	m.mu.Lock()
	if m.lent == on {
		m.mu.Unlock()
		return
	}
	m.lent = on
	owned := m.ownedList()
	m.mu.Unlock()
	p := m.poller
	if p == nil {
		return
	}
	for _, a := range owned {
		if on {
			p.Hold(a)
		} else {
			p.Drop(a, why)
		}
	}
}

// drop has the poller stop polling accounts.
func (m *Member) drop(accounts []string, why string) {
	if p := m.poller; p != nil {
		for _, a := range accounts {
			p.Drop(a, why)
		}
	}
}

// ownedList is the owned accounts (under mu).
func (m *Member) ownedList() []string {
	out := make([]string, 0, len(m.owned))
	for a := range m.owned {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// share is how many accounts the member should hold: its part of the accounts when they
// are spread over the live members that poll; every one of them for a command.
func (m *Member) share(f store.Fleet) int {
	if m.opt.Command {
		return len(m.accounts)
	}
	n := max(1, f.Pollers)
	return (len(m.accounts) + n - 1) / n
}

// balance takes free accounts up to the member's share and gives back what it holds
// beyond it (never an account whose job runs here). The share assumes that every member
// has every account; where they differ (a dashboard with two of the team's accounts, or
// another team's accounts in the same store), accounts no member below its share can
// take stay free: after a lease period free, a member past its share takes them too
// (claimIdle), and keeps them.
func (m *Member) balance(ctx context.Context, holder string, f store.Fleet) {
	target := m.share(f)
	m.mu.Lock()
	if f.Pollers != m.pollers {
		m.pollers, m.kept = f.Pollers, map[string]bool{}
	}
	kept := 0
	for a := range m.kept {
		if m.owned[a] {
			kept++
		}
	}
	held, tried := len(m.owned)-kept, m.free
	m.mu.Unlock()
	if held < target && f.Free != tried && (f.Free > 0 || tried < 0) {
		taken, err := m.st.Claim(ctx, holder, m.accounts, target-held)
		if err != nil {
			m.fail(fmt.Errorf("fleet: take accounts: %w", err))
			return
		}
		m.mu.Lock()
		m.free = 0
		if len(taken) == 0 {
			m.free = f.Free // none of them is ours: do not ask again until that changes
		}
		for _, a := range taken {
			m.owned[a] = true
			delete(m.kept, a) // taken within the share
		}
		m.mu.Unlock()
		if p := m.poller; p != nil {
			for _, a := range taken {
				p.Hold(a)
			}
		}
		return
	}
	if m.opt.Command {
		return
	}
	if held <= target {
		if f.Free > 0 {
			m.claimIdle(ctx, holder, f)
		}
		return
	}
	m.mu.Lock()
	var give []string
	for _, a := range m.ownedList() {
		if len(give) == held-target {
			break
		}
		if m.busy[a] == 0 && !m.kept[a] {
			give = append(give, a)
			delete(m.owned, a)
		}
	}
	m.mu.Unlock()
	m.drop(give, "")
	if err := m.st.ReleaseAccounts(ctx, holder, give); err != nil {
		// Still this member's in the store: poll them again, and try at the next renewal.
		m.fail(fmt.Errorf("fleet: give accounts back: %w", err))
		m.mu.Lock()
		for _, a := range give {
			m.owned[a] = true
		}
		m.mu.Unlock()
		for _, a := range give {
			m.poller.Hold(a)
		}
	}
}

// claimIdle takes the accounts of this member's that no live member has held for a
// lease period, past its share: no member below its share has them, or it would have
// taken them by now.
func (m *Member) claimIdle(ctx context.Context, holder string, f store.Fleet) {
	now := time.Now()
	if now.Before(m.idle.next) || (f.Free == m.idle.free && m.idle.misses >= 2) {
		return
	}
	taken, err := m.st.ClaimIdle(ctx, holder, m.accounts, m.opt.Lease)
	if err != nil {
		m.fail(fmt.Errorf("fleet: take accounts left to nobody: %w", err))
		return
	}
	if len(taken) == 0 {
		// Those free now may be another member's to take, or not idle long enough yet:
		// ask again a lease later, and no more while they stay as they are.
		if f.Free != m.idle.free {
			m.idle.free, m.idle.misses = f.Free, 0
		}
		m.idle.misses++
		m.idle.next = now.Add(m.opt.Lease)
		return
	}
	m.idle.misses = 0
	m.mu.Lock()
	for _, a := range taken {
		m.owned[a], m.kept[a] = true, true
	}
	m.mu.Unlock()
	if p := m.poller; p != nil {
		for _, a := range taken {
			p.Hold(a)
		}
	}
}

// readStates reads what the other members wrote since the last reading (everything,
// every statesEvery) and has the poller show it.
func (m *Member) readStates(ctx context.Context) {
	p := m.poller
	if p == nil {
		return
	}
	mark := m.mark
	if time.Since(m.readAll) >= statesEvery {
		mark = 0
	}
	m.mu.Lock()
	alone, holder := len(m.owned) == len(m.accounts), m.holder
	m.mu.Unlock()
	if alone {
		return // every account is polled here: nothing to show of another process
	}
	states, next, err := m.st.SharedStates(ctx, mark, holder)
	if err != nil {
		m.fail(fmt.Errorf("fleet: read the other processes' accounts: %w", err))
		return
	}
	if mark == 0 {
		m.readAll = time.Now()
	}
	m.mark = next
	if len(states) > 0 {
		p.Show(states)
	}
}

// leave frees the member's accounts at once, so that the other members take them at
// their next renewal rather than when the registration runs out.
func (m *Member) leave() {
	m.mu.Lock()
	holder, owned := m.holder, m.ownedList()
	m.holder, m.owned = "", map[string]bool{}
	m.mu.Unlock()
	m.drop(owned, "")
	if holder == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.opt.Lease)
	defer cancel()
	if err := m.st.Leave(ctx, holder); err != nil {
		m.fail(fmt.Errorf("fleet: leave: %w", err))
	}
}

func (m *Member) fail(err error) {
	if m.opt.OnError != nil && !errors.Is(err, context.Canceled) {
		m.opt.OnError(err)
	}
}
