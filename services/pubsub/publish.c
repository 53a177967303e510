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

/* Builds the headers object (a new reference) from the request's map; NULL with the answered
 * error in *rv. */
static json_t *
ps_headers_json(struct sb_rpc_call *call, const Sb__Pubsub__PublishRequest *in, int *rv)
{
	json_t *h = json_object();
	if (h == NULL) {
		*rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
		return NULL;
	}
	if (in->n_headers > 64) {
		*rv = ps_invalid(call, "headers", "at most 64 headers");
		goto fail;
	}
	for (size_t i = 0; i < in->n_headers; i++) {
		const char *k = in->headers[i]->key, *v = in->headers[i]->value;
		if (k == NULL || k[0] == '\0' || strlen(k) > PS_KEY_MAX) {
			*rv = ps_invalid(call, "headers", "names are 1 to 256 characters");
			goto fail;
		}
		if (v != NULL && strlen(v) > 4096) {
			*rv = ps_invalid(call, "headers", "values are at most 4096 characters");
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

int
ps_rpc_publish(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__PublishRequest *in = req;
	Sb__Pubsub__PublishResponse *out = resp;
	struct ps_state *st = ps_ctx(call);
	const char *tenant = ps_tenant(call);
	struct ps_topic t = { 0 };
	PGresult *sres = NULL, *res = NULL;
	json_t *headers = NULL, *payload = NULL;
	char *htext = NULL;
	struct sb_buf subs = SB_BUF_INIT;
	int rv, nsubs = 0, tries = 0;
	bool push = false;   /* routed to a push subscription */
	bool cached = false; /* the route came from the cache (route.c) */
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (!ps_name_ok(in->topic))
		return ps_invalid(call, "topic",
		                  "1 to 100 of A-Z a-z 0-9 . _ -, not ending in .dlq");
again:
	/* The route: cached (route.c) unless a publish with it found it stale. */
	sres = tries == 0 ? ps_route_get(st, tenant, in->topic) : NULL;
	cached = sres != NULL;
	if (sres == NULL) {
		const char *rp[] = { tenant, in->topic };
		if ((rv = sb_pg_exec_prepared(ps_pg(call), "pub_route", 2, rp, &sres)) != 0)
			return ps_db_error(call, "pub_route", rv);
		if (PQntuples(sres) == 0) {
			PQclear(sres);
			return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no topic %s",
			                         in->topic);
		}
		sb_series_inc(st->m_route_reads);
		ps_route_put(st, tenant, in->topic, sres);
	}
	t.id = PQgetvalue(sres, 0, 0);
	t.name = PQgetvalue(sres, 0, 1);
	t.schema_subject = PQgetvalue(sres, 0, 2);
	t.ordering_keys = PQgetvalue(sres, 0, 3)[0] == 't';
	t.guarantee = PQgetvalue(sres, 0, 4);
	struct sb_series *invalid = sb_metric_with(st->m_invalid, t.name);
	rv = SB__RPC__CODE__INVALID_ARGUMENT;
	const char *ptext = in->payload && in->payload->json ? in->payload->json : "";
	if (ptext[0] == '\0') {
		rv = ps_invalid(call, "payload", "required (any JSON value)");
		goto bad;
	}
	if ((long long)strlen(ptext) > st->cfg->max_payload_bytes) {
		rv = ps_invalid(call, "payload", "larger than SB_PUBSUB_MAX_PAYLOAD_BYTES");
		goto bad;
	}
	if (in->priority < 0 || in->priority > 9) {
		rv = ps_invalid(call, "priority", "0 to 9");
		goto bad;
	}
	if (strlen(in->ordering_key) > PS_KEY_MAX) {
		rv = ps_invalid(call, "ordering_key", "at most 256 characters");
		goto bad;
	}
	if (strlen(in->idempotency_key) > PS_KEY_MAX) {
		rv = ps_invalid(call, "idempotency_key", "at most 256 characters");
		goto bad;
	}
	if (strcmp(t.guarantee, "exactly_once") == 0 && in->idempotency_key[0] == '\0') {
		rv = ps_invalid(call, "idempotency_key", "required on exactly_once topics");
		goto bad;
	}
	if ((headers = ps_headers_json(call, in, &rv)) == NULL)
		goto bad;
	if (t.schema_subject[0] != '\0' &&
	    (rv = ps_schema_validate(call, t.schema_subject, ptext)) != SB__RPC__CODE__OK)
		goto bad;
	/* Route: every subscription whose filter the message satisfies. */
	int64_t route_ns = ps_trace_now_ns();
	rv = SB__RPC__CODE__INTERNAL;
	if (sb_buf_puts(&subs, "{") != 0)
		goto nomem;
	for (int i = 0; i < PQntuples(sres); i++) {
		if (PQgetisnull(sres, i, 5))
			continue;
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
		if (sb_buf_printf(&subs, "%s%s", nsubs ? "," : "", PQgetvalue(sres, i, 5)) != 0)
			goto nomem;
		nsubs++;
		push = push || PQgetvalue(sres, i, 7)[0] == 't';
	}
	if (sb_buf_puts(&subs, "}") != 0 || (htext = json_dumps(headers, JSON_COMPACT)) == NULL)
		goto nomem;
	struct sb_uuid uuid;
	char id[SB_UUID_STR_LEN + 1], prio[8], window[24];
	if (sb_uuid_v7(&uuid) != 0) {
		rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "no randomness");
		goto done;
	}
	sb_uuid_format(&uuid, id);
	snprintf(prio, sizeof(prio), "%d", in->priority);
	snprintf(window, sizeof(window), "%lld", st->cfg->idempotency_window_s);
	const char *p[] = { t.id,
		            in->idempotency_key,
		            id,
		            ptext,
		            htext,
		            prio,
		            in->ordering_key,
		            subs.data,
		            window,
		            t.ordering_keys ? in->ordering_key : "",
		            PQgetvalue(sres, 0, 8) };
	if ((rv = ps_publish_grouped(st, ps_pg(call), p, &res)) != 0) {
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
		const char *ip[] = { t.id, in->idempotency_key };
		if ((rv = sb_pg_exec_prepared(ps_pg(call), "idem_get", 2, ip, &res)) != 0) {
			rv = ps_db_error(call, "idem_get", rv);
			goto done;
		}
		if (PQntuples(res) != 1) {
			rv = sb_rpc_call_error(call, SB__RPC__CODE__ABORTED,
			                       "idempotency key expired meanwhile; publish again");
			goto done;
		}
		out->id = ps_dup(call, PQgetvalue(res, 0, 0));
		out->duplicate = true;
		sb_rpc_call_set_http_status(call, 200);
		sb_series_inc(sb_metric_with(st->m_duplicates, t.name));
	} else {
		out->id = ps_dup(call, id);
		out->subscriptions = atoi(PQgetvalue(res, 0, 1));
		/* routed and stored (committed): a span under the publish's, in its trace */
		ps_trace_span("pubsub route", SB_SPAN_INTERNAL, sb_rpc_call_traceparent(call),
		              route_ns, id, NULL, 0);
		sb_series_inc(sb_metric_with(st->m_published, t.name));
		/* the waiting consumers were woken by ps_publish_grouped, once per group */
		if (push)
			ps_push_wake(st);
	}
	rv = out->id ? SB__RPC__CODE__OK
	             : sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	goto done;
nomem:
	rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	goto done;
bad:
	if (cached && rv == SB__RPC__CODE__INVALID_ARGUMENT) {
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
	free(htext);
	htext = NULL;
	sb_buf_free(&subs);
	json_decref(payload);
	payload = NULL;
	json_decref(headers);
	headers = NULL;
	PQclear(res);
	res = NULL;
	PQclear(sres);
	sres = NULL;
	nsubs = 0;
	push = false;
	goto again;
done:
	free(htext);
	sb_buf_free(&subs);
	json_decref(payload);
	json_decref(headers);
	PQclear(res);
	PQclear(sres);
	return rv;
}
