-- Tenants, users, OAuth clients, refresh tokens, signing keys and the audit trail of the auth
-- service. Secrets and tokens are never stored in the clear: client secrets as PBKDF2 hashes,
-- refresh tokens as SHA-256, private keys optionally sealed with AES-256-GCM.
CREATE TABLE auth.tenants (
	id uuid PRIMARY KEY,
	name text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth.users (
	id uuid PRIMARY KEY,
	tenant_id uuid NOT NULL REFERENCES auth.tenants (id),
	name text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (tenant_id, name)
);

CREATE TABLE auth.clients (
	client_id text PRIMARY KEY,
	tenant_id uuid NOT NULL REFERENCES auth.tenants (id),
	name text NOT NULL,
	-- pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>
	secret_hash text NOT NULL,
	scopes text NOT NULL DEFAULT '',
	user_id uuid REFERENCES auth.users (id),
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (tenant_id, name)
);

CREATE TABLE auth.refresh_tokens (
	token_hash text PRIMARY KEY, -- hex SHA-256 of the opaque token
	family_id uuid NOT NULL,
	client_id text NOT NULL REFERENCES auth.clients (client_id),
	tenant_id uuid NOT NULL,
	user_id uuid,
	subject text NOT NULL,
	scope text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON auth.refresh_tokens (family_id);

CREATE TABLE auth.signing_keys (
	kid text PRIMARY KEY,
	alg text NOT NULL CHECK (alg IN ('ES256', 'RS256')),
	public_jwk jsonb NOT NULL,
	-- "pem:<PKCS#8 PEM>" or "aes256gcm:<iv b64url>:<ciphertext+tag b64url>" (AAD = kid)
	private_key text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	retired_at timestamptz
);
-- At most one active (not retired) key.
CREATE UNIQUE INDEX signing_keys_one_active ON auth.signing_keys ((true)) WHERE retired_at IS NULL;

CREATE TABLE auth.audit_events (
	id bigserial PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT now(),
	event text NOT NULL,
	client_id text,
	detail jsonb NOT NULL DEFAULT '{}'
);
