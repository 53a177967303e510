/* reply.c: answers. Every answer leaves through files_reply_send or files_reply_problem, which
 * add what every answer carries: Tus-Resumable on tus paths and, for a browser from an allowed
 * origin, the CORS headers. */
#include "files.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sb_log.h"

#define FILES_EXPOSE                                                                               \
	"Upload-Offset, Upload-Length, Upload-Defer-Length, Upload-Metadata, Upload-Expires, "     \
	"Location, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, "                      \
	"Tus-Checksum-Algorithm, Content-Range, Content-Disposition, ETag, Accept-Ranges, "        \
	"Retry-After, X-Request-Id"

/* files_origin_allowed tells whether origin is in the comma-separated list (or it is "*"). */
static bool
files_origin_allowed(const char *list, const char *origin)
{
	size_t olen = strlen(origin);
	const char *p = list;
	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e != '\0' && *e != ',')
			e++;
		size_t n = (size_t)(e - p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if ((n == 1 && p[0] == '*') || (n == olen && n > 0 && memcmp(p, origin, n) == 0))
			return true;
		p = e;
	}
	return false;
}

void
files_reply_add(struct files_reply *rp, const char *name, const char *value)
{
	size_t len = strlen(value);
	if (rp->n == FILES_HDR_MAX || rp->used + len + 1 > sizeof(rp->store))
		return;
	char *dst = rp->store + rp->used;
	memcpy(dst, value, len + 1);
	rp->used += len + 1;
	rp->h[rp->n].name = name;
	rp->h[rp->n].value = dst;
	rp->n++;
}

void
files_reply_addf(struct files_reply *rp, const char *name, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	files_reply_add(rp, name, buf);
}

void
files_reply_init(struct files_reply *rp, struct files *f, struct sb_http_req *r, bool tus)
{
	rp->f = f;
	rp->req = r;
	rp->n = 0;
	rp->used = 0;
	rp->status = 0;
	if (tus)
		files_reply_add(rp, "Tus-Resumable", FILES_TUS_VERSION);
	const char *origin = sb_http_req_header(r, "Origin");
	if (origin != NULL && origin[0] != '\0' && strpbrk(origin, "\r\n") == NULL &&
	    files_origin_allowed(f->cfg->allowed_origins, origin)) {
		files_reply_add(rp, "Access-Control-Allow-Origin", origin);
		files_reply_add(rp, "Vary", "Origin");
		files_reply_add(rp, "Access-Control-Expose-Headers", FILES_EXPOSE);
	}
}

void
files_reply_expires(struct files_reply *rp, int64_t ms)
{
	if (ms <= 0)
		return;
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[64];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	files_reply_add(rp, "Upload-Expires", buf);
}

void
files_metrics_init(struct files *f)
{
	f->m.requests = sb_metrics_counter(
	    "files_requests_total", "Requests of the upload edge answered, by method and status.",
	    "method,status");
	f->m.bytes = sb_metric_with(sb_metrics_counter(
	    "files_bytes_stored_total", "Bytes written durably to storage for uploads.", NULL));
	struct sb_metric *up =
	    sb_metrics_counter("files_uploads_total", "Uploads by event.", "event");
	f->m.created = sb_metric_with(up, "created");
	f->m.completed = sb_metric_with(up, "completed");
	f->m.terminated = sb_metric_with(up, "terminated");
	f->m.chunks = sb_metric_with(sb_metrics_counter(
	    "files_chunks_stored_total", "Chunks of the chunk API stored durably.", NULL));
	f->m.merges = sb_metrics_counter(
	    "files_merges_total",
	    "Merge requests handled by the merge worker, by result: completed, failed (the "
	    "upload is FAILED), retried (an attempt failed), noop (nothing to do), invalid.",
	    "result");
	static const double merge_buckets[] = { 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300 };
	f->m.merge_seconds = sb_metric_with(sb_metrics_histogram(
	    "files_merge_duration_seconds", "Duration of a successful merge, retries included.",
	    NULL, merge_buckets, sizeof(merge_buckets) / sizeof(merge_buckets[0])));
}

/* files_reply_count counts an answer (methods outside the served ones as "other"). */
static void
files_reply_count(struct files_reply *rp, int status)
{
	static const char *const methods[] = { "GET",    "HEAD",    "POST", "PATCH",
		                               "DELETE", "OPTIONS", "PUT" };
	const char *m = "other";
	char st[8];
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(rp->req->method, methods[i]) == 0)
			m = methods[i];
	snprintf(st, sizeof(st), "%d", status);
	rp->status = status;
	if (rp->f != NULL && rp->f->m.requests != NULL)
		sb_series_inc(sb_metric_with(rp->f->m.requests, m, st));
}

void
files_reply_send(struct files_reply *rp, int status, const char *ctype, const void *body,
                 size_t len)
{
	files_reply_count(rp, status);
	sb_http_respond(rp->req, status, ctype, rp->h, rp->n, body, len);
	rp->req = NULL;
}

void
files_reply_problem(struct files_reply *rp, int status, const char *detail)
{
	char st[8];
	snprintf(st, sizeof(st), "%d", status);
	files_reply_count(rp, status);
	sb_log_kv(status >= 500 ? SB_LOG_WARN : SB_LOG_INFO, "request refused", "status", st,
	          "method", rp->req->method, "path", rp->req->path, "detail", detail, NULL);
	sb_http_respond_problem_extra(rp->req, status, NULL, detail, rp->h, rp->n);
	rp->req = NULL;
}
