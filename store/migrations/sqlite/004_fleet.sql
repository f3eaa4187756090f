-- 004: one fleet. Every emitop process that polls (or holds an account for a command)
-- registers in members; an account is polled by the member that holds its poll lease;
-- what the holder learned is written in account_states for the others to show; a retry
-- or a deletion asked for elsewhere is a job the account's holder carries out. Times are
-- the database's clock (Unix nanoseconds), which every process sharing the store shares.

-- Members: the processes using this store that hold, or may hold, poll leases. A member
-- is live until expires; one whose registration ran out is deleted by the first member
-- that takes one of its accounts, and can never renew it: it joins again under a new name.
CREATE TABLE members (
    holder  TEXT    PRIMARY KEY, -- host/pid/random: one process's registration
    host    TEXT    NOT NULL,
    polls   INTEGER NOT NULL,    -- 1: polls, and counts when accounts are spread; 0: a command
    started INTEGER NOT NULL,
    expires INTEGER NOT NULL
) STRICT;

-- Poll leases: which member polls each account. An account is free when its holder is ''
-- or no longer a member.
CREATE TABLE poll_leases (
    account TEXT    PRIMARY KEY,
    holder  TEXT    NOT NULL DEFAULT '',
    since   INTEGER NOT NULL DEFAULT 0, -- when it last changed hands (taken, given back, or its holder found dead)
    asked   INTEGER NOT NULL DEFAULT 0  -- when another process asked for a poll now; 0 when none is waiting
) STRICT;
CREATE INDEX poll_leases_holder ON poll_leases(holder);
CREATE INDEX poll_leases_asked ON poll_leases(holder) WHERE asked <> 0;

-- What the holder's last poll learned of each account, for every other process to show.
CREATE TABLE account_states (
    account TEXT    PRIMARY KEY,
    holder  TEXT    NOT NULL,
    host    TEXT    NOT NULL,
    written INTEGER NOT NULL, -- when it was written
    state   TEXT    NOT NULL, -- JSON: health, windows, last error, intervals
    documents TEXT  NOT NULL DEFAULT '', -- JSON: the open documents, written only when they change
    docs_written INTEGER NOT NULL DEFAULT 0 -- when documents was written
) STRICT;
CREATE INDEX account_states_written ON account_states(written);

-- Jobs: a retry or a deletion asked for in one process, carried out by the member that
-- holds the account's poll lease, under that account's governor.
CREATE TABLE jobs (
    id       INTEGER PRIMARY KEY,
    account  TEXT    NOT NULL,
    kind     TEXT    NOT NULL,            -- retry, clear
    request  TEXT    NOT NULL,            -- JSON: the documents and the options
    asked_by TEXT    NOT NULL,            -- who asked, for the screens: operator@host
    created  INTEGER NOT NULL,
    state    TEXT    NOT NULL,            -- queued, running, done, failed
    runner   TEXT    NOT NULL DEFAULT '', -- the member carrying it out
    host     TEXT    NOT NULL DEFAULT '', -- the runner's host
    progress TEXT    NOT NULL DEFAULT '', -- JSON: done, total, current, eta
    error    TEXT    NOT NULL DEFAULT '',
    cancel   INTEGER NOT NULL DEFAULT 0,  -- 1: whoever asked wants it stopped
    updated  INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_open ON jobs(account, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_updated ON jobs(updated);

-- Each document's result in a job, as it ends; a job taken over after its runner died
-- may add a later result for the same document, which wins.
CREATE TABLE job_results (
    id     INTEGER PRIMARY KEY,
    job    INTEGER NOT NULL,
    doc_id TEXT    NOT NULL,
    result TEXT    NOT NULL -- JSON
) STRICT;
CREATE INDEX job_results_job ON job_results(job, id);
