/* sb_http_parse_fuzz: libFuzzer target for the HTTP/1.x request head parser
 * (services/common/sb_http_parse.c, sb__http_parse_head), fed as the server feeds it: leading
 * empty lines skipped, the head cut after the first CRLF CRLF (one is added when the input has
 * none), in a buffer of exactly that size. The first byte sets how many header slots the
 * caller gives (0-103; the parser's own cap is 100).
 *
 * Properties of an accepted head:
 *   - every string points into the head; the method and header names are tokens; the path is
 *     "*" (OPTIONS only) or starts with '/', holds no '?', and path and query are visible ASCII;
 *     header values hold no control character but HTAB and no surrounding blanks;
 *   - what the server acts on matches the headers (independent scans): Content-Length (every
 *     copy equal), Transfer-Encoding (never with Content-Length), Connection close/keep-alive
 *     tokens, Expect: 100-continue, exactly one Host for HTTP/1.1 and at most one for 1.0;
 *   - the head written back in origin form from what was parsed parses to the same result.
 * A rejected head gives SB_EPROTO, SB_ERANGE (only when the header slots ran out) or
 * SB_EINVAL. */
#include "fuzz.h"

#include <strings.h>

#include "sb_err.h"
#include "sb_http.h"

#define FZ_MAXH (SB__HTTP_MAX_HEADERS + 3)

static bool
fz_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
fz_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!fz_tchar((unsigned char)*s))
			return false;
	return true;
}

