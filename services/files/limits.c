/* limits.c: what one user may upload: content types (SB_FILES_ALLOWED_TYPES), uploads in
 * progress at once (SB_FILES_MAX_CONCURRENT) and bytes held (SB_FILES_QUOTA_BYTES). The usage
 * check runs in the creating transaction under a per-user advisory lock, so two creations of
 * one user cannot both pass it. */
#include "files.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sb_err.h"
#include "sb_pg.h"

bool
files_type_allowed(const char *list, const char *type)
{
	size_t tlen = strcspn(type, ";");
	while (tlen > 0 && (type[tlen - 1] == ' ' || type[tlen - 1] == '\t'))
		tlen--;
	const char *slash = memchr(type, '/', tlen);
	if (slash == NULL)
		return false;
	size_t major = (size_t)(slash - type);
	for (const char *p = list; *p != '\0';) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ",");
		size_t m = n;
		while (m > 0 && p[m - 1] == ' ')
			m--;
		if (m == 3 && memcmp(p, "*/*", 3) == 0)
			return true;
		if (m == major + 2 && strncasecmp(p, type, major + 1) == 0 && p[major + 1] == '*')
			return true;
		if (m == tlen && m > 0 && strncasecmp(p, type, tlen) == 0)
			return true;
		p += n;
	}
	return false;
}

int
files_limits_check(struct files_call *c, int64_t length, bool new_upload, int *status,
                   const char **why)
{
	const char *p[2] = { c->who.tenant_id, c->user };
	PGresult *res = NULL;
	*status = 0;
	int rv = sb_pg_exec_prepared(c->pg, "user_lock", 2, p, NULL);
	if (rv == 0)
		rv = sb_pg_exec_prepared(c->pg, "user_usage", 2, p, &res);
	if (rv != 0)
		return rv;
	long long inflight = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	long long bytes = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	if (new_upload && inflight >= c->f->cfg->max_concurrent) {
		*status = 429;
		*why = "too many uploads in progress; finish or terminate one";
	} else if (length > 0 && bytes + length > c->f->cfg->quota_bytes) {
		*status = 413;
		*why = "the upload would exceed the user's storage quota";
	}
	return 0;
}
