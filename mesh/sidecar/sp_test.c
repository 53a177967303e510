/* sp_test.c: SP headers and frames, backtraces, the envelope's method, refusal replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "rpc.pb-c.h"
#include "sidecar.h"

static void
test_header(void **state)
{
	(void)state;
	uint8_t h[8];
	uint16_t proto = 0;
	mesh_sp_header_write(h, MESH_SP_REQ0);
	const uint8_t want[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
	assert_memory_equal(h, want, 8);
	assert_int_equal(mesh_sp_header_parse(h, 8, &proto), 0);
	assert_int_equal(proto, MESH_SP_REQ0);
	assert_int_equal(mesh_sp_header_parse(h, 7, &proto), 1);
	h[7] = 1;
	assert_int_equal(mesh_sp_header_parse(h, 8, &proto), -1);
	const uint8_t http[8] = { 'G', 'E', 'T', ' ', '/', ' ', 'H', 'T' };
	assert_int_equal(mesh_sp_header_parse(http, 8, &proto), -1);
}

static void
test_frame(void **state)
{
	(void)state;
	uint8_t f[16] = { 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5, 9, 9, 9 };
	size_t len = 0;
	assert_int_equal(mesh_sp_frame(f, 16, 100, &len), 0);
	assert_int_equal(len, 13);
	assert_int_equal(mesh_sp_frame(f, 12, 100, &len), 1);
	assert_int_equal(mesh_sp_frame(f, 7, 100, &len), 1);
	assert_int_equal(mesh_sp_frame(f, 16, 4, &len), -1);
	uint8_t huge[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	assert_int_equal(mesh_sp_frame(huge, 8, (size_t)-1 / 2, &len), -1);
}

static void
test_backtrace(void **state)
{
	(void)state;
	size_t bt;
	uint32_t id;
	const uint8_t one[] = { 0x80, 0, 0, 7, 0xaa };
	assert_int_equal(mesh_sp_backtrace(one, sizeof one, &bt, &id), 0);
	assert_int_equal(bt, 4);
	assert_int_equal(id, 0x80000007u);
	const uint8_t hop[] = { 0, 0, 0, 1, 0x80, 0, 1, 0 };
	assert_int_equal(mesh_sp_backtrace(hop, sizeof hop, &bt, &id), 0);
	assert_int_equal(bt, 8);
	const uint8_t none[] = { 0, 0, 0, 1, 0, 0, 0, 2, 0x80 };
	assert_int_equal(mesh_sp_backtrace(none, sizeof none, &bt, &id), -1);
	uint8_t many[4 * (MESH_SP_MAX_HOPS + 1)] = { 0 };
	many[4 * MESH_SP_MAX_HOPS] = 0x80;
	assert_int_equal(mesh_sp_backtrace(many, sizeof many, &bt, &id), -1);
}

/* A real envelope packed by protobuf-c, as sb_rpc_client sends it. */
static size_t
pack_request(uint8_t *out, const char *method, const uint8_t *payload, size_t plen)
{
	Sb__Rpc__Request r = SB__RPC__REQUEST__INIT;
	r.method = (char *)method;
	r.payload.data = (uint8_t *)payload;
	r.payload.len = plen;
	r.deadline_ms = 1700000000000;
	r.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	return sb__rpc__request__pack(&r, out);
}

static void
test_envelope(void **state)
{
	(void)state;
	uint8_t buf[512];
	const uint8_t *m, *p;
	size_t ml, pl;
	size_t n = pack_request(buf, "messages.Send", (const uint8_t *)"\x0a\x01x", 3);
	assert_int_equal(mesh_envelope_method(buf, n, &m, &ml, &p, &pl), 0);
	assert_int_equal(ml, strlen("messages.Send"));
	assert_memory_equal(m, "messages.Send", ml);
	assert_int_equal(pl, 3);
	/* Cut anywhere inside: malformed. */
	for (size_t cut = 1; cut < n; cut++) {
		int r = mesh_envelope_method(buf, cut, &m, &ml, &p, &pl);
		if (r == 0) /* only cuts at a field boundary after field 1 can parse */
			assert_memory_equal(m, "messages.Send", ml);
	}
	/* Bad method names. */
	const char *bad[] = { "", "nodot", ".x", "x.", "a.b.c", "a b.c", "a.b\n" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		n = pack_request(buf, bad[i], NULL, 0);
		assert_int_equal(mesh_envelope_method(buf, n, &m, &ml, &p, &pl), -1);
	}
	/* Field 1 with the wrong wire type. */
	const uint8_t wrong[] = { 0x08, 0x01 };
	assert_int_equal(mesh_envelope_method(wrong, sizeof wrong, &m, &ml, &p, &pl), -1);
	/* A length running past the end. */
	const uint8_t past[] = { 0x0a, 0x20, 'a', '.', 'b' };
	assert_int_equal(mesh_envelope_method(past, sizeof past, &m, &ml, &p, &pl), -1);
}

static void
test_batch_and_reply(void **state)
{
	(void)state;
	uint8_t r1[256], r2[256], packed[1024], env[1200];
	size_t n1 = pack_request(r1, "messages.Send", NULL, 0);
	size_t n2 = pack_request(r2, "auth.AdminRevoke", NULL, 0);
	ProtobufCBinaryData reqs[2] = { { n1, r1 }, { n2, r2 } };
	Sb__Rpc__Batch b = SB__RPC__BATCH__INIT;
	b.n_requests = 2;
	b.requests = reqs;
	size_t bn = sb__rpc__batch__pack(&b, packed);
	size_t en = pack_request(env, "rpc.Batch", packed, bn);
	const uint8_t *m, *p, *it, *req;
	size_t ml, pl, rl;
	assert_int_equal(mesh_envelope_method(env, en, &m, &ml, &p, &pl), 0);
	it = p;
	assert_int_equal(mesh_batch_next(&it, p + pl, &req, &rl), 0);
	assert_int_equal(mesh_envelope_method(req, rl, &m, &ml, &p, &pl), 0);
	assert_memory_equal(m, "messages.Send", ml);

	/* The refusal the sidecar writes decodes as a Response with its backtrace intact. */
	uint8_t out[2048];
	const uint8_t bt[4] = { 0x80, 0x12, 0x34, 0x56 };
	size_t n = mesh_sp_reply(out, sizeof out, bt, 4, 7, "mesh: gateway may not call x.Y");
	assert_true(n > 12);
	size_t flen;
	assert_int_equal(mesh_sp_frame(out, n, 1 << 20, &flen), 0);
	assert_int_equal(flen, n);
	assert_memory_equal(out + 8, bt, 4);
	Sb__Rpc__Response *resp = sb__rpc__response__unpack(NULL, n - 12, out + 12);
	assert_non_null(resp);
	assert_int_equal(resp->code, SB__RPC__CODE__PERMISSION_DENIED);
	assert_string_equal(resp->message, "mesh: gateway may not call x.Y");
	uint32_t code = 99;
	assert_int_equal(mesh_response_code(out + 12, n - 12, &code), 0);
	assert_int_equal(code, 7);
	sb__rpc__response__free_unpacked(resp, NULL);
	assert_int_equal(mesh_sp_reply(out, 20, bt, 4, 7, "x"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),          cmocka_unit_test(test_frame),
		cmocka_unit_test(test_backtrace),       cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_batch_and_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
