/* edge.c: the WebSocket server and the process. One lws context and its one service thread;
 * the handshake checks (path /ws, Origin allow-list, ?token=, per-user limit) answer plain HTTP
 * errors before any upgrade; events from other threads arrive through inbox.c. The start and
 * stop hooks set up and tear down struct rt, in mirrored order. */
#include "realtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "sb_span.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

/* The process's one struct rt. Static storage rather than the heap because nng may still run
 * an RPC callback after the stop hook (the service frees the upstream clients after it, and
 * their pending calls then complete with CANCELLED): whatever such a late callback touches
 * stays valid. Only the hooks name it; everything else is handed a pointer. */
static struct rt rt_process;

/* rt_edge_rt returns the struct rt of wsi's context (info.user). */
static struct rt *
rt_edge_rt(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

struct rt_pss {
	struct rt_conn *c;
};

/* rt_edge_lws_log hands lws's own warnings to our log with any token= value masked: lws may
 * quote request URIs, and tokens must never reach a log. */
static void
rt_edge_lws_log(int level, const char *line)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *p = strstr(buf, "token="); p != NULL; p = strstr(p, "token=")) {
		p += 6;
		char *e = p;
		while (*e && *e != '&' && *e != ' ' && *e != '\n')
			e++;
		memmove(p + 3, e, strlen(e) + 1);
		memcpy(p, "***", 3);
	}
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	sb_log_kv(level == LLL_ERR ? SB_LOG_ERROR : SB_LOG_WARN, "libwebsockets", "detail", buf,
	          NULL);
}

static bool
rt_edge_origin_ok(struct rt *rt, struct lws *wsi)
{
	int len = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
	if (len <= 0)
		return true; /* not a browser */
	char origin[256];
	if (len >= (int)sizeof(origin) ||
	    lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
		return false;
	for (size_t i = 0; i < rt->norigins; i++)
		if (strcmp(rt->origins[i], "*") == 0 || strcmp(rt->origins[i], origin) == 0)
			return true;
	return false;
}

/* rt_edge_token copies the ?token= argument into buf; returns its length or -1. */
static int
rt_edge_token(struct lws *wsi, char *buf, int cap)
{
	const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, cap);
	if (v == NULL)
		return -1;
	int n = (int)strlen(v);
	memmove(buf, v, (size_t)n + 1);
	return n;
}

/* rt_edge_has_arg tells whether the query has an argument starting with name. lws stops
 * looking at the first argument that does not fit the buffer, so the buffer must hold the
 * longest one, ?token= (a buffer of 64 bytes missed "&resume=1" after any real token); it is
 * wiped, since it may have held the token. */
static bool
rt_edge_has_arg(struct lws *wsi, const char *name)
{
	size_t cap = SB_JWT_MAX_TOKEN + 16;
	char *buf = malloc(cap);
	if (buf == NULL)
		return false;
	bool found = lws_get_urlarg_by_name(wsi, name, buf, (int)cap) != NULL;
	explicit_bzero(buf, cap);
	free(buf);
	return found;
}

/* rt_edge_check checks an upgrade request before lws accepts it: 101 when it may go on, else the
 * HTTP status to refuse it with and *why (the refusal's label). */
