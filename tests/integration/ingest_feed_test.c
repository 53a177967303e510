/* ingest_feed_test.c:
 * stack: kafka
 * labels: ingest,sanitize
 * sb-ingest against the TLCP simulator (tests/ingest/sim.mjs) and the run's
 * real Kafka broker, one scripted session per test:
 *   normal_loop_sync   LOOP every 250 notifications (rebind) and SYNC every 200 ms
 *   drop_recovery      the TCP connection dropped every 200 notifications; the server resends
 *                      from 5 before what the client says it has (PROG), so it must skip
 *   conerr_breaker     the first 4 create_session refused (CONERR): the breaker opens, its
 *                      half-open trials go on until one succeeds
 *   end_replay         the session ended (END) after 150: a new session replays from update 1,
 *                      and every replayed sample carries the event id it had the first time
 *   lost_restore       one pause (a burst in one WebSocket message, watermarks 200/10): the
 *                      simulator loses the resume's reconf to "unlimited" with its connection;
 *                      the recovered session must ask for "unlimited" again
 *   tls                the same over wss:// (OpenSSL) with the server's certificate trusted
 *                      through SB_INGEST_CA_FILE; tls_untrusted: not trusted, no session
 * Each reads telemetry.raw.v1 back and checks: every update of every item once (end_replay:
 * at least once, duplicates identical), in order per item, with the values the simulator sent
 * (unchanged fields carried, null, empty and percent-encoded text decoded), key = item,
 * ce_id = event_id, server_ts from the TimeStamp field; and that the scripted fault happened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "events/telemetry.pb-c.h"
#include "it.h"
#include "sb_kafka.h"

#define NITEMS  3
#define TS_BASE 1767225600000LL

static int64_t
t_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
t_sleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static const char *
t_env(const char *n)
{
	const char *v = getenv(n);
	if (v == NULL)
		fail_msg("%s unset: run under tests/lib/with-stack.sh (ctest does)", n);
	return v;
}

/* The simulator's value(i, k) (sim.mjs), written again. */
static const char *
exp_status(int k)
{
	static const char *const st[] = { "OK", "", NULL, "a|b%#$^ \xc3\xa9", "WARN" };
	int s = k;
	while (s > 0 && s % 7 == 3)
		s--;
	return s == 0 ? NULL : st[s % 5];
}

struct run {
	char prefix[64], topic[128], stats[512], tmp[512];
	int ops;
	pid_t sim, ing;
};

static pid_t
spawn(const char *log, char *const argv[], const char *const *env)
{
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "a", stdout);
		(void)f;
		dup2(STDOUT_FILENO, STDERR_FILENO);
		for (const char *const *e = env; e && e[0]; e += 2)
			setenv(e[0], e[1], 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	assert_true(pid > 0);
	return pid;
}

