/* frames.c: events of sb.messages.v1 turned into the Redis messages of the realtime contract
 * ("<seq> <event_time_ms>\n<frame-json>") and into webhook bodies. Pure: no I/O. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "events/messages_events.pb-c.h"
#include "sb_buf.h"
#include "sb_err.h"
#include "sb_json.h"
#include "sb_log.h"
#include "sb_rtframe.h"
#include "sb_util_time.h"

/* What each CloudEvents type becomes: its short name, payload type and frame builder. */
typedef int (*ntf_build_fn)(const ProtobufCMessage *m, struct ntf_event *ev);

struct ntf_kind {
	const char *ce_type;
	const char *type;
	const ProtobufCMessageDescriptor *desc;
	ntf_build_fn build;
};

static int ntf_build_created(const ProtobufCMessage *m, struct ntf_event *ev);
static int ntf_build_conv(const ProtobufCMessage *m, struct ntf_event *ev);
static int ntf_build_members(const ProtobufCMessage *m, struct ntf_event *ev);
static int ntf_build_read(const ProtobufCMessage *m, struct ntf_event *ev);

static const struct ntf_kind ntf_kinds[] = {
	{ "io.switchboard.message.created.v1", "message.created",
	  &sb__events__message_created__descriptor, ntf_build_created },
	{ "io.switchboard.conversation.created.v1", "conversation.created",
	  &sb__events__conversation_created__descriptor, ntf_build_conv },
	{ "io.switchboard.conversation.members_changed.v1", "members.changed",
	  &sb__events__members_changed__descriptor, ntf_build_members },
	{ "io.switchboard.conversation.read.v1", "conversation.read",
	  &sb__events__conversation_read__descriptor, ntf_build_read },
	{ NULL, NULL, NULL, NULL },
};

bool
ntf_event_type_known(const char *t)
{
	for (const struct ntf_kind *k = ntf_kinds; t != NULL && k->ce_type != NULL; k++)
		if (strcmp(k->type, t) == 0)
			return true;
	return false;
}

void
ntf_pub_free(struct ntf_pub *p)
{
	free(p->channel);
	free(p->payload);
	memset(p, 0, sizeof(*p));
}

void
ntf_event_free(struct ntf_event *ev)
{
	for (size_t i = 0; i < ev->npubs; i++)
		ntf_pub_free(&ev->pubs[i]);
	free(ev->pubs);
	free(ev->tenant_id);
	free(ev->webhook_body);
	memset(ev, 0, sizeof(*ev));
}

/* ntf_pub_make sets p to channel "<prefix><id>" and payload header (sb_rtframe_header) + frame. */
static int
ntf_pub_make(struct ntf_pub *p, const char *prefix, const char *id, int64_t seq, int64_t ms,
             const char *traceparent, const struct sb_buf *frame)
{
	struct sb_buf c = SB_BUF_INIT, b = SB_BUF_INIT;
	if (sb_buf_printf(&c, "%s%s", prefix, id) != 0 ||
	    sb_rtframe_header_tp(&b, seq, ms, traceparent) != 0 ||
	    sb_buf_append(&b, frame->data, frame->len) != 0)
		goto fail;
	p->len = b.len;
	p->channel = sb_buf_steal(&c);
	p->payload = sb_buf_steal(&b);
	return 0;
fail:
	sb_buf_free(&c);
	sb_buf_free(&b);
	return SB_ENOMEM;
}

/* ntf_add appends one publication to ev. */
static int
ntf_add(struct ntf_event *ev, const char *prefix, const char *id, int64_t seq, int64_t ms,
        const struct sb_buf *frame)
{
	struct ntf_pub *n = realloc(ev->pubs, (ev->npubs + 1) * sizeof(*n));
	if (n == NULL)
		return SB_ENOMEM;
	ev->pubs = n;
	if (ntf_pub_make(&n[ev->npubs], prefix, id, seq, ms, ev->traceparent, frame) != 0)
		return SB_ENOMEM;
	ev->npubs++;
	return 0;
}

