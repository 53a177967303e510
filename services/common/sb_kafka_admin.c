/* sb_kafka_admin.c: topic creation for start-up and the readiness ping. */
#include "sb_kafka.h"
#include "sb_err.h"
#include "sb_log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static long long
sb_kafka_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
sb_kafka_md_has(const struct rd_kafka_metadata *md, const char *topic)
{
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strcmp(md->topics[i].topic, topic) == 0 &&
		    md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return 1;
	}
	return 0;
}

/* sb_kafka_md_ready is sb_kafka_md_has for a topic whose every partition has a leader: what a
 * producer or consumer needs to use it at once. */
static int
sb_kafka_md_ready(const struct rd_kafka_metadata *md, const char *topic)
{
	for (int i = 0; i < md->topic_cnt; i++) {
		const struct rd_kafka_metadata_topic *t = &md->topics[i];
		if (strcmp(t->topic, topic) != 0 || t->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
		    t->partition_cnt < 1)
			continue;
		for (int p = 0; p < t->partition_cnt; p++)
			if (t->partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
			    t->partitions[p].leader < 0)
				return 0;
		return 1;
	}
	return 0;
}

/* sb_kafka_wait_listed waits until the brokers' metadata lists every topic of missing[0..cnt)
 * with a leader for each partition, or until deadline (ms, sb_kafka_now_ms): a created topic is
 * committed by the controller before every broker's metadata shows it, and a client that
 * produces or subscribes in between is told "unknown topic or partition". */
static int
sb_kafka_wait_listed(rd_kafka_t *rk, const struct sb_kafka_topic_spec **missing, int cnt,
                     long long deadline, char *err, size_t n)
{
	for (;;) {
		const struct rd_kafka_metadata *md = NULL;
		long long left = deadline - sb_kafka_now_ms();
		int listed = 0, at = 0;
		if (rd_kafka_metadata(rk, 1, NULL, &md, (int)(left > 100 ? left : 100)) ==
		    RD_KAFKA_RESP_ERR_NO_ERROR) {
			for (at = 0; at < cnt && sb_kafka_md_ready(md, missing[at]->name); at++)
				listed++;
			rd_kafka_metadata_destroy(md);
		}
		if (listed == cnt)
			return 0;
		if (sb_kafka_now_ms() + 50 >= deadline) {
			snprintf(err, n, "kafka topic %s created but not yet listed with leaders",
			         missing[at < cnt ? at : 0]->name);
			return SB_ETIMEDOUT;
		}
		rd_kafka_poll(rk, 50);
	}
}

/* sb_kafka_create_missing creates the topics missing[0..cnt) and waits for the answer. */
static int
sb_kafka_create_missing(rd_kafka_t *rk, const struct sb_kafka_topic_spec **missing, int cnt,
                        int timeout_ms, char *err, size_t n)
{
	char errstr[256];
	rd_kafka_NewTopic_t *nt[64];
	rd_kafka_AdminOptions_t *opt = NULL;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	int made = 0, ret = SB_EIO;

	for (; made < cnt; made++) {
		const struct sb_kafka_topic_spec *t = missing[made];
		nt[made] = rd_kafka_NewTopic_new(t->name, t->partitions, t->replication, errstr,
		                                 sizeof(errstr));
		if (nt[made] == NULL) {
			snprintf(err, n, "topic %s: %s", t->name, errstr);
			ret = SB_EINVAL;
			goto done;
		}
		if (t->retention_ms != 0) {
			char ms[24];
			snprintf(ms, sizeof(ms), "%lld", t->retention_ms);
			if (rd_kafka_NewTopic_set_config(nt[made], "retention.ms", ms) !=
			    RD_KAFKA_RESP_ERR_NO_ERROR) {
				snprintf(err, n, "topic %s: cannot set retention.ms", t->name);
				made++;
				ret = SB_EINVAL;
				goto done;
			}
		}
	}
	opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof(errstr));
	rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, errstr, sizeof(errstr));
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, nt, (size_t)cnt, opt, q);
	ev = rd_kafka_queue_poll(q, timeout_ms + 500);
	if (ev == NULL) {
		snprintf(err, n, "creating topic %s: no answer within %d ms", missing[0]->name,
		         timeout_ms);
		ret = SB_ETIMEDOUT;
		goto done;
	}
	if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
		snprintf(err, n, "creating topic %s: %s", missing[0]->name,
		         rd_kafka_event_error_string(ev));
		ret = (e == RD_KAFKA_RESP_ERR__TIMED_OUT) ? SB_ETIMEDOUT : SB_EIO;
		goto done;
	}
	size_t rcnt = 0;
	const rd_kafka_topic_result_t **res =
	    rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &rcnt);
	for (size_t i = 0; i < rcnt; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR &&
		    e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			snprintf(err, n, "creating topic %s: %s",
			         rd_kafka_topic_result_name(res[i]),
			         rd_kafka_topic_result_error_string(res[i])
			             ? rd_kafka_topic_result_error_string(res[i])
			             : rd_kafka_err2str(e));
			ret = SB_EIO;
			goto done;
		}
		sb_log_kv(SB_LOG_INFO, "kafka topic created", "topic",
		          rd_kafka_topic_result_name(res[i]), NULL);
	}
	ret = 0;
