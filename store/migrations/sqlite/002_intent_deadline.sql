-- 002: the deadline of an emission's intent, so that the wait protecting against a second
-- emission is on disk, not in the memory of a process that may be interrupted.
-- deadline is when the emission, if it left, has landed or failed: its latest send plus the
-- holder's timeout (INTEGER Unix nanoseconds). Until then a status read saying it did not
-- land proves nothing. 0 for intents written before this migration: readers then count
-- from the intent's own time with their account's timeout.
ALTER TABLE intents ADD COLUMN deadline INTEGER NOT NULL DEFAULT 0;
