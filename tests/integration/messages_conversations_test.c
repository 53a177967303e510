/* Conversations, members and read markers: the caller's list pages with cursors (and with
 * offset) cover every conversation exactly once, most recent activity first, with unread
 * counts and previews; a read marker only moves forward and never past last_seq; adding and
 * removing members works; every change writes its outbox row in the same transaction.
 * stack: pg
 * labels: messages
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "messages_harness.h"

#define N_CONVS 23

static struct h_svc svc;

static long long
outbox_count(const char *conv, const char *type)
{
	return h_sql_ll(&svc,
	                "SELECT count(*) FROM messages.outbox WHERE aggregate_id = $1 AND "
	                "event_type = $2 AND topic = 'sb.messages.v1' AND relayed_at IS NULL",
	                conv, type);
}

static Sb__Messages__MarkReadResponse *
mark_read(const char *conv, const char *user, int64_t up_to, struct sb_rpc_result *res)
{
	Sb__Messages__MarkReadRequest req = SB__MESSAGES__MARK_READ_REQUEST__INIT;
	req.id = (char *)conv;
	req.up_to_seq = up_to;
	h_call(&svc, "messages.MarkRead", &req.base, &sb__messages__mark_read_response__descriptor,
	       "t1", user, res);
	assert_int_equal(res->code, SB__RPC__CODE__OK);
	return (void *)res->resp;
}

static void
test_list_pages_cover_every_conversation_once(void **state)
{
	(void)state;
	char ids[N_CONVS][SB_UUID_STR_LEN + 1];
	char *others[] = { "bob" };
	for (int i = 0; i < N_CONVS; i++) {
		h_create(&svc, "t1", "alice", "group", others, 1, ids[i]);
		assert_int_equal(outbox_count(ids[i], "io.switchboard.conversation.created.v1"), 1);
	}
	/* activity: a message in conversation 5 makes it the most recent */
	assert_int_equal(h_send(&svc, "t1", "bob", ids[5], NULL, NULL, "ping", NULL), 0);

	bool seen[N_CONVS] = { false };
	int total = 0, pages = 0;
	char cursor[256] = "";
	for (;;) {
		Sb__Messages__ListConversationsRequest req =
		    SB__MESSAGES__LIST_CONVERSATIONS_REQUEST__INIT;
		req.limit = 5;
		req.cursor = cursor;
		struct sb_rpc_result res;
		h_call(&svc, "messages.ListConversations", &req.base,
		       &sb__messages__list_conversations_response__descriptor, "t1", "alice", &res);
		assert_int_equal(res.code, SB__RPC__CODE__OK);
		Sb__Messages__ListConversationsResponse *r = (void *)res.resp;
		if (pages == 0) {
			assert_string_equal(r->items[0]->id, ids[5]);
			assert_int_equal(r->items[0]->unread_count, 1);
			assert_int_equal(r->items[0]->last_seq, 1);
			assert_non_null(r->items[0]->last_message);
			assert_string_equal(r->items[0]->last_message->content, "ping");
			assert_string_equal(r->items[1]->id, ids[N_CONVS - 1]); /* newest created */
			assert_int_equal(r->items[1]->unread_count, 0);
		}
		for (size_t i = 0; i < r->n_items; i++) {
			int k = -1;
			for (int j = 0; j < N_CONVS; j++)
				if (strcmp(ids[j], r->items[i]->id) == 0)
					k = j;
			assert_true(k >= 0);
			assert_false(seen[k]);
			seen[k] = true;
			total++;
		}
		pages++;
		assert_int_equal(r->has_more, total < N_CONVS);
		bool more = r->has_more;
		snprintf(cursor, sizeof(cursor), "%s", r->next_cursor);
		sb_rpc_result_free(&res);
		if (!more)
			break;
		assert_true(cursor[0] != '\0');
	}
	assert_int_equal(total, N_CONVS);
	assert_int_equal(pages, 5);

	/* offset/limit for compatibility */
	Sb__Messages__ListConversationsRequest req = SB__MESSAGES__LIST_CONVERSATIONS_REQUEST__INIT;
	req.limit = 10;
	req.offset = 20;
	struct sb_rpc_result res;
	h_call(&svc, "messages.ListConversations", &req.base,
	       &sb__messages__list_conversations_response__descriptor, "t1", "alice", &res);
	assert_int_equal(res.code, 0);
	assert_int_equal(((Sb__Messages__ListConversationsResponse *)res.resp)->n_items, 3);
	assert_false(((Sb__Messages__ListConversationsResponse *)res.resp)->has_more);
	sb_rpc_result_free(&res);
	/* another tenant's alice sees none of them */
	h_call(&svc, "messages.ListConversations", &req.base,
	       &sb__messages__list_conversations_response__descriptor, "t2", "alice", &res);
	assert_int_equal(((Sb__Messages__ListConversationsResponse *)res.resp)->n_items, 0);
	sb_rpc_result_free(&res);
}

