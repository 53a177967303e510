/* topic.c: the telemetry topic, created if missing and then verified through the Admin API:
 * its partition count and replication from the cluster metadata, cleanup.policy and
 * retention.ms from DescribeConfigs. A topic that exists with other settings is not altered
 * (someone chose them): it is reported, and sb-ingest is not ready until an operator decides. */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

/* ing_topic_md looks topic up in fresh metadata: *parts gets its partition count (0 when
 * missing) and *repl the replica count of its first partition. */
static int
ing_topic_md(rd_kafka_t *rk, const char *topic, int timeout_ms, int *parts, int *repl, char *err,
             size_t n)
{
	const struct rd_kafka_metadata *md = NULL;
	/* Short, so that a stop is not held up by an unreachable broker; the caller retries. */
	rd_kafka_resp_err_t e =
	    rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms < 2000 ? timeout_ms : 2000);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, n, "metadata: %s", rd_kafka_err2str(e));
		return e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT
		           ? SB_EUNAVAIL
		           : SB_EIO;
	}
	*parts = 0;
	*repl = 0;
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strcmp(md->topics[i].topic, topic) == 0 &&
		    md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			*parts = md->topics[i].partition_cnt;
			if (md->topics[i].partition_cnt > 0)
				*repl = md->topics[i].partitions[0].replica_cnt;
		}
	}
	rd_kafka_metadata_destroy(md);
	return 0;
}

static rd_kafka_event_t *
ing_admin_wait(rd_kafka_queue_t *q, int timeout_ms)
{
	return rd_kafka_queue_poll(q, timeout_ms);
}

