/* frame.c: server frames (encoded once, refcounted, LWS_PRE headroom), the Redis messages of
 * the notifier contract, and client frames (parsed and checked strictly: every frame is a JSON
 * object with a known "type"). Pure: no I/O and no process state. */
#include "realtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_rtframe.h"

struct rt_frame *
rt_frame_new(const char *text, size_t len, int64_t seq, int64_t event_ms)
{
	struct rt_frame *f = malloc(sizeof(*f) + LWS_PRE + len + 1);
	if (f == NULL)
		return NULL;
	f->refs = 1;
	f->seq = seq;
	f->event_ms = event_ms;
	f->type[0] = f->conv[0] = f->sender[0] = '\0';
	f->len = len;
	memcpy(f->buf + LWS_PRE, text, len);
	f->buf[LWS_PRE + len] = '\0';
	return f;
}

char *
rt_frame_text(struct rt_frame *f)
{
	return (char *)f->buf + LWS_PRE;
}

struct rt_frame *
rt_frame_ref(struct rt_frame *f)
{
	f->refs++;
	return f;
}

void
rt_frame_unref(struct rt_frame *f)
{
	if (f != NULL && --f->refs == 0)
		free(f);
}

bool
rt_id_valid(const char *s, size_t len)
{
	if (len == 0 || len >= RT_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* The Redis message format (notifier → realtime) is encoded and split by one pair in
 * services/common (sb_rtframe.h). */

/* --- frames from Redis ----------------------------------------------------------------- */

static void
rt_frame_copy_str(json_t *o, const char *key, char *dst, size_t cap)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (s != NULL && strlen(s) < cap)
		memcpy(dst, s, strlen(s) + 1);
}

int
rt_frame_parse_pubsub(const char *msg, size_t len, struct rt_frame **out)
{
	struct sb_rtframe m;
	if (sb_rtframe_split(msg, len, &m) != 0)
		return SB_EPROTO;
	json_error_t jerr;
	json_t *o = json_loadb(m.json, m.json_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o) || !json_is_string(json_object_get(o, "type"))) {
		json_decref(o);
		return SB_EPROTO;
	}
	struct rt_frame *f = rt_frame_new(m.json, m.json_len, m.seq, m.event_ms);
	if (f == NULL) {
		json_decref(o);
		return SB_ENOMEM;
	}
	memcpy(f->traceparent, m.traceparent, sizeof(f->traceparent));
	rt_frame_copy_str(o, "type", f->type, sizeof(f->type));
	rt_frame_copy_str(o, "conversation_id", f->conv, sizeof(f->conv));
	json_t *msgo = json_object_get(o, "message");
	if (json_is_object(msgo))
		rt_frame_copy_str(msgo, "sender_id", f->sender, sizeof(f->sender));
	json_decref(o);
	*out = f;
	return 0;
}

/* --- client frames --------------------------------------------------------------------- */

/* The client frame types, one row each: the wire syntax (name, members and which are required).
 * What a command does, and in which connection states, is its row in conn.c's rt_conn_cmds. */
static const struct rt_cmd_def {
	const char *name;
	enum rt_cmd_type type;
	bool conv;     /* conversation_id required */
	const char *n; /* integer member: "since_seq" (optional) or "up_to_seq" (required) */
	bool n_required;
	bool token; /* token required */
} rt_cmd_defs[] = {
	{ "auth", RT_CMD_AUTH, false, NULL, false, true },
	{ "subscribe", RT_CMD_SUBSCRIBE, true, "since_seq", false, false },
	{ "unsubscribe", RT_CMD_UNSUBSCRIBE, true, NULL, false, false },
	{ "read", RT_CMD_READ, true, "up_to_seq", true, false },
	{ "refresh", RT_CMD_REFRESH, false, NULL, false, true },
	{ "ping", RT_CMD_PING, false, NULL, false, false },
	{ NULL, 0, false, NULL, false, false },
};

static int
rt_cmd_fail(struct rt_cmd *cmd, const char *code, const char *fmt, const char *arg)
{
	cmd->code = code;
	snprintf(cmd->err, sizeof(cmd->err), fmt, arg);
	return SB_EPROTO;
}

/* rt_cmd_cut returns how many bytes of s to quote in an error: all of it up to max bytes,
 * else at most max without splitting a character (s is valid UTF-8, as jansson's strings are:
 * the cut backs off over continuation bytes). */
static int
rt_cmd_cut(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return (int)n;
	for (n = max; n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80;)
		n--;
	return (int)n;
}

