-- veille schema, version 9: a story is all its copies (SPEC §4 "Wire
-- copies"): a new item is compared with every copy of a story, not only
-- with the story's first item, so every fingerprinted item is kept, one row
-- each, readable by item (a candidate's copies) and by date (the window).
-- `print` is domain::wire's stored form. Rows older than the keep horizon
-- are deleted as veille goes, by a scan when the index is first read or
-- rebuilt: no index on `at`, which cost every new item a second B-tree
-- insert (measured).
--
-- The rows of version 3 (one per poll, stories' first items only) are not
-- converted: for one `wire_window` after the upgrade, a copy cannot join a
-- story first seen before it, as after any change of the stored form.
DROP TABLE wire_prints;

CREATE TABLE wire_prints (
    item_id  INTEGER PRIMARY KEY,
    story_id INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    print    BLOB NOT NULL
);
