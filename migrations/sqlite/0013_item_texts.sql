-- veille schema, version 13: every item's text, kept for `keep_text`
-- (SPEC §4) so that `veille test RULE --history` can run a rule over last
-- week's news as if it had been in the config then. `items` keeps summary
-- and content only for items that alerted; this keeps them for every
-- version of every item (a changed item is matched again live, so it is
-- here too), compressed, and pruning drops them after `keep_text`.
CREATE TABLE item_texts (
    item_id INTEGER NOT NULL REFERENCES items(id),
    seen    INTEGER NOT NULL,   -- the poll that brought this version
    quiet   INTEGER NOT NULL,   -- 1: recorded silently (first poll window, max_age)
    text    BLOB NOT NULL,      -- summary and content, deflated
    PRIMARY KEY (item_id, seen)
);
CREATE INDEX item_texts_seen ON item_texts (seen);
