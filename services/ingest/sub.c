/* sub.c: the TLCP subscriber — one libwebsockets client thread.
 *
 * A connection attempt, once the breaker allows it and the backoff has passed, opens a
 * WebSocket (subprotocol TLCP-2.5.0.lightstreamer.com, TLS for wss://) and sends:
 *   create_session             no session yet (or it was lost: END, or CONERR to a bind)
 *   bind_session               after LOOP: the server asked us to rebind; nothing was lost
 *   bind_session + LS_recovery_from=<prog>
 *                              after the connection dropped (or stalled): the server resends
 *                              from its PROG, and we skip what we had already counted
 * then, for a new session, one control request subscribing the mapping's items and fields in
 * MERGE mode. Every data notification counts towards prog (tlcp_msg_is_data), so a recovery
 * resumes exactly after the last one handled: nothing lost, nothing repeated.
 * U lines are decoded against each item's current values (MERGE: unchanged fields keep
 * theirs) and become events handed to the pipe. When the pipe reaches its high watermark the
 * socket stops being read (lws_rx_flow_control) until it falls to the low watermark; the
 * server's own buffering (and TCP) hold the rest, nothing is dropped here. With
 * SB_INGEST_PAUSE_MAX_FREQUENCY set, the pause also asks the server to lower the subscription's
 * frequency (control LS_op=reconf, LS_requested_max_frequency) so that it merges updates on its
 * side instead of queueing them, and the resume asks for "unlimited" again (also after a rebind
 * of the same session, whose subscription keeps the lowered frequency).
 * CONERR to a create_session, and connections that fail, count against a circuit breaker: open
 * after SB_INGEST_BREAKER_THRESHOLD in a row, one half-open trial after
 * SB_INGEST_BREAKER_OPEN_MS. Reconnects wait an exponential backoff with full jitter. */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_backoff.h"
#include "sb_util_time.h"

#define ING_SUB_ID   1
#define ING_OUT_MAX  8
#define ING_TICK_US  (100 * 1000)
#define ING_RX_LIMIT (8u << 20) /* a line longer than this is a broken server */

enum ing_next {
	ING_NEXT_CREATE = 0, /* create_session */
	ING_NEXT_BIND,       /* bind_session (after LOOP) */
	ING_NEXT_RECOVER,    /* bind_session with LS_recovery_from */
};

struct ing_val {
	char *val; /* NULL: null (or never set) */
	size_t len;
};

struct ing_sub {
	const struct ingest_cfg *cfg;
	const struct ing_mapping *map;
	struct ing_pipe *pipe;
	struct lws_context *ctx;
	struct lws *wsi;
	lws_sorted_usec_list_t tick;
	pthread_t th;
	atomic_bool stop;
	atomic_bool resume_req;
	atomic_bool go;  /* the topic is verified: connecting allowed (ing_sub_go) */
	atomic_int live; /* 1: session bound and subscribed */
	char url_copy[1024];
	const char *host, *path_in;
	char path[1024];
	int port;
	bool tls;
	/* the session */
	char session[256];
	enum ing_next next;
	int64_t prog; /* data notifications handled in this session */
	int64_t skip; /* notifications the server resends that we already handled */
	bool subscribed;
	bool freq_lowered;     /* the last reconf asked for pause_freq (false: unlimited) */
	bool freq_unsure;      /* that reconf has no REQOK/REQERR yet: it may have been lost */
	int64_t sub_req_id;    /* the request id of the subscription's add */
	int64_t reconf_req_id; /* the request id of the last reconf */
	double pause_freq;     /* LS_requested_max_frequency while paused; 0: do not reconf */
	bool got_conok;        /* in this connection */
	bool attempt_counted;  /* a breaker trial is out for this connection */
	bool paused;           /* rx flow stopped for backpressure */
	bool closing;          /* we asked lws to close this connection */
	bool active;           /* a connection attempt or connection exists (until gone) */
	const char *close_reason;
	int64_t req_id;
	int64_t next_attempt_ms; /* monotonic */
	int64_t last_rx_ms;
	int64_t session_t0_ms;
	struct sb_backoff backoff;
	struct sb_breaker breaker;
	struct sb_buf out[ING_OUT_MAX];
	int nout;
	struct sb_buf rx;
	struct ing_val *state; /* nitems * nfields */
	struct tlcp_fv *fv;    /* nfields, scratch */
	struct ing_raw *raw;   /* nfields, scratch */
	struct ing_event **evs;
	size_t nevs, capevs;
	pthread_mutex_t mu; /* detail */
	char detail[256];
	/* metrics */
	struct sb_metric *m_reconnects, *m_sessions;
	struct sb_series *m_received, *m_skipped, *m_decode_err, *m_sync_delay, *m_lost, *m_breaker,
	    *m_connected, *m_conerr, *m_gaps, *m_opens, *m_reconf_lower, *m_reconf_restore;
	enum sb_breaker_state last_bs;
};