static unsigned int
rt_edge_check(struct rt *rt, struct lws *wsi, const char **why)
{
	char uri[64];
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 || strcmp(uri, "/ws") != 0) {
		*why = "not_found";
		return HTTP_STATUS_NOT_FOUND;
	}
	if (!rt_edge_origin_ok(rt, wsi)) {
		*why = "origin";
		return HTTP_STATUS_FORBIDDEN;
	}
	/* the instance is full: another instance (or a later attempt) takes the client */
	if (sb_series_value(rt->m.active) >= (double)rt->cfg->max_connections) {
		*why = "capacity";
		return HTTP_STATUS_SERVICE_UNAVAILABLE;
	}
	char *tok = malloc(SB_JWT_MAX_TOKEN + 16);
	struct sb_jwt_principal *p = malloc(sizeof(*p));
	unsigned int status = 101; /* Switching Protocols */
	if (tok == NULL || p == NULL) {
		*why = "memory";
		status = HTTP_STATUS_SERVICE_UNAVAILABLE;
		goto done;
	}
	int n = rt_edge_token(wsi, tok, SB_JWT_MAX_TOKEN + 16);
	if (n < 0) {
		if (rt_edge_has_arg(wsi, "token")) {
			*why = "missing";
			status = HTTP_STATUS_UNAUTHORIZED;
		}
		goto done; /* no token: the auth frame must come first */
	}
	if (rt_conn_verify(rt, tok, (size_t)n, p) != 0) {
		*why = "invalid_token";
		status = HTTP_STATUS_UNAUTHORIZED;
		goto done;
	}
	if ((intptr_t)rt_map_get(&rt->users, p->user_id) >= rt->cfg->max_conn_per_user) {
		*why = "too_many_connections";
		status = 429;
	}
done:
	if (tok != NULL) {
		explicit_bzero(tok, SB_JWT_MAX_TOKEN + 16);
		free(tok);
	}
	if (p != NULL)
		explicit_bzero(p, sizeof(*p));
	free(p);
	return status;
}

/* rt_edge_filter runs the checks of an upgrade request inside the span of this HTTP request (a
 * child of the client's traceparent header when it sent a valid one, else a new trace): 101 when
 * the upgrade goes on, else the refusal, which is counted and answered in plain HTTP. */
static int
rt_edge_filter(struct rt *rt, struct lws *wsi)
{
	char tp[SB_TRACEPARENT_LEN + 8];
	int tplen = lws_hdr_custom_copy(wsi, tp, (int)sizeof(tp), "traceparent:", 12);
	struct sb_span span;
	sb_span_start_tp(&span, "GET /ws", SB_SPAN_SERVER, tplen > 0 ? tp : NULL);
	const char *why = NULL;
	unsigned int status = rt_edge_check(rt, wsi, &why);
	sb_span_attr(&span, "http.request.method", "GET");
	sb_span_attr(&span, "http.route", "/ws");
	sb_span_attr_int(&span, "http.response.status_code", status);
	if (why != NULL)
		sb_span_attr(&span, "sb.refusal", why);
	if (status >= 500)
		sb_span_fail(&span, why);
	sb_span_end(&span);
	if (why == NULL)
		return 0;
	sb_series_inc(sb_metric_with(rt->m.refused_m, why));
	lws_return_http_status(wsi, status, why);
	return -1;
}

static void
rt_edge_established(struct rt *rt, struct lws *wsi, struct rt_pss *pss)
{
	struct rt_conn *c = calloc(1, sizeof(*c));
	pss->c = c;
	if (c == NULL)
		return;
	c->rt = rt;
	c->wsi = wsi;
	c->refs = 1;
	c->state = RT_CONN_AUTHWAIT;
	int64_t now = sb_time_mono_ms();
	c->auth_deadline_ms = now + rt->cfg->auth_timeout_ms;
	c->connected_ms = sb_time_now_ms();
	c->next_ping_ms = now + rt->cfg->ping_interval_ms;
	c->resume = rt_edge_has_arg(wsi, "resume=1");
	sb_series_inc(rt->m.active);
	sb_series_inc(rt->m.total);
	char *tok = malloc(SB_JWT_MAX_TOKEN + 16);
	struct sb_jwt_principal *p = malloc(sizeof(*p));
	int n = tok ? rt_edge_token(wsi, tok, SB_JWT_MAX_TOKEN + 16) : -1;
	if (n >= 0 && p != NULL) {
		if (rt_conn_verify(rt, tok, (size_t)n, p) == 0)
			rt_conn_authenticated(c, p);
		else
			rt_conn_close(c, RT_CLOSE_UNAUTHORIZED, "invalid token");
	}
	if (tok != NULL) {
		explicit_bzero(tok, SB_JWT_MAX_TOKEN + 16);
		free(tok);
	}
	if (p != NULL)
		explicit_bzero(p, sizeof(*p));
	free(p);
	rt_conn_timer(c);
}

