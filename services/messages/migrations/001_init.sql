-- messages 001: conversations, members, messages with a per-conversation seq, and the outbox.
-- Every table is keyed by tenant first: every query is scoped by tenant.

CREATE TABLE conversations (
    tenant_id        text        NOT NULL,
    id               uuid        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('direct', 'group')),
    title            text        NOT NULL DEFAULT '',
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seq         bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    activity_us      bigint      NOT NULL,   -- last activity, microseconds since the epoch
    last_message_id  uuid,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE members (
    tenant_id        text        NOT NULL,
    conversation_id  uuid        NOT NULL,
    user_id          text        NOT NULL,
    last_read_seq    bigint      NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
    joined_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id, user_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
        ON DELETE CASCADE
);
CREATE INDEX members_by_user ON members (tenant_id, user_id);

-- The message row is its own dedup record: (tenant_id, id) and the idempotency key hold forever.
CREATE TABLE messages (
    tenant_id        text        NOT NULL,
    id               uuid        NOT NULL,
    conversation_id  uuid        NOT NULL,
    seq              bigint      NOT NULL CHECK (seq > 0),
    sender_id        text        NOT NULL,
    content          text        NOT NULL,
    content_type     text        NOT NULL,
    metadata         jsonb       NOT NULL DEFAULT '{}',
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, conversation_id, seq),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
        ON DELETE CASCADE
);
CREATE UNIQUE INDEX messages_idempotency ON messages (tenant_id, sender_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The outbox contract shared with the outbox relay (do not change without telling the lead).
CREATE TABLE messages.outbox (
    id             bigserial PRIMARY KEY,
    aggregate_type text        NOT NULL,
    aggregate_id   uuid        NOT NULL,
    shard          int         GENERATED ALWAYS AS (abs(hashtext(aggregate_id::text) % 64)) STORED,
    event_id       uuid        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    topic          text        NOT NULL,
    source         text        NOT NULL,
    subject        text,
    payload        bytea       NOT NULL,
    traceparent    text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    attempts       int         NOT NULL DEFAULT 0,
    last_error     text,
    relayed_at     timestamptz
);
CREATE INDEX outbox_pending ON messages.outbox (shard, id) WHERE relayed_at IS NULL;
