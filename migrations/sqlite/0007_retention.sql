-- veille schema, version 7: retention (SPEC §4 "Retention").

-- What remains of pruned items: their dedup keys, so that a feed
-- re-sending a pruned item never alerts it again. Each key is kept as its
-- 64-bit hash (xxh3, `store::retention`), the row id itself: about 20 bytes
-- a key where the plain keys with their index and story row took ~270, so
-- the database levels off once `retention` has passed. Two keys colliding
-- (about one chance in 10^6 after 10 million pruned items) would make one
-- new item be taken for a pruned one and recorded nowhere.
CREATE TABLE pruned_items (key INTEGER PRIMARY KEY);  -- hash of (feed id, item key)
CREATE TABLE pruned_links (key INTEGER PRIMARY KEY);  -- hash of a normalised link
