-- A channel that cannot send anything (login refused, TLS or the connection
-- failing) is paused as a whole: one row per paused channel, gone at its
-- first success or at `veille retry`. Its alerts wait, pending, untouched.
CREATE TABLE channel_faults (
    channel  TEXT PRIMARY KEY,
    error    TEXT NOT NULL,
    since    INTEGER NOT NULL,   -- first failure of this fault
    attempts INTEGER NOT NULL,   -- failed attempts since
    retry_at INTEGER NOT NULL    -- the channel's next attempt
);
