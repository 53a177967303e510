/* rpc.c: the handler table, and what every handler shares (caller, errors, access). */
#include "messages.h"

#include <stdlib.h>

#include "sb_err.h"
#include "sb_log.h"

/* Send never blocks (SB_RPC_INLINE): it validates, queues the send on its lane and returns
 * SB_RPC_DEFER; the committer answers after COMMIT. So it needs no worker thread, no thread
 * waits, and the gateway can batch it. The others wait on the database in their workers. */
const struct sb_rpc_method messages_methods[] = {
	SB_RPC_ROW(messages, CreateConversation, create_conversation_request, conversation,
	           msg_rpc_create_conversation, 0),
	SB_RPC_ROW(messages, GetConversation, get_conversation_request, conversation,
	           msg_rpc_get_conversation, 0),
	SB_RPC_ROW(messages, ListConversations, list_conversations_request,
	           list_conversations_response, msg_rpc_list_conversations, 0),
	SB_RPC_ROW(messages, AddMembers, add_members_request, conversation, msg_rpc_add_members, 0),
	SB_RPC_ROW(messages, RemoveMember, remove_member_request, conversation,
	           msg_rpc_remove_member, 0),
	SB_RPC_ROW(messages, Send, send_request, send_response, msg_rpc_send, SB_RPC_INLINE),
	SB_RPC_ROW(messages, ListMessages, list_messages_request, list_messages_response,
	           msg_rpc_list_messages, 0),
	SB_RPC_ROW(messages, MarkRead, mark_read_request, mark_read_response, msg_rpc_mark_read, 0),
	SB_RPC_ROW(messages, CheckMember, check_member_request, check_member_response,
	           msg_rpc_check_member, 0),
	SB_RPC_ROW(messages, ListMemberships, list_memberships_request, list_memberships_response,
	           msg_rpc_list_memberships, 0),
	SB_RPC_ROW(messages, CanReadAttachment, can_read_attachment_request,
	           can_read_attachment_response, msg_rpc_can_read_attachment, 0),
	SB_RPC_END,
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
