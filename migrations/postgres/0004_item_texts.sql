-- veille schema on PostgreSQL, version 4 (SQLite's version 13): every
-- item's text, kept for `keep_text` (SPEC §4) so that `veille test RULE
-- --history` can run a rule over last week's news as if it had been in the
-- config then. `items` keeps summary and content only for items that
-- alerted; this keeps them for every item, compressed, and pruning drops
-- them after `keep_text`.
CREATE TABLE item_texts (
    item_id    BIGINT PRIMARY KEY REFERENCES items(id),
    first_seen BIGINT NOT NULL,    -- the item's, to prune by without a join
    quiet      BIGINT NOT NULL,    -- 1: recorded silently (first poll window, max_age)
    text       BYTEA NOT NULL      -- summary and content, JSON, deflated
);
CREATE INDEX item_texts_seen ON item_texts (first_seen);
