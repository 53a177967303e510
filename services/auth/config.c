/* config.c: the auth service's configuration table and service definition. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "sb_err.h"
#include "sb_util_hex.h"

extern const struct sb_migration auth_migrations[];

static int
auth_config_validate_alg(const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "ES256") == 0 || strcmp(v, "RS256") == 0)
		return 0;
	snprintf(err, errlen, "must be ES256 or RS256");
	return -1;
}

static int
auth_config_validate_kek(const char *v, char *err, size_t errlen)
{
	unsigned char k[32];
	if (v[0] == '\0')
		return 0;
	int rv = strlen(v) == 64 ? sb_hex_decode(v, sizeof(k), 0, k) : SB_EINVAL;
	explicit_bzero(k, sizeof(k));
	if (rv == 0)
		return 0;
	snprintf(err, errlen, "must be 64 hexadecimal digits (a 256-bit key), or empty");
	return -1;
}

static int
auth_config_validate_issuer(const char *v, char *err, size_t errlen)
{
	if ((strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) &&
	    strchr(v, '?') == NULL && strchr(v, '#') == NULL)
		return 0;
	snprintf(err, errlen, "must be an http(s) URL without query or fragment");
	return -1;
}

const struct sb_cfg_key auth_config[] = {
	SB_CFG_COMMON(struct auth_cfg, common, 9101, 7101),
	SB_CFG_POSTGRES(struct auth_cfg, common),
	SB_CFG_REDIS(struct auth_cfg, common),
	SB_CFG_STR_ROW(
	    struct auth_cfg, "SB_AUTH_ISSUER", issuer, "http://127.0.0.1:8000",
	    auth_config_validate_issuer,
	    "Issuer (iss) of access tokens and of the OAuth metadata: the public base URL."),
	SB_CFG_STR_ROW(struct auth_cfg, "SB_AUTH_AUDIENCE", audience, "switchboard", NULL,
	               "Audience (aud) of access tokens."),
	SB_CFG_INT_ROW(struct auth_cfg, "SB_AUTH_ACCESS_TTL_S", access_ttl_s, "900", 1, 86400,
	               "Lifetime of access tokens, seconds."),
	SB_CFG_INT_ROW(struct auth_cfg, "SB_AUTH_REFRESH_TTL_S", refresh_ttl_s, "2592000", 60,
	               31536000, "Lifetime of refresh tokens, seconds."),
	SB_CFG_STR_ROW(struct auth_cfg, "SB_AUTH_SIGNING_ALG", signing_alg, "ES256",
	               auth_config_validate_alg, "Algorithm of new signing keys: ES256 or RS256."),
	SB_CFG_SECRET_ROW(struct auth_cfg, "SB_AUTH_KEY_ENCRYPTION_KEY", key_encryption_key, "",
	                  auth_config_validate_kek,
	                  "64 hex digits: seals private signing keys at rest with AES-256-GCM "
	                  "(empty: stored unencrypted)."),
	SB_CFG_INT_ROW(struct auth_cfg, "SB_AUTH_PBKDF2_ITERATIONS", pbkdf2_iterations, "210000",
	               100000, 10000000, "PBKDF2-HMAC-SHA256 rounds for new client secrets."),
	SB_CFG_INT_ROW(
	    struct auth_cfg, "SB_AUTH_KEY_RELOAD_MS", key_reload_ms, "5000", 100, 600000,
	    "How often signing keys are reloaded from the database (picks up rotations)."),
	{ NULL },
};

int
auth_config_kek(const struct auth_cfg *cfg, unsigned char kek[32])
{
	const char *v = cfg->key_encryption_key;
	if (v == NULL || v[0] == '\0')
		return 0;
	if (strlen(v) != 64 || sb_hex_decode(v, 32, 0, kek) != 0)
		return SB_EINVAL;
	return 1;
}

enum sb_jwt_alg
auth_config_alg(const struct auth_cfg *cfg)
{
	return strcmp(cfg->signing_alg, "RS256") == 0 ? SB_JWT_RS256 : SB_JWT_ES256;
}

const struct sb_service_def auth_service = {
	.name = "auth",
	.config = auth_config,
	.config_size = sizeof(struct auth_cfg),
	.common_offset = offsetof(struct auth_cfg, common),
	.methods = auth_methods,
	.schema = "auth",
	.migrations = auth_migrations,
	.start = auth_start,
	.stop = auth_stop,
	.worker_conns = SB_WORKER_PG | SB_WORKER_REDIS,
	.worker_stmts = auth_store_stmts,
};
