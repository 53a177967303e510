/* sb_kafka_consumer.c: a consumer-group member with manual, synchronous commits. */
#include "sb_kafka.h"
#include "sb_err.h"
#include "sb_log.h"

#include <stdlib.h>

struct sb_kafka_consumer {
	rd_kafka_t *rk;
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

int
sb_kafka_consumer_new(const char *brokers, const char *group_id, const char *const *topics,
                      const char *const *conf, struct sb_kafka_consumer **out)
{
	char errstr[512];
	struct sb_kafka_consumer *c = NULL;
	rd_kafka_conf_t *kc = NULL;
	rd_kafka_topic_partition_list_t *subs = NULL;
	rd_kafka_resp_err_t err;
	int ret = SB_EINVAL;
	int n = 0;

	if (brokers == NULL || brokers[0] == '\0' || group_id == NULL || group_id[0] == '\0' ||
	    topics == NULL || topics[0] == NULL || out == NULL)
		return SB_EINVAL;
	kc = sb__kafka_conf_new(brokers, sb_kafka_consumer_defaults, conf);
	if (kc == NULL)
		return SB_EINVAL;
	if (rd_kafka_conf_set(kc, "group.id", group_id, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		sb_log_kv(SB_LOG_ERROR, "bad kafka group id", "error", errstr, NULL);
		goto fail;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		ret = SB_ENOMEM;
		goto fail;
	}
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
	rd_kafka_consumer_close(c->rk);
	rd_kafka_destroy(c->rk);
	free(c);
}
