/* sb_kafka_consumer.c: a consumer-group member, with manual synchronous commits or with stored
 * offsets (committed in the background, on revoke and at close), polled one message at a time
 * or in batches. */
#include "sb_kafka.h"
#include "sb_err.h"
#include "sb_log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sb_kafka_consumer {
	rd_kafka_t *rk;
	bool stored; /* stored-offset mode */
};

static const char *const sb_kafka_consumer_defaults[] = {
	"enable.auto.commit",
	"false",
	"auto.offset.reset",
	"earliest",
	"enable.partition.eof",
	"false",
	"client.id",
	"switchboard",
	NULL,
};

static bool
sb_kafka_cooperative(rd_kafka_t *rk)
{
	const char *p = rd_kafka_rebalance_protocol(rk);
	return p != NULL && strcmp(p, "COOPERATIVE") == 0;
}

/* sb_kafka_consumer_rebalance (stored-offset mode) commits the handled offsets before the
 * partitions are given away, so that their next owner resumes right after them. It runs on the
 * thread that polls (or closes). */
static void
sb_kafka_consumer_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	bool coop = sb_kafka_cooperative(rk);
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
	rd_kafka_error_t *ie = NULL;
	char n[16];
	(void)opaque;

	snprintf(n, sizeof(n), "%d", parts ? parts->cnt : 0);
	switch (err) {
	case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
		sb_log_kv(SB_LOG_INFO, "kafka partitions assigned", "partitions", n, NULL);
		if (coop)
			ie = rd_kafka_incremental_assign(rk, parts);
		else
			e = rd_kafka_assign(rk, parts);
		break;
	case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
		sb_log_kv(SB_LOG_INFO, "kafka partitions revoked", "partitions", n, NULL);
		if (!rd_kafka_assignment_lost(rk)) {
			/* NULL: the stored offsets of the current assignment. */
			rd_kafka_resp_err_t ce = rd_kafka_commit(rk, NULL, 0);
			if (ce != RD_KAFKA_RESP_ERR_NO_ERROR && ce != RD_KAFKA_RESP_ERR__NO_OFFSET)
				sb_log_kv(
				    SB_LOG_WARN,
				    "kafka commit before revoke failed; handled events may be "
				    "redelivered",
				    "error", rd_kafka_err2str(ce), NULL);
		}
		if (coop)
			ie = rd_kafka_incremental_unassign(rk, parts);
		else
			e = rd_kafka_assign(rk, NULL);
		break;
	default:
		sb_log_kv(SB_LOG_WARN, "kafka rebalance failed", "error", rd_kafka_err2str(err),
		          NULL);
		e = rd_kafka_assign(rk, NULL);
		break;
	}
	if (ie != NULL) {
		sb_log_kv(SB_LOG_ERROR, "kafka assignment change failed", "error",
		          rd_kafka_error_string(ie), NULL);
		rd_kafka_error_destroy(ie);
	} else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		sb_log_kv(SB_LOG_ERROR, "kafka assignment change failed", "error",
		          rd_kafka_err2str(e), NULL);
	}
}

int
sb_kafka_consumer_new_opts(const char *brokers, const char *group_id, const char *const *topics,
                           const char *const *conf, const struct sb_kafka_consumer_opts *o,
                           struct sb_kafka_consumer **out)
{
	char errstr[512], interval[24];
	struct sb_kafka_consumer *c = NULL;
	rd_kafka_conf_t *kc = NULL;
	rd_kafka_topic_partition_list_t *subs = NULL;
	rd_kafka_resp_err_t err;
	int ret = SB_EINVAL;
	int n = 0;
	bool stored = o != NULL && o->commit_interval_ms > 0;