static void
stop(pid_t pid)
{
	int st;
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		t_sleep(50);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

/* start_run starts the simulator with sim_args (NULL-ended) and sb-ingest with extra env. */
static void
start_run(struct run *r, const char *name, const char *const *sim_args, const char *const *env)
{
	const char *root = t_env("SB_SOURCE_ROOT"), *build = t_env("SB_BUILD_ROOT");
	const char *tmp = t_env("SB_TEST_TMP");
	memset(r, 0, sizeof(*r));
	snprintf(r->prefix, sizeof(r->prefix), "it%d.%s.", (int)getpid(), name);
	snprintf(r->topic, sizeof(r->topic), "%stelemetry.raw.v1", r->prefix);
	snprintf(r->stats, sizeof(r->stats), "%s/%s.stats.json", tmp, name);
	int sp = it_free_port();
	char port[16], sim[512], map[512], log[512], url[64], ops[16], rpc[64], bin[512];
	snprintf(port, sizeof(port), "%d", sp);
	snprintf(sim, sizeof(sim), "%s/tests/ingest/sim.mjs", root);
	char *argv[40] = {
		"node",          sim,   "--port",  port,    "--items", "item1,item2,item3",
		"--adapter-set", "SIM", "--stats", r->stats
	};
	int a = 10;
	for (const char *const *s = sim_args; *s && a < 38; s++)
		argv[a++] = (char *)*s;
	argv[a] = NULL;
	snprintf(log, sizeof(log), "%s/%s.sim.log", tmp, name);
	r->sim = spawn(log, argv, NULL);
	for (int64_t until = t_now() + 10000; access(r->stats, R_OK) != 0; t_sleep(50))
		if (t_now() > until)
			fail_msg("simulator did not start (see %s)", log);
	r->ops = it_free_port();
	snprintf(ops, sizeof(ops), "%d", r->ops);
	snprintf(rpc, sizeof(rpc), "tcp://127.0.0.1:%d", it_free_port());
	bool tls = false;
	for (const char *const *a2 = sim_args; *a2; a2++)
		tls = tls || strcmp(*a2, "--tls-cert") == 0;
	snprintf(url, sizeof(url), "%s://127.0.0.1:%d", tls ? "wss" : "ws", sp);
	snprintf(map, sizeof(map), "%s/tests/ingest/sim_mapping.json", root);
	snprintf(bin, sizeof(bin), "%s/bin/sb-ingest", build);
	snprintf(log, sizeof(log), "%s/%s.ingest.log", tmp, name);
	const char *base[] = { "KAFKA_BROKERS",
		               t_env("SB_TEST_KAFKA_BROKERS"),
		               "SB_KAFKA_TOPIC_PREFIX",
		               r->prefix,
		               "SB_OPS_PORT",
		               ops,
		               "SB_RPC_URL",
		               rpc,
		               "SB_INGEST_FEED_URL",
		               url,
		               "SB_INGEST_MAPPING",
		               map,
		               "SB_INGEST_RECONNECT_BASE_MS",
		               "50",
		               "SB_INGEST_RECONNECT_MAX_MS",
		               "400",
		               "SB_SHUTDOWN_GRACE_MS",
		               "5000",
		               NULL };
	const char *all[64];
	int n = 0;
	for (const char *const *e = base; *e; e++)
		all[n++] = *e;
	for (const char *const *e = env; e && *e; e++)
		all[n++] = *e;
	all[n] = NULL;
	char *iargv[] = { bin, NULL };
	r->ing = spawn(log, iargv, all);
}

static void
end_run(struct run *r)
{
	stop(r->ing);
	stop(r->sim);
}

/* stat_member reads the simulator's stats file into buf (cap bytes) and returns where the value
 * of its member name starts, or NULL when it has none. */
static const char *
stat_member(const struct run *r, const char *name, char *buf, size_t cap)
{
	char key[64];
	FILE *f = fopen(r->stats, "r");
	if (!f)
		fail_msg("no stats file %s", r->stats);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	snprintf(key, sizeof(key), "\"%s\":", name);
	const char *p = strstr(buf, key);
	return p ? p + strlen(key) : NULL;
}

/* stat_of reads counter name from the simulator's stats file (-1: none). */
static long
stat_of(const struct run *r, const char *name)
{
	char buf[4096];
	const char *p = stat_member(r, name, buf, sizeof(buf));
	return p ? strtol(p, NULL, 10) : -1;
}

/* stat_text copies the JSON text of the simulator's stats member name (an array: up to its
 * closing bracket) into out. */
static void
stat_text(const struct run *r, const char *name, char *out, size_t cap)
{
	char buf[4096];
	const char *p = stat_member(r, name, buf, sizeof(buf)), *e = p ? strchr(p, ']') : NULL;
	if (!p || !e)
		snprintf(out, cap, "(no %s)", name);
	else
		snprintf(out, cap, "%.*s", (int)(e + 1 - p), p);
}

/* metric_of reads a metric (a line starting with series) from sb-ingest's /metrics via curl. */
static double
metric_of(const struct run *r, const char *series)
{
	char cmd[256], line[512];
	double v = -1;
	snprintf(cmd, sizeof(cmd), "curl -s -m 5 http://127.0.0.1:%d/metrics", r->ops);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		if (strncmp(line, series, strlen(series)) == 0 && line[strlen(series)] == ' ')
			v = strtod(line + strlen(series) + 1, NULL);
	pclose(p);
	return v;
}

struct seen {
	int count[NITEMS + 1][2048]; /* records per (item, seq) */
	char id[NITEMS + 1][2048][37];
	int last[NITEMS + 1]; /* last seq per item in topic order (per key = one partition) */
	int total, dups, reorders;
};

static const char *
field_text(const Sb__Events__TelemetrySample *s, const char *name, int *is_null)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		if (strcmp(s->fields[i]->name, name) != 0)
			continue;
		*is_null =
		    s->fields[i]->value_case == SB__EVENTS__TELEMETRY_FIELD__VALUE_NULL_VALUE;
		return s->fields[i]->value_case == SB__EVENTS__TELEMETRY_FIELD__VALUE_TEXT
		           ? s->fields[i]->text
		           : NULL;
	}
	fail_msg("field %s missing", name);
	return NULL;
}

