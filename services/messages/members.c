/* members.c: add and remove members (MembersChanged), membership queries for realtime. */
#include "messages.h"

#include <stdio.h>
#include <string.h>

#include "sb_err.h"
#include "sb_util_time.h"

/* msg_members_begin starts a transaction holding the conversation's row lock, after checking
 * that the caller is a member. Returns OK (in a transaction) or an error code (rolled back);
 * *direct tells the conversation's kind. */
static int
msg_members_begin(struct sb_rpc_call *call, const struct msg_who *who, const char *conv,
                  bool *direct)
{
	struct sb_pg *pg = msg_pg(call);
	const char *params[] = { who->tenant, conv, who->user };
	PGresult *res = NULL;
	int rv = sb_pg_begin(pg);
	if (rv == 0)
		rv = sb_pg_exec_prepared(pg, "access_lock", 3, params, &res);
	if (rv != 0)
		return msg_db_abort(call, pg, rv);
	int code = SB__RPC__CODE__OK;
	if (PQntuples(res) == 0)
		code = sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no such conversation");
	else if (PQgetisnull(res, 0, 1))
		code = sb_rpc_call_error(call, SB__RPC__CODE__PERMISSION_DENIED,
		                         "not a member of this conversation");
	else
		*direct = strcmp(PQgetvalue(res, 0, 2), "direct") == 0;
	PQclear(res);
	if (code != SB__RPC__CODE__OK)
		sb_pg_rollback(pg);
	return code;
}

/* msg_members_event writes MembersChanged and commits. Returns 0 or an sb_err. */
static int
msg_members_commit(struct sb_rpc_call *call, const struct msg_who *who, const char *conv,
                   char **added, size_t n_added, char **removed, size_t n_removed)
{
	Sb__Events__MembersChanged ev = SB__EVENTS__MEMBERS_CHANGED__INIT;
	ev.conversation_id = (char *)conv;
	ev.tenant_id = (char *)who->tenant;
	ev.added = added;
	ev.n_added = n_added;
	ev.removed = removed;
	ev.n_removed = n_removed;
	ev.changed_by = (char *)who->user;
	ev.changed_at_ms = sb_time_now_ms();
	struct msg_event row = { who->tenant, conv,     MSG_EV_MEMBERS,
		                 NULL,        &ev.base, sb_rpc_call_traceparent(call) };
	struct sb_pg *pg = msg_pg(call);
	int rv = msg_events_insert(pg, &row, 1);
	return rv != 0 ? rv : sb_pg_commit(pg);
}

static int
msg_members_reply(struct sb_rpc_call *call, const struct msg_who *who, const char *conv,
                  Sb__Messages__Conversation *resp)
{
	int rv = msg_conv_load(call, msg_pg(call), who, conv, resp);
	return rv == 0 ? SB__RPC__CODE__OK : msg_db_error(call, msg_pg(call), rv);
}

