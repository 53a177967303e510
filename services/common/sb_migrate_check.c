/* sb_migrate_check.c: pure checks of sb_migrate: table validation, checksums, lock keys. */
#include "sb_migrate.h"
#include "sb_err.h"
#include "sb_util_hash.h"
#include "sb_util_hex.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

int
sb_migrate_validate(const struct sb_migration *migs, char *err, size_t n)
{
	if (migs == NULL) {
		snprintf(err, n, "no migration table");
		return SB_EINVAL;
	}
	int prev = 0;
	const char *prev_name = NULL;
	for (const struct sb_migration *m = migs; m->version != 0 || m->name || m->sql; m++) {
		const char *name = m->name ? m->name : "(unnamed)";
		if (m->name == NULL || m->sql == NULL) {
			snprintf(err, n, "migration %s (version %d): missing name or SQL", name,
			         m->version);
			return SB_EINVAL;
		}
		if (m->version <= 0) {
			snprintf(err, n, "migration %s: version %d must be positive", name,
			         m->version);
			return SB_EINVAL;
		}
		if (m->version <= prev) {
			snprintf(
			    err, n,
			    "migration %s: version %d does not follow %s (version %d); versions "
			    "must be strictly increasing",
			    name, m->version, prev_name, prev);
			return SB_EINVAL;
		}
		prev = m->version;
		prev_name = name;
	}
	return 0;
}

int
sb_migrate_checksum(const char *sql, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	out[0] = '\0';
	if (EVP_Digest(sql, strlen(sql), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return SB_EIO;
	sb_hex_encode(md, len, out);
	out[2 * len] = '\0';
	return 0;
}

int
sb_migrate_valid_schema(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > 63)
		return 0;
	if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
		return 0;
	for (const char *p = s; *p; p++) {
		if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return 0;
	}
	return 1;
}

int64_t
sb_migrate_lock_key(const char *schema)
{
	/* FNV-1a 64 over a fixed prefix and the schema: stable across builds and machines. */
	static const char prefix[] = "sb_migrate:";
	uint64_t h = sb_hash_fnv1a64(prefix, sizeof(prefix) - 1);
	return (int64_t)sb_hash_fnv1a64_more(h, schema, strlen(schema));
}
