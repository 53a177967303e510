/* files_expire_test.c: files.Expire, the cleanup gc calls, against the real sb-files and
 * PostgreSQL with the filesystem storage. The clock is the request's (now_ms,
 * abandoned_before_ms), never a sleep: a chunked upload last touched 25 h ago with 10 chunks
 * (rows and parts), a tus upload past its expiry and a terminated upload with bytes left
 * behind are cleaned (bytes removed, chunk rows deleted, FAILED with the reason); a fresh
 * upload and a completed one 25 h old keep their rows and bytes. A second call finds nothing
 * (idempotent); `limit` bounds a call and says `more`. Then sb-gc's uploads task, with its
 * clock moved 25 h on (SB_GC_CLOCK_OFFSET_S), has files clean an upload that is only 1 h old,
 * counted in gc_uploads_cleaned_total.
 * stack: pg
 * labels: files,sanitize
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "files.pb-c.h"
#include "it.h"
#include "sb_rpc.h"

#define ID_OLD   "00000000-0000-4000-8000-000000000001" /* chunked, 25 h old, 10 chunks */
#define ID_EXP   "00000000-0000-4000-8000-000000000002" /* tus, past its expiry */
#define ID_TERM  "00000000-0000-4000-8000-000000000003" /* terminated, bytes left */
#define ID_FRESH "00000000-0000-4000-8000-000000000004" /* tus, in progress */
#define ID_DONE  "00000000-0000-4000-8000-000000000005" /* completed 25 h ago */
#define ID_GC    "00000000-0000-4000-8000-000000000006" /* tus, 1 h old: gc's, 25 h on */

static char dir[512];

static char *
scalar(PGconn *c, const char *sql, char *out, size_t n)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	snprintf(out, n, "%s", PQgetisnull(r, 0, 0) ? "(null)" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

static void
put_file(const char *key)
{
	char path[700], d[700];
	snprintf(path, sizeof(path), "%s/%s", dir, key);
	snprintf(d, sizeof(d), "%s", path);
	for (char *p = d + strlen(dir) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(d, 0750);
			*p = '/';
		}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("bytes", f);
	fclose(f);
}

static bool
has_file(const char *key)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return access(path, F_OK) == 0;
}

/* expire calls files.Expire and fills *out; fails the test on any error. */
static void
expire(struct sb_rpc_client *cli, long long now, long long before, int limit,
       Sb__Files__ExpireResponse *out)
{
	Sb__Files__ExpireRequest req = SB__FILES__EXPIRE_REQUEST__INIT;
	req.now_ms = now;
	req.abandoned_before_ms = before;
	req.limit = limit;
	struct sb_rpc_meta meta = { .timeout_ms = 10000 };
	struct sb_rpc_result res;
	int rv = -1;
	/* the server may still be starting: retry a few times while it does not answer */
	for (int i = 0; i < 300; i++) {
		rv = sb_rpc_call(cli, "files.Expire", &req.base,
		                 &sb__files__expire_response__descriptor, &meta, &res);
		if (rv == 0 && res.code != SB__RPC__CODE__UNAVAILABLE)
			break;
		if (rv == 0)
			sb_rpc_result_free(&res);
		it_sleep_ms(100);
	}
	assert_int_equal(rv, 0);
	if (res.code != 0)
		fail_msg("files.Expire: code %d: %s", res.code, res.message);
	*out = *(Sb__Files__ExpireResponse *)res.resp;
	sb_rpc_result_free(&res);
}