static bool
fz_visible(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static bool
fz_inside(const char *p, const char *buf, size_t len)
{
	return p >= buf && p < buf + len;
}

/* fz_list_has tells whether the comma-separated list v names t (any case), split here by
 * strtok on a copy rather than by the parser's scanner. */
static bool
fz_list_has(const char *v, const char *t)
{
	char *copy = strdup(v), *save = NULL;
	bool found = false;
	for (char *e = strtok_r(copy, ",", &save); e && !found; e = strtok_r(NULL, ",", &save)) {
		e += strspn(e, " \t");
		size_t n = strcspn(e, " \t");
		found = n == strlen(t) && strncasecmp(e, t, n) == 0;
	}
	free(copy);
	return found;
}

struct fz_result {
	int rc;
	struct sb__http_head h;
	struct sb_http_header *hdrs;
};

static void
fz_parse(const char *head, size_t len, size_t maxh, char **buf, struct fz_result *r)
{
	*buf = fz_dup((const uint8_t *)head, len);
	r->hdrs = calloc(maxh ? maxh : 1, sizeof(*r->hdrs));
	CHECK(r->hdrs != NULL);
	r->rc = sb__http_parse_head(*buf, len, r->hdrs, maxh, &r->h);
}

/* fz_check_accepted checks the invariants of an accepted head buf[0..len). */
static void
fz_check_accepted(const char *buf, size_t len, size_t maxh, const struct fz_result *r)
{
	const struct sb__http_head *h = &r->h;
	CHECK(h->nheaders <= maxh && h->nheaders <= SB__HTTP_MAX_HEADERS);
	CHECK(fz_inside(h->method, buf, len) && fz_token(h->method));
	CHECK(fz_inside(h->path, buf, len) && fz_visible(h->path) && strchr(h->path, '?') == NULL);
	CHECK(h->path[0] == '/' ||
	      (strcmp(h->path, "*") == 0 && strcmp(h->method, "OPTIONS") == 0));
	CHECK(fz_inside(h->query, buf, len) && fz_visible(h->query));
	CHECK(h->minor == 0 || h->minor == 1);
	long long cl = -1;
	bool te = false, close = false, keepalive = false, cont = false;
	int hosts = 0;
	for (size_t i = 0; i < h->nheaders; i++) {
		const char *n = r->hdrs[i].name, *v = r->hdrs[i].value;
		CHECK(fz_inside(n, buf, len) && fz_inside(v, buf, len) && fz_token(n));
		size_t vl = strlen(v);
		for (size_t k = 0; k < vl; k++)
			CHECK(((unsigned char)v[k] >= 0x20 || v[k] == '\t') && v[k] != 0x7f);
		CHECK(vl == 0 ||
		      (v[0] != ' ' && v[0] != '\t' && v[vl - 1] != ' ' && v[vl - 1] != '\t'));
		if (strcasecmp(n, "Content-Length") == 0) {
			char *end = NULL;
			CHECK(vl >= 1 && vl <= 18 && strspn(v, "0123456789") == vl);
			long long x = strtoll(v, &end, 10);
			CHECK(cl < 0 || cl == x);
			cl = x;
		}
		te |= strcasecmp(n, "Transfer-Encoding") == 0;
		hosts += strcasecmp(n, "Host") == 0;
		if (strcasecmp(n, "Connection") == 0) {
			close |= fz_list_has(v, "close");
			keepalive |= fz_list_has(v, "keep-alive");
		}
		cont |= strcasecmp(n, "Expect") == 0 && strcasecmp(v, "100-continue") == 0;
	}
	CHECK(h->content_len == cl);
	CHECK(h->has_te == te && !(te && cl >= 0));
	CHECK(h->conn_close == close && h->conn_keepalive == keepalive);
	CHECK(h->expect_continue == cont);
	CHECK(hosts <= 1 && (h->minor == 0 || hosts == 1));
}

/* fz_write_back writes the parsed head in origin form. */
static char *
fz_write_back(const struct fz_result *r, size_t *len)
{
	size_t cap = 64 + strlen(r->h.method) + strlen(r->h.path) + strlen(r->h.query);
	for (size_t i = 0; i < r->h.nheaders; i++)
		cap += strlen(r->hdrs[i].name) + strlen(r->hdrs[i].value) + 4;
	char *out = malloc(cap);
	CHECK(out != NULL);
	int n = snprintf(out, cap, "%s %s%s%s HTTP/1.%d\r\n", r->h.method, r->h.path,
	                 r->h.query[0] ? "?" : "", r->h.query, r->h.minor);
	for (size_t i = 0; i < r->h.nheaders; i++)
		n += snprintf(out + n, cap - (size_t)n, "%s: %s\r\n", r->hdrs[i].name,
		              r->hdrs[i].value);
	n += snprintf(out + n, cap - (size_t)n, "\r\n");
	*len = (size_t)n;
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t maxh = data[0] % (FZ_MAXH + 1);
	data++, size--;
	while (size > 0 && (*data == '\r' || *data == '\n'))
		data++, size--; /* the server skips empty lines before a request */
	if (size == 0)
		return 0;
	const uint8_t *e = memmem(data, size, "\r\n\r\n", 4);
	size_t hlen = e ? (size_t)(e - data) + 4 : size + 4;
	char *head = malloc(hlen);
	CHECK(head != NULL);
	memcpy(head, data, e ? hlen : size);
	if (e == NULL)
		memcpy(head + size, "\r\n\r\n", 4);

	char *buf = NULL;
	struct fz_result r;
	fz_parse(head, hlen, maxh, &buf, &r);
	if (r.rc != 0) {
		CHECK(r.rc == SB_EPROTO || r.rc == SB_ERANGE || r.rc == SB_EINVAL);
		if (r.rc == SB_ERANGE && maxh < SB__HTTP_MAX_HEADERS) {
			/* out of slots: with the parser's full allowance it gets past that point */
			char *buf2 = NULL;
			struct fz_result r2;
			fz_parse(head, hlen, SB__HTTP_MAX_HEADERS, &buf2, &r2);
			CHECK(r2.rc != 0 || r2.h.nheaders > maxh);
			free(buf2);
			free(r2.hdrs);
		}
	} else {
		fz_check_accepted(buf, hlen, maxh, &r);
		size_t len2;
		char *again = fz_write_back(&r, &len2);
		char *buf2 = NULL;
		struct fz_result r2;
		fz_parse(again, len2, maxh, &buf2, &r2);
		CHECK(r2.rc == 0);
		CHECK(strcmp(r2.h.method, r.h.method) == 0 && strcmp(r2.h.path, r.h.path) == 0 &&
		      strcmp(r2.h.query, r.h.query) == 0 && r2.h.minor == r.h.minor);
		CHECK(r2.h.nheaders == r.h.nheaders && r2.h.content_len == r.h.content_len &&
		      r2.h.has_te == r.h.has_te && r2.h.conn_close == r.h.conn_close &&
		      r2.h.conn_keepalive == r.h.conn_keepalive &&
		      r2.h.expect_continue == r.h.expect_continue);
		for (size_t i = 0; i < r.h.nheaders; i++)
			CHECK(strcmp(r2.hdrs[i].name, r.hdrs[i].name) == 0 &&
			      strcmp(r2.hdrs[i].value, r.hdrs[i].value) == 0);
		free(again);
		free(buf2);
		free(r2.hdrs);
	}
	free(buf);
	free(r.hdrs);
	free(head);
	return 0;
}
