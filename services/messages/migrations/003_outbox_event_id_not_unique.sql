-- messages 003: the outbox's event_id is no longer backed by a unique index.
-- Event ids are UUIDv7 made by the writer (48 bits of milliseconds, 74 random bits), never
-- looked up, and an index on them cost one more B-tree insert per event, twice: when the row is
-- written (inside the group commit) and again when the relay marks it relayed (a non-HOT
-- update re-inserts every index entry). Consumers deduplicate on ce_id as before.
ALTER TABLE messages.outbox DROP CONSTRAINT IF EXISTS outbox_event_id_key;
