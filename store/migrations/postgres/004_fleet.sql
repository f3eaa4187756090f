-- 004: one fleet, as migrations/sqlite/004_fleet.sql. Every emitop process that polls
-- (or holds an account for a command) registers in members; an account is polled by the member that holds its poll lease;
-- what the holder learned is written in account_states for the others to show; a retry
-- or a deletion asked for elsewhere is a job the account's holder carries out. Times are
-- the database's clock (Unix nanoseconds), which every process sharing the store shares.

-- Members: the processes using this store that hold, or may hold, poll leases. A member
-- is live until expires; one whose registration ran out is deleted by the first member
-- that takes one of its accounts, and can never renew it: it joins again under a new name.
CREATE TABLE members (
    holder  text    PRIMARY KEY, -- host/pid/random: one process's registration
    host    text    NOT NULL,
    polls   integer NOT NULL,    -- 1: polls, and counts when accounts are spread; 0: a command
    started bigint  NOT NULL,
    expires bigint  NOT NULL
);

-- Poll leases: which member polls each account. An account is free when its holder is ''
-- or no longer a member.
CREATE TABLE poll_leases (
    account text    PRIMARY KEY,
    holder  text    NOT NULL DEFAULT '',
    since   bigint  NOT NULL DEFAULT 0, -- when it last changed hands (taken, given back, or its holder found dead)
    asked   bigint  NOT NULL DEFAULT 0  -- when another process asked for a poll now; 0 when none is waiting
);
CREATE INDEX poll_leases_holder ON poll_leases(holder);
CREATE INDEX poll_leases_asked ON poll_leases(holder) WHERE asked <> 0;

-- What the holder's last poll learned of each account, for every other process to show.
CREATE TABLE account_states (
    account text    PRIMARY KEY,
    holder  text    NOT NULL,
    host    text    NOT NULL,
    written bigint  NOT NULL, -- when it was written
    state   text    NOT NULL, -- JSON: health, windows, last error, intervals
    documents text  NOT NULL DEFAULT '', -- JSON: the open documents, written only when they change
    docs_written bigint NOT NULL DEFAULT 0 -- when documents was written
);
CREATE INDEX account_states_written ON account_states(written);

-- Jobs: a retry or a deletion asked for in one process, carried out by the member that
-- holds the account's poll lease, under that account's governor.
CREATE TABLE jobs (
    id       bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account  text    NOT NULL,
    kind     text    NOT NULL,            -- retry, clear
    request  text    NOT NULL,            -- JSON: the documents and the options
    asked_by text    NOT NULL,            -- who asked, for the screens: operator@host
    created  bigint  NOT NULL,
    state    text    NOT NULL,            -- queued, running, done, failed
    runner   text    NOT NULL DEFAULT '', -- the member carrying it out
    host     text    NOT NULL DEFAULT '', -- the runner's host
    progress text    NOT NULL DEFAULT '', -- JSON: done, total, current, eta
    error    text    NOT NULL DEFAULT '',
    cancel   integer NOT NULL DEFAULT 0,  -- 1: whoever asked wants it stopped
    updated  bigint  NOT NULL
);
CREATE INDEX jobs_open ON jobs(account, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_updated ON jobs(updated);

-- Each document's result in a job, as it ends; a job taken over after its runner died
-- may add a later result for the same document, which wins.
CREATE TABLE job_results (
    id     bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job    bigint  NOT NULL,
    doc_id text    NOT NULL,
    result text    NOT NULL -- JSON
);
CREATE INDEX job_results_job ON job_results(job, id);
