-- veille schema, version 3: wire copies (SPEC §4 "Wire copies").

-- The fingerprint of each item that opened a story while wire copies were
-- on (domain::wire's stored form), and the date its story's `wire_window`
-- counts from. A table of its own keeps `items` rows small; rows older than
-- the window are deleted as the daemon goes.
CREATE TABLE wire_prints (
    item_id  INTEGER PRIMARY KEY REFERENCES items(id),
    story_id INTEGER NOT NULL REFERENCES stories(id),
    at       INTEGER NOT NULL,
    print    BLOB NOT NULL
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
