-- Pruning deletes items and stories; with foreign keys enforced, each
-- deletion looks for the rows that still point at it. Without these
-- indexes every deleted item scanned all alerts (`alerts.item_id`) and
-- every deleted story all `story_links`.
CREATE INDEX alerts_item ON alerts (item_id);
CREATE INDEX story_links_story ON story_links (story_id);
