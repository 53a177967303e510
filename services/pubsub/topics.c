/* topics.c: RPCs for topics (create, list, get, update, delete, metrics) and subscriptions
 * (create, list), scoped by the caller's tenant. */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_hex.h"
#include "sb_util_rand.h"
#include "sb_webhook.h"

#define PS_NAME_RULE "1 to 100 of A-Z a-z 0-9 . _ -, not ending in .dlq"

/* Fills a Topic answer from row 0 of a result with the PS_TOPIC_COLS columns. */
static int
ps_topic_fill(struct sb_rpc_call *call, PGresult *res, int row, Sb__Pubsub__Topic *out)
{
	char dlq[PS_NAME_MAX + sizeof(PS_DLQ_SUFFIX)];
	out->name = ps_dup(call, PQgetvalue(res, row, 1));
	out->type = ps_dup(call, PQgetvalue(res, row, 2));
	out->schema_subject = ps_dup(call, PQgetvalue(res, row, 3));
	out->partitions = atoi(PQgetvalue(res, row, 4));
	out->ordering_keys = PQgetvalue(res, row, 5)[0] == 't';
	out->retention_ms = atoll(PQgetvalue(res, row, 6));
	out->max_delivery_attempts = atoi(PQgetvalue(res, row, 7));
	out->ack_deadline_ms = atoi(PQgetvalue(res, row, 8));
	out->guarantee = ps_dup(call, PQgetvalue(res, row, 9));
	out->default_strategy = ps_dup(call, PQgetvalue(res, row, 10));
	out->created_at = ps_dup(call, PQgetvalue(res, row, 11));
	snprintf(dlq, sizeof(dlq), "%s%s", PQgetvalue(res, row, 1), PS_DLQ_SUFFIX);
	out->dlq = ps_dup(call, dlq);
	if (out->name == NULL || out->type == NULL || out->schema_subject == NULL ||
	    out->guarantee == NULL || out->default_strategy == NULL || out->created_at == NULL ||
	    out->dlq == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	return SB__RPC__CODE__OK;
}

static bool
ps_subject_ok(const char *s)
{
	size_t n = strlen(s);
	if (n > 200)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._:-", c) != NULL))
			return false;
	}
	return true;
}

/* The settings of a topic as text parameters, after defaults and checks. */
struct ps_settings {
	const char *type, *subject, *guarantee, *strategy;
	char partitions[16], ordering[8], retention[24], attempts[16], deadline[16];
};

/* Checks in (a create, or an update merged over cur) and fills s. Returns OK or the answered
 * INVALID_ARGUMENT. */
