package model

import "time"

// Account is one configured provider account, as operators name it.
type Account struct {
	Name     string // unique; what operators see and type
	Provider string // the name of its provider's dialect
}

// Document is one document (invoice, DTE, bill, payment) of an account as emitop last saw it.
type Document struct {
	Account   string
	Provider  string
	ID        string // the provider's id: what its endpoints take
	Number    string // the number a person reads (prefix + number, numeroControl, series)
	Status    Status
	Problem   *Problem // the last problem decoded for it; nil when none
	Attempts  int      // emissions emitop has recorded for it
	FirstSeen time.Time
	Changed   time.Time // when its status or problem last changed
}

// Health is an account's reachability as the poller judges it.
type Health string

// Account health: down after 3 failed polls in a row, up again after 2 good ones;
// refused as soon as the provider refuses the account's credentials.
const (
	HealthUp       Health = "up"
	HealthDegraded Health = "degraded" // a poll failed, or a window is spent
	HealthDown     Health = "down"
	HealthRefused  Health = "refused" // the provider refused the credentials: polling cannot help
)

// AccountState is what one poll learned of one account.
type AccountState struct {
	Account      Account
	Health       Health
	Windows      []Window
	PollInterval time.Duration // the interval the poller currently uses
	BaseInterval time.Duration // the configured interval; PollInterval is longer while a window runs low or the provider asked to wait
	Reserve      float64       // share of every window emitop never spends
	LastPoll     time.Time     // when the last poll finished; zero before the first
	LastGood     time.Time     // when a poll last succeeded; zero while the account was never reached
	Err          string        // the last poll's error, sanitized; "" when it succeeded
	LastError    *Problem      // the last poll's error decoded; nil when it succeeded or carried no response
	Documents    []Document    // pending and rejected documents
	// Parked says that the provider refused the account's credentials and emitop stopped
	// polling it, so as not to get it locked: unasked it logs in again at NextLogin, or,
	// when NextLogin is zero, only when the operator refreshes (the refusal needs a person).
	Parked    bool
	NextLogin time.Time
	// PolledBy names the emitop process that polls the account (host/pid) when another
	// process than the one showing it does, sharing its store; "" when this one does.
	// The state is then as that process last wrote it: LastPoll says how fresh it is.
	PolledBy string
	// Unpolled says why no process is known to poll the account now, when this one let
	// its poll lease go (the store could not be reached to renew it); "" otherwise.
	Unpolled string
}

// Snapshot is the state of every account after one poll: what the poller publishes to
// the dashboard and to SSH sessions.
type Snapshot struct {
	At         time.Time
	Accounts   []AccountState
	History    string     // why history is not being saved (a full disk...), sanitized; "" when it is
	HistoryGap HistoryGap // the current or last spell when history was not saved
}

// HistoryGap is a spell when history was not being saved: the database refused writes
// (another process held its lock, the disk was full). Writes wait in memory meanwhile and
// are committed when it ends; those beyond the store's bound are lost, and counted.
type HistoryGap struct {
	Since   time.Time // when writes began to fail; zero when they never did
	Until   time.Time // when a write succeeded again; zero while the gap lasts
	Waiting int       // writes waiting to be committed
	Lost    int       // writes refused during the gap because too many were waiting
}

// Open reports whether history is not being saved now.
func (g HistoryGap) Open() bool { return !g.Since.IsZero() && g.Until.IsZero() }
