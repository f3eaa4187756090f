package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"emitop/model"
)

// HealthChange is one change of an account's health, as the poller judged it after a poll.
type HealthChange struct {
	At       time.Time
	Account  string
	Provider string
	From, To model.Health
	Detail   string         // the poll's error, sanitized; "" when it succeeded
	Problem  *model.Problem // the error decoded; nil when none (only its class and code are kept)
}

// RecordHealth records a change of an account's health. A zero At means now.
func RecordHealth(c HealthChange) Op { return healthOp(c) }

type healthOp HealthChange

func (o healthOp) check() error {
	if o.Account == "" || o.To == "" {
		return fmt.Errorf("health change of %q: empty account or health", o.Account)
	}
	return nil
}

func (o healthOp) size() int { return opBase + len(o.Detail) }

func (o healthOp) apply(t *txn) error {
	at := o.At
	if at.IsZero() {
		at = t.now()
	}
	if err := t.ensureAccount(o.Account, o.Provider); err != nil {
		return err
	}
	class, _, code := problemColumns(o.Problem)
	if _, err := t.tx.ExecContext(t.ctx, `INSERT INTO health_changes (at, account, provider, from_health, to_health,
		class, code, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, nanos(at), o.Account, o.Provider, string(o.From),
		string(o.To), class, code, o.Detail); err != nil {
		return fmt.Errorf("health change of %s: %w", o.Account, err)
	}
	return nil
}

// HealthChanges lists the changes of health since since (every one when zero), oldest
// first, at most limit (DefaultLimit when ≤ 0) of each account's most recent: an account
// whose health flaps all night cannot crowd the others out, nor grow what is read.
func (s *Store) HealthChanges(ctx context.Context, since time.Time, limitN int) ([]HealthChange, error) {
	w := logWhere("", "", since)
	lim := w.arg(limit(limitN))
	rows, err := s.read.QueryContext(ctx, `SELECT at, account, provider, from_health, to_health, class, code, detail
		FROM (SELECT *, row_number() OVER (PARTITION BY account ORDER BY at DESC, id DESC) AS n
			FROM health_changes`+w.String()+`) AS recent WHERE n <= `+lim+` ORDER BY at, id`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: health changes: %w", err)
	}
	defer rows.Close()
	var out []HealthChange
	for rows.Next() {
		var c HealthChange
		var at int64
		var from, to, class, code string
		if err := rows.Scan(&at, &c.Account, &c.Provider, &from, &to, &class, &code, &c.Detail); err != nil {
			return nil, fmt.Errorf("store: health changes: %w", err)
		}
		c.At, c.From, c.To = fromNanos(at), model.Health(from), model.Health(to)
		if class != "" || code != "" {
			c.Problem = &model.Problem{Provider: c.Provider, Class: model.Class(class), Code: code}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: health changes: %w", err)
	}
	return out, nil
}

// Notification is one message a [[notify]] entry sent, or tried to send.
type Notification struct {
	At       time.Time
	Notifier string // the entry's name
	Kind     string // health, refused, window, escalate
	Key      string // what it is about, for deduplication
	State    string // the state it announced
	Account  string
	Reminder bool   // it repeated a state already announced
	Summary  string // one line, sanitized
	Outcome  string // "sent", "failed: why" or "dropped: why"
	Attempts int
}

// Sent reports whether the notification reached its receiver.
func (n Notification) Sent() bool { return n.Outcome == NotificationSent }

// NotificationSent is the outcome of a notification its receiver took.
const NotificationSent = "sent"

// RecordNotification records a notification. A zero At means now.
func RecordNotification(n Notification) Op { return notificationOp(n) }

type notificationOp Notification

func (o notificationOp) check() error {
	if o.Notifier == "" || o.Kind == "" || o.Key == "" || o.Outcome == "" {
		return errors.New("notification: empty notifier, kind, key or outcome")
	}
	return nil
}

func (o notificationOp) size() int { return opBase + len(o.Key) + len(o.Summary) + len(o.Outcome) }

func (o notificationOp) apply(t *txn) error {
	at := o.At
	if at.IsZero() {
		at = t.now()
	}
	if o.Account != "" {
		if err := t.ensureAccount(o.Account, ""); err != nil {
			return err
		}
	}
	reminder := 0
	if o.Reminder {
		reminder = 1
	}
	if _, err := t.tx.ExecContext(t.ctx, `INSERT INTO notifications (at, notifier, kind, key, state, account,
		reminder, summary, outcome, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, nanos(at), o.Notifier,
		o.Kind, o.Key, o.State, o.Account, reminder, o.Summary, o.Outcome, o.Attempts); err != nil {
		return fmt.Errorf("notification %s: %w", o.Notifier, err)
	}
	return nil
}

// NotificationFilter selects notifications; zero fields select everything.
type NotificationFilter struct {
	Notifier string
	Since    time.Time
	Limit    int // ≤ 0 means DefaultLimit
}

// Notifications lists notifications, newest first.
func (s *Store) Notifications(ctx context.Context, f NotificationFilter) ([]Notification, error) {
	w := logWhere("", "", f.Since)
	if f.Notifier != "" {
		w.add("notifier = ?", f.Notifier)
	}
	lim := w.arg(limit(f.Limit))
	rows, err := s.read.QueryContext(ctx, `SELECT at, notifier, kind, key, state, account, reminder, summary,
		outcome, attempts FROM notifications`+w.String()+` ORDER BY at DESC, id DESC LIMIT `+lim, w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: notifications: %w", err)
	}
	return scanNotifications(rows)
}

// LastSent is, for each key a notifier has announced, the latest notification its
// receiver took: what a restarted emitop already said, and when.
func (s *Store) LastSent(ctx context.Context, notifier string) (map[string]Notification, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT at, notifier, kind, key, state, account, reminder, summary,
		outcome, attempts FROM notifications AS n WHERE notifier = $1 AND outcome = $2 AND id = (
		SELECT id FROM notifications WHERE notifier = $1 AND key = n.key AND outcome = $2 ORDER BY at DESC, id DESC LIMIT 1)`,
		notifier, NotificationSent)
	if err != nil {
		return nil, fmt.Errorf("store: notifications: %w", err)
	}
	list, err := scanNotifications(rows)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Notification, len(list))
	for _, n := range list {
		out[n.Key] = n
	}
	return out, nil
}

func scanNotifications(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) ([]Notification, error) {
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		var at int64
		var reminder int
		if err := rows.Scan(&at, &n.Notifier, &n.Kind, &n.Key, &n.State, &n.Account, &reminder, &n.Summary,
			&n.Outcome, &n.Attempts); err != nil {
			return nil, fmt.Errorf("store: notifications: %w", err)
		}
		n.At, n.Reminder = fromNanos(at), reminder == 1
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: notifications: %w", err)
	}
	return out, nil
}
