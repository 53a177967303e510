/* ntf_frames_fuzz: libFuzzer target for the notifier's frame builder and what realtime makes of
 * its output: services/notifier/frames.c (ntf_event_build, ntf_frame_delivered) and
 * services/realtime/frame.c (rt_frame_parse_pubsub), both compiled again here. The first byte
 * picks the input:
 *   0-3   the rest is the protobuf payload of one event type (MessageCreated,
 *         ConversationCreated, MembersChanged, ConversationRead), as consumed from Kafka;
 *   4     the rest is a payload under a CloudEvents type the notifier does not know;
 *   5     the rest is conversation, user and sender ids (NUL-separated) and then 16 bytes of
 *         seq and time for a message.delivered frame.
 *
 * Properties (what one service writes, the other accepts):
 *   - every Redis message the notifier builds is accepted by realtime's parser, with the seq
 *     and event time the event carries (now, when it carries none), a frame type that is the
 *     event's, and the conversation id of the event when it is valid UTF-8 (else U+FFFD in
 *     its place: the frame is still valid JSON);
 *   - the channels are conv:<conversation> or user:<id> as docs/notifier.md lists them, one
 *     per recipient; the webhook body is a valid JSON object {type, id, time, data};
 *   - an unknown event type is SB_ENOTFOUND, a payload that does not decode SB_EPROTO;
 *   - the trace context (given for inputs of even length) reaches realtime in the header, and
 *     a message.created frame names it; without one, neither does. */
#include "fuzz.h"

#include <jansson.h>

#include "events/messages_events.pb-c.h"
#include "notifier.h"
#include "realtime.h"
#include "sb_err.h"

static const struct {
	const char *ce_type;
	const ProtobufCMessageDescriptor *desc;
} fz_kinds[4] = {
	{ "io.switchboard.message.created.v1", &sb__events__message_created__descriptor },
	{ "io.switchboard.conversation.created.v1", &sb__events__conversation_created__descriptor },
	{ "io.switchboard.conversation.members_changed.v1",
	  &sb__events__members_changed__descriptor },
	{ "io.switchboard.conversation.read.v1", &sb__events__conversation_read__descriptor },
};

static bool
fz_utf8(const char *s)
{
	json_t *j = json_string(s);
	json_decref(j);
	return j != NULL;
}

/* What one publication must be. */
struct fz_want {
	const char *prefix, *id; /* channel */
	const char *type;        /* frame type */
	const char *conv;        /* conversation_id member, or NULL */
	int64_t seq, ms;         /* ms <= 0: "now" (any positive time) */
};

/* the traceparent the current input's event is built with, or NULL */
static const char *fz_tp;

static void
fz_check_pub(const struct ntf_pub *p, const struct fz_want *w)
{
	size_t pl = strlen(w->prefix);
	CHECK(strncmp(p->channel, w->prefix, pl) == 0 && strcmp(p->channel + pl, w->id) == 0);
	struct rt_frame *f = NULL;
	CHECK(rt_frame_parse_pubsub(p->payload, p->len, &f) == 0);
	CHECK(f->seq == w->seq);
	CHECK(w->ms > 0 ? f->event_ms == w->ms : f->event_ms > 0);
	json_t *o = json_loadb(rt_frame_text(f), f->len, JSON_REJECT_DUPLICATES, NULL);
	CHECK(json_is_object(o));
	CHECK(strcmp(json_string_value(json_object_get(o, "type")), w->type) == 0);
	CHECK(strcmp(f->type, w->type) == 0);
	CHECK(strcmp(f->traceparent, fz_tp ? fz_tp : "") == 0);
	if (strcmp(w->type, "message.created") == 0) {
		const char *t = json_string_value(json_object_get(o, "traceparent"));
		CHECK(fz_tp ? t != NULL && strcmp(t, fz_tp) == 0 : t == NULL);
	}
	if (w->conv != NULL) {
		const char *c = json_string_value(json_object_get(o, "conversation_id"));
		CHECK(c != NULL);
		if (fz_utf8(w->conv))
			CHECK(strcmp(c, w->conv) == 0);
		else
			CHECK(strstr(c, "\xef\xbf\xbd") != NULL);
		CHECK(strcmp(f->conv, strlen(c) < sizeof(f->conv) ? c : "") == 0);
	}
	json_decref(o);
	rt_frame_unref(f);
}

