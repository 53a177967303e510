/* routes_messages.c: the gateway routes served by the messages service (one row per endpoint).
 * Every route needs an access token; its principal travels to the service in the envelope. */
#include "gateway.h"

#include "messages.pb-c.h"

#define GW_MSG_ROW(METHOD, PATTERN, RPC, REQ, RESP, STATUS, FLAGS, SCOPE)                          \
	{                                                                                          \
		METHOD, PATTERN, NULL, "messages", "messages." RPC,                                \
		    &sb__messages__##REQ##__descriptor, &sb__messages__##RESP##__descriptor,       \
		    STATUS, FLAGS, SCOPE                                                           \
	}

const struct gw_route gw_routes_messages[] = {
	GW_MSG_ROW("POST", "/v1/conversations", "CreateConversation", create_conversation_request,
	           conversation, 201, GW_MUTATING, "messages:write"),
	GW_MSG_ROW("GET", "/v1/conversations", "ListConversations", list_conversations_request,
	           list_conversations_response, 200, 0, "messages:read"),
	GW_MSG_ROW("GET", "/v1/conversations/{id}", "GetConversation", get_conversation_request,
	           conversation, 200, 0, "messages:read"),
	GW_MSG_ROW("POST", "/v1/conversations/{id}/members", "AddMembers", add_members_request,
	           conversation, 200, GW_MUTATING, "messages:write"),
	GW_MSG_ROW("DELETE", "/v1/conversations/{id}/members/{user_id}", "RemoveMember",
	           remove_member_request, conversation, 200, GW_MUTATING, "messages:write"),
	GW_MSG_ROW("GET", "/v1/conversations/{id}/messages", "ListMessages", list_messages_request,
	           list_messages_response, 200, 0, "messages:read"),
	GW_MSG_ROW("POST", "/v1/conversations/{id}/read", "MarkRead", mark_read_request,
	           mark_read_response, 200, GW_MUTATING, "messages:write"),
	GW_MSG_ROW("POST", "/v1/messages", "Send", send_request, send_response, 202,
	           GW_MUTATING | GW_IDEMPOTENCY, "messages:write"),
	{ NULL },
};
