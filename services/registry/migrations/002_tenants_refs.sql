-- Tenancy and schema references (docs/registry.md, "Tenants" and "References").
-- Every subject, version, audit row and global level belongs to a tenant: the tenant id of the
-- caller's token. Rows written before tenancy go to the tenant 'default' (auth's tenant ids are
-- UUIDs, so no real tenant is named so); an operator hands them to a real tenant with
--   UPDATE registry.subjects SET tenant = '<uuid>' WHERE tenant = 'default';
-- (the versions follow: ON UPDATE CASCADE) and the same for registry.audit.
ALTER TABLE versions DROP CONSTRAINT versions_subject_fkey;
ALTER TABLE versions DROP CONSTRAINT versions_subject_version_key;
DROP INDEX versions_fingerprint;
ALTER TABLE subjects DROP CONSTRAINT subjects_pkey;

ALTER TABLE subjects ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE versions ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE audit ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE subjects ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE versions ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE audit ALTER COLUMN tenant DROP DEFAULT;

ALTER TABLE subjects ADD PRIMARY KEY (tenant, name);
ALTER TABLE versions ADD CONSTRAINT versions_tenant_subject_version_key
    UNIQUE (tenant, subject, version);
ALTER TABLE versions ADD CONSTRAINT versions_tenant_subject_fkey
    FOREIGN KEY (tenant, subject) REFERENCES subjects (tenant, name) ON UPDATE CASCADE;
CREATE INDEX versions_fingerprint ON versions (tenant, subject, fingerprint);

-- A tenant's own global compatibility level (Confluent's PUT /config); without a row, the
-- platform's default in config.
CREATE TABLE tenant_config (
    tenant text PRIMARY KEY,
    compatibility text NOT NULL
);

-- Confluent schema references: version_id's schema refers to ref_id under name (the $ref
-- value), as {name, subject, version} was given at registration. A referenced version cannot
-- be deleted while a version that is not deleted refers to it.
CREATE TABLE refs (
    version_id bigint NOT NULL REFERENCES versions (id),
    ord integer NOT NULL,
    name text NOT NULL,
    ref_id bigint NOT NULL REFERENCES versions (id),
    PRIMARY KEY (version_id, ord)
);
CREATE INDEX refs_ref ON refs (ref_id);