static void
fz_event(int kind, const uint8_t *data, size_t size)
{
	struct ntf_event ev;
	const char *ce_type = kind < 4 ? fz_kinds[kind].ce_type : "io.switchboard.unknown.v1";
	fz_tp = size % 2 == 0 ? "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" : NULL;
	int rc =
	    ntf_event_build(ce_type, "0191f2a0-id", "2024-01-01T00:00:00Z", fz_tp, data, size, &ev);
	if (kind == 4) {
		CHECK(rc == SB_ENOTFOUND);
		return;
	}
	ProtobufCMessage *m = protobuf_c_message_unpack(fz_kinds[kind].desc, NULL, size, data);
	if (m == NULL) {
		CHECK(rc == SB_EPROTO);
		return;
	}
	if (rc != 0) {
		CHECK(rc == SB_EPROTO); /* an event missing what it needs */
		protobuf_c_message_free_unpacked(m, NULL);
		return;
	}
	size_t k = 0;
	switch (kind) {
	case 0: {
		const Sb__Events__MessageCreated *e = (const void *)m;
		CHECK(ev.npubs == 1);
		struct fz_want w = {
			"conv:", e->conversation_id, "message.created", e->conversation_id,
			e->seq,  e->created_at_ms
		};
		fz_check_pub(&ev.pubs[0], &w);
		CHECK(strcmp(ev.tenant_id, e->tenant_id) == 0);
		break;
	}
	case 1: {
		const Sb__Events__ConversationCreated *e = (const void *)m;
		CHECK(ev.npubs == e->n_member_ids);
		for (size_t i = 0; i < e->n_member_ids; i++) {
			struct fz_want w = { "user:",
				             e->member_ids[i],
				             "conversation.created",
				             e->conversation_id,
				             0,
				             e->created_at_ms };
			fz_check_pub(&ev.pubs[i], &w);
		}
		break;
	}
	case 2: {
		const Sb__Events__MembersChanged *e = (const void *)m;
		CHECK(ev.npubs == e->n_added + e->n_removed + 1);
		for (size_t i = 0; i < e->n_added; i++, k++) {
			struct fz_want w = {
				"user:", e->added[i],     "conversation.joined", e->conversation_id,
				0,       e->changed_at_ms
			};
			fz_check_pub(&ev.pubs[k], &w);
		}
		for (size_t i = 0; i < e->n_removed; i++, k++) {
			struct fz_want w = {
				"user:", e->removed[i],   "conversation.left", e->conversation_id,
				0,       e->changed_at_ms
			};
			fz_check_pub(&ev.pubs[k], &w);
		}
		struct fz_want w = {
			"conv:", e->conversation_id, "members.changed", e->conversation_id,
			0,       e->changed_at_ms
		};
		fz_check_pub(&ev.pubs[k], &w);
		break;
	}
	case 3: {
		const Sb__Events__ConversationRead *e = (const void *)m;
		CHECK(ev.npubs == 1);
		struct fz_want w = {
			"conv:", e->conversation_id, "conversation.read", e->conversation_id,
			0,       e->read_at_ms
		};
		fz_check_pub(&ev.pubs[0], &w);
		break;
	}
	}
	/* The webhook body: {type, id, time, data}. */
	json_t *wh = json_loads(ev.webhook_body, JSON_REJECT_DUPLICATES, NULL);
	CHECK(json_is_object(wh) && json_is_object(json_object_get(wh, "data")));
	CHECK(strcmp(json_string_value(json_object_get(wh, "type")), ev.type) == 0);
	CHECK(strcmp(json_string_value(json_object_get(wh, "id")), "0191f2a0-id") == 0);
	json_decref(wh);
	ntf_event_free(&ev);
	protobuf_c_message_free_unpacked(m, NULL);
}

static void
fz_delivered(const uint8_t *data, size_t size)
{
	const uint8_t *part[3];
	size_t plen[3];
	for (int i = 0; i < 3; i++)
		fz_next(&data, &size, &part[i], &plen[i]);
	if (size < 16)
		return;
	int64_t seq, now;
	memcpy(&seq, data, 8);
	memcpy(&now, data + 8, 8);
	char *conv = fz_cstr(part[0], plen[0]), *user = fz_cstr(part[1], plen[1]),
	     *sender = fz_cstr(part[2], plen[2]);
	struct ntf_pub p;
	CHECK(ntf_frame_delivered(conv, user, seq, sender, now, &p) == 0);
	/* to the sender's channel, with the time given (any int64, negative included) */
	CHECK(strncmp(p.channel, "user:", 5) == 0 && strcmp(p.channel + 5, sender) == 0);
	struct rt_frame *f = NULL;
	CHECK(rt_frame_parse_pubsub(p.payload, p.len, &f) == 0);
	CHECK(f->seq == 0 && f->event_ms == now);
	json_t *o = json_loadb(rt_frame_text(f), f->len, JSON_REJECT_DUPLICATES, NULL);
	CHECK(json_is_object(o));
	CHECK(json_integer_value(json_object_get(o, "seq")) == seq);
	if (fz_utf8(user))
		CHECK(strcmp(json_string_value(json_object_get(o, "user_id")), user) == 0);
	if (fz_utf8(conv))
		CHECK(strcmp(json_string_value(json_object_get(o, "conversation_id")), conv) == 0);
	json_decref(o);
	rt_frame_unref(f);
	ntf_pub_free(&p);
	free(conv);
	free(user);
	free(sender);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int kind = data[0] % 6;
	if (kind == 5)
		fz_delivered(data + 1, size - 1);
	else
		fz_event(kind, data + 1, size - 1);
	return 0;
}
