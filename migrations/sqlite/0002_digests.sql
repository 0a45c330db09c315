-- veille schema, version 2: digests and retries queued again.

-- A digest: a channel's alerts frozen at a cron tick into one message, sent
-- (and retried) with the same contents and id. Its alerts point to it and
-- follow its state.
CREATE TABLE digests (
    id         TEXT PRIMARY KEY,             -- stable: Message-ID, webhook-id
    channel    TEXT NOT NULL,
    tick       INTEGER NOT NULL,             -- when it was made
    body       TEXT NOT NULL,                -- the frozen message, JSON
    stories    INTEGER NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    queued     INTEGER NOT NULL,             -- start of the current round of tries
    due        INTEGER NOT NULL,
    sent_at    INTEGER,
    last_error TEXT
);
CREATE INDEX digests_due ON digests (state, due);

-- The last tick each digest channel handled; a channel seen for the first
-- time starts from then, not from the epoch.
CREATE TABLE digest_ticks (
    channel   TEXT PRIMARY KEY,
    last_tick INTEGER NOT NULL
);

-- Which digest an alert was frozen into (NULL: not yet, or not a digest).
ALTER TABLE alerts ADD COLUMN digest_id TEXT REFERENCES digests(id);
-- Start of the current round of tries: `created`, or when `veille retry`
-- queued it again (NULL reads as `created`).
ALTER TABLE alerts ADD COLUMN queued INTEGER;
CREATE INDEX alerts_digest ON alerts (digest_id);
