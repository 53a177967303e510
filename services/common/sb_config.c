/* sb_config.c: loading, checking, logging and documenting configuration tables. */
#include "sb_config.h"
#include "sb_err.h"
#include "sb_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *
sb_config_default_getenv(const char *name, void *arg)
{
	(void)arg;
	return getenv(name);
}

static int
sb_config_parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return SB_EINVAL;
}

static int
sb_config_set(const struct sb_cfg_key *k, void *cfg, const char *v, char *err, size_t errlen)
{
	char *field = (char *)cfg + k->offset;
	switch (k->type) {
	case SB_CFG_STR: {
		if (k->validate != NULL) {
			char why[200] = "";
			if (k->validate(v, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "%s: %s", k->env,
				         why[0] ? why : "invalid value");
				return SB_EINVAL;
			}
		}
		char *s = strdup(v);
		if (s == NULL) {
			snprintf(err, errlen, "%s: out of memory", k->env);
			return SB_ENOMEM;
		}
		memcpy(field, &s, sizeof(s));
		return 0;
	}
	case SB_CFG_INT: {
		char *end = NULL;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (*v == '\0' || errno != 0 || end == NULL || *end != '\0') {
			snprintf(err, errlen, "%s: \"%s\" is not an integer", k->env, v);
			return SB_EINVAL;
		}
		if (n < k->min || n > k->max) {
			snprintf(err, errlen, "%s: %lld is out of range [%lld, %lld]", k->env, n,
			         k->min, k->max);
			return SB_ERANGE;
		}
		memcpy(field, &n, sizeof(n));
		return 0;
	}
	case SB_CFG_BOOL: {
		bool b;
		if (sb_config_parse_bool(v, &b) != 0) {
			snprintf(err, errlen, "%s: \"%s\" is not a boolean (true/false)", k->env,
			         v);
			return SB_EINVAL;
		}
		memcpy(field, &b, sizeof(b));
		return 0;
	}
	}
	snprintf(err, errlen, "%s: unknown type", k->env);
	return SB_EINVAL;
}

int
sb_config_load(const struct sb_cfg_key *tbl, void *cfg, sb_cfg_getenv_fn getenv_fn, void *arg,
               char *err, size_t errlen)
{
	if (getenv_fn == NULL)
		getenv_fn = sb_config_default_getenv;
	for (const struct sb_cfg_key *k = tbl; k->env != NULL; k++) {
		const char *v = getenv_fn(k->env, arg);
		if (v == NULL) {
			if (k->flags & SB_CFG_REQUIRED) {
				snprintf(err, errlen, "%s: required but not set", k->env);
				return SB_EINVAL;
			}
			v = k->def ? k->def : (k->type == SB_CFG_STR ? "" : "0");
		}
		int rv = sb_config_set(k, cfg, v, err, errlen);
		if (rv != 0)
			return rv;
	}
	return 0;
}

void
sb_config_free(const struct sb_cfg_key *tbl, void *cfg)
{
	for (const struct sb_cfg_key *k = tbl; k->env != NULL; k++) {
		if (k->type != SB_CFG_STR)
			continue;
		char *s;
		memcpy(&s, (char *)cfg + k->offset, sizeof(s));
		if (s != NULL && (k->flags & SB_CFG_SECRET))
			explicit_bzero(s, strlen(s));
		free(s);
		s = NULL;
		memcpy((char *)cfg + k->offset, &s, sizeof(s));
	}
}

static void
sb_config_value(const struct sb_cfg_key *k, const void *cfg, char *out, size_t n)
{
	const char *field = (const char *)cfg + k->offset;
	switch (k->type) {
	case SB_CFG_STR: {
		const char *s;
		memcpy(&s, field, sizeof(s));
		if (k->flags & SB_CFG_SECRET)
			snprintf(out, n, "%s", (s && *s) ? "***" : "");
		else
			sb_log_mask_url(s ? s : "", out, n);
		break;
	}
	case SB_CFG_INT: {
		long long v;
		memcpy(&v, field, sizeof(v));
		snprintf(out, n, "%lld", v);
		break;
	}
	case SB_CFG_BOOL: {
		bool b;
		memcpy(&b, field, sizeof(b));
		snprintf(out, n, "%s", b ? "true" : "false");
		break;
	}
	}
}

void
sb_config_log(const struct sb_cfg_key *tbl, const void *cfg)
{
	struct sb_buf b = SB_BUF_INIT;
	for (const struct sb_cfg_key *k = tbl; k->env != NULL; k++) {
		char v[512];
		sb_config_value(k, cfg, v, sizeof(v));
		sb_buf_printf(&b, "%s%s=%s", b.len ? " " : "", k->env, v);
	}
	sb_log_kv(SB_LOG_INFO, "effective configuration", "config", b.data ? b.data : "", NULL);
	sb_buf_free(&b);
}