static void
test_expire(void **state)
{
	(void)state;
	char v[128];
	snprintf(dir, sizeof(dir), "%s/files-store", it_env("SB_TEST_TMP"));
	mkdir(dir, 0750);
	PGconn *c = it_pg();
	char sdir[600], http[32];
	snprintf(sdir, sizeof(sdir), "SB_FILES_DIR=%s", dir);
	snprintf(http, sizeof(http), "SB_HTTP_PORT=%d", it_free_port());
	const char *const extra[] = { sdir, http, "KAFKA_BROKERS=127.0.0.1:1",
		                      "SB_AUTH_RPC_URL=tcp://127.0.0.1:1", NULL };
	struct it_proc files;
	assert_int_equal(it_spawn(&files, "files", "files", extra), 0);
	/* It answers RPCs once started, so once files.Expire answers (nothing to clean yet) its
	 * schema exists. (Not files.Health: its checks of the unreachable auth and Kafka take
	 * longer than the harness's 1-s Health deadline.) */
	assert_int_equal(sb_rpc_client_open(files.rpc_url, &files.cli), 0);
	Sb__Files__ExpireResponse r;
	expire(files.cli, 0, 0, 1, &r);
	assert_int_equal(r.abandoned + r.expired + r.terminated, 0);

	it_exec(c, "INSERT INTO files.uploads (id, tenant_id, owner_id, protocol, length, "
	           "chunk_size, total_chunks, updated_at, created_at) VALUES ('" ID_OLD "', 't', "
	           "'u', 'chunk', 100, 10, 10, now() - interval '25 hours', now() - interval "
	           "'26 hours')");
	it_exec(c, "INSERT INTO files.chunks (upload_id, n, size, sha256) SELECT '" ID_OLD
	           "', n, 10, 'x' FROM generate_series(1, 10) n");
	it_exec(c, "INSERT INTO files.uploads (id, tenant_id, owner_id, protocol, length, "
	           "expires_at) VALUES ('" ID_EXP "', 't', 'u', 'tus', 10, now() - interval "
	           "'1 minute')");
	it_exec(c, "INSERT INTO files.uploads (id, tenant_id, owner_id, protocol, length, state) "
	           "VALUES ('" ID_TERM "', 't', 'u', 'tus', 10, 'TERMINATED')");
	it_exec(c, "INSERT INTO files.uploads (id, tenant_id, owner_id, protocol, length, "
	           "expires_at) VALUES ('" ID_FRESH "', 't', 'u', 'tus', 10, now() + interval "
	           "'1 day')");
	it_exec(c, "INSERT INTO files.uploads (id, tenant_id, owner_id, protocol, length, "
	           "upload_offset, state, updated_at) VALUES ('" ID_DONE "', 't', 'u', 'tus', 5, "
	           "5, 'COMPLETED', now() - interval '25 hours')");
	char key[64];
	for (int n = 1; n <= 10; n++) {
		snprintf(key, sizeof(key), "parts/%s/%d", ID_OLD, n);
		put_file(key);
	}
	put_file("up/" ID_EXP);
	put_file("up/" ID_TERM);
	put_file("up/" ID_FRESH);
	put_file("up/" ID_DONE);

	struct sb_rpc_client *cli = files.cli;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

	/* limit 1: one upload (the oldest: the abandoned one), and more to do */
	expire(cli, now, now - 24LL * 3600 * 1000, 1, &r);
	assert_int_equal(r.abandoned + r.expired + r.terminated, 1);
	assert_true(r.more);
	expire(cli, now, now - 24LL * 3600 * 1000, 100, &r);
	assert_int_equal(r.abandoned, 0);
	assert_int_equal(r.expired, 1);
	assert_int_equal(r.terminated, 1);
	assert_false(r.more);

	assert_string_equal(
	    scalar(c, "SELECT state || '/' || failure FROM files.uploads WHERE id = '" ID_OLD "'",
	           v, sizeof(v)),
	    "FAILED/abandoned");
	assert_string_equal(
	    scalar(c, "SELECT count(*) FROM files.chunks WHERE upload_id = '" ID_OLD "'", v,
	           sizeof(v)),
	    "0");
	for (int n = 1; n <= 10; n++) {
		snprintf(key, sizeof(key), "parts/%s/%d", ID_OLD, n);
		assert_false(has_file(key));
	}
	assert_string_equal(
	    scalar(c, "SELECT state || '/' || failure FROM files.uploads WHERE id = '" ID_EXP "'",
	           v, sizeof(v)),
	    "FAILED/expired");
	assert_false(has_file("up/" ID_EXP));
	assert_string_equal(
	    scalar(c, "SELECT state || '/' || failure FROM files.uploads WHERE id = '" ID_TERM "'",
	           v, sizeof(v)),
	    "TERMINATED/terminated");
	assert_false(has_file("up/" ID_TERM));
	/* untouched: in progress, and completed */
	assert_string_equal(
	    scalar(c, "SELECT state FROM files.uploads WHERE id = '" ID_FRESH "'", v, sizeof(v)),
	    "UPLOADING");
	assert_true(has_file("up/" ID_FRESH));
	assert_string_equal(
	    scalar(c, "SELECT state FROM files.uploads WHERE id = '" ID_DONE "'", v, sizeof(v)),
	    "COMPLETED");
	assert_true(has_file("up/" ID_DONE));

	/* again: nothing left */
	expire(cli, now, now - 24LL * 3600 * 1000, 100, &r);
	assert_int_equal(r.abandoned + r.expired + r.terminated, 0);
	/* the caller's clock decides: two days later the fresh upload has expired too */
	expire(cli, now + 48LL * 3600 * 1000, now - 24LL * 3600 * 1000, 100, &r);
	assert_int_equal(r.expired, 1);
	assert_false(has_file("up/" ID_FRESH));
	assert_true(has_file("up/" ID_DONE));

	/* gc's uploads task: its clock 25 h ahead makes a 1-h-old upload abandoned (default 24 h);
	 * only the leader's round asks files, and the SQL tasks are off (no auth or messages
	 * tables in this database). */
	it_exec(c, "INSERT INTO files.uploads (id, tenant_id, owner_id, protocol, length, "
	           "updated_at, expires_at) VALUES ('" ID_GC "', 't', 'u', 'tus', 10, now() - "
	           "interval '1 hour', now() + interval '30 days')");
	put_file("up/" ID_GC);
	char files_url[128];
	snprintf(files_url, sizeof(files_url), "SB_FILES_RPC_URL=%s", files.rpc_url);
	const char *const gc_env[] = { files_url,
		                       "SB_GC_CLOCK_OFFSET_S=90000",
		                       "SB_GC_INTERVAL_MS=200",
		                       "SB_GC_LEASE_RETRY_MS=200",
		                       "SB_GC_TOKENS=false",
		                       "SB_GC_OUTBOX=false",
		                       "SB_SHUTDOWN_GRACE_MS=3000",
		                       NULL };
	struct it_proc gc;
	assert_int_equal(it_spawn(&gc, "gc", "gc", gc_env), 0);
	bool gone = false;
	for (int i = 0; i < 300 && !gone; i++) {
		gone = strcmp(scalar(c,
		                     "SELECT state || '/' || failure FROM files.uploads WHERE id "
		                     "= '" ID_GC "'",
		                     v, sizeof(v)),
		              "FAILED/abandoned") == 0 &&
		       !has_file("up/" ID_GC);
		if (!gone)
			it_sleep_ms(100);
	}
	if (!gone) {
		it_tail_log(&gc, 20);
		fail_msg("gc did not have the 1-h-old upload cleaned with its clock 25 h on");
	}
	assert_true(it_wait_metric(&gc, "gc_uploads_cleaned_total", 1, 5000));
	assert_true(it_metric(&gc, "gc_task_errors_total{task=\"uploads\"}") == 0);
	assert_true(has_file("up/" ID_DONE)); /* completed: never */
	assert_int_equal(it_stop(&gc, SIGTERM, 10000), 0);

	assert_int_equal(it_stop(&files, SIGTERM, 10000), 0);
	PQfinish(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_expire) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
