/* tlcp.c: TLCP 2.x line parser, update value codec and request encoder (see tlcp.h). */
#include "tlcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_buf.h"
#include "sb_err.h"

#define TLCP_NUM_MAX ((int64_t)1 << 62)

struct tlcp_name {
	const char *name;
	enum tlcp_msg_type type;
};

static const struct tlcp_name tlcp_names[] = {
	{ "CONOK", TLCP_MSG_CONOK },
	{ "SUBOK", TLCP_MSG_SUBOK },
	{ "U", TLCP_MSG_U },
	{ "PROBE", TLCP_MSG_PROBE },
	{ "LOOP", TLCP_MSG_LOOP },
	{ "SYNC", TLCP_MSG_SYNC },
	{ "PROG", TLCP_MSG_PROG },
	{ "CONERR", TLCP_MSG_CONERR },
	{ "REQERR", TLCP_MSG_REQERR },
	{ "REQOK", TLCP_MSG_REQOK },
	{ "END", TLCP_MSG_END },
	{ "ERROR", TLCP_MSG_ERROR },
	{ "CS", TLCP_MSG_CS },
	{ "EOS", TLCP_MSG_EOS },
	{ "OV", TLCP_MSG_OV },
	{ "CONF", TLCP_MSG_CONF },
	{ "UNSUB", TLCP_MSG_UNSUB },
	{ "SUBCMD", TLCP_MSG_SUBCMD },
	{ "MSGDONE", TLCP_MSG_MSGDONE },
	{ "MSGFAIL", TLCP_MSG_MSGFAIL },
	{ "NOOP", TLCP_MSG_NOOP },
	{ "WSOK", TLCP_MSG_WSOK },
	{ "SERVNAME", TLCP_MSG_SERVNAME },
	{ "CLIENTIP", TLCP_MSG_CLIENTIP },
	{ "CONS", TLCP_MSG_CONS },
	{ NULL, TLCP_MSG_UNKNOWN },
};

const char *
tlcp_msg_type_name(enum tlcp_msg_type t)
{
	for (const struct tlcp_name *r = tlcp_names; r->name; r++)
		if (r->type == t)
			return r->name;
	return "?";
}

bool
tlcp_msg_is_data(enum tlcp_msg_type t)
{
	switch (t) {
	case TLCP_MSG_U:
	case TLCP_MSG_CS:
	case TLCP_MSG_EOS:
	case TLCP_MSG_OV:
	case TLCP_MSG_CONF:
	case TLCP_MSG_SUBOK:
	case TLCP_MSG_SUBCMD:
	case TLCP_MSG_UNSUB:
	case TLCP_MSG_MSGDONE:
	case TLCP_MSG_MSGFAIL:
		return true;
	default:
		return false;
	}
}

int
tlcp_next_line(const char *buf, size_t n, size_t *off, const char **line, size_t *len)
{
	size_t i = *off;
	const char *nl = i < n ? memchr(buf + i, '\n', n - i) : NULL;
	if (!nl)
		return 0;
	size_t end = (size_t)(nl - buf);
	size_t l = end - i;
	if (l > 0 && buf[i + l - 1] == '\r')
		l--;
	*line = buf + i;
	*len = l;
	*off = end + 1;
	return 1;
}

/* The comma-separated arguments of a line, as a small cursor. */
struct tlcp_args {
	const char *p;
	size_t n;
	size_t off; /* start of the next argument */
	bool more;  /* an argument is left */
};

static int
tlcp_arg(struct tlcp_args *a, struct tlcp_str *out)
{
	if (!a->more)
		return SB_EPROTO;
	const char *s = a->p + a->off;
	size_t left = a->n - a->off;
	const char *c = memchr(s, ',', left);
	if (c) {
		out->p = s;
		out->n = (size_t)(c - s);
		a->off += out->n + 1;
	} else {
		out->p = s;
		out->n = left;
		a->off = a->n;
		a->more = false;
	}
	return 0;
}

