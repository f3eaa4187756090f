-- 003: on call. Each account's changes of health, for the shift report, and every
-- notification emitop sent or tried to send, which also tells a restarted emitop what it
-- already said (so it does not say it twice).

-- Changes of an account's health as the poller judged them.
CREATE TABLE health_changes (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    account  TEXT    NOT NULL REFERENCES accounts(name),
    provider TEXT    NOT NULL DEFAULT '',
    from_health TEXT NOT NULL,
    to_health   TEXT NOT NULL,
    class    TEXT    NOT NULL DEFAULT '', -- the failed poll's decoded class; '' when none
    code     TEXT    NOT NULL DEFAULT '', -- the provider's code, as decoded
    detail   TEXT    NOT NULL DEFAULT ''  -- the poll's error, sanitized; '' when it succeeded
) STRICT;
CREATE INDEX health_changes_account ON health_changes(account, at);
CREATE INDEX health_changes_at ON health_changes(at);

-- Notifications: one row per message, sent or not, with what it was about.
CREATE TABLE notifications (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    notifier TEXT    NOT NULL,             -- the [[notify]] entry's name
    kind     TEXT    NOT NULL,             -- health, refused, window, escalate
    key      TEXT    NOT NULL,             -- what it is about, for deduplication
    state    TEXT    NOT NULL,             -- the state it announced
    account  TEXT    NOT NULL DEFAULT '',
    reminder INTEGER NOT NULL DEFAULT 0,   -- 1 when it repeated an unchanged state
    summary  TEXT    NOT NULL,             -- one line, sanitized
    outcome  TEXT    NOT NULL,             -- sent, failed: why, dropped: why
    attempts INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX notifications_key ON notifications(notifier, key, at);
CREATE INDEX notifications_at ON notifications(at);
