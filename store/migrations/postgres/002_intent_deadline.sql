-- 002: the deadline of an emission's intent, as migrations/sqlite/002_intent_deadline.sql:
-- when the emission, if it left, has landed or failed (its latest send plus the holder's
-- timeout, bigint Unix nanoseconds). 0 for intents written before this migration.
ALTER TABLE intents ADD COLUMN deadline bigint NOT NULL DEFAULT 0;
