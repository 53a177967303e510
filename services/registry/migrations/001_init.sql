-- The schema registry's store (schema "registry"): subjects, their versions, the global
-- configuration and the audit trail of every change.
CREATE TABLE config (
    id integer PRIMARY KEY CHECK (id = 1),
    compatibility text NOT NULL
);
INSERT INTO config (id, compatibility) VALUES (1, 'BACKWARD');

CREATE TABLE subjects (
    name text PRIMARY KEY,
    compatibility text,                     -- NULL: the global level
    protected boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per version of a subject; its id is the schema id of both APIs. A version is
-- active, pending (a breaking change to a protected subject, awaiting approval) or
-- deprecated (retired); deleted versions are kept (soft delete) so that ids stay unique.
CREATE TABLE versions (
    id bigserial PRIMARY KEY,
    subject text NOT NULL REFERENCES subjects (name),
    version integer NOT NULL,
    draft integer NOT NULL,
    schema text NOT NULL,                   -- canonical JSON text
    fingerprint text NOT NULL,              -- SHA-256 (hex) of draft and schema
    state text NOT NULL CHECK (state IN ('active', 'pending', 'deprecated')),
    deleted boolean NOT NULL DEFAULT false,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subject, version)
);
CREATE INDEX versions_fingerprint ON versions (subject, fingerprint);

CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,                   -- register, pending, approve, deprecate, config, delete
    subject text NOT NULL,
    version_id bigint,
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_version ON audit (version_id);
