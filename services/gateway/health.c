/* health.c: GET /v1/health, the aggregate Health of every service. The Health RPCs go out in
 * parallel; the answer is built when the last one completes (each has its own deadline). */
#include "gateway.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"

#define GW_HEALTH_TIMEOUT_MS 2000

/* Every service the gateway can ask (its upstreams). SB_HEALTH_SERVICES names some of them. */
static const char *const gw_health_known[] = { "gateway", "auth",     "messages", "outbox",
	                                       "files",   "realtime", "notifier", "gc",
	                                       "ingest",  "pubsub",   "cdcsink",  "registry" };
#define GW_NKNOWN (sizeof(gw_health_known) / sizeof(gw_health_known[0]))

/* gw_health_list splits v into the known names it lists (in gw_health_known's storage).
 * Returns their number, or -1 and an error for an unknown, repeated or empty name. */
static int
gw_health_list(const char *v, const char *out[GW_NKNOWN], char *err, size_t errlen)
{
	int n = 0;
	for (const char *p = v;;) {
		size_t len = strcspn(p, ",");
		const char *name = NULL;
		for (size_t i = 0; i < GW_NKNOWN; i++)
			if (strlen(gw_health_known[i]) == len &&
			    strncmp(p, gw_health_known[i], len) == 0)
				name = gw_health_known[i];
		for (int i = 0; name != NULL && i < n; i++)
			if (out[i] == name) {
				snprintf(err, errlen, "%s is named twice", name);
				return -1;
			}
		if (name == NULL) {
			snprintf(
			    err, errlen,
			    "\"%.*s\" is not a service (gateway, auth, messages, outbox, files, "
			    "realtime, notifier, gc, ingest, pubsub, cdcsink, registry)",
			    (int)(len > 32 ? 32 : len), p);
			return -1;
		}
		out[n++] = name;
		if (p[len] == '\0')
			return n;
		p += len + 1;
	}
}

int
gw_health_services_check(const char *v, char *err, size_t errlen)
{
	const char *names[GW_NKNOWN];
	return gw_health_list(v, names, err, errlen) < 0 ? -1 : 0;
}

struct gw_health_agg {
	struct gw_req *req;
	pthread_mutex_t mu;
	size_t pending;
	json_t *services; /* object: name → status */
	bool all_ready;
};

struct gw_health_one {
	struct gw_health_agg *agg;
	const char *name;
};

static void
gw_health_finish(struct gw_health_agg *agg)
{
	json_t *body = json_pack("{s:s,s:o}", "status", agg->all_ready ? "ok" : "degraded",
	                         "services", agg->services);
	gw_reply_json(agg->req, agg->all_ready ? 200 : 503, body);
	json_decref(body);
	pthread_mutex_destroy(&agg->mu);
	free(agg);
}

static json_t *
gw_health_entry(const struct sb_rpc_result *res)
{
	if (res->code != 0 || res->resp == NULL)
		return json_pack("{s:b,s:s,s:s}", "ready", 0, "code", sb_rpc_code_name(res->code),
		                 "error", res->message);
	const Sb__Rpc__HealthResponse *h = (const Sb__Rpc__HealthResponse *)res->resp;
	json_t *deps = json_array();
	for (size_t i = 0; i < h->n_dependencies; i++)
		json_array_append_new(
		    deps, json_pack("{s:s,s:b,s:s}", "name", h->dependencies[i]->name, "ok",
		                    h->dependencies[i]->ok, "detail", h->dependencies[i]->detail));
	return json_pack("{s:b,s:s,s:I,s:o}", "ready", h->ready, "version", h->version, "uptime_ms",
	                 (json_int_t)h->uptime_ms, "dependencies", deps);
}

static void
gw_health_done(struct sb_rpc_result *res, void *arg)
{
	struct gw_health_one *one = arg;
	struct gw_health_agg *agg = one->agg;
	json_t *entry = gw_health_entry(res);
	bool ready = json_is_true(json_object_get(entry, "ready"));
	sb_rpc_result_free(res);

	pthread_mutex_lock(&agg->mu);
	json_object_set_new(agg->services, one->name, entry);
	if (!ready)
		agg->all_ready = false;
	bool last = --agg->pending == 0;
	pthread_mutex_unlock(&agg->mu);
	free(one);
	if (last)
		gw_health_finish(agg);
}

void
gw_health(struct gw_req *req)
{
	struct gw *gw = req->gw;
	const char *names[GW_NKNOWN];
	char err[160];
	int n = gw_health_list(gw->cfg->health_services, names, err, sizeof(err));
	if (n < 0) { /* checked at start: cannot happen */
		gw_reply_problem(req, 500, err, NULL, 0);
		return;
	}
	struct gw_health_agg *agg = calloc(1, sizeof(*agg));
	if (agg == NULL) {
		gw_reply_problem(req, 500, "out of memory", NULL, 0);
		return;
	}
	agg->req = req;
	agg->services = json_object();
	agg->all_ready = true;
	agg->pending = (size_t)n + 1; /* one extra held until every call is started */
	pthread_mutex_init(&agg->mu, NULL);

	Sb__Rpc__HealthRequest hr = SB__RPC__HEALTH_REQUEST__INIT;
	struct sb_rpc_meta meta = { .timeout_ms = GW_HEALTH_TIMEOUT_MS };
	for (int i = 0; i < n; i++) {
		char method[48];
		snprintf(method, sizeof(method), "%s.Health", names[i]);
		struct gw_health_one *one = calloc(1, sizeof(*one));
		struct sb_rpc_client *cli = gw_upstream(gw, names[i]);
		int rv = SB_ENOMEM;
		if (one != NULL && cli != NULL) {
			one->agg = agg;
			one->name = names[i];
			rv = sb_rpc_call_async(cli, method, &hr.base,
			                       &sb__rpc__health_response__descriptor, &meta,
			                       gw_health_done, one);
		}
		if (rv != 0) {
			/* The callback will not run: account for this service here. */
			free(one);
			pthread_mutex_lock(&agg->mu);
			json_object_set_new(
			    agg->services, names[i],
			    json_pack("{s:b,s:s}", "ready", 0, "error", "cannot call the service"));
			agg->all_ready = false;
			agg->pending--;
			pthread_mutex_unlock(&agg->mu);
		}
	}
	pthread_mutex_lock(&agg->mu);
	bool last = --agg->pending == 0;
	pthread_mutex_unlock(&agg->mu);
	if (last)
		gw_health_finish(agg);
}
