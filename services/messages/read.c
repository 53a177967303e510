/* read.c: read markers. A member's marker only moves forward and never past last_seq; the
 * unread count is last_seq - last_read_seq. A move writes ConversationRead. */
#include "messages.h"

#include <stdio.h>

#include "sb_err.h"
#include "sb_util_time.h"

int
msg_rpc_mark_read(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__MarkReadRequest *req = reqp;
	Sb__Messages__MarkReadResponse *resp = respp;
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;
	bool ok = msg_valid_uuid(call, "id", req->id);
	if (req->up_to_seq < 0) {
		sb_rpc_call_violation(call, "up_to_seq", "negative");
		ok = false;
	}
	if (!ok)
		return msg_invalid(call);

	struct sb_pg *pg = msg_pg(call);
	const char *params[4] = { who.tenant, req->id, who.user, NULL };
	PGresult *res = NULL;
	int rv = sb_pg_begin(pg);
	if (rv == 0) /* the row lock orders this event with the conversation's others */
		rv = sb_pg_exec_prepared(pg, "access_lock", 3, params, &res);
	if (rv != 0)
		goto fail;
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 1)) {
		code =
		    PQntuples(res) == 0
		        ? sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no such conversation")
		        : sb_rpc_call_error(call, SB__RPC__CODE__PERMISSION_DENIED,
		                            "not a member of this conversation");
		PQclear(res);
		sb_pg_rollback(pg);
		return code;
	}
	int64_t last_seq = msg_col_ll(res, 0, 0);
	PQclear(res);
	res = NULL;
	int64_t to = req->up_to_seq < last_seq ? req->up_to_seq : last_seq;
	char tos[24];
	snprintf(tos, sizeof(tos), "%lld", (long long)to);
	params[3] = tos;
	if ((rv = sb_pg_exec_prepared(pg, "read_update", 4, params, &res)) != 0)
		goto fail;
	bool moved = PQntuples(res) == 1;
	PQclear(res);
	res = NULL;
	if (moved) {
		Sb__Events__ConversationRead ev = SB__EVENTS__CONVERSATION_READ__INIT;
		ev.conversation_id = req->id;
		ev.tenant_id = (char *)who.tenant;
		ev.user_id = (char *)who.user;
		ev.up_to_seq = to;
		ev.read_at_ms = sb_time_now_ms();
		struct msg_event row = { who.tenant, req->id,  MSG_EV_READ,
			                 NULL,       &ev.base, sb_rpc_call_traceparent(call) };
		if ((rv = msg_events_insert(pg, &row, 1)) != 0)
			goto fail;
	}
	if ((rv = sb_pg_exec_prepared(pg, "read_marker", 3, params, &res)) != 0)
		goto fail;
	resp->last_read_seq = msg_col_ll(res, 0, 0);
	PQclear(res);
	res = NULL;
	if ((rv = sb_pg_commit(pg)) != 0)
		goto fail;
	resp->conversation_id = req->id;
	resp->last_seq = last_seq;
	resp->unread_count = last_seq - resp->last_read_seq;
	return SB__RPC__CODE__OK;
fail:
	PQclear(res);
	return msg_db_abort(call, pg, rv);
}