int
rt_cmd_parse(const char *text, size_t len, struct rt_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->seq = -1;
	json_error_t jerr; /* its text may quote the frame, a token included */
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	int rv = SB_EPROTO;
	if (!json_is_object(o)) {
		rv = rt_cmd_fail(cmd, "bad_frame", "%s", "a frame must be one JSON object");
		goto done;
	}
	const char *type = json_string_value(json_object_get(o, "type"));
	if (type == NULL) {
		rv = rt_cmd_fail(cmd, "bad_frame", "%s", "a frame needs a string \"type\"");
		goto done;
	}
	const struct rt_cmd_def *d = rt_cmd_defs;
	while (d->name != NULL && strcmp(d->name, type) != 0)
		d++;
	if (d->name == NULL) {
		/* quoted in the error frame, which must stay valid UTF-8: cut whole characters */
		cmd->code = "unknown_type";
		snprintf(cmd->err, sizeof(cmd->err), "unknown frame type \"%.*s\"",
		         rt_cmd_cut(type, 64), type);
		goto done;
	}
	cmd->type = d->type;
	json_t *id = json_object_get(o, "id");
	if (id != NULL) {
		const char *s = json_string_value(id);
		if (s == NULL || strlen(s) > 64) {
			rv = rt_cmd_fail(cmd, "invalid_argument", "%s",
			                 "\"id\" must be a string of at most 64 characters");
			goto done;
		}
		if ((cmd->req_id = strdup(s)) == NULL) {
			rv = SB_ENOMEM;
			goto done;
		}
	}
	if (d->conv) {
		json_t *c = json_object_get(o, "conversation_id");
		const char *s = json_string_value(c);
		if (s == NULL || !rt_id_valid(s, json_string_length(c))) {
			rv = rt_cmd_fail(cmd, "invalid_argument", "%s",
			                 "\"conversation_id\" must be an id string");
			goto done;
		}
		memcpy(cmd->conv, s, json_string_length(c) + 1);
	}
	if (d->n != NULL) {
		json_t *n = json_object_get(o, d->n);
		/* A required member may not be null either (`"up_to_seq": null` is no seq). */
		if ((n == NULL || json_is_null(n)) && d->n_required)
			goto bad_n;
		if (n != NULL && !json_is_null(n)) {
			if (!json_is_integer(n) || json_integer_value(n) < 0)
				goto bad_n;
			cmd->seq = json_integer_value(n);
		}
	}
	if (d->token) {
		json_t *t = json_object_get(o, "token");
		const char *s = json_string_value(t);
		if (s == NULL || json_string_length(t) == 0 ||
		    json_string_length(t) > SB_JWT_MAX_TOKEN) {
			rv = rt_cmd_fail(cmd, "invalid_argument", "%s",
			                 "\"token\" must be a non-empty string");
			goto done;
		}
		if ((cmd->token = strdup(s)) == NULL) {
			rv = SB_ENOMEM;
			goto done;
		}
	}
	rv = 0;
	goto done;
bad_n:
	rv = rt_cmd_fail(cmd, "invalid_argument", "\"%s\" must be a non-negative integer", d->n);
done:
	if (json_is_object(o)) {
		/* a token (auth, refresh, or any frame that carries one) also lives in jansson's
		 * copy: wipe it before it is freed */
		json_t *t = json_object_get(o, "token");
		if (json_is_string(t))
			explicit_bzero((char *)json_string_value(t), json_string_length(t));
	}
	json_decref(o);
	explicit_bzero(&jerr, sizeof(jerr));
	return rv;
}

void
rt_cmd_clear(struct rt_cmd *cmd)
{
	if (cmd->token != NULL) {
		explicit_bzero(cmd->token, strlen(cmd->token));
		free(cmd->token);
	}
	free(cmd->req_id);
	cmd->token = cmd->req_id = NULL;
}

/* --- server frames --------------------------------------------------------------------- */

/* rt_frame_from_buf makes a frame of b's text unless an append failed, and frees b. */
static struct rt_frame *
rt_frame_from_buf(struct sb_buf *b, bool failed)
{
	struct rt_frame *f = !failed && b->data ? rt_frame_new(b->data, b->len, 0, 0) : NULL;
	sb_buf_free(b);
	return f;
}

struct rt_frame *
rt_frame_error(const char *code, const char *message, const char *conv)
{
	/* sb_buf_json_str writes any byte that is not valid UTF-8 as U+FFFD */
	struct sb_buf b = SB_BUF_INIT;
	bool failed = sb_buf_puts(&b, "{\"type\":\"error\",\"code\":") ||
	              sb_buf_json_str(&b, code) || sb_buf_puts(&b, ",\"message\":") ||
	              sb_buf_json_str(&b, message);
	if (!failed && conv != NULL && conv[0] != '\0')
		failed = sb_buf_puts(&b, ",\"conversation_id\":") || sb_buf_json_str(&b, conv);
	failed = failed || sb_buf_puts(&b, "}");
	return rt_frame_from_buf(&b, failed);
}

struct rt_frame *
rt_frame_subscribed(const char *conv, bool recovered, int64_t last_seq)
{
	struct sb_buf b = SB_BUF_INIT;
	bool failed = sb_buf_puts(&b, "{\"type\":\"subscribed\",\"conversation_id\":") ||
	              sb_buf_json_str(&b, conv) ||
	              sb_buf_printf(&b, ",\"recovered\":%s,\"last_seq\":%lld}",
	                            recovered ? "true" : "false", (long long)last_seq);
	return rt_frame_from_buf(&b, failed);
}

struct rt_frame *
rt_frame_simple(const char *type, const char *req_id)
{
	struct sb_buf b = SB_BUF_INIT;
	bool failed = sb_buf_puts(&b, "{\"type\":") || sb_buf_json_str(&b, type);
	if (!failed && req_id != NULL)
		failed = sb_buf_puts(&b, ",\"id\":") || sb_buf_json_str(&b, req_id);
	failed = failed || sb_buf_puts(&b, "}");
	return rt_frame_from_buf(&b, failed);
}
