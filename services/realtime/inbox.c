/* inbox.c: the one way other threads (Redis subscriber, nng callbacks, JWKS fetcher) reach the
 * lws thread: a mutex-guarded FIFO and lws_cancel_service, which makes the lws thread run
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED, where edge.c takes the events. The wake-up goes through
 * lws's own event pipe (not a watcher of ours on the loop) so that lws re-arms its timers after
 * the events are handled, as after any other I/O. The context is only touched under the mutex,
 * so a thread posting while the service stops never wakes a destroyed context. */
#include "realtime.h"

#include <libwebsockets.h>

static struct {
	pthread_mutex_t mu;
	struct rt_ev *head, *tail;
	struct lws_context *ctx; /* NULL while closed */
} rt_inbox = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, NULL };

void
rt_inbox_post(struct rt_ev *ev)
{
	ev->next = NULL;
	pthread_mutex_lock(&rt_inbox.mu);
	if (rt_inbox.tail != NULL)
		rt_inbox.tail->next = ev;
	else
		rt_inbox.head = ev;
	rt_inbox.tail = ev;
	if (rt_inbox.ctx != NULL)
		lws_cancel_service(rt_inbox.ctx); /* a write to lws's event pipe */
	pthread_mutex_unlock(&rt_inbox.mu);
}

void
rt_inbox_open(struct lws_context *ctx)
{
	pthread_mutex_lock(&rt_inbox.mu);
	rt_inbox.ctx = ctx;
	if (rt_inbox.head != NULL)
		lws_cancel_service(ctx);
	pthread_mutex_unlock(&rt_inbox.mu);
}

void
rt_inbox_close(void)
{
	pthread_mutex_lock(&rt_inbox.mu);
	rt_inbox.ctx = NULL;
	pthread_mutex_unlock(&rt_inbox.mu);
}

struct rt_ev *
rt_inbox_take(void)
{
	pthread_mutex_lock(&rt_inbox.mu);
	struct rt_ev *ev = rt_inbox.head;
	rt_inbox.head = rt_inbox.tail = NULL;
	pthread_mutex_unlock(&rt_inbox.mu);
	return ev;
}
