-- veille schema, version 12: the processes that share a database
-- (SPEC §10). Each running daemon says every few seconds who it is and
-- that it lives; `veille status` lists them (with the feeds each holds)
-- and warns when their configs differ. A row unheard of for a day goes.
CREATE TABLE processes (
    id            TEXT PRIMARY KEY,   -- the owner id its claims carry
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    version       TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    started       INTEGER NOT NULL,
    heartbeat     INTEGER NOT NULL
);

-- Once-per-tick work (the feed-health review, pruning) runs in one process
-- at a time: the one holding this lease. Its term is (holder, elected): a
-- holder whose lease ran out and passed to another cannot renew the new
-- holder's term.
CREATE TABLE leader (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    elected INTEGER NOT NULL,
    until   INTEGER NOT NULL
);