static const Sb__Events__TelemetryField *
field_of(const Sb__Events__TelemetrySample *s, const char *name)
{
	for (size_t i = 0; i < s->n_fields; i++)
		if (strcmp(s->fields[i]->name, name) == 0)
			return s->fields[i];
	fail_msg("field %s missing", name);
	return NULL;
}

/* check_record checks one record against the simulator's script and counts it. */
static void
check_record(struct seen *sn, const rd_kafka_message_t *m)
{
	Sb__Events__TelemetrySample *s =
	    sb__events__telemetry_sample__unpack(NULL, m->len, m->payload);
	assert_non_null(s);
	assert_int_equal(s->schema_version, 1);
	assert_string_equal(s->source, "sim");
	assert_string_equal(s->origin, "tlcp");
	int item = (int)strtol(s->item + 4, NULL, 10);
	assert_true(strncmp(s->item, "item", 4) == 0 && item >= 1 && item <= NITEMS);
	assert_int_equal(m->key_len, strlen(s->item));
	assert_memory_equal(m->key, s->item, m->key_len);
	char ce_id[64];
	assert_true(sb_kafka_header(m, "ce_id", ce_id, sizeof(ce_id)) > 0);
	assert_string_equal(ce_id, s->event_id);
	const Sb__Events__TelemetryField *seq = field_of(s, "Seq");
	assert_int_equal(seq->value_case, SB__EVENTS__TELEMETRY_FIELD__VALUE_INTEGER);
	int k = (int)seq->integer;
	assert_true(k >= 1 && k < 2048);
	const Sb__Events__TelemetryField *val = field_of(s, "Value");
	assert_int_equal(val->value_case, SB__EVENTS__TELEMETRY_FIELD__VALUE_NUMBER);
	if (fabs(val->number - (k * 1.5 + item)) > 1e-9)
		fail_msg("%s seq %d: Value %.6f, sent %.6f", s->item, k, val->number,
		         k * 1.5 + item);
	int is_null = 0;
	const char *st = field_text(s, "Status", &is_null);
	const char *want = exp_status(k);
	if (want == NULL) {
		if (!is_null)
			fail_msg("%s seq %d: Status \"%s\", sent null", s->item, k, st ? st : "?");
	} else if (is_null || !st || strcmp(st, want) != 0) {
		fail_msg("%s seq %d: Status %s, sent \"%s\"", s->item, k, is_null ? "null" : st,
		         want);
	}
	assert_non_null(s->server_ts);
	assert_int_equal(s->server_ts->ms, TS_BASE + (int64_t)k * 10);
	if (sn->count[item][k] > 0) {
		sn->dups++;
		if (strcmp(sn->id[item][k], s->event_id) != 0)
			fail_msg("%s seq %d replayed with event id %s, first %s", s->item, k,
			         s->event_id, sn->id[item][k]);
	} else {
		snprintf(sn->id[item][k], 37, "%s", s->event_id);
	}
	if (k <= sn->last[item])
		sn->reorders++; /* per item (one key, one partition) seqs must only grow */
	sn->count[item][k]++;
	sn->last[item] = k;
	sn->total++;
	sb__events__telemetry_sample__free_unpacked(s, NULL);
}

