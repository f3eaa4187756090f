package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"emitop/model"
)

// The fleet: every emitop process sharing a store registers as a member and renews its
// registration, and each account is polled by the one member that holds its poll lease.
// A member whose registration runs out is deleted by the first member that takes one of
// its accounts (Claim), in the transaction that takes it; a renewal only succeeds while
// the registration exists (Renew). Between the two, the database's row lock decides: a
// registration renewed in time is never deleted, and one deleted is never renewed, so no
// account is ever held by two live members. Every time here is the database's clock.

// Member is one process sharing the store's accounts.
type Member struct {
	Holder string // unique to this registration (host/pid/random): a member that lost it joins again under another
	Host   string // how the other processes name it: host/pid
	// Polls says that the member polls, and counts when accounts are spread over the
	// members; false for a command that holds an account for a while (retry, clear,
	// poll --once).
	Polls bool
}

// Fleet is what a member's renewal learns.
type Fleet struct {
	// Alive says that the registration still existed and is renewed. False: another
	// member found it run out and took its accounts; every lease it held is lost, and it
	// must join again under another name.
	Alive   bool
	Members int      // live members, commands included
	Pollers int      // live members that poll
	Free    int      // accounts no live member holds
	Asked   []string // of the member's accounts, those another process asked to poll now (the asks are cleared)
}

// Join registers m for ttl.
func (s *Store) Join(ctx context.Context, m Member, ttl time.Duration) error {
	if s.ledger == nil {
		return ErrReadOnly
	}
	if m.Holder == "" || ttl <= 0 {
		return fmt.Errorf("store: join %q for %v: empty name or ttl", m.Holder, ttl)
	}
	polls := 0
	if m.Polls {
		polls = 1
	}
	c := s.eng.clock
	if _, err := s.ledger.ExecContext(ctx, `INSERT INTO members (holder, host, polls, started, expires)
		VALUES ($1, $2, $3, `+c+`, `+c+` + $4)`, m.Holder, m.Host, polls, int64(ttl)); err != nil {
		return fmt.Errorf("store: join %s: %w", m.Host, err)
	}
	return nil
}

// Renew renews holder's registration for ttl, and says how the fleet stands. A
// registration that ran out but that no member has deleted yet is renewed: no account of
// it was taken.
func (s *Store) Renew(ctx context.Context, holder string, ttl time.Duration) (Fleet, error) {
	var f Fleet
	if s.ledger == nil {
		return f, ErrReadOnly
	}
	c := s.eng.clock
	err := s.inLedger(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE members SET expires = `+c+` + $2 WHERE holder = $1`, holder, int64(ttl))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		f.Alive = true
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(polls), 0) FROM members WHERE expires > `+c).Scan(&f.Members, &f.Pollers); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM poll_leases l WHERE l.holder = ''
			OR NOT EXISTS (SELECT 1 FROM members m WHERE m.holder = l.holder AND m.expires > `+c+`)`).Scan(&f.Free); err != nil {
			return err
		}
		if f.Asked, err = column(ctx, tx, `SELECT account FROM poll_leases WHERE holder = $1 AND asked <> 0`, holder); err != nil || len(f.Asked) == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE poll_leases SET asked = 0 WHERE holder = $1 AND asked <> 0`, holder)
		return err
	})
	if err != nil {
		return Fleet{}, fmt.Errorf("store: renew %s: %w", holder, err)
	}
	return f, nil
}

// Claim takes, for holder, up to n of accounts that no live member holds, chosen at
// random so that members claiming at once take different ones, and returns those taken.
// Members whose registration ran out are deleted first: from then on they can never
// renew it. A holder that is no longer a member takes nothing.
func (s *Store) Claim(ctx context.Context, holder string, accounts []string, n int) ([]string, error) {
	return s.claim(ctx, holder, accounts, n, 0)
}

// ClaimIdle takes, for holder, every one of accounts that no live member has held for at
// least idle (by the database's clock): accounts left free that long are ones no member
// below its share can take (each claims at every renewal), so a member past its share
// takes them rather than leave them unpolled (processes sharing a store with different
// accounts each).
func (s *Store) ClaimIdle(ctx context.Context, holder string, accounts []string, idle time.Duration) ([]string, error) {
	return s.claim(ctx, holder, accounts, len(accounts), idle)
}

