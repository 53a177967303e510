/* audit.c: the audit stream (JSON log lines with "audit":true, mirrored into
 * auth.audit_events) and the service's metrics. */
#include "auth.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_buf.h"
#include "sb_log.h"

/* Where audit lines go: stdout for the service, stderr for the CLI (whose stdout is data). */
static int auth_audit_fd = STDOUT_FILENO;

void
auth_audit_set_fd(int fd)
{
	auth_audit_fd = fd;
}

void
auth_audit(struct sb_pg *pg, const char *event, ...)
{
	struct sb_buf line = SB_BUF_INIT, detail = SB_BUF_INIT;
	const char *client_id = NULL;
	struct timespec ts;
	struct tm tm;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	sb_buf_printf(&line,
	              "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"warn\","
	              "\"service\":\"auth\",\"audit\":true,\"msg\":\"audit\",\"event\":",
	              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	              tm.tm_sec, ts.tv_nsec / 1000000);
	sb_buf_json_str(&line, event);
	sb_buf_puts(&detail, "{");
	va_start(ap, event);
	for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
		const char *v = va_arg(ap, const char *);
		if (sb_log_is_secret_key(k))
			v = "***";
		if (strcmp(k, "client_id") == 0)
			client_id = v;
		sb_buf_puts(&line, ",");
		sb_buf_json_str(&line, k);
		sb_buf_puts(&line, ":");
		sb_buf_json_str(&line, v ? v : "");
		if (detail.len > 1)
			sb_buf_puts(&detail, ",");
		sb_buf_json_str(&detail, k);
		sb_buf_puts(&detail, ":");
		sb_buf_json_str(&detail, v ? v : "");
	}
	va_end(ap);
	sb_buf_puts(&line, "}\n");
	sb_buf_puts(&detail, "}");
	if (line.data != NULL) {
		const char *p = line.data;
		size_t left = line.len;
		while (left > 0) {
			ssize_t w = write(auth_audit_fd, p, left);
			if (w <= 0)
				break;
			p += w;
			left -= (size_t)w;
		}
	}
	if (pg != NULL && detail.data != NULL &&
	    auth_store_audit(pg, event, client_id, detail.data) != 0)
		sb_log_kv(SB_LOG_WARN, "audit event not stored", "event", event, "error",
		          sb_pg_errmsg(pg), NULL);
	sb_buf_free(&line);
	sb_buf_free(&detail);
}

void
auth_metrics_init(struct auth *a)
{
	struct sb_metric *issued = sb_metrics_counter(
	    "auth_tokens_issued_total", "Access tokens issued, by grant type.", "grant");
	struct sb_metric *fail = sb_metrics_counter("auth_client_auth_failures_total",
	                                            "Failed client authentications.", NULL);
	struct sb_metric *reuse = sb_metrics_counter(
	    "auth_refresh_reuse_total", "Refresh tokens presented again (family revoked).", NULL);
	struct sb_metric *rev =
	    sb_metrics_counter("auth_revocations_total", "Tokens revoked, by token type.", "type");
	a->issued_client = sb_metric_with(issued, AUTH_GRANT_CLIENT);
	a->issued_refresh = sb_metric_with(issued, AUTH_GRANT_REFRESH);
	a->issued_exchange = sb_metric_with(issued, "token_exchange");
	a->client_auth_failures = sb_metric_with(fail);
	a->refresh_reuse = sb_metric_with(reuse);
	a->revoked_access = sb_metric_with(rev, "access_token");
	a->revoked_refresh = sb_metric_with(rev, "refresh_token");
}
