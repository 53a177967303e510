/* sb_redis against a real Redis: commands, a pipeline of 1000 commands, EVALSHA reloading a
 * flushed script, and reconnecting after Redis shuts down and comes back on the same port.
 * SIGPIPE is left at its default on purpose: writing to the dead connection must not kill us.
 * stack: redis
 * labels: redis
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_metrics.h"
#include "sb_redis.h"

static const struct sb_redis_opts opts = { .connect_timeout_ms = 1000,
	                                   .command_timeout_ms = 1000,
	                                   .backoff_base_ms = 50,
	                                   .backoff_max_ms = 400 };

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static const char *
url(void)
{
	const char *u = getenv("SB_TEST_REDIS_URL");
	if (u == NULL)
		fail_msg("SB_TEST_REDIS_URL unset: run under tests/lib/with-stack.sh");
	return u;
}

static struct sb_redis *
open_redis(void)
{
	struct sb_redis *r = NULL;
	assert_int_equal(sb_redis_open_opts(url(), &opts, &r), 0);
	return r;
}

static void
test_commands(void **state)
{
	(void)state;
	struct sb_redis *r = open_redis();
	redisReply *rep = sb_redis_command(r, "SET %s %b", "greeting", "hi\0there", (size_t)8);
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_STATUS);
	freeReplyObject(rep);
	const char *argv[] = { "GET", "greeting" };
	rep = sb_redis_command_argv(r, 2, argv, NULL);
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_STRING);
	assert_int_equal(rep->len, 8);
	assert_memory_equal(rep->str, "hi\0there", 8);
	freeReplyObject(rep);
	/* A Redis error is a reply, not a failure. */
	rep = sb_redis_command(r, "INCR greeting");
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_ERROR);
	assert_int_equal(sb_redis_err(r), 0);
	freeReplyObject(rep);
	char detail[128];
	assert_int_equal(sb_redis_ping(r, detail, sizeof(detail)), 0);
	sb_redis_close(r);
}

static void
test_pipeline_1000(void **state)
{
	(void)state;
	struct sb_redis *r = open_redis();
	redisReply *rep = sb_redis_command(r, "DEL ctr");
	freeReplyObject(rep);
	enum { N = 1000 };
	int64_t t0 = now_us();
	for (int i = 0; i < N; i++)
		assert_int_equal(sb_redis_append(r, "INCR ctr"), 0);
	assert_int_equal(sb_redis_pending(r), N);
	/* A plain command cannot jump the queue. */
	assert_null(sb_redis_command(r, "GET ctr"));
	assert_int_equal(sb_redis_err(r), SB_EBUSY);
	static redisReply *reps[N];
	assert_int_equal(sb_redis_get_replies(r, reps, N), 0);
	int64_t pipelined = now_us() - t0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(reps[i]->type, REDIS_REPLY_INTEGER);
		assert_int_equal(reps[i]->integer, i + 1); /* in order */
		freeReplyObject(reps[i]);
	}
	assert_int_equal(sb_redis_pending(r), 0);
	t0 = now_us();
	for (int i = 0; i < N; i++)
		freeReplyObject(sb_redis_command(r, "INCR ctr"));
	int64_t one_by_one = now_us() - t0;
	fprintf(stderr, "1000 INCR: pipelined %lld us, one by one %lld us\n", (long long)pipelined,
	        (long long)one_by_one);
	assert_true(pipelined < one_by_one); /* one round trip beats a thousand */
	rep = sb_redis_command(r, "GET ctr");
	assert_string_equal(rep->str, "2000");
	freeReplyObject(rep);
	sb_redis_close(r);
}

static const char *lua = "return redis.call('INCRBY', KEYS[1], ARGV[1])";

static long long
evalsha_incr(struct sb_redis *r, const struct sb_redis_script *s, const char *by)
{
	const char *keys[] = { "evalkey" };
	const char *args[] = { by };
	redisReply *rep = sb_redis_evalsha(r, s, 1, keys, 1, args);
	if (rep == NULL)
		fail_msg("evalsha: %s", sb_redis_errmsg(r));
	assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
	long long v = rep->integer;
	freeReplyObject(rep);
	return v;
}

