/* history.c: a conversation's messages in seq order (realtime replays gaps with it). */
#include "messages.h"

#include <stdio.h>

#include "sb_err.h"

#define MSG_HISTORY_DEFAULT 50
#define MSG_HISTORY_MAX     200

int
msg_rpc_list_messages(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__ListMessagesRequest *req = reqp;
	Sb__Messages__ListMessagesResponse *resp = respp;
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;
	bool ok = msg_valid_uuid(call, "id", req->id);
	ok = msg_valid_limit(call, "limit", req->limit, MSG_HISTORY_MAX) && ok;
	if (req->after_seq < 0) {
		sb_rpc_call_violation(call, "after_seq", "negative");
		ok = false;
	}
	if (req->before_seq < 0) {
		sb_rpc_call_violation(call, "before_seq", "negative");
		ok = false;
	}
	if (!ok)
		return msg_invalid(call);
	if ((code = msg_access(call, &who, req->id, NULL)) != SB__RPC__CODE__OK)
		return code;

	int limit = req->limit ? req->limit : MSG_HISTORY_DEFAULT;
	/* Only before_seq: the newest page below it (then put back in seq order). */
	bool backwards = req->before_seq > 0 && req->after_seq == 0;
	char after[24], before[24], lim[16];
	snprintf(after, sizeof(after), "%lld", (long long)req->after_seq);
	snprintf(before, sizeof(before), "%lld",
	         req->before_seq > 0 ? (long long)req->before_seq : (long long)INT64_MAX);
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	const char *params[] = { who.tenant, req->id, after, before, lim };
	struct sb_pg *pg = msg_pg(call);
	PGresult *res = NULL;
	int rv =
	    sb_pg_exec_prepared(pg, backwards ? "history_desc" : "history_asc", 5, params, &res);
	if (rv != 0)
		return msg_db_error(call, pg, rv);
	int n = PQntuples(res);
	resp->has_more = n > limit;
	if (n > limit)
		n = limit;
	resp->items = sb_rpc_call_alloc(call, sizeof(*resp->items) * (size_t)(n ? n : 1));
	if (resp->items == NULL)
		goto nomem;
	for (int k = 0; k < n; k++) {
		int r = backwards ? n - 1 - k : k;
		Sb__Messages__Message *m = sb_rpc_call_alloc(call, sizeof(*m));
		if (m == NULL)
			goto nomem;
		sb__messages__message__init(m);
		m->id = msg_col(call, res, r, 0);
		m->conversation_id = msg_col(call, res, r, 1);
		m->seq = msg_col_ll(res, r, 2);
		m->sender_id = msg_col(call, res, r, 3);
		m->content = msg_col(call, res, r, 4);
		m->content_type = msg_col(call, res, r, 5);
		if (msg_metadata_parse(call, PQgetvalue(res, r, 6), &m->metadata, &m->n_metadata) ==
		    SB_ENOMEM)
			goto nomem;
		m->created_at = msg_time_str(call, msg_col_ll(res, r, 7));
		if (msg_attach_split(call, PQgetvalue(res, r, 8), &m->attachments,
		                     &m->n_attachments) != 0)
			goto nomem;
		resp->items[resp->n_items++] = m;
	}
	PQclear(res);
	return SB__RPC__CODE__OK;
nomem:
	PQclear(res);
	return SB_ENOMEM;
}
