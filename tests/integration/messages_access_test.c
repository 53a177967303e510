/* Who may do what, and bad input: a non-member of a conversation of the same tenant gets
 * PERMISSION_DENIED, another tenant gets NOT_FOUND (the conversation is invisible), a call
 * without a principal is UNAUTHENTICATED, and each kind of bad input is INVALID_ARGUMENT with
 * one violation naming each bad field. Nothing is written by a refused call.
 * stack: pg
 * labels: messages
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "messages_harness.h"

static struct h_svc svc;
static char conv[SB_UUID_STR_LEN + 1];

/* has_violation tells whether res names field among its violations. */
static bool
has_violation(const struct sb_rpc_result *res, const char *field)
{
	for (size_t i = 0; i < res->n_violations; i++)
		if (strcmp(res->violations[i]->field, field) == 0)
			return true;
	return false;
}

static void
test_non_member_and_other_tenant(void **state)
{
	(void)state;
	char *others[] = { "bob" };
	h_create(&svc, "t1", "alice", "direct", others, 1, conv);
	long long msgs = h_sql_ll(&svc, "SELECT count(*) FROM messages.messages", NULL, NULL);

	/* carol of the same tenant: forbidden everywhere */
	assert_int_equal(h_send(&svc, "t1", "carol", conv, NULL, NULL, "hi", NULL),
	                 SB__RPC__CODE__PERMISSION_DENIED);
	Sb__Messages__GetConversationRequest g = SB__MESSAGES__GET_CONVERSATION_REQUEST__INIT;
	g.id = conv;
	struct sb_rpc_result res;
	h_call(&svc, "messages.GetConversation", &g.base, &sb__messages__conversation__descriptor,
	       "t1", "carol", &res);
	assert_int_equal(res.code, SB__RPC__CODE__PERMISSION_DENIED);
	sb_rpc_result_free(&res);
	Sb__Messages__ListMessagesRequest lm = SB__MESSAGES__LIST_MESSAGES_REQUEST__INIT;
	lm.id = conv;
	h_call(&svc, "messages.ListMessages", &lm.base,
	       &sb__messages__list_messages_response__descriptor, "t1", "carol", &res);
	assert_int_equal(res.code, SB__RPC__CODE__PERMISSION_DENIED);
	sb_rpc_result_free(&res);
	Sb__Messages__MarkReadRequest mr = SB__MESSAGES__MARK_READ_REQUEST__INIT;
	mr.id = conv;
	h_call(&svc, "messages.MarkRead", &mr.base, &sb__messages__mark_read_response__descriptor,
	       "t1", "carol", &res);
	assert_int_equal(res.code, SB__RPC__CODE__PERMISSION_DENIED);
	sb_rpc_result_free(&res);

	/* alice of another tenant (same user id!): not found */
	assert_int_equal(h_send(&svc, "t2", "alice", conv, NULL, NULL, "hi", NULL),
	                 SB__RPC__CODE__NOT_FOUND);
	h_call(&svc, "messages.GetConversation", &g.base, &sb__messages__conversation__descriptor,
	       "t2", "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__NOT_FOUND);
	sb_rpc_result_free(&res);
	h_call(&svc, "messages.ListMessages", &lm.base,
	       &sb__messages__list_messages_response__descriptor, "t2", "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__NOT_FOUND);
	sb_rpc_result_free(&res);

	/* no principal */
	h_call(&svc, "messages.GetConversation", &g.base, &sb__messages__conversation__descriptor,
	       "t1", NULL, &res);
	assert_int_equal(res.code, SB__RPC__CODE__UNAUTHENTICATED);
	sb_rpc_result_free(&res);

	/* the member may; nothing was written by the refusals */
	assert_int_equal(h_sql_ll(&svc, "SELECT count(*) FROM messages.messages", NULL, NULL),
	                 msgs);
	assert_int_equal(h_send(&svc, "t1", "bob", conv, NULL, NULL, "hi", NULL), 0);

	/* CheckMember for realtime */
	Sb__Messages__CheckMemberRequest cm = SB__MESSAGES__CHECK_MEMBER_REQUEST__INIT;
	cm.conversation_id = conv;
	cm.user_id = "carol";
	h_call(&svc, "messages.CheckMember", &cm.base,
	       &sb__messages__check_member_response__descriptor, "t1", "alice", &res);
	assert_int_equal(res.code, 0);
	assert_false(((Sb__Messages__CheckMemberResponse *)res.resp)->member);
	sb_rpc_result_free(&res);
	cm.user_id = "bob";
	h_call(&svc, "messages.CheckMember", &cm.base,
	       &sb__messages__check_member_response__descriptor, "t1", "alice", &res);
	assert_int_equal(res.code, 0);
	assert_true(((Sb__Messages__CheckMemberResponse *)res.resp)->member);
	assert_int_equal(((Sb__Messages__CheckMemberResponse *)res.resp)->last_seq, 1);
	sb_rpc_result_free(&res);
	Sb__Messages__ListMembershipsRequest ms = SB__MESSAGES__LIST_MEMBERSHIPS_REQUEST__INIT;
	ms.user_id = "bob";
	h_call(&svc, "messages.ListMemberships", &ms.base,
	       &sb__messages__list_memberships_response__descriptor, "t1", "alice", &res);
	assert_int_equal(res.code, 0);
	Sb__Messages__ListMembershipsResponse *lr = (void *)res.resp;
	assert_int_equal(lr->n_conversation_ids, 1);
	assert_string_equal(lr->conversation_ids[0], conv);
	sb_rpc_result_free(&res);
}

static void
test_bad_send_names_each_field(void **state)
{
	(void)state;
	size_t big = 65537;
	char *content = malloc(big + 1);
	memset(content, 'a', big);
	content[big] = '\0';
	Sb__Messages__SendRequest req = SB__MESSAGES__SEND_REQUEST__INIT;
	req.id = "not-a-uuid";
	req.conversation_id = "12345678-1234-1234-1234-12345678901"; /* one digit short */
	req.content = content;
	req.content_type = "image/png";
	struct sb_rpc_result res;
	h_call(&svc, "messages.Send", &req.base, &sb__messages__send_response__descriptor, "t1",
	       "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(res.n_violations, 4);
	assert_true(has_violation(&res, "id"));
	assert_true(has_violation(&res, "conversation_id"));
	assert_true(has_violation(&res, "content"));
	assert_true(has_violation(&res, "content_type"));
	sb_rpc_result_free(&res);

	/* exactly 65536 bytes is accepted by validation (then refused as conv missing) */
	content[65536] = '\0';
	req.id = "0190f3a4-0000-7000-8000-000000000001";
	req.conversation_id = "0190f3a4-0000-7000-8000-000000000002";
	req.content_type = "";
	h_call(&svc, "messages.Send", &req.base, &sb__messages__send_response__descriptor, "t1",
	       "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__NOT_FOUND);
	sb_rpc_result_free(&res);

	/* invalid UTF-8 and empty content */
	req.content = "bad \xc3\x28 utf8";
	h_call(&svc, "messages.Send", &req.base, &sb__messages__send_response__descriptor, "t1",
	       "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(res.n_violations, 1);
	assert_true(has_violation(&res, "content"));
	assert_non_null(strstr(res.violations[0]->reason, "UTF-8"));
	sb_rpc_result_free(&res);
	req.content = "";
	h_call(&svc, "messages.Send", &req.base, &sb__messages__send_response__descriptor, "t1",
	       "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(has_violation(&res, "content"));
	sb_rpc_result_free(&res);
	free(content);
}

static void
test_bad_other_requests(void **state)
{
	(void)state;
	struct sb_rpc_result res;
	Sb__Messages__ListMessagesRequest lm = SB__MESSAGES__LIST_MESSAGES_REQUEST__INIT;
	lm.id = "zz";
	lm.limit = 1000;
	lm.after_seq = -1;
	h_call(&svc, "messages.ListMessages", &lm.base,
	       &sb__messages__list_messages_response__descriptor, "t1", "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(res.n_violations, 3);
	assert_true(has_violation(&res, "id"));
	assert_true(has_violation(&res, "limit"));
	assert_true(has_violation(&res, "after_seq"));
	sb_rpc_result_free(&res);

	Sb__Messages__ListConversationsRequest lc = SB__MESSAGES__LIST_CONVERSATIONS_REQUEST__INIT;
	lc.limit = -1;
	lc.cursor = "nonsense";
	h_call(&svc, "messages.ListConversations", &lc.base,
	       &sb__messages__list_conversations_response__descriptor, "t1", "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_true(has_violation(&res, "limit"));
	assert_true(has_violation(&res, "cursor"));
	sb_rpc_result_free(&res);

	Sb__Messages__CreateConversationRequest cc =
	    SB__MESSAGES__CREATE_CONVERSATION_REQUEST__INIT;
	char *members[] = { "bob", "carol", "" };
	cc.kind = "direct";
	cc.member_ids = members;
	cc.n_member_ids = 2;
	h_call(&svc, "messages.CreateConversation", &cc.base,
	       &sb__messages__conversation__descriptor, "t1", "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__INVALID_ARGUMENT); /* direct = exactly 2 */
	assert_true(has_violation(&res, "member_ids"));
	sb_rpc_result_free(&res);
	cc.kind = "channel";
	cc.n_member_ids = 3;
	h_call(&svc, "messages.CreateConversation", &cc.base,
	       &sb__messages__conversation__descriptor, "t1", "alice", &res);
	assert_int_equal(res.code, SB__RPC__CODE__INVALID_ARGUMENT);
	assert_int_equal(res.n_violations, 2);
	assert_true(has_violation(&res, "kind"));
	assert_true(has_violation(&res, "member_ids[2]"));
	sb_rpc_result_free(&res);
}

static int
setup(void **state)
{
	(void)state;
	h_start(&svc);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	h_stop(&svc);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_non_member_and_other_tenant),
		cmocka_unit_test(test_bad_send_names_each_field),
		cmocka_unit_test(test_bad_other_requests),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