static int
rt_edge_receive(struct lws *wsi, struct rt_conn *c, const char *in, size_t len)
{
	size_t max = (size_t)c->rt->cfg->max_frame_bytes;
	if (c->rxlen + len > max) {
		static const char why[] = "frame too large";
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
		                 sizeof(why) - 1);
		return -1;
	}
	bool final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
	if (final && c->rxlen == 0) {
		if (lws_frame_is_binary(wsi))
			rt_conn_send_new(c, rt_frame_error("bad_frame", "text frames only", NULL));
		else
			rt_conn_rx(c, in, len);
		return 0;
	}
	if (c->rx == NULL && (c->rx = malloc(max)) == NULL)
		return -1;
	memcpy(c->rx + c->rxlen, in, len);
	c->rxlen += len;
	if (final) {
		if (lws_frame_is_binary(wsi))
			rt_conn_send_new(c, rt_frame_error("bad_frame", "text frames only", NULL));
		else
			rt_conn_rx(c, c->rx, c->rxlen);
		explicit_bzero(c->rx, c->rxlen); /* it may have been an auth or refresh frame */
		free(c->rx);
		c->rx = NULL;
		c->rxlen = 0;
	}
	return 0;
}

static void
rt_edge_resync_chan(const char *key, void *val, void *arg)
{
	(void)arg;
	struct rt_chan *ch = val;
	if (strncmp(key, SB_REDIS_USER_CHANNEL, strlen(SB_REDIS_USER_CHANNEL)) == 0)
		for (size_t i = 0; i < ch->n; i++)
			rt_sub_resync(((struct rt_sub *)ch->members[i])->conn);
}

/* rt_edge_fanout hands a frame published on ch to each local subscription. */
static void
rt_edge_fanout(struct rt_chan *ch, struct rt_frame *f)
{
	/* a member may leave while we deliver (conversation.left): work on a copy, each member
	 * held until the end */
	size_t n = ch->n;
	struct rt_sub **m = malloc(n * sizeof(*m));
	if (m == NULL) {
		sb_log_kv(SB_LOG_ERROR, "out of memory: a frame was not delivered", "channel",
		          ch->name, NULL);
		return;
	}
	memcpy(m, ch->members, n * sizeof(*m));
	for (size_t i = 0; i < n; i++)
		m[i]->refs++;
	for (size_t i = 0; i < n; i++)
		rt_sub_frame(m[i], f);
	for (size_t i = 0; i < n; i++)
		rt_sub_unref(m[i]);
	free(m);
}

/* rt_edge_ev handles one event from another thread and frees it (lws thread; or the stopping
 * thread once the loop is gone, with every connection closed). */
static void
rt_edge_ev(struct rt *rt, struct rt_ev *ev)
{
	struct rt_chan *ch;
	switch (ev->kind) {
	case RT_EV_FRAME:
		if ((ch = rt_subs_find(&rt->subs, ev->chan)) == NULL)
			break;
		if (ev->frame->traceparent[0] != '\0' && sb_span_exporting()) {
			struct sb_span span;
			sb_span_start_tp(&span, "realtime deliver", SB_SPAN_CONSUMER,
			                 ev->frame->traceparent);
			sb_span_attr(&span, "messaging.destination.name", ev->chan);
			rt_edge_fanout(ch, ev->frame);
			sb_span_end(&span);
		} else {
			rt_edge_fanout(ch, ev->frame);
		}
		break;
	case RT_EV_SUBACK:
		if ((ch = rt_subs_find(&rt->subs, ev->chan)) != NULL)
			rt_sub_suback(ch);
		break;
	case RT_EV_RESYNC:
		rt_map_each(&rt->subs.chans, rt_edge_resync_chan, NULL);
		break;
	case RT_EV_RPC:
		ev->rpc_done(ev);
		sb_rpc_result_free(&ev->res);
		break;
	default:
		break;
	}
	rt_frame_unref(ev->frame);
	free(ev);
}

