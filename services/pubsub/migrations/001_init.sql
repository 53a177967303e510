-- pubsub 001: topics, subscriptions, messages, one delivery row per (message, subscription),
-- consumers seen by load-balanced subscriptions, and the idempotency-key window.
-- docs/pubsub.md explains the states and the statements that move them.

CREATE TABLE topics (
    id                bigserial   PRIMARY KEY,
    tenant_id         text        NOT NULL,
    name              text        NOT NULL,
    type              text        NOT NULL CHECK (type IN ('queue', 'pubsub')),
    schema_subject    text        NOT NULL DEFAULT '',
    partitions        int         NOT NULL DEFAULT 1,
    ordering_keys     boolean     NOT NULL DEFAULT false,
    retention_ms      bigint      NOT NULL,
    max_attempts      int         NOT NULL CHECK (max_attempts >= 1),
    ack_deadline_ms   int         NOT NULL CHECK (ack_deadline_ms >= 1),
    guarantee         text        NOT NULL CHECK (guarantee IN ('at_least_once', 'exactly_once')),
    default_strategy  text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE subscriptions (
    id          bigserial   PRIMARY KEY,
    topic_id    bigint      NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    strategy    text        NOT NULL,
    filter      jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic_id, name)
);

-- payload is json (not jsonb): the text the publisher sent is what consumers get.
CREATE TABLE messages (
    id               uuid        PRIMARY KEY,
    topic_id         bigint      NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    payload          json        NOT NULL,
    headers          jsonb       NOT NULL DEFAULT '{}',
    priority         smallint    NOT NULL DEFAULT 0,
    ordering_key     text        NOT NULL DEFAULT '',
    idempotency_key  text        NOT NULL DEFAULT '',
    published_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_by_topic ON messages (topic_id, published_at);

-- state: ready (visible from visible_at), leased (until lease_expires), acked, dead (the DLQ).
-- seq is the publish order; attempt counts leases given out.
CREATE TABLE deliveries (
    seq            bigserial   PRIMARY KEY,
    message_id     uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    sub_id         bigint      NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    state          text        NOT NULL DEFAULT 'ready'
                               CHECK (state IN ('ready', 'leased', 'acked', 'dead')),
    priority       smallint    NOT NULL DEFAULT 0,
    ordering_key   text        NOT NULL DEFAULT '',
    attempt        int         NOT NULL DEFAULT 0,
    visible_at     timestamptz NOT NULL DEFAULT now(),
    lease_id       uuid,
    lease_expires  timestamptz,
    consumer       text        NOT NULL DEFAULT '',
    errors         jsonb       NOT NULL DEFAULT '[]',
    acked_at       timestamptz,
    UNIQUE (message_id, sub_id)
);
CREATE INDEX deliveries_ready ON deliveries (sub_id, seq) WHERE state = 'ready';
CREATE INDEX deliveries_leased ON deliveries (lease_expires) WHERE state = 'leased';
CREATE INDEX deliveries_keyed ON deliveries (sub_id, ordering_key, seq)
    WHERE state IN ('ready', 'leased') AND ordering_key <> '';
CREATE INDEX deliveries_dead ON deliveries (sub_id, seq) WHERE state = 'dead';
CREATE INDEX deliveries_acked ON deliveries (acked_at) WHERE state = 'acked';

CREATE TABLE consumers (
    sub_id     bigint      NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    last_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sub_id, name)
);

-- An idempotency key names one message of its topic until expires_at; a publish with a live
-- key answers the first message's id and writes nothing.
CREATE TABLE idempotency (
    topic_id    bigint      NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    key         text        NOT NULL,
    message_id  uuid        NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (topic_id, key)
);
