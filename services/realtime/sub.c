/* sub.c: a connection's subscription to one conversation (or to its own user channel), as a
 * state machine: CHECKING (messages.CheckMember, cached briefly) → WAIT_REDIS (the channel's
 * SUBSCRIBE not yet confirmed) → HISTORY (messages.ListMessages after the cursor, live frames
 * held) → LIVE; DEAD once ended. Recovery subscribes first, then reads history, so nothing
 * published in between is lost (recover.c merges without duplicates). lws thread only. */
#include "realtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "messages.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_rtframe.h"
#include "sb_util_time.h"

#define RT_HISTORY_PAGE 200

struct rt_member_ent {
	int64_t until_ms;
	int64_t last_seq;
};

/* One RPC to messages in flight: what to run with its result on the lws thread. */
struct rt_rpc_ctx {
	struct rt *rt;
	void (*done)(struct rt_ev *ev);
	void *ctx;
};

/* rt_sub_rpc_cb runs on an nng thread: hand the result over to the lws thread. */
static void
rt_sub_rpc_cb(struct sb_rpc_result *res, void *arg)
{
	struct rt_rpc_ctx *x = arg;
	struct rt *rt = x->rt;
	struct rt_ev *ev = calloc(1, sizeof(*ev));
	if (ev == NULL) { /* cannot hand it over: the connection is then stuck; log it */
		sb_log_kv(SB_LOG_ERROR, "out of memory handing an RPC result over", NULL);
		sb_rpc_result_free(res);
	} else {
		ev->kind = RT_EV_RPC;
		ev->rpc_done = x->done;
		ev->ctx = x->ctx;
		ev->res = *res;
		rt_inbox_post(&rt->inbox, ev);
	}
	free(x);
	atomic_fetch_sub(&rt->calls, 1); /* last: the stop hook waits for this */
}

int
rt_sub_rpc(struct rt_conn *c, const char *method, const ProtobufCMessage *req,
           const ProtobufCMessageDescriptor *resp, void (*done)(struct rt_ev *ev), void *ctx)
{
	struct rt *rt = c->rt;
	struct rt_rpc_ctx *x = malloc(sizeof(*x));
	if (x == NULL)
		return SB_ENOMEM;
	x->rt = rt;
	x->done = done;
	x->ctx = ctx;
	Sb__Rpc__Principal p = SB__RPC__PRINCIPAL__INIT;
	p.user_id = c->user;
	p.tenant_id = c->tenant;
	p.token_id = c->jti;
	struct sb_rpc_meta meta = { .principal = &p, .timeout_ms = 5000 };
	atomic_fetch_add(&rt->calls, 1);
	int rv = sb_rpc_call_async(rt->messages, method, req, resp, &meta, rt_sub_rpc_cb, x);
	if (rv != 0) {
		atomic_fetch_sub(&rt->calls, 1);
		free(x);
	}
	return rv;
}

void
rt_sub_unref(struct rt_sub *s)
{
	if (--s->refs == 0) {
		rt_cursor_clear(&s->cur);
		free(s);
	}
}

struct rt_sub *
rt_sub_find(struct rt_conn *c, const char *conv)
{
	for (size_t i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i]->conv, conv) == 0)
			return c->subs[i];
	return NULL;
}

static void
rt_sub_fix_idx(struct rt_sub *moved, size_t idx)
{
	moved->idx = idx;
}

void
rt_sub_end(struct rt_sub *s)
{
	struct rt_conn *c = s->conn;
	if (s->chan != NULL)
		rt_subs_leave(&c->rt->subs, s->chan, s->idx, rt_sub_fix_idx);
	s->chan = NULL;
	for (size_t i = 0; i < c->nsubs; i++)
		if (c->subs[i] == s) {
			c->subs[i] = c->subs[--c->nsubs];
			break;
		}
	s->state = RT_SUB_DEAD;
	rt_cursor_clear(&s->cur);
	rt_sub_unref(s);
}

static void
rt_sub_reply(struct rt_sub *s, bool recovered)
{
	if (!s->quiet)
		rt_conn_send_new(s->conn, rt_frame_subscribed(s->conv, recovered, s->cur.last));
	s->quiet = false;
}

static void
rt_sub_emit(struct rt_frame *f, void *arg)
{
	rt_conn_send(arg, f);
}

/* rt_sub_live ends a recovery. Recovered: the held frames still due go out, then the reply
 * (it follows the replay). Not recovered (the gap is over the bound, nothing was replayed): the
 * reply first, with the cursor as last_seq, then the held frames above it, which are live. */
