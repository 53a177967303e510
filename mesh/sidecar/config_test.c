/* config_test.c: addresses and the upstream list of the sidecar's configuration. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sidecar.h"

static void
test_addr(void **state)
{
	(void)state;
	struct sockaddr_storage sa;
	socklen_t len;
	assert_int_equal(mesh_addr_parse("127.0.0.1:7102", &sa, &len), 0);
	assert_int_equal(sa.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&sa)->sin_port), 7102);
	assert_int_equal(mesh_addr_parse("[::1]:17102", &sa, &len), 0);
	assert_int_equal(sa.ss_family, AF_INET6);
	assert_int_equal(mesh_addr_parse("localhost:0", &sa, &len), 0);
	const char *bad[] = { "",
		              "127.0.0.1",
		              "127.0.0.1:",
		              ":80",
		              "127.0.0.1:65536",
		              "127.0.0.1:-1",
		              "127.0.0.1:80x",
		              "[::1]80",
		              "[::1" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(mesh_addr_parse(bad[i], &sa, &len), -1);
}

static void
test_upstreams(void **state)
{
	(void)state;
	struct mesh_cfg cfg = {
		.trust_domain = "td.local", .ns = "prod", .eject_base_ms = 100, .eject_max_ms = 1000
	};
	struct mesh_upstream *ups;
	size_t n;
	char err[160];
	cfg.outbound = "messages=127.0.0.1:27102>10.0.0.2:17102|10.0.0.3:17102 "
	               "auth=127.0.0.1:27101>127.0.0.1:17101";
	assert_int_equal(mesh_upstreams_parse(&cfg, &ups, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ups[0].name, "messages");
	assert_string_equal(ups[0].listen, "127.0.0.1:27102");
	assert_string_equal(ups[0].expect_id, "spiffe://td.local/ns/prod/sa/messages");
	assert_int_equal(ups[0].neps, 2);
	assert_string_equal(ups[0].eps[1].addr, "10.0.0.3:17102");
	assert_string_equal(ups[1].expect_id, "spiffe://td.local/ns/prod/sa/auth");
	for (size_t i = 0; i < n; i++)
		free(ups[i].eps);
	free(ups);

	cfg.outbound = "";
	assert_int_equal(mesh_upstreams_parse(&cfg, &ups, &n, err, sizeof err), 0);
	assert_int_equal(n, 0);
	free(ups);

	const char *bad[] = { "messages",
		              "messages=127.0.0.1:1",
		              "messages=127.0.0.1:1>",
		              "Messages=127.0.0.1:1>127.0.0.1:2",
		              "messages=nowhere>127.0.0.1:2",
		              "messages=127.0.0.1:1>127.0.0.1:2|bad" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cfg.outbound = (char *)bad[i];
		err[0] = '\0';
		assert_int_equal(mesh_upstreams_parse(&cfg, &ups, &n, err, sizeof err), -1);
		assert_null(ups);
		assert_int_equal(n, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_upstreams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
