-- veille schema, version 3: wire copies (SPEC §4 "Wire copies").

-- The fingerprint of an item that opened a story (domain::wire's stored
-- form), and the date its story's `wire_window` counts from. NULL for items
-- that joined a story, and for all items while wire copies are off.
ALTER TABLE items ADD COLUMN wire BLOB;
ALTER TABLE items ADD COLUMN wire_at INTEGER;
CREATE INDEX items_wire ON items (wire_at) WHERE wire IS NOT NULL;

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
