-- veille schema, version 6: feed-health alerts (SPEC §7 "Feed health").

-- The feed's open health episode, once it has alerted: 'failing' or
-- 'silent', and when it began. NULL: none. The next review compares it with
-- how the feed is doing and makes the recovery alert when it has ended.
ALTER TABLE feeds ADD COLUMN health TEXT CHECK (health IN ('failing', 'silent'));
ALTER TABLE feeds ADD COLUMN health_since INTEGER;

-- A feed's arrivals, newest first: its usual gap between new items.
CREATE INDEX items_feed_seen ON items (feed_id, first_seen);

-- The health alerts' outbox, beside `alerts` (which are about stories):
-- the same states, retries, leases and digests. Invariant: one row per
-- (channel, feed, event, start of the episode), by the unique key.
CREATE TABLE health_alerts (
    id          TEXT PRIMARY KEY,            -- stable: Message-ID, webhook-id
    channel     TEXT NOT NULL,
    feed_id     INTEGER NOT NULL REFERENCES feeds(id),
    event       TEXT NOT NULL,               -- failing | gone | silent | recovered
    since       INTEGER NOT NULL,
    notice      TEXT NOT NULL,               -- what the message says, JSON (store::stored)
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL,
    queued      INTEGER NOT NULL,
    due         INTEGER NOT NULL,
    sent_at     INTEGER,
    last_error  TEXT,
    lease_owner TEXT,
    lease_until INTEGER,
    digest_id   TEXT REFERENCES digests(id),
    UNIQUE (channel, feed_id, event, since)
);
CREATE INDEX health_alerts_due ON health_alerts (state, due);
