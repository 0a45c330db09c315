-- veille schema, version 1. Append-only: later changes go in 0002_*.sql.
-- Times are Unix seconds, UTC.

-- One row per feed ever configured, known by name (SPEC §4 "Feeds").
CREATE TABLE feeds (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    url                  TEXT NOT NULL,      -- as configured; a change resets the fetch state below
    redirect_url         TEXT,               -- target of a permanent redirect (301/308)
    etag                 TEXT,
    last_modified        TEXT,
    gone                 INTEGER NOT NULL DEFAULT 0,  -- 410 seen: not polled until `url` changes
    retry_after_until    INTEGER,            -- 429/503 Retry-After: not polled before
    last_fetch           INTEGER,
    last_status          INTEGER,            -- HTTP status, or NULL when no answer came
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since        INTEGER,
    next_poll            INTEGER,            -- NULL: as soon as possible
    first_success        INTEGER             -- NULL until the first successful poll
);

-- A story: what alerts at most once per channel. Items point to it.
-- Invariant: `link` is the normalised link of the items that made it, or NULL
-- for a link-less item, which is a story of its own.
CREATE TABLE stories (
    id         INTEGER PRIMARY KEY,
    link       TEXT UNIQUE,
    first_seen INTEGER NOT NULL
);

-- Every item ever seen, one per (feed, item key) (SPEC §4 "Identity").
CREATE TABLE items (
    id           INTEGER PRIMARY KEY,
    feed_id      INTEGER NOT NULL REFERENCES feeds(id),
    item_key     TEXT NOT NULL,
    story_id     INTEGER NOT NULL REFERENCES stories(id),
    title        TEXT NOT NULL,
    link         TEXT,
    summary      TEXT NOT NULL,              -- kept only for items that caused an alert (quoted
    content      TEXT NOT NULL,              -- in messages); '' for the others
    categories   TEXT NOT NULL,              -- JSON array
    published    INTEGER,
    updated      INTEGER,
    first_seen   INTEGER NOT NULL,
    changed_at   INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    UNIQUE (feed_id, item_key)
);
CREATE INDEX items_story ON items (story_id);

-- The outbox. Written in the same transaction as the items that caused it.
-- Invariant: one row per (story, channel), ever; the unique key, not a read,
-- guarantees it.
CREATE TABLE alerts (
    id         TEXT PRIMARY KEY,             -- stable: Message-ID, webhook-id
    story_id   INTEGER NOT NULL REFERENCES stories(id),
    channel    TEXT NOT NULL,
    item_id    INTEGER NOT NULL REFERENCES items(id),  -- the item whose match made the alert
    rules      TEXT NOT NULL,                -- JSON array of rule names
    hits       TEXT NOT NULL,                -- JSON array of {rule, field, term, start, end, item_id}
    state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    created    INTEGER NOT NULL,
    due        INTEGER NOT NULL,             -- next attempt
    sent_at    INTEGER,
    last_error TEXT,
    UNIQUE (story_id, channel)
);
CREATE INDEX alerts_due ON alerts (state, due);
