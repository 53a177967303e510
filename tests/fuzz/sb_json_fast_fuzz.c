/* sb_json_fast_fuzz: libFuzzer target for sb_json_fast_to_pb, the gateway's fast path from
 * JSON text to a protobuf request.
 *
 * Byte 0 picks the request type (sb.test.Everything, sb.test.SendRequest, sb.test.RawHolder,
 * sb.pubsub.PublishBatchRequest, sb.pubsub.AckBatchRequest), byte 1 the limits (nesting 1..16;
 * small member and string limits when its top bit is set); the rest is the text. Checked
 * besides crashes:
 *   - whenever the fast path builds a message, sb_json_parse_limits and sb_json_to_pb (the
 *     slow path, with the same limits) also succeed, and both messages pack to the same bytes:
 *     the fast path never accepts what the gateway refused before, nor reads it differently;
 *   - the fast path only answers 0, SB_JSON_FAST_ASK or SB_ENOMEM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub.pb-c.h"
#include "sb_err.h"
#include "sb_json.h"
#include "test/raw_test.pb-c.h"
#include "test/transcode_test.pb-c.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "sb_json_fast_fuzz: invariant broken: %s (line %d)\n",     \
			        #cond, __LINE__);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *
fuzz_pack(const ProtobufCMessage *m, size_t *n)
{
	*n = protobuf_c_message_get_packed_size(m);
	uint8_t *p = malloc(*n ? *n : 1);
	if (p != NULL)
		protobuf_c_message_pack(m, p);
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const ProtobufCMessageDescriptor *const types[] = {
		&sb__test__everything__descriptor,
		&sb__test__send_request__descriptor,
		&sb__test__raw_holder__descriptor,
		&sb__pubsub__publish_batch_request__descriptor,
		&sb__pubsub__ack_batch_request__descriptor,
	};
	if (size < 2)
		return 0;
	const ProtobufCMessageDescriptor *d = types[data[0] % 5];
	struct sb_json_limits lim = {
		.max_bytes = SB_JSON_DEFAULT_MAX_BYTES,
		.max_depth = 1 + (data[1] & 15),
		.max_members = (data[1] & 0x80) ? 4 : SB_JSON_DEFAULT_MAX_MEMBERS,
		.max_string = (data[1] & 0x80) ? 8 : SB_JSON_DEFAULT_MAX_STRING,
	};
	size -= 2;
	char *text = malloc(size ? size : 1); /* exactly the text: ASan sees any read past it */
	if (text == NULL)
		return 0;
	memcpy(text, data + 2, size);
	ProtobufCMessage *fast = NULL, *slow = NULL;
	int rc = sb_json_fast_to_pb(d, text, size, &lim, &fast);
	CHECK(rc == 0 || rc == SB_JSON_FAST_ASK || rc == SB_ENOMEM);
	CHECK((rc == 0) == (fast != NULL));
	if (rc == 0) {
		json_t *j = NULL;
		struct sb_json_errors errs;
		CHECK(sb_json_parse_limits(text, size, &lim, &j, &errs) == 0);
		CHECK(sb_json_to_pb(d, j, &slow, &errs) == 0);
		json_decref(j);
		size_t nf, ns;
		uint8_t *pf = fuzz_pack(fast, &nf), *ps = fuzz_pack(slow, &ns);
		if (pf != NULL && ps != NULL) {
			CHECK(nf == ns);
			CHECK(memcmp(pf, ps, nf) == 0);
		}
		free(pf);
		free(ps);
		protobuf_c_message_free_unpacked(fast, NULL);
		protobuf_c_message_free_unpacked(slow, NULL);
	}
	free(text);
	return 0;
}