static void ing_sub_detail(struct ing_sub *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
ing_sub_detail(struct ing_sub *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&s->mu);
	vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
	pthread_mutex_unlock(&s->mu);
	va_end(ap);
}

static void
ing_sub_queue(struct ing_sub *s, const struct sb_buf *msg)
{
	if (s->nout >= ING_OUT_MAX) {
		sb_log(SB_LOG_ERROR, "ingest: too many requests queued on the feed connection");
		return;
	}
	struct sb_buf *b = &s->out[s->nout++];
	sb_buf_reset(b);
	if (sb_buf_reserve(b, LWS_PRE + msg->len) == 0) {
		memset(b->data, 0, LWS_PRE);
		b->len = LWS_PRE;
		sb_buf_append(b, msg->data, msg->len);
	}
	if (s->wsi)
		lws_callback_on_writable(s->wsi);
}

/* ing_sub_reconf asks the server to lower the subscription's maximum frequency (lower) or to
 * lift the limit again. Nothing without a subscription or a connection (a rebind restores it
 * at CONOK), or when the server confirmed that already (REQOK of the last reconf). A reconf
 * still unconfirmed when its connection ends may or may not have reached the server, so it
 * counts as unknown: asked again, setting a frequency twice is harmless. */
static void
ing_sub_reconf(struct ing_sub *s, bool lower)
{
	if (!s->wsi || s->closing || !s->subscribed ||
	    (lower == s->freq_lowered && !s->freq_unsure) || (lower && s->pause_freq <= 0))
		return;
	struct sb_buf b = SB_BUF_INIT;
	s->req_id++;
	if (tlcp_req_reconf(&b, s->req_id, ING_SUB_ID, lower ? s->pause_freq : 0) == 0) {
		ing_sub_queue(s, &b);
		s->freq_lowered = lower;
		s->freq_unsure = true;
		s->reconf_req_id = s->req_id;
		sb_series_inc(lower ? s->m_reconf_lower : s->m_reconf_restore);
		if (lower)
			sb_log(SB_LOG_INFO,
			       "ingest: asked the feed for at most %.3f updates/s per item while "
			       "paused (request %lld)",
			       s->pause_freq, (long long)s->req_id);
		else
			sb_log(SB_LOG_INFO,
			       "ingest: asked the feed for unlimited updates again (request %lld)",
			       (long long)s->req_id);
	}
	sb_buf_free(&b);
}

/* ing_sub_unpause lets the connection be read again after the pipe fell to its low
 * watermark, and lifts the frequency limit asked for at the pause. */
static void
ing_sub_unpause(struct ing_sub *s)
{
	s->paused = false;
	/* The stall clock restarts: nothing was read while paused, on purpose. */
	s->last_rx_ms = sb_time_mono_ms();
	lws_rx_flow_control(s->wsi, 1);
	ing_sub_reconf(s, false);
	ing_sub_detail(s, "streaming, session %s", s->session);
}

static void
ing_sub_clear_state(struct ing_sub *s)
{
	size_t n = s->map->nitems * s->map->nfields;
	for (size_t i = 0; i < n; i++) {
		free(s->state[i].val);
		s->state[i].val = NULL;
		s->state[i].len = 0;
	}
}

/* ing_sub_close asks lws to close the connection (from inside a callback or the tick). */
static void
ing_sub_close(struct ing_sub *s, const char *reason)
{
	if (!s->wsi || s->closing)
		return;
	s->closing = true;
	s->close_reason = reason;
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
}

static void
ing_sub_failure(struct ing_sub *s)
{
	if (s->attempt_counted) {
		sb_breaker_failure(&s->breaker);
		s->attempt_counted = false;
	}
	s->next_attempt_ms = sb_time_mono_ms() + sb_backoff_next(&s->backoff);
}

static void
ing_sub_flush_events(struct ing_sub *s)
{
	if (s->nevs == 0)
		return;
	int rc = ing_pipe_submit(s->pipe, s->evs, s->nevs, true);
	if (rc != 0) {
		/* Only at shutdown (SB_ECLOSED): these were never acknowledged to anyone. */
		for (size_t i = 0; i < s->nevs; i++)
			ing_event_free(s->evs[i]);
		sb_log(SB_LOG_WARN, "ingest: %zu updates not queued: %s", s->nevs, sb_strerror(rc));
	}
	s->nevs = 0;
	if (!s->paused && s->wsi && ing_pipe_paused(s->pipe)) {
		s->paused = true;
		lws_rx_flow_control(s->wsi, 0);
		ing_sub_reconf(s, true);
		ing_sub_detail(s, "paused: queue above its high watermark");
	}
}

