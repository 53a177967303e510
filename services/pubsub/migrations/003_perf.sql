-- pubsub 003: fewer index writes per acknowledgement. deliveries_acked (acked_at, partial on
-- state = 'acked') is read by no statement: the topic metrics count a subscription's
-- deliveries through sub_id and filter on acked_at there, retention finds a message's
-- deliveries through (message_id, sub_id). A state change of a delivery is never a HOT update
-- (the partial indexes' predicates read state), so every ack inserted an entry into it that
-- nothing used. Existing rows need no change.
DROP INDEX IF EXISTS deliveries_acked;

-- A publisher caches a topic's routing (its row and its subscriptions' filters, route.c) and
-- publishes with the version it read; every change of what routing reads (a subscription
-- created, the topic updated) moves route_version, and a publish whose version is no longer the
-- topic's stores nothing and reads the route again. Existing topics start at 0.
ALTER TABLE topics ADD COLUMN route_version bigint NOT NULL DEFAULT 0;
