/* sb_json_fuzz: libFuzzer target for the JSON <-> protobuf transcoder.
 *
 * The first byte picks a mode, the rest is the input:
 *   0, 1  JSON text for sb.test.Everything / sb.test.SendRequest. Whatever decodes must pack,
 *         unpack and encode to JSON that decodes again to the very same JSON text (a fixed
 *         point), and sb_pb_to_json must agree.
 *   2     protobuf wire bytes of sb.test.Everything. Whatever unpacks must encode to valid JSON
 *         (jansson, which checks UTF-8, must accept it).
 * Any crash, sanitizer report, leak or broken invariant (abort) is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_json.h"
#include "test/transcode_test.pb-c.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "sb_json_fuzz: invariant broken: %s (line %d)\n", #cond,   \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* JSON text -> message -> JSON text, or NULL when the text is rejected. */
static char *
fuzz_transcode(const ProtobufCMessageDescriptor *d, const char *text, size_t len)
{
	json_t *j = NULL;
	ProtobufCMessage *m = NULL;
	struct sb_json_errors errs;
	if (sb_json_parse(text, len, 16, &j, &errs) != 0) {
		CHECK(errs.n == 1);
		return NULL;
	}
	int rc = sb_json_to_pb(d, j, &m, &errs);
	json_decref(j);
	if (rc != 0) {
		CHECK(errs.n >= 1);
		return NULL;
	}
	/* Through the wire and back. */
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *wire = malloc(n ? n : 1);
	CHECK(wire != NULL && protobuf_c_message_pack(m, wire) == n);
	protobuf_c_message_free_unpacked(m, NULL);
	m = protobuf_c_message_unpack(d, NULL, n, wire);
	free(wire);
	CHECK(m != NULL);
	struct sb_buf b = SB_BUF_INIT;
	CHECK(sb_pb_to_json_buf(m, &b) == 0);
	json_t *tree = sb_pb_to_json(m);
	json_t *reparsed = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
	CHECK(tree != NULL && reparsed != NULL && json_equal(tree, reparsed));
	json_decref(tree);
	json_decref(reparsed);
	protobuf_c_message_free_unpacked(m, NULL);
	return sb_buf_steal(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int mode = data[0] % 3;
	const char *text = (const char *)data + 1;
	size--;
	if (mode == 2) {
		ProtobufCMessage *m = protobuf_c_message_unpack(&sb__test__everything__descriptor,
		                                                NULL, size, data + 1);
		if (m == NULL)
			return 0;
		struct sb_buf b = SB_BUF_INIT;
		if (sb_pb_to_json_buf(m, &b) == 0) {
			json_t *j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
			CHECK(j != NULL);
			json_decref(j);
		}
		sb_buf_free(&b);
		protobuf_c_message_free_unpacked(m, NULL);
		return 0;
	}
	const ProtobufCMessageDescriptor *d =
	    mode == 0 ? &sb__test__everything__descriptor : &sb__test__send_request__descriptor;
	char *once = fuzz_transcode(d, text, size);
	if (once == NULL)
		return 0;
	char *twice = fuzz_transcode(d, once, strlen(once));
	CHECK(twice != NULL && strcmp(once, twice) == 0);
	free(once);
	free(twice);
	return 0;
}