static void
ing_sub_update(struct ing_sub *s, const struct tlcp_msg *m, int64_t recv_ms)
{
	const struct ing_mapping *map = s->map;
	if (m->sub != ING_SUB_ID || m->item < 1 || (size_t)m->item > map->nitems) {
		sb_series_inc(s->m_decode_err);
		sb_log(SB_LOG_WARN, "ingest: update for subscription %lld item %lld ignored",
		       (long long)m->sub, (long long)m->item);
		return;
	}
	int rc = tlcp_decode_values(m->text.p, m->text.n, map->nfields, s->fv);
	if (rc) {
		sb_series_inc(s->m_decode_err);
		sb_log(SB_LOG_ERROR, "ingest: update of item %s undecodable (%s): dropped",
		       map->items[m->item - 1], sb_strerror(rc));
		return;
	}
	struct ing_val *st = &s->state[(size_t)(m->item - 1) * map->nfields];
	for (size_t f = 0; f < map->nfields; f++) {
		if (s->fv[f].kind == TLCP_FV_UNCHANGED)
			continue;
		free(st[f].val);
		st[f].val = s->fv[f].val; /* NULL for null */
		st[f].len = s->fv[f].len;
		s->fv[f].val = NULL;
	}
	tlcp_fv_clear(s->fv, map->nfields);
	for (size_t f = 0; f < map->nfields; f++)
		s->raw[f] = (struct ing_raw){ st[f].val, st[f].len };
	struct ing_event *e = NULL;
	char err[128];
	int bad = -1;
	rc = ing_event_build(map, map->items[m->item - 1], s->raw, -1, ING_ORIGIN_TLCP,
	                     sb_time_now_ms(), &e, &bad, err, sizeof(err));
	if (rc) {
		sb_series_inc(s->m_decode_err);
		sb_log(SB_LOG_ERROR, "ingest: update of item %s: field %s %s: dropped",
		       map->items[m->item - 1], bad >= 0 ? map->fields[bad].name : "?", err);
		return;
	}
	e->recv_mono_ms = recv_ms;
	if (s->nevs == s->capevs) {
		size_t cap = s->capevs ? s->capevs * 2 : 256;
		struct ing_event **n = realloc(s->evs, cap * sizeof(*n));
		if (!n) {
			ing_event_free(e);
			sb_log(SB_LOG_ERROR, "ingest: out of memory queueing an update");
			return;
		}
		s->evs = n;
		s->capevs = cap;
	}
	s->evs[s->nevs++] = e;
	sb_series_inc(s->m_received);
}

static void
ing_sub_subscribe(struct ing_sub *s)
{
	struct sb_buf b = SB_BUF_INIT;
	s->req_id++;
	s->sub_req_id = s->req_id;
	const char **fields = calloc(s->map->nfields, sizeof(*fields));
	if (!fields)
		return;
	for (size_t i = 0; i < s->map->nfields; i++)
		fields[i] = s->map->fields[i].name;
	if (tlcp_req_subscribe(&b, s->req_id, ING_SUB_ID, (const char *const *)s->map->items,
	                       s->map->nitems, fields, s->map->nfields) == 0)
		ing_sub_queue(s, &b);
	free(fields);
	sb_buf_free(&b);
}

