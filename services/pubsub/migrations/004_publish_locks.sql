-- pubsub 004: cheaper publishes. The foreign keys of messages.topic_id, deliveries.message_id
-- and deliveries.sub_id cost three lookups and row locks (topic, message, subscription) per
-- published message. Their guarantees are kept without them:
--  * a publish statement locks its topics' rows FOR KEY SHARE once per statement (store.c,
--    "publish" and "publish_group"), so a concurrent topic delete waits for it or the publish
--    finds the topic gone and stores nothing;
--  * deleting a topic deletes its messages and their deliveries in the same transaction, in a
--    statement after the topic's row is gone ("topic_purge"); retention deletes the deliveries
--    of the messages it deletes;
--  * a delivery's message is inserted by the same statement, and its subscriptions are the
--    topic's (routed at the route_version the statement checks); subscriptions only go with
--    their topic.
-- docs/pubsub.md "Cheaper publishes".
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_topic_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_message_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_sub_id_fkey;