static void
rt_sub_live(struct rt_sub *s, bool recovered)
{
	s->state = RT_SUB_LIVE;
	if (recovered) {
		rt_cursor_drain(&s->cur, rt_sub_emit, s->conn);
		rt_sub_reply(s, true);
	} else {
		rt_sub_reply(s, false);
		rt_cursor_drain(&s->cur, rt_sub_emit, s->conn);
	}
	struct rt_metrics *m = &s->conn->rt->m;
	sb_series_inc(recovered ? m->rec_ok : m->rec_gap);
}

/* rt_sub_encode makes the message.created frame of a history item, byte for byte the shape
 * the notifier publishes. */
static struct rt_frame *
rt_sub_encode(const Sb__Messages__Message *m, const char *conv)
{
	struct sb_buf b = SB_BUF_INIT;
	sb_buf_puts(&b, "{\"type\":\"message.created\",\"conversation_id\":");
	sb_buf_json_str(&b, conv);
	sb_buf_printf(&b, ",\"seq\":%lld,\"message\":{\"id\":", (long long)m->seq);
	sb_buf_json_str(&b, m->id);
	sb_buf_puts(&b, ",\"sender_id\":");
	sb_buf_json_str(&b, m->sender_id);
	sb_buf_puts(&b, ",\"content\":");
	sb_buf_json_str(&b, m->content);
	sb_buf_puts(&b, ",\"content_type\":");
	sb_buf_json_str(&b, m->content_type);
	sb_buf_puts(&b, ",\"metadata\":{");
	for (size_t i = 0; i < m->n_metadata; i++) {
		if (i)
			sb_buf_puts(&b, ",");
		sb_buf_json_str(&b, m->metadata[i]->key);
		sb_buf_puts(&b, ":");
		sb_buf_json_str(&b, m->metadata[i]->value);
	}
	sb_buf_puts(&b, "}");
	sb_rtframe_attachments(&b, m->attachments, m->n_attachments);
	sb_buf_puts(&b, ",\"created_at\":");
	sb_buf_json_str(&b, m->created_at);
	sb_buf_puts(&b, "}}");
	struct rt_frame *f = b.data ? rt_frame_new(b.data, b.len, m->seq, 0) : NULL;
	sb_buf_free(&b);
	if (f != NULL) {
		snprintf(f->type, sizeof(f->type), "message.created");
		snprintf(f->conv, sizeof(f->conv), "%s", conv);
		if (strlen(m->sender_id) < sizeof(f->sender))
			snprintf(f->sender, sizeof(f->sender), "%s", m->sender_id);
	}
	return f;
}

static void rt_sub_history(struct rt_sub *s);

static void
rt_sub_history_done(struct rt_ev *ev)
{
	struct rt_sub *s = ev->ctx;
	if (s->state != RT_SUB_HISTORY)
		goto done; /* ended meanwhile: s->conn may be gone */
	struct rt *rt = s->conn->rt;
	if (ev->res.code != 0 || ev->res.resp == NULL) {
		sb_log_kv(SB_LOG_WARN, "history read failed", "code",
		          sb_rpc_code_name(ev->res.code), NULL);
		rt_conn_send_new(
		    s->conn, rt_frame_error("unavailable", "history unavailable: reload", s->conv));
		sb_series_inc(rt->m.rec_fail);
		rt_cursor_drain(&s->cur, rt_sub_emit, s->conn);
		s->state = RT_SUB_LIVE;
		rt_sub_reply(s, false);
		goto done;
	}
	Sb__Messages__ListMessagesResponse *r = (void *)ev->res.resp;
	/* A page is checked whole before any of it is sent: over the bound, nothing of it goes
	 * out and the client reloads (rt_sub_member checked the bound against a fresh last_seq
	 * already; this catches messages sent since). */
	if (r->n_items > 0 &&
	    r->items[r->n_items - 1]->seq - s->since > rt->cfg->recovery_max_gap) {
		if (r->items[r->n_items - 1]->seq > s->cur.last)
			s->cur.last = r->items[r->n_items - 1]->seq;
		rt_sub_live(s, false);
		goto done;
	}
	for (size_t i = 0; i < r->n_items; i++) {
		if (!rt_cursor_history(&s->cur, r->items[i]->seq))
			continue;
		rt_conn_send_new(s->conn, rt_sub_encode(r->items[i], s->conv));
	}
	if (r->has_more && r->n_items > 0) {
		rt_sub_history(s);
	} else {
		rt_sub_live(s, true);
	}
done:
	rt_sub_unref(s);
}