static void
ing_sub_data(struct ing_sub *s, const struct tlcp_msg *m, int64_t recv_ms)
{
	if (s->skip > 0) {
		s->skip--;
		sb_series_inc(s->m_skipped);
		return;
	}
	s->prog++;
	switch (m->type) {
	case TLCP_MSG_SUBOK:
		if ((size_t)m->item != s->map->nitems || (size_t)m->n != s->map->nfields) {
			sb_log(SB_LOG_ERROR,
			       "ingest: SUBOK with %lld items and %lld fields, the mapping has %zu "
			       "and %zu",
			       (long long)m->item, (long long)m->n, s->map->nitems,
			       s->map->nfields);
			ing_sub_close(s, "error");
			return;
		}
		s->subscribed = true;
		atomic_store(&s->live, 1);
		ing_sub_detail(s, "streaming, session %s", s->session);
		sb_log(SB_LOG_INFO, "ingest: subscribed to %zu items, %zu fields", s->map->nitems,
		       s->map->nfields);
		break;
	case TLCP_MSG_U:
		ing_sub_update(s, m, recv_ms);
		break;
	case TLCP_MSG_CS:
		if (m->sub == ING_SUB_ID && m->item >= 1 && (size_t)m->item <= s->map->nitems) {
			struct ing_val *st = &s->state[(size_t)(m->item - 1) * s->map->nfields];
			for (size_t f = 0; f < s->map->nfields; f++) {
				free(st[f].val);
				st[f].val = NULL;
				st[f].len = 0;
			}
		}
		break;
	case TLCP_MSG_OV:
		sb_series_add(s->m_lost, (double)m->n);
		sb_log(SB_LOG_WARN, "ingest: the server lost %lld updates of item %lld (OV)",
		       (long long)m->n, (long long)m->item);
		break;
	case TLCP_MSG_UNSUB:
		s->subscribed = false;
		atomic_store(&s->live, 0);
		sb_log(SB_LOG_ERROR, "ingest: the server ended the subscription (UNSUB)");
		ing_sub_detail(s, "subscription ended by the server");
		break;
	default:
		break; /* EOS, CONF, SUBCMD, MSGDONE, MSGFAIL: counted, nothing to do */
	}
}

static void
ing_sub_line(struct ing_sub *s, const char *line, size_t len, int64_t recv_ms)
{
	struct tlcp_msg m;
	if (tlcp_parse_line(line, len, &m) != 0) {
		sb_series_inc(s->m_decode_err);
		sb_log(SB_LOG_ERROR, "ingest: malformed %s line from the feed: reconnecting",
		       tlcp_msg_type_name(m.type));
		ing_sub_close(s, "error");
		return;
	}
	if (tlcp_msg_is_data(m.type)) {
		ing_sub_data(s, &m, recv_ms);
		return;
	}
	switch (m.type) {
	case TLCP_MSG_CONOK: {
		bool fresh = s->next == ING_NEXT_CREATE;
		snprintf(s->session, sizeof(s->session), "%.*s", (int)m.session.n, m.session.p);
		s->got_conok = true;
		if (s->attempt_counted) {
			sb_breaker_success(&s->breaker);
			s->attempt_counted = false;
		}
		sb_backoff_reset(&s->backoff);
		sb_series_set(s->m_connected, 1);
		sb_series_inc(sb_metric_with(s->m_sessions, fresh ? "create"
		                                            : s->next == ING_NEXT_BIND
		                                                ? "bind"
		                                                : "recover"));
		if (fresh) {
			s->prog = 0;
			s->skip = 0;
			s->subscribed = false;
			s->freq_lowered = false; /* a new subscription: no limit asked */
			s->freq_unsure = false;
			s->session_t0_ms = sb_time_mono_ms();
			ing_sub_clear_state(s);
			ing_sub_subscribe(s);
			sb_log(SB_LOG_INFO, "ingest: session %s created", s->session);
		} else if (s->subscribed) {
			atomic_store(&s->live, 1);
			ing_sub_detail(s, "streaming, session %s", s->session);
			/* The session's subscription kept the frequency asked at a pause that
			 * ended while we were disconnected, or a restore was lost with the last
			 * connection: ask for unlimited (again; ing_sub_reconf sends nothing when
			 * the server confirmed it already). */
			if (!ing_pipe_paused(s->pipe))
				ing_sub_reconf(s, false);
		}
		/* From now on a drop is recovered. */
		s->next = ING_NEXT_RECOVER;
		break;
	}
	case TLCP_MSG_PROG:
		if (m.n > s->prog) {
			sb_series_inc(s->m_gaps);
			sb_log(
			    SB_LOG_ERROR,
			    "ingest: the server resumes after notification %lld, we handled %lld: "
			    "%lld lost",
			    (long long)m.n, (long long)s->prog, (long long)(m.n - s->prog));
			s->prog = m.n;
			s->skip = 0;
		} else {
			s->skip = s->prog - m.n;
		}
		break;
	case TLCP_MSG_LOOP:
		s->next = ING_NEXT_BIND;
		ing_sub_close(s, "loop");
		break;
	case TLCP_MSG_SYNC: {
		double local = (double)(sb_time_mono_ms() - s->session_t0_ms) / 1000.0;
		sb_series_set(s->m_sync_delay, local > (double)m.n ? local - (double)m.n : 0);
		break;
	}
	case TLCP_MSG_CONERR: {
		char *msg = NULL;
		tlcp_pct_decode(m.text.p, m.text.n, &msg, NULL);
		sb_series_inc(s->m_conerr);
		sb_log(SB_LOG_ERROR, "ingest: the server refused the %s: CONERR %lld %s",
		       s->next == ING_NEXT_CREATE ? "session" : "rebind", (long long)m.code,
		       msg ? msg : "");
		free(msg);
		if (s->next != ING_NEXT_CREATE) {
			/* The session is gone: a new one (its snapshot gives each item's state). */
			s->next = ING_NEXT_CREATE;
			s->subscribed = false;
			s->next_attempt_ms = sb_time_mono_ms();
		} else {
			ing_sub_failure(s);
		}
		ing_sub_close(s, "conerr");
		break;
	}
	case TLCP_MSG_END: {
		sb_log(SB_LOG_WARN, "ingest: the server ended session %s: END %lld", s->session,
		       (long long)m.code);
		s->next = ING_NEXT_CREATE;
		s->subscribed = false;
		atomic_store(&s->live, 0);
		s->next_attempt_ms = sb_time_mono_ms() + sb_backoff_next(&s->backoff);
		ing_sub_close(s, "end");
		break;
	}
	case TLCP_MSG_REQERR:
		if (m.n != s->sub_req_id) {
			/* A refused reconf: the subscription goes on at the frequency it had. */
			char *msg = NULL;
			tlcp_pct_decode(m.text.p, m.text.n, &msg, NULL);
			sb_log(SB_LOG_WARN,
			       "ingest: the server refused request %lld: REQERR %lld %s",
			       (long long)m.n, (long long)m.code, msg ? msg : "");
			free(msg);
			if (m.n == s->reconf_req_id) {
				s->freq_lowered = !s->freq_lowered;
				s->freq_unsure = false;
			}
			break;
		}
		__attribute__((fallthrough)); /* the subscription itself was refused */
	case TLCP_MSG_ERROR: {
		char *msg = NULL;
		tlcp_pct_decode(m.text.p, m.text.n, &msg, NULL);
		sb_log(SB_LOG_ERROR, "ingest: the server refused a request: %s %lld %s",
		       tlcp_msg_type_name(m.type), (long long)m.code, msg ? msg : "");
		ing_sub_detail(s, "subscription refused: %s %lld %s", tlcp_msg_type_name(m.type),
		               (long long)m.code, msg ? msg : "");
		free(msg);
		atomic_store(&s->live, 0);
		if (m.type == TLCP_MSG_ERROR) {
			ing_sub_failure(s);
			ing_sub_close(s, "error");
		}
		break;
	}
	case TLCP_MSG_REQOK:
		if (m.n == s->reconf_req_id)
			s->freq_unsure = false; /* the server holds what freq_lowered says */
		break;
	default:
		break; /* PROBE, WSOK, SERVNAME, CLIENTIP, CONS, NOOP, unknown */
	}
}

