-- pubsub 003: fewer index writes per acknowledgement. deliveries_acked (acked_at, partial on
-- state = 'acked') is read by no statement: the topic metrics count a subscription's
-- deliveries through sub_id and filter on acked_at there, retention finds a message's
-- deliveries through (message_id, sub_id). A state change of a delivery is never a HOT update
-- (the partial indexes' predicates read state), so every ack inserted an entry into it that
-- nothing used. Existing rows need no change.
DROP INDEX IF EXISTS deliveries_acked;