static int
ps_settings_check(struct sb_rpc_call *call, const Sb__Pubsub__Topic *in, const struct ps_topic *cur,
                  struct ps_settings *s)
{
	const struct pubsub_cfg *cfg = ps_ctx(call)->cfg;
	enum ps_strategy strat;
	s->type = in->type[0] ? in->type : (cur ? cur->type : "queue");
	if (strcmp(s->type, "queue") != 0 && strcmp(s->type, "pubsub") != 0)
		return ps_invalid(call, "type", "queue or pubsub");
	if (cur != NULL && strcmp(s->type, cur->type) != 0)
		return ps_invalid(call, "type", "a topic's type cannot change");
	s->subject = in->schema_subject[0] ? in->schema_subject : (cur ? cur->schema_subject : "");
	if (!ps_subject_ok(s->subject))
		return ps_invalid(call, "schema_subject", "at most 200 of A-Z a-z 0-9 . _ : -");
	s->guarantee = in->guarantee[0] ? in->guarantee : (cur ? cur->guarantee : "at_least_once");
	if (strcmp(s->guarantee, "at_least_once") != 0 && strcmp(s->guarantee, "exactly_once") != 0)
		return ps_invalid(call, "guarantee", "at_least_once or exactly_once");
	s->strategy = in->default_strategy[0]
	                  ? in->default_strategy
	                  : (cur ? cur->default_strategy
	                         : (strcmp(s->type, "queue") == 0 ? "round_robin" : "fan_out"));
	if (!ps_strategy_parse(s->strategy, &strat))
		return ps_invalid(
		    call, "default_strategy",
		    "direct, fan_out, round_robin, least_loaded, priority or content");
	long long parts = in->partitions ? in->partitions : (cur ? cur->partitions : 1);
	if (parts < 1 || parts > 1024)
		return ps_invalid(call, "partitions", "1 to 1024");
	long long ret = in->retention_ms ? in->retention_ms
	                                 : (cur ? cur->retention_ms : cfg->default_retention_ms);
	if (ret < 1000 || ret > 31536000000LL)
		return ps_invalid(call, "retention_ms", "1000 to 31536000000 (one year)");
	long long att = in->max_delivery_attempts
	                    ? in->max_delivery_attempts
	                    : (cur ? cur->max_attempts : cfg->default_attempts);
	if (att < 1 || att > 1000)
		return ps_invalid(call, "max_delivery_attempts", "1 to 1000");
	long long dl = in->ack_deadline_ms
	                   ? in->ack_deadline_ms
	                   : (cur ? cur->ack_deadline_ms : cfg->default_deadline_ms);
	if (dl < 100 || dl > 3600000)
		return ps_invalid(call, "ack_deadline_ms", "100 to 3600000");
	/* ordering_keys is a bool: an update that leaves it out turns it off, as for any PUT. */
	snprintf(s->partitions, sizeof(s->partitions), "%lld", parts);
	snprintf(s->ordering, sizeof(s->ordering), "%s", in->ordering_keys ? "true" : "false");
	snprintf(s->retention, sizeof(s->retention), "%lld", ret);
	snprintf(s->attempts, sizeof(s->attempts), "%lld", att);
	snprintf(s->deadline, sizeof(s->deadline), "%lld", dl);
	return SB__RPC__CODE__OK;
}

int
ps_rpc_create_topic(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__Topic *in = req;
	const char *tenant = ps_tenant(call);
	struct ps_settings s;
	PGresult *res = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (!ps_name_ok(in->name))
		return ps_invalid(call, "name", PS_NAME_RULE);
	if ((rv = ps_settings_check(call, in, NULL, &s)) != SB__RPC__CODE__OK)
		return rv;
	const char *p[] = {
		tenant,       in->name,    s.type,      s.subject,
		s.partitions, s.ordering,  s.retention, s.attempts,
		s.deadline,   s.guarantee, s.strategy,  ps_ctx(call)->cfg->cursor ? "true" : "false"
	};
	rv = sb_pg_exec_prepared(ps_pg(call), "topic_create", 12, p, &res);
	if (rv == SB_EEXIST)
		return sb_rpc_call_error(call, SB__RPC__CODE__ALREADY_EXISTS, "topic %s exists",
		                         in->name);
	if (rv != 0)
		return ps_db_error(call, "topic_create", rv);
	rv = ps_topic_fill(call, res, 0, resp);
	PQclear(res);
	sb_log_kv(SB_LOG_INFO, "topic created", "topic", in->name, "tenant_id", tenant, NULL);
	return rv;
}

int
ps_rpc_list_topics(struct sb_rpc_call *call, const void *req, void *resp)
{
	Sb__Pubsub__ListTopicsResponse *out = resp;
	const char *tenant = ps_tenant(call);
	PGresult *res = NULL;
	int rv;
	(void)req;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	const char *p[] = { tenant };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "topic_list", 1, p, &res)) != 0)
		return ps_db_error(call, "topic_list", rv);
	int n = PQntuples(res);
	out->topics = sb_rpc_call_alloc(call, (size_t)(n + 1) * sizeof(*out->topics));
	rv = out->topics ? SB__RPC__CODE__OK
	                 : sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	for (int i = 0; i < n && rv == SB__RPC__CODE__OK; i++) {
		Sb__Pubsub__Topic *t = sb_rpc_call_alloc(call, sizeof(*t));
		if (t == NULL) {
			rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
			break;
		}
		sb__pubsub__topic__init(t);
		rv = ps_topic_fill(call, res, i, t);
		out->topics[out->n_topics++] = t;
	}
	PQclear(res);
	return rv;
}

