/* pubsub.c: the Redis subscriber. One hiredis connection in subscribe mode, owned by a thread
 * of its own that polls the connection and an eventfd; the lws thread queues SUBSCRIBE and
 * UNSUBSCRIBE requests and wakes it through the eventfd. Published messages become refcounted
 * frames (rt_frame_parse_pubsub) handed to the lws thread (inbox.c). After a lost connection it
 * reconnects with backoff, subscribes again to every wanted channel and posts RT_EV_RESYNC,
 * since messages published meanwhile are lost (connections then recover them from history). */
#include "realtime.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_redis.h"
#include "sb_util_time.h"

struct rt_ps_req {
	struct rt_ps_req *next;
	bool subscribe;
	char chan[RT_CHAN_MAX];
};

struct rt_pubsub {
	struct sb_redis_url url;
	pthread_t thread;
	int efd;
	atomic_bool stop, connected;
	pthread_mutex_t mu;
	struct rt_ps_req *head, *tail; /* guarded by mu */
	struct rt_map wanted;          /* thread-owned: channels to be subscribed */
	redisContext *rc;
	int64_t backoff_ms;
	struct rt_inbox *inbox;     /* where frames and confirmations go */
	struct sb_series *rejected; /* messages dropped for breaking the contract */
};

static void
rt_ps_wake(struct rt_pubsub *ps)
{
	uint64_t one = 1;
	if (write(ps->efd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: the thread wakes anyway */
	}
}

int
rt_pubsub_request(struct rt_pubsub *ps, bool subscribe, const char *chan)
{
	struct rt_ps_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return SB_ENOMEM;
	r->subscribe = subscribe;
	snprintf(r->chan, sizeof(r->chan), "%s", chan);
	pthread_mutex_lock(&ps->mu);
	if (ps->tail)
		ps->tail->next = r;
	else
		ps->head = r;
	ps->tail = r;
	pthread_mutex_unlock(&ps->mu);
	rt_ps_wake(ps);
	return 0;
}

bool
rt_pubsub_connected(struct rt_pubsub *ps)
{
	return ps != NULL && atomic_load(&ps->connected);
}

static int
rt_ps_send(struct rt_pubsub *ps, const char *cmd, const char *chan)
{
	const char *argv[2] = { cmd, chan };
	if (redisAppendCommandArgv(ps->rc, 2, argv, NULL) != REDIS_OK)
		return SB_EIO;
	int done = 0;
	while (!done)
		if (redisBufferWrite(ps->rc, &done) != REDIS_OK)
			return SB_EIO;
	return 0;
}

struct rt_ps_each {
	struct rt_pubsub *ps;
	int rv;
};

static void
rt_ps_resub(const char *key, void *val, void *arg)
{
	(void)val;
	struct rt_ps_each *e = arg;
	if (e->rv == 0)
		e->rv = rt_ps_send(e->ps, "SUBSCRIBE", key);
}

static void
rt_ps_disconnect(struct rt_pubsub *ps)
{
	if (ps->rc != NULL)
		redisFree(ps->rc);
	ps->rc = NULL;
	atomic_store(&ps->connected, false);
}

/* rt_ps_connect connects, authenticates and subscribes to every wanted channel. */
static int
rt_ps_connect(struct rt_pubsub *ps)
{
	struct timeval tv = { 2, 0 };
	ps->rc = redisConnectWithTimeout(ps->url.host, ps->url.port, tv);
	if (ps->rc == NULL || ps->rc->err)
		goto fail;
	redisSetTimeout(ps->rc, tv);
	if (ps->url.password[0] != '\0') {
		redisReply *r = ps->url.user[0] ? redisCommand(ps->rc, "AUTH %s %s", ps->url.user,
		                                               ps->url.password)
		                                : redisCommand(ps->rc, "AUTH %s", ps->url.password);
		bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;
		if (r)
			freeReplyObject(r);
		if (!ok)
			goto fail;
	}
	struct rt_ps_each e = { ps, 0 };
	rt_map_each(&ps->wanted, rt_ps_resub, &e);
	if (e.rv != 0)
		goto fail;
	atomic_store(&ps->connected, true);
	return 0;
fail:
	rt_ps_disconnect(ps);
	return SB_EUNAVAIL;
}

static void
rt_ps_post(struct rt_pubsub *ps, enum rt_ev_kind kind, const char *chan, struct rt_frame *f)
{
	struct rt_ev *ev = calloc(1, sizeof(*ev));
	if (ev == NULL) {
		rt_frame_unref(f);
		return;
	}
	ev->kind = kind;
	if (chan != NULL)
		snprintf(ev->chan, sizeof(ev->chan), "%s", chan);
	ev->frame = f;
	rt_inbox_post(ps->inbox, ev);
}

static void
rt_ps_reply(struct rt_pubsub *ps, redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
		return;
	const char *kind = r->element[0]->str, *chan = r->element[1]->str;
	if (strcmp(kind, "subscribe") == 0) {
		rt_ps_post(ps, RT_EV_SUBACK, chan, NULL);
	} else if (strcmp(kind, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
		struct rt_frame *f = NULL;
		if (rt_frame_parse_pubsub(r->element[2]->str, r->element[2]->len, &f) != 0) {
			sb_series_inc(ps->rejected);
			sb_log_kv(SB_LOG_WARN, "dropped a Redis message that breaks the contract",
			          "channel", chan, NULL);
			return;
		}
		rt_ps_post(ps, RT_EV_FRAME, chan, f);
	}
}

/* rt_ps_requests applies the queued requests to the wanted set and sends them. */
static int
rt_ps_requests(struct rt_pubsub *ps)
{
	pthread_mutex_lock(&ps->mu);
	struct rt_ps_req *r = ps->head, *next;
	ps->head = ps->tail = NULL;
	pthread_mutex_unlock(&ps->mu);
	int rv = 0;
	for (; r; r = next) {
		next = r->next;
		bool had = rt_map_get(&ps->wanted, r->chan) != NULL;
		if (r->subscribe && !had) {
			rt_map_put(&ps->wanted, r->chan, ps);
			if (ps->rc && rv == 0)
				rv = rt_ps_send(ps, "SUBSCRIBE", r->chan);
		} else if (!r->subscribe && had) {
			rt_map_del(&ps->wanted, r->chan);
			if (ps->rc && rv == 0)
				rv = rt_ps_send(ps, "UNSUBSCRIBE", r->chan);
		} else if (r->subscribe && had) {
			rt_ps_post(ps, RT_EV_SUBACK, r->chan, NULL);
		}
		free(r);
	}
	return rv;
}

static void *
rt_ps_main(void *arg)
{
	struct rt_pubsub *ps = arg;
	bool was_connected = false;
	while (!atomic_load(&ps->stop)) {
		if (ps->rc == NULL) {
			if (rt_ps_connect(ps) != 0) {
				struct pollfd p = { ps->efd, POLLIN, 0 };
				poll(&p, 1, (int)ps->backoff_ms);
				ps->backoff_ms =
				    ps->backoff_ms * 2 > 2000 ? 2000 : ps->backoff_ms * 2;
				if (p.revents & POLLIN) {
					uint64_t v;
					if (read(ps->efd, &v, sizeof(v)) < 0) {
					}
					rt_ps_requests(ps);
				}
				continue;
			}
			ps->backoff_ms = 50;
			sb_log_kv(SB_LOG_INFO, "Redis subscriber connected", NULL);
			if (was_connected)
				rt_ps_post(ps, RT_EV_RESYNC, NULL, NULL);
			was_connected = true;
		}
		struct pollfd p[2] = { { ps->efd, POLLIN, 0 }, { ps->rc->fd, POLLIN, 0 } };
		if (poll(p, 2, 1000) < 0)
			continue;
		int rv = 0;
		if (p[0].revents & POLLIN) {
			uint64_t v;
			if (read(ps->efd, &v, sizeof(v)) < 0) {
			}
			rv = rt_ps_requests(ps);
		}
		if (rv == 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (redisBufferRead(ps->rc) != REDIS_OK)
				rv = SB_EIO;
			void *reply = NULL;
			while (rv == 0 && redisGetReplyFromReader(ps->rc, &reply) == REDIS_OK &&
			       reply != NULL) {
				rt_ps_reply(ps, reply);
				freeReplyObject(reply);
				reply = NULL;
			}
			if (ps->rc->err)
				rv = SB_EIO;
		}
		if (rv != 0) {
			sb_log_kv(SB_LOG_WARN, "Redis subscriber connection lost", "error",
			          ps->rc && ps->rc->errstr[0] ? ps->rc->errstr : "i/o error", NULL);
			rt_ps_disconnect(ps);
		}
	}
	rt_ps_disconnect(ps);
	return NULL;
}

int
rt_pubsub_start(const char *url, struct rt_inbox *inbox, struct sb_series *rejected,
                struct rt_pubsub **out)
{
	struct rt_pubsub *ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		return SB_ENOMEM;
	char err[128];
	if (sb_redis_url_parse(url, &ps->url, err, sizeof(err)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "bad REDIS_URL", "error", err, NULL);
		free(ps);
		return SB_EINVAL;
	}
	ps->inbox = inbox;
	ps->rejected = rejected;
	ps->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ps->backoff_ms = 50;
	pthread_mutex_init(&ps->mu, NULL);
	if (ps->efd < 0 || pthread_create(&ps->thread, NULL, rt_ps_main, ps) != 0) {
		if (ps->efd >= 0)
			close(ps->efd);
		free(ps);
		return SB_EIO;
	}
	*out = ps;
	return 0;
}

void
rt_pubsub_stop(struct rt_pubsub *ps)
{
	if (ps == NULL)
		return;
	atomic_store(&ps->stop, true);
	rt_ps_wake(ps);
	pthread_join(ps->thread, NULL);
	struct rt_ps_req *r = ps->head, *next;
	for (; r; r = next) {
		next = r->next;
		free(r);
	}
	rt_map_free(&ps->wanted);
	explicit_bzero(ps->url.password, sizeof(ps->url.password));
	close(ps->efd);
	pthread_mutex_destroy(&ps->mu);
	free(ps);
}