static int
script_exists(struct sb_redis *r, const char *sha)
{
	redisReply *rep = sb_redis_command(r, "SCRIPT EXISTS %s", sha);
	assert_non_null(rep);
	int v = (int)rep->element[0]->integer;
	freeReplyObject(rep);
	return v;
}

static void
test_evalsha_reloads_after_flush(void **state)
{
	(void)state;
	struct sb_redis *r = open_redis();
	struct sb_redis_script s;
	assert_int_equal(sb_redis_script_init(&s, lua), 0);
	freeReplyObject(sb_redis_command(r, "SCRIPT FLUSH"));
	freeReplyObject(sb_redis_command(r, "DEL evalkey"));
	assert_int_equal(script_exists(r, s.sha), 0);
	assert_int_equal(evalsha_incr(r, &s, "5"), 5); /* NOSCRIPT, loaded, run */
	assert_int_equal(script_exists(r, s.sha), 1);
	assert_int_equal(evalsha_incr(r, &s, "2"), 7); /* cached */
	freeReplyObject(sb_redis_command(r, "SCRIPT FLUSH"));
	assert_int_equal(evalsha_incr(r, &s, "3"), 10); /* reloaded again, run exactly once */
	sb_redis_close(r);
}

static void
test_reconnect_after_restart(void **state)
{
	(void)state;
	const char *tmp = getenv("SB_TEST_TMP");
	assert_non_null(tmp);
	struct sb_redis_url u;
	char err[128];
	assert_int_equal(sb_redis_url_parse(url(), &u, err, sizeof(err)), 0);
	struct sb_redis *r = open_redis();
	struct sb_redis_script s;
	sb_redis_script_init(&s, lua);
	freeReplyObject(sb_redis_command(r, "SET survivor 1"));
	assert_int_equal(evalsha_incr(r, &s, "1") > 0, 1);

	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "redis-cli -u %s shutdown nosave >/dev/null 2>&1", url());
	assert_int_equal(system(cmd), 0);

	/* Down: calls fail fast with SB_EUNAVAIL and the process survives the dead socket. */
	for (int i = 0; i < 5; i++) {
		int64_t t0 = now_us();
		assert_null(sb_redis_command(r, "GET survivor"));
		assert_int_equal(sb_redis_err(r), SB_EUNAVAIL);
		assert_true(now_us() - t0 < 1500000);
		char detail[160];
		assert_int_not_equal(sb_redis_ping(r, detail, sizeof(detail)), 0);
		sleep_ms(30);
	}
	assert_int_equal(sb_redis_append(r, "PING"), SB_EUNAVAIL);

	snprintf(cmd, sizeof(cmd),
	         "redis-server --port %d --bind 127.0.0.1 --dir %s/redis --save '' --appendonly no"
	         " --daemonize yes --pidfile %s/redis/redis.pid --logfile %s/redis/redis.log",
	         u.port, tmp, tmp, tmp);
	assert_int_equal(system(cmd), 0);

	redisReply *rep = NULL;
	for (int i = 0; i < 100 && rep == NULL; i++) {
		rep = sb_redis_command(r, "GET survivor");
		if (rep == NULL) {
			assert_int_equal(sb_redis_err(r), SB_EUNAVAIL);
			sleep_ms(50);
		}
	}
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_NIL); /* shut down with nosave */
	freeReplyObject(rep);
	assert_int_equal(sb_redis_reconnects(r), 1);
	assert_int_equal(evalsha_incr(r, &s, "4"), 4); /* script cache was lost too: reloaded */
	struct sb_buf m = SB_BUF_INIT;
	assert_int_equal(sb_metrics_render(&m), 0);
	assert_non_null(strstr(m.data, "redis_reconnects_total 1\n"));
	sb_buf_free(&m);
	sb_redis_close(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_pipeline_1000),
		cmocka_unit_test(test_evalsha_reloads_after_flush),
		cmocka_unit_test(test_reconnect_after_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