int
ps_rpc_get_topic(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__TopicRef *in = req;
	const char *tenant = ps_tenant(call);
	struct ps_topic t;
	PGresult *res;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if ((rv = ps_topic_load(call, tenant, in->name, &t, &res)) != SB__RPC__CODE__OK)
		return rv;
	rv = ps_topic_fill(call, res, 0, resp);
	PQclear(res);
	return rv;
}

int
ps_rpc_update_topic(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__Topic *in = req;
	const char *tenant = ps_tenant(call);
	struct ps_topic cur;
	struct ps_settings s;
	PGresult *old, *res = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if ((rv = ps_topic_load(call, tenant, in->name, &cur, &old)) != SB__RPC__CODE__OK)
		return rv;
	if ((rv = ps_settings_check(call, in, &cur, &s)) != SB__RPC__CODE__OK)
		goto done;
	const char *p[] = { tenant,      in->name,   s.subject,  s.partitions, s.ordering,
		            s.retention, s.attempts, s.deadline, s.guarantee,  s.strategy };
	/* The update locks the topic row (publishes wait); then, with a snapshot that sees every
	 * publish committed before it, its cursor subscriptions that the new settings rule out
	 * become per-delivery ones ("sub_to_rows"), in the same transaction. */
	struct sb_pg *pg = ps_pg(call);
	const char *what = "topic_update";
	PGresult *cres = NULL;
	if ((rv = sb_pg_begin(pg)) != 0 ||
	    (rv = sb_pg_exec_prepared(pg, "topic_update", 10, p, &res)) != 0)
		goto fail;
	if (PQntuples(res) != 1) {
		sb_pg_rollback(pg);
		rv = sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no topic %s", in->name);
		goto done;
	}
	const char *id[] = { cur.id };
	what = "sub_to_rows";
	if ((rv = sb_pg_exec_prepared(pg, "sub_to_rows", 1, id, &cres)) != 0)
		goto fail;
	if (atoi(PQgetvalue(cres, 0, 0)) > 0)
		sb_log_kv(SB_LOG_INFO, "cursor subscriptions now keep a row per delivery", "topic",
		          in->name, "count", PQgetvalue(cres, 0, 0), NULL);
	PQclear(cres);
	what = "commit";
	if ((rv = sb_pg_commit(pg)) != 0)
		goto fail;
	rv = ps_topic_fill(call, res, 0, resp);
	sb_log_kv(SB_LOG_INFO, "topic updated", "topic", in->name, "tenant_id", tenant, NULL);
	goto done;
fail:
	rv = ps_db_error(call, what, rv); /* logs the statement's error before the rollback */
	sb_pg_rollback(pg);
done:
	PQclear(res);
	PQclear(old);
	return rv;
}

int
ps_rpc_delete_topic(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__TopicRef *in = req;
	Sb__Pubsub__DeleteTopicResponse *out = resp;
	const char *tenant = ps_tenant(call);
	PGresult *res = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (!ps_name_ok(in->name))
		return ps_invalid(call, "name", PS_NAME_RULE);
	const char *p[] = { tenant, in->name };
	struct sb_pg *pg = ps_pg(call);
	const char *what = "topic_delete";
	/* The row first (it waits for the publishes holding it), then, in a statement of its
	 * own that sees what they stored, the messages and deliveries (store.c). */
	if ((rv = sb_pg_begin(pg)) != 0 ||
	    (rv = sb_pg_exec_prepared(pg, "topic_delete", 2, p, &res)) != 0)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		sb_pg_rollback(pg);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no topic %s", in->name);
	}
	const char *id[] = { PQgetvalue(res, 0, 0) };
	PGresult *pres = NULL;
	what = "topic_purge";
	rv = sb_pg_exec_prepared(pg, "topic_purge", 1, id, &pres);
	PQclear(pres);
	PQclear(res);
	if (rv != 0)
		goto fail;
	what = "commit";
	if ((rv = sb_pg_commit(pg)) != 0)
		goto fail;
	out->deleted = true;
	sb_log_kv(SB_LOG_INFO, "topic deleted", "topic", in->name, "tenant_id", tenant, NULL);
	return SB__RPC__CODE__OK;