static void
test_read_marker_moves_forward_only(void **state)
{
	(void)state;
	char conv[SB_UUID_STR_LEN + 1];
	char *others[] = { "bob" };
	h_create(&svc, "t1", "alice", "direct", others, 1, conv);
	for (int i = 0; i < 5; i++)
		assert_int_equal(h_send(&svc, "t1", "alice", conv, NULL, NULL, "m", NULL), 0);
	const char *ev = "io.switchboard.conversation.read.v1";
	struct sb_rpc_result res;
	Sb__Messages__MarkReadResponse *r = mark_read(conv, "bob", 3, &res);
	assert_int_equal(r->last_read_seq, 3);
	assert_int_equal(r->unread_count, 2);
	sb_rpc_result_free(&res);
	assert_int_equal(outbox_count(conv, ev), 1);
	r = mark_read(conv, "bob", 2, &res); /* backwards: no move, no event */
	assert_int_equal(r->last_read_seq, 3);
	assert_int_equal(r->unread_count, 2);
	sb_rpc_result_free(&res);
	assert_int_equal(outbox_count(conv, ev), 1);
	r = mark_read(conv, "bob", 99, &res); /* beyond last_seq: clamped */
	assert_int_equal(r->last_read_seq, 5);
	assert_int_equal(r->unread_count, 0);
	sb_rpc_result_free(&res);
	assert_int_equal(outbox_count(conv, ev), 2);

	/* the payload says who read up to where */
	PGresult *q =
	    PQexecParams(svc.db,
	                 "SELECT payload FROM messages.outbox WHERE aggregate_id = $1 AND "
	                 "event_type = $2 ORDER BY id DESC LIMIT 1",
	                 2, NULL, (const char *[]){ conv, ev }, NULL, NULL, 1);
	assert_int_equal(PQntuples(q), 1);
	Sb__Events__ConversationRead *cr = sb__events__conversation_read__unpack(
	    NULL, (size_t)PQgetlength(q, 0, 0), (const uint8_t *)PQgetvalue(q, 0, 0));
	assert_non_null(cr);
	assert_string_equal(cr->user_id, "bob");
	assert_int_equal(cr->up_to_seq, 5);
	sb__events__conversation_read__free_unpacked(cr, NULL);
	PQclear(q);

	/* unread counts in bob's list: 0 here after reading; alice never marked: 5 */
	Sb__Messages__GetConversationRequest g = SB__MESSAGES__GET_CONVERSATION_REQUEST__INIT;
	g.id = conv;
	h_call(&svc, "messages.GetConversation", &g.base, &sb__messages__conversation__descriptor,
	       "t1", "alice", &res);
	assert_int_equal(((Sb__Messages__Conversation *)res.resp)->unread_count, 5);
	assert_int_equal(((Sb__Messages__Conversation *)res.resp)->n_members, 2);
	sb_rpc_result_free(&res);
	assert_int_equal(h_send(&svc, "t1", "alice", conv, NULL, NULL, "m6", NULL), 0);
	h_call(&svc, "messages.GetConversation", &g.base, &sb__messages__conversation__descriptor,
	       "t1", "bob", &res);
	assert_int_equal(((Sb__Messages__Conversation *)res.resp)->unread_count, 1);
	sb_rpc_result_free(&res);
}

