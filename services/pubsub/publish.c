/* publish.c: RPC Publish. Checks the message, routes it to the subscriptions whose filter it
 * satisfies and stores it with one delivery per subscription in one statement, committed with
 * the concurrent publishes of other workers (commit.c), so an acknowledged publish is in PostgreSQL
 * before the answer leaves. An idempotency key seen within the window answers the first message's
 * id and stores nothing. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_pg.h"
#include "sb_util_uuid.h"

#define PS_KEY_MAX 256

/* ps_bad records a violation of field at (a prefix such as "messages/3/", "" for a single
 * publish) + field and answers INVALID_ARGUMENT. */
static int
ps_bad(struct sb_rpc_call *call, const char *at, const char *field, const char *reason)
{
	char f[64];
	snprintf(f, sizeof(f), "%s%s", at, field);
	return ps_invalid(call, f, reason);
}

/* Builds the headers object (a new reference) from the request's map; NULL with the answered
 * error in *rv. */
static json_t *
ps_headers_json(struct sb_rpc_call *call, const Sb__Pubsub__PublishRequest *in, const char *at,
                int *rv)
{
	json_t *h = json_object();
	if (h == NULL) {
		*rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
		return NULL;
	}
	if (in->n_headers > 64) {
		*rv = ps_bad(call, at, "headers", "at most 64 headers");
		goto fail;
	}
	for (size_t i = 0; i < in->n_headers; i++) {
		const char *k = in->headers[i]->key, *v = in->headers[i]->value;
		if (k == NULL || k[0] == '\0' || strlen(k) > PS_KEY_MAX) {
			*rv = ps_bad(call, at, "headers", "names are 1 to 256 characters");
			goto fail;
		}
		if (v != NULL && strlen(v) > 4096) {
			*rv = ps_bad(call, at, "headers", "values are at most 4096 characters");
			goto fail;
		}
		json_object_set_new(h, k, json_string(v ? v : ""));
	}
	/* The trace travels with the message: consumers continue the publisher's trace. */
	const char *tp = sb_rpc_call_traceparent(call);
	if (tp[0] != '\0' && json_object_get(h, PS_TRACE_HEADER) == NULL)
		json_object_set_new(h, PS_TRACE_HEADER, json_string(tp));
	return h;
fail:
	json_decref(h);
	return NULL;
}

void
ps_msg_free(struct ps_msg *m)
{
	free(m->htext);
	m->htext = NULL;
	sb_buf_free(&m->subs);
	m->nsubs = 0;
	m->ncursor = 0;
	m->push = false;
}