fail:
	rv = ps_db_error(call, what, rv); /* logs the statement's error before the rollback */
	sb_pg_rollback(pg);
	return rv;
}

int
ps_rpc_topic_metrics(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__TopicRef *in = req;
	Sb__Pubsub__TopicMetricsResponse *out = resp;
	const char *tenant = ps_tenant(call);
	struct ps_topic t;
	PGresult *tres, *sres = NULL, *mres = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if ((rv = ps_topic_load(call, tenant, in->name, &t, &tres)) != SB__RPC__CODE__OK)
		return rv;
	const char *p[] = { t.id };
	struct sb_pg *pg = ps_pg(call);
	/* The metrics read every unfinished delivery and every message of the topic, for which a
	 * sequential scan is the plan to have; pubsub's connections rule it out
	 * (enable_seqscan=off, store.c), and these two statements run nowhere else, so every plan
	 * of theirs is made here, with it allowed again. One transaction: both read the same
	 * snapshot. */
	if ((rv = sb_pg_begin(pg)) != 0 ||
	    (rv = sb_pg_exec(pg, "SET LOCAL enable_seqscan = on", NULL)) != 0 ||
	    (rv = sb_pg_exec_prepared(pg, "topic_sub_metrics", 1, p, &sres)) != 0 ||
	    (rv = sb_pg_exec_prepared(pg, "topic_msg_metrics", 1, p, &mres)) != 0 ||
	    (rv = sb_pg_commit(pg)) != 0) {
		rv = ps_db_error(call, "topic_metrics", rv);
		sb_pg_rollback(pg);
		goto done;
	}
	int n = PQntuples(sres);
	out->name = ps_dup(call, t.name);
	out->subscriptions = sb_rpc_call_alloc(call, (size_t)(n + 1) * sizeof(void *));
	if (out->name == NULL || out->subscriptions == NULL) {
		rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
		goto done;
	}
	long long acked_minute = 0;
	for (int i = 0; i < n; i++) {
		Sb__Pubsub__SubscriptionMetrics *m = sb_rpc_call_alloc(call, sizeof(*m));
		if (m == NULL) {
			rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
			goto done;
		}
		sb__pubsub__subscription_metrics__init(m);
		m->name = ps_dup(call, PQgetvalue(sres, i, 0));
		m->depth = atoll(PQgetvalue(sres, i, 1));
		m->in_flight = atoll(PQgetvalue(sres, i, 2));
		m->acked = atoll(PQgetvalue(sres, i, 3));
		m->dlq_size = atoll(PQgetvalue(sres, i, 4));
		acked_minute += atoll(PQgetvalue(sres, i, 5));
		long long age = atoll(PQgetvalue(sres, i, 6));
		out->depth += m->depth;
		out->in_flight += m->in_flight;
		out->acked_total += m->acked;
		out->dlq_size += m->dlq_size;
		if (age > out->oldest_unacked_age_ms)
			out->oldest_unacked_age_ms = age;
		out->subscriptions[out->n_subscriptions++] = m;
	}
	out->published_total = atoll(PQgetvalue(mres, 0, 0));
	out->publish_rate_per_s = atoll(PQgetvalue(mres, 0, 1)) / 60.0;
	out->ack_rate_per_s = acked_minute / 60.0;
	rv = SB__RPC__CODE__OK;
done:
	PQclear(mres);
	PQclear(sres);
	PQclear(tres);
	return rv;
}

/* ps_push_fields checks the push fields of a new subscription and writes its signing secret
 * (the one given, or a generated one; "" for a pull subscription) to secret (PS_SECRET_MAX +
 * 1 bytes). Returns OK or the answered error. */