static int
ntf_json_strs(struct sb_buf *b, char **v, size_t n)
{
	int rv = sb_buf_puts(b, "[");
	for (size_t i = 0; rv == 0 && i < n; i++) {
		if (i > 0)
			rv = sb_buf_puts(b, ",");
		if (rv == 0)
			rv = sb_buf_json_str(b, v[i]);
	}
	return rv != 0 ? rv : sb_buf_puts(b, "]");
}

static int64_t
ntf_ms_or_now(int64_t ms)
{
	return ms > 0 ? ms : sb_time_now_ms();
}

static int
ntf_build_created(const ProtobufCMessage *m, struct ntf_event *ev)
{
	const Sb__Events__MessageCreated *e = (const void *)m;
	struct sb_buf f = SB_BUF_INIT;
	char at[SB_TIME_RFC3339_LEN + 1];
	json_t *meta = NULL;
	char *meta_txt = NULL;
	int rv = SB_EPROTO;

	if (e->conversation_id[0] == '\0' || e->message_id[0] == '\0' || e->seq <= 0)
		return SB_EPROTO;
	if (sb_time_format_rfc3339(e->created_at_ms, at, sizeof(at)) != 0)
		return SB_EPROTO;
	/* metadata is the message's JSON object; anything else is published as {}. Most messages
	 * have none ("{}" or ""): no parse then. */
	if (e->metadata_json[0] != '\0' && strcmp(e->metadata_json, "{}") != 0) {
		meta = json_loads(e->metadata_json, JSON_REJECT_DUPLICATES, NULL);
		if (meta != NULL && json_is_object(meta))
			meta_txt = json_dumps(meta, JSON_COMPACT);
		else
			sb_log_kv(SB_LOG_WARN, "metadata_json is not a JSON object; publishing {}",
			          "message_id", e->message_id, NULL);
	}
	rv = SB_ENOMEM;
	if (sb_buf_puts(&f, "{\"type\":\"message.created\",\"conversation_id\":") != 0 ||
	    sb_buf_json_str(&f, e->conversation_id) != 0 ||
	    sb_buf_printf(&f, ",\"seq\":%lld,\"message\":{\"id\":", (long long)e->seq) != 0 ||
	    sb_buf_json_str(&f, e->message_id) != 0 || sb_buf_puts(&f, ",\"sender_id\":") != 0 ||
	    sb_buf_json_str(&f, e->sender_id) != 0 || sb_buf_puts(&f, ",\"content\":") != 0 ||
	    sb_buf_json_str(&f, e->content) != 0 || sb_buf_puts(&f, ",\"content_type\":") != 0 ||
	    sb_buf_json_str(&f, e->content_type) != 0 || sb_buf_puts(&f, ",\"metadata\":") != 0 ||
	    sb_buf_puts(&f, meta_txt ? meta_txt : "{}") != 0 ||
	    sb_rtframe_attachments(&f, e->attachments, e->n_attachments) != 0 ||
	    sb_buf_puts(&f, ",\"created_at\":") != 0 || sb_buf_json_str(&f, at) != 0 ||
	    sb_buf_puts(&f, "}") != 0)
		goto done;
	if (ev->traceparent[0] != '\0' &&
	    sb_buf_printf(&f, ",\"traceparent\":\"%s\"", ev->traceparent) != 0)
		goto done;
	if (sb_buf_puts(&f, "}") != 0)
		goto done;
	rv = ntf_add(ev, SB_REDIS_CONV_CHANNEL, e->conversation_id, e->seq,
	             ntf_ms_or_now(e->created_at_ms), &f);
	if (rv == 0 && (ev->tenant_id = strdup(e->tenant_id)) == NULL)
		rv = SB_ENOMEM;
done:
	free(meta_txt);
	json_decref(meta);
	sb_buf_free(&f);
	return rv;
}

