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

static const char *const gw_health_services[] = { "gateway", "auth",     "messages", "outbox",
	                                          "files",   "realtime", "notifier", "gc" };
#define GW_NSERVICES (sizeof(gw_health_services) / sizeof(gw_health_services[0]))

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
	struct gw_health_agg *agg = calloc(1, sizeof(*agg));
	if (agg == NULL) {
		gw_reply_problem(req, 500, "out of memory", NULL, 0);
		return;
	}
	agg->req = req;
	agg->services = json_object();
	agg->all_ready = true;
	agg->pending = GW_NSERVICES + 1; /* one extra held until every call is started */
	pthread_mutex_init(&agg->mu, NULL);

	Sb__Rpc__HealthRequest hr = SB__RPC__HEALTH_REQUEST__INIT;
	struct sb_rpc_meta meta = { .timeout_ms = GW_HEALTH_TIMEOUT_MS };
	for (size_t i = 0; i < GW_NSERVICES; i++) {
		char method[48];
		snprintf(method, sizeof(method), "%s.Health", gw_health_services[i]);
		struct gw_health_one *one = calloc(1, sizeof(*one));
		struct sb_rpc_client *cli = gw_upstream(gw, gw_health_services[i]);
		int rv = SB_ENOMEM;
		if (one != NULL && cli != NULL) {
			one->agg = agg;
			one->name = gw_health_services[i];
			rv = sb_rpc_call_async(cli, method, &hr.base,
			                       &sb__rpc__health_response__descriptor, &meta,
			                       gw_health_done, one);
		}
		if (rv != 0) {
			/* The callback will not run: account for this service here. */
			free(one);
			pthread_mutex_lock(&agg->mu);
			json_object_set_new(
			    agg->services, gw_health_services[i],
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