static int
ps_push_fields(struct sb_rpc_call *call, const Sb__Pubsub__Subscription *in, char *secret)
{
	char err[160];
	size_t sl = strlen(in->secret);
	secret[0] = '\0';
	if (in->push_endpoint[0] == '\0')
		return sl == 0 ? SB__RPC__CODE__OK
		               : ps_invalid(call, "secret", "only for a push subscription");
	if (sb_webhook_endpoint_check(in->push_endpoint, ps_ctx(call)->cfg->push_allow_private, err,
	                              sizeof(err)) != 0) {
		sb_log_kv(SB_LOG_INFO, "push endpoint refused", "reason", err, NULL);
		return ps_invalid(call, "push_endpoint", err);
	}
	if (sl != 0 && (sl < PS_SECRET_MIN || sl > PS_SECRET_MAX))
		return ps_invalid(call, "secret", "16 to 256 characters, or empty to generate one");
	if (sl != 0) {
		memcpy(secret, in->secret, sl + 1);
		return SB__RPC__CODE__OK;
	}
	unsigned char raw[32];
	if (sb_rand_bytes(raw, sizeof(raw)) != 0)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "no randomness");
	sb_hex_encode(raw, sizeof(raw), secret);
	secret[2 * sizeof(raw)] = '\0';
	explicit_bzero(raw, sizeof(raw));
	return SB__RPC__CODE__OK;
}

int
ps_rpc_create_subscription(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__Subscription *in = req;
	Sb__Pubsub__Subscription *out = resp;
	const char *tenant = ps_tenant(call);
	struct ps_topic t;
	enum ps_strategy strat;
	char path[64], why[96], secret[PS_SECRET_MAX + 1] = "";
	PGresult *tres, *res = NULL;
	json_t *filter = NULL;
	char *ftext = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if ((rv = ps_topic_load(call, tenant, in->name, &t, &tres)) != SB__RPC__CODE__OK)
		return rv;
	const char *strategy = in->strategy[0] ? in->strategy : t.default_strategy;
	if (!ps_name_ok(in->subscription)) {
		rv = ps_invalid(call, "subscription", PS_NAME_RULE);
		goto done;
	}
	if (!ps_strategy_parse(strategy, &strat)) {
		rv = ps_invalid(call, "strategy",
		                "direct, fan_out, round_robin, least_loaded, priority or content");
		goto done;
	}
	if ((filter = ps_filter_from_pb(in->filter, path, sizeof(path), why, sizeof(why))) ==
	    NULL) {
		rv = ps_invalid(call, path, why);
		goto done;
	}
	if (strat == PS_CONTENT && json_object_size(json_object_get(filter, "headers")) == 0 &&
	    json_array_size(json_object_get(filter, "payload")) == 0) {
		rv = ps_invalid(call, "filter", "a content subscription needs a filter");
		goto done;
	}
	if ((rv = ps_push_fields(call, in, secret)) != SB__RPC__CODE__OK)
		goto done;
	if ((ftext = json_dumps(filter, JSON_COMPACT)) == NULL) {
		rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
		goto done;
	}
	const char *p[] = { t.id,
		            in->subscription,
		            strategy,
		            ftext,
		            in->push_endpoint,
		            secret,
		            ps_ctx(call)->cfg->cursor ? "true" : "false" };
	rv = sb_pg_exec_prepared(ps_pg(call), "sub_create", 7, p, &res);
	if (rv == SB_EEXIST) {
		rv = sb_rpc_call_error(call, SB__RPC__CODE__ALREADY_EXISTS,
		                       "subscription %s exists", in->subscription);
		goto done;
	}
	if (rv != 0) {
		rv = ps_db_error(call, "sub_create", rv);
		goto done;
	}
	if (PQntuples(res) != 1) { /* the topic went since it was read */
		rv = sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no topic %s", t.name);
		goto done;
	}
	out->name = ps_dup(call, t.name);
	out->subscription = ps_dup(call, in->subscription);
	out->strategy = ps_dup(call, strategy);
	out->filter = in->filter;
	out->created_at = ps_dup(call, PQgetvalue(res, 0, 0));
	out->push_endpoint = ps_dup(call, in->push_endpoint);
	out->secret = ps_dup(call, secret); /* answered here only */
	sb_log_kv(SB_LOG_INFO, "subscription created", "topic", t.name, "subscription",
	          in->subscription, "strategy", strategy, "push_endpoint", in->push_endpoint,
	          "tenant_id", tenant, NULL);
	rv = SB__RPC__CODE__OK;
done:
	explicit_bzero(secret, sizeof(secret));
	free(ftext);
	json_decref(filter);
	PQclear(res);
	PQclear(tres);
	return rv;
}