static int
ntf_build_conv(const ProtobufCMessage *m, struct ntf_event *ev)
{
	const Sb__Events__ConversationCreated *e = (const void *)m;
	struct sb_buf f = SB_BUF_INIT;
	int rv = SB_ENOMEM;
	if (e->conversation_id[0] == '\0')
		return SB_EPROTO;
	if (sb_buf_puts(&f, "{\"type\":\"conversation.created\",\"conversation_id\":") != 0 ||
	    sb_buf_json_str(&f, e->conversation_id) != 0 || sb_buf_puts(&f, ",\"kind\":") != 0 ||
	    sb_buf_json_str(&f, e->kind) != 0 || sb_buf_puts(&f, ",\"title\":") != 0 ||
	    sb_buf_json_str(&f, e->title) != 0 || sb_buf_puts(&f, ",\"member_ids\":") != 0 ||
	    ntf_json_strs(&f, e->member_ids, e->n_member_ids) != 0 || sb_buf_puts(&f, "}") != 0)
		goto done;
	rv = 0;
	for (size_t i = 0; rv == 0 && i < e->n_member_ids; i++)
		rv = ntf_add(ev, SB_REDIS_USER_CHANNEL, e->member_ids[i], 0,
		             ntf_ms_or_now(e->created_at_ms), &f);
	if (rv == 0 && (ev->tenant_id = strdup(e->tenant_id)) == NULL)
		rv = SB_ENOMEM;
done:
	sb_buf_free(&f);
	return rv;
}

static int
ntf_build_members(const ProtobufCMessage *m, struct ntf_event *ev)
{
	const Sb__Events__MembersChanged *e = (const void *)m;
	struct sb_buf f = SB_BUF_INIT;
	int64_t ms = ntf_ms_or_now(e->changed_at_ms);
	int rv = SB_ENOMEM;
	if (e->conversation_id[0] == '\0')
		return SB_EPROTO;
	/* Joined and left frames go to each user's own channel. */
	for (int left = 0; left < 2; left++) {
		char **ids = left ? e->removed : e->added;
		size_t n = left ? e->n_removed : e->n_added;
		sb_buf_reset(&f);
		if (sb_buf_printf(&f, "{\"type\":\"conversation.%s\",\"conversation_id\":",
		                  left ? "left" : "joined") != 0 ||
		    sb_buf_json_str(&f, e->conversation_id) != 0 || sb_buf_puts(&f, "}") != 0)
			goto done;
		for (size_t i = 0; i < n; i++)
			if ((rv = ntf_add(ev, SB_REDIS_USER_CHANNEL, ids[i], 0, ms, &f)) != 0)
				goto done;
	}
	sb_buf_reset(&f);
	rv = SB_ENOMEM;
	if (sb_buf_puts(&f, "{\"type\":\"members.changed\",\"conversation_id\":") != 0 ||
	    sb_buf_json_str(&f, e->conversation_id) != 0 || sb_buf_puts(&f, ",\"added\":") != 0 ||
	    ntf_json_strs(&f, e->added, e->n_added) != 0 || sb_buf_puts(&f, ",\"removed\":") != 0 ||
	    ntf_json_strs(&f, e->removed, e->n_removed) != 0 || sb_buf_puts(&f, "}") != 0)
		goto done;
	rv = ntf_add(ev, SB_REDIS_CONV_CHANNEL, e->conversation_id, 0, ms, &f);
	if (rv == 0 && (ev->tenant_id = strdup(e->tenant_id)) == NULL)
		rv = SB_ENOMEM;
done:
	sb_buf_free(&f);
	return rv;
}

static int
ntf_build_read(const ProtobufCMessage *m, struct ntf_event *ev)
{
	const Sb__Events__ConversationRead *e = (const void *)m;
	struct sb_buf f = SB_BUF_INIT;
	int rv = SB_ENOMEM;
	if (e->conversation_id[0] == '\0' || e->user_id[0] == '\0')
		return SB_EPROTO;
	if (sb_buf_puts(&f, "{\"type\":\"conversation.read\",\"conversation_id\":") != 0 ||
	    sb_buf_json_str(&f, e->conversation_id) != 0 || sb_buf_puts(&f, ",\"user_id\":") != 0 ||
	    sb_buf_json_str(&f, e->user_id) != 0 ||
	    sb_buf_printf(&f, ",\"up_to_seq\":%lld}", (long long)e->up_to_seq) != 0)
		goto done;
	rv = ntf_add(ev, SB_REDIS_CONV_CHANNEL, e->conversation_id, 0, ntf_ms_or_now(e->read_at_ms),
	             &f);
	if (rv == 0 && (ev->tenant_id = strdup(e->tenant_id)) == NULL)
		rv = SB_ENOMEM;
done:
	sb_buf_free(&f);
	return rv;
}