static int
ing_topic_create(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                 long long retention_ms, int timeout_ms, char *err, size_t n)
{
	char errstr[256], ms[24];
	int ret = SB_EIO;
	rd_kafka_NewTopic_t *nt =
	    rd_kafka_NewTopic_new(topic, partitions, replication, errstr, sizeof(errstr));
	if (!nt) {
		snprintf(err, n, "topic %s: %s", topic, errstr);
		return SB_EINVAL;
	}
	snprintf(ms, sizeof(ms), "%lld", retention_ms);
	if (rd_kafka_NewTopic_set_config(nt, "retention.ms", ms) ||
	    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", ING_CLEANUP)) {
		rd_kafka_NewTopic_destroy(nt);
		snprintf(err, n, "topic %s: cannot set its configuration", topic);
		return SB_EINVAL;
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *opt =
	    rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof(errstr));
	rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, errstr, sizeof(errstr));
	rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
	rd_kafka_event_t *ev = ing_admin_wait(q, timeout_ms + 1000);
	if (!ev) {
		snprintf(err, n, "topic %s: CreateTopics unanswered", topic);
		ret = SB_ETIMEDOUT;
	} else if (rd_kafka_event_error(ev)) {
		snprintf(err, n, "topic %s: CreateTopics: %s", topic,
		         rd_kafka_event_error_string(ev));
		ret = SB_EUNAVAIL;
	} else {
		size_t cnt = 0;
		const rd_kafka_topic_result_t **r = rd_kafka_CreateTopics_result_topics(
		    rd_kafka_event_CreateTopics_result(ev), &cnt);
		rd_kafka_resp_err_t te =
		    cnt ? rd_kafka_topic_result_error(r[0]) : RD_KAFKA_RESP_ERR__FAIL;
		if (te == RD_KAFKA_RESP_ERR_NO_ERROR ||
		    te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			ret = 0;
			if (te == RD_KAFKA_RESP_ERR_NO_ERROR)
				sb_log(
				    SB_LOG_INFO,
				    "ingest: created topic %s (%d partitions, retention.ms %lld, "
				    "cleanup.policy %s)",
				    topic, partitions, retention_ms, ING_CLEANUP);
		} else {
			snprintf(err, n, "topic %s: %s", topic,
			         cnt && rd_kafka_topic_result_error_string(r[0])
			             ? rd_kafka_topic_result_error_string(r[0])
			             : rd_kafka_err2str(te));
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	return ret;
}

/* ing_topic_configs reads cleanup.policy and retention.ms of topic into the buffers. */
static int
ing_topic_configs(rd_kafka_t *rk, const char *topic, int timeout_ms, char *cleanup, size_t cn,
                  char *retention, size_t rn, char *err, size_t n)
{
	char errstr[256];
	int ret = SB_EIO;
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *opt =
	    rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof(errstr));
	rd_kafka_DescribeConfigs(rk, &cr, 1, opt, q);
	rd_kafka_event_t *ev = ing_admin_wait(q, timeout_ms + 1000);
	cleanup[0] = retention[0] = '\0';
	if (!ev) {
		snprintf(err, n, "topic %s: DescribeConfigs unanswered", topic);
		ret = SB_ETIMEDOUT;
	} else if (rd_kafka_event_error(ev)) {
		snprintf(err, n, "topic %s: DescribeConfigs: %s", topic,
		         rd_kafka_event_error_string(ev));
		ret = SB_EUNAVAIL;
	} else {
		size_t cnt = 0, ncfg = 0;
		const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(
		    rd_kafka_event_DescribeConfigs_result(ev), &cnt);
		if (cnt < 1 || rd_kafka_ConfigResource_error(rs[0])) {
			snprintf(err, n, "topic %s: DescribeConfigs: %s", topic,
			         cnt ? rd_kafka_ConfigResource_error_string(rs[0]) : "no result");
		} else {
			const rd_kafka_ConfigEntry_t **ce =
			    rd_kafka_ConfigResource_configs(rs[0], &ncfg);
			for (size_t i = 0; i < ncfg; i++) {
				const char *k = rd_kafka_ConfigEntry_name(ce[i]);
				const char *v = rd_kafka_ConfigEntry_value(ce[i]);
				if (strcmp(k, "cleanup.policy") == 0)
					snprintf(cleanup, cn, "%s", v ? v : "");
				else if (strcmp(k, "retention.ms") == 0)
					snprintf(retention, rn, "%s", v ? v : "");
			}
			ret = 0;
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_queue_destroy(q);
	rd_kafka_ConfigResource_destroy(cr);
	return ret;
}

int
ing_topic_ensure(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                 long long retention_ms, int timeout_ms, char *err, size_t n)
{
	int parts = 0, repl = 0;
	int rc = ing_topic_md(rk, topic, timeout_ms, &parts, &repl, err, n);
	if (rc)
		return rc;
	if (parts == 0) {
		rc = ing_topic_create(rk, topic, partitions, replication, retention_ms, timeout_ms,
		                      err, n);
		if (rc)
			return rc;
		/* The new topic's metadata reaches every broker shortly after. */
		int64_t until = sb_time_mono_ms() + timeout_ms;
		while ((rc = ing_topic_md(rk, topic, timeout_ms, &parts, &repl, err, n)) == 0 &&
		       parts == 0 && sb_time_mono_ms() < until)
			rd_kafka_poll(rk, 100);
		if (rc)
			return rc;
		if (parts == 0) {
			snprintf(err, n, "topic %s: created but not in the metadata", topic);
			return SB_ETIMEDOUT;
		}
	}
	if (parts != partitions) {
		snprintf(err, n, "topic %s has %d partitions, the configuration says %d", topic,
		         parts, partitions);
		return SB_EPROTO;
	}
	if (replication > 0 && repl != replication) {
		snprintf(err, n, "topic %s has replication factor %d, the configuration says %d",
		         topic, repl, replication);
		return SB_EPROTO;
	}
	char cleanup[64], retention[32], want[32];
	rc = ing_topic_configs(rk, topic, timeout_ms, cleanup, sizeof(cleanup), retention,
	                       sizeof(retention), err, n);
	if (rc)
		return rc;
	snprintf(want, sizeof(want), "%lld", retention_ms);
	if (strcmp(cleanup, ING_CLEANUP) != 0) {
		snprintf(err, n, "topic %s has cleanup.policy \"%s\", want \"%s\"", topic, cleanup,
		         ING_CLEANUP);
		return SB_EPROTO;
	}
	if (strcmp(retention, want) != 0) {
		snprintf(err, n, "topic %s has retention.ms %s, the configuration says %s", topic,
		         retention, want);
		return SB_EPROTO;
	}
	snprintf(err, n, "%d partitions, replication %d, cleanup.policy %s, retention.ms %s", parts,
	         repl, cleanup, retention);
	return 0;
}
