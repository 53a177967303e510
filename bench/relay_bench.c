/* relay_bench.c: the outbox relay (the real binary, build/bin/sb-outbox) on a real Apache Kafka
 * broker (one broker, a 6-partition topic), in two modes measured in the same run, with the
 * same relay process:
 *
 *   drain: ROWS rows (default 100,000, over 1,000 aggregates, 200-byte payloads) committed in
 *     one transaction before the clock starts; rows/s from committed in messages.outbox to
 *     acknowledged by Kafka and marked relayed. Peer in the same run: a plain librdkafka
 *     producer (idempotent, acks=all, lz4, linger 0, the same CloudEvents headers) sending the
 *     same records to the same broker and topic, with no database work (no select, no mark).
 *     Target: >= 2 x SB_BENCH_SEND_RATE rows/s (a backlog is drained twice as fast as the
 *     messages service can write it).
 *   stream: rows inserted at a steady SB_BENCH_SEND_RATE rows/s for SB_BENCH_STREAM_SECONDS
 *     (30) s WHILE the relay relays, the way the messages service writes them: every 10 ms
 *     (open loop: a late tick inserts everything that fell due) one transaction inserts the
 *     rows due, NOTIFY sb_outbox, COMMIT. Reported: the insert rate achieved, the relay's
 *     throughput during the stream (rows marked relayed by the last commit / stream time), the
 *     lag of every row from its transaction's commit (the client's clock when COMMIT returned)
 *     to its relayed_at (now() of the relay's mark, which runs once Kafka has acknowledged the
 *     row), p50/p99/max, also for the first and the last third of the stream, and the count
 *     of unrelayed rows sampled every second. Target "keeps up, no growing lag" at 1 x the
 *     send rate: the relay marks >= 97% of the inserted rows during the stream, and the p99
 *     lag of the last third is at most twice the first third's plus 100 ms. A relay that
 *     falls behind by a fraction f has a lag growing by f / (1 - f) seconds per second: over
 *     30 s, 1% behind adds about 0.2 s between the thirds, which this detects; a relay that
 *     keeps up has a stationary lag, whatever its size. The stream is not measured (and the
 *     target is missed) when the inserts themselves reach less than 95% of the rate.
 *   SB_BENCH_SEND_RATE: the highest sustained send rate of the messages service measured by
 *   bench/messages_bench.sh (docs/benchmarks.md); default 10000.
 * Exit status: 0 when both targets are met, 1 otherwise (or on any failure).
 *
 * `make bench` runs it with no arguments: it then starts a throwaway PostgreSQL (durable
 * settings: fsync and synchronous_commit on) and one Kafka broker with tools/stack.sh in a
 * bash wrapper that runs this program again with SB_TEST_PG_DSN and SB_TEST_KAFKA_BROKERS set,
 * and stops both afterwards.
 * Usage: relay_bench [ROWS]; environment SB_BENCH_SEND_RATE, SB_BENCH_STREAM_SECONDS,
 * SB_OUTBOX_* (passed to the relay), RELAY_LOG (the relay's log level, and its batch lines). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "sb_kafka.h"

#define AGGS  1000
#define TOPIC "sb.messages.v1"

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "relay_bench: %s: %s\n", what, detail ? detail : "");
	exit(1);
}

static PGresult *
sql(PGconn *c, const char *q)
{
	PGresult *r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die(q, PQerrorMessage(c));
	return r;
}

static long long
scalar(PGconn *c, const char *q)
{
	PGresult *r = sql(c, q);
	long long v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* build_root: the directory holding bench/ and bin/ (parent of this executable's dir). */
static void
build_root(char *out, size_t n)
{
	char exe[PATH_MAX], dir[PATH_MAX];
	ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (l <= 0)
		die("readlink /proc/self/exe", strerror(errno));
	exe[l] = '\0';
	snprintf(dir, sizeof(dir), "%s", dirname(dirname(exe)));
	snprintf(out, n, "%s", dir);
}