/* rt_edge_inbox handles every event waiting in the inbox, in order. */
static void
rt_edge_inbox(struct rt *rt)
{
	struct rt_ev *ev = rt_inbox_take(&rt->inbox), *next;
	for (; ev; ev = next) {
		next = ev->next;
		rt_edge_ev(rt, ev);
	}
}

static int
rt_edge_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct rt_pss *pss = user;
	struct rt_conn *c = pss ? pss->c : NULL;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "use GET /ws with Upgrade");
		return -1;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return rt_edge_filter(rt_edge_rt(wsi), wsi);
	case LWS_CALLBACK_ESTABLISHED:
		rt_edge_established(rt_edge_rt(wsi), wsi, pss);
		return pss->c == NULL ? -1 : 0;
	case LWS_CALLBACK_RECEIVE:
		return c ? rt_edge_receive(wsi, c, in, len) : -1;
	case LWS_CALLBACK_RECEIVE_PONG:
		if (c != NULL)
			rt_conn_pong(c);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return c ? rt_conn_writable(c) : -1;
	case LWS_CALLBACK_CLOSED:
		if (c != NULL) {
			sb_series_add(c->rt->m.active, -1);
			rt_conn_closed(c);
			rt_conn_unref(c);
			pss->c = NULL;
		}
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		rt_edge_inbox(rt_edge_rt(wsi));
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols rt_edge_protocols[] = {
	{ "switchboard.v1", rt_edge_cb, sizeof(struct rt_pss), 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* No lws "validity" keepalive: conn.c pings every connection itself. lws 4.1 would otherwise
 * re-arm a per-connection 300-s timer on every connect and pong, each an insertion that walks
 * its sorted list of every timer (O(connections); most of the CPU at 15,000 connections). */
static const lws_retry_bo_t rt_edge_no_validity = { .secs_since_valid_hangup = 0 };

static void
rt_edge_tick_cb(lws_sorted_usec_list_t *sul)
{
	struct rt *rt = lws_container_of(sul, struct rt, tick);
	rt_delivered_flush(&rt->delivered);
	lws_sul_schedule(rt->lws, 0, sul, rt_edge_tick_cb, 50 * LWS_US_PER_MS);
}

/* rt_edge_wake_cb runs when the lws timer behind rt->timers goes off. */
static void
rt_edge_wake_cb(lws_sorted_usec_list_t *sul)
{
	struct rt *rt = lws_container_of(sul, struct rt, wake);
	rt_timers_run(&rt->timers, sb_time_mono_ms());
}

/* rt_edge_arm is rt->timers' arm callback: moves the lws timer to the earliest deadline. */
static void
rt_edge_arm(int64_t at_ms, void *arg)
{
	struct rt *rt = arg;
	if (rt->lws == NULL || rt->stopping)
		return;
	if (at_ms < 0) {
		lws_sul_cancel(&rt->wake);
		return;
	}
	int64_t wait = at_ms - sb_time_mono_ms();
	lws_sul_schedule(rt->lws, 0, &rt->wake, rt_edge_wake_cb,
	                 (lws_usec_t)(wait < 1 ? 1 : wait) * LWS_US_PER_MS);
}

static void
rt_edge_redis_op(bool subscribe, const char *chan, void *arg)
{
	struct rt *rt = arg;
	if (rt_pubsub_request(rt->ps, subscribe, chan) != 0)
		sb_log_kv(SB_LOG_ERROR, "cannot queue a Redis subscription", "channel", chan, NULL);
}

static int
rt_edge_pubsub_ready(void *arg, char *detail, size_t n)
{
	struct rt *rt = arg;
	if (rt_pubsub_connected(rt->ps))
		return 0;
	snprintf(detail, n, "Redis subscriber not connected");
	return SB_EUNAVAIL;
}

static int
rt_edge_origins(struct rt *rt, const char *list)
{
	char *copy = strdup(list);
	if (copy == NULL)
		return SB_ENOMEM;
	char *save = NULL;
	for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		char **o = realloc(rt->origins, (rt->norigins + 1) * sizeof(*o));
		if (o == NULL || (o[rt->norigins] = strdup(t)) == NULL) {
			if (o != NULL)
				rt->origins = o;
			free(copy);
			return SB_ENOMEM;
		}
		rt->origins = o;
		rt->norigins++;
	}
	free(copy);
	return 0;
}

static void
rt_edge_metrics(struct rt_metrics *m)
{
	m->active = sb_metric_with(
	    sb_metrics_gauge("websocket_connections_active", "Open WebSocket connections", NULL));
	m->limit =
	    sb_metric_with(sb_metrics_gauge("websocket_connections_limit",
	                                    "WebSocket connections this instance holds at most "
	                                    "(SB_WS_MAX_CONNECTIONS)",
	                                    NULL));
	m->total = sb_metric_with(sb_metrics_counter("websocket_connections_total",
	                                             "WebSocket connections accepted", NULL));
	m->latency = sb_metric_with(sb_metrics_histogram(
	    "websocket_message_latency_seconds",
	    "From the event's creation to its frame written to a socket", NULL, NULL, 0));
	m->slow = sb_metric_with(
	    sb_metrics_counter("websocket_slow_consumer_closes_total",
	                       "Connections closed with 4008 (send queue full)", NULL));
	struct sb_metric *rec = sb_metrics_counter(
	    "websocket_recoveries_total", "Recoveries from since_seq by outcome", "outcome");
	m->rec_ok = sb_metric_with(rec, "recovered");
	m->rec_gap = sb_metric_with(rec, "gap_too_large");
	m->rec_fail = sb_metric_with(rec, "failed");
	m->refused_m = sb_metrics_counter("websocket_refused_total",
	                                  "Handshakes and tokens refused by reason", "reason");
	m->pubsub_rejected = sb_metric_with(
	    sb_metrics_counter("realtime_pubsub_rejected_total",
	                       "Redis messages dropped for breaking the contract", NULL));
}

/* rt_edge_listen creates the epoll loop, lws's context on it, and starts the loop's thread. */
static int
rt_edge_listen(struct rt *rt)
{
	int rv = rt_loop_new(&rt->loop);
	if (rv != 0)
		return rv;
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = (int)rt->cfg->ws_port;
	info.iface = rt->cfg->ws_addr;
	info.protocols = rt_edge_protocols;
	info.user = rt;
	/* lws's default loop poll()s every socket on each iteration: run it on our epoll loop
	 * through the libev plugin instead (docs/realtime.md, "Event loop") */
	void *loops[1] = { rt_loop_foreign(rt->loop) };
	info.foreign_loops = loops;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_LIBEV;
	info.timeout_secs = 10;
	info.retry_and_idle_policy = &rt_edge_no_validity;
	rt->lws = lws_create_context(&info);
	if (rt->lws == NULL) {
		sb_log_kv(SB_LOG_ERROR,
		          "cannot listen for WebSockets (or load lws's libev plugin, package "
		          "libwebsockets-evlib-ev)",
		          "addr", rt->cfg->ws_addr, NULL);
		return SB_EIO;
	}
	lws_sul_schedule(rt->lws, 0, &rt->tick, rt_edge_tick_cb, 50 * LWS_US_PER_MS);
	if (rt_loop_start(rt->loop) != 0)
		return SB_EIO;
	/* lws arms its timer watcher after handling I/O: the first wake-up arms the tick */
	rt_inbox_open(&rt->inbox, rt->lws);
	lws_cancel_service(rt->lws);
	return 0;
}

int
rt_edge_start(struct sb_service *svc)
{
	struct rt *rt = &rt_process;
	memset(rt, 0, sizeof(*rt));
	rt->svc = svc;
	rt->cfg = sb_service_config(svc);
	rt->messages = sb_service_upstream(svc, "messages");
	atomic_init(&rt->calls, 0);
	rt_inbox_init(&rt->inbox);
	rt_timers_init(&rt->timers, rt_conn_deadline, rt_edge_arm, rt);
	rt->subs.redis_op = rt_edge_redis_op;
	rt->subs.arg = rt;
	rt_delivered_init(&rt->delivered, sb_service_upstream(svc, "notifier"));
	rt_edge_metrics(&rt->m);
	sb_series_set(rt->m.limit, (double)rt->cfg->max_connections);
	sb_service_set_state(svc, rt);
	const struct sb_authn_opts ao = { .issuer = rt->cfg->issuer,
		                          .audience = rt->cfg->audience,
		                          .leeway_s = rt->cfg->leeway_s,
		                          .refresh_ms = rt->cfg->jwks_refresh_ms };
	int rv = rt_edge_origins(rt, rt->cfg->allowed_origins);
	if (rv == 0)
		rv = sb_authn_start(&rt->authn, &ao, sb_service_upstream(svc, "auth"));
	if (rv == 0)
		rv = sb_service_add_check(svc, "jwks", sb_authn_ready, &rt->authn);
	if (rv == 0)
		rv = rt_pubsub_start(rt->cfg->common.redis_url, &rt->inbox, rt->m.pubsub_rejected,
		                     &rt->ps);
	if (rv == 0)
		rv = sb_service_add_check(svc, "redis_subscriber", rt_edge_pubsub_ready, rt);
	if (rv == 0) {
		lws_set_log_level(LLL_ERR | LLL_WARN, rt_edge_lws_log);
		rv = rt_edge_listen(rt);
	}
	if (rv != 0) {
		/* the service does not run the stop hook after a failed start */
		rt_edge_stop_svc(svc);
		return rv;
	}
	char port[16];
	snprintf(port, sizeof(port), "%lld", rt->cfg->ws_port);
	sb_log_kv(SB_LOG_INFO, "WebSocket server listening", "addr", rt->cfg->ws_addr, "port", port,
	          NULL);
	return 0;
}

static void
rt_edge_free_cache(const char *key, void *val, void *arg)
{
	(void)key;
	(void)arg;
	free(val);
}

/* rt_edge_drain handles what other threads still hand over once the loop is gone, waiting up to
 * the shutdown grace for replies of messages still due: each releases a connection or a
 * subscription. A reply later than that finds the inbox (static storage, see rt_process) and is
 * not freed. Delivery reports hold nothing: they are not waited for. */
static void
rt_edge_drain(struct rt *rt)
{
	int64_t until = sb_time_mono_ms() + rt->cfg->common.shutdown_grace_ms;
	for (;;) {
		bool idle = atomic_load(&rt->calls) == 0;
		rt_edge_inbox(rt); /* a callback posts before it counts itself done */
		if (idle)
			return;
		if (sb_time_mono_ms() >= until) {
			sb_log_kv(SB_LOG_WARN, "RPC replies still due at exit: not waiting longer",
			          NULL);
			return;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

void
rt_edge_stop_svc(struct sb_service *svc)
{
	struct rt *rt = sb_service_state(svc);
	if (rt == NULL)
		return;
	if (rt->lws != NULL) {
		rt_inbox_close(&rt->inbox);
		rt_loop_stop(rt->loop);
		/* the loop thread is gone: this thread is the lws thread now */
		rt->stopping = true;
		lws_sul_cancel(&rt->wake);
		lws_sul_cancel(&rt->tick);
		/* With a foreign libev loop the destruction completes here, closing every
		 * connection (CLOSED runs: their deadlines are cancelled, nothing is scheduled) and
		 * stopping lws's watchers on the loop, which is freed after. */
		lws_context_destroy(rt->lws);
		rt->lws = NULL;
	}
	rt_loop_free(rt->loop);
	rt->loop = NULL;
	rt_timers_free(&rt->timers);
	rt_pubsub_stop(rt->ps);
	rt->ps = NULL;
	sb_authn_stop(&rt->authn);
	rt_edge_drain(rt); /* the batch of delivery reports being made is dropped */
	rt_subs_free(&rt->subs);
	rt_map_free(&rt->users);
	rt_map_each(&rt->member_cache, rt_edge_free_cache, NULL);
	rt_map_free(&rt->member_cache);
	for (size_t i = 0; i < rt->norigins; i++)
		free(rt->origins[i]);
	free(rt->origins);
	rt->origins = NULL;
	rt->norigins = 0;
	sb_service_set_state(svc, NULL);
}
