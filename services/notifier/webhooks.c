/* webhooks.c: RPCs CreateWebhook, ListWebhooks, DeleteWebhook, scoped by the caller's tenant
 * (the principal's tenant_id). The secret is given by the client or generated, and returned
 * only in the answer to CreateWebhook. */
#include "notifier.h"
#include "sb_util_hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifier.pb-c.h"
#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_rand.h"
#include "sb_util_uuid.h"

#define NTF_MAX_EVENT_TYPES 8
#define NTF_SECRET_MIN      16
#define NTF_SECRET_MAX      256

/* ntf_tenant returns the caller's tenant, or NULL after setting UNAUTHENTICATED. */
static const char *
ntf_tenant(struct sb_rpc_call *call)
{
	const Sb__Rpc__Principal *p = sb_rpc_call_principal(call);
	if (p == NULL || p->tenant_id == NULL || p->tenant_id[0] == '\0')
		return NULL;
	return p->tenant_id;
}

static int
ntf_store_error(struct sb_rpc_call *call, struct sb_worker_conns *w, int rv)
{
	if (rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT) {
		sb_rpc_call_retry_after(call, 1000);
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "database unavailable");
	}
	sb_log_kv(SB_LOG_ERROR, "webhook store failed", "error", sb_pg_errmsg(w->pg), NULL);
	return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "webhook store failed");
}

static int
ntf_invalid(struct sb_rpc_call *call, const char *field, const char *reason)
{
	sb_rpc_call_violation(call, field, reason);
	return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "%s: %s", field, reason);
}

int
ntf_rpc_create_webhook(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Notifier__CreateWebhookRequest *r = req;
	Sb__Notifier__Webhook *out = resp;
	struct sb_worker_conns *w = sb_service_worker_conns(call);
	const struct ntf_state *st = sb_service_state(sb_service_from_call(call));
	const char *tenant = ntf_tenant(call);
	char err[128], id[SB_UUID_STR_LEN + 1], secret[NTF_SECRET_MAX + 1];
	struct sb_uuid uuid;
	struct sb_buf types = SB_BUF_INIT;
	PGresult *res = NULL;
	int rv;

	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (w == NULL || st == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "not started");
	if (sb_webhook_endpoint_check(r->url, st->cfg->wh_allow_private, err, sizeof(err)) != 0)
		return ntf_invalid(call, "url", err);
	if (r->n_event_types == 0 || r->n_event_types > NTF_MAX_EVENT_TYPES)
		return ntf_invalid(call, "event_types", "give 1 to 8 event types");
	for (size_t i = 0; i < r->n_event_types; i++)
		if (!ntf_event_type_known(r->event_types[i]))
			return ntf_invalid(call, "event_types",
			                   "unknown type (message.created, conversation.created, "
			                   "members.changed, conversation.read)");
	size_t sl = strlen(r->secret);
	if (sl != 0 && (sl < NTF_SECRET_MIN || sl > NTF_SECRET_MAX))
		return ntf_invalid(call, "secret",
		                   "16 to 256 characters, or empty to generate one");
	if (sl == 0) {
		unsigned char raw[32];
		if (sb_rand_bytes(raw, sizeof(raw)) != 0)
			return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "no randomness");
		sb_hex_encode(raw, sizeof(raw), secret);
		secret[2 * sizeof(raw)] = '\0';
		explicit_bzero(raw, sizeof(raw));
	} else {
		memcpy(secret, r->secret, sl + 1);
	}
	if (sb_uuid_v4(&uuid) != 0)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "no randomness");
	sb_uuid_format(&uuid, id);
	rv = SB_ENOMEM;
	if (sb_buf_puts(&types, "{") != 0)
		goto fail;
	for (size_t i = 0; i < r->n_event_types; i++)
		if (sb_buf_printf(&types, "%s%s", i ? "," : "", r->event_types[i]) != 0)
			goto fail;
	if (sb_buf_puts(&types, "}") != 0)
		goto fail;
	const char *p[] = { id, tenant, r->url, secret, types.data };
	if ((rv = sb_pg_exec_prepared(w->pg, "wh_create", 5, p, &res)) != 0) {
		rv = ntf_store_error(call, w, rv);
		goto done;
	}
	out->id = sb_rpc_call_strdup(call, id);
	out->url = r->url;
	out->event_types = r->event_types;
	out->n_event_types = r->n_event_types;
	out->created_at = sb_rpc_call_strdup(call, PQgetvalue(res, 0, 0));
	out->secret = sb_rpc_call_strdup(call, secret);
	if (out->id == NULL || out->created_at == NULL || out->secret == NULL)
		goto fail;
	sb_log_kv(SB_LOG_INFO, "webhook created", "id", id, "tenant_id", tenant, NULL);
	rv = SB__RPC__CODE__OK;
	goto done;