static void
rt_sub_history(struct rt_sub *s)
{
	s->state = RT_SUB_HISTORY;
	Sb__Messages__ListMessagesRequest req = SB__MESSAGES__LIST_MESSAGES_REQUEST__INIT;
	req.id = s->conv;
	req.after_seq = s->cur.last;
	req.limit = RT_HISTORY_PAGE;
	s->refs++;
	if (rt_sub_rpc(s->conn, "messages.ListMessages", &req.base,
	               &sb__messages__list_messages_response__descriptor, rt_sub_history_done,
	               s) != 0) {
		s->refs--;
		sb_series_inc(s->conn->rt->m.rec_fail);
		rt_cursor_drain(&s->cur, rt_sub_emit, s->conn);
		s->state = RT_SUB_LIVE;
		rt_sub_reply(s, false);
	}
}

/* rt_sub_member continues once membership is known: join the channel, then recover. */
static void
rt_sub_member(struct rt_sub *s, int64_t last_seq)
{
	struct rt *rt = s->conn->rt;
	char name[RT_CHAN_MAX];
	snprintf(name, sizeof(name), SB_REDIS_CONV_CHANNEL "%s", s->conv);
	s->chan = rt_subs_join(&rt->subs, name, s, &s->idx);
	if (s->chan == NULL) {
		rt_conn_send_new(s->conn, rt_frame_error("internal", "out of memory", s->conv));
		rt_sub_end(s);
		return;
	}
	if (s->since < 0) {
		s->state = RT_SUB_LIVE;
		rt_sub_reply(s, true);
		return;
	}
	if (last_seq >= 0 && last_seq - s->since > rt->cfg->recovery_max_gap) {
		s->cur.last = last_seq;
		s->state = RT_SUB_LIVE;
		rt_sub_reply(s, false);
		sb_series_inc(rt->m.rec_gap);
		return;
	}
	s->cur.last = s->since;
	s->cur.recovering = true;
	if (s->chan->active)
		rt_sub_history(s);
	else
		s->state = RT_SUB_WAIT_REDIS;
}

static void
rt_sub_check_done(struct rt_ev *ev)
{
	struct rt_sub *s = ev->ctx;
	if (s->state != RT_SUB_CHECKING)
		goto done; /* ended meanwhile: s->conn may be gone */
	struct rt *rt = s->conn->rt;
	Sb__Messages__CheckMemberResponse *r = (void *)ev->res.resp;
	if (ev->res.code != 0 || r == NULL || !r->member) {
		bool denied = ev->res.code == 0 || ev->res.code == SB__RPC__CODE__NOT_FOUND ||
		              ev->res.code == SB__RPC__CODE__PERMISSION_DENIED;
		rt_conn_send_new(s->conn,
		                 rt_frame_error(denied ? "forbidden" : "unavailable",
		                                denied ? "not a member of this conversation"
		                                       : "cannot check membership: retry",
		                                s->conv));
		rt_sub_end(s);
		goto done;
	}
	if (rt->cfg->member_cache_ms > 0) {
		char key[2 * RT_ID_MAX + 2];
		snprintf(key, sizeof(key), "%s|%s", s->conn->user, s->conv);
		struct rt_member_ent *e = rt_map_get(&rt->member_cache, key);
		if (e == NULL && (e = malloc(sizeof(*e))) != NULL &&
		    rt_map_put(&rt->member_cache, key, e) != 0) {
			free(e);
			e = NULL;
		}
		if (e != NULL) {
			e->until_ms = sb_time_mono_ms() + rt->cfg->member_cache_ms;
			e->last_seq = r->last_seq;
		}
	}
	rt_sub_member(s, r->last_seq);
done:
	rt_sub_unref(s);
}

/* rt_sub_forget drops the cached membership of c's user in conv. */
static void
rt_sub_forget(struct rt_conn *c, const char *conv)
{
	char key[2 * RT_ID_MAX + 2];
	snprintf(key, sizeof(key), "%s|%s", c->user, conv);
	free(rt_map_del(&c->rt->member_cache, key));
}