// claim takes up to n of accounts free for at least idle.
func (s *Store) claim(ctx context.Context, holder string, accounts []string, n int, idle time.Duration) ([]string, error) {
	if s.ledger == nil {
		return nil, ErrReadOnly
	}
	if len(accounts) == 0 || n <= 0 {
		return nil, nil
	}
	list, err := json.Marshal(accounts)
	if err != nil {
		return nil, fmt.Errorf("store: claim: %w", err)
	}
	c, each := s.eng.clock, fmt.Sprintf(s.eng.each, "$1")
	var taken []string
	err = s.inLedger(ctx, func(tx *sql.Tx) error {
		dead, err := column(ctx, tx, `DELETE FROM members WHERE expires <= `+c+` RETURNING holder`)
		if err != nil {
			return err
		}
		if len(dead) > 0 {
			// Their accounts are free from now on (since: when an account last changed
			// hands). Only the members deleted here: the row lock of the deletion, not
			// a reading of the expiry, decides against a renewal under way.
			gone, err := json.Marshal(dead)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE poll_leases SET holder = '', since = `+c+`
				WHERE holder IN (SELECT v FROM `+fmt.Sprintf(s.eng.each, "$1")+` AS l)`, string(gone)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO poll_leases (account, since) SELECT v, `+c+` FROM `+each+` AS l WHERE true
			ON CONFLICT (account) DO NOTHING`, string(list)); err != nil {
			return err
		}
		taken, err = column(ctx, tx, `UPDATE poll_leases SET holder = $2, since = `+c+`, asked = 0
			WHERE account IN (SELECT account FROM poll_leases
				WHERE account IN (SELECT v FROM `+each+` AS l)
				AND (holder = '' OR holder NOT IN (SELECT holder FROM members))
				AND since <= `+c+` - $4
				ORDER BY random() LIMIT $3`+s.eng.skipLocked+`)
			AND EXISTS (SELECT 1 FROM members WHERE holder = $2)
			RETURNING account`, string(list), holder, n, int64(idle))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim for %s: %w", holder, err)
	}
	return taken, nil
}

// ReleaseAccounts gives up holder's poll leases on accounts: they are free at once.
func (s *Store) ReleaseAccounts(ctx context.Context, holder string, accounts []string) error {
	if s.ledger == nil {
		return ErrReadOnly
	}
	if len(accounts) == 0 {
		return nil
	}
	list, err := json.Marshal(accounts)
	if err == nil {
		_, err = s.ledger.ExecContext(ctx, `UPDATE poll_leases SET holder = '', since = `+s.eng.clock+` WHERE holder = $1
			AND account IN (SELECT v FROM `+fmt.Sprintf(s.eng.each, "$2")+` AS l)`, holder, string(list))
	}
	if err != nil {
		return fmt.Errorf("store: release accounts of %s: %w", holder, err)
	}
	return nil
}

// Leave ends holder's registration and frees every account it held.
func (s *Store) Leave(ctx context.Context, holder string) error {
	if s.ledger == nil {
		return ErrReadOnly
	}
	err := s.inLedger(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE poll_leases SET holder = '', since = `+s.eng.clock+` WHERE holder = $1`, holder); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM members WHERE holder = $1`, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: leave %s: %w", holder, err)
	}
	return nil
}

// AskPoll asks the members holding accounts to poll them now (an operator's refresh in
// another process); Renew tells them.
func (s *Store) AskPoll(ctx context.Context, accounts []string) error {
	if s.ledger == nil {
		return ErrReadOnly
	}
	if len(accounts) == 0 {
		return nil
	}
	list, err := json.Marshal(accounts)
	if err == nil {
		_, err = s.ledger.ExecContext(ctx, `UPDATE poll_leases SET asked = `+s.eng.clock+` WHERE holder <> ''
			AND account IN (SELECT v FROM `+fmt.Sprintf(s.eng.each, "$1")+` AS l)`, string(list))
	}
	if err != nil {
		return fmt.Errorf("store: ask for polls: %w", err)
	}
	return nil
}

// Holder names the live member holding the account's poll lease as the other processes
// name it (host/pid); "" when none does.
func (s *Store) Holder(ctx context.Context, account string) (string, error) {
	var host string
	err := s.read.QueryRowContext(ctx, `SELECT m.host FROM poll_leases l JOIN members m ON m.holder = l.holder
		WHERE l.account = $1 AND m.expires > `+s.eng.clock, account).Scan(&host)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: who polls %s: %w", account, err)
	}
	return host, nil
}

// Clock is the database's clock now: the one leases, registrations and intents' times
// are read by, whichever host asks.
func (s *Store) Clock(ctx context.Context) (time.Time, error) {
	var n int64
	if err := s.read.QueryRowContext(ctx, `SELECT `+s.eng.clock).Scan(&n); err != nil {
		return time.Time{}, fmt.Errorf("store: clock: %w", err)
	}
	return time.Unix(0, n), nil
}

