/* inbox.c: the one way other threads (Redis subscriber, nng callbacks) reach the lws thread: a
 * mutex-guarded FIFO and lws_cancel_service, which makes the lws thread run
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED, where edge.c takes the events. The wake-up goes through
 * lws's own event pipe (not a watcher of ours on the loop) so that lws re-arms its timers after
 * the events are handled, as after any other I/O. The context is only touched under the mutex,
 * so a thread posting while the service stops never wakes a destroyed context. */
#include "realtime.h"

void
rt_inbox_init(struct rt_inbox *in)
{
	pthread_mutex_init(&in->mu, NULL);
	in->head = in->tail = NULL;
	in->ctx = NULL;
}

void
rt_inbox_post(struct rt_inbox *in, struct rt_ev *ev)
{
	ev->next = NULL;
	pthread_mutex_lock(&in->mu);
	if (in->tail != NULL)
		in->tail->next = ev;
	else
		in->head = ev;
	in->tail = ev;
	if (in->ctx != NULL)
		lws_cancel_service(in->ctx); /* a write to lws's event pipe */
	pthread_mutex_unlock(&in->mu);
}

void
rt_inbox_open(struct rt_inbox *in, struct lws_context *ctx)
{
	pthread_mutex_lock(&in->mu);
	in->ctx = ctx;
	if (in->head != NULL)
		lws_cancel_service(ctx);
	pthread_mutex_unlock(&in->mu);
}

void
rt_inbox_close(struct rt_inbox *in)
{
	pthread_mutex_lock(&in->mu);
	in->ctx = NULL;
	pthread_mutex_unlock(&in->mu);
}

struct rt_ev *
rt_inbox_take(struct rt_inbox *in)
{
	pthread_mutex_lock(&in->mu);
	struct rt_ev *ev = in->head;
	in->head = in->tail = NULL;
	pthread_mutex_unlock(&in->mu);
	return ev;
}