/* wait_topic waits (60 s at most) until sb-ingest has created and verified the run's topic (its
 * /ready check "topic"): a reader that subscribes before the topic exists is answered "unknown
 * topic or partition" and may see the topic only at a later metadata refresh, which once left
 * a run with 380 of 900 records after 90 s (ASan tree, 2026-12-07). */
static void
wait_topic(const struct run *r)
{
	char buf[4096] = "";
	for (int64_t until = t_now() + 60000;; t_sleep(100)) {
		it_http_get(r->ops, "/ready", buf, sizeof(buf));
		if (strstr(buf, "{\"name\":\"topic\",\"ok\":true") != NULL)
			return;
		if (t_now() > until)
			fail_msg("sb-ingest did not verify its topic within 60 s: %s", buf);
	}
}

/* dump_run prints what the run's processes say (the simulator's stats, sb-ingest's metrics and
 * the end of both logs) when a run falls short: a stall in CI is otherwise a bare count. */
static void
dump_run(const struct run *r)
{
	char cmd[2048];
	const char *tmp = t_env("SB_TEST_TMP");
	const char *name = strrchr(r->stats, '/') + 1;
	int n = (int)(strstr(name, ".stats.json") - name);
	snprintf(cmd, sizeof(cmd),
	         "echo '# simulator:'; cat %s; echo; echo '# sb-ingest metrics:'; "
	         "curl -s -m 5 http://127.0.0.1:%d/metrics | grep -E '^ingest_' | head -n 40; "
	         "echo '# sb-ingest log:'; tail -n 30 %s/%.*s.ingest.log; "
	         "echo '# simulator log:'; tail -n 10 %s/%.*s.sim.log",
	         r->stats, r->ops, tmp, n, name, tmp, n, name);
	fflush(stdout);
	if (system(cmd) != 0)
		fprintf(stderr, "(the run's state could not be read in full)\n");
}

/* consume reads the run's topic until want records arrived (then 1.5 s more for strays) or
 * 90 s passed (generous: a loaded machine starts processes slowly). */
static void
consume(const struct run *r, struct seen *sn, int want)
{
	char group[128];
	snprintf(group, sizeof(group), "%sreader", r->prefix);
	const char *topics[] = { r->topic, NULL };
	const char *conf[] = { "session.timeout.ms",
		               "6000",
		               "heartbeat.interval.ms",
		               "1000",
		               "fetch.wait.max.ms",
		               "100",
		               NULL };
	struct sb_kafka_consumer *c = NULL;
	wait_topic(r);
	assert_int_equal(
	    sb_kafka_consumer_new(t_env("SB_TEST_KAFKA_BROKERS"), group, topics, conf, &c), 0);
	int64_t until = t_now() + 90000, extra = 0;
	while (t_now() < until && (extra == 0 || t_now() < extra)) {
		rd_kafka_message_t *m = sb_kafka_consumer_poll(c, 200);
		if (!m)
			continue;
		if (!m->err)
			check_record(sn, m);
		rd_kafka_message_destroy(m);
		if (sn->total >= want && extra == 0)
			extra = t_now() + 1500;
	}
	sb_kafka_consumer_close(c);
	if (sn->total < want)
		dump_run(r);
}

static void
assert_every_update(const struct seen *sn, int updates, bool exactly_once)
{
	for (int i = 1; i <= NITEMS; i++) {
		for (int k = 1; k <= updates; k++) {
			if (sn->count[i][k] == 0)
				fail_msg("item%d update %d never reached Kafka (%d records in all)",
				         i, k, sn->total);
			if (exactly_once && sn->count[i][k] != 1)
				fail_msg("item%d update %d reached Kafka %d times", i, k,
				         sn->count[i][k]);
		}
		for (int k = updates + 1; k < 2048; k++)
			if (sn->count[i][k])
				fail_msg("item%d update %d was never sent", i, k);
	}
}

