/* outbox_it.h: helpers shared by the outbox integration tests (tests/integration/outbox_*).
 * Header-only (static functions) so that each test stays one executable linked with sb_common
 * and cmocka, as tests/integration/CMakeLists.txt builds them. The tests drive the real
 * binary, build/bin/sb-outbox, against the PostgreSQL and Kafka (or devbus) of
 * tests/lib/with-stack.sh. */
#ifndef OUTBOX_IT_H
#define OUTBOX_IT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "../../tests/integration/it_port.h"
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "sb_err.h"
#include "sb_kafka.h"

#define IT_FN        static __attribute__((unused))
#define IT_TOPIC     "sb.messages.v1"
#define IT_DLQ_TOPIC "sb.messages.v1.dlq"

IT_FN const char it_ddl[] =
    "CREATE SCHEMA IF NOT EXISTS messages;"
    "CREATE TABLE IF NOT EXISTS messages.outbox ("
    " id bigserial PRIMARY KEY, aggregate_type text NOT NULL, aggregate_id uuid NOT NULL,"
    " shard int GENERATED ALWAYS AS (abs(hashtext(aggregate_id::text) % 64)) STORED,"
    " event_id uuid NOT NULL, event_type text NOT NULL, topic text NOT NULL,"
    " source text NOT NULL, subject text, payload bytea NOT NULL, traceparent text,"
    " created_at timestamptz NOT NULL DEFAULT now(), attempts int NOT NULL DEFAULT 0,"
    " last_error text, relayed_at timestamptz);"
    "CREATE INDEX IF NOT EXISTS outbox_pending ON messages.outbox (shard, id)"
    " WHERE relayed_at IS NULL;";

IT_FN long long
it_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

IT_FN const char *
it_env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || v[0] == '\0') {
		fprintf(stderr, "%s is not set: run under tests/lib/with-stack.sh\n", name);
		exit(2);
	}
	return v;
}

/* it_pg connects to the test database or fails the test. */
IT_FN PGconn *
it_pg(void)
{
	PGconn *c = PQconnectdb(it_env("SB_TEST_PG_DSN"));
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s\n", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

/* it_sql runs sql and returns its result (caller PQclears); exits on an SQL error. */
IT_FN PGresult *
it_sql(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fprintf(stderr, "SQL failed: %s\n%s\n", PQerrorMessage(c), sql);
		exit(1);
	}
	return r;
}

IT_FN void
it_exec(PGconn *c, const char *sql)
{
	PQclear(it_sql(c, sql));
}

/* it_scalar returns the first column of the first row of sql as a number. */
IT_FN long long
it_scalar(PGconn *c, const char *sql)
{
	PGresult *r = it_sql(c, sql);
	long long v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	return v;
}

/* it_insert inserts n rows spread round-robin over naggs aggregates (aggregate k is the uuid
 * ...0000k+agg_base), in one statement, with payload "row-<n>" of at least pad bytes. */
IT_FN void
it_insert(PGconn *c, int n, int naggs, int agg_base, int pad)
{
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "INSERT INTO messages.outbox (aggregate_type, aggregate_id, event_id, event_type, "
	         "topic, source, subject, payload, traceparent) SELECT 'conversation', "
	         "('00000000-0000-0000-0000-' || lpad(to_hex(%d + g %% %d), 12, '0'))::uuid, "
	         "gen_random_uuid(), 'io.switchboard.message.created.v1', '" IT_TOPIC "', "
	         "'/tenants/t1/conversations/' || (%d + g %% %d), 'm' || g, "
	         "convert_to(rpad('row-' || g, %d, '.'), 'UTF8'), "
	         "'00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' "
	         "FROM generate_series(1, %d) g ORDER BY g",
	         agg_base, naggs, agg_base, naggs, pad, n);
	it_exec(c, sql);
}

struct it_relay {
	pid_t pid;
	int ops_port;
	char log[512];
};

/* Relays started and not yet reaped: killed at exit, so that a failed assertion (cmocka
 * returns from the test early) never leaves a relay behind. */
static pid_t it_children[16];

IT_FN void
it_kill_children(void)
{
	for (size_t i = 0; i < sizeof(it_children) / sizeof(it_children[0]); i++)
		if (it_children[i] > 0) {
			kill(it_children[i], SIGKILL);
			waitpid(it_children[i], NULL, 0);
			it_children[i] = 0;
		}
}

IT_FN void
it_track(pid_t old, pid_t pid)
{
	static bool registered;
	if (!registered) {
		atexit(it_kill_children);
		registered = true;
	}
	for (size_t i = 0; i < sizeof(it_children) / sizeof(it_children[0]); i++)
		if (it_children[i] == old) {
			it_children[i] = pid;
			return;
		}
}