int
ps_msg_prepare(struct sb_rpc_call *call, struct ps_state *st, const struct ps_topic *t,
               const PGresult *sres, const Sb__Pubsub__PublishRequest *in, const char *at,
               struct ps_msg *m)
{
	json_t *headers = NULL, *payload = NULL;
	int rv = SB__RPC__CODE__INVALID_ARGUMENT;
	const char *ptext = in->payload && in->payload->json ? in->payload->json : "";
	m->subs = (struct sb_buf)SB_BUF_INIT;
	m->htext = NULL;
	m->nsubs = 0;
	m->ncursor = 0;
	m->push = false;
	if (ptext[0] == '\0')
		return ps_bad(call, at, "payload", "required (any JSON value)");
	if ((long long)strlen(ptext) > st->cfg->max_payload_bytes)
		return ps_bad(call, at, "payload", "larger than SB_PUBSUB_MAX_PAYLOAD_BYTES");
	if (in->priority < 0 || in->priority > 9)
		return ps_bad(call, at, "priority", "0 to 9");
	if (strlen(in->ordering_key) > PS_KEY_MAX)
		return ps_bad(call, at, "ordering_key", "at most 256 characters");
	if (strlen(in->idempotency_key) > PS_KEY_MAX)
		return ps_bad(call, at, "idempotency_key", "at most 256 characters");
	if (strcmp(t->guarantee, "exactly_once") == 0 && in->idempotency_key[0] == '\0')
		return ps_bad(call, at, "idempotency_key", "required on exactly_once topics");
	if ((headers = ps_headers_json(call, in, at, &rv)) == NULL)
		return rv;
	if (t->schema_subject[0] != '\0' &&
	    (rv = ps_schema_validate(call, t->schema_subject, at, ptext)) != SB__RPC__CODE__OK)
		goto done;
	/* Route: every subscription whose filter the message satisfies. */
	rv = SB__RPC__CODE__INTERNAL;
	if (sb_buf_puts(&m->subs, "{") != 0)
		goto nomem;
	for (int i = 0; i < PQntuples(sres); i++) {
		if (PQgetisnull(sres, i, 5))
			continue;
		if (strcmp(PQgetvalue(sres, i, 9), "cursor") == 0) {
			/* no delivery row: it reads the topic (store.c, cursor subscriptions) */
			m->ncursor++;
			continue;
		}
		const char *ftext = PQgetvalue(sres, i, 6);
		if (strcmp(ftext, "{\"headers\": {}, \"payload\": []}") != 0) {
			json_error_t err;
			json_t *f = json_loads(ftext, 0, &err);
			if (payload == NULL && json_array_size(json_object_get(f, "payload")) > 0)
				payload = json_loads(ptext, JSON_DECODE_ANY, &err);
			bool ok = f != NULL && ps_filter_match(f, headers, payload);
			json_decref(f);
			if (!ok)
				continue;
		}
		if (sb_buf_printf(&m->subs, "%s%s", m->nsubs ? "," : "", PQgetvalue(sres, i, 5)) !=
		    0)
			goto nomem;
		m->nsubs++;
		m->push = m->push || PQgetvalue(sres, i, 7)[0] == 't';
	}
	if (sb_buf_puts(&m->subs, "}") != 0 ||
	    (m->htext = json_dumps(headers, JSON_COMPACT)) == NULL)
		goto nomem;
	struct sb_uuid uuid;
	if (sb_uuid_v7(&uuid) != 0) {
		rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "no randomness");
		goto done;
	}
	sb_uuid_format(&uuid, m->id);
	snprintf(m->prio, sizeof(m->prio), "%d", in->priority);
	rv = SB__RPC__CODE__OK;
	goto done;
nomem:
	rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
done:
	json_decref(payload);
	json_decref(headers);
	if (rv != SB__RPC__CODE__OK)
		ps_msg_free(m);
	return rv;
}

int
ps_rpc_publish(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__PublishRequest *in = req;
	Sb__Pubsub__PublishResponse *out = resp;
	struct ps_state *st = ps_ctx(call);
	const char *tenant = ps_tenant(call);
	struct ps_topic t = { 0 };
	PGresult *sres = NULL, *res = NULL;
	struct ps_msg m = { .subs = SB_BUF_INIT };
	int rv, tries = 0;
	bool cached = false; /* the route came from the cache (route.c) */
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (!ps_name_ok(in->topic))
		return ps_invalid(call, "topic",
		                  "1 to 100 of A-Z a-z 0-9 . _ -, not ending in .dlq");
again:
	/* The route: cached (route.c) unless a publish with it found it stale. */
	if ((rv = ps_route_load(call, st, tenant, in->topic, tries == 0, &sres, &cached)) !=
	    SB__RPC__CODE__OK)
		return rv;
	ps_topic_of_route(sres, &t);
	struct sb_series *invalid = sb_metric_with(st->m_invalid, t.name);
	int64_t route_ns = ps_trace_now_ns();
	if ((rv = ps_msg_prepare(call, st, &t, sres, in, "", &m)) != SB__RPC__CODE__OK) {
		if (rv == SB__RPC__CODE__INVALID_ARGUMENT)
			goto bad;
		goto done;
	}
	char window[24];
	snprintf(window, sizeof(window), "%lld", st->cfg->idempotency_window_s);
	const char *p[] = { t.id,
		            in->idempotency_key,
		            m.id,
		            in->payload->json,
		            m.htext,
		            m.prio,
		            in->ordering_key,
		            m.subs.data,
		            window,
		            t.ordering_keys ? in->ordering_key : "",
		            PQgetvalue(sres, 0, 8) };
	const char *const *row[] = { p };
	if ((rv = ps_publish_grouped(st, call, row, 1, &res)) != 0) {
		rv = rv == SB_EINVAL ? ps_invalid(call, "payload", "not storable JSON")
		                     : ps_db_error(call, "publish", rv);
		goto done;
	}
	if (PQgetvalue(res, 0, 2)[0] != 't') {
		/* The topic's route_version moved since the route was read (a subscription was
		 * created, the topic changed or went): nothing was stored; route again. */
		ps_route_drop(st, tenant, in->topic);
		sb_series_inc(st->m_route_stale);
		if (++tries < 3)
			goto reroute;
		sb_rpc_call_retry_after(call, 100);
		rv = sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
		                       "topic %s kept changing during the publish", in->topic);
		goto done;
	}
	if (atoi(PQgetvalue(res, 0, 0)) == 0) {
		/* A live idempotency key: answer the first message's id. */
		PQclear(res);
		res = NULL;
		if ((rv = ps_idem_get(call, &t, in->idempotency_key, &out->id)) !=
		    SB__RPC__CODE__OK)
			goto done;
		out->duplicate = true;
		sb_rpc_call_set_http_status(call, 200);
		sb_series_inc(sb_metric_with(st->m_duplicates, t.name));
	} else {
		out->id = ps_dup(call, m.id);
		out->subscriptions = atoi(PQgetvalue(res, 0, 1)) + m.ncursor;
		/* routed and stored (committed): a span under the publish's, in its trace */
		ps_trace_span("pubsub route", SB_SPAN_INTERNAL, sb_rpc_call_traceparent(call),
		              route_ns, m.id, NULL, 0);
		sb_series_inc(sb_metric_with(st->m_published, t.name));
		/* the waiting consumers were woken by ps_publish_grouped, once per group */
		if (m.push)
			ps_push_wake(st);
	}
	rv = out->id ? SB__RPC__CODE__OK
	             : sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	goto done;
