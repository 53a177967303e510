/* sb_kafka_ce.c: CloudEvents Kafka binding headers, header lookup, and librdkafka conf set-up. */
#include "sb_kafka.h"
#include "sb_err.h"
#include "sb_log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int
sb_kafka_ce_time_now(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	char date[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	int len = snprintf(buf, n, "%s.%03ldZ", date, ts.tv_nsec / 1000000);
	if (len < 0 || (size_t)len >= n)
		return SB_ERANGE;
	return 0;
}

/* sb_kafka_ce_add adds one header whose value is a C string; NULL values are skipped. */
static int
sb_kafka_ce_add(rd_kafka_headers_t *h, const char *name, const char *value)
{
	if (value == NULL)
		return 0;
	if (rd_kafka_header_add(h, name, -1, value, (ssize_t)strlen(value)) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return SB_EIO;
	return 0;
}

int
sb_kafka_ce_headers(const struct sb_cloudevent *ce, rd_kafka_headers_t **out)
{
	char now[32];
	const char *time_s;

	if (ce == NULL || out == NULL || ce->id == NULL || ce->id[0] == '\0' ||
	    ce->source == NULL || ce->source[0] == '\0' || ce->type == NULL || ce->type[0] == '\0')
		return SB_EINVAL;
	time_s = ce->time;
	if (time_s == NULL) {
		if (sb_kafka_ce_time_now(now, sizeof(now)) != 0)
			return SB_ERANGE;
		time_s = now;
	}
	const struct {
		const char *name;
		const char *value;
	} rows[] = {
		{ "ce_specversion", "1.0" },
		{ "ce_id", ce->id },
		{ "ce_source", ce->source },
		{ "ce_type", ce->type },
		{ "ce_subject", ce->subject },
		{ "ce_time", time_s },
		{ "content-type",
		  ce->content_type ? ce->content_type : SB_KAFKA_CONTENT_TYPE_DEFAULT },
		{ "traceparent", ce->traceparent },
	};
	rd_kafka_headers_t *h = rd_kafka_headers_new(sizeof(rows) / sizeof(rows[0]));
	if (h == NULL)
		return SB_ENOMEM;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (sb_kafka_ce_add(h, rows[i].name, rows[i].value) != 0) {
			rd_kafka_headers_destroy(h);
			return SB_EIO;
		}
	}
	*out = h;
	return 0;
}

int
sb_kafka_header(const rd_kafka_message_t *msg, const char *name, char *buf, size_t n)
{
	rd_kafka_headers_t *h = NULL;
	const void *v = NULL;
	size_t len = 0;

	if (msg == NULL || name == NULL || buf == NULL || n == 0)
		return SB_EINVAL;
	/* rd_kafka_message_headers takes a non-const message but only reads (parses lazily). */
	if (rd_kafka_message_headers((rd_kafka_message_t *)msg, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return SB_ENOTFOUND;
	if (rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || v == NULL)
		return SB_ENOTFOUND;
	if (len >= n || len > (size_t)2147483647)
		return SB_ERANGE;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return (int)len;
}

/* sb_kafka_conf_apply sets each key/value pair of kv; logs and fails on the first bad one. */
static int
sb_kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *kv)
{
	char errstr[256];

	for (; kv != NULL && kv[0] != NULL; kv += 2) {
		if (kv[1] == NULL) {
			sb_log_kv(SB_LOG_ERROR, "kafka setting has no value", "key", kv[0], NULL);
			return SB_EINVAL;
		}
		if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof(errstr)) !=
		    RD_KAFKA_CONF_OK) {
			sb_log_kv(SB_LOG_ERROR, "bad kafka setting", "key", kv[0], "error", errstr,
			          NULL);
			return SB_EINVAL;
		}
	}
	return 0;
}

/* sb_kafka_on_log turns librdkafka's own log lines (syslog levels) into JSON lines. */
static void
sb_kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	/* A refused connection is logged at level 3; librdkafka retries it: a warning for us. */
	enum sb_log_level lvl = level <= 2   ? SB_LOG_ERROR
	                        : level <= 4 ? SB_LOG_WARN
	                        : level <= 6 ? SB_LOG_INFO
	                                     : SB_LOG_DEBUG;
	if (sb_log_enabled(lvl))
		sb_log_kv(lvl, buf, "component", "librdkafka", "client", rd_kafka_name(rk),
		          "facility", fac, NULL);
}

rd_kafka_conf_t *
sb__kafka_conf_new(const char *brokers, const char *const *defaults, const char *const *extra)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *const boot[] = { "bootstrap.servers", brokers, NULL };

	if (conf == NULL)
		return NULL;
	rd_kafka_conf_set_log_cb(conf, sb_kafka_on_log);
	if (sb_kafka_conf_apply(conf, boot) != 0 || sb_kafka_conf_apply(conf, defaults) != 0 ||
	    sb_kafka_conf_apply(conf, extra) != 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}
