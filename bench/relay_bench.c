/* relay_bench.c: outbox relay throughput, rows/s from committed in messages.outbox to
 * acknowledged by Kafka (a real Apache Kafka broker) and marked relayed, against a plain
 * librdkafka producer (idempotent, acks=all, lz4, the same CloudEvents headers) sending the same
 * records to the same broker and topic (6 partitions) in the same run.
 *
 * `make bench` runs it with no arguments: it then starts a throwaway PostgreSQL (durable
 * settings: fsync and synchronous_commit on) and one Kafka broker with tools/stack.sh in a
 * bash wrapper
 * that runs this program again with SB_TEST_PG_DSN and SB_TEST_KAFKA_BROKERS set, and stops
 * both afterwards. The relay measured is the real binary, build/bin/sb-outbox.
 * Usage: relay_bench [ROWS] (default 100000, over 1000 aggregates, 200-byte payloads). */
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
	double t0 = now_s();
	long long left = rows;
	while ((left = scalar(c, "SELECT count(*) FROM messages.outbox WHERE relayed_at IS "
	                         "NULL")) > 0 &&
	       now_s() - t0 < 300)
		usleep(20000);
	double relay_t = now_s() - t0;
	kill(relay, SIGTERM);
	int st;
	waitpid(relay, &st, 0);
	if (left > 0)
		die("relay", "rows left unrelayed after 300 s");
	double relay_rate = rows / relay_t;
	if (getenv("RELAY_LOG")) {
		snprintf(q, sizeof(q), "grep -m 12 batch %s/relay.log", tmp);
		if (system(q) != 0)
			fprintf(stderr, "no batch lines\n");
	}

	PGresult *all = sql(c, "SELECT aggregate_id::text, event_id::text, event_type, source, "
	                       "payload, subject, to_char(created_at AT TIME ZONE 'UTC', "
	                       "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), traceparent FROM "
	                       "messages.outbox ORDER BY id");
	double base_rate = baseline(brokers, all);
	PQclear(all);
	PQfinish(c);

	printf("relay_bench: %d rows, %d aggregates, 200-byte payloads, one Kafka broker, "
	       "PostgreSQL 15 durable\n",
	       rows, AGGS);
	const char *bs = getenv("SB_OUTBOX_BATCH_SIZE");
	printf("  sb-outbox relay (batch %s, table -> acked -> marked): %9.0f rows/s (%.2f s)\n",
	       bs ? bs : "default", relay_rate, relay_t);
	printf("  plain librdkafka producer (same records, same config):  %9.0f rows/s\n",
	       base_rate);
	printf("  ratio relay / plain producer: %.2f\n", relay_rate / base_rate);
	/* the highest sustained send rate measured by bench/messages_bench.sh (docs/benchmarks.md)
	 */
	const char *sr = getenv("SB_BENCH_SEND_RATE");
	double send_rate = sr != NULL && atof(sr) > 0 ? atof(sr) : 10000;
	printf("  target >= %.0f rows/s (2x the messages service's sustained send rate, %.0f/s): "
	       "%s\n",
	       2 * send_rate, send_rate, relay_rate >= 2 * send_rate ? "met" : "NOT met");
	printf("  relay exit status after SIGTERM: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}