fail:
	rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "%s", sb_strerror(rv));
done:
	explicit_bzero(secret, sizeof(secret));
	PQclear(res);
	sb_buf_free(&types);
	return rv;
}

/* ntf_split_types fills wh's event_types from "a,b,c" (copied into the call's arena). */
static int
ntf_split_types(struct sb_rpc_call *call, const char *csv, Sb__Notifier__Webhook *wh)
{
	char *s = sb_rpc_call_strdup(call, csv), *save = NULL;
	size_t n = 1;
	if (s == NULL)
		return SB_ENOMEM;
	for (const char *c = s; *c; c++)
		n += *c == ',';
	if ((wh->event_types = sb_rpc_call_alloc(call, n * sizeof(char *))) == NULL)
		return SB_ENOMEM;
	for (char *t = strtok_r(s, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		wh->event_types[wh->n_event_types++] = t;
	return 0;
}

int
ntf_rpc_list_webhooks(struct sb_rpc_call *call, const void *req, void *resp)
{
	Sb__Notifier__ListWebhooksResponse *out = resp;
	struct sb_worker_conns *w = sb_service_worker_conns(call);
	const char *tenant = ntf_tenant(call);
	PGresult *res = NULL;
	int rv;
	(void)req;

	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (w == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "not started");
	const char *p[] = { tenant };
	if ((rv = sb_pg_exec_prepared(w->pg, "wh_list", 1, p, &res)) != 0)
		return ntf_store_error(call, w, rv);
	size_t n = (size_t)PQntuples(res);
	rv = SB__RPC__CODE__OK;
	out->items = sb_rpc_call_alloc(call, (n ? n : 1) * sizeof(*out->items));
	for (size_t i = 0; out->items != NULL && i < n; i++) {
		Sb__Notifier__Webhook *wh = sb_rpc_call_alloc(call, sizeof(*wh));
		if (wh == NULL)
			break;
		sb__notifier__webhook__init(wh);
		wh->id = sb_rpc_call_strdup(call, PQgetvalue(res, (int)i, 0));
		wh->url = sb_rpc_call_strdup(call, PQgetvalue(res, (int)i, 1));
		wh->created_at = sb_rpc_call_strdup(call, PQgetvalue(res, (int)i, 3));
		if (wh->id == NULL || wh->url == NULL || wh->created_at == NULL ||
		    ntf_split_types(call, PQgetvalue(res, (int)i, 2), wh) != 0)
			break;
		out->items[out->n_items++] = wh;
	}
	if (out->n_items != n)
		rv = sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "out of memory");
	PQclear(res);
	return rv;
}

int
ntf_rpc_delete_webhook(struct sb_rpc_call *call, const void *req, void *resp)
{
	const Sb__Notifier__DeleteWebhookRequest *r = req;
	struct sb_worker_conns *w = sb_service_worker_conns(call);
	const char *tenant = ntf_tenant(call);
	struct sb_uuid u;
	PGresult *res = NULL;
	int rv;
	(void)resp;

	if (tenant == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED, "no tenant");
	if (w == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "not started");
	if (sb_uuid_parse(r->id, &u) != 0)
		return ntf_invalid(call, "id", "not a UUID");
	const char *p[] = { tenant, r->id };
	if ((rv = sb_pg_exec_prepared(w->pg, "wh_delete", 2, p, &res)) != 0)
		return ntf_store_error(call, w, rv);
	rv = atoi(PQcmdTuples(res)) > 0
	         ? SB__RPC__CODE__OK
	         : sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no webhook %s", r->id);
	PQclear(res);
	return rv;
}