static void
test_normal_loop_sync(void **state)
{
	(void)state;
	struct run r;
	static struct seen sn;
	memset(&sn, 0, sizeof(sn));
	const char *sim[] = { "--updates", "300",    "--loop-every", "250", "--sync-ms",
		              "200",       "--rate", "1500",         NULL };
	start_run(&r, "loop", sim, NULL);
	consume(&r, &sn, NITEMS * 300);
	long loops = stat_of(&r, "loops"), syncs = stat_of(&r, "syncs");
	double rebinds = metric_of(&r, "ingest_sessions_total{kind=\"bind\"}");
	end_run(&r);
	assert_every_update(&sn, 300, true);
	assert_int_equal(sn.reorders, 0);
	assert_true(loops >= 3);
	assert_true(syncs >= 1);
	assert_true(rebinds >= 3);
}

static void
test_drop_recovery(void **state)
{
	(void)state;
	struct run r;
	static struct seen sn;
	memset(&sn, 0, sizeof(sn));
	const char *sim[] = {
		"--updates", "400", "--drop-every", "200", "--drop-rewind", "5", NULL
	};
	start_run(&r, "drop", sim, NULL);
	consume(&r, &sn, NITEMS * 400);
	long drops = stat_of(&r, "drops"), recov = stat_of(&r, "recoveries");
	double skipped = metric_of(&r, "ingest_recovery_skipped_total");
	end_run(&r);
	assert_every_update(&sn, 400, true);
	assert_int_equal(sn.reorders, 0);
	assert_true(drops >= 4);
	assert_true(recov >= 4);
	/* the server resent 5 notifications per recovery, and the client dropped them */
	assert_true(skipped >= 5 * (recov - 1));
}

static void
test_conerr_breaker(void **state)
{
	(void)state;
	struct run r;
	static struct seen sn;
	memset(&sn, 0, sizeof(sn));
	const char *sim[] = { "--updates", "100", "--conerr", "4", NULL };
	const char *env[] = { "SB_INGEST_BREAKER_THRESHOLD", "2", "SB_INGEST_BREAKER_OPEN_MS",
		              "600", NULL };
	int64_t t0 = t_now();
	start_run(&r, "conerr", sim, env);
	consume(&r, &sn, NITEMS * 100);
	long conerrs = stat_of(&r, "conerrs"), creates = stat_of(&r, "creates");
	double opens = metric_of(&r, "ingest_breaker_opens_total");
	double state_now = metric_of(&r, "ingest_breaker_state");
	end_run(&r);
	assert_every_update(&sn, 100, true);
	assert_int_equal(conerrs, 4);
	assert_int_equal(creates, 5);
	/* threshold 2: open after the 2nd, the 3rd and 4th are failed half-open trials */
	assert_true(opens >= 3);
	assert_true(state_now == 0);
	/* three open periods of 600 ms passed before the session */
	assert_true(t_now() - t0 >= 1800);
}

static void
test_end_replay(void **state)
{
	(void)state;
	struct run r;
	static struct seen sn;
	memset(&sn, 0, sizeof(sn));
	const char *sim[] = { "--updates", "200", "--end-after", "150", NULL };
	start_run(&r, "end", sim, NULL);
	/* 150 notifications (SUBOK + 149 updates) before END, then all 600 again */
	consume(&r, &sn, NITEMS * 200 + 149);
	long ends = stat_of(&r, "ends"), creates = stat_of(&r, "creates");
	end_run(&r);
	assert_int_equal(ends, 1);
	assert_int_equal(creates, 2);
	assert_every_update(&sn, 200, false);
	/* the replayed updates are duplicates with the ids they had (checked per record) */
	assert_true(sn.dups >= 140);
}

/* The frequency asked at a pause is lifted even when the request lifting it is lost with its
 * connection (it used to stay at the paused frequency until the next pause: 2026-12-07). */
