-- veille schema, version 5: a feed is never silent about items it could not
-- read (SPEC §7). Both are of the last document fetched (a 200); NULL until
-- one is fetched by this version.
ALTER TABLE feeds ADD COLUMN last_items INTEGER;     -- items the document yielded
ALTER TABLE feeds ADD COLUMN unread_items INTEGER;   -- items it held that could not be read
