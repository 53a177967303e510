/* sb_http_parse.c: the strict parser of HTTP/1.x request heads (untrusted input). */
#include "sb_http.h"
#include "sb_err.h"

#include <string.h>
#include <strings.h>

/* sb_http_tchar tells whether c may appear in a token (RFC 9110 5.6.2). */
static bool
sb_http_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* sb_http_line_end returns the CR of the CRLF ending the line at p, or NULL when a bare CR or
 * LF comes first. The head always ends with CRLF CRLF, so the scan stops inside it. */
static char *
sb_http_line_end(char *p, const char *end)
{
	for (; p < end; p++) {
		if (*p == '\n')
			return NULL;
		if (*p == '\r')
			return (p + 1 < end && p[1] == '\n') ? p : NULL;
	}
	return NULL;
}

/* sb_http_has_token tells whether the comma-separated list v holds token t (any case). */
static bool
sb_http_has_token(const char *v, const char *t)
{
	size_t tl = strlen(t);
	const char *p = v;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *s = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		if ((size_t)(p - s) == tl && strncasecmp(s, t, tl) == 0)
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

/* sb_http_parse_request_line handles "METHOD SP target SP HTTP/1.x" in line[0..n). */
static int
sb_http_parse_request_line(char *line, size_t n, struct sb__http_head *out)
{
	char *end = line + n, *p = line;
	while (p < end && sb_http_tchar((unsigned char)*p))
		p++;
	if (p == line || p >= end || *p != ' ')
		return SB_EPROTO;
	*p++ = '\0';
	out->method = line;
	char *target = p;
	while (p < end && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
		p++;
	if (p == target || p >= end || *p != ' ')
		return SB_EPROTO;
	*p++ = '\0';
	if (end - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
		return SB_EPROTO;
	out->minor = p[7] - '0';

	if (strcmp(target, "*") == 0) {
		if (strcmp(out->method, "OPTIONS") != 0)
			return SB_EPROTO;
	} else if (strncasecmp(target, "http://", 7) == 0 ||
	           strncasecmp(target, "https://", 8) == 0) {
		/* absolute-form: keep the path; the authority duplicates Host. */
		char *auth = strstr(target, "//") + 2;
		char *slash = strpbrk(auth, "/?");
		if (slash == NULL || *slash != '/')
			return SB_EPROTO;
		target = slash;
	} else if (target[0] != '/') {
		return SB_EPROTO;
	}
	char *q = strchr(target, '?');
	if (q != NULL)
		*q++ = '\0';
	out->path = target;
	out->query = q ? q : target + strlen(target); /* "" */
	return 0;
}

/* sb_http_note_header records what the server itself needs from header h. */
static int
sb_http_note_header(const struct sb_http_header *h, struct sb__http_head *out, int *hosts)
{
	const char *n = h->name, *v = h->value;
	if (strcasecmp(n, "content-length") == 0) {
		size_t len = strlen(v);
		if (len == 0 || len > 18 || strspn(v, "0123456789") != len)
			return SB_EINVAL;
		long long cl = 0;
		for (const char *p = v; *p; p++)
			cl = cl * 10 + (*p - '0');
		if (out->content_len >= 0 && out->content_len != cl)
			return SB_EINVAL;
		out->content_len = cl;
	} else if (strcasecmp(n, "transfer-encoding") == 0) {
		out->has_te = true;
	} else if (strcasecmp(n, "connection") == 0) {
		out->conn_close |= sb_http_has_token(v, "close");
		out->conn_keepalive |= sb_http_has_token(v, "keep-alive");
	} else if (strcasecmp(n, "expect") == 0) {
		out->expect_continue |= strcasecmp(v, "100-continue") == 0;
	} else if (strcasecmp(n, "host") == 0) {
		(*hosts)++;
	}
	return 0;
}

/* sb_http_parse_field splits "name: value" in line[0..n) into h. */
static int
sb_http_parse_field(char *line, size_t n, struct sb_http_header *h)
{
	char *end = line + n, *p = line;
	while (p < end && sb_http_tchar((unsigned char)*p))
		p++;
	if (p == line || p >= end || *p != ':')
		return SB_EPROTO; /* empty name, bad character, space before colon, obs-fold */
	*p++ = '\0';
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	char *v = p;
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return SB_EPROTO;
	}
	while (p > v && (p[-1] == ' ' || p[-1] == '\t'))
		p--;
	*p = '\0';
	h->name = line;
	h->value = v;
	return 0;
}

int
sb__http_parse_head(char *head, size_t len, struct sb_http_header *hdrs, size_t maxh,
                    struct sb__http_head *out)
{
	memset(out, 0, sizeof(*out));
	out->content_len = -1;
	const char *end = head + len;
	char *eol = sb_http_line_end(head, end);
	if (eol == NULL)
		return SB_EPROTO;
	int rc = sb_http_parse_request_line(head, (size_t)(eol - head), out);
	if (rc != 0)
		return rc;
	int hosts = 0;
	for (char *p = eol + 2; p < end;) {
		eol = sb_http_line_end(p, end);
		if (eol == NULL)
			return SB_EPROTO;
		if (eol == p)
			break; /* the empty line: end of the head */
		if (out->nheaders == maxh || out->nheaders == SB__HTTP_MAX_HEADERS)
			return SB_ERANGE;
		*eol = '\0';
		struct sb_http_header *h = &hdrs[out->nheaders];
		if ((rc = sb_http_parse_field(p, (size_t)(eol - p), h)) != 0)
			return rc;
		if ((rc = sb_http_note_header(h, out, &hosts)) != 0)
			return rc;
		out->nheaders++;
		p = eol + 2;
	}
	if (hosts > 1 || (out->minor == 1 && hosts == 0))
		return SB_EPROTO;
	if (out->has_te && out->content_len >= 0)
		return SB_EINVAL;
	return 0;
}
