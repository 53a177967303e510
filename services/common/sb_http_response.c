/* sb_http_response.c: writing responses: status line, headers, problem+json bodies. */
#include "sb_http.h"
#include "sb_err.h"
#include "sb_util_uuid.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const struct sb_http_status {
	int code;
	const char *reason;
} sb_http_statuses[] = {
	{ 100, "Continue" },
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 204, "No Content" },
	{ 206, "Partial Content" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 303, "See Other" },
	{ 304, "Not Modified" },
	{ 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 410, "Gone" },
	{ 411, "Length Required" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 415, "Unsupported Media Type" },
	{ 416, "Range Not Satisfiable" },
	{ 422, "Unprocessable Content" },
	{ 428, "Precondition Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 460, "Checksum Mismatch" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
};

const char *
sb_http_reason(int status)
{
	for (size_t i = 0; i < sizeof(sb_http_statuses) / sizeof(sb_http_statuses[0]); i++) {
		if (sb_http_statuses[i].code == status)
			return sb_http_statuses[i].reason;
	}
	return "Unknown";
}

/* Headers the server writes itself; a handler may not set them. */
static const char *const sb_http_reserved[] = { "content-length", "transfer-encoding", "connection",
	                                        "date" };

bool
sb__http_valid_extra(const struct sb_http_header *extra, size_t nextra)
{
	if (nextra > 0 && extra == NULL)
		return false;
	for (size_t i = 0; i < nextra; i++) {
		const char *n = extra[i].name, *v = extra[i].value;
		if (n == NULL || v == NULL || *n == '\0')
			return false;
		for (const unsigned char *p = (const unsigned char *)n; *p; p++) {
			if (*p <= 0x20 || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p))
				return false;
		}
		if (strpbrk(v, "\r\n") != NULL)
			return false;
		for (size_t j = 0; j < sizeof(sb_http_reserved) / sizeof(sb_http_reserved[0]);
		     j++) {
			if (strcasecmp(n, sb_http_reserved[j]) == 0)
				return false;
		}
	}
	return true;
}

/* sb_http_date returns the current IMF-fixdate, formatted at most once a second per thread. */
static const char *
sb_http_date(void)
{
	static _Thread_local time_t last = -1;
	static _Thread_local char text[40];
	time_t now = time(NULL);
	if (now != last) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return text;
}

int
sb__http_build_response(struct sb_buf *b, int status, const char *content_type,
                        const struct sb_http_header *extra, size_t nextra, const void *body,
                        size_t len, const struct sb__http_frame *f)
{
	bool head_only = f->head_only;
	bool bodyless = status == 204 || status == 304 || (status >= 100 && status < 200);
	int rc = sb_buf_reserve(b, 256 + (head_only || bodyless ? 0 : len));
	rc |= sb_buf_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, sb_http_reason(status),
	                    sb_http_date());
	if (f->server_name != NULL)
		rc |= sb_buf_printf(b, "Server: %s\r\n", f->server_name);
	if (content_type != NULL && !bodyless)
		rc |= sb_buf_printf(b, "Content-Type: %s\r\n", content_type);
	if (!bodyless)
		rc |= sb_buf_printf(b, "Content-Length: %zu\r\n", len);
	rc |= sb_buf_puts(b, "X-Content-Type-Options: nosniff\r\n");
	if (f->hsts)
		rc |= sb_buf_puts(b, "Strict-Transport-Security: max-age=31536000\r\n");
	if (f->close)
		rc |= sb_buf_puts(b, "Connection: close\r\n");
	else if (f->keepalive10)
		rc |= sb_buf_puts(b, "Connection: keep-alive\r\n");
	for (size_t i = 0; i < nextra; i++)
		rc |= sb_buf_printf(b, "%s: %s\r\n", extra[i].name, extra[i].value);
	rc |= sb_buf_append(b, "\r\n", 2);
	if (!head_only && !bodyless && len > 0)
		rc |= sb_buf_append(b, body, len);
	return rc ? SB_ENOMEM : 0;
}

