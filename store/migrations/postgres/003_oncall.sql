-- 003: on call, as migrations/sqlite/003_oncall.sql. Each account's changes of health, for
-- the shift report, and every notification emitop sent or tried to send.

-- Changes of an account's health as the poller judged them.
CREATE TABLE health_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          bigint NOT NULL,
    account     text   NOT NULL REFERENCES accounts(name),
    provider    text   NOT NULL DEFAULT '',
    from_health text   NOT NULL,
    to_health   text   NOT NULL,
    class       text   NOT NULL DEFAULT '', -- the failed poll's decoded class; '' when none
    code        text   NOT NULL DEFAULT '', -- the provider's code, as decoded
    detail      text   NOT NULL DEFAULT ''  -- the poll's error, sanitized; '' when it succeeded
);
CREATE INDEX health_changes_account ON health_changes(account, at);
CREATE INDEX health_changes_at ON health_changes(at);

-- Notifications: one row per message, sent or not, with what it was about.
CREATE TABLE notifications (
    id       bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       bigint  NOT NULL,
    notifier text    NOT NULL,           -- the [[notify]] entry's name
    kind     text    NOT NULL,           -- health, refused, window, escalate
    key      text    NOT NULL,           -- what it is about, for deduplication
    state    text    NOT NULL,           -- the state it announced
    account  text    NOT NULL DEFAULT '',
    reminder integer NOT NULL DEFAULT 0, -- 1 when it repeated an unchanged state
    summary  text    NOT NULL,           -- one line, sanitized
    outcome  text    NOT NULL,           -- sent, failed: why, dropped: why
    attempts integer NOT NULL DEFAULT 0
);
CREATE INDEX notifications_key ON notifications(notifier, key, at);
CREATE INDEX notifications_at ON notifications(at);