	if (brokers == NULL || brokers[0] == '\0' || group_id == NULL || group_id[0] == '\0' ||
	    topics == NULL || topics[0] == NULL || out == NULL ||
	    (o != NULL && o->commit_interval_ms < 0))
		return SB_EINVAL;
	kc = sb__kafka_conf_new(brokers, sb_kafka_consumer_defaults, conf);
	if (kc == NULL)
		return SB_EINVAL;
	if (rd_kafka_conf_set(kc, "group.id", group_id, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		sb_log_kv(SB_LOG_ERROR, "bad kafka group id", "error", errstr, NULL);
		goto fail;
	}
	if (stored) {
		/* Set last: the mode's guarantee must not be undone by an extra setting. */
		snprintf(interval, sizeof(interval), "%d", o->commit_interval_ms);
		if (rd_kafka_conf_set(kc, "enable.auto.offset.store", "false", errstr,
		                      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		    rd_kafka_conf_set(kc, "enable.auto.commit", "true", errstr, sizeof(errstr)) !=
		        RD_KAFKA_CONF_OK ||
		    rd_kafka_conf_set(kc, "auto.commit.interval.ms", interval, errstr,
		                      sizeof(errstr)) != RD_KAFKA_CONF_OK) {
			sb_log_kv(SB_LOG_ERROR, "bad kafka commit setting", "error", errstr, NULL);
			goto fail;
		}
		rd_kafka_conf_set_rebalance_cb(kc, sb_kafka_consumer_rebalance);
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		ret = SB_ENOMEM;
		goto fail;
	}
	c->stored = stored;
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
	if (c->rk == NULL) {
		sb_log_kv(SB_LOG_ERROR, "cannot create kafka consumer", "error", errstr, NULL);
		goto fail;
	}
	kc = NULL; /* owned by c->rk now */
	rd_kafka_poll_set_consumer(c->rk);
	while (topics[n] != NULL)
		n++;
	subs = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(c->rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		sb_log_kv(SB_LOG_ERROR, "kafka subscribe failed", "group", group_id, "error",
		          rd_kafka_err2str(err), NULL);
		ret = SB_EIO;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	if (kc != NULL)
		rd_kafka_conf_destroy(kc);
	if (c != NULL && c->rk != NULL)
		rd_kafka_destroy(c->rk);
	free(c);
	return ret;
}

int
sb_kafka_consumer_new(const char *brokers, const char *group_id, const char *const *topics,
                      const char *const *conf, struct sb_kafka_consumer **out)
{
	return sb_kafka_consumer_new_opts(brokers, group_id, topics, conf, NULL, out);
}

rd_kafka_message_t *
sb_kafka_consumer_poll(struct sb_kafka_consumer *c, int timeout_ms)
{
	rd_kafka_message_t *m;

	if (c == NULL)
		return NULL;
	m = rd_kafka_consumer_poll(c->rk, timeout_ms < 0 ? 0 : timeout_ms);
	if (m == NULL)
		return NULL;
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		sb_log_kv(SB_LOG_WARN, "kafka consumer error", "topic",
		          m->rkt ? rd_kafka_topic_name(m->rkt) : NULL, "error",
		          rd_kafka_message_errstr(m), NULL);
		rd_kafka_message_destroy(m);
		return NULL;
	}
	return m;
}

static long long
sb_kafka_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t
sb_kafka_consumer_poll_batch(struct sb_kafka_consumer *c, rd_kafka_message_t **msgs, size_t max,
                             int timeout_ms, int linger_ms)
{
	size_t n = 0;
	long long until = 0;

	if (c == NULL || msgs == NULL || max == 0)
		return 0;
	/* The first message: wait for it (an error skipped counts against the same wait). */
	for (long long end = sb_kafka_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);;) {
		long long left = end - sb_kafka_mono_ms();
		if ((msgs[0] = sb_kafka_consumer_poll(c, left > 0 ? (int)left : 0)) != NULL)
			break;
		if (left <= 0)
			return 0;
	}
	n = 1;
	until = sb_kafka_mono_ms() + (linger_ms < 0 ? 0 : linger_ms);
	/* The rest: what was already fetched, then what arrives until the linger ends. */
	while (n < max) {
		long long left = until - sb_kafka_mono_ms();
		rd_kafka_message_t *m = sb_kafka_consumer_poll(c, left > 0 ? (int)left : 0);
		if (m == NULL) {
			if (left <= 0)
				break;
			continue;
		}
		msgs[n++] = m;
	}
	return n;
}

int
sb_kafka_consumer_store(struct sb_kafka_consumer *c, rd_kafka_message_t *const *msgs, size_t n)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t err;
	int ret = 0;

	if (c == NULL || !c->stored || (msgs == NULL && n > 0))
		return SB_EINVAL;
	if (n == 0)
		return 0;
	l = rd_kafka_topic_partition_list_new(8);
	for (size_t i = 0; i < n; i++) {
		const rd_kafka_message_t *m = msgs[i];
		if (m == NULL || m->rkt == NULL || m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			rd_kafka_topic_partition_list_destroy(l);
			return SB_EINVAL;
		}
		const char *t = rd_kafka_topic_name(m->rkt);
		rd_kafka_topic_partition_t *p =
		    rd_kafka_topic_partition_list_find(l, t, m->partition);
		if (p == NULL)
			p = rd_kafka_topic_partition_list_add(l, t, m->partition);
		if (p->offset < m->offset + 1)
			p->offset = m->offset + 1;
	}
	err = rd_kafka_offsets_store(c->rk, l);
	for (int i = 0; i < l->cnt; i++) {
		if (l->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			continue;
		char part[16];
		snprintf(part, sizeof(part), "%d", (int)l->elems[i].partition);
		sb_log_kv(SB_LOG_INFO,
		          "kafka offset not stored (partition no longer assigned); its new owner "
		          "receives the events again",
		          "topic", l->elems[i].topic, "partition", part, "error",
		          rd_kafka_err2str(l->elems[i].err), NULL);
		ret = SB_ECLOSED;
	}
	if (err == RD_KAFKA_RESP_ERR__INVALID_ARG)
		ret = SB_EINVAL;
	else if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ret = SB_ECLOSED;
	rd_kafka_topic_partition_list_destroy(l);
	return ret;
}

int
sb_kafka_consumer_commit(struct sb_kafka_consumer *c, const rd_kafka_message_t *msg)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t err;

	if (c == NULL || msg == NULL || msg->rkt == NULL || msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
		return SB_EINVAL;
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(msg->rkt), msg->partition)
	    ->offset = msg->offset + 1;
	err = rd_kafka_commit(c->rk, l, 0);
	rd_kafka_topic_partition_list_destroy(l);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		sb_log_kv(SB_LOG_WARN, "kafka commit failed", "topic",
		          rd_kafka_topic_name(msg->rkt), "error", rd_kafka_err2str(err), NULL);
		return SB_EIO;
	}
	return 0;
}

rd_kafka_t *
sb_kafka_consumer_handle(struct sb_kafka_consumer *c)
{
	return c ? c->rk : NULL;
}

void
sb_kafka_consumer_close(struct sb_kafka_consumer *c)
{
	if (c == NULL)
		return;
	/* In stored-offset mode the final revoke runs the rebalance callback, which commits the
	 * stored offsets (librdkafka 2.0.2 does not commit them by itself here). */
	rd_kafka_consumer_close(c->rk);
	rd_kafka_destroy(c->rk);
	free(c);
}