/* ntf_webhook_body returns {"type","id","time","data"} with data the event in protobuf JSON,
 * written directly (no JSON tree: this runs for every event). */
static char *
ntf_webhook_body(const char *type, const char *ce_id, const char *ce_time,
                 const ProtobufCMessage *m)
{
	struct sb_buf b = SB_BUF_INIT;
	if (sb_buf_puts(&b, "{\"type\":") != 0 || sb_buf_json_str(&b, type) != 0 ||
	    sb_buf_puts(&b, ",\"id\":") != 0 || sb_buf_json_str(&b, ce_id) != 0 ||
	    sb_buf_puts(&b, ",\"time\":") != 0 || sb_buf_json_str(&b, ce_time) != 0 ||
	    sb_buf_puts(&b, ",\"data\":") != 0 || sb_pb_to_json_buf(m, &b) != 0 ||
	    sb_buf_puts(&b, "}") != 0) {
		sb_buf_free(&b);
		return NULL;
	}
	return sb_buf_steal(&b);
}

int
ntf_event_build(const char *ce_type, const char *ce_id, const char *ce_time,
                const char *traceparent, const void *payload, size_t len, struct ntf_event *out)
{
	const struct ntf_kind *k = ntf_kinds;
	ProtobufCMessage *m = NULL;
	struct sb_trace_ctx tc;
	int rv;

	memset(out, 0, sizeof(*out));
	if (traceparent != NULL && strlen(traceparent) == SB_TRACEPARENT_LEN &&
	    strncmp(traceparent, "00-", 3) == 0 && sb_trace_parse(traceparent, &tc) == 0)
		memcpy(out->traceparent, traceparent, sizeof(out->traceparent));
	while (k->ce_type != NULL && (ce_type == NULL || strcmp(k->ce_type, ce_type) != 0))
		k++;
	if (k->ce_type == NULL)
		return SB_ENOTFOUND;
	if (ce_id == NULL || ce_id[0] == '\0')
		return SB_EPROTO;
	m = protobuf_c_message_unpack(k->desc, NULL, len, payload);
	if (m == NULL)
		return SB_EPROTO;
	out->type = k->type;
	if ((rv = k->build(m, out)) != 0)
		goto fail;
	rv = SB_ENOMEM;
	out->webhook_body = ntf_webhook_body(k->type, ce_id, ce_time ? ce_time : "", m);
	if (out->webhook_body == NULL)
		goto fail;
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
fail:
	protobuf_c_message_free_unpacked(m, NULL);
	ntf_event_free(out);
	return rv;
}

int
ntf_frame_delivered(const char *conv, const char *user_id, int64_t seq, const char *sender,
                    int64_t now_ms, struct ntf_pub *out)
{
	struct sb_buf f = SB_BUF_INIT;
	int rv = SB_ENOMEM;
	memset(out, 0, sizeof(*out));
	if (sb_buf_puts(&f, "{\"type\":\"message.delivered\",\"conversation_id\":") != 0 ||
	    sb_buf_json_str(&f, conv) != 0 ||
	    sb_buf_printf(&f, ",\"seq\":%lld,\"user_id\":", (long long)seq) != 0 ||
	    sb_buf_json_str(&f, user_id) != 0 || sb_buf_puts(&f, "}") != 0)
		goto done;
	rv = ntf_pub_make(out, SB_REDIS_USER_CHANNEL, sender, 0, now_ms, NULL, &f);
done:
	sb_buf_free(&f);
	return rv;
}
