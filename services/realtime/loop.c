/* loop.c: the event loop of the lws service thread. realtime owns a libev loop on the epoll
 * backend and hands it to lws as a foreign loop (LWS_SERVER_OPTION_LIBEV, lws's evlib_ev
 * plugin), so one loop iteration costs what is ready, not one poll() slot per connection. The
 * loop runs in a thread of its own until rt_loop_stop wakes it with an ev_async (the one libev
 * call that is safe from another thread) and it breaks out; lws's context is then destroyed
 * outside the loop, and the loop itself last. */
#include "realtime.h"

#include <stdio.h>
#include <stdlib.h>

#include <ev.h>

#include "sb_err.h"
#include "sb_log.h"

struct rt_loop {
	struct ev_loop *ev;
	ev_async stop; /* rt_loop_stop → the loop thread: break out of ev_run */
	pthread_t thread;
	bool running;
};

static const char *
rt_loop_backend_name(unsigned int backend)
{
	switch (backend) {
	case EVBACKEND_EPOLL:
		return "epoll";
	case EVBACKEND_POLL:
		return "poll";
	case EVBACKEND_SELECT:
		return "select";
	default:
		return "other";
	}
}

static void
rt_loop_stop_cb(struct ev_loop *ev, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(ev, EVBREAK_ALL);
}

int
rt_loop_new(struct rt_loop **out)
{
	struct rt_loop *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return SB_ENOMEM;
	/* epoll only, whatever LIBEV_FLAGS says: the point of this loop is not to poll() */
	l->ev = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (l->ev == NULL) {
		sb_log_kv(SB_LOG_ERROR, "cannot create an epoll event loop (libev)", NULL);
		free(l);
		return SB_EIO;
	}
	ev_async_init(&l->stop, rt_loop_stop_cb);
	ev_async_start(l->ev, &l->stop);
	sb_log_kv(SB_LOG_INFO, "event loop created", "library", "libev", "backend",
	          rt_loop_backend_name(ev_backend(l->ev)), NULL);
	*out = l;
	return 0;
}

void *
rt_loop_foreign(struct rt_loop *l)
{
	return l->ev;
}

static void *
rt_loop_main(void *arg)
{
	struct rt_loop *l = arg;
	ev_run(l->ev, 0);
	return NULL;
}

int
rt_loop_start(struct rt_loop *l)
{
	if (pthread_create(&l->thread, NULL, rt_loop_main, l) != 0)
		return SB_EIO;
	l->running = true;
	return 0;
}

void
rt_loop_stop(struct rt_loop *l)
{
	if (l == NULL || !l->running)
		return;
	ev_async_send(l->ev, &l->stop);
	pthread_join(l->thread, NULL);
	l->running = false;
}

void
rt_loop_free(struct rt_loop *l)
{
	if (l == NULL)
		return;
	rt_loop_stop(l);
	ev_async_stop(l->ev, &l->stop);
	ev_loop_destroy(l->ev);
	free(l);
}
