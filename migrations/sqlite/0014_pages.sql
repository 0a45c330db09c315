-- veille schema, version 14: full text (SPEC §7). Each feed counts the
-- pages of its items that were fetched for their text, those that failed
-- (an error, a paywall, no article) and those skipped (robots.txt), with
-- the last failure, for `veille status`. `robots` keeps each site's
-- robots.txt for a day, for every process on the database.
ALTER TABLE feeds ADD COLUMN pages_ok INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feeds ADD COLUMN pages_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feeds ADD COLUMN pages_skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feeds ADD COLUMN page_failure TEXT;
ALTER TABLE feeds ADD COLUMN page_failure_at INTEGER;
CREATE TABLE robots (
    origin     TEXT PRIMARY KEY,  -- scheme://host:port
    fetched_at INTEGER NOT NULL,
    status     INTEGER NOT NULL,  -- HTTP status; 0: no answer
    body       TEXT NOT NULL      -- robots.txt, for a 2xx
);
