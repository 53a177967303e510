/* rpc.c: the handler table, and what every handler shares (caller, errors, access). */
#include "messages.h"

#include <stdlib.h>

#include "sb_err.h"
#include "sb_log.h"

#define MSG_RPC(NAME, REQ, RESP, FN)                                                               \
	{                                                                                          \
		"messages." NAME, &sb__messages__##REQ##__descriptor,                              \
		    &sb__messages__##RESP##__descriptor, FN                                        \
	}

const struct sb_rpc_method messages_methods[] = {
	MSG_RPC("CreateConversation", create_conversation_request, conversation,
	        msg_rpc_create_conversation),
	MSG_RPC("GetConversation", get_conversation_request, conversation,
	        msg_rpc_get_conversation),
	MSG_RPC("ListConversations", list_conversations_request, list_conversations_response,
	        msg_rpc_list_conversations),
	MSG_RPC("AddMembers", add_members_request, conversation, msg_rpc_add_members),
	MSG_RPC("RemoveMember", remove_member_request, conversation, msg_rpc_remove_member),
	MSG_RPC("Send", send_request, send_response, msg_rpc_send),
	MSG_RPC("ListMessages", list_messages_request, list_messages_response,
	        msg_rpc_list_messages),
	MSG_RPC("MarkRead", mark_read_request, mark_read_response, msg_rpc_mark_read),
	MSG_RPC("CheckMember", check_member_request, check_member_response, msg_rpc_check_member),
	MSG_RPC("ListMemberships", list_memberships_request, list_memberships_response,
	        msg_rpc_list_memberships),
	{ NULL, NULL, NULL, NULL },
};

int
msg_who_get(struct sb_rpc_call *call, struct msg_who *who)
{
	const Sb__Rpc__Principal *p = sb_rpc_call_principal(call);
	if (p == NULL || p->user_id == NULL || p->user_id[0] == '\0' || p->tenant_id == NULL ||
	    p->tenant_id[0] == '\0')
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAUTHENTICATED,
		                         "no authenticated caller");
	who->tenant = p->tenant_id;
	who->user = p->user_id;
	return SB__RPC__CODE__OK;
}

struct sb_pg *
msg_pg(struct sb_rpc_call *call)
{
	return sb_rpc_call_worker_state(call);
}

int
msg_db_error(struct sb_rpc_call *call, struct sb_pg *pg, int rv)
{
	if (rv == SB_EUNAVAIL || rv == SB_ETIMEDOUT || rv == SB_EBUSY) {
		int64_t ms = sb_pg_retry_after_ms(pg);
		sb_rpc_call_retry_after(call, ms < 500 ? 500 : ms);
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
		                         "database unavailable; retry later");
	}
	sb_log_kv(SB_LOG_ERROR, "database error", "method", sb_rpc_call_method(call), "error",
	          sb_pg_errmsg(pg)[0] ? sb_pg_errmsg(pg) : sb_strerror(rv), "sqlstate",
	          sb_pg_sqlstate(pg), NULL);
	return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "internal error");
}

int
msg_db_abort(struct sb_rpc_call *call, struct sb_pg *pg, int rv)
{
	int code = msg_db_error(call, pg, rv);
	sb_pg_rollback(pg);
	return code;
}

int
msg_access(struct sb_rpc_call *call, const struct msg_who *who, const char *conv, int64_t *last_seq)
{
	struct sb_pg *pg = msg_pg(call);
	const char *params[] = { who->tenant, conv, who->user };
	PGresult *res = NULL;
	int rv = sb_pg_exec_prepared(pg, "access", 3, params, &res);
	if (rv != 0)
		return msg_db_error(call, pg, rv);
	int code = SB__RPC__CODE__OK;
	if (PQntuples(res) == 0)
		code = sb_rpc_call_error(call, SB__RPC__CODE__NOT_FOUND, "no such conversation");
	else if (PQgetisnull(res, 0, 1))
		code = sb_rpc_call_error(call, SB__RPC__CODE__PERMISSION_DENIED,
		                         "not a member of this conversation");
	else if (last_seq != NULL)
		*last_seq = msg_col_ll(res, 0, 0);
	PQclear(res);
	return code;
}
