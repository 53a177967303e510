-- The outbox table of a service (services/common/sb_pg_outbox.h): created in the migrating
-- schema (search_path), relayed by sb-outbox when listed in SB_OUTBOX_TABLES. Same contract as
-- messages.outbox (messages 001 and 003). A service's migrations link to this file.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    aggregate_type text        NOT NULL,
    aggregate_id   uuid        NOT NULL,
    shard          int         GENERATED ALWAYS AS (abs(hashtext(aggregate_id::text) % 64)) STORED,
    event_id       uuid        NOT NULL,
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
CREATE INDEX outbox_pending ON outbox (shard, id) WHERE relayed_at IS NULL;