static void
test_members_change_with_events(void **state)
{
	(void)state;
	char conv[SB_UUID_STR_LEN + 1];
	char *others[] = { "bob" };
	const char *ev = "io.switchboard.conversation.members_changed.v1";
	h_create(&svc, "t1", "alice", "group", others, 1, conv);
	Sb__Messages__AddMembersRequest add = SB__MESSAGES__ADD_MEMBERS_REQUEST__INIT;
	char *newm[] = { "carol", "bob" };
	add.id = conv;
	add.member_ids = newm;
	add.n_member_ids = 2;
	struct sb_rpc_result res;
	h_call(&svc, "messages.AddMembers", &add.base, &sb__messages__conversation__descriptor,
	       "t1", "alice", &res);
	assert_int_equal(res.code, 0);
	assert_int_equal(((Sb__Messages__Conversation *)res.resp)->n_members, 3);
	sb_rpc_result_free(&res);
	assert_int_equal(outbox_count(conv, ev), 1);
	PGresult *q =
	    PQexecParams(svc.db,
	                 "SELECT payload FROM messages.outbox WHERE aggregate_id = $1 AND "
	                 "event_type = $2",
	                 2, NULL, (const char *[]){ conv, ev }, NULL, NULL, 1);
	Sb__Events__MembersChanged *mc = sb__events__members_changed__unpack(
	    NULL, (size_t)PQgetlength(q, 0, 0), (const uint8_t *)PQgetvalue(q, 0, 0));
	assert_non_null(mc);
	assert_int_equal(mc->n_added, 1); /* bob was a member already */
	assert_string_equal(mc->added[0], "carol");
	assert_string_equal(mc->changed_by, "alice");
	sb__events__members_changed__free_unpacked(mc, NULL);
	PQclear(q);
	/* carol can now send */
	assert_int_equal(h_send(&svc, "t1", "carol", conv, NULL, NULL, "hi", NULL), 0);

	Sb__Messages__RemoveMemberRequest rm = SB__MESSAGES__REMOVE_MEMBER_REQUEST__INIT;
	rm.id = conv;
	rm.user_id = "carol";
	h_call(&svc, "messages.RemoveMember", &rm.base, &sb__messages__conversation__descriptor,
	       "t1", "bob", &res);
	assert_int_equal(res.code, 0);
	assert_int_equal(((Sb__Messages__Conversation *)res.resp)->n_members, 2);
	sb_rpc_result_free(&res);
	assert_int_equal(outbox_count(conv, ev), 2);
	assert_int_equal(h_send(&svc, "t1", "carol", conv, NULL, NULL, "again", NULL),
	                 SB__RPC__CODE__PERMISSION_DENIED);
	/* removing a non-member: NOT_FOUND, no event */
	h_call(&svc, "messages.RemoveMember", &rm.base, &sb__messages__conversation__descriptor,
	       "t1", "bob", &res);
	assert_int_equal(res.code, SB__RPC__CODE__NOT_FOUND);
	sb_rpc_result_free(&res);
	assert_int_equal(outbox_count(conv, ev), 2);
	/* each conversation's events: created, members x2, one message = 4 rows */
	assert_int_equal(h_sql_ll(&svc,
	                          "SELECT count(*) FROM messages.outbox WHERE aggregate_id = $1",
	                          conv, NULL),
	                 4);
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
		cmocka_unit_test(test_list_pages_cover_every_conversation_once),
		cmocka_unit_test(test_read_marker_moves_forward_only),
		cmocka_unit_test(test_members_change_with_events),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
