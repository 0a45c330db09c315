-- veille schema, version 3: wire copies (SPEC §4 "Wire copies").

-- The fingerprints of the items that opened a story while wire copies were
-- on, one row per poll (one insert per poll rather than per item; measured).
-- `prints` holds records: item id, story id, the date its story's
-- `wire_window` counts from (i64 LE each), the length of the fingerprint
-- (u32 LE) and the fingerprint (domain::wire's stored form). Rows whose
-- newest date has left the window are deleted as veille goes.
CREATE TABLE wire_prints (
    id     INTEGER PRIMARY KEY,
    at_max INTEGER NOT NULL,
    prints BLOB NOT NULL
);

-- For an item that joined a story as a wire copy: the share of the shorter
-- text found in the other (why it was merged).
ALTER TABLE items ADD COLUMN joined REAL;

-- Links of the items that joined a story as wire copies: link identity then
-- sends any later item with one of them to that story.
CREATE TABLE story_links (
    link     TEXT PRIMARY KEY,
    story_id INTEGER NOT NULL REFERENCES stories(id)
);

-- The story's newest item when its message was sent: items after it are
-- copies that came too late to be named (`veille status` lists them).
ALTER TABLE alerts ADD COLUMN last_item INTEGER;
