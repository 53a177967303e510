-- pubsub 005: an acknowledged delivery leaves `deliveries` for `acked_deliveries`. The claim
-- walks a subscription's deliveries in seq order through indexes of `deliveries`; every
-- acknowledged row left behind there (with the dead row versions each state change leaves in
-- those indexes until vacuum) is one more entry each claim steps over, so the cost of a claim
-- grew with what had been consumed. With finished deliveries moved out, `deliveries` holds only
-- the unfinished ones (ready, leased, dead) and stays as small as the backlog. pgbench, same
-- machine and minutes, 2 clients publishing 16 messages a transaction and 2 leasing 16 and
-- acking them: ~29,000 messages consumed in 10 s with acked rows kept, ~90,000 with them moved
-- (docs/pubsub.md "Acked deliveries move out").
-- What reads acknowledged deliveries reads this table: a repeated ack (answered as acked), the
-- message's delivery states (GET /api/v1/messages/{id}), the topic's metrics (acked counts),
-- retention and topic deletion (which delete them with their messages).
CREATE TABLE acked_deliveries (
    message_id  uuid        NOT NULL,
    sub_id      bigint      NOT NULL,
    attempt     int         NOT NULL,
    consumer    text        NOT NULL DEFAULT '',
    errors      jsonb       NOT NULL DEFAULT '[]',
    acked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, sub_id)
);

INSERT INTO acked_deliveries (message_id, sub_id, attempt, consumer, errors, acked_at)
SELECT message_id, sub_id, attempt, consumer, errors, coalesce(acked_at, now())
FROM deliveries WHERE state = 'acked';
DELETE FROM deliveries WHERE state = 'acked';
