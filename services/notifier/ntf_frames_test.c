/* ntf_frames_test.c: events to Redis messages and webhook bodies (frames.c), signature
 * (sign.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "events/messages_events.pb-c.h"
#include "notifier.h"
#include "sb_err.h"
#include "sb_log.h"

#define CT "io.switchboard.conversation.read.v1"

static void
test_read_frame_exact(void **state)
{
	(void)state;
	Sb__Events__ConversationRead e = SB__EVENTS__CONVERSATION_READ__INIT;
	uint8_t buf[256];
	struct ntf_event ev;
	e.conversation_id = "c1";
	e.tenant_id = "t1";
	e.user_id = "u\"1";
	e.up_to_seq = 42;
	e.read_at_ms = 1700000000000LL;
	size_t n = protobuf_c_message_pack(&e.base, buf);
	assert_int_equal(ntf_event_build(CT, "id-1", "2023-11-14T22:13:20Z", NULL, buf, n, &ev), 0);
	assert_string_equal(ev.type, "conversation.read");
	assert_string_equal(ev.tenant_id, "t1");
	assert_int_equal(ev.npubs, 1);
	assert_string_equal(ev.pubs[0].channel, "conv:c1");
	const char *want = "0 1700000000000\n{\"type\":\"conversation.read\",\"conversation_id\":"
	                   "\"c1\",\"user_id\":\"u\\\"1\",\"up_to_seq\":42}";
	assert_string_equal(ev.pubs[0].payload, want);
	assert_int_equal(ev.pubs[0].len, strlen(want));
	assert_string_equal(ev.webhook_body,
	                    "{\"type\":\"conversation.read\",\"id\":\"id-1\",\"time\":"
	                    "\"2023-11-14T22:13:20Z\",\"data\":{\"conversation_id\":\"c1\","
	                    "\"tenant_id\":\"t1\",\"user_id\":\"u\\\"1\",\"up_to_seq\":\"42\","
	                    "\"read_at_ms\":\"1700000000000\"}}");
	ntf_event_free(&ev);
}

static void
test_created_metadata(void **state)
{
	(void)state;
	Sb__Events__MessageCreated e = SB__EVENTS__MESSAGE_CREATED__INIT;
	uint8_t buf[512];
	struct ntf_event ev;
	e.message_id = "m1";
	e.conversation_id = "c1";
	e.sender_id = "s";
	e.seq = 7;
	e.content = "x";
	e.content_type = "text/plain";
	e.metadata_json = "[1]"; /* not an object: published as {} */
	e.created_at_ms = 1000;
	size_t n = protobuf_c_message_pack(&e.base, buf);
	assert_int_equal(
	    ntf_event_build("io.switchboard.message.created.v1", "i", "", NULL, buf, n, &ev), 0);
	assert_string_equal(
	    ev.pubs[0].payload,
	    "7 1000\n{\"type\":\"message.created\",\"conversation_id\":\"c1\",\"seq\""
	    ":7,\"message\":{\"id\":\"m1\",\"sender_id\":\"s\",\"content\":\"x\","
	    "\"content_type\":\"text/plain\",\"metadata\":{},\"created_at\":"
	    "\"1970-01-01T00:00:01.000Z\"}}");
	ntf_event_free(&ev);
	e.seq = 0; /* a message without seq is malformed */
	n = protobuf_c_message_pack(&e.base, buf);
	assert_int_equal(
	    ntf_event_build("io.switchboard.message.created.v1", "i", "", NULL, buf, n, &ev),
	    SB_EPROTO);
}

static void
test_bad_input(void **state)
{
	(void)state;
	struct ntf_event ev;
	assert_int_equal(ntf_event_build("io.other.v1", "i", "", NULL, "", 0, &ev), SB_ENOTFOUND);
	assert_int_equal(ntf_event_build(NULL, "i", "", NULL, "", 0, &ev), SB_ENOTFOUND);
	assert_int_equal(ntf_event_build(CT, "i", "", NULL, "\xff\xff\xff", 3, &ev), SB_EPROTO);
	assert_int_equal(ntf_event_build(CT, "", "", NULL, "", 0, &ev), SB_EPROTO);
	/* an empty payload decodes to an event without conversation id */
	assert_int_equal(ntf_event_build(CT, "i", "", NULL, "", 0, &ev), SB_EPROTO);
}

static void
test_delivered_frame(void **state)
{
	(void)state;
	struct ntf_pub p;
	assert_int_equal(ntf_frame_delivered("c", "bob", 5, "alice", 99, &p), 0);
	assert_string_equal(p.channel, "user:alice");
	assert_string_equal(p.payload, "0 99\n{\"type\":\"message.delivered\",\"conversation_id\":"
	                               "\"c\",\"seq\":5,\"user_id\":\"bob\"}");
	ntf_pub_free(&p);
}

int
main(void)
{
	sb_log_set_level(SB_LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_frame_exact),
		cmocka_unit_test(test_created_metadata),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_delivered_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
