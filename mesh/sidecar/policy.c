/* policy.c: SPIFFE IDs and the per-service authorization policy (who may call which method). */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar.h"

static bool
policy_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* policy_segment copies the segment at *s (up to '/' or end) into out and advances *s. */
static int
policy_segment(const char **s, const char *end, char out[64])
{
	size_t n = 0;
	while (*s < end && **s != '/') {
		if (!policy_name_char(**s) || n >= 63)
			return -1;
		out[n++] = *(*s)++;
	}
	out[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* policy_literal consumes lit at *s. */
static int
policy_literal(const char **s, const char *end, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(end - *s) < n || memcmp(*s, lit, n) != 0)
		return -1;
	*s += n;
	return 0;
}

int
mesh_id_parse(const char *uri, size_t n, struct mesh_id *out)
{
	const char *s = uri, *end = uri + n;
	if (policy_literal(&s, end, "spiffe://") != 0 || policy_segment(&s, end, out->td) != 0 ||
	    policy_literal(&s, end, "/ns/") != 0 || policy_segment(&s, end, out->ns) != 0 ||
	    policy_literal(&s, end, "/sa/") != 0 || policy_segment(&s, end, out->sa) != 0 ||
	    s != end)
		return -1;
	return 0;
}

void
mesh_policy_free(struct mesh_policy *p)
{
	free(p->rules);
	p->rules = NULL;
	p->n = 0;
}

int
mesh_policy_parse(const char *text, struct mesh_policy *p, char *err, size_t errlen)
{
	p->rules = NULL;
	p->n = 0;
	const char *s = text ? text : "";
	size_t cap = 0;
	while (*s) {
		size_t sep = strspn(s, " \t\n,;");
		s += sep;
		if (!*s)
			break;
		size_t len = strcspn(s, " \t\n,;");
		const char *eq = memchr(s, '=', len);
		struct mesh_rule r = { 0 };
		size_t clen = eq ? (size_t)(eq - s) : 0;
		const char *g = eq ? eq + 1 : NULL;
		size_t glen = eq ? len - clen - 1 : 0;
		if (g && glen > 0 && *g == '!') {
			r.deny = true;
			g++;
			glen--;
		}
		bool ok =
		    eq && clen > 0 && clen < sizeof r.caller && glen > 0 && glen <= MESH_METHOD_MAX;
		for (size_t i = 0; ok && i < clen; i++)
			ok = policy_name_char(s[i]) || (clen == 1 && s[i] == '*');
		for (size_t i = 0; ok && i < glen; i++)
			ok = g[i] > ' ' && g[i] < 0x7f && g[i] != '=';
		if (!ok) {
			snprintf(err, errlen,
			         "bad rule '%.*s' (want caller=method-glob or caller=!glob)",
			         (int)(len > 80 ? 80 : len), s);
			mesh_policy_free(p);
			return -1;
		}
		memcpy(r.caller, s, clen);
		memcpy(r.glob, g, glen);
		if (p->n == cap) {
			cap = cap ? 2 * cap : 8;
			struct mesh_rule *nr = realloc(p->rules, cap * sizeof *nr);
			if (nr == NULL) {
				snprintf(err, errlen, "out of memory");
				mesh_policy_free(p);
				return -1;
			}
			p->rules = nr;
		}
		p->rules[p->n++] = r;
		s += len;
	}
	return 0;
}

static bool
policy_names(const struct mesh_rule *r, const char *caller)
{
	return strcmp(r->caller, "*") == 0 || strcmp(r->caller, caller) == 0;
}

bool
mesh_policy_caller(const struct mesh_policy *p, const char *caller)
{
	for (size_t i = 0; i < p->n; i++)
		if (!p->rules[i].deny && policy_names(&p->rules[i], caller))
			return true;
	return false;
}

bool
mesh_policy_method(const struct mesh_policy *p, const char *caller, const char *method)
{
	bool allowed = false;
	for (size_t i = 0; i < p->n; i++) {
		const struct mesh_rule *r = &p->rules[i];
		if (!policy_names(r, caller) || fnmatch(r->glob, method, 0) != 0)
			continue;
		if (r->deny)
			return false;
		allowed = true;
	}
	return allowed;
}