static void
ing_sub_receive(struct ing_sub *s, const char *in, size_t len)
{
	int64_t now = sb_time_mono_ms();
	s->last_rx_ms = now;
	if (s->rx.len + len > ING_RX_LIMIT) {
		sb_log(SB_LOG_ERROR, "ingest: a line from the feed exceeds %u bytes: reconnecting",
		       ING_RX_LIMIT);
		sb_buf_reset(&s->rx);
		ing_sub_close(s, "error");
		return;
	}
	const char *buf = in;
	size_t n = len;
	if (s->rx.len > 0) {
		sb_buf_append(&s->rx, in, len);
		buf = s->rx.data;
		n = s->rx.len;
	}
	size_t off = 0, l;
	const char *line;
	while (!s->closing && tlcp_next_line(buf, n, &off, &line, &l))
		if (l > 0)
			ing_sub_line(s, line, l, now);
	ing_sub_flush_events(s);
	if (s->closing) {
		sb_buf_reset(&s->rx);
		return;
	}
	if (buf == s->rx.data) {
		memmove(s->rx.data, s->rx.data + off, n - off);
		s->rx.len = n - off;
	} else if (off < n) {
		sb_buf_append(&s->rx, buf + off, n - off);
	}
}

static void
ing_sub_opened(struct ing_sub *s)
{
	struct sb_buf b = SB_BUF_INIT;
	int rc;
	s->nout = 0;
	if (s->next == ING_NEXT_CREATE) {
		struct tlcp_create c = {
			.adapter_set = s->map->adapter_set,
			.user = *s->cfg->feed_user ? s->cfg->feed_user : NULL,
			.password = *s->cfg->feed_password ? s->cfg->feed_password : NULL,
			.cid = "sb-ingest",
			.keepalive_ms = s->cfg->keepalive_ms,
		};
		rc = tlcp_req_create_session(&b, &c);
	} else {
		rc = tlcp_req_bind_session(&b, s->session,
		                           s->next == ING_NEXT_RECOVER ? s->prog : -1,
		                           s->cfg->keepalive_ms);
	}
	if (rc == 0)
		ing_sub_queue(s, &b);
	sb_buf_free(&b);
}

