/* sb_log.c: JSON-lines logger. One write(2) per line so lines from threads never interleave. */
#include "sb_log.h"
#include "sb_buf.h"
#include "sb_err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static struct {
	char service[64];
	atomic_int min;
	void (*sink)(const char *line, void *arg);
	void *sink_arg;
} sb_log_g = { "switchboard", SB_LOG_INFO, NULL, NULL };

static _Thread_local char sb_log_trace[64];
static _Thread_local char sb_log_request[64];

static const char *const sb_log_names[] = { "debug", "info", "warn", "error" };

void
sb_log_init(const char *service, enum sb_log_level min)
{
	snprintf(sb_log_g.service, sizeof(sb_log_g.service), "%s", service);
	atomic_store(&sb_log_g.min, min);
}

void
sb_log_set_level(enum sb_log_level min)
{
	atomic_store(&sb_log_g.min, min);
}

int
sb_log_level_parse(const char *s, enum sb_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, sb_log_names[i]) == 0) {
			*out = (enum sb_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = SB_LOG_WARN;
		return 0;
	}
	return SB_EINVAL;
}

bool
sb_log_enabled(enum sb_log_level lvl)
{
	return (int)lvl >= atomic_load(&sb_log_g.min);
}

void
sb_log_set_context(const char *trace_id, const char *request_id)
{
	snprintf(sb_log_trace, sizeof(sb_log_trace), "%s", trace_id ? trace_id : "");
	snprintf(sb_log_request, sizeof(sb_log_request), "%s", request_id ? request_id : "");
}

void
sb_log_set_sink(void (*fn)(const char *line, void *arg), void *arg)
{
	sb_log_g.sink = fn;
	sb_log_g.sink_arg = arg;
}

bool
sb_log_is_secret_key(const char *key)
{
	static const char *const words[] = { "password",      "passwd", "secret",  "token",
		                             "authorization", "cookie", "private", "credential",
		                             "apikey",        "api_key" };
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcasestr(key, words[i]) != NULL)
			return true;
	}
	return false;
}

/* sb_log_mask_param replaces the value of every "password" parameter in out (size n) by ***:
 * libpq's key=value form (password=x, password = 'x y') and a URL's query (?password=x&...). */
static void
sb_log_mask_param(char *out, unsigned long n)
{
	static const char key[] = "password";
	for (char *k = strstr(out, key); k != NULL; k = strstr(k + 1, key)) {
		if (k != out && strchr(" \t?&", k[-1]) == NULL)
			continue;
		char *v = k + sizeof(key) - 1;
		v += strspn(v, " \t");
		if (*v != '=')
			continue;
		v++;
		v += strspn(v, " \t");
		char *end = v;
		if (*end == '\'') {
			for (end++; *end != '\0' && *end != '\''; end++) {
				if (*end == '\\' && end[1] != '\0')
					end++;
			}
			if (*end == '\'')
				end++;
		} else {
			end += strcspn(end, " \t\r\n&");
		}
		char rest[1024];
		snprintf(rest, sizeof(rest), "%s", end);
		snprintf(v, n - (unsigned long)(v - out), "***%s", rest);
		k = v;
	}
}

void
sb_log_mask_url(const char *url, char *out, unsigned long n)
{
	snprintf(out, n, "%s", url);
	sb_log_mask_param(out, n);
	char *scheme = strstr(out, "://");
	if (scheme == NULL)
		return;
	char *auth = scheme + 3;
	char *at = strchr(auth, '@');
	char *slash = strchr(auth, '/');
	if (at == NULL || (slash != NULL && slash < at))
		return;
	char *colon = memchr(auth, ':', (size_t)(at - auth));
	if (colon == NULL)
		return;
	char rest[1024];
	snprintf(rest, sizeof(rest), "%s", at);
	snprintf(colon, n - (size_t)(colon - out), ":***%s", rest);
}

static void
sb_log_begin(struct sb_buf *b, enum sb_log_level lvl)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	sb_buf_printf(b, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",",
	              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	              tm.tm_sec, ts.tv_nsec / 1000000, sb_log_names[lvl]);
	sb_buf_puts(b, "\"service\":");
	sb_buf_json_str(b, sb_log_g.service);
	if (sb_log_trace[0]) {
		sb_buf_puts(b, ",\"trace_id\":");
		sb_buf_json_str(b, sb_log_trace);
	}
	if (sb_log_request[0]) {
		sb_buf_puts(b, ",\"request_id\":");
		sb_buf_json_str(b, sb_log_request);
	}
}

static void
sb_log_end(struct sb_buf *b)
{
	sb_buf_puts(b, "}\n");
	if (b->data == NULL)
		return;
	if (sb_log_g.sink) {
		b->data[b->len - 1] = '\0';
		sb_log_g.sink(b->data, sb_log_g.sink_arg);
		return;
	}
	const char *p = b->data;
	size_t left = b->len;
	while (left > 0) {
		ssize_t w = write(STDOUT_FILENO, p, left);
		if (w <= 0)
			break;
		p += w;
		left -= (size_t)w;
	}
}

void
sb_log(enum sb_log_level lvl, const char *fmt, ...)
{
	if (!sb_log_enabled(lvl))
		return;
	struct sb_buf b = SB_BUF_INIT;
	struct sb_buf msg = SB_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	sb_log_begin(&b, lvl);
	sb_buf_puts(&b, ",\"msg\":");
	sb_buf_json_str(&b, msg.data ? msg.data : "");
	sb_log_end(&b);
	sb_buf_free(&msg);
	sb_buf_free(&b);
}

void
sb_log_kv(enum sb_log_level lvl, const char *msg, ...)
{
	if (!sb_log_enabled(lvl))
		return;
	struct sb_buf b = SB_BUF_INIT;
	sb_log_begin(&b, lvl);
	sb_buf_puts(&b, ",\"msg\":");
	sb_buf_json_str(&b, msg);
	va_list ap;
	va_start(ap, msg);
	const char *k;
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		sb_buf_puts(&b, ",");
		sb_buf_json_str(&b, k);
		sb_buf_puts(&b, ":");
		if (v == NULL) {
			sb_buf_puts(&b, "null");
		} else if (sb_log_is_secret_key(k)) {
			sb_buf_puts(&b, "\"***\"");
		} else if (strstr(v, "://") != NULL) {
			char masked[1024];
			sb_log_mask_url(v, masked, sizeof(masked));
			sb_buf_json_str(&b, masked);
		} else {
			sb_buf_json_str(&b, v);
		}
	}
	va_end(ap);
	sb_log_end(&b);
	sb_buf_free(&b);
}
