/* sb_httpc_parse.c: the client's parsers of what a server sends: the response head, header
 * lookup and the chunked body decoder (RFC 9112). No I/O; fuzzed by sb_httpc_fuzz. */
#include "sb_httpc.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "sb_err.h"
#include "sb_util_hex.h"

/* httpc_tchar tells whether c is a token character (RFC 9110 section 5.6.2). */
static bool
httpc_tchar(unsigned char c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* httpc_trim narrows [*s, *e) to exclude leading and trailing spaces and tabs. */
static void
httpc_trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

/* httpc_list_has tells whether the comma-separated list [s, e) has the element word (any case). */
static bool
httpc_list_has(const char *s, const char *e, const char *word)
{
	size_t wl = strlen(word);
	while (s < e) {
		const char *c = memchr(s, ',', (size_t)(e - s)), *ee = c ? c : e, *ss = s;
		httpc_trim(&ss, &ee);
		if ((size_t)(ee - ss) == wl && strncasecmp(ss, word, wl) == 0)
			return true;
		s = c ? c + 1 : e;
	}
	return false;
}

/* httpc_te_chunked checks a Transfer-Encoding value: 1 when its last coding is chunked and no
 * other coding appears (we decode none), SB_EPROTO otherwise. */
static int
httpc_te_chunked(const char *s, const char *e)
{
	int n = 0;
	while (s < e) {
		const char *c = memchr(s, ',', (size_t)(e - s)), *ee = c ? c : e, *ss = s;
		httpc_trim(&ss, &ee);
		if (ee > ss) {
			if ((size_t)(ee - ss) != 7 || strncasecmp(ss, "chunked", 7) != 0 || n > 0)
				return SB_EPROTO;
			n++;
		}
		s = c ? c + 1 : e;
	}
	return n == 1 ? 1 : SB_EPROTO;
}

/* httpc_clen parses a Content-Length value: digits only (a list of equal values is allowed by
 * RFC 9110 section 8.6), at most 18 digits. Returns 0 and *out, or SB_EPROTO. */
static int
httpc_clen(const char *s, const char *e, int64_t *out)
{
	int64_t v = -1;
	while (s < e) {
		const char *c = memchr(s, ',', (size_t)(e - s)), *ee = c ? c : e, *ss = s;
		httpc_trim(&ss, &ee);
		if (ee == ss || ee - ss > 18)
			return SB_EPROTO;
		int64_t x = 0;
		for (const char *p = ss; p < ee; p++) {
			if (*p < '0' || *p > '9')
				return SB_EPROTO;
			x = x * 10 + (*p - '0');
		}
		if (v >= 0 && x != v)
			return SB_EPROTO;
		v = x;
		s = c ? c + 1 : e;
	}
	if (v < 0)
		return SB_EPROTO;
	*out = v;
	return 0;
}

int
sb_httpc_parse_head(const char *buf, size_t n, struct sb_httpc_head *h)
{
	const char *end = NULL;
	size_t lim = n < SB_HTTPC_HEAD_MAX ? n : SB_HTTPC_HEAD_MAX;
	for (size_t i = 0; i + 3 < lim; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
		    buf[i + 3] == '\n') {
			end = buf + i + 4;
			break;
		}
	/* What is there so far must already be a status line's beginning. */
	static const char proto[] = "HTTP/1.";
	if (memcmp(buf, proto, n < 7 ? n : 7) != 0)
		return SB_EPROTO;
	if (end == NULL)
		return n >= SB_HTTPC_HEAD_MAX ? SB_EPROTO : 0;
	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	h->len = (size_t)(end - buf);
	/* Status line: "HTTP/1.x SP DDD SP reason CRLF" (the reason may be empty; some servers
	 * omit the space before an empty one). */
	const char *p = buf + 7, *eol = memmem(buf, h->len, "\r\n", 2);
	if (eol == NULL || eol - buf < 12 || (*p != '0' && *p != '1') || p[1] != ' ' ||
	    !isdigit((unsigned char)p[2]) || !isdigit((unsigned char)p[3]) ||
	    !isdigit((unsigned char)p[4]) || (p + 5 < eol && p[5] != ' '))
		return SB_EPROTO;
	h->minor = *p - '0';
	h->status = (p[2] - '0') * 100 + (p[3] - '0') * 10 + (p[4] - '0');
	if (h->status < 100 || h->status > 599)
		return SB_EPROTO;
	for (const char *q = p + 5; q < eol; q++)
		if (((unsigned char)*q < ' ' && *q != '\t') || *q == 0x7f)
			return SB_EPROTO;
	bool keep_alive = false, te = false;
	h->close = h->minor == 0;
	for (const char *l = eol + 2; l < end - 2;) {
		const char *le = l;
		while (le < end - 2 && !(le[0] == '\r' && le[1] == '\n'))
			le++;
		const char *colon = memchr(l, ':', (size_t)(le - l));
		if (colon == NULL || colon == l)
			return SB_EPROTO;
		for (const char *q = l; q < colon; q++)
			if (!httpc_tchar((unsigned char)*q))
				return SB_EPROTO;
		const char *vs = colon + 1, *ve = le;
		for (const char *q = vs; q < ve; q++)
			if (((unsigned char)*q < ' ' && *q != '\t') || *q == 0x7f)
				return SB_EPROTO;
		httpc_trim(&vs, &ve);
		size_t nl = (size_t)(colon - l);
		if (nl == 14 && strncasecmp(l, "content-length", 14) == 0) {
			int64_t v;
			if (httpc_clen(vs, ve, &v) != 0 ||
			    (h->content_length >= 0 && v != h->content_length))
				return SB_EPROTO;
			h->content_length = v;
		} else if (nl == 17 && strncasecmp(l, "transfer-encoding", 17) == 0) {
			if (te || httpc_te_chunked(vs, ve) != 1)
				return SB_EPROTO;
			te = h->chunked = true;
		} else if (nl == 10 && strncasecmp(l, "connection", 10) == 0) {
			if (httpc_list_has(vs, ve, "close"))
				h->close = true;
			if (httpc_list_has(vs, ve, "keep-alive"))
				keep_alive = true;
		}
		l = le + 2;
	}
	if (h->chunked && h->content_length >= 0)
		return SB_EPROTO; /* RFC 9112 6.3: a sign of smuggling; refuse */
	if (h->minor == 0 && keep_alive)
		h->close = false;
	return 1;
}

const char *
sb_httpc_header(const char *head, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *end = head + n, *l = memchr(head, '\n', n);
	if (l == NULL)
		return NULL;
	for (l++; l < end;) {
		const char *le = memchr(l, '\n', (size_t)(end - l));
		if (le == NULL)
			le = end;
		const char *e = le > l && le[-1] == '\r' ? le - 1 : le;
		if ((size_t)(e - l) > nl && l[nl] == ':' && strncasecmp(l, name, nl) == 0) {
			const char *vs = l + nl + 1, *ve = e;
			httpc_trim(&vs, &ve);
			*vlen = (size_t)(ve - vs);
			return vs;
		}
		l = le + 1;
	}
	return NULL;
}

enum {
	CH_SIZE = 0, /* hex digits of a chunk size */
	CH_EXT,      /* after the size: blanks, extensions, until CR */
	CH_SIZE_LF,  /* the LF of the size line */
	CH_DATA,     /* chunk data */
	CH_DATA_CR,  /* the CRLF after chunk data */
	CH_DATA_LF,
	CH_TR_START, /* start of a trailer line (or the final CRLF) */
	CH_TR_LINE,  /* inside a trailer line, until CR */
	CH_TR_LF,    /* the LF ending a trailer line */
	CH_END_LF,   /* the LF of the final empty line */
	CH_DONE,
};

int
sb_httpc_chunked_feed(struct sb_httpc_chunked *c, const char *in, size_t n, size_t *used,
                      sb_httpc_write_fn out, void *arg)
{
	size_t i = 0;
	int rv = 0;
	while (i < n && c->state != CH_DONE) {
		unsigned char ch = (unsigned char)in[i];
		switch (c->state) {
		case CH_SIZE: {
			int d = sb_hex_digit(ch);
			if (d >= 0) {
				if (c->digits >= 15) /* 15 hex digits: far above any body we take */
					goto bad;
				c->left = c->left << 4 | (uint64_t)d;
				c->digits++;
				i++;
				break;
			}
			if (c->digits == 0)
				goto bad;
			c->state = CH_EXT;
			break; /* look at ch again */
		}
		case CH_EXT:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (ch == '\n' || (ch < ' ' && ch != '\t') || ch == 0x7f ||
			         ++c->extra > SB_HTTPC_TRAILER_MAX)
				goto bad;
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->digits = 0;
			c->state = c->left == 0 ? CH_TR_START : CH_DATA;
			break;
		case CH_DATA: {
			size_t k = n - i;
			if ((uint64_t)k > c->left)
				k = (size_t)c->left;
			if (out != NULL && (rv = out(arg, in + i, k)) != 0)
				goto done;
			i += k;
			c->left -= k;
			if (c->left == 0)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				goto bad;
			i++;
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->state = CH_SIZE;
			break;
		case CH_TR_START:
			if (ch == '\r') {
				c->state = CH_END_LF;
				i++;
				break;
			}
			c->state = CH_TR_LINE;
			break;
		case CH_TR_LINE:
			if (ch == '\r')
				c->state = CH_TR_LF;
			else if (ch == '\n' || (ch < ' ' && ch != '\t') || ch == 0x7f ||
			         ++c->extra > SB_HTTPC_TRAILER_MAX)
				goto bad;
			i++;
			break;
		case CH_TR_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->state = CH_TR_START;
			break;
		case CH_END_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->state = CH_DONE;
			break;
		default:
			goto bad;
		}
	}
	rv = c->state == CH_DONE ? 1 : 0;
	goto done;
bad:
	rv = SB_EPROTO;
done:
	*used = i;
	return rv;
}
