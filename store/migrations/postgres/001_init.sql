-- 001: emitop's history and retry ledger, on PostgreSQL. The same tables, columns and
-- indexes as migrations/sqlite/001_init.sql, so both engines answer one contract.
-- Times are bigint Unix nanoseconds (UTC), durations bigint nanoseconds, as on SQLite: an
-- instant reads back exactly as it was written, whichever engine stored it.

-- Accounts the history names; every table below except the ledger refers to one.
CREATE TABLE accounts (
    name       text   PRIMARY KEY,
    provider   text   NOT NULL DEFAULT '', -- '' until something tells which
    first_seen bigint NOT NULL
);

-- Rate-limit windows as observed over time: one row per window per poll, for sparklines.
CREATE TABLE window_samples (
    id        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account   text    NOT NULL REFERENCES accounts(name),
    name      text    NOT NULL,
    lim       integer NOT NULL, -- -1 when the provider did not say (model.Unknown)
    remaining integer NOT NULL, -- -1 when the provider did not say
    reset     bigint  NOT NULL, -- nanoseconds until reset from at; negative when not stated
    at        bigint  NOT NULL
);
CREATE INDEX window_samples_series ON window_samples(account, name, at);
CREATE INDEX window_samples_at ON window_samples(at);

-- Documents: the current state of every document emitop has seen.
CREATE TABLE documents (
    id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account    text    NOT NULL REFERENCES accounts(name),
    doc_id     text    NOT NULL,
    number     text    NOT NULL DEFAULT '',
    provider   text    NOT NULL DEFAULT '',
    status     text    NOT NULL,
    problem    text,             -- model.Problem as JSON; NULL when none
    class      text    NOT NULL DEFAULT '',
    verdict    text    NOT NULL DEFAULT '',
    code       text    NOT NULL DEFAULT '',
    attempts   integer NOT NULL DEFAULT 0,
    first_seen bigint  NOT NULL,
    changed    bigint  NOT NULL,
    UNIQUE (account, doc_id)
);
CREATE INDEX documents_account_status ON documents(account, status, changed);
CREATE INDEX documents_account_changed ON documents(account, changed);
CREATE INDEX documents_status_changed ON documents(status, changed);
CREATE INDEX documents_changed ON documents(changed);

-- Events: every change of a document's status or problem, with the raw response.
CREATE TABLE events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       bigint NOT NULL,
    account  text   NOT NULL REFERENCES accounts(name),
    provider text   NOT NULL DEFAULT '',
    doc_id   text   NOT NULL,
    number   text   NOT NULL DEFAULT '',
    status   text   NOT NULL,
    kind     text   NOT NULL,
    problem  text,             -- model.Problem as JSON; NULL when none
    raw      bytea             -- at most 65536 bytes (model.MaxRaw); NULL when none
);
CREATE INDEX events_doc ON events(account, doc_id, at);
CREATE INDEX events_account ON events(account, at);
CREATE INDEX events_at ON events(at);

-- Request log: every HTTP request emitop made, kept for a retention period.
CREATE TABLE requests (
    id      bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account text    NOT NULL REFERENCES accounts(name),
    method  text    NOT NULL,
    path    text    NOT NULL, -- without the query string
    status  integer NOT NULL, -- 0 when no response came
    latency bigint  NOT NULL,
    class   text    NOT NULL DEFAULT '',
    at      bigint  NOT NULL
);
CREATE INDEX requests_at ON requests(at);
CREATE INDEX requests_account ON requests(account, at);

-- Operator actions: who did what to which document, and how it ended.
CREATE TABLE actions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          bigint NOT NULL,
    operator    text   NOT NULL,
    fingerprint text   NOT NULL DEFAULT '',
    kind        text   NOT NULL,
    account     text   NOT NULL REFERENCES accounts(name),
    doc_id      text   NOT NULL DEFAULT '',
    reason      text   NOT NULL DEFAULT '',
    outcome     text   NOT NULL DEFAULT ''
);
CREATE INDEX actions_account ON actions(account, at);
CREATE INDEX actions_at ON actions(at);

-- Retry ledger: who may touch a document now. A lease past its expiry (by the database's
-- clock, which every host sharing the store shares) is free.
CREATE TABLE leases (
    account text   NOT NULL,
    doc_id  text   NOT NULL,
    holder  text   NOT NULL,
    expires bigint NOT NULL,
    PRIMARY KEY (account, doc_id)
);

-- Retry ledger: an emission's intent, committed before the request leaves, settled with its
-- outcome afterwards. An unsettled intent after a crash means "unknown".
CREATE TABLE intents (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account  text   NOT NULL,
    doc_id   text   NOT NULL,
    holder   text   NOT NULL,
    kind     text   NOT NULL,
    request  text   NOT NULL DEFAULT '', -- redacted summary, never credentials
    at       bigint NOT NULL,
    settled  bigint,                      -- NULL while open
    outcome  text   NOT NULL DEFAULT '',
    problem  text,
    raw      bytea
);
CREATE INDEX intents_doc ON intents(account, doc_id);
CREATE INDEX intents_open ON intents(account, id) WHERE settled IS NULL;