/* Re-runs this program inside a bash wrapper that starts PostgreSQL and a Kafka broker. */
static int
wrap_with_stack(int argc, char **argv)
{
	static const char script[] =
	    "set -e\n"
	    "root=$1; build=$2; shift 2\n"
	    ". \"$root/tools/stack.sh\"\n"
	    "tmp=$(mktemp -d /tmp/sb-relay-bench.XXXXXX); chmod 755 \"$tmp\"\n"
	    "trap 'sb_kafka_cluster_stop \"$tmp/kafka\"; sb_pg_stop \"$tmp\"; rm -rf \"$tmp\"' "
	    "EXIT\n"
	    "pg=$(sb_free_port)\n"
	    "sb_pg_start \"$tmp\" \"$pg\"\n"
	    "sb_kafka_cluster_start \"$tmp/kafka\" 1\n"
	    "export SB_TEST_PG_DSN=postgresql://postgres@127.0.0.1:$pg/postgres\n"
	    "export SB_TEST_KAFKA_BROKERS=$(cat \"$tmp/kafka/kafka-bootstrap\") SB_TEST_TMP=$tmp\n"
	    "set +e; \"$@\"\n";
	char root[PATH_MAX], build[PATH_MAX], exe[PATH_MAX + 32];
	char *args[10];
	int i = 0;

	char file[PATH_MAX];
	snprintf(file, sizeof(file), "%s", __FILE__);
	snprintf(root, sizeof(root), "%s", dirname(dirname(file)));
	build_root(build, sizeof(build));
	snprintf(exe, sizeof(exe), "%s/bench/relay_bench", build);
	args[i++] = "bash";
	args[i++] = "-c";
	args[i++] = (char *)script;
	args[i++] = "relay_bench";
	args[i++] = root;
	args[i++] = build;
	args[i++] = exe;
	args[i++] = argc > 1 ? argv[1] : NULL;
	args[i] = NULL;
	execvp("bash", args);
	die("exec bash", strerror(errno));
	return 1;
}

/* --- the plain producer baseline --- */

static int acked, failed;

static void
on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err)
		failed++;
	else
		acked++;
}

static double
baseline(const char *brokers, PGresult *rows)
{
	/* The relay's producer settings (services/outbox/service.c and the runtime's defaults). */
	static const char *const conf[] = { "enable.idempotence",   "true", "acks",      "all",
		                            "compression.type",     "lz4",  "linger.ms", "0",
		                            "socket.nagle.disable", "true", NULL };
	char err[512];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	int n = PQntuples(rows);

	if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err)))
		die("conf", err);
	for (int i = 0; conf[i]; i += 2)
		if (rd_kafka_conf_set(c, conf[i], conf[i + 1], err, sizeof(err)))
			die("conf", err);
	rd_kafka_conf_set_dr_msg_cb(c, on_dr);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	if (rk == NULL)
		die("rd_kafka_new", err);
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		size_t vlen;
		unsigned char *v =
		    PQunescapeBytea((const unsigned char *)PQgetvalue(rows, i, 4), &vlen);
		struct sb_cloudevent ce = { .id = PQgetvalue(rows, i, 1),
			                    .source = PQgetvalue(rows, i, 3),
			                    .type = PQgetvalue(rows, i, 2),
			                    .subject = PQgetvalue(rows, i, 5),
			                    .time = PQgetvalue(rows, i, 6),
			                    .traceparent = PQgetvalue(rows, i, 7) };
		rd_kafka_headers_t *h = NULL;
		if (sb_kafka_ce_headers(&ce, &h) != 0)
			die("headers", NULL);
		const char *key = PQgetvalue(rows, i, 0);
		rd_kafka_resp_err_t e;
		while ((e = rd_kafka_producev(
		            rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(key, strlen(key)),
		            RD_KAFKA_V_VALUE(v, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END)) ==
		       RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		if (e)
			die("produce", rd_kafka_err2str(e));
		PQfreemem(v);
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_flush(rk, 60000);
	double t = now_s() - t0;
	rd_kafka_destroy(rk);
	if (acked != n)
		die("baseline", "not every message was acknowledged");
	return n / t;
}

/* --- the relay --- */

/* free_port returns a loopback TCP port nothing listens on now. */
static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static pid_t
relay_start(const char *build, const char *dsn, const char *brokers, const char *tmp)
{
	char bin[PATH_MAX], logf[PATH_MAX];
	if (snprintf(bin, sizeof(bin), "%s/bin/sb-outbox", build) >= (int)sizeof(bin) ||
	    snprintf(logf, sizeof(logf), "%s/relay.log", tmp) >= (int)sizeof(logf))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the benchmark */
		if (freopen(logf, "w", stdout) == NULL)
			_exit(126);
		setenv("DATABASE_URL", dsn, 1);
		setenv("KAFKA_BROKERS", brokers, 1);
		setenv("SB_LOG_LEVEL", getenv("RELAY_LOG") ? getenv("RELAY_LOG") : "warn", 1);
		char port[16], url[64];
		snprintf(port, sizeof(port), "%d", free_port());
		setenv("SB_OPS_PORT", port, 1);
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
		setenv("SB_RPC_URL", url, 1);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* --- the stream --- */

struct stream_batch {
	long long lo, hi; /* ids inserted by one transaction */
	double commit_rt; /* CLOCK_REALTIME when its COMMIT returned */
};

static double
wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_until(double t)
{
	double d = t - now_s();
	if (d > 0) {
		struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) };
		nanosleep(&ts, NULL);
	}
}

