/* outbox_it.h: what the outbox integration tests (tests/integration/outbox_*) share on top of
 * the harness (it.h): the outbox table, rows to relay, the relay binary (build/bin/sb-outbox)
 * started against the PostgreSQL and Kafka (or devbus) of tests/lib/with-stack.sh, and the
 * check that a topic holds every row once, in order per aggregate. Header-only (static
 * functions); include it once per test. */
#ifndef OUTBOX_IT_H
#define OUTBOX_IT_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "it.h"
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

/* it_relay_start runs build/bin/sb-outbox (it_spawn: the stack's addresses, free ports) with
 * extra "NAME=value" settings (NULL-ended, may be NULL); its log is $SB_TEST_TMP/<name>.log. */
IT_FN void
it_relay_start(struct it_proc *r, const char *name, const char *const *extra)
{
	if (it_spawn(r, "outbox", name, extra) != 0)
		exit(1);
}

/* it_relay_stop sends sig and waits up to 20 s; returns the exit status (128+n if killed by
 * signal n, -1 if it had to be killed after the wait). */
IT_FN int
it_relay_stop(struct it_proc *r, int sig)
{
	return it_stop(r, sig, 20000);
}

/* it_wait_relayed waits up to ms until no row is left unrelayed; returns the count left. */
IT_FN long long
it_wait_relayed(PGconn *c, int ms)
{
	long long left = 0;
	for (long long end = it_now_ms() + ms; it_now_ms() < end; it_sleep_ms(100))
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

	snprintf(group, sizeof(group), "it-outbox-%d-%lld", (int)getpid(), (long long)it_now_ms());
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
