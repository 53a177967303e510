-- cdcsink 001: offsets applied per partition, events that failed validation, shared table state.

-- The first offset of each partition not yet applied, written in the transaction that applied
-- the events before it (a replay of older offsets is skipped).
CREATE TABLE _cdc_checkpoints (
    consumer_group  text        NOT NULL,
    topic           text        NOT NULL,
    kpartition      integer     NOT NULL,
    next_offset     bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kpartition)
);

-- Events that failed validation or transformation (also on cassandra.cdc.validation_errors).
-- id: <topic>:<partition>:<offset>, so that a replayed event is recorded once.
CREATE TABLE validation_errors (
    id              text        PRIMARY KEY,
    topic           text        NOT NULL,
    kpartition      integer     NOT NULL,
    koffset         bigint      NOT NULL,
    target_table    text        NOT NULL,
    reason          text        NOT NULL,
    event_key       bytea,
    event           bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    resubmitted_at  timestamptz,
    resubmits       integer     NOT NULL DEFAULT 0
);

-- Pause and backfill of a table, shared by every replica; resume_seq moves on every resume
-- (a replica that sees it move lifts its quarantine of the table).
CREATE TABLE table_state (
    target_table    text        PRIMARY KEY,
    paused          boolean     NOT NULL DEFAULT false,
    backfill        boolean,
    resume_seq      bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
