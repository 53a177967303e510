-- notifier 001: delivery watermarks, webhooks and the durable webhook delivery queue.

-- How far each member's devices have been written message.created frames (moves forward only).
CREATE TABLE deliveries (
    conversation_id     text        NOT NULL,
    user_id             text        NOT NULL,
    last_delivered_seq  bigint      NOT NULL DEFAULT 0 CHECK (last_delivered_seq >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);

CREATE TABLE webhooks (
    id           uuid        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    url          text        NOT NULL,
    secret       text        NOT NULL,
    event_types  text[]      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id);

-- One row per (webhook, event): inserted when the event is handled, so a restart loses nothing
-- and a redelivered event is queued once. status: pending, delivered, dead (sent to the DLQ).
CREATE TABLE webhook_deliveries (
    id               bigserial   PRIMARY KEY,
    webhook_id       uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    body             text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         int         NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