void
rt_sub_open(struct rt_conn *c, const char *conv, int64_t since, bool checked)
{
	if (c->state >= RT_CONN_CLOSING)
		return;
	struct rt_sub *s = conv ? rt_sub_find(c, conv) : NULL;
	if (s != NULL) {
		if (s->state != RT_SUB_LIVE) {
			rt_conn_send_new(
			    c, rt_frame_error("bad_state", "subscription in progress", conv));
		} else if (since < 0) {
			rt_sub_reply(s, true);
		} else {
			s->since = since;
			s->cur.last = since;
			s->cur.recovering = true;
			rt_sub_history(s);
		}
		return;
	}
	if (c->nsubs == c->capsubs) {
		size_t n = c->capsubs ? c->capsubs * 2 : 4;
		struct rt_sub **a = realloc(c->subs, n * sizeof(*a));
		if (a == NULL)
			goto nomem;
		c->subs = a;
		c->capsubs = n;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto nomem;
	s->refs = 1;
	s->conn = c;
	s->since = since;
	c->subs[c->nsubs++] = s;
	if (conv == NULL) { /* the user channel */
		char name[RT_CHAN_MAX];
		snprintf(name, sizeof(name), SB_REDIS_USER_CHANNEL "%s", c->user);
		s->state = RT_SUB_LIVE;
		if ((s->chan = rt_subs_join(&c->rt->subs, name, s, &s->idx)) == NULL)
			rt_sub_end(s);
		return;
	}
	snprintf(s->conv, sizeof(s->conv), "%s", conv);
	s->state = RT_SUB_CHECKING;
	if (checked) {
		rt_sub_member(s, -1);
		return;
	}
	char key[2 * RT_ID_MAX + 2];
	snprintf(key, sizeof(key), "%s|%s", c->user, conv);
	struct rt_member_ent *e = rt_map_get(&c->rt->member_cache, key);
	/* a recovery asks messages again: the gap is bounded against a fresh last_seq */
	if (e != NULL && since < 0 && e->until_ms > sb_time_mono_ms()) {
		rt_sub_member(s, e->last_seq);
		return;
	}
	Sb__Messages__CheckMemberRequest req = SB__MESSAGES__CHECK_MEMBER_REQUEST__INIT;
	req.conversation_id = s->conv;
	req.user_id = c->user;
	s->refs++;
	if (rt_sub_rpc(c, "messages.CheckMember", &req.base,
	               &sb__messages__check_member_response__descriptor, rt_sub_check_done,
	               s) != 0) {
		s->refs--;
		rt_conn_send_new(c, rt_frame_error("unavailable", "cannot check membership", conv));
		rt_sub_end(s);
	}
	return;
nomem:
	rt_conn_send_new(c, rt_frame_error("internal", "out of memory", conv));
}

void
rt_sub_frame(struct rt_sub *s, struct rt_frame *f)
{
	if (s->state == RT_SUB_DEAD || s->state == RT_SUB_CHECKING)
		return;
	struct rt_conn *c = s->conn;
	if (s->conv[0] != '\0') {
		if (rt_cursor_live(&s->cur, f) == 1)
			rt_conn_send(c, f);
		return;
	}
	/* the user channel: membership changes, then the frame itself */
	rt_conn_send(c, f);
	if (c->state != RT_CONN_OPEN || !rt_id_valid(f->conv, strlen(f->conv)))
		return;
	if (strcmp(f->type, "conversation.created") == 0 ||
	    strcmp(f->type, "conversation.joined") == 0) {
		/* Events from before the connection (a notifier catching up) are already covered:
		 * by ListMemberships at connect time (1 s of overlap for its race; a duplicate is a
		 * no-op), or, with ?resume=1, by the client's own subscribe frames. */
		int64_t since_ms = c->connected_ms - (c->resume ? 0 : 1000);
		if (f->event_ms > 0 && f->event_ms < since_ms)
			return;
		if (rt_sub_find(c, f->conv) == NULL)
			rt_sub_open(c, f->conv,
			            strcmp(f->type, "conversation.created") == 0 ? 0 : -1, true);
	} else if (strcmp(f->type, "conversation.left") == 0) {
		rt_sub_forget(c, f->conv);
		struct rt_sub *old = rt_sub_find(c, f->conv);
		if (old != NULL)
			rt_sub_end(old);
	}
}

void
rt_sub_suback(struct rt_chan *chan)
{
	chan->active = true;
	for (size_t i = 0; i < chan->n; i++) {
		struct rt_sub *s = chan->members[i];
		if (s->state == RT_SUB_WAIT_REDIS)
			rt_sub_history(s);
	}
}

void
rt_sub_resync(struct rt_conn *c)
{
	for (size_t i = 0; i < c->nsubs; i++) {
		struct rt_sub *s = c->subs[i];
		if (s->conv[0] && s->state == RT_SUB_LIVE && s->cur.last > 0) {
			s->quiet = true;
			s->since = s->cur.last;
			s->cur.recovering = true;
			rt_sub_history(s);
		}
	}
}