// inLedger runs fn in one transaction on the ledger's connection (SQLite: BEGIN
// IMMEDIATE, the write lock from the start).
func (s *Store) inLedger(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.ledger.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// strings_ runs a query of one text column and collects it.
func column(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// SharedState is an account as the member polling it last wrote it (ShareState).
type SharedState struct {
	State  model.AccountState
	Holder string
	Host   string
	// Written is when it was written, by its holder's clock; Age how long ago that was,
	// by the database's: together they move the state's times onto a reader's clock,
	// whatever the hosts' clocks say.
	Written time.Time
	Age     time.Duration
	// SameDocuments says that the documents did not change since the mark the reading
	// started from: State carries none, and those read before stand.
	SameDocuments bool
}

// StatesMark is where a reading of shared states left off (SharedStates).
type StatesMark int64

// statesSlack is how far before the last mark SharedStates reads again: a state is
// stamped when its batch's transaction writes it and seen once that commits, a little
// later. Tests shorten it.
var statesSlack = 5 * time.Second

// ShareState records, through the batched writer, what holder's last poll of an account
// learned, for the other members to show; its documents only when docs is true (they
// changed since the holder last shared them: the ones written before stand otherwise).
// It is not written when another member holds the account's poll lease by then.
func ShareState(holder, host string, a model.AccountState, docs bool) Op {
	return stateOp{holder: holder, host: host, state: a, docs: docs}
}

type stateOp struct {
	holder, host string
	state        model.AccountState
	docs         bool
}

func (o stateOp) check() error {
	if o.holder == "" || o.state.Account.Name == "" {
		return errors.New("account state: empty holder or account")
	}
	return nil
}

func (o stateOp) size() int {
	n := opBase + len(o.state.Err) + 64*len(o.state.Windows)
	if o.docs {
		for _, d := range o.state.Documents {
			n += 128 + problemSize(d.Problem)
		}
	}
	return n
}

func (o stateOp) apply(t *txn) error {
	w := encodeState(o.state)
	w.Written = nanos(t.now())
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("account state %s: %w", o.state.Account.Name, err)
	}
	docs, changed := "", 0
	if o.docs {
		d, err := json.Marshal(encodeDocuments(o.state.Documents))
		if err != nil {
			return fmt.Errorf("account state %s: %w", o.state.Account.Name, err)
		}
		docs, changed = string(d), 1
	}
	if _, err := t.stmt(sState).ExecContext(t.ctx, o.state.Account.Name, o.holder, o.host, string(b), docs, changed); err != nil {
		return fmt.Errorf("account state %s: %w", o.state.Account.Name, err)
	}
	return nil
}

// SharedStates reads the accounts' shared states written since mark (all of them for a
// zero mark) by any holder but except, and the mark to read from next time. A state read
// before may come again; its documents come only when they changed since the mark.
func (s *Store) SharedStates(ctx context.Context, since StatesMark, except string) ([]SharedState, StatesMark, error) {
	var now int64
	if err := s.read.QueryRowContext(ctx, `SELECT `+s.eng.clock).Scan(&now); err != nil {
		return nil, since, fmt.Errorf("store: shared states: %w", err)
	}
	from := int64(0)
	if since != 0 {
		from = int64(since) - int64(statesSlack)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT account, holder, host, $1 - written, state,
		CASE WHEN docs_written > $2 THEN documents ELSE NULL END FROM account_states
		WHERE written > $2 AND holder <> $3`, now, from, except)
	if err != nil {
		return nil, since, fmt.Errorf("store: shared states: %w", err)
	}
	defer rows.Close()
	var out []SharedState
	for rows.Next() {
		var st SharedState
		var age int64
		var raw string
		var docs sql.NullString
		if err := rows.Scan(&st.State.Account.Name, &st.Holder, &st.Host, &age, &raw, &docs); err != nil {
			return nil, since, fmt.Errorf("store: shared states: %w", err)
		}
		w, err := readState(raw, docs)
		name := st.State.Account.Name
		if err == nil {
			st.State, err = w.decode(name)
		}
		st.Written, st.Age, st.SameDocuments = fromNanos(w.Written), max(0, time.Duration(age)), !docs.Valid
		if err != nil {
			// Written by another version of emitop, or damaged: this account says so, the
			// others are shown as usual, and the documents shown before stand.
			st.State = model.AccountState{Account: model.Account{Name: name}, Health: model.HealthDegraded,
				Err: "its state as " + model.Line(st.Host, 80) + " wrote it cannot be read: " + model.Line(err.Error(), 200)}
			st.Written, st.SameDocuments = time.Now().Add(-st.Age), true
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, since, fmt.Errorf("store: shared states: %w", err)
	}
	return out, StatesMark(now), nil
}

// readState decodes a shared state's row: the state, and its documents when the row
// carries them.
func readState(raw string, docs sql.NullString) (stateWire, error) {
	var w stateWire
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return w, err
	}
	if docs.Valid && docs.String != "" {
		if err := json.Unmarshal([]byte(docs.String), &w.Documents); err != nil {
			return w, fmt.Errorf("documents: %w", err)
		}
	}
	return w, nil
}

// stateWire is an account state as account_states keeps it: every field, times as Unix
// nanoseconds, problems as the store writes them everywhere else.
type stateWire struct {
	Written      int64        `json:"written"` // by the holder's clock
	Provider     string       `json:"provider"`
	Health       model.Health `json:"health"`
	Windows      []windowWire `json:"windows,omitempty"`
	PollInterval int64        `json:"poll_interval"`
	BaseInterval int64        `json:"base_interval"`
	Reserve      float64      `json:"reserve"`
	LastPoll     int64        `json:"last_poll"`
	LastGood     int64        `json:"last_good"`
	Err          string       `json:"err,omitempty"`
	LastError    *string      `json:"last_error,omitempty"`
	Documents    []docWire    `json:"-"` // in their own column
	Parked       bool         `json:"parked,omitempty"`
	NextLogin    int64        `json:"next_login,omitempty"`
}

type windowWire struct {
	Name       string `json:"name"`
	Limit      int    `json:"limit"`
	Remaining  int    `json:"remaining"`
	Reset      int64  `json:"reset"`
	Observed   int64  `json:"observed"`
	ExhaustsIn int64  `json:"exhausts_in"`
}

type docWire struct {
	Provider  string       `json:"provider,omitempty"`
	ID        string       `json:"id"`
	Number    string       `json:"number,omitempty"`
	Status    model.Status `json:"status"`
	Problem   *string      `json:"problem,omitempty"`
	Attempts  int          `json:"attempts,omitempty"`
	FirstSeen int64        `json:"first_seen"`
	Changed   int64        `json:"changed"`
}

func encodeState(a model.AccountState) stateWire {
	w := stateWire{Provider: a.Account.Provider, Health: a.Health, PollInterval: int64(a.PollInterval),
		BaseInterval: int64(a.BaseInterval), Reserve: a.Reserve, LastPoll: nanos(a.LastPoll), LastGood: nanos(a.LastGood),
		Err: a.Err, LastError: problemText(a.LastError), Parked: a.Parked, NextLogin: nanos(a.NextLogin)}
	for _, x := range a.Windows {
		w.Windows = append(w.Windows, windowWire{Name: x.Name, Limit: x.Limit, Remaining: x.Remaining, Reset: int64(x.Reset),
			Observed: nanos(x.Observed), ExhaustsIn: int64(x.ExhaustsIn)})
	}
	return w
}

func encodeDocuments(docs []model.Document) []docWire {
	out := make([]docWire, 0, len(docs))
	for _, d := range docs {
		out = append(out, docWire{Provider: d.Provider, ID: d.ID, Number: d.Number, Status: d.Status,
			Problem: problemText(d.Problem), Attempts: d.Attempts, FirstSeen: nanos(d.FirstSeen), Changed: nanos(d.Changed)})
	}
	return out
}

func (w stateWire) decode(account string) (model.AccountState, error) {
	a := model.AccountState{Account: model.Account{Name: account, Provider: w.Provider}, Health: w.Health,
		PollInterval: time.Duration(w.PollInterval), BaseInterval: time.Duration(w.BaseInterval), Reserve: w.Reserve,
		LastPoll: fromNanos(w.LastPoll), LastGood: fromNanos(w.LastGood), Err: w.Err, Parked: w.Parked,
		NextLogin: fromNanos(w.NextLogin)}
	var err error
	if a.LastError, err = parseProblemText(w.LastError); err != nil {
		return a, err
	}
	for _, x := range w.Windows {
		a.Windows = append(a.Windows, model.Window{Name: x.Name, Limit: x.Limit, Remaining: x.Remaining,
			Reset: time.Duration(x.Reset), Observed: fromNanos(x.Observed), ExhaustsIn: time.Duration(x.ExhaustsIn)})
	}
	if w.Documents != nil {
		a.Documents = make([]model.Document, 0, len(w.Documents))
	}
	for _, d := range w.Documents {
		doc := model.Document{Account: account, Provider: d.Provider, ID: d.ID, Number: d.Number, Status: d.Status,
			Attempts: d.Attempts, FirstSeen: fromNanos(d.FirstSeen), Changed: fromNanos(d.Changed)}
		if doc.Problem, err = parseProblemText(d.Problem); err != nil {
			return a, err
		}
		a.Documents = append(a.Documents, doc)
	}
	return a, nil
}

// problemText is a problem as the store writes it, nil for none.
func problemText(p *model.Problem) *string {
	if p == nil {
		return nil
	}
	j, err := problemJSON(p)
	if err != nil || !j.Valid {
		return nil
	}
	return &j.String
}

// parseProblemText reads what problemText wrote.
func parseProblemText(s *string) (*model.Problem, error) {
	if s == nil {
		return nil, nil
	}
	return parseProblem(sql.NullString{String: *s, Valid: true})
}
