-- 001: emitop's history and retry ledger.
-- Times are INTEGER Unix nanoseconds (UTC); durations are INTEGER nanoseconds.
-- Tables are STRICT so a wrong type fails loudly instead of being stored as text.

-- Accounts the history names; every table below except the ledger refers to one.
CREATE TABLE accounts (
    name       TEXT    PRIMARY KEY,
    provider   TEXT    NOT NULL DEFAULT '', -- '' until something tells which
    first_seen INTEGER NOT NULL
) STRICT;

-- Rate-limit windows as observed over time: one row per window per poll, for sparklines.
CREATE TABLE window_samples (
    id        INTEGER PRIMARY KEY,
    account   TEXT    NOT NULL REFERENCES accounts(name),
    name      TEXT    NOT NULL,
    lim       INTEGER NOT NULL, -- -1 when the provider did not say (model.Unknown)
    remaining INTEGER NOT NULL, -- -1 when the provider did not say
    reset     INTEGER NOT NULL, -- nanoseconds until reset from at; negative when not stated
    at        INTEGER NOT NULL
) STRICT;
CREATE INDEX window_samples_series ON window_samples(account, name, at);
CREATE INDEX window_samples_at ON window_samples(at);

-- Documents: the current state of every document emitop has seen.
CREATE TABLE documents (
    id         INTEGER PRIMARY KEY,
    account    TEXT    NOT NULL REFERENCES accounts(name),
    doc_id     TEXT    NOT NULL,
    number     TEXT    NOT NULL DEFAULT '',
    provider   TEXT    NOT NULL DEFAULT '',
    status     TEXT    NOT NULL,
    problem    TEXT,             -- model.Problem as JSON; NULL when none
    class      TEXT    NOT NULL DEFAULT '',
    verdict    TEXT    NOT NULL DEFAULT '',
    code       TEXT    NOT NULL DEFAULT '',
    attempts   INTEGER NOT NULL DEFAULT 0,
    first_seen INTEGER NOT NULL,
    changed    INTEGER NOT NULL,
    UNIQUE (account, doc_id)
) STRICT;
CREATE INDEX documents_account_status ON documents(account, status, changed);
CREATE INDEX documents_account_changed ON documents(account, changed);
CREATE INDEX documents_status_changed ON documents(status, changed);
CREATE INDEX documents_changed ON documents(changed);

-- Events: every change of a document's status or problem, with the raw response.
CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    account  TEXT    NOT NULL REFERENCES accounts(name),
    provider TEXT    NOT NULL DEFAULT '',
    doc_id   TEXT    NOT NULL,
    number   TEXT    NOT NULL DEFAULT '',
    status   TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    problem  TEXT,             -- model.Problem as JSON; NULL when none
    raw      BLOB              -- at most 65536 bytes (model.MaxRaw); NULL when none
) STRICT;
CREATE INDEX events_doc ON events(account, doc_id, at);
CREATE INDEX events_account ON events(account, at);
CREATE INDEX events_at ON events(at);

-- Request log: every HTTP request emitop made, kept for a retention period.
CREATE TABLE requests (
    id      INTEGER PRIMARY KEY,
    account TEXT    NOT NULL REFERENCES accounts(name),
    method  TEXT    NOT NULL,
    path    TEXT    NOT NULL, -- without the query string
    status  INTEGER NOT NULL, -- 0 when no response came
    latency INTEGER NOT NULL,
    class   TEXT    NOT NULL DEFAULT '',
    at      INTEGER NOT NULL
) STRICT;
CREATE INDEX requests_at ON requests(at);
CREATE INDEX requests_account ON requests(account, at);

-- Operator actions: who did what to which document, and how it ended.
CREATE TABLE actions (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    operator    TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL,
    account     TEXT    NOT NULL REFERENCES accounts(name),
    doc_id      TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    outcome     TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX actions_account ON actions(account, at);
CREATE INDEX actions_at ON actions(at);

-- Retry ledger: who may touch a document now. A lease past its expiry is free.
CREATE TABLE leases (
    account TEXT    NOT NULL,
    doc_id  TEXT    NOT NULL,
    holder  TEXT    NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (account, doc_id)
) STRICT, WITHOUT ROWID;

-- Retry ledger: an emission's intent, written (synchronous=FULL) before the request leaves,
-- settled with its outcome afterwards. An unsettled intent after a crash means "unknown".
CREATE TABLE intents (
    id       INTEGER PRIMARY KEY,
    account  TEXT    NOT NULL,
    doc_id   TEXT    NOT NULL,
    holder   TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    request  TEXT    NOT NULL DEFAULT '', -- redacted summary, never credentials
    at       INTEGER NOT NULL,
    settled  INTEGER,                     -- NULL while open
    outcome  TEXT    NOT NULL DEFAULT '',
    problem  TEXT,
    raw      BLOB
) STRICT;
CREATE INDEX intents_doc ON intents(account, doc_id);
CREATE INDEX intents_open ON intents(account, id) WHERE settled IS NULL;
