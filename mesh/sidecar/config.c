/* config.c: the sidecar's settings (environment, one table) and the parsing of the address
 * and upstream lists. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar.h"

static int
cfg_validate_name(const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	bool ok = n > 0 && n < 64;
	for (size_t i = 0; ok && i < n; i++)
		ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '.' ||
		     v[i] == '-' || v[i] == '_';
	if (!ok)
		snprintf(err, errlen, "want 1..63 of [a-z0-9._-]");
	return ok ? 0 : -1;
}

static int
cfg_validate_addr(const char *v, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	socklen_t len;
	if (*v == '\0' || mesh_addr_parse(v, &sa, &len) == 0)
		return 0;
	snprintf(err, errlen, "want host:port");
	return -1;
}

static int
cfg_validate_policy(const char *v, char *err, size_t errlen)
{
	struct mesh_policy p;
	if (mesh_policy_parse(v, &p, err, errlen) != 0)
		return -1;
	mesh_policy_free(&p);
	return 0;
}

#define C struct mesh_cfg
// clang-format off
const struct sb_cfg_key mesh_cfg_table[] = {
	{ "SB_LOG_LEVEL", SB_CFG_STR, offsetof(C, log_level), "info", 0, 0, 0,
	  sb_config_validate_log_level, "Minimum log level: debug, info, warn or error." },
	SB_CFG_STR_ROW(C, "SB_OPS_ADDR", ops_addr, "127.0.0.1", NULL,
	               "Address of the sidecar's ops HTTP server (/live, /ready, /metrics)."),
	SB_CFG_INT_ROW(C, "SB_OPS_PORT", ops_port, "9190", 0, 65535,
	               "Port of the sidecar's ops HTTP server (0: any free port)."),
	{ "SB_MESH_SERVICE", SB_CFG_STR, offsetof(C, service), NULL, 0, 0, SB_CFG_REQUIRED,
	  cfg_validate_name, "The service this sidecar stands beside (its SPIFFE service account)." },
	SB_CFG_STR_ROW(C, "SB_MESH_TRUST_DOMAIN", trust_domain, "switchboard.local",
	               cfg_validate_name, "SPIFFE trust domain of the mesh."),
	SB_CFG_STR_ROW(C, "SB_MESH_NAMESPACE", ns, "default", cfg_validate_name,
	               "Namespace part of the SPIFFE IDs (spiffe://TD/ns/NS/sa/SERVICE)."),
	{ "SB_MESH_CERT", SB_CFG_STR, offsetof(C, cert), NULL, 0, 0, SB_CFG_REQUIRED, NULL,
	  "PEM certificate (chain) of this sidecar's identity; reloaded when it changes." },
	{ "SB_MESH_KEY", SB_CFG_STR, offsetof(C, key), NULL, 0, 0, SB_CFG_REQUIRED, NULL,
	  "PEM private key of that certificate." },
	{ "SB_MESH_CA", SB_CFG_STR, offsetof(C, ca), NULL, 0, 0, SB_CFG_REQUIRED, NULL,
	  "PEM bundle of the mesh CA(s) peers' certificates must chain to." },
	SB_CFG_STR_ROW(C, "SB_MESH_INBOUND", inbound, "", cfg_validate_addr,
	               "host:port of the mTLS listener for callers (empty: no inbound side)."),
	SB_CFG_STR_ROW(C, "SB_MESH_TARGET", target, "127.0.0.1:7100", cfg_validate_addr,
	               "host:port of the service's own RPC listener, where inbound calls go."),
	SB_CFG_STR_ROW(C, "SB_MESH_OUTBOUND", outbound, "", NULL,
	               "Upstreams: 'name=listen>sidecar[|sidecar...]' separated by spaces; the "
	               "service dials listen, the sidecar carries it over mTLS to name's sidecars."),
	SB_CFG_STR_ROW(C, "SB_MESH_ALLOW", allow, "", cfg_validate_policy,
	               "Inbound policy: 'caller=method-glob' allows, 'caller=!glob' denies (wins); "
	               "caller is a service name or *."),
	SB_CFG_INT_ROW(C, "SB_MESH_CONNECT_TIMEOUT_MS", connect_timeout_ms, "2000", 10, 600000,
	               "Dialing an upstream sidecar or the service, TLS handshake included."),
	SB_CFG_INT_ROW(C, "SB_MESH_HANDSHAKE_TIMEOUT_MS", handshake_timeout_ms, "5000", 10, 600000,
	               "How long an inbound caller may take to complete its TLS handshake."),
	SB_CFG_INT_ROW(C, "SB_MESH_IDLE_TIMEOUT_MS", idle_timeout_ms, "3600000", 100, 86400000,
	               "A connection with no byte either way for this long is closed."),
	SB_CFG_INT_ROW(C, "SB_MESH_MAX_FRAME", max_frame, "16777216", 1024, 1073741824,
	               "Largest SP message accepted; a longer one closes the connection."),
	SB_CFG_INT_ROW(C, "SB_MESH_RELOAD_MS", reload_ms, "1000", 50, 3600000,
	               "How often the certificate files are checked for changes."),
	SB_CFG_INT_ROW(C, "SB_MESH_EJECT_FAILURES", eject_failures, "3", 1, 1000,
	               "Consecutive failed dials that eject an upstream sidecar."),
	SB_CFG_INT_ROW(C, "SB_MESH_EJECT_BASE_MS", eject_base_ms, "1000", 1, 600000,
	               "Ceiling of the first ejection (full jitter), doubling per ejection."),
	SB_CFG_INT_ROW(C, "SB_MESH_EJECT_MAX_MS", eject_max_ms, "30000", 1, 3600000,
	               "Ceiling of any ejection."),
	SB_CFG_INT_ROW(C, "SB_MESH_MAX_CONNS", max_conns, "4096", 1, 100000,
	               "Connections held at once (both directions); more are refused."),
	SB_CFG_INT_ROW(C, "SB_SHUTDOWN_GRACE_MS", grace_ms, "10000", 0, 600000,
	               "On SIGTERM, how long requests in flight may take to be answered; "
	               "connections close as soon as they carry none."),
	{ NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL },
};
// clang-format on
#undef C

int
mesh_addr_parse(const char *s, struct sockaddr_storage *sa, socklen_t *len)
{
	char host[128];
	const char *colon, *hs = s;
	size_t hl;
	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		hs = s + 1;
		hl = (size_t)(rb - hs);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof host)
		return -1;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
		return -1;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char ps[8];
	snprintf(ps, sizeof ps, "%ld", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0 || ai == NULL)
		return -1;
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int
mesh_upstreams_parse(const struct mesh_cfg *cfg, struct mesh_upstream **ups, size_t *n, char *err,
                     size_t errlen)
{
	*ups = NULL;
	*n = 0;
	char *text = strdup(cfg->outbound ? cfg->outbound : "");
	if (text == NULL)
		return -1;
	char *save = NULL;
	for (char *item = strtok_r(text, " \t\n,;", &save); item;
	     item = strtok_r(NULL, " \t\n,;", &save)) {
		char *eq = strchr(item, '='), *gt = eq ? strchr(eq, '>') : NULL;
		if (eq == NULL || gt == NULL) {
			snprintf(err, errlen, "bad upstream '%.60s' (want name=listen>sidecar)",
			         item);
			goto fail;
		}
		*eq = *gt = '\0';
		if (cfg_validate_name(item, err, errlen) != 0 || strlen(eq + 1) >= 128)
			goto fail;
		struct mesh_upstream *nu = realloc(*ups, (*n + 1) * sizeof *nu);
		if (nu == NULL)
			goto fail;
		*ups = nu;
		struct mesh_upstream *u = &nu[(*n)++];
		memset(u, 0, sizeof *u);
		snprintf(u->name, sizeof u->name, "%s", item);
		snprintf(u->listen, sizeof u->listen, "%s", eq + 1);
		snprintf(u->expect_id, sizeof u->expect_id, "spiffe://%s/ns/%s/sa/%s",
		         cfg->trust_domain, cfg->ns, item);
		struct sockaddr_storage tmp;
		socklen_t tl;
		if (mesh_addr_parse(u->listen, &tmp, &tl) != 0) {
			snprintf(err, errlen, "upstream %s: bad listen address '%.60s'", u->name,
			         u->listen);
			goto fail;
		}
		char *save2 = NULL;
		for (char *ep = strtok_r(gt + 1, "|", &save2); ep;
		     ep = strtok_r(NULL, "|", &save2)) {
			struct mesh_endpoint *ne = realloc(u->eps, (u->neps + 1) * sizeof *ne);
			if (ne == NULL)
				goto fail;
			u->eps = ne;
			struct mesh_endpoint *e = &ne[u->neps++];
			memset(e, 0, sizeof *e);
			if (strlen(ep) >= sizeof e->addr ||
			    mesh_addr_parse(ep, &e->sa, &e->salen) != 0) {
				snprintf(err, errlen, "upstream %s: bad sidecar address '%.60s'",
				         u->name, ep);
				goto fail;
			}
			snprintf(e->addr, sizeof e->addr, "%s", ep);
			sb_backoff_init(&e->backoff, (uint32_t)cfg->eject_base_ms,
			                (uint32_t)cfg->eject_max_ms);
		}
		if (u->neps == 0) {
			snprintf(err, errlen, "upstream %s: no sidecar address", u->name);
			goto fail;
		}
	}
	free(text);
	return 0;
fail:
	free(text);
	for (size_t i = 0; i < *n; i++)
		free((*ups)[i].eps);
	free(*ups);
	*ups = NULL;
	*n = 0;
	return -1;
}
