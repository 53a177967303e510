/* routes.c: the gateway's route table. Adding an endpoint is a row here plus a handler in the
 * owning service: the request and response types drive the JSON ⇄ protobuf transcoding. */
#include "gateway.h"

#include <stdio.h>
#include <string.h>

#include "sb_err.h"

#include "rpc.pb-c.h"

#define GW_HEALTH_ROW(svc)                                                                         \
	{                                                                                          \
		"GET", "/v1/health/" svc, NULL, svc, svc ".Health",                                \
		    &sb__rpc__health_request__descriptor, &sb__rpc__health_response__descriptor,   \
		    200, GW_PUBLIC, NULL                                                           \
	}

const struct gw_route gw_routes_core[] = {
	{ "GET", "/v1/health", gw_health, NULL, NULL, NULL, NULL, 200, GW_PUBLIC, NULL },
	{ "GET", "/v1/me", gw_me, NULL, NULL, NULL, NULL, 200, 0, NULL },
	{ "GET", "/dev/credentials", gw_devcreds, NULL, NULL, NULL, NULL, 200, GW_PUBLIC, NULL },
	{ "GET", "/", gw_static, NULL, NULL, NULL, NULL, 200, GW_PUBLIC, NULL },
	{ "GET", "/console/{file}", gw_static, NULL, NULL, NULL, NULL, 200, GW_PUBLIC, NULL },
	GW_HEALTH_ROW("gateway"),
	GW_HEALTH_ROW("auth"),
	GW_HEALTH_ROW("messages"),
	GW_HEALTH_ROW("outbox"),
	GW_HEALTH_ROW("files"),
	GW_HEALTH_ROW("realtime"),
	GW_HEALTH_ROW("notifier"),
	GW_HEALTH_ROW("gc"),
	GW_HEALTH_ROW("pubsub"),
	GW_HEALTH_ROW("registry"),
	{ NULL },
};

/* gw_route_path_match matches path against pattern segment by segment; "{name}" segments
 * capture one non-empty segment into p. */
static bool
gw_route_path_match(const char *pattern, const char *path, struct gw_params *p)
{
	p->n = 0;
	while (*pattern != '\0' && *path != '\0') {
		if (*pattern == '{') {
			const char *close = strchr(pattern, '}');
			const char *end = strchr(path, '/');
			size_t vlen = end ? (size_t)(end - path) : strlen(path);
			if (close == NULL)
				return false;
			size_t nlen = (size_t)(close - pattern - 1);
			if (vlen == 0 || p->n == GW_MAX_PARAMS || vlen >= sizeof(p->value[0]) ||
			    nlen >= sizeof(p->name[0]))
				return false;
			memcpy(p->name[p->n], pattern + 1, nlen);
			p->name[p->n][nlen] = '\0';
			memcpy(p->value[p->n], path, vlen);
			p->value[p->n][vlen] = '\0';
			p->n++;
			pattern = close + 1;
			path += vlen;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

static const struct gw_route *const gw_route_tables[] = {
	gw_routes_core,     gw_routes_auth,     gw_routes_messages,
	gw_routes_notifier, gw_routes_cdc,      gw_routes_pubsub,
	gw_routes_ingest,   gw_routes_registry, NULL,
};

/* gw_route_literals counts the literal (non-parameter) segments of a pattern. */
static int
gw_route_literals(const char *pattern)
{
	int n = 0;
	for (const char *s = pattern; *s != '\0'; s++)
		if (*s == '/' && s[1] != '{' && s[1] != '\0')
			n++;
	return n;
}

/* gw_route_best returns the most literal segments of the patterns that match path (-1: none).
 * Only those patterns serve the path: /api/v1/messages/publish is the literal route's (POST
 * only), not a value of /api/v1/messages/{id}. */
static int
gw_route_best(const char *path)
{
	struct gw_params p;
	int best = -1;
	for (size_t t = 0; gw_route_tables[t] != NULL; t++)
		for (const struct gw_route *r = gw_route_tables[t]; r->method != NULL; r++)
			if (gw_route_literals(r->pattern) > best &&
			    gw_route_path_match(r->pattern, path, &p))
				best = gw_route_literals(r->pattern);
	return best;
}

const struct gw_route *
gw_route_match(const char *method, const char *path, struct gw_params *p, bool *path_known)
{
	*path_known = false;
	int best = gw_route_best(path);
	for (size_t t = 0; gw_route_tables[t] != NULL; t++) {
		for (const struct gw_route *r = gw_route_tables[t]; r->method != NULL; r++) {
			if (gw_route_literals(r->pattern) != best ||
			    !gw_route_path_match(r->pattern, path, p))
				continue;
			*path_known = true;
			if (strcmp(r->method, method) == 0 ||
			    (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0))
				return r;
		}
	}
	return NULL;
}

void
gw_route_allow(const char *path, char *out, size_t n)
{
	struct gw_params p;
	size_t used = 0;
	int best = gw_route_best(path);
	out[0] = '\0';
	for (size_t t = 0; gw_route_tables[t] != NULL; t++) {
		for (const struct gw_route *r = gw_route_tables[t]; r->method != NULL; r++) {
			if (gw_route_literals(r->pattern) != best ||
			    !gw_route_path_match(r->pattern, path, &p) ||
			    strstr(out, r->method) != NULL)
				continue;
			int w = snprintf(out + used, n - used, "%s%s", used ? ", " : "", r->method);
			if (w < 0 || (size_t)w >= n - used) {
				out[used] = '\0'; /* whole methods only, never a cut one */
				return;
			}
			used += (size_t)w;
		}
	}
}

int
gw_routes_list(struct sb_buf *out)
{
	for (size_t t = 0; gw_route_tables[t] != NULL; t++) {
		for (const struct gw_route *r = gw_route_tables[t]; r->method != NULL; r++) {
			if (sb_buf_printf(out, "%s %s\n", r->method, r->pattern) != 0)
				return SB_ENOMEM;
		}
	}
	return 0;
}
