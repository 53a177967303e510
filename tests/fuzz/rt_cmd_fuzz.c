/* rt_cmd_fuzz: libFuzzer target for the WebSocket client command parser of realtime
 * (services/realtime/frame.c, rt_cmd_parse), compiled again here, and for the frames realtime
 * answers a command with (rt_frame_error, rt_frame_simple, rt_frame_subscribed). The input is
 * one client text frame.
 *
 * Properties:
 *   - the parser agrees with an independent reading of the frame against the contract
 *     (docs/api/asyncapi.yaml, channel websocket; fz_model): same verdict, same command, id,
 *     conversation, seq and token; the error code class (bad_frame, unknown_type,
 *     invalid_argument) matches;
 *   - a refused frame's reason is valid UTF-8 and non-empty, and an unknown type is quoted as
 *     a prefix of the type cut at a character boundary within 64 bytes; the error frame built
 *     from it is valid JSON (jansson, which checks UTF-8) carrying that reason exactly;
 *   - round trip: the command written back as a frame parses to the same command, and the
 *     replies built from it (pong with the id, subscribed with the conversation) are valid
 *     JSON that echo them exactly. */
#include "fuzz.h"

#include <jansson.h>

#include "realtime.h"
#include "sb_err.h"

#define FZ_NCMD (RT_CMD_PING + 1) /* the commands are numbered 1..RT_CMD_PING */

static const char *const fz_names[FZ_NCMD] = {
	[RT_CMD_AUTH] = "auth",
	[RT_CMD_SUBSCRIBE] = "subscribe",
	[RT_CMD_UNSUBSCRIBE] = "unsubscribe",
	[RT_CMD_READ] = "read",
	[RT_CMD_REFRESH] = "refresh",
	[RT_CMD_PING] = "ping",
};

enum fz_verdict { FZ_REFUSE, FZ_ACCEPT, FZ_UNSURE };

struct fz_cmd {
	int type;
	const char *code; /* when refused: the class */
	const char *conv, *token, *id;
	long long seq;
};