/* ing_sub_gone runs once per connection when it ended (refused, failed or closed). */
static void
ing_sub_gone(struct ing_sub *s, const char *why)
{
	bool had_conok = s->got_conok;
	const char *reason = s->close_reason ? s->close_reason : why;
	s->wsi = NULL;
	s->active = false;
	s->closing = false;
	s->close_reason = NULL;
	s->got_conok = false;
	s->paused = false;
	s->nout = 0;
	sb_buf_reset(&s->rx);
	atomic_store(&s->live, 0);
	sb_series_set(s->m_connected, 0);
	if (atomic_load(&s->stop))
		return;
	sb_series_inc(sb_metric_with(s->m_reconnects, reason));
	if (strcmp(reason, "loop") == 0) {
		s->next_attempt_ms = sb_time_mono_ms();
	} else if (strcmp(reason, "conerr") == 0 || strcmp(reason, "end") == 0) {
		/* next_attempt_ms already set */
	} else if (!had_conok) {
		ing_sub_failure(s);
	} else {
		/* A live connection dropped: recover soon, with jitter. */
		s->next_attempt_ms = sb_time_mono_ms() + sb_backoff_next(&s->backoff);
	}
	ing_sub_detail(s, "reconnecting (%s)", reason);
	sb_log(SB_LOG_WARN, "ingest: feed connection ended (%s); next: %s", reason,
	       s->next == ING_NEXT_CREATE ? "create_session"
	       : s->next == ING_NEXT_BIND ? "bind_session"
	                                  : "bind_session with recovery");
}

static void
ing_sub_connect(struct ing_sub *s)
{
	if (!sb_breaker_allow(&s->breaker)) {
		ing_sub_detail(s, "circuit breaker open after refusals");
		s->next_attempt_ms = sb_time_mono_ms() + 100;
		return;
	}
	s->attempt_counted = true;
	/* A fresh connection: nothing of the last one carries over; the stall clock (which also
	 * bounds the connect and the handshake) starts now. */
	s->closing = false;
	s->close_reason = NULL;
	s->got_conok = false;
	s->paused = false;
	s->nout = 0;
	sb_buf_reset(&s->rx);
	s->last_rx_ms = sb_time_mono_ms();
	s->active = true;
	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof(ci));
	ci.context = s->ctx;
	ci.address = s->host;
	ci.port = s->port;
	ci.path = s->path;
	ci.host = s->host;
	ci.origin = s->host;
	ci.protocol = TLCP_WS_PROTOCOL;
	ci.local_protocol_name = "tlcp";
	ci.ssl_connection = s->tls ? LCCSCF_USE_SSL : 0;
	ci.pwsi = &s->wsi;
	ing_sub_detail(s, "connecting to %s:%d", s->host, s->port);
	if (!lws_client_connect_via_info(&ci) && s->active) {
		s->wsi = NULL;
		s->active = false;
		ing_sub_failure(s);
	}
}

static void
ing_sub_tick(lws_sorted_usec_list_t *sul)
{
	struct ing_sub *s = lws_container_of(sul, struct ing_sub, tick);
	int64_t now = sb_time_mono_ms();
	enum sb_breaker_state bs = sb_breaker_state(&s->breaker);
	sb_series_set(s->m_breaker, (double)bs);
	if (bs == SB_BREAKER_OPEN && s->last_bs != SB_BREAKER_OPEN) {
		sb_series_inc(s->m_opens);
		sb_log(SB_LOG_WARN, "ingest: feed circuit breaker open for %lld ms",
		       s->cfg->breaker_open_ms);
	}
	s->last_bs = bs;
	if (atomic_load(&s->stop))
		return;
	if (s->wsi) {
		if (s->paused && !ing_pipe_paused(s->pipe))
			ing_sub_unpause(s);
		if (!s->paused && now - s->last_rx_ms > s->cfg->stall_ms)
			ing_sub_close(s, "stall");
	} else if (s->active) {
		/* lws scrubbed the connection (clearing our pointer) without a callback we act on.
		 */
		ing_sub_gone(s, "drop");
	} else if (!atomic_load(&s->go)) {
		/* no session before the topic exists: its samples would wait in librdkafka */
	} else if (now >= s->next_attempt_ms) {
		ing_sub_connect(s);
	}
	lws_sul_schedule(s->ctx, 0, &s->tick, ing_sub_tick, ING_TICK_US);
}