bad:
	if (cached) {
		/* Refused with a cached route: the topic may have changed since (its schema, its
		 * guarantee) or be gone; check again with the route read from the store. */
		sb_rpc_call_clear_violations(call);
		ps_route_drop(st, tenant, in->topic);
		tries++;
		goto reroute;
	}
	sb_series_inc(invalid);
	sb_log_kv(SB_LOG_INFO, "publish refused", "topic", t.name, "tenant_id", tenant, NULL);
	goto done;
reroute:
	ps_msg_free(&m);
	PQclear(res);
	res = NULL;
	PQclear(sres);
	sres = NULL;
	goto again;
done:
	ps_msg_free(&m);
	PQclear(res);
	PQclear(sres);
	return rv;
}

int
ps_route_load(struct sb_rpc_call *call, struct ps_state *st, const char *tenant, const char *topic,
              bool use_cache, PGresult **sres, bool *cached)
{
	*sres = use_cache ? ps_route_get(st, tenant, topic) : NULL;
	*cached = *sres != NULL;
	if (*sres != NULL)
		return SB__RPC__CODE__OK;
	const char *rp[] = { tenant, topic };
	int rv;
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "pub_route", 2, rp, sres)) != 0) {
		*sres = NULL;
		return ps_db_error(call, "pub_route", rv);
	}
	if (PQntuples(*sres) == 0) {
		PQclear(*sres);
		*sres = NULL;
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no topic %s", topic);
	}
	sb_series_inc(st->m_route_reads);
	ps_route_put(st, tenant, topic, *sres);
	return SB__RPC__CODE__OK;
}

void
ps_topic_of_route(const PGresult *sres, struct ps_topic *t)
{
	t->id = PQgetvalue(sres, 0, 0);
	t->name = PQgetvalue(sres, 0, 1);
	t->schema_subject = PQgetvalue(sres, 0, 2);
	t->ordering_keys = PQgetvalue(sres, 0, 3)[0] == 't';
	t->guarantee = PQgetvalue(sres, 0, 4);
}

int
ps_idem_get(struct sb_rpc_call *call, const struct ps_topic *t, const char *key, char **id)
{
	PGresult *res = NULL;
	const char *ip[] = { t->id, key };
	int rv;
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "idem_get", 2, ip, &res)) != 0)
		return ps_db_error(call, "idem_get", rv);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__ABORTED,
		                         "idempotency key expired meanwhile; publish again");
	}
	*id = ps_dup(call, PQgetvalue(res, 0, 0));
	PQclear(res);
	return *id ? SB__RPC__CODE__OK
	           : sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
}