/* it_relay_start runs build/bin/sb-outbox with the stack's addresses, free ports and extra
 * "NAME=value" settings (NULL-terminated, may be NULL); its output goes to a log file. */
IT_FN void
it_relay_start(struct it_relay *r, const char *name, const char *const *extra)
{
	const char *build = getenv("SB_BUILD_ROOT");
	char bin[512], db[512], kb[512], ops[32], rpc[64];
	snprintf(bin, sizeof(bin), "%s/bin/sb-outbox", build && build[0] ? build : "build");
	r->ops_port = it_free_port();
	snprintf(r->log, sizeof(r->log), "%s/%s.log", it_env("SB_TEST_TMP"), name);
	snprintf(db, sizeof(db), "DATABASE_URL=%s", it_env("SB_TEST_PG_DSN"));
	snprintf(kb, sizeof(kb), "KAFKA_BROKERS=%s", it_env("SB_TEST_KAFKA_BROKERS"));
	snprintf(ops, sizeof(ops), "SB_OPS_PORT=%d", r->ops_port);
	snprintf(rpc, sizeof(rpc), "SB_RPC_URL=tcp://127.0.0.1:%d", it_free_port());
	r->pid = fork();
	if (r->pid == 0) {
		/* Dies with the test, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		putenv(db);
		putenv(kb);
		putenv(ops);
		putenv(rpc);
		putenv((char *)"SB_LOG_LEVEL=info");
		for (int i = 0; extra && extra[i]; i++)
			putenv((char *)extra[i]);
		execl(bin, bin, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	it_track(0, r->pid);
}

/* it_relay_stop sends sig and waits up to 20 s; returns the exit status (128+n if killed by
 * signal n, -1 if it had to be killed after the wait). */
IT_FN int
it_relay_stop(struct it_relay *r, int sig)
{
	int st = 0;
	if (r->pid <= 0)
		return -1;
	kill(r->pid, sig);
	for (long long end = it_now_ms() + 20000; it_now_ms() < end;) {
		pid_t w = waitpid(r->pid, &st, WNOHANG);
		if (w == r->pid) {
			it_track(r->pid, 0);
			r->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(20000);
	}
	kill(r->pid, SIGKILL);
	waitpid(r->pid, &st, 0);
	it_track(r->pid, 0);
	r->pid = 0;
	return -1;
}

/* it_metric reads /metrics from the relay's ops port and returns the value of the sample
 * line starting with "name " (e.g. "outbox_shards_held"), or -1 when absent or unreachable. */
IT_FN double
it_metric(const struct it_relay *r, const char *name)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
		                 .sin_port = htons((uint16_t)r->ops_port),
		                 .sin_addr.s_addr = htonl(0x7f000001) };
	static char buf[1 << 17];
	size_t len = 0;
	ssize_t k;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	double v = -1;
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	if (write(fd, req, sizeof(req) - 1) < 0) {
		close(fd);
		return -1;
	}
	while (len < sizeof(buf) - 1 && (k = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)k;
	close(fd);
	buf[len] = '\0';
	size_t nl = strlen(name);
	for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, name, nl) == 0 && p[nl] == ' ')
			v = strtod(p + nl + 1, NULL);
	return v;
}

/* it_wait_metric waits up to ms for metric of r to satisfy value >= min. */
IT_FN bool
it_wait_metric(const struct it_relay *r, const char *name, double min, int ms)
{
	for (long long end = it_now_ms() + ms; it_now_ms() < end; usleep(100000))
		if (it_metric(r, name) >= min)
			return true;
	return false;
}

/* it_wait_relayed waits up to ms until no row is left unrelayed; returns the count left. */
IT_FN long long
it_wait_relayed(PGconn *c, int ms)
{
	long long left = 0;
	for (long long end = it_now_ms() + ms; it_now_ms() < end; usleep(100000))
		if ((left = it_scalar(c, "SELECT count(*) FROM messages.outbox WHERE relayed_at IS "
		                         "NULL")) == 0)
			return 0;
	return left;
}

IT_FN void
it_ctl(const char *cmd)
{
	char reply[256];
	int r = sb_kafka_devbus_ctl(it_env("SB_TEST_DEVBUS_CTL"), cmd, 5000, reply, sizeof(reply));
	if (r != 0) {
		fprintf(stderr, "devbus ctl %s: %s (%s)\n", cmd, reply, sb_strerror(r));
		exit(1);
	}
}

/* One row as the table has it, and what the consumer saw of it. */
struct it_row {
	char event_id[40];
	long long id;
	int agg;  /* index in the sorted aggregate list */
	int seen; /* copies consumed */
	char payload[64];
};

