/* notifier_drain_load.c: helper of bench/notifier_drain_bench.sh.
 *
 *   notifier_drain_load produce BROKERS TOPIC EVENTS CONVERSATIONS TENANT
 *       queues EVENTS events in TOPIC as the outbox relay writes them (sb_kafka_producer:
 *       idempotent, lz4; key = conversation id; CloudEvents headers ce_id (UUIDv7), ce_source
 *       /tenants/T/conversations/C, ce_type, ce_subject (the message id), ce_time, content-type,
 *       traceparent; protobuf payloads of proto/events/messages_events.proto): first one
 *       ConversationCreated per conversation (2-4 members), then MessageCreated events with
 *       200-byte contents, seq 1, 2, ... per conversation, round robin. Prints the counts.
 *
 *   notifier_drain_load wait OPS_PORT EVENTS TIMEOUT_S
 *       polls the notifier's /metrics every 10 ms until notifier_events_total (all types and
 *       results) reaches EVENTS; prints "first_ms=<when handled events were first seen>
 *       first_handled=<how many then> done_ms=<when all were> handled=<count>
 *       batches=<notifier_batch_events_count, 0 without it>", times in Unix ms. Exits 1 on
 *       timeout (after printing what it saw).
 *
 *   notifier_drain_load committed BROKERS TOPIC GROUP
 *       prints the committed offsets of consumer group GROUP over TOPIC's partitions, summed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "events/messages_events.pb-c.h"
#include "sb_err.h"
#include "sb_kafka.h"
#include "sb_log.h"
#include "sb_util_rand.h"
#include "sb_util_time.h"
#include "sb_util_uuid.h"

#define DL_CONTENT_BYTES 200

static void
dl_uuid(int v7, char out[SB_UUID_STR_LEN + 1])
{
	struct sb_uuid u;
	if ((v7 ? sb_uuid_v7(&u) : sb_uuid_v4(&u)) != 0) {
		fprintf(stderr, "no randomness\n");
		exit(2);
	}
	sb_uuid_format(&u, out);
}

static void
dl_traceparent(char out[56])
{
	unsigned char r[24];
	static const char hex[] = "0123456789abcdef";
	char h[49];
	if (sb_rand_bytes(r, sizeof(r)) != 0)
		memset(r, 7, sizeof(r));
	for (int i = 0; i < 24; i++) {
		h[2 * i] = hex[r[i] >> 4];
		h[2 * i + 1] = hex[r[i] & 15];
	}
	h[48] = '\0';
	snprintf(out, 56, "00-%.32s-%.16s-01", h, h + 32);
}

static int
dl_send(struct sb_kafka_producer *p, const char *topic, const char *conv, const char *tenant,
        const char *type, const char *subject, int64_t at_ms, const ProtobufCMessage *m)
{
	uint8_t buf[2048];
	char ce_id[SB_UUID_STR_LEN + 1], src[160], when[SB_TIME_RFC3339_LEN + 1], tp[56];
	size_t n = protobuf_c_message_get_packed_size(m);
	if (n > sizeof(buf))
		return -1;
	protobuf_c_message_pack(m, buf);
	dl_uuid(1, ce_id);
	dl_traceparent(tp);
	snprintf(src, sizeof(src), "/tenants/%s/conversations/%s", tenant, conv);
	sb_time_format_rfc3339(at_ms, when, sizeof(when));
	struct sb_cloudevent ce = { .id = ce_id,
		                    .source = src,
		                    .type = type,
		                    .subject = subject,
		                    .time = when,
		                    .traceparent = tp };
	for (;;) {
		int rv = sb_kafka_produce(p, topic, conv, strlen(conv), buf, n, &ce, NULL, NULL);
		if (rv != SB_EBUSY)
			return rv;
		struct timespec ts = { 0, 1000000L }; /* local queue full: let it drain */
		nanosleep(&ts, NULL);
	}
}

