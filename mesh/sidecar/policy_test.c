/* policy_test.c: SPIFFE ID parsing and the allow/deny rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "sidecar.h"

static void
test_id_parse(void **state)
{
	(void)state;
	struct mesh_id id;
	const char *ok = "spiffe://switchboard.local/ns/default/sa/gateway";
	assert_int_equal(mesh_id_parse(ok, strlen(ok), &id), 0);
	assert_string_equal(id.td, "switchboard.local");
	assert_string_equal(id.ns, "default");
	assert_string_equal(id.sa, "gateway");
	const char *bad[] = {
		"spiffe://td/ns/default/sa/",  "spiffe://td/ns//sa/x",
		"spiffe://td/ns/a/sa/x/extra", "http://td/ns/a/sa/x",
		"spiffe://TD/ns/a/sa/x",       "spiffe://td/sa/x",
		"spiffe://td/ns/a/sa/x y",     "spiffe://td/ns/a/sa/x%2f",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(mesh_id_parse(bad[i], strlen(bad[i]), &id), -1);
	/* A NUL inside the SAN must not cut the comparison short. */
	const char nul[] = "spiffe://td/ns/a/sa/x\0y";
	assert_int_equal(mesh_id_parse(nul, sizeof nul - 1, &id), -1);
}

static void
test_policy(void **state)
{
	(void)state;
	struct mesh_policy p;
	char err[128];
	assert_int_equal(mesh_policy_parse("gateway=messages.* gateway=auth.* gateway=!auth.Admin*,"
	                                   "realtime=messages.History; *=messages.Health",
	                                   &p, err, sizeof err),
	                 0);
	assert_true(mesh_policy_caller(&p, "gateway"));
	assert_true(mesh_policy_caller(&p, "anyone")); /* through "*" */
	assert_true(mesh_policy_method(&p, "gateway", "messages.Send"));
	assert_true(mesh_policy_method(&p, "gateway", "auth.Token"));
	assert_false(mesh_policy_method(&p, "gateway", "auth.AdminCreateClient"));
	assert_true(mesh_policy_method(&p, "realtime", "messages.History"));
	assert_false(mesh_policy_method(&p, "realtime", "messages.Send"));
	assert_true(mesh_policy_method(&p, "notifier", "messages.Health"));
	assert_false(mesh_policy_method(&p, "notifier", "messages.Send"));
	mesh_policy_free(&p);

	assert_int_equal(mesh_policy_parse("gateway=messages.*", &p, err, sizeof err), 0);
	assert_false(mesh_policy_caller(&p, "realtime"));
	mesh_policy_free(&p);

	assert_int_equal(mesh_policy_parse("", &p, err, sizeof err), 0);
	assert_false(mesh_policy_caller(&p, "gateway"));
	assert_false(mesh_policy_method(&p, "gateway", "messages.Send"));
	mesh_policy_free(&p);

	const char *bad[] = { "gateway",   "=messages.*",  "gateway=",
		              "gateway=!", "Gate way=x.y", "a*=x.y" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(mesh_policy_parse(bad[i], &p, err, sizeof err), -1);
		assert_non_null(strstr(err, "bad rule"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_parse),
		cmocka_unit_test(test_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
