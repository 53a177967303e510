-- pubsub 006: no index on deliveries.seq. Every delivery wrote two entries into the primary key
-- on seq, a unique one at its publish and another at its lease (a lease changes state, which the
-- partial indexes test, so it is never a HOT update), and each unique insert checks the entries
-- of equal key. The statements that found rows by seq to update them now find them by ctid (a
-- TID scan of rows the same statement locked FOR UPDATE: store.c PS_BY_TID), the acks delete
-- through (message_id, sub_id), the order per ordering key reads deliveries_keyed, and seq keeps
-- its sequence, so it is still unique and in publish order. docs/pubsub.md "No index on seq".
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_pkey;
