/* inbox.c: the one way other threads (Redis subscriber, nng callbacks, JWKS fetcher) reach the
 * lws thread: a mutex-guarded FIFO and lws_cancel_service, which makes the lws thread run
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED, where edge.c takes the events. */
#include "realtime.h"

#include <libwebsockets.h>

static struct {
	pthread_mutex_t mu;
	struct rt_ev *head, *tail;
} rt_inbox = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL };

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
	pthread_mutex_unlock(&rt_inbox.mu);
	if (rt_g.lws != NULL)
		lws_cancel_service(rt_g.lws);
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