static int
dl_produce(char **argv)
{
	const char *brokers = argv[2], *topic = argv[3], *tenant = argv[6];
	int events = atoi(argv[4]), nconv = atoi(argv[5]);
	struct sb_kafka_producer *p = NULL;
	char(*convs)[SB_UUID_STR_LEN + 1] = NULL, (*users)[SB_UUID_STR_LEN + 1] = NULL;
	int64_t *seqs = NULL;
	char content[DL_CONTENT_BYTES + 1];
	int created = 0, messages = 0, rv = 1;

	if (events < 1 || nconv < 1 || nconv > events) {
		fprintf(stderr, "produce: 1 <= CONVERSATIONS <= EVENTS\n");
		return 2;
	}
	convs = calloc((size_t)nconv, sizeof(*convs));
	users = calloc((size_t)nconv * 4, sizeof(*users));
	seqs = calloc((size_t)nconv, sizeof(*seqs));
	if (convs == NULL || users == NULL || seqs == NULL)
		goto done;
	for (int i = 0; i < DL_CONTENT_BYTES; i++)
		content[i] = "abcdefghijklmnopqrstuvwxyz "[i % 27];
	content[DL_CONTENT_BYTES] = '\0';
	if (sb_kafka_producer_new(brokers, NULL, &p) != 0)
		goto done;
	int64_t t0 = sb_time_mono_ms();
	for (int c = 0; c < nconv; c++) {
		Sb__Events__ConversationCreated e = SB__EVENTS__CONVERSATION_CREATED__INIT;
		char *members[4];
		int nm = 2 + c % 3;
		dl_uuid(0, convs[c]);
		for (int k = 0; k < nm; k++) {
			dl_uuid(0, users[c * 4 + k]);
			members[k] = users[c * 4 + k];
		}
		e.conversation_id = convs[c];
		e.tenant_id = (char *)tenant;
		e.kind = nm == 2 ? "direct" : "group";
		e.title = nm == 2 ? "" : "Project room";
		e.member_ids = members;
		e.n_member_ids = (size_t)nm;
		e.created_by = members[0];
		e.created_at_ms = sb_time_now_ms();
		if (dl_send(p, topic, convs[c], tenant, "io.switchboard.conversation.created.v1",
		            NULL, e.created_at_ms, &e.base) != 0)
			goto done;
		created++;
	}
	for (int i = 0; created + messages < events; i++) {
		Sb__Events__MessageCreated e = SB__EVENTS__MESSAGE_CREATED__INIT;
		char mid[SB_UUID_STR_LEN + 1];
		int c = i % nconv, nm = 2 + c % 3;
		dl_uuid(1, mid);
		e.message_id = mid;
		e.conversation_id = convs[c];
		e.tenant_id = (char *)tenant;
		e.sender_id = users[c * 4 + i / nconv % nm];
		e.seq = ++seqs[c];
		e.content = content;
		e.content_type = "text/plain";
		e.metadata_json = "{}";
		e.created_at_ms = sb_time_now_ms();
		if (dl_send(p, topic, convs[c], tenant, "io.switchboard.message.created.v1", mid,
		            e.created_at_ms, &e.base) != 0)
			goto done;
		messages++;
	}
	if (sb_kafka_flush(p, 60000) != 0) {
		fprintf(stderr, "produce: not every event was delivered within 60 s\n");
		goto done;
	}
	printf("produced %d events (%d conversation.created, %d message.created) in %d "
	       "conversations to %s in %.2f s\n",
	       created + messages, created, messages, nconv, topic,
	       (double)(sb_time_mono_ms() - t0) / 1000.0);
	rv = 0;
done:
	if (rv != 0)
		fprintf(stderr, "produce: failed after %d events\n", created + messages);
	sb_kafka_producer_free(p);
	free(convs);
	free(users);
	free(seqs);
	return rv;
}

/* dl_metrics fetches /metrics of 127.0.0.1:port into buf (size n). Returns 0 or -1. */
static int
dl_metrics(int port, char *buf, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
		                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		                 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { 2, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		close(fd);
		return -1;
	}
	size_t got = 0;
	for (ssize_t r; got < n - 1 && (r = recv(fd, buf + got, n - 1 - got, 0)) > 0;)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
}

static double
dl_sum(const char *buf, const char *series)
{
	double sum = 0;
	size_t sl = strlen(series);
	for (const char *l = buf; l != NULL && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (strncmp(l, series, sl) == 0) {
			const char *v = strchr(l + sl, ' ');
			if (v != NULL)
				sum += strtod(v + 1, NULL);
		}
	return sum;
}

static int
dl_wait(char **argv)
{
	static char buf[1 << 20];
	int port = atoi(argv[2]);
	long long want = atoll(argv[3]);
	int64_t until = sb_time_mono_ms() + (int64_t)atoi(argv[4]) * 1000;
	int64_t first = 0, done = 0;
	double handled = 0, batches = 0, first_handled = 0;

	while (sb_time_mono_ms() < until) {
		if (dl_metrics(port, buf, sizeof(buf)) == 0) {
			handled = dl_sum(buf, "notifier_events_total{");
			batches = dl_sum(buf, "notifier_batch_events_count");
			if (handled > 0 && first == 0) {
				first = sb_time_now_ms();
				first_handled = handled;
			}
			if (handled >= (double)want) {
				done = sb_time_now_ms();
				break;
			}
		}
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	printf("first_ms=%lld first_handled=%.0f done_ms=%lld handled=%.0f batches=%.0f\n",
	       (long long)first, first_handled, (long long)done, handled, batches);
	return done != 0 ? 0 : 1;
}

/* dl_committed prints the committed offsets of GROUP over TOPIC's partitions, summed. */
static int
dl_committed(char **argv)
{
	const char *brokers = argv[2], *topic = argv[3], *group = argv[4];
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const rd_kafka_metadata_t *md = NULL;
	long long sum = 0;
	int rv = 1;
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) != 0 ||
	    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) != 0) {
		fprintf(stderr, "committed: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "committed: %s\n", err);
		return 1;
	}
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	if (rd_kafka_metadata(rk, 0, t, &md, 10000) != 0 || md->topic_cnt != 1 ||
	    md->topics[0].err != 0) {
		fprintf(stderr, "committed: no metadata for %s\n", topic);
		goto done;
	}
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id);
	if (rd_kafka_committed(rk, l, 10000) != 0) {
		fprintf(stderr, "committed: cannot read the offsets of %s\n", group);
		goto done;
	}
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].offset > 0)
			sum += l->elems[i].offset;
	printf("%lld\n", sum);
	rv = 0;
done:
	rd_kafka_topic_partition_list_destroy(l);
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	rd_kafka_destroy(rk);
	return rv;
}

int
main(int argc, char **argv)
{
	sb_log_set_level(SB_LOG_WARN);
	if (argc == 7 && strcmp(argv[1], "produce") == 0)
		return dl_produce(argv);
	if (argc == 5 && strcmp(argv[1], "wait") == 0)
		return dl_wait(argv);
	if (argc == 5 && strcmp(argv[1], "committed") == 0)
		return dl_committed(argv);
	fprintf(stderr,
	        "usage: %s produce BROKERS TOPIC EVENTS CONVERSATIONS TENANT\n"
	        "       %s wait OPS_PORT EVENTS TIMEOUT_S\n"
	        "       %s committed BROKERS TOPIC GROUP\n",
	        argv[0], argv[0], argv[0]);
	return 2;
}
