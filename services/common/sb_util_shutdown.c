/* sb_util_shutdown.c: a sigwait thread turning SIGTERM/SIGINT into a shutdown flag. */
#include "sb_util_shutdown.h"
#include "sb_err.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The process's shutdown state. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool requested;
	int signo; /* under mu: what requested shutdown, 0 for sb_shutdown_request */
	bool installed;
	atomic_int efd;
	pthread_t thread;
} sb_shutdown_g = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .efd = -1 };

/* Records the request once and wakes everyone waiting. Returns whether it was the first. */
static bool
sb_shutdown_trigger(int signo)
{
	bool first;
	pthread_mutex_lock(&sb_shutdown_g.mu);
	first = !atomic_load(&sb_shutdown_g.requested);
	if (first) {
		sb_shutdown_g.signo = signo;
		atomic_store(&sb_shutdown_g.requested, true);
		int fd = atomic_load(&sb_shutdown_g.efd);
		if (fd >= 0) {
			uint64_t one = 1;
			ssize_t w = write(fd, &one, sizeof(one));
			(void)w; /* an eventfd write of 1 cannot fail short of overflow */
		}
		pthread_cond_broadcast(&sb_shutdown_g.cv);
	}
	pthread_mutex_unlock(&sb_shutdown_g.mu);
	return first;
}

static void *
sb_shutdown_thread(void *arg)
{
	const sigset_t *set = arg;
	for (;;) {
		int sig;
		if (sigwait(set, &sig) != 0)
			continue;
		if (!sb_shutdown_trigger(sig))
			_exit(128 + sig);
	}
	return NULL;
}

int
sb_shutdown_install(void)
{
	static sigset_t set;
	sigset_t old;
	bool masked = false;
	int fd = -1;

	pthread_mutex_lock(&sb_shutdown_g.mu);
	if (sb_shutdown_g.installed) {
		pthread_mutex_unlock(&sb_shutdown_g.mu);
		return 0;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0)
		goto fail;
	masked = true;
	fd = eventfd(atomic_load(&sb_shutdown_g.requested) ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		goto fail;
	atomic_store(&sb_shutdown_g.efd, fd);
	if (pthread_create(&sb_shutdown_g.thread, NULL, sb_shutdown_thread, &set) != 0)
		goto fail;
	pthread_detach(sb_shutdown_g.thread);
	signal(SIGPIPE, SIG_IGN);
	sb_shutdown_g.installed = true;
	pthread_mutex_unlock(&sb_shutdown_g.mu);
	return 0;

fail:
	if (fd >= 0) {
		atomic_store(&sb_shutdown_g.efd, -1);
		close(fd);
	}
	if (masked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&sb_shutdown_g.mu);
	return SB_EIO;
}

int
sb_shutdown_wait(void)
{
	pthread_mutex_lock(&sb_shutdown_g.mu);
	while (!atomic_load(&sb_shutdown_g.requested))
		pthread_cond_wait(&sb_shutdown_g.cv, &sb_shutdown_g.mu);
	int sig = sb_shutdown_g.signo;
	pthread_mutex_unlock(&sb_shutdown_g.mu);
	return sig;
}

bool
sb_shutdown_requested(void)
{
	return atomic_load(&sb_shutdown_g.requested);
}

void
sb_shutdown_request(void)
{
	sb_shutdown_trigger(0);
}

int
sb_shutdown_fd(void)
{
	return atomic_load(&sb_shutdown_g.efd);
}
