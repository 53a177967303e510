/* json_bench: nanoseconds per message of the gateway's JSON <-> protobuf transcoding, for a
 * typical chat message send request, in both directions:
 *   decode: JSON text -> parse -> sb_json_to_pb -> packed protobuf
 *   encode: packed protobuf -> unpack -> sb_pb_to_json_buf -> JSON text
 * Each direction runs ITERS messages per run, RUNS runs; the median run is reported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_json.h"
#include "test/transcode_test.pb-c.h"

#define ITERS 50000
#define RUNS  7

static const char request[] =
    "{\"id\":\"0b6f1c3e-5d2a-4f7e-9c41-7a2d8e9b1f30\","
    "\"conversation_id\":\"c2a9e4d1-8b7f-4e3a-a1c5-3f6d9e2b7a84\","
    "\"content\":\"Hi team! The deploy of the realtime service finished at 14:02 UTC. Latency "
    "p99 is back under 40 ms and the reconnect storm is gone. I will keep watching the "
    "dashboards for the next hour; ping me here if anything looks off.\","
    "\"contentType\":\"text/plain\","
    "\"metadata\":{\"client\":\"web/2.14.0\",\"reply_to\":\"7f3e2a10-44c1-4b8e-9a0d\"},"
    "\"sender\":{\"user_id\":\"u_48213\",\"tenant_id\":\"t_acme\","
    "\"scopes\":[\"messages:write\",\"messages:read\"],\"client_id\":\"console\"}}";

static double
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One message JSON text -> packed bytes; returns the packed size or 0 on failure. */
static size_t
decode_one(uint8_t *wire, size_t cap)
{
	json_t *j = NULL;
	ProtobufCMessage *m = NULL;
	struct sb_json_errors errs;
	size_t n = 0;
	if (sb_json_parse(request, sizeof(request) - 1, 16, &j, &errs) != 0)
		return 0;
	if (sb_json_to_pb(&sb__test__send_request__descriptor, j, &m, &errs) == 0) {
		n = protobuf_c_message_get_packed_size(m);
		if (n <= cap)
			protobuf_c_message_pack(m, wire);
		else
			n = 0;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	json_decref(j);
	return n;
}

/* One message packed bytes -> JSON text in out; returns 0 on success. */
static int
encode_one(const uint8_t *wire, size_t n, struct sb_buf *out)
{
	ProtobufCMessage *m =
	    protobuf_c_message_unpack(&sb__test__send_request__descriptor, NULL, n, wire);
	if (m == NULL)
		return -1;
	sb_buf_reset(out);
	int rc = sb_pb_to_json_buf(m, out);
	protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

int
main(void)
{
	uint8_t wire[2048];
	size_t n = decode_one(wire, sizeof(wire));
	struct sb_buf out = SB_BUF_INIT;
	if (n == 0 || encode_one(wire, n, &out) != 0) {
		fprintf(stderr, "json_bench: the sample request does not transcode\n");
		return 1;
	}
	printf("json_bench: SendRequest, %zu bytes of JSON in, %zu bytes packed, %zu bytes of JSON "
	       "out; %d runs of %d messages, median run\n",
	       sizeof(request) - 1, n, out.len, RUNS, ITERS);
	double dec[RUNS], enc[RUNS];
	for (int r = 0; r < RUNS; r++) {
		double t0 = now_ns();
		for (int i = 0; i < ITERS; i++) {
			if (decode_one(wire, sizeof(wire)) != n)
				return 1;
		}
		double t1 = now_ns();
		for (int i = 0; i < ITERS; i++) {
			if (encode_one(wire, n, &out) != 0)
				return 1;
		}
		double t2 = now_ns();
		dec[r] = (t1 - t0) / ITERS;
		enc[r] = (t2 - t1) / ITERS;
	}
	qsort(dec, RUNS, sizeof(double), cmp_double);
	qsort(enc, RUNS, sizeof(double), cmp_double);
	printf("decode JSON text -> packed protobuf: %8.0f ns/msg (min %.0f, max %.0f)\n",
	       dec[RUNS / 2], dec[0], dec[RUNS - 1]);
	printf("encode packed protobuf -> JSON text: %8.0f ns/msg (min %.0f, max %.0f)\n",
	       enc[RUNS / 2], enc[0], enc[RUNS - 1]);
	sb_buf_free(&out);
	return 0;
}