static bool
fz_id_ok(const char *s, size_t n)
{
	if (n < 1 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

/* fz_model reads frame o (a parsed JSON value, or NULL) as the contract says. */
static enum fz_verdict
fz_model(json_t *o, struct fz_cmd *m)
{
	memset(m, 0, sizeof(*m));
	m->seq = -1;
	m->code = "bad_frame";
	if (!json_is_object(o) || !json_is_string(json_object_get(o, "type")))
		return FZ_REFUSE;
	const char *type = json_string_value(json_object_get(o, "type"));
	for (int t = 1; t < FZ_NCMD; t++)
		if (strcmp(type, fz_names[t]) == 0 &&
		    strlen(type) == json_string_length(json_object_get(o, "type")))
			m->type = t;
	if (m->type == 0) {
		m->code = "unknown_type";
		return FZ_REFUSE;
	}
	m->code = "invalid_argument";
	json_t *id = json_object_get(o, "id");
	if (id != NULL && (!json_is_string(id) || json_string_length(id) > 64))
		return FZ_REFUSE;
	m->id = json_string_value(id);
	if (m->type == RT_CMD_SUBSCRIBE || m->type == RT_CMD_UNSUBSCRIBE ||
	    m->type == RT_CMD_READ) {
		json_t *c = json_object_get(o, "conversation_id");
		if (!json_is_string(c) || !fz_id_ok(json_string_value(c), json_string_length(c)))
			return FZ_REFUSE;
		m->conv = json_string_value(c);
	}
	if (m->type == RT_CMD_SUBSCRIBE || m->type == RT_CMD_READ) {
		json_t *n = json_object_get(o, m->type == RT_CMD_READ ? "up_to_seq" : "since_seq");
		if (json_is_null(n) && m->type == RT_CMD_READ)
			return FZ_REFUSE; /* a required seq may not be null */
		if (json_is_null(n))
			return FZ_UNSURE; /* optional since_seq: null may stand for absent */
		if (n == NULL ? m->type == RT_CMD_READ
		              : !json_is_integer(n) || json_integer_value(n) < 0)
			return FZ_REFUSE;
		if (n != NULL)
			m->seq = json_integer_value(n);
	}
	if (m->type == RT_CMD_AUTH || m->type == RT_CMD_REFRESH) {
		json_t *t = json_object_get(o, "token");
		if (!json_is_string(t) || json_string_length(t) == 0 ||
		    json_string_length(t) > SB_JWT_MAX_TOKEN)
			return FZ_REFUSE;
		m->token = json_string_value(t);
	}
	return FZ_ACCEPT;
}

static bool
fz_streq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
fz_utf8(const char *s)
{
	json_t *j = json_string(s); /* jansson checks UTF-8 */
	json_decref(j);
	return j != NULL;
}

/* fz_frame_json parses a server frame's text, which must be one valid JSON object. */
static json_t *
fz_frame_json(struct rt_frame *f)
{
	CHECK(f != NULL);
	json_t *j = json_loadb(rt_frame_text(f), f->len, JSON_REJECT_DUPLICATES, NULL);
	CHECK(json_is_object(j));
	rt_frame_unref(f);
	return j;
}

static void
fz_check_accepted(const struct rt_cmd *cmd, const struct fz_cmd *m)
{
	CHECK((int)cmd->type == m->type);
	CHECK(fz_streq(cmd->req_id, m->id));
	CHECK(strcmp(cmd->conv, m->conv ? m->conv : "") == 0);
	CHECK(cmd->seq == m->seq);
	CHECK(fz_streq(cmd->token, m->token));

	/* Written back as a frame, it reads the same. */
	json_t *o = json_pack("{s:s}", "type", fz_names[cmd->type]);
	if (cmd->req_id)
		json_object_set_new(o, "id", json_string(cmd->req_id));
	if (cmd->conv[0])
		json_object_set_new(o, "conversation_id", json_string(cmd->conv));
	if (cmd->seq >= 0)
		json_object_set_new(o, cmd->type == RT_CMD_READ ? "up_to_seq" : "since_seq",
		                    json_integer(cmd->seq));
	if (cmd->token)
		json_object_set_new(o, "token", json_string(cmd->token));
	char *text = json_dumps(o, JSON_COMPACT);
	struct rt_cmd again;
	CHECK(text != NULL && rt_cmd_parse(text, strlen(text), &again) == 0);
	CHECK(again.type == cmd->type && again.seq == cmd->seq &&
	      strcmp(again.conv, cmd->conv) == 0 && fz_streq(again.req_id, cmd->req_id) &&
	      fz_streq(again.token, cmd->token));
	rt_cmd_clear(&again);
	free(text);
	json_decref(o);

	/* The replies echo what they carry. */
	json_t *pong = fz_frame_json(rt_frame_simple("pong", cmd->req_id));
	CHECK(strcmp(json_string_value(json_object_get(pong, "type")), "pong") == 0);
	CHECK(fz_streq(json_string_value(json_object_get(pong, "id")), cmd->req_id));
	json_decref(pong);
	if (cmd->conv[0]) {
		json_t *sub = fz_frame_json(rt_frame_subscribed(cmd->conv, true, cmd->seq));
		CHECK(strcmp(json_string_value(json_object_get(sub, "conversation_id")),
		             cmd->conv) == 0);
		CHECK(json_integer_value(json_object_get(sub, "last_seq")) == cmd->seq);
		json_decref(sub);
	}
}

static void
fz_check_refused(const struct rt_cmd *cmd, const struct fz_cmd *m, json_t *o)
{
	CHECK(cmd->code != NULL && strcmp(cmd->code, m->code) == 0);
	CHECK(cmd->err[0] != '\0' && memchr(cmd->err, '\0', sizeof(cmd->err)) != NULL);
	CHECK(fz_utf8(cmd->err));
	if (strcmp(m->code, "unknown_type") == 0) {
		/* the type quoted whole, or cut after at most 64 bytes on a character boundary */
		json_t *t = json_object_get(o, "type");
		const char *type = json_string_value(t);
		const char *q = strchr(cmd->err, '"');
		CHECK(q != NULL);
		size_t n = strlen(q + 1) - 1;
		CHECK(q[1 + n] == '"' && strncmp(q + 1, type, n) == 0);
		CHECK(n == json_string_length(t) || (n <= 64 && n >= 61));
	}
	json_t *e = fz_frame_json(rt_frame_error(cmd->code, cmd->err, cmd->conv));
	CHECK(strcmp(json_string_value(json_object_get(e, "message")), cmd->err) == 0);
	CHECK(strcmp(json_string_value(json_object_get(e, "code")), cmd->code) == 0);
	json_decref(e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fz_dup(data, size);
	struct rt_cmd cmd;
	struct fz_cmd m;

	int rc = rt_cmd_parse(text, size, &cmd);
	json_t *o = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
	enum fz_verdict v = fz_model(o, &m);
	CHECK(rc == 0 || rc == SB_EPROTO);
	if (v != FZ_UNSURE)
		CHECK((rc == 0) == (v == FZ_ACCEPT));
	if (rc == 0 && v == FZ_ACCEPT)
		fz_check_accepted(&cmd, &m);
	else if (rc != 0)
		fz_check_refused(&cmd, &m, o);
	rt_cmd_clear(&cmd);
	json_decref(o);
	free(text);
	return 0;
}
