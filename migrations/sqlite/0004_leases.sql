-- veille schema, version 4: several veille processes on one database
-- (the daemon and a `run --once` typed by hand, overlapping cron runs).

-- The process sending an alert or a digest holds a lease on it: who (a
-- random id per open store) and until when. Others leave the row alone
-- until the lease ends; a process killed mid-send leaves it to expire.
ALTER TABLE alerts ADD COLUMN lease_owner TEXT;
ALTER TABLE alerts ADD COLUMN lease_until INTEGER;
ALTER TABLE digests ADD COLUMN lease_owner TEXT;
ALTER TABLE digests ADD COLUMN lease_until INTEGER;
