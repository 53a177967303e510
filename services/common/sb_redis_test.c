/* Tests of sb_redis that need no server: URL parsing, script digests, argument checks and
 * behaviour while Redis is unreachable (open succeeds, calls fail fast and back off). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_redis.h"

static void
test_url_parse_ok(void **state)
{
	(void)state;
	static const struct {
		const char *url;
		const char *host;
		int port;
		const char *user;
		const char *pw;
		int db;
	} cases[] = {
		{ "redis://127.0.0.1:6380", "127.0.0.1", 6380, "", "", 0 },
		{ "redis://localhost", "localhost", 6379, "", "", 0 },
		{ "redis://localhost/", "localhost", 6379, "", "", 0 },
		{ "redis://:s3cr%40t@cache:7000/2", "cache", 7000, "", "s3cr@t", 2 },
		{ "redis://app:pw@cache/15", "cache", 6379, "app", "pw", 15 },
		{ "redis://onlypw@cache", "cache", 6379, "", "onlypw", 0 },
		{ "REDIS://[::1]:6390/1", "::1", 6390, "", "", 1 },
		{ "redis://a:b:c@h:1", "h", 1, "a", "b:c", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sb_redis_url u;
		char err[160] = "";
		assert_int_equal(sb_redis_url_parse(cases[i].url, &u, err, sizeof(err)), 0);
		assert_string_equal(u.host, cases[i].host);
		assert_int_equal(u.port, cases[i].port);
		assert_string_equal(u.user, cases[i].user);
		assert_string_equal(u.password, cases[i].pw);
		assert_int_equal(u.db, cases[i].db);
	}
}

static void
test_url_parse_errors(void **state)
{
	(void)state;
	static const struct {
		const char *url;
		const char *why;
	} cases[] = {
		{ "http://h:1", "redis://" },
		{ "rediss://h:1", "TLS" },
		{ "redis://", "host" },
		{ "redis://:pw@", "host" },
		{ "redis://h:0", "port" },
		{ "redis://h:65536", "port" },
		{ "redis://h:12x", "port" },
		{ "redis://h:", "port" },
		{ "redis://h:1/x", "database" },
		{ "redis://h:1/-1", "database" },
		{ "redis://h:1?timeout=3", "query" },
		{ "redis://[::1:1", "IPv6" },
		{ "redis://[::1]x", "after the host" },
		{ "redis://:bad%zzpw@h", "password" },
		{ "redis://:bad%2@h", "password" },
		{ "redis://:nul%00@h", "password" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sb_redis_url u;
		char err[160] = "";
		assert_int_equal(sb_redis_url_parse(cases[i].url, &u, err, sizeof(err)), SB_EINVAL);
		if (strstr(err, cases[i].why) == NULL)
			fail_msg("%s: error '%s' lacks '%s'", cases[i].url, err, cases[i].why);
		assert_null(strstr(err, "pw")); /* the password never appears */
	}
	struct sb_redis_url u;
	char err[160];
	assert_int_equal(sb_redis_url_parse(NULL, &u, err, sizeof(err)), SB_EINVAL);
}

static void
test_script_sha(void **state)
{
	(void)state;
	struct sb_redis_script s;
	assert_int_equal(sb_redis_script_init(&s, "return 1"), 0);
	assert_string_equal(s.sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
	assert_int_equal(sb_redis_script_init(&s, "return 'hello moto'"), 0);
	assert_string_equal(s.sha, "232fd51614574cf0867b83d384a5e898cfd24e5a");
	assert_int_equal(sb_redis_script_init(&s, NULL), SB_EIO);
}

static int
closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void
test_down_redis(void **state)
{
	(void)state;
	struct sb_redis *r = (struct sb_redis *)1;
	assert_int_equal(sb_redis_open("redis://h:99999", &r), SB_EINVAL);
	assert_null(r);

	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", closed_port());
	struct sb_redis_opts opts = { .backoff_base_ms = 200, .backoff_max_ms = 400 };
	assert_int_equal(sb_redis_open_opts(url, &opts, &r), 0); /* no connection needed */
	assert_int_equal(sb_redis_retry_after_ms(r), 0);         /* no attempt made yet */

	assert_null(sb_redis_command(r, "SET k %s", "v"));
	assert_int_equal(sb_redis_err(r), SB_EUNAVAIL);
	assert_non_null(strstr(sb_redis_errmsg(r), "connect"));
	int64_t ra = sb_redis_retry_after_ms(r);
	assert_true(ra > 0 && ra <= 200);
	/* Before the next attempt is due, calls fail without one. */
	assert_int_equal(sb_redis_append(r, "GET k"), SB_EUNAVAIL);
	assert_non_null(strstr(sb_redis_errmsg(r), "next attempt"));
	char detail[160];
	assert_int_equal(sb_redis_ping(r, detail, sizeof(detail)), SB_EUNAVAIL);
	assert_true(detail[0] != '\0');

	struct sb_redis_script s;
	sb_redis_script_init(&s, "return 1");
	assert_null(sb_redis_evalsha(r, &s, 0, NULL, 0, NULL));
	assert_int_equal(sb_redis_err(r), SB_EUNAVAIL);

	/* Argument checks. */
	assert_null(sb_redis_command_argv(r, 0, NULL, NULL));
	assert_int_equal(sb_redis_err(r), SB_EINVAL);
	redisReply *reps[2];
	assert_int_equal(sb_redis_get_replies(r, reps, 1), SB_EINVAL); /* nothing queued */
	assert_null(reps[0]);
	assert_int_equal(sb_redis_pending(r), 0);
	assert_int_equal(sb_redis_reconnects(r), 0);
	sb_redis_close(r);
	sb_redis_close(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parse_ok),
		cmocka_unit_test(test_url_parse_errors),
		cmocka_unit_test(test_script_sha),
		cmocka_unit_test(test_down_redis),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