static int
ing_sub_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)user;
	struct ing_sub *s = lws_context_user(lws_get_context(wsi));
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		s->wsi = wsi;
		s->last_rx_ms = sb_time_mono_ms();
		ing_sub_opened(s);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (wsi == s->wsi)
			ing_sub_receive(s, in, len);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (wsi != s->wsi || s->closing)
			break;
		if (s->nout > 0) {
			struct sb_buf *b = &s->out[0];
			size_t n = b->len - LWS_PRE;
			if (lws_write(wsi, (unsigned char *)b->data + LWS_PRE, n, LWS_WRITE_TEXT) <
			    (int)n)
				return -1;
			struct sb_buf first = s->out[0];
			memmove(&s->out[0], &s->out[1], (size_t)(s->nout - 1) * sizeof(s->out[0]));
			s->out[--s->nout] = first;
			if (s->nout > 0)
				lws_callback_on_writable(wsi);
		}
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		sb_log(SB_LOG_WARN, "ingest: cannot connect to the feed: %s",
		       in ? (const char *)in : "?");
		if (s->active && (wsi == s->wsi || s->wsi == NULL))
			ing_sub_gone(s, "connect");
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (wsi == s->wsi)
			ing_sub_gone(s, "drop");
		break;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (atomic_exchange(&s->resume_req, false) && s->wsi && s->paused &&
		    !ing_pipe_paused(s->pipe))
			ing_sub_unpause(s);
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols ing_sub_protocols[] = {
	{ "tlcp", ing_sub_cb, 0, 1 << 16, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void
ing_sub_lws_log(int level, const char *line)
{
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	sb_log(level == LLL_ERR ? SB_LOG_ERROR : SB_LOG_WARN, "ingest: lws: %.*s", (int)n, line);
}

static void *
ing_sub_main(void *arg)
{
	struct ing_sub *s = arg;
	lws_sul_schedule(s->ctx, 0, &s->tick, ing_sub_tick, 1);
	while (!atomic_load(&s->stop))
		if (lws_service(s->ctx, 0) < 0)
			break;
	return NULL;
}

void
ing_sub_go(struct ing_sub *s)
{
	if (s)
		atomic_store(&s->go, true);
}

void
ing_sub_resume(void *arg)
{
	struct ing_sub *s = arg;
	if (!s)
		return;
	atomic_store(&s->resume_req, true);
	lws_cancel_service(s->ctx);
}

int
ing_sub_check(void *arg, char *detail, size_t n)
{
	struct ing_sub *s = arg;
	if (!s) {
		snprintf(detail, n, "idle: no feed configured (SB_INGEST_FEED_URL)");
		return 0;
	}
	pthread_mutex_lock(&s->mu);
	snprintf(detail, n, "%s", s->detail);
	pthread_mutex_unlock(&s->mu);
	return atomic_load(&s->live) ? 0 : SB_EUNAVAIL;
}

static void
ing_sub_free(struct ing_sub *s)
{
	if (s->state)
		ing_sub_clear_state(s);
	free(s->state);
	free(s->fv);
	free(s->raw);
	for (size_t i = 0; i < s->nevs; i++)
		ing_event_free(s->evs[i]);
	free(s->evs);
	for (int i = 0; i < ING_OUT_MAX; i++)
		sb_buf_free(&s->out[i]);
	sb_buf_free(&s->rx);
	sb_breaker_fini(&s->breaker);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int
ing_sub_start(const struct ing_sub_opts *o, struct ing_sub **out)
{
	struct ing_sub *s = calloc(1, sizeof(*s));
	if (!s)
		return SB_ENOMEM;
	s->cfg = o->cfg;
	s->map = o->map;
	s->pipe = o->pipe;
	s->pause_freq =
	    *o->cfg->pause_max_frequency ? strtod(o->cfg->pause_max_frequency, NULL) : 0;
	pthread_mutex_init(&s->mu, NULL);
	snprintf(s->detail, sizeof(s->detail), "waiting for the topic to be verified");
	struct sb_breaker_opts bo = { .failure_threshold = (uint32_t)o->cfg->breaker_threshold,
		                      .open_ms = (uint32_t)o->cfg->breaker_open_ms,
		                      .half_open_trials = 1 };
	if (sb_breaker_init(&s->breaker, &bo) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return SB_EINVAL;
	}
	sb_backoff_init(&s->backoff, (uint32_t)o->cfg->reconnect_base_ms,
	                (uint32_t)o->cfg->reconnect_max_ms);
	size_t nf = o->map->nfields;
	s->state = calloc(o->map->nitems * nf, sizeof(*s->state));
	s->fv = calloc(nf, sizeof(*s->fv));
	s->raw = calloc(nf, sizeof(*s->raw));
	if (!s->state || !s->fv || !s->raw) {
		ing_sub_free(s);
		return SB_ENOMEM;
	}
	/* ws://host[:port][/path] */
	snprintf(s->url_copy, sizeof(s->url_copy), "%s", o->cfg->feed_url);
	const char *prot = NULL, *path = NULL;
	if (lws_parse_uri(s->url_copy, &prot, &s->host, &s->port, &path) ||
	    (strcmp(prot, "ws") != 0 && strcmp(prot, "wss") != 0) || !*s->host) {
		sb_log(SB_LOG_ERROR,
		       "ingest: SB_INGEST_FEED_URL must be ws://host[:port] or wss://...");
		ing_sub_free(s);
		return SB_EINVAL;
	}
	s->tls = strcmp(prot, "wss") == 0;
	if (s->port == 80 && s->tls)
		s->port = 443;
	while (path && *path == '/')
		path++;
	if (!path || !*path)
		snprintf(s->path, sizeof(s->path), "%s", TLCP_WS_PATH);
	else
		snprintf(s->path, sizeof(s->path), "/%s", path);
	s->m_reconnects = sb_metrics_counter("ingest_reconnects_total",
	                                     "Feed connections that ended, by reason.", "reason");
	s->m_sessions =
	    sb_metrics_counter("ingest_sessions_total",
	                       "TLCP sessions created, rebound after LOOP or recovered.", "kind");
	s->m_received = sb_metric_with(
	    sb_metrics_counter("ingest_received_total", "Samples received, by origin.", "origin"),
	    ING_ORIGIN_TLCP);
	s->m_skipped = sb_metric_with(sb_metrics_counter(
	    "ingest_recovery_skipped_total",
	    "Notifications resent by the server on recovery that had already been handled.", NULL));
	s->m_decode_err = sb_metric_with(
	    sb_metrics_counter("ingest_decode_errors_total",
	                       "Feed lines or updates that could not be decoded.", NULL));
	s->m_sync_delay = sb_metric_with(sb_metrics_gauge(
	    "ingest_sync_delay_seconds", "How far behind the server's SYNC clock we read.", NULL));
	s->m_lost = sb_metric_with(sb_metrics_counter(
	    "ingest_server_lost_updates_total", "Updates the server reported lost (OV).", NULL));
	s->m_breaker = sb_metric_with(sb_metrics_gauge(
	    "ingest_breaker_state", "Feed circuit breaker: 0 closed, 1 open, 2 half-open.", NULL));
	s->m_connected = sb_metric_with(
	    sb_metrics_gauge("ingest_feed_connected", "1 while a TLCP session is bound.", NULL));
	s->m_conerr = sb_metric_with(sb_metrics_counter(
	    "ingest_conerr_total", "CONERR answers to create_session or bind_session.", NULL));
	s->m_opens = sb_metric_with(sb_metrics_counter(
	    "ingest_breaker_opens_total", "Times the feed circuit breaker opened.", NULL));
	s->m_gaps = sb_metric_with(
	    sb_metrics_counter("ingest_recovery_gaps_total",
	                       "Recoveries where the server could not resend all.", NULL));
	struct sb_metric *reconf = sb_metrics_counter(
	    "ingest_frequency_requests_total",
	    "TLCP reconf requests sent: lower (paused) or restore (resumed).", "kind");
	s->m_reconf_lower = sb_metric_with(reconf, "lower");
	s->m_reconf_restore = sb_metric_with(reconf, "restore");

	lws_set_log_level(LLL_ERR | LLL_WARN, ing_sub_lws_log);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = ing_sub_protocols;
	info.gid = -1;
	info.uid = -1;
	info.user = s;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	if (*o->cfg->ca_file)
		info.client_ssl_ca_filepath = o->cfg->ca_file;
	else if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
		info.client_ssl_ca_filepath = "/etc/ssl/certs/ca-certificates.crt";
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		ing_sub_free(s);
		return SB_EIO;
	}
	if (pthread_create(&s->th, NULL, ing_sub_main, s) != 0) {
		lws_context_destroy(s->ctx);
		ing_sub_free(s);
		return SB_EIO;
	}
	sb_log(SB_LOG_INFO, "ingest: subscribing to %s://%s:%d%s (%zu items, %zu fields)", prot,
	       s->host, s->port, s->path, o->map->nitems, nf);
	*out = s;
	return 0;
}

void
ing_sub_stop(struct ing_sub *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	lws_cancel_service(s->ctx);
	pthread_join(s->th, NULL);
	lws_context_destroy(s->ctx);
	ing_sub_free(s);
}