int
sb_config_markdown(const struct sb_cfg_key *tbl, struct sb_buf *out)
{
	static const char *const types[] = { "string", "integer", "boolean" };
	for (const struct sb_cfg_key *k = tbl; k->env != NULL; k++) {
		char range[64] = "";
		if (k->type == SB_CFG_INT)
			snprintf(range, sizeof(range), " (%lld–%lld)", k->min, k->max);
		char def[256] = "";
		if (k->flags & SB_CFG_REQUIRED)
			snprintf(def, sizeof(def), "*required*");
		else if (k->def != NULL && *k->def != '\0')
			snprintf(def, sizeof(def), "`%s`", k->def);
		if (sb_buf_printf(out, "| `%s` | %s%s | %s | %s%s |\n", k->env, types[k->type],
		                  range, def, k->help ? k->help : "",
		                  (k->flags & SB_CFG_SECRET) ? " Secret: never logged." : "") != 0)
			return SB_ENOMEM;
	}
	return 0;
}

int
sb_config_validate_log_level(const char *v, char *err, size_t errlen)
{
	enum sb_log_level l;
	if (sb_log_level_parse(v, &l) != 0) {
		snprintf(err, errlen, "\"%s\" is not one of debug, info, warn, error", v);
		return SB_EINVAL;
	}
	return 0;
}

int
sb_config_validate_nng_url(const char *v, char *err, size_t errlen)
{
	static const char *const schemes[] = { "tcp://", "tcp4://",   "tcp6://",
		                               "ipc://", "inproc://", "tls+tcp://" };
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i]);
		if (strncmp(v, schemes[i], n) == 0 && v[n] != '\0')
			return 0;
	}
	snprintf(err, errlen, "\"%s\" is not an nng URL (tcp://host:port, ipc://path)", v);
	return SB_EINVAL;
}

int
sb_config_validate_url(const char *v, char *err, size_t errlen)
{
	const char *p = strstr(v, "://");
	if (p == NULL || p == v || p[3] == '\0') {
		snprintf(err, errlen, "not a URL (scheme://...)");
		return SB_EINVAL;
	}
	return 0;
}

/* sb_config_kv_value returns the end of the libpq conninfo value that starts at p: a quoted
 * value ends after its closing quote (backslash escapes), an unquoted one at a space. NULL for an
 * unterminated quote. */
static const char *
sb_config_kv_value(const char *p)
{
	if (*p != '\'')
		return p + strcspn(p, " \t\r\n");
	for (p++; *p != '\''; p++) {
		if (*p == '\0')
			return NULL;
		if (*p == '\\' && p[1] != '\0')
			p++;
	}
	return p + 1;
}

int
sb_config_validate_pg_dsn(const char *v, char *err, size_t errlen)
{
	if (strstr(v, "://") != NULL)
		return sb_config_validate_url(v, err, errlen);
	/* libpq's keyword/value form: key = value pairs separated by white space. */
	const char *p = v;
	int pairs = 0;
	for (;;) {
		p += strspn(p, " \t\r\n");
		if (*p == '\0')
			break;
		size_t klen = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
		const char *q = p + klen;
		q += strspn(q, " \t");
		if (klen == 0 || *q != '=') {
			snprintf(err, errlen,
			         "neither a URL (postgresql://...) nor libpq key=value pairs (at "
			         "\"%.20s\")",
			         p);
			return SB_EINVAL;
		}
		q++;
		q += strspn(q, " \t");
		const char *end = sb_config_kv_value(q);
		if (end == NULL) {
			snprintf(err, errlen, "unterminated quote in the value of \"%.*s\"",
			         (int)klen, p);
			return SB_EINVAL;
		}
		p = end;
		pairs++;
	}
	if (pairs == 0) {
		snprintf(err, errlen, "empty: a URL (postgresql://...) or libpq key=value pairs");
		return SB_EINVAL;
	}
	return 0;
}

int
sb_config_validate_topic_prefix(const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	/* Kafka topic names: at most 249 characters of [a-zA-Z0-9._-]; leave room for the base. */
	if (n > 100) {
		snprintf(err, errlen, "longer than 100 characters");
		return SB_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			snprintf(err, errlen,
			         "character %zu is not a letter, digit, '.', '_' or '-'", i + 1);
			return SB_EINVAL;
		}
	}
	return 0;
}
