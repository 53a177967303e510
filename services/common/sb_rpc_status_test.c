/* Tests of the RPC code → HTTP status mapping used by every edge. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <nng/nng.h>

#include "sb_rpc_status.h"
#include "rpc.pb-c.h"

static void
test_mapping(void **state)
{
	(void)state;
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__OK), 200);
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__INVALID_ARGUMENT), 400);
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__UNAUTHENTICATED), 401);
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__PERMISSION_DENIED), 403);
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__NOT_FOUND), 404);
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__ALREADY_EXISTS), 409);
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__RESOURCE_EXHAUSTED), 429);
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__UNAVAILABLE), 503);
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__DEADLINE_EXCEEDED), 504);
	assert_int_equal(sb_rpc_status_http(SB__RPC__CODE__UNIMPLEMENTED), 501);
	assert_int_equal(sb_rpc_status_http(-1), 500);
	assert_int_equal(sb_rpc_status_http(99), 500);
}

int
main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_mapping) };
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	/* nng frees closed sockets, dialers and pipes on its reaper thread; wait for it so
	 * LeakSanitizer does not count objects that are merely still queued for reaping. */
	nng_fini();
	return rc;
}
