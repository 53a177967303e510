-- files 001: uploads (tus and the chunk API) and the chunks of a chunked upload.
-- state, created_at and updated_at are what cleanup (gc, through files.Expire) selects on:
-- an UPLOADING row whose updated_at is older than the cutoff is abandoned; a tus upload whose
-- expires_at has passed is expired. Bytes live in storage, never in these tables.

CREATE TABLE uploads (
    id            uuid        PRIMARY KEY,
    tenant_id     text        NOT NULL,
    owner_id      text        NOT NULL,
    protocol      text        NOT NULL CHECK (protocol IN ('tus', 'chunk')),
    state         text        NOT NULL DEFAULT 'UPLOADING'
                  CHECK (state IN ('UPLOADING', 'MERGING', 'COMPLETED', 'FAILED', 'TERMINATED')),
    length        bigint      CHECK (length IS NULL OR length >= 0),      -- NULL: deferred (tus)
    upload_offset bigint      NOT NULL DEFAULT 0 CHECK (upload_offset >= 0),
    chunk_size    bigint,                                                 -- chunk API only
    total_chunks  integer,                                                -- chunk API only
    filename      text        NOT NULL DEFAULT '',
    content_type  text        NOT NULL DEFAULT 'application/octet-stream',
    metadata      text        NOT NULL DEFAULT '',                        -- tus Upload-Metadata
    sha256        text,                                                   -- hex, once known
    failure       text,                                                   -- why FAILED
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    CHECK (length IS NULL OR upload_offset <= length)
);

CREATE INDEX uploads_state_updated ON uploads (state, updated_at);
CREATE INDEX uploads_owner_state ON uploads (tenant_id, owner_id, state);

CREATE TABLE chunks (
    upload_id   uuid        NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    n           integer     NOT NULL CHECK (n >= 1),
    size        bigint      NOT NULL CHECK (size >= 0),
    sha256      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload_id, n)
);