/* Rebuilds a Filter answer from its stored JSON form. */
static Sb__Pubsub__Filter *
ps_filter_to_pb(struct sb_rpc_call *call, const char *text)
{
	json_error_t err;
	json_t *f = json_loads(text, 0, &err), *hs = json_object_get(f, "headers"),
	       *ps = json_object_get(f, "payload"), *v;
	Sb__Pubsub__Filter *out = sb_rpc_call_alloc(call, sizeof(*out));
	const char *k;
	size_t i;
	if (f == NULL || out == NULL)
		goto fail;
	sb__pubsub__filter__init(out);
	out->headers = sb_rpc_call_alloc(call, (json_object_size(hs) + 1) * sizeof(void *));
	out->payload = sb_rpc_call_alloc(call, (json_array_size(ps) + 1) * sizeof(void *));
	if (out->headers == NULL || out->payload == NULL)
		goto fail;
	json_object_foreach(hs, k, v)
	{
		Sb__Pubsub__HeaderFilter *h = sb_rpc_call_alloc(call, sizeof(*h));
		if (h == NULL)
			goto fail;
		sb__pubsub__header_filter__init(h);
		h->name = ps_dup(call, k);
		h->equals = ps_dup(call, json_string_value(v));
		out->headers[out->n_headers++] = h;
	}
	json_array_foreach(ps, i, v)
	{
		Sb__Pubsub__PayloadFilter *p = sb_rpc_call_alloc(call, sizeof(*p));
		char *eq = json_dumps(json_object_get(v, "equals"), JSON_COMPACT | JSON_ENCODE_ANY);
		if (p == NULL || eq == NULL) {
			free(eq);
			goto fail;
		}
		sb__pubsub__payload_filter__init(p);
		p->pointer = ps_dup(call, json_string_value(json_object_get(v, "pointer")));
		p->equals = ps_raw(call, eq);
		free(eq);
		out->payload[out->n_payload++] = p;
	}
	json_decref(f);
	return out;
fail:
	json_decref(f);
	return NULL;
}

int
ps_rpc_list_subscriptions(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Pubsub__TopicRef *in = req;
	Sb__Pubsub__ListSubscriptionsResponse *out = resp;
	const char *tenant = ps_tenant(call);
	struct ps_topic t;
	PGresult *tres, *res = NULL;
	int rv;
	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if ((rv = ps_topic_load(call, tenant, in->name, &t, &tres)) != SB__RPC__CODE__OK)
		return rv;
	const char *p[] = { t.id };
	if ((rv = sb_pg_exec_prepared(ps_pg(call), "sub_list", 1, p, &res)) != 0) {
		rv = ps_db_error(call, "sub_list", rv);
		goto done;
	}
	int n = PQntuples(res);
	out->subscriptions = sb_rpc_call_alloc(call, (size_t)(n + 1) * sizeof(void *));
	rv = SB__RPC__CODE__OK;
	for (int i = 0; i < n; i++) {
		Sb__Pubsub__Subscription *s = sb_rpc_call_alloc(call, sizeof(*s));
		if (out->subscriptions == NULL || s == NULL) {
			rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
			break;
		}
		sb__pubsub__subscription__init(s);
		s->name = ps_dup(call, t.name);
		s->subscription = ps_dup(call, PQgetvalue(res, i, 0));
		s->strategy = ps_dup(call, PQgetvalue(res, i, 1));
		s->filter = ps_filter_to_pb(call, PQgetvalue(res, i, 2));
		s->created_at = ps_dup(call, PQgetvalue(res, i, 3));
		s->push_endpoint = ps_dup(call, PQgetvalue(res, i, 4));
		out->subscriptions[out->n_subscriptions++] = s;
	}
done:
	PQclear(res);
	PQclear(tres);
	return rv;
}
