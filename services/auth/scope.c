/* scope.c: OAuth scope lists (space-separated, RFC 6749 section 3.3). */
#include "auth.h"

#include <string.h>

#include "sb_err.h"

/* auth_scope_next returns the next scope of *p (length in *n) and advances *p, or NULL. */
static const char *
auth_scope_next(const char **p, size_t *n)
{
	const char *s = *p;
	while (*s == ' ')
		s++;
	if (*s == '\0')
		return NULL;
	const char *e = s;
	while (*e != '\0' && *e != ' ')
		e++;
	*n = (size_t)(e - s);
	*p = e;
	return s;
}

static bool
auth_scope_has_n(const char *list, const char *scope, size_t n)
{
	const char *s;
	size_t m;
	while (list != NULL && (s = auth_scope_next(&list, &m)) != NULL)
		if (m == n && memcmp(s, scope, n) == 0)
			return true;
	return false;
}

bool
auth_scope_has(const char *list, const char *scope)
{
	return scope != NULL && auth_scope_has_n(list, scope, strlen(scope));
}

static int
auth_scope_append(char *out, size_t cap, size_t *used, const char *s, size_t n)
{
	if (auth_scope_has_n(out, s, n))
		return 0;
	if (*used + n + 2 > cap)
		return SB_ERANGE;
	if (*used > 0)
		out[(*used)++] = ' ';
	memcpy(out + *used, s, n);
	*used += n;
	out[*used] = '\0';
	return 0;
}

int
auth_scope_grant(const char *allowed, const char *requested, const char *deny, char *out,
                 size_t cap)
{
	const char *list = (requested != NULL && requested[0] != '\0') ? requested : NULL;
	const char *p = list ? list : (allowed ? allowed : "");
	const char *s;
	size_t n, used = 0;
	if (cap == 0)
		return SB_ERANGE;
	out[0] = '\0';
	while ((s = auth_scope_next(&p, &n)) != NULL) {
		bool denied = auth_scope_has_n(deny, s, n);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x21 || s[i] == '"' || s[i] == '\\' ||
			    (unsigned char)s[i] > 0x7e)
				return SB_EINVAL;
		if (list != NULL && (denied || !auth_scope_has_n(allowed, s, n)))
			return SB_EINVAL;
		if (denied)
			continue;
		int rv = auth_scope_append(out, cap, &used, s, n);
		if (rv != 0)
			return rv;
	}
	return 0;
}