/* tlcp_arg_rest takes everything left (commas included): the last argument of a message, which
 * is percent-encoded and so holds no raw comma, but we do not insist. */
static int
tlcp_arg_rest(struct tlcp_args *a, struct tlcp_str *out)
{
	if (!a->more)
		return SB_EPROTO;
	out->p = a->p + a->off;
	out->n = a->n - a->off;
	a->off = a->n;
	a->more = false;
	return 0;
}

static int
tlcp_num(struct tlcp_str s, int64_t max, int64_t *out)
{
	if (s.n == 0)
		return SB_EPROTO;
	int64_t v = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return SB_EPROTO;
		int d = s.p[i] - '0';
		if (v > (max - d) / 10)
			return SB_EPROTO;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int
tlcp_arg_num(struct tlcp_args *a, int64_t max, int64_t *out)
{
	struct tlcp_str s;
	int rc = tlcp_arg(a, &s);
	return rc ? rc : tlcp_num(s, max, out);
}

/* An error code may be negative in practice (CONERR,-5 is not in the spec, but some servers
 * send negative custom codes from Metadata Adapters): accept an optional minus sign. */
static int
tlcp_arg_code(struct tlcp_args *a, int64_t *out)
{
	struct tlcp_str s;
	int rc = tlcp_arg(a, &s);
	if (rc)
		return rc;
	bool neg = s.n > 0 && s.p[0] == '-';
	if (neg) {
		s.p++;
		s.n--;
	}
	rc = tlcp_num(s, TLCP_NUM_MAX, out);
	if (rc == 0 && neg)
		*out = -*out;
	return rc;
}

static int
tlcp_parse_args(struct tlcp_args *a, struct tlcp_msg *m)
{
	int rc = 0;
	switch (m->type) {
	case TLCP_MSG_CONOK:
		if ((rc = tlcp_arg(a, &m->session)) || m->session.n == 0)
			return SB_EPROTO;
		if ((rc = tlcp_arg_num(a, TLCP_NUM_MAX, &m->item)))
			return rc; /* request limit, kept in item */
		if ((rc = tlcp_arg_num(a, TLCP_NUM_MAX, &m->n)))
			return rc;
		return tlcp_arg_rest(a, &m->text);
	case TLCP_MSG_SUBOK:
		if ((rc = tlcp_arg_num(a, TLCP_NUM_MAX, &m->sub)) ||
		    (rc = tlcp_arg_num(a, TLCP_MAX_FIELDS, &m->item)) ||
		    (rc = tlcp_arg_num(a, TLCP_MAX_FIELDS, &m->n)))
			return rc;
		return m->item < 1 || m->n < 1 ? SB_EPROTO : 0;
	case TLCP_MSG_U:
		if ((rc = tlcp_arg_num(a, TLCP_NUM_MAX, &m->sub)) ||
		    (rc = tlcp_arg_num(a, TLCP_MAX_FIELDS, &m->item)))
			return rc;
		if (m->item < 1)
			return SB_EPROTO;
		return tlcp_arg_rest(a, &m->text);
	case TLCP_MSG_CS:
	case TLCP_MSG_EOS:
		if ((rc = tlcp_arg_num(a, TLCP_NUM_MAX, &m->sub)) ||
		    (rc = tlcp_arg_num(a, TLCP_MAX_FIELDS, &m->item)))
			return rc;
		return m->item < 1 ? SB_EPROTO : 0;
	case TLCP_MSG_OV:
		if ((rc = tlcp_arg_num(a, TLCP_NUM_MAX, &m->sub)) ||
		    (rc = tlcp_arg_num(a, TLCP_MAX_FIELDS, &m->item)) ||
		    (rc = tlcp_arg_num(a, TLCP_NUM_MAX, &m->n)))
			return rc;
		return m->item < 1 ? SB_EPROTO : 0;
	case TLCP_MSG_CONF:
		if ((rc = tlcp_arg_num(a, TLCP_NUM_MAX, &m->sub)))
			return rc;
		return tlcp_arg_rest(a, &m->text);
	case TLCP_MSG_UNSUB:
		return tlcp_arg_num(a, TLCP_NUM_MAX, &m->sub);
	case TLCP_MSG_LOOP:
	case TLCP_MSG_SYNC:
	case TLCP_MSG_PROG:
		return tlcp_arg_num(a, TLCP_NUM_MAX, &m->n);
	case TLCP_MSG_CONERR:
	case TLCP_MSG_END:
	case TLCP_MSG_ERROR:
		if ((rc = tlcp_arg_code(a, &m->code)))
			return rc;
		return tlcp_arg_rest(a, &m->text);
	case TLCP_MSG_REQERR:
		if ((rc = tlcp_arg_num(a, TLCP_NUM_MAX, &m->n)) ||
		    (rc = tlcp_arg_code(a, &m->code)))
			return rc;
		return tlcp_arg_rest(a, &m->text);
	case TLCP_MSG_REQOK:
		m->n = -1;
		if (!a->more)
			return 0;
		return tlcp_arg_num(a, TLCP_NUM_MAX, &m->n);
	case TLCP_MSG_PROBE:
	case TLCP_MSG_WSOK:
		return 0;
	default:
		/* SUBCMD, MSGDONE, MSGFAIL, NOOP, SERVNAME, CLIENTIP, CONS: arguments unused. */
		if (a->more)
			(void)tlcp_arg_rest(a, &m->text);
		return 0;
	}
}

int
tlcp_parse_line(const char *line, size_t n, struct tlcp_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (!line || n == 0)
		return SB_EPROTO;
	const char *c = memchr(line, ',', n);
	size_t nl = c ? (size_t)(c - line) : n;
	m->name.p = line;
	m->name.n = nl;
	m->type = TLCP_MSG_UNKNOWN;
	for (const struct tlcp_name *r = tlcp_names; r->name; r++) {
		if (strlen(r->name) == nl && memcmp(r->name, line, nl) == 0) {
			m->type = r->type;
			break;
		}
	}
	if (m->type == TLCP_MSG_UNKNOWN)
		return 0;
	struct tlcp_args a = { line, n, c ? nl + 1 : n, c != NULL };
	int rc = tlcp_parse_args(&a, m);
	if (rc == 0 && a.more && m->type != TLCP_MSG_UNKNOWN)
		rc = SB_EPROTO; /* arguments left over */
	if (rc) {
		enum tlcp_msg_type t = m->type;
		memset(m, 0, sizeof(*m));
		m->type = t;
		m->name.p = line;
		m->name.n = nl;
		return SB_EPROTO;
	}
	return 0;
}

static int
tlcp_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
tlcp_pct_decode(const char *p, size_t n, char **out, size_t *outlen)
{
	char *s = malloc(n + 1);
	if (!s)
		return SB_ENOMEM;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '%') {
			if (n - i < 3) {
				free(s);
				return SB_EPROTO;
			}
			int hi = tlcp_hex((unsigned char)p[i + 1]);
			int lo = tlcp_hex((unsigned char)p[i + 2]);
			if (hi < 0 || lo < 0) {
				free(s);
				return SB_EPROTO;
			}
			s[j++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			s[j++] = (char)c;
		}
	}
	s[j] = '\0';
	*out = s;
	if (outlen)
		*outlen = j;
	return 0;
}