void
sb_http_request_id(const char *value, char out[SB_HTTP_REQUEST_ID_MAX])
{
	size_t n = value != NULL ? strlen(value) : 0;
	bool ok = n > 0 && n < SB_HTTP_REQUEST_ID_MAX;
	for (size_t i = 0; ok && i < n; i++) {
		char c = value[i];
		ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		     c == '-' || c == '_' || c == '.';
	}
	if (ok) {
		memcpy(out, value, n + 1);
		return;
	}
	struct sb_uuid u;
	sb_uuid_v4(&u);
	sb_uuid_format(&u, out);
}

const char *
sb__http_raw_request_id(const char *buf, size_t len, char out[SB_HTTP_REQUEST_ID_MAX])
{
	static const char name[] = "x-request-id:";
	const size_t nl = sizeof(name) - 1;
	const char *end = buf + len;
	/* header lines start after a CRLF; the request line is never one */
	const char *p = buf != NULL ? memchr(buf, '\n', len) : NULL;
	while (p != NULL && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL || eol == p || eol[-1] != '\r')
			return NULL; /* the line is not whole (or not CRLF): nothing to trust */
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl, *e = eol - 1;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if (e == v || (size_t)(e - v) >= SB_HTTP_REQUEST_ID_MAX)
				return NULL;
			memcpy(out, v, (size_t)(e - v));
			out[e - v] = '\0';
			return out;
		}
		p = eol;
	}
	return NULL;
}

int
sb__http_problem_body(struct sb_buf *b, int status, const char *title, const char *detail,
                      const char *request_id)
{
	int rc = sb_buf_puts(b, "{\"type\":\"about:blank\",\"title\":");
	rc |= sb_buf_json_str(b, title ? title : sb_http_reason(status));
	rc |= sb_buf_printf(b, ",\"status\":%d", status);
	if (detail != NULL) {
		rc |= sb_buf_puts(b, ",\"detail\":");
		rc |= sb_buf_json_str(b, detail);
	}
	if (request_id != NULL) {
		rc |= sb_buf_puts(b, ",\"request_id\":");
		rc |= sb_buf_json_str(b, request_id);
	}
	rc |= sb_buf_puts(b, "}");
	return rc ? SB_ENOMEM : 0;
}

/* At most this many extra headers get X-Request-Id added in sb_http_respond_problem_extra. */
#define SB_HTTP_PROBLEM_EXTRA_MAX 15

int
sb_http_respond_problem_extra(struct sb_http_req *r, int status, const char *title,
                              const char *detail, const struct sb_http_header *extra, size_t nextra)
{
	char rid[SB_HTTP_REQUEST_ID_MAX];
	sb_http_request_id(sb_http_req_header(r, "X-Request-Id"), rid);
	struct sb_buf body = SB_BUF_INIT;
	if (sb__http_problem_body(&body, status, title, detail, rid) != 0) {
		sb_buf_free(&body);
		return sb_http_respond(r, 500, NULL, NULL, 0, NULL, 0);
	}
	struct sb_http_header h[SB_HTTP_PROBLEM_EXTRA_MAX + 1];
	size_t n = 0;
	if (nextra <= SB_HTTP_PROBLEM_EXTRA_MAX && (nextra == 0 || extra != NULL)) {
		for (; n < nextra; n++)
			h[n] = extra[n];
		h[n++] = (struct sb_http_header){ "X-Request-Id", rid };
		extra = h;
		nextra = n;
	}
	int rc = sb_http_respond(r, status, "application/problem+json", extra, nextra, body.data,
	                         body.len);
	sb_buf_free(&body);
	return rc;
}

int
sb_http_respond_problem(struct sb_http_req *r, int status, const char *title, const char *detail)
{
	return sb_http_respond_problem_extra(r, status, title, detail, NULL, 0);
}

const char *
sb_http_req_header(const struct sb_http_req *r, const char *name)
{
	if (r == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	}
	return NULL;
}
