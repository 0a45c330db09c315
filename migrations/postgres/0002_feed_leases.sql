-- veille schema on PostgreSQL, version 2 (SQLite's version 11): several
-- processes share the feeds (SPEC §10).
-- A process takes due feeds for a while: `lease_owner` until `lease_until`.
-- Each claim counts one more in `lease_epoch`, and a poll is recorded only
-- under the claim it was fetched with, so a process paused past its lease
-- cannot write over the poll of the one that took the feed after it.
-- `fetching` is 1 while the holder fetches: with `host` (of the configured
-- URL), it is what keeps `per_host` for all processes together.
ALTER TABLE feeds ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE feeds ADD COLUMN lease_owner TEXT;
ALTER TABLE feeds ADD COLUMN lease_until BIGINT;
ALTER TABLE feeds ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE feeds ADD COLUMN fetching BIGINT NOT NULL DEFAULT 0;
-- The feeds being fetched, by host: what a claim counts.
CREATE INDEX feeds_fetching ON feeds (host) WHERE fetching = 1;