struct it_check {
	struct it_row *rows; /* sorted by event_id */
	int n;
	int naggs;
	int distinct, dups, bad_order, bad_dup, unknown;
};

IT_FN int
it_row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct it_row *)a)->event_id, ((const struct it_row *)b)->event_id);
}

/* it_check_load reads every row of the table (filter: extra SQL condition or NULL). */
IT_FN void
it_check_load(PGconn *c, struct it_check *k, const char *filter)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT event_id, id, dense_rank() OVER (ORDER BY aggregate_id) - 1 FROM "
	         "messages.outbox %s%s",
	         filter ? "WHERE " : "", filter ? filter : "");
	PGresult *r = it_sql(c, sql);
	memset(k, 0, sizeof(*k));
	k->n = PQntuples(r);
	k->rows = calloc((size_t)k->n + 1, sizeof(*k->rows));
	for (int i = 0; i < k->n; i++) {
		snprintf(k->rows[i].event_id, sizeof(k->rows[i].event_id), "%s",
		         PQgetvalue(r, i, 0));
		k->rows[i].id = atoll(PQgetvalue(r, i, 1));
		k->rows[i].agg = atoi(PQgetvalue(r, i, 2));
		if (k->rows[i].agg + 1 > k->naggs)
			k->naggs = k->rows[i].agg + 1;
	}
	PQclear(r);
	qsort(k->rows, (size_t)k->n, sizeof(*k->rows), it_row_cmp);
}

/* it_consume reads topic from the beginning until every row of k has been seen (then 1 s
 * more, to catch late duplicates) or ms passed, checking per aggregate that each row seen for
 * the first time has a higher id than every row of its aggregate seen before, and that a copy
 * carries the same payload as the first. */
IT_FN void
it_consume(struct it_check *k, const char *topic, int ms)
{
	const char *const cconf[] = { "session.timeout.ms", "4000", "heartbeat.interval.ms", "1000",
		                      NULL };
	/* Rows name base topics; the relay writes them under the test's prefix (exported by
	 * with-stack as SB_KAFKA_TOPIC_PREFIX, unset with devbus). */
	const char *pre = getenv("SB_KAFKA_TOPIC_PREFIX");
	char full[256];
	snprintf(full, sizeof(full), "%s%s", pre ? pre : "", topic);
	const char *const topics[] = { full, NULL };
	char group[64];
	struct sb_kafka_consumer *cons = NULL;
	long long *maxid = calloc((size_t)k->naggs + 1, sizeof(*maxid));

	snprintf(group, sizeof(group), "it-outbox-%d-%lld", (int)getpid(), it_now_ms());
	if (sb_kafka_consumer_new(it_env("SB_TEST_KAFKA_BROKERS"), group, topics, cconf, &cons) !=
	    0) {
		fprintf(stderr, "cannot create consumer\n");
		exit(1);
	}
	long long end = it_now_ms() + ms, quiet = 0;
	while (it_now_ms() < end && (quiet == 0 || it_now_ms() < quiet)) {
		rd_kafka_message_t *m = sb_kafka_consumer_poll(cons, 200);
		if (m == NULL)
			continue;
		struct it_row key;
		char payload[64];
		snprintf(payload, sizeof(payload), "%.*s", m->len < 63 ? (int)m->len : 63,
		         (const char *)m->payload);
		if (sb_kafka_header(m, "ce_id", key.event_id, sizeof(key.event_id)) < 0) {
			k->unknown++;
			rd_kafka_message_destroy(m);
			continue;
		}
		struct it_row *row =
		    bsearch(&key, k->rows, (size_t)k->n, sizeof(*k->rows), it_row_cmp);
		if (row == NULL) {
			k->unknown++;
		} else if (row->seen++ > 0) {
			k->dups++;
			if (strcmp(row->payload, payload) != 0)
				k->bad_dup++;
		} else {
			snprintf(row->payload, sizeof(row->payload), "%s", payload);
			k->distinct++;
			if (row->id < maxid[row->agg]) {
				k->bad_order++;
				fprintf(stderr, "out of order: aggregate %d id %lld after %lld\n",
				        row->agg, row->id, maxid[row->agg]);
			} else {
				maxid[row->agg] = row->id;
			}
		}
		rd_kafka_message_destroy(m);
		if (k->distinct == k->n && quiet == 0)
			quiet = it_now_ms() + 1000;
	}
	sb_kafka_consumer_close(cons);
	free(maxid);
	fprintf(stderr, "%s: %d distinct of %d rows, %d duplicates, %d out of order, %d unknown\n",
	        topic, k->distinct, k->n, k->dups, k->bad_order, k->unknown);
}

#endif