int
msg_rpc_add_members(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__AddMembersRequest *req = reqp;
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;
	bool ok = msg_valid_uuid(call, "id", req->id);
	if (req->n_member_ids == 0 || req->n_member_ids > MSG_MEMBERS_MAX) {
		sb_rpc_call_violation(call, "member_ids", "between 1 and 1000 user ids");
		ok = false;
	}
	for (size_t i = 0; i < req->n_member_ids && i < MSG_MEMBERS_MAX; i++) {
		char f[48];
		snprintf(f, sizeof(f), "member_ids[%zu]", i);
		ok = msg_valid_user_id(call, f, req->member_ids[i]) && ok;
	}
	if (!ok)
		return msg_invalid(call);

	bool direct = false;
	if ((code = msg_members_begin(call, &who, req->id, &direct)) != SB__RPC__CODE__OK)
		return code;
	struct sb_pg *pg = msg_pg(call);
	struct sb_buf arr = SB_BUF_INIT;
	PGresult *res = NULL;
	int rv = SB_ENOMEM;
	if (direct) {
		sb_pg_rollback(pg);
		return sb_rpc_call_error(call, SB__RPC__CODE__FAILED_PRECONDITION,
		                         "a direct conversation has exactly 2 members");
	}
	for (size_t i = 0; i < req->n_member_ids; i++)
		if (msg_arr_add(&arr, req->member_ids[i]) != 0)
			goto fail;
	if (msg_arr_end(&arr) != 0)
		goto fail;
	const char *params[] = { who.tenant, req->id, arr.data };
	if ((rv = sb_pg_exec_prepared(pg, "members_insert", 3, params, &res)) != 0)
		goto fail;
	size_t n = (size_t)PQntuples(res);
	if (n == 0) { /* all were members already: nothing changed, no event */
		PQclear(res);
		sb_buf_free(&arr);
		sb_pg_rollback(pg);
		return msg_members_reply(call, &who, req->id, respp);
	}
	char **added = sb_rpc_call_alloc(call, sizeof(*added) * n);
	rv = SB_ENOMEM;
	if (added == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if ((added[i] = msg_col(call, res, (int)i, 0)) == NULL)
			goto fail;
	PQclear(res);
	res = NULL;
	if ((rv = msg_members_commit(call, &who, req->id, added, n, NULL, 0)) != 0)
		goto fail;
	sb_buf_free(&arr);
	return msg_members_reply(call, &who, req->id, respp);
fail:
	PQclear(res);
	sb_buf_free(&arr);
	if (rv == SB_ENOMEM) {
		sb_pg_rollback(pg);
		return rv;
	}
	return msg_db_abort(call, pg, rv);
}

int
msg_rpc_remove_member(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__RemoveMemberRequest *req = reqp;
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;
	bool ok = msg_valid_uuid(call, "id", req->id);
	ok = msg_valid_user_id(call, "user_id", req->user_id) && ok;
	if (!ok)
		return msg_invalid(call);
	bool direct = false;
	if ((code = msg_members_begin(call, &who, req->id, &direct)) != SB__RPC__CODE__OK)
		return code;
	struct sb_pg *pg = msg_pg(call);
	if (direct) {
		sb_pg_rollback(pg);
		return sb_rpc_call_error(call, SB__RPC__CODE__FAILED_PRECONDITION,
		                         "a direct conversation has exactly 2 members");
	}
	const char *params[] = { who.tenant, req->id, req->user_id };
	PGresult *res = NULL;
	int rv = sb_pg_exec_prepared(pg, "member_delete", 3, params, &res);
	if (rv != 0)
		goto fail;
	int n = PQntuples(res);
	PQclear(res);
	if (n == 0) {
		sb_pg_rollback(pg);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND,
		                         "user is not a member of this conversation");
	}
	char *removed[] = { req->user_id };
	if ((rv = msg_members_commit(call, &who, req->id, NULL, 0, removed, 1)) != 0)
		goto fail;
	return msg_members_reply(call, &who, req->id, respp);
fail:
	return msg_db_abort(call, pg, rv);
}

int
msg_rpc_check_member(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__CheckMemberRequest *req = reqp;
	Sb__Messages__CheckMemberResponse *resp = respp;
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;
	const char *user = req->user_id[0] ? req->user_id : who.user;
	bool ok = msg_valid_uuid(call, "conversation_id", req->conversation_id);
	ok = msg_valid_user_id(call, "user_id", user) && ok;
	if (!ok)
		return msg_invalid(call);
	const char *params[] = { who.tenant, req->conversation_id, user };
	struct sb_pg *pg = msg_pg(call);
	PGresult *res = NULL;
	int rv = sb_pg_exec_prepared(pg, "access", 3, params, &res);
	if (rv != 0)
		return msg_db_error(call, pg, rv);
	if (PQntuples(res) == 0) {
		PQclear(res);
		return sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no such conversation");
	}
	resp->member = !PQgetisnull(res, 0, 1);
	resp->last_seq = msg_col_ll(res, 0, 0);
	PQclear(res);
	return SB__RPC__CODE__OK;
}

int
msg_rpc_list_memberships(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__ListMembershipsRequest *req = reqp;
	Sb__Messages__ListMembershipsResponse *resp = respp;
	struct msg_who who;
	int code = msg_who_get(call, &who);
	if (code != SB__RPC__CODE__OK)
		return code;
	const char *user = req->user_id[0] ? req->user_id : who.user;
	if (!msg_valid_user_id(call, "user_id", user))
		return msg_invalid(call);
	const char *params[] = { who.tenant, user };
	struct sb_pg *pg = msg_pg(call);
	PGresult *res = NULL;
	int rv = sb_pg_exec_prepared(pg, "memberships", 2, params, &res);
	if (rv != 0)
		return msg_db_error(call, pg, rv);
	int n = PQntuples(res);
	resp->conversation_ids = sb_rpc_call_alloc(call, sizeof(char *) * (size_t)(n ? n : 1));
	if (resp->conversation_ids == NULL) {
		PQclear(res);
		return SB_ENOMEM;
	}
	for (int i = 0; i < n; i++)
		resp->conversation_ids[resp->n_conversation_ids++] = msg_col(call, res, i, 0);
	PQclear(res);
	return SB__RPC__CODE__OK;
}