static void
test_lost_restore(void **state)
{
	(void)state;
	struct run r;
	static struct seen sn;
	memset(&sn, 0, sizeof(sn));
	/* 300 notifications in one message; a pause at depth 200 (the producer lingers 50 ms, so
	 * they are read long before Kafka answers), a resume below 10, and the other 100 cannot
	 * reach 200 again: one pause, one resume, one restore, the one lost. */
	const char *sim[] = { "--updates", "100", "--batch-lines", "1000", "--lose-restore",
		              "1",         NULL };
	const char *env[] = { "SB_INGEST_HIGH_WATERMARK",
		              "200",
		              "SB_INGEST_LOW_WATERMARK",
		              "10",
		              "SB_INGEST_QUEUE_MAX",
		              "1000",
		              "SB_INGEST_LINGER_MS",
		              "50",
		              "SB_INGEST_PAUSE_MAX_FREQUENCY",
		              "0.5",
		              NULL };
	start_run(&r, "lostrestore", sim, env);
	consume(&r, &sn, NITEMS * 100);
	char reconf[256] = "";
	/* the recovered session's request may follow the last record by a moment */
	for (int64_t until = t_now() + 10000; t_now() < until; t_sleep(100)) {
		stat_text(&r, "reconf", reconf, sizeof(reconf));
		if (strcmp(reconf, "[\"0.500\",\"unlimited\"]") == 0)
			break;
	}
	long lost = stat_of(&r, "lostReconfs"), recov = stat_of(&r, "recoveries");
	double restores = metric_of(&r, "ingest_frequency_requests_total{kind=\"restore\"}");
	end_run(&r);
	assert_every_update(&sn, 100, true);
	assert_int_equal(lost, 1);
	assert_int_equal(recov, 1);
	assert_string_equal(reconf, "[\"0.500\",\"unlimited\"]");
	assert_true(restores == 2);
}

static void
test_tls(void **state)
{
	(void)state;
	struct run r;
	static struct seen sn;
	memset(&sn, 0, sizeof(sn));
	char cert[512], key[512], cmd[2048];
	const char *tmp = t_env("SB_TEST_TMP");
	snprintf(cert, sizeof(cert), "%s/feed.crt", tmp);
	snprintf(key, sizeof(key), "%s/feed.key", tmp);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
	         "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:127.0.0.1 "
	         "-keyout %s -out %s 2>/dev/null",
	         key, cert);
	assert_int_equal(system(cmd), 0);
	const char *sim[] = { "--updates", "100", "--tls-cert", cert, "--tls-key", key, NULL };
	const char *env[] = { "SB_INGEST_CA_FILE", cert, NULL };
	start_run(&r, "tls", sim, env);
	consume(&r, &sn, NITEMS * 100);
	end_run(&r);
	assert_every_update(&sn, 100, true);
	assert_int_equal(sn.reorders, 0);
}

/* A certificate the client does not trust: no session, nothing delivered. */
static void
test_tls_untrusted(void **state)
{
	(void)state;
	struct run r;
	char cert[512], key[512];
	const char *tmp = t_env("SB_TEST_TMP");
	snprintf(cert, sizeof(cert), "%s/feed.crt", tmp);
	snprintf(key, sizeof(key), "%s/feed.key", tmp);
	const char *sim[] = { "--updates", "10", "--tls-cert", cert, "--tls-key", key, NULL };
	const char *env[] = { "SB_INGEST_CA_FILE", "/etc/ssl/certs/ca-certificates.crt", NULL };
	start_run(&r, "tlsbad", sim, env);
	t_sleep(3000);
	long creates = stat_of(&r, "creates");
	double connected = metric_of(&r, "ingest_feed_connected");
	end_run(&r);
	assert_int_equal(creates, 0);
	assert_true(connected == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_loop_sync), cmocka_unit_test(test_drop_recovery),
		cmocka_unit_test(test_conerr_breaker),   cmocka_unit_test(test_end_replay),
		cmocka_unit_test(test_lost_restore),     cmocka_unit_test(test_tls),
		cmocka_unit_test(test_tls_untrusted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
