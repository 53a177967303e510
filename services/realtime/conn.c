/* conn.c: one WebSocket connection as an explicit state machine (AUTHWAIT → JOINING → OPEN →
 * CLOSING → CLOSED), its bounded send queue, its deadlines (ping, pong, token expiry, auth: one
 * entry in rt->timers) and the client commands it accepts, dispatched from one table
 * (rt_conn_cmds). Runs on the lws thread only. */
#include "realtime.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <libwebsockets.h>

#include "messages.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

/* how often a pong deadline is checked again while the peer's bytes wait to be read */
#define RT_PONG_RECHECK_MS 50

void
rt_conn_unref(struct rt_conn *c)
{
	if (--c->refs > 0)
		return;
	free(c->subs);
	free(c);
}

static void
rt_conn_wake(struct rt_conn *c)
{
	if (c->wsi != NULL)
		lws_callback_on_writable(c->wsi);
}

void
rt_conn_close(struct rt_conn *c, int code, const char *reason)
{
	if (c->state >= RT_CONN_CLOSING)
		return;
	c->state = RT_CONN_CLOSING;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	if (code == RT_CLOSE_SLOW_CONSUMER)
		sb_series_inc(c->rt->m.slow);
	char num[16];
	snprintf(num, sizeof(num), "%d", code);
	sb_log_kv(SB_LOG_INFO, "closing a WebSocket", "code", num, "reason", c->close_reason,
	          "user_id", c->user[0] ? c->user : "-", NULL);
	rt_conn_wake(c);
	/* a peer that does not read may never make the socket writable: kill it then */
	if (c->wsi != NULL)
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

void
rt_conn_send(struct rt_conn *c, struct rt_frame *f)
{
	if (c->state >= RT_CONN_CLOSING || f == NULL)
		return;
	if (c->qbytes + f->len > (size_t)c->rt->cfg->send_queue_bytes) {
		rt_conn_close(c, RT_CLOSE_SLOW_CONSUMER, "slow consumer: resume with since_seq");
		return;
	}
	struct rt_qent *q = malloc(sizeof(*q));
	if (q == NULL) {
		rt_conn_close(c, 1011, "out of memory");
		return;
	}
	q->next = NULL;
	q->f = rt_frame_ref(f);
	if (c->qtail)
		c->qtail->next = q;
	else
		c->qhead = q;
	c->qtail = q;
	c->qbytes += f->len;
	rt_conn_wake(c);
}

void
rt_conn_send_new(struct rt_conn *c, struct rt_frame *f)
{
	if (f == NULL)
		return;
	rt_conn_send(c, f);
	rt_frame_unref(f);
}

static void
rt_conn_queue_clear(struct rt_conn *c)
{
	struct rt_qent *q = c->qhead, *next;
	for (; q; q = next) {
		next = q->next;
		rt_frame_unref(q->f);
		free(q);
	}
	c->qhead = c->qtail = NULL;
	c->qbytes = 0;
}

/* rt_conn_ping_sent starts the pong timeout: the ping is in the kernel's hands now. */
static void
rt_conn_ping_sent(struct rt_conn *c)
{
	c->ping = RT_PING_SENT;
	c->ping_sent_ms = sb_time_mono_ms();
	rt_conn_timer(c);
}

int
rt_conn_writable(struct rt_conn *c)
{
	if (c->state == RT_CONN_CLOSING) {
		/* lws drops the close frame (the peer sees 1006) while part of an earlier frame
		 * is still buffered: flush that first (the close timeout bounds the wait) */
		if (lws_partial_buffered(c->wsi)) {
			lws_callback_on_writable(c->wsi);
			return 0;
		}
		lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
		                 (unsigned char *)c->close_reason, strlen(c->close_reason));
		return -1;
	}
	if (c->ping == RT_PING_FLUSHING && !lws_partial_buffered(c->wsi)) {
		rt_conn_ping_sent(c); /* lws wrote the rest of it before calling us */
		if (c->state == RT_CONN_CLOSING)
			return 0; /* a deadline passed meanwhile: the close is on its way */
	}
	if (c->ping == RT_PING_DUE) {
		/* lws 4.1 drops a PONG with an empty payload before the protocol callback, so the
		 * ping carries 8 bytes (the peer echoes them) for LWS_CALLBACK_RECEIVE_PONG to run
		 */
		unsigned char buf[LWS_PRE + 8];
		memcpy(buf + LWS_PRE, "sb-ping!", 8);
		if (lws_write(c->wsi, buf + LWS_PRE, 8, LWS_WRITE_PING) < 0)
			return -1;
		if (lws_partial_buffered(c->wsi)) {
			c->ping = RT_PING_FLUSHING;
			lws_callback_on_writable(c->wsi);
		} else {
			rt_conn_ping_sent(c);
		}
		if (c->qhead)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	struct rt_qent *q = c->qhead;
	if (q == NULL)
		return 0;
	c->qhead = q->next;
	if (c->qhead == NULL)
		c->qtail = NULL;
	c->qbytes -= q->f->len;
	struct rt_frame *f = q->f;
	free(q);
	int n = lws_write(c->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
	if (n >= 0 && f->event_ms > 0) {
		int64_t ms = sb_time_now_ms() - f->event_ms;
		sb_series_observe(c->rt->m.latency, ms < 0 ? 0 : (double)ms / 1000.0);
	}
	if (n >= 0 && f->seq > 0 && f->sender[0] && strcmp(f->type, "message.created") == 0)
		rt_delivered_add(&c->rt->delivered, f, c->user);
	rt_frame_unref(f);
	if (n < 0)
		return -1;
	if (c->qhead)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* rt_conn_unread tells whether the peer sent bytes the loop has not read yet: a pong may be
 * among them. */
static bool
rt_conn_unread(struct rt_conn *c)
{
	int n = 0;
	lws_sockfd_type fd = lws_get_socket_fd(c->wsi);
	return fd >= 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* rt_conn_ping_timer advances the keepalive and returns its next deadline (monotonic ms), or
 * -1 after closing the connection. */
static int64_t
rt_conn_ping_timer(struct rt_conn *c, int64_t mono)
{
	const struct realtime_cfg *cfg = c->rt->cfg;
	int64_t deadline;
	switch (c->ping) {
	case RT_PING_IDLE:
		if (mono < c->next_ping_ms)
			return c->next_ping_ms;
		c->ping = RT_PING_DUE;
		c->ping_queued_ms = mono;
		rt_conn_wake(c);
		/* fall through */
	case RT_PING_DUE:
	case RT_PING_FLUSHING:
		/* not on the wire yet, so no pong can be late. Only a peer that stopped reading
		 * (lws holds bytes the kernel refused) is given up, after an interval and a
		 * timeout; a loop that is merely late writes the ping when it gets there. */
		deadline = c->ping_queued_ms + cfg->ping_interval_ms + cfg->pong_timeout_ms;
		if (mono < deadline)
			return deadline;
		if (lws_partial_buffered(c->wsi)) {
			rt_conn_close(c, RT_CLOSE_POLICY, "peer not reading (ping not sent)");
			return -1;
		}
		return mono + cfg->pong_timeout_ms;
	case RT_PING_SENT:
	default:
		deadline = c->ping_sent_ms + cfg->pong_timeout_ms;
		if (mono < deadline)
			return deadline;
		/* a late loop may not have read the pong yet: give the unread bytes a moment */
		if (mono < deadline + cfg->pong_timeout_ms && rt_conn_unread(c))
			return mono + RT_PONG_RECHECK_MS;
		rt_conn_close(c, RT_CLOSE_POLICY, "no pong");
		return -1;
	}
}

void
rt_conn_timer(struct rt_conn *c)
{
	if (c->wsi == NULL || c->state >= RT_CONN_CLOSING)
		return;
	int64_t mono = sb_time_mono_ms(), now = sb_time_now_ms();
	if (c->state == RT_CONN_AUTHWAIT && mono >= c->auth_deadline_ms) {
		rt_conn_close(c, RT_CLOSE_UNAUTHORIZED, "no auth frame in time");
		return;
	}
	if (c->exp_ms > 0 && now >= c->exp_ms) {
		rt_conn_close(c, RT_CLOSE_UNAUTHORIZED, "token expired");
		return;
	}
	int64_t next = rt_conn_ping_timer(c, mono);
	if (next < 0)
		return;
	if (c->state == RT_CONN_AUTHWAIT && c->auth_deadline_ms < next)
		next = c->auth_deadline_ms;
	if (c->exp_ms > 0 && mono + (c->exp_ms - now) < next)
		next = mono + (c->exp_ms - now);
	if (rt_timer_set(&c->rt->timers, &c->timer, next > mono ? next : mono + 1) != 0)
		rt_conn_close(c, 1011, "out of memory");
}

void
rt_conn_deadline(struct rt_timer *tm, void *arg)
{
	(void)arg;
	rt_conn_timer((struct rt_conn *)(void *)((char *)tm - offsetof(struct rt_conn, timer)));
}

void
rt_conn_pong(struct rt_conn *c)
{
	if (c->ping != RT_PING_SENT && c->ping != RT_PING_FLUSHING)
		return; /* unsolicited: a peer may send pongs as heartbeats */
	c->ping = RT_PING_IDLE;
	c->next_ping_ms = sb_time_mono_ms() + c->rt->cfg->ping_interval_ms;
	rt_conn_timer(c);
}

int
rt_conn_verify(struct rt *rt, const char *token, size_t len, struct sb_jwt_principal *p)
{
	int rv = sb_authn_verify(&rt->authn, token, len, p);
	if (rv == 0 && p->user_id[0] == '\0')
		rv = SB_JWT_BAD_CLAIMS; /* a client acting on its own behalf has no conversations */
	if (rv == 0 && (!rt_id_valid(p->user_id, strlen(p->user_id)) ||
	                strlen(p->tenant_id) >= RT_ID_MAX || p->tenant_id[0] == '\0'))
		rv = SB_JWT_BAD_CLAIMS;
	if (rv != 0) {
		const char *name = sb_jwt_reason_name(rv);
		sb_series_inc(sb_metric_with(rt->m.refused_m, name ? name : "error"));
		sb_log_kv(SB_LOG_INFO, "access token refused", "reason", name ? name : "error",
		          NULL);
	}
	return rv;
}

static void
rt_conn_memberships_done(struct rt_ev *ev)
{
	struct rt_conn *c = ev->ctx;
	if (c->state == RT_CONN_JOINING) {
		if (ev->res.code != 0 || ev->res.resp == NULL) {
			sb_log_kv(SB_LOG_WARN, "ListMemberships failed", "code",
			          sb_rpc_code_name(ev->res.code), NULL);
			rt_conn_close(c, 1011, "messages unavailable: retry");
		} else {
			Sb__Messages__ListMembershipsResponse *r = (void *)ev->res.resp;
			struct sb_buf b = SB_BUF_INIT;
			bool failed = sb_buf_puts(&b, "{\"type\":\"ready\",\"user_id\":") ||
			              sb_buf_json_str(&b, c->user) ||
			              sb_buf_printf(&b, ",\"resume\":%s,\"conversation_ids\":[",
			                            c->resume ? "true" : "false");
			for (size_t i = 0; !failed && i < r->n_conversation_ids; i++)
				failed = (i > 0 && sb_buf_puts(&b, ",")) ||
				         sb_buf_json_str(&b, r->conversation_ids[i]);
			failed = failed || sb_buf_puts(&b, "]}");
			c->state = RT_CONN_OPEN;
			if (!failed)
				rt_conn_send_new(c, rt_frame_new(b.data, b.len, 0, 0));
			else
				rt_conn_close(c, 1011, "out of memory");
			sb_buf_free(&b);
			if (!c->resume)
				for (size_t i = 0; i < r->n_conversation_ids; i++) {
					const char *id = r->conversation_ids[i];
					if (rt_id_valid(id, strlen(id)))
						rt_sub_open(c, id, -1, true);
				}
		}
	}
	rt_conn_unref(c);
}

void
rt_conn_authenticated(struct rt_conn *c, const struct sb_jwt_principal *p)
{
	snprintf(c->user, sizeof(c->user), "%.63s", p->user_id);
	snprintf(c->tenant, sizeof(c->tenant), "%.63s", p->tenant_id);
	snprintf(c->jti, sizeof(c->jti), "%.63s", p->jti);
	c->exp_ms = p->exp * 1000;
	struct rt *rt = c->rt;
	intptr_t n = (intptr_t)rt_map_get(&rt->users, c->user);
	if (n >= rt->cfg->max_conn_per_user) {
		rt_conn_close(c, RT_CLOSE_TOO_MANY, "too many connections for this user");
		return;
	}
	if (rt_map_put(&rt->users, c->user, (void *)(n + 1)) != 0) {
		rt_conn_close(c, 1011, "out of memory");
		return;
	}
	c->counted = true;
	c->state = RT_CONN_JOINING;
	rt_sub_open(c, NULL, -1, true); /* the user channel: subs[0] */
	Sb__Messages__ListMembershipsRequest req = SB__MESSAGES__LIST_MEMBERSHIPS_REQUEST__INIT;
	req.user_id = c->user;
	c->refs++;
	if (rt_sub_rpc(c, "messages.ListMemberships", &req.base,
	               &sb__messages__list_memberships_response__descriptor,
	               rt_conn_memberships_done, c) != 0) {
		c->refs--;
		rt_conn_close(c, 1011, "internal error");
	}
	rt_conn_timer(c);
}

static void
rt_conn_read_done(struct rt_ev *ev)
{
	struct rt_conn *c = ev->ctx;
	if (c->state == RT_CONN_OPEN && ev->res.code != 0) {
		const char *code = ev->res.code == SB__RPC__CODE__PERMISSION_DENIED ||
		                           ev->res.code == SB__RPC__CODE__NOT_FOUND
		                       ? "forbidden"
		                   : ev->res.code == SB__RPC__CODE__INVALID_ARGUMENT
		                       ? "invalid_argument"
		                       : "unavailable";
		rt_conn_send_new(c, rt_frame_error(code, ev->res.message, NULL));
	}
	rt_conn_unref(c);
}

/* --- client commands: one handler and one row each ------------------------------------- */

static void
rt_conn_cmd_auth(struct rt_conn *c, const struct rt_cmd *cmd)
{
	struct sb_jwt_principal *p = malloc(sizeof(*p));
	if (p == NULL || rt_conn_verify(c->rt, cmd->token, strlen(cmd->token), p) != 0)
		rt_conn_close(c, RT_CLOSE_UNAUTHORIZED, "invalid token");
	else
		rt_conn_authenticated(c, p);
	if (p != NULL)
		explicit_bzero(p, sizeof(*p));
	free(p);
}

static void
rt_conn_cmd_refresh(struct rt_conn *c, const struct rt_cmd *cmd)
{
	struct sb_jwt_principal *p = malloc(sizeof(*p));
	if (p == NULL || rt_conn_verify(c->rt, cmd->token, strlen(cmd->token), p) != 0) {
		rt_conn_close(c, RT_CLOSE_UNAUTHORIZED, "invalid token");
	} else if (strcmp(p->user_id, c->user) != 0 || strcmp(p->tenant_id, c->tenant) != 0) {
		rt_conn_close(c, RT_CLOSE_UNAUTHORIZED, "token of another user");
	} else {
		c->exp_ms = p->exp * 1000;
		rt_conn_send_new(c, rt_frame_simple("refreshed", cmd->req_id));
		rt_conn_timer(c);
	}
	if (p != NULL)
		explicit_bzero(p, sizeof(*p));
	free(p);
}

static void
rt_conn_cmd_ping(struct rt_conn *c, const struct rt_cmd *cmd)
{
	rt_conn_send_new(c, rt_frame_simple("pong", cmd->req_id));
}

static void
rt_conn_cmd_subscribe(struct rt_conn *c, const struct rt_cmd *cmd)
{
	rt_sub_open(c, cmd->conv, cmd->seq, false);
}

static void
rt_conn_cmd_unsubscribe(struct rt_conn *c, const struct rt_cmd *cmd)
{
	struct rt_sub *s = rt_sub_find(c, cmd->conv);
	if (s != NULL)
		rt_sub_end(s);
	struct sb_buf b = SB_BUF_INIT;
	bool failed = sb_buf_puts(&b, "{\"type\":\"unsubscribed\",\"conversation_id\":") ||
	              sb_buf_json_str(&b, cmd->conv) || sb_buf_puts(&b, "}");
	if (!failed)
		rt_conn_send_new(c, rt_frame_new(b.data, b.len, 0, 0));
	sb_buf_free(&b);
}

static void
rt_conn_cmd_read(struct rt_conn *c, const struct rt_cmd *cmd)
{
	Sb__Messages__MarkReadRequest req = SB__MESSAGES__MARK_READ_REQUEST__INIT;
	req.id = (char *)cmd->conv;
	req.up_to_seq = cmd->seq;
	c->refs++;
	if (rt_sub_rpc(c, "messages.MarkRead", &req.base,
	               &sb__messages__mark_read_response__descriptor, rt_conn_read_done, c) != 0) {
		c->refs--;
		rt_conn_send_new(c, rt_frame_error("unavailable", "cannot mark read", NULL));
	}
}

#define RT_IN(state)    (1u << (state))
#define RT_AUTHED       (RT_IN(RT_CONN_JOINING) | RT_IN(RT_CONN_OPEN))
#define RT_NOT_YET_OPEN "not ready yet: wait for the ready frame"

/* What each client command does (frame.c's rt_cmd_defs has its syntax), indexed by type: the
 * connection states that accept it, the bad_state error's message in any other state, and its
 * handler. Before authentication only auth gets this far (rt_conn_rx closes the connection for
 * anything else), so a row lists AUTHWAIT only when the command is auth. */
static const struct rt_conn_cmd {
	unsigned states; /* RT_IN() of each state that accepts the command */
	const char *refused;
	void (*run)(struct rt_conn *c, const struct rt_cmd *cmd);
} rt_conn_cmds[RT_CMD_COUNT] = {
	[RT_CMD_AUTH] = { RT_IN(RT_CONN_AUTHWAIT), "already authenticated: use refresh",
	                  rt_conn_cmd_auth },
	[RT_CMD_REFRESH] = { RT_AUTHED, "authenticate first", rt_conn_cmd_refresh },
	[RT_CMD_PING] = { RT_AUTHED, "authenticate first", rt_conn_cmd_ping },
	[RT_CMD_SUBSCRIBE] = { RT_IN(RT_CONN_OPEN), RT_NOT_YET_OPEN, rt_conn_cmd_subscribe },
	[RT_CMD_UNSUBSCRIBE] = { RT_IN(RT_CONN_OPEN), RT_NOT_YET_OPEN, rt_conn_cmd_unsubscribe },
	[RT_CMD_READ] = { RT_IN(RT_CONN_OPEN), RT_NOT_YET_OPEN, rt_conn_cmd_read },
};

/* rt_conn_cmd runs a parsed command through its row. */
static void
rt_conn_cmd(struct rt_conn *c, const struct rt_cmd *cmd)
{
	const struct rt_conn_cmd *d =
	    cmd->type > 0 && cmd->type < RT_CMD_COUNT ? &rt_conn_cmds[cmd->type] : NULL;
	if (d == NULL || d->run == NULL) {
		rt_conn_send_new(c, rt_frame_error("internal", "command without a handler", NULL));
		return;
	}
	if ((d->states & RT_IN(c->state)) == 0) {
		rt_conn_send_new(c, rt_frame_error("bad_state", d->refused, cmd->conv));
		return;
	}
	d->run(c, cmd);
}

void
rt_conn_rx(struct rt_conn *c, const char *text, size_t len)
{
	if (c->state >= RT_CONN_CLOSING)
		return;
	struct rt_cmd cmd;
	int rv = rt_cmd_parse(text, len, &cmd);
	if (c->state == RT_CONN_AUTHWAIT && cmd.type != RT_CMD_AUTH)
		rt_conn_close(c, RT_CLOSE_UNAUTHORIZED, "the first frame must be auth");
	else if (rv != 0)
		rt_conn_send_new(c,
		                 rt_frame_error(cmd.code ? cmd.code : "internal",
		                                cmd.err[0] ? cmd.err : "out of memory", cmd.conv));
	else
		rt_conn_cmd(c, &cmd);
	rt_cmd_clear(&cmd);
}

void
rt_conn_closed(struct rt_conn *c)
{
	rt_timer_cancel(&c->rt->timers, &c->timer);
	c->wsi = NULL;
	c->state = RT_CONN_CLOSED;
	while (c->nsubs > 0)
		rt_sub_end(c->subs[c->nsubs - 1]);
	rt_conn_queue_clear(c);
	if (c->rx != NULL) /* part of a frame: maybe an auth or refresh one */
		explicit_bzero(c->rx, c->rxlen);
	free(c->rx);
	c->rx = NULL;
	c->rxlen = 0;
	if (c->counted) {
		struct rt_map *users = &c->rt->users;
		intptr_t n = (intptr_t)rt_map_get(users, c->user);
		if (n <= 1)
			rt_map_del(users, c->user);
		else
			rt_map_put(users, c->user,
			           (void *)(n - 1)); /* the key exists: no allocation */
		c->counted = false;
	}
}