done:
	if (ev)
		rd_kafka_event_destroy(ev);
	if (q)
		rd_kafka_queue_destroy(q);
	if (opt)
		rd_kafka_AdminOptions_destroy(opt);
	for (int i = 0; i < made; i++)
		rd_kafka_NewTopic_destroy(nt[i]);
	return ret;
}

int
sb_kafka_topic_name(const char *prefix, const char *base, char *buf, size_t n)
{
	if (base == NULL || buf == NULL || n == 0)
		return SB_EINVAL;
	int w = snprintf(buf, n, "%s%s", prefix != NULL ? prefix : "", base);
	return (w < 0 || (size_t)w >= n) ? SB_ERANGE : 0;
}

int
sb_kafka_ensure_topics(const char *brokers, const struct sb_kafka_topic_spec *specs, int tcnt,
                       int timeout_ms, char *err, size_t n)
{
	char errstr[512];
	const struct sb_kafka_topic_spec *missing[64];
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk = NULL;
	rd_kafka_resp_err_t e;
	int cnt = 0, ret = SB_EINVAL;
	long long deadline;

	if (err == NULL || n == 0)
		return SB_EINVAL;
	err[0] = '\0';
	if (brokers == NULL || brokers[0] == '\0' || specs == NULL || tcnt < 1 || timeout_ms < 1) {
		snprintf(err, n, "ensure topics: invalid argument");
		return SB_EINVAL;
	}
	for (int i = 0; i < tcnt; i++) {
		const struct sb_kafka_topic_spec *t = &specs[i];
		if (t->name == NULL || t->name[0] == '\0' || t->partitions == 0 ||
		    t->partitions < -1 || t->replication == 0 || t->replication < -1 ||
		    t->retention_ms < -1) {
			snprintf(err, n, "ensure topics: invalid spec for topic %s",
			         t->name ? t->name : "(null)");
			return SB_EINVAL;
		}
	}
	deadline = sb_kafka_now_ms() + timeout_ms;
	conf = sb__kafka_conf_new(brokers, NULL, NULL);
	if (conf == NULL) {
		snprintf(err, n, "ensure topics: bad broker list");
		return SB_EINVAL;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		snprintf(err, n, "ensure topics: %s", errstr);
		return SB_EINVAL;
	}
	/* all_topics=1: naming the topics could make a broker auto-create them. */
	e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, n, "kafka metadata from %s: %s", brokers, rd_kafka_err2str(e));
		ret = SB_EUNAVAIL;
		goto done;
	}
	for (int i = 0; i < tcnt; i++) {
		if (sb_kafka_md_has(md, specs[i].name))
			continue;
		if (cnt == (int)(sizeof(missing) / sizeof(missing[0]))) {
			snprintf(err, n, "ensure topics: more than %d missing topics", cnt);
			goto done;
		}
		missing[cnt++] = &specs[i];
	}
	if (cnt == 0) {
		ret = 0;
		goto done;
	}
	long long left = deadline - sb_kafka_now_ms();
	if (left < 100)
		left = 100;
	/* The admin call waits up to left + 500 ms: stay within timeout_ms overall. */
	left = left > 600 ? left - 500 : 100;
	ret = sb_kafka_create_missing(rk, missing, cnt, (int)left, err, n);
	if (ret == 0) {
		/* at least a second to see them listed, even when the creation used the budget */
		long long until =
		    deadline > sb_kafka_now_ms() + 1000 ? deadline : sb_kafka_now_ms() + 1000;
		ret = sb_kafka_wait_listed(rk, missing, cnt, until, err, n);
	}
done:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_destroy(rk);
	return ret;
}

int
sb_kafka_ping(rd_kafka_t *rk, int timeout_ms, char *detail, size_t n)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e;

	if (rk == NULL) {
		if (detail && n)
			snprintf(detail, n, "no kafka handle");
		return SB_EINVAL;
	}
	e = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms < 1 ? 1 : timeout_ms);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (detail && n)
			snprintf(detail, n, "kafka: %s", rd_kafka_err2str(e));
		return SB_EUNAVAIL;
	}
	if (detail && n)
		snprintf(detail, n, "%d brokers", md->broker_cnt);
	rd_kafka_metadata_destroy(md);
	return 0;
}