static bool
tlcp_utf8_ok(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t l = sb_utf8_seq((const unsigned char *)s + i, n - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

void
tlcp_fv_clear(struct tlcp_fv *out, size_t nfields)
{
	for (size_t i = 0; i < nfields; i++) {
		free(out[i].val);
		out[i].val = NULL;
		out[i].len = 0;
		out[i].kind = TLCP_FV_UNCHANGED;
	}
}

int
tlcp_decode_values(const char *p, size_t n, size_t nfields, struct tlcp_fv *out)
{
	if (nfields < 1 || nfields > TLCP_MAX_FIELDS || (!p && n))
		return SB_EINVAL;
	for (size_t i = 0; i < nfields; i++)
		out[i] = (struct tlcp_fv){ TLCP_FV_UNCHANGED, NULL, 0 };
	size_t f = 0, off = 0;
	int rc = SB_EPROTO;
	for (;;) {
		const char *bar = off < n ? memchr(p + off, '|', n - off) : NULL;
		size_t end = bar ? (size_t)(bar - p) : n;
		const char *t = p + off;
		size_t tn = end - off;
		if (tn == 0) {
			if (f >= nfields)
				goto fail;
			f++;
		} else if (tn == 1 && t[0] == '#') {
			if (f >= nfields)
				goto fail;
			out[f++].kind = TLCP_FV_NULL;
		} else if (tn == 1 && t[0] == '$') {
			if (f >= nfields)
				goto fail;
			out[f].val = calloc(1, 1);
			if (!out[f].val) {
				rc = SB_ENOMEM;
				goto fail;
			}
			out[f++].kind = TLCP_FV_VALUE;
		} else if (t[0] == '^') {
			/* "^P" (JSON Patch) and "^T" (TLCP-diff) fail here: not digits. */
			int64_t run;
			if (tlcp_num((struct tlcp_str){ t + 1, tn - 1 }, TLCP_MAX_FIELDS, &run) ||
			    run < 1 || (size_t)run > nfields - f)
				goto fail;
			f += (size_t)run;
		} else {
			if (f >= nfields)
				goto fail;
			int r = tlcp_pct_decode(t, tn, &out[f].val, &out[f].len);
			if (r) {
				rc = r;
				goto fail;
			}
			out[f].kind = TLCP_FV_VALUE;
			if (!tlcp_utf8_ok(out[f].val, out[f].len)) {
				f++;
				goto fail;
			}
			f++;
		}
		if (!bar)
			break;
		off = end + 1;
	}
	if (f != nfields)
		goto fail;
	return 0;
fail:
	tlcp_fv_clear(out, nfields);
	return rc;
}

static bool
tlcp_value_special(unsigned char c)
{
	return c == '%' || c == '|' || c == '#' || c == '$' || c == '^' || c < 0x20 || c == 0x7f;
}

int
tlcp_encode_values(struct sb_buf *b, const struct tlcp_fv *in, size_t nfields)
{
	static const char hex[] = "0123456789ABCDEF";
	if (nfields < 1 || nfields > TLCP_MAX_FIELDS)
		return SB_EINVAL;
	for (size_t i = 0; i < nfields;) {
		int rc = 0;
		if (i > 0 && (rc = sb_buf_append(b, "|", 1)))
			return rc;
		if (in[i].kind == TLCP_FV_UNCHANGED) {
			size_t run = 1;
			while (i + run < nfields && in[i + run].kind == TLCP_FV_UNCHANGED)
				run++;
			if (run > 1 && (rc = sb_buf_printf(b, "^%zu", run)))
				return rc;
			i += run;
			continue;
		}
		if (in[i].kind == TLCP_FV_NULL) {
			rc = sb_buf_append(b, "#", 1);
		} else if (in[i].len == 0) {
			rc = sb_buf_append(b, "$", 1);
		} else {
			for (size_t k = 0; k < in[i].len && rc == 0; k++) {
				unsigned char c = (unsigned char)in[i].val[k];
				if (tlcp_value_special(c)) {
					char e[3] = { '%', hex[c >> 4], hex[c & 15] };
					rc = sb_buf_append(b, e, 3);
				} else {
					rc = sb_buf_append(b, &c, 1);
				}
			}
		}
		if (rc)
			return rc;
		i++;
	}
	return 0;
}

int
tlcp_form_encode(struct sb_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int rc;
		unsigned char c = *p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			rc = sb_buf_append(b, &c, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			rc = sb_buf_append(b, e, 3);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int
tlcp_param(struct sb_buf *b, bool *first, const char *key, const char *val)
{
	int rc;
	if (!val)
		return 0;
	if ((rc = sb_buf_printf(b, "%s%s=", *first ? "" : "&", key)))
		return rc;
	*first = false;
	return tlcp_form_encode(b, val);
}

int
tlcp_req_create_session(struct sb_buf *b, const struct tlcp_create *c)
{
	bool first = true;
	char ka[24];
	int rc = sb_buf_puts(b, "create_session\r\n");
	if (!rc)
		rc = tlcp_param(b, &first, "LS_cid", c->cid ? c->cid : "sb-ingest");
	if (!rc)
		rc = tlcp_param(b, &first, "LS_adapter_set", c->adapter_set);
	if (!rc)
		rc = tlcp_param(b, &first, "LS_user", c->user);
	if (!rc)
		rc = tlcp_param(b, &first, "LS_password", c->password);
	if (!rc && c->keepalive_ms > 0) {
		snprintf(ka, sizeof(ka), "%lld", (long long)c->keepalive_ms);
		rc = tlcp_param(b, &first, "LS_keepalive_millis", ka);
	}
	if (!rc)
		rc = tlcp_param(b, &first, "LS_send_sync", "true");
	return rc;
}

int
tlcp_req_bind_session(struct sb_buf *b, const char *session, int64_t recovery_from,
                      int64_t keepalive_ms)
{
	bool first = true;
	char num[24];
	if (!session || !*session)
		return SB_EINVAL;
	int rc = sb_buf_puts(b, "bind_session\r\n");
	if (!rc)
		rc = tlcp_param(b, &first, "LS_session", session);
	if (!rc && recovery_from >= 0) {
		snprintf(num, sizeof(num), "%lld", (long long)recovery_from);
		rc = tlcp_param(b, &first, "LS_recovery_from", num);
	}
	if (!rc && keepalive_ms > 0) {
		snprintf(num, sizeof(num), "%lld", (long long)keepalive_ms);
		rc = tlcp_param(b, &first, "LS_keepalive_millis", num);
	}
	return rc;
}

static int
tlcp_join(struct sb_buf *b, const char *const *names, size_t n)
{
	struct sb_buf j = SB_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!names[i] || !*names[i] || strchr(names[i], ' ')) {
			rc = SB_EINVAL;
			break;
		}
		rc = sb_buf_printf(&j, "%s%s", i ? " " : "", names[i]);
	}
	if (rc == 0)
		rc = tlcp_form_encode(b, j.data ? j.data : "");
	sb_buf_free(&j);
	return rc;
}

int
tlcp_req_subscribe(struct sb_buf *b, int64_t req, int64_t sub, const char *const *items,
                   size_t nitems, const char *const *fields, size_t nfields)
{
	if (nitems < 1 || nfields < 1 || nitems > TLCP_MAX_FIELDS || nfields > TLCP_MAX_FIELDS)
		return SB_EINVAL;
	int rc = sb_buf_printf(b,
	                       "control\r\nLS_reqId=%lld&LS_op=add&LS_subId=%lld&LS_mode=MERGE"
	                       "&LS_group=",
	                       (long long)req, (long long)sub);
	if (!rc)
		rc = tlcp_join(b, items, nitems);
	if (!rc)
		rc = sb_buf_puts(b, "&LS_schema=");
	if (!rc)
		rc = tlcp_join(b, fields, nfields);
	if (!rc)
		rc = sb_buf_puts(b, "&LS_snapshot=true");
	return rc;
}

int
tlcp_req_reconf(struct sb_buf *b, int64_t req, int64_t sub, double max_freq)
{
	if (max_freq > 0)
		return sb_buf_printf(b,
		                     "control\r\nLS_reqId=%lld&LS_op=reconf&LS_subId=%lld"
		                     "&LS_requested_max_frequency=%.3f",
		                     (long long)req, (long long)sub, max_freq);
	return sb_buf_printf(b,
	                     "control\r\nLS_reqId=%lld&LS_op=reconf&LS_subId=%lld"
	                     "&LS_requested_max_frequency=unlimited",
	                     (long long)req, (long long)sub);
}