/* stream_insert commits rows g = first .. first + n - 1 in one transaction with NOTIFY, as the
 * messages service's group commit does, and records the ids and the commit time in *b. */
static void
stream_insert(PGconn *w, long long first, long long n, struct stream_batch *b)
{
	char q[2048];
	snprintf(q, sizeof(q),
	         "BEGIN; WITH ins AS (INSERT INTO messages.outbox (aggregate_type, aggregate_id, "
	         "event_id, event_type, topic, source, subject, payload, traceparent) SELECT "
	         "'conversation', ('00000000-0000-0000-0000-' || lpad(to_hex(g %% %d), 12, "
	         "'0'))::uuid, gen_random_uuid(), 'io.switchboard.message.created.v1', '" TOPIC
	         "', '/tenants/t1/conversations/' || (g %% %d), 'm' || g, "
	         "convert_to(rpad('row-' || g, 200, '.'), 'UTF8'), "
	         "'00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' FROM "
	         "generate_series(%lld, %lld) g ORDER BY g RETURNING id) "
	         "SELECT min(id), max(id), count(*) FROM ins; NOTIFY sb_outbox; COMMIT",
	         AGGS, AGGS, first, first + n - 1);
	if (!PQsendQuery(w, q))
		die("stream insert", PQerrorMessage(w));
	PGresult *r;
	int got = 0;
	while ((r = PQgetResult(w)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			die("stream insert", PQresultErrorMessage(r));
		if (st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
			b->lo = atoll(PQgetvalue(r, 0, 0));
			b->hi = atoll(PQgetvalue(r, 0, 1));
			got = atoll(PQgetvalue(r, 0, 2)) == n;
		}
		PQclear(r);
	}
	b->commit_rt = wall_s();
	if (!got)
		die("stream insert", "the insert did not report its ids");
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
pct_of(const double *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t k = (size_t)(p * (double)(n - 1) + 0.5);
	return sorted[k < n ? k : n - 1];
}

struct stream_result {
	double rate, secs, inserted_rate, relay_rate, relayed_share, tail_s;
	double p50, p99, max, p99_first, p99_last;
	long long rows, txns;
	int keeps_up, measured;
};

/* stream runs the streaming mode with the relay running; g numbers rows from first_g. */
static void
stream(PGconn *c, PGconn *w, double rate, double secs, long long first_g, struct stream_result *out)
{
	size_t cap = 1024, nb = 0;
	struct stream_batch *bs = malloc(cap * sizeof(*bs));
	char samples[4096] = "";
	size_t slen = 0;
	long long inserted = 0;
	if (bs == NULL)
		die("stream", "out of memory");
	double t0 = now_s(), start_rt = wall_s(), next_sample = t0 + 1;
	for (long k = 1;; k++) {
		sleep_until(t0 + k * 0.010);
		double el = now_s() - t0;
		int last = el >= secs;
		if (last)
			el = secs;
		long long due = (long long)(rate * el) - inserted;
		if (due > 0) {
			if (nb == cap && (bs = realloc(bs, (cap *= 2) * sizeof(*bs))) == NULL)
				die("stream", "out of memory");
			stream_insert(w, first_g + inserted, due, &bs[nb++]);
			inserted += due;
		}
		if (last)
			break;
		if (now_s() >= next_sample) { /* the unrelayed rows, once a second */
			next_sample += 1;
			long long left = scalar(c, "SELECT count(*) FROM messages.outbox WHERE "
			                           "relayed_at IS NULL");
			if (slen < sizeof(samples) - 24)
				slen += (size_t)snprintf(samples + slen, sizeof(samples) - slen,
				                         " %lld", left);
		}
	}
	if (nb == 0)
		die("stream", "nothing inserted (rate x seconds < 1)");
	double end_rt = bs[nb - 1].commit_rt, span = end_rt - start_rt;
	/* Wait for the tail (at most 60 s). */
	double tw = now_s();
	long long left;
	while ((left = scalar(c, "SELECT count(*) FROM messages.outbox WHERE relayed_at IS "
	                         "NULL")) > 0 &&
	       now_s() - tw < 60)
		usleep(5000);
	if (left > 0)
		die("stream", "rows left unrelayed 60 s after the stream ended");

	char q[256];
	snprintf(q, sizeof(q),
	         "SELECT id, extract(epoch FROM relayed_at)::float8 FROM messages.outbox WHERE id "
	         "BETWEEN %lld AND %lld ORDER BY id",
	         bs[0].lo, bs[nb - 1].hi);
	PGresult *r = sql(c, q);
	size_t n = (size_t)PQntuples(r), nf = 0, nl = 0, in_window = 0;
	double *lag = malloc((n ? n : 1) * sizeof(double));
	double *first = malloc((n ? n : 1) * sizeof(double));
	double *lastv = malloc((n ? n : 1) * sizeof(double));
	double max_rel = 0;
	if (lag == NULL || first == NULL || lastv == NULL)
		die("stream", "out of memory");
	size_t b = 0;
	for (size_t i = 0; i < n; i++) {
		long long id = atoll(PQgetvalue(r, (int)i, 0));
		double rel = atof(PQgetvalue(r, (int)i, 1));
		while (b < nb && bs[b].hi < id)
			b++;
		if (b == nb || id < bs[b].lo)
			die("stream", "a relayed row belongs to no insert");
		lag[i] = rel - bs[b].commit_rt;
		double at = bs[b].commit_rt - start_rt;
		if (at < span / 3)
			first[nf++] = lag[i];
		else if (at >= 2 * span / 3)
			lastv[nl++] = lag[i];
		in_window += rel <= end_rt;
		if (rel > max_rel)
			max_rel = rel;
	}
	PQclear(r);
	if ((long long)n != inserted)
		die("stream", "the rows read back are not the rows inserted");
	qsort(lag, n, sizeof(double), cmp_double);
	qsort(first, nf, sizeof(double), cmp_double);
	qsort(lastv, nl, sizeof(double), cmp_double);
	*out = (struct stream_result){
		.rate = rate,
		.secs = span,
		.rows = inserted,
		.txns = (long long)nb,
		.inserted_rate = (double)inserted / span,
		.relay_rate = (double)in_window / span,
		.relayed_share = (double)in_window / (double)inserted,
		.tail_s = max_rel - end_rt,
		.p50 = pct_of(lag, n, 0.50),
		.p99 = pct_of(lag, n, 0.99),
		.max = n ? lag[n - 1] : 0,
		.p99_first = pct_of(first, nf, 0.99),
		.p99_last = pct_of(lastv, nl, 0.99),
	};
	out->measured = out->inserted_rate >= 0.95 * rate;
	out->keeps_up = out->measured && out->relayed_share >= 0.97 &&
	                out->p99_last <= 2 * out->p99_first + 0.100;
	printf("  unrelayed rows sampled every second during the stream:%s\n", samples);
	free(lag);
	free(first);
	free(lastv);
	free(bs);
}

int
main(int argc, char **argv)
{
	const char *dsn = getenv("SB_TEST_PG_DSN"), *brokers = getenv("SB_TEST_KAFKA_BROKERS");
	const char *tmp = getenv("SB_TEST_TMP");
	char build[PATH_MAX], q[1024];
	int rows = argc > 1 ? atoi(argv[1]) : 100000;

	if (dsn == NULL || brokers == NULL || tmp == NULL)
		return wrap_with_stack(argc, argv);
	if (rows <= 0)
		die("usage", "relay_bench [ROWS]");
	/* the highest sustained send rate measured by bench/messages_bench.sh (docs/benchmarks.md)
	 */
	const char *sr = getenv("SB_BENCH_SEND_RATE"), *ss = getenv("SB_BENCH_STREAM_SECONDS");
	double send_rate = sr != NULL && atof(sr) > 0 ? atof(sr) : 10000;
	double stream_secs = ss != NULL && atof(ss) > 0 ? atof(ss) : 30;
	{
		FILE *la = fopen("/proc/loadavg", "r");
		double l1 = -1, l5 = -1, l15 = -1;
		if (la != NULL) {
			if (fscanf(la, "%lf %lf %lf", &l1, &l5, &l15) != 3)
				l1 = l5 = l15 = -1;
			fclose(la);
		}
		time_t now = time(NULL);
		char ts[32];
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
		printf("# %s load average %.2f %.2f %.2f\n", ts, l1, l5, l15);
		fflush(stdout); /* before the relay is forked */
	}
	/* The topic both sides write, as the relay would create it (auto-creation is off). */
	const struct sb_kafka_topic_spec spec = { TOPIC, 6, -1, 0 };
	if (sb_kafka_ensure_topics(brokers, &spec, 1, 20000, q, sizeof(q)) != 0)
		die("create topic", q);
	build_root(build, sizeof(build));
	PGconn *c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK)
		die("connect", PQerrorMessage(c));
	PQclear(
	    sql(c, "CREATE SCHEMA IF NOT EXISTS messages; DROP TABLE IF EXISTS messages.outbox;"
	           "CREATE TABLE messages.outbox (id bigserial PRIMARY KEY, aggregate_type text "
	           "NOT NULL, aggregate_id uuid NOT NULL, shard int GENERATED ALWAYS AS "
	           "(abs(hashtext(aggregate_id::text) % 64)) STORED, event_id uuid NOT NULL, "
	           "event_type text NOT NULL, topic text NOT NULL, source text NOT NULL, "
	           "subject text, payload bytea NOT NULL, traceparent text, created_at "
	           "timestamptz NOT NULL DEFAULT now(), attempts int NOT NULL DEFAULT 0, "
	           "last_error text, relayed_at timestamptz);"
	           "CREATE INDEX outbox_pending ON messages.outbox (shard, id) WHERE relayed_at IS "
	           "NULL;"));
	pid_t relay = relay_start(build, dsn, brokers, tmp);
	/* Let the relay take its leases before the rows appear. */
	for (int i = 0; i < 100 && scalar(c, "SELECT count(*) FROM pg_locks WHERE locktype = "
	                                     "'advisory' AND granted") < 64;
	     i++)
		usleep(50000);

	/* 1. Drain: a backlog committed at once. */
	snprintf(q, sizeof(q),
	         "BEGIN; INSERT INTO messages.outbox (aggregate_type, aggregate_id, event_id, "
	         "event_type, topic, source, subject, payload, traceparent) SELECT 'conversation', "
	         "('00000000-0000-0000-0000-' || lpad(to_hex(g %% %d), 12, '0'))::uuid, "
	         "gen_random_uuid(), 'io.switchboard.message.created.v1', '" TOPIC "', "
	         "'/tenants/t1/conversations/' || (g %% %d), 'm' || g, "
	         "convert_to(rpad('row-' || g, 200, '.'), 'UTF8'), "
	         "'00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' "
	         "FROM generate_series(1, %d) g ORDER BY g; NOTIFY sb_outbox;",
	         AGGS, AGGS, rows);
	PQclear(sql(c, q));
	PQclear(sql(c, "COMMIT"));
	long long drain_max_id = scalar(c, "SELECT max(id) FROM messages.outbox");
	double t0 = now_s();
	long long left = rows;
	while ((left = scalar(c, "SELECT count(*) FROM messages.outbox WHERE relayed_at IS "
	                         "NULL")) > 0 &&
	       now_s() - t0 < 300)
		usleep(20000);
	double relay_t = now_s() - t0;
	if (left > 0)
		die("relay", "rows left unrelayed after 300 s");
	double relay_rate = rows / relay_t;
	if (getenv("RELAY_LOG")) {
		snprintf(q, sizeof(q), "grep -m 12 batch %s/relay.log", tmp);
		if (system(q) != 0)
			fprintf(stderr, "no batch lines\n");
	}

	printf("relay_bench: one Kafka broker (topic of 6 partitions), PostgreSQL 15 durable, "
	       "200-byte payloads over %d aggregates\n",
	       AGGS);
	/* 2. Stream: the same relay, rows arriving at the send rate while it relays. */
	PGconn *w = PQconnectdb(dsn);
	if (PQstatus(w) != CONNECTION_OK)
		die("connect", PQerrorMessage(w));
	printf("stream: %.0f rows/s for %.0f s, a transaction every 10 ms (rows due, NOTIFY, "
	       "COMMIT), relay running\n",
	       send_rate, stream_secs);
	fflush(stdout);
	struct stream_result sr_;
	stream(c, w, send_rate, stream_secs, (long long)rows + 1, &sr_);
	PQfinish(w);
	kill(relay, SIGTERM);
	int st;
	waitpid(relay, &st, 0);

	/* 3. The drain's peer: a plain producer, the drain's records. */
	snprintf(q, sizeof(q),
	         "SELECT aggregate_id::text, event_id::text, event_type, source, "
	         "payload, subject, to_char(created_at AT TIME ZONE 'UTC', "
	         "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), traceparent FROM "
	         "messages.outbox WHERE id <= %lld ORDER BY id",
	         drain_max_id);
	PGresult *all = sql(c, q);
	double base_rate = baseline(brokers, all);
	PQclear(all);
	PQfinish(c);

	const char *bs = getenv("SB_OUTBOX_BATCH_SIZE");
	printf("  inserted %lld rows in %lld transactions in %.2f s: %.0f rows/s (%.1f%% of the "
	       "rate)\n",
	       sr_.rows, sr_.txns, sr_.secs, sr_.inserted_rate,
	       100 * sr_.inserted_rate / send_rate);
	printf("  sb-outbox relay during the stream: %.0f rows/s, %.1f%% of the inserted rows "
	       "marked relayed by the last commit; the last row %.3f s after it\n",
	       sr_.relay_rate, 100 * sr_.relayed_share, sr_.tail_s);
	printf("  lag commit -> acked and marked (ms): p50 %.1f, p99 %.1f, max %.1f; p99 first "
	       "third %.1f, last third %.1f\n",
	       sr_.p50 * 1000, sr_.p99 * 1000, sr_.max * 1000, sr_.p99_first * 1000,
	       sr_.p99_last * 1000);
	printf("drain: %d rows committed at once\n", rows);
	printf("  sb-outbox relay (batch %s, table -> acked -> marked): %9.0f rows/s (%.2f s)\n",
	       bs ? bs : "default", relay_rate, relay_t);
	printf("  plain librdkafka producer (same records, same config):  %9.0f rows/s\n",
	       base_rate);
	printf("  ratio relay / plain producer: %.2f\n", relay_rate / base_rate);
	int drain_ok = relay_rate >= 2 * send_rate;
	printf("target drain >= %.0f rows/s (2x the messages service's sustained send rate, "
	       "%.0f/s): %s\n",
	       2 * send_rate, send_rate, drain_ok ? "met" : "NOT met");
	if (!sr_.measured)
		printf(
		    "target stream at 1x (%.0f rows/s): NOT met: not measured, the inserts reached "
		    "only %.0f rows/s\n",
		    send_rate, sr_.inserted_rate);
	else
		printf("target stream at 1x (%.0f rows/s) keeps up with no growing lag (>= 97%% "
		       "relayed during the stream, p99 lag of the last third <= 2x the first "
		       "third's + 100 ms): %s\n",
		       send_rate, sr_.keeps_up ? "met" : "NOT met");
	printf("  relay exit status after SIGTERM: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return drain_ok && sr_.keeps_up ? 0 : 1;
}
