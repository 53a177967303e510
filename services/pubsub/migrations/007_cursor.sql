-- pubsub 007: cursor subscriptions (docs/pubsub.md "Cursor subscriptions"). A subscription in
-- mode 'cursor' (direct or fan_out, no filter, no push endpoint, its topic without ordering
-- keys) has no delivery row per message: it reads its topic's messages in seq order from
-- next_seq on, and each claim writes one row of leases naming the seqs it gave out that are not
-- yet acknowledged. A message that leaves that path (nacked, expired, its deadline changed) is
-- detached into a row of deliveries, which then works as in mode 'rows'. seq comes from one
-- sequence; the publish locks its topic FOR NO KEY UPDATE, so a topic's seqs commit in order
-- and a cursor never passes a message whose transaction commits later. Rows stored before this
-- migration keep seq NULL (no table rewrite): no cursor subscription existed then.
CREATE SEQUENCE message_seq;
ALTER TABLE messages ADD COLUMN seq bigint;
ALTER TABLE messages ALTER COLUMN seq SET DEFAULT nextval('message_seq');
CREATE UNIQUE INDEX messages_topic_seq ON messages (topic_id, seq);
ALTER TABLE subscriptions
    ADD COLUMN mode text NOT NULL DEFAULT 'rows' CHECK (mode IN ('rows', 'cursor')),
    ADD COLUMN first_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN next_seq bigint NOT NULL DEFAULT 0;
-- first_seq: the sequence's next value when the subscription was made (the messages routed
-- to it start there); next_seq: where its next claim starts.
-- seqs: the claim's messages not yet acknowledged or detached; the row goes with the last.
-- first_seq: the claim's lowest seq. A subscription's leases never overlap (its cursor only
-- moves forward), so the one lease that may hold a message is the one with the greatest
-- first_seq at or below the message's seq: one entry of leases_by_seq, not every lease of the
-- subscription (nor their dead versions, which a busy subscription leaves many of).
CREATE TABLE leases (
    lease_id    uuid        PRIMARY KEY,
    sub_id      bigint      NOT NULL,
    first_seq   bigint      NOT NULL,
    seqs        bigint[]    NOT NULL,
    expires_at  timestamptz NOT NULL,
    consumer    text        NOT NULL DEFAULT ''
);
CREATE INDEX leases_by_seq ON leases (sub_id, first_seq);
CREATE INDEX leases_expiry ON leases (expires_at);
-- How many messages each ack statement acknowledged through leases, for the topic metrics'
-- acks of the last minute (mode 'rows' reads acked_deliveries.acked_at); the retention pass
-- drops rows older than 2 minutes, so the table stays small enough to be read without an
-- index (one row per ack statement, not per message).
CREATE TABLE cursor_acks (
    sub_id    bigint      NOT NULL,
    n         int         NOT NULL,
    acked_at  timestamptz NOT NULL DEFAULT now()
);
