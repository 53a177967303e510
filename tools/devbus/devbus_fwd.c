/* devbus_fwd.c: the stable bootstrap address (--listen). Each accepted connection is relayed,
 * byte for byte, to a broker that is up; clients then learn the brokers' own (random) ports
 * from the metadata and connect to them directly. */
#include "devbus.h"
#include "sb_log.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct devbus_fwd {
	struct devbus *db;
	int lfd;
	unsigned next; /* round robin over brokers */
};

struct devbus_relay {
	struct devbus *db;
	int a, b;
};

static atomic_int devbus_fwd_active;

static int
devbus_fwd_dial(const char *addr)
{
	char host[128];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int fd = -1;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
		return -1;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return -1;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* devbus_fwd_pick connects to the next broker marked up. Returns an fd or -1. */
static int
devbus_fwd_pick(struct devbus_fwd *f)
{
	struct devbus *db = f->db;

	for (int k = 0; k < db->nbrokers; k++) {
		int id = (int)(f->next++ % (unsigned)db->nbrokers) + 1;
		if (!atomic_load(&db->broker_up[id]) || db->broker_addr[id][0] == '\0')
			continue;
		int fd = devbus_fwd_dial(db->broker_addr[id]);
		if (fd >= 0)
			return fd;
	}
	return -1;
}

/* devbus_fwd_copy moves what is readable from 'from' to 'to'. Returns -1 at EOF or error. */
static int
devbus_fwd_copy(int from, int to)
{
	char buf[65536];
	ssize_t r = recv(from, buf, sizeof(buf), 0);

	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (r <= 0)
		return -1;
	for (ssize_t off = 0; off < r;) {
		ssize_t w = send(to, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += w;
	}
	return 0;
}

static void *
devbus_fwd_relay(void *arg)
{
	struct devbus_relay *r = arg;

	while (!atomic_load(&r->db->stop)) {
		struct pollfd p[2] = { { .fd = r->a, .events = POLLIN },
			               { .fd = r->b, .events = POLLIN } };
		int n = poll(p, 2, 200);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    devbus_fwd_copy(r->a, r->b) != 0)
			break;
		if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    devbus_fwd_copy(r->b, r->a) != 0)
			break;
	}
	close(r->a);
	close(r->b);
	free(r);
	atomic_fetch_sub(&devbus_fwd_active, 1);
	return NULL;
}

static void
devbus_fwd_accept(struct devbus_fwd *f)
{
	pthread_attr_t attr;
	pthread_t t;
	struct devbus_relay *r;
	int a = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (a < 0)
		return;
	int b = devbus_fwd_pick(f);
	if (b < 0) {
		sb_log_kv(SB_LOG_WARN, "no broker up to forward a connection to", NULL);
		close(a);
		return;
	}
	r = malloc(sizeof(*r));
	if (r == NULL)
		goto fail;
	*r = (struct devbus_relay){ f->db, a, b };
	atomic_fetch_add(&devbus_fwd_active, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&t, &attr, devbus_fwd_relay, r);
	pthread_attr_destroy(&attr);
	if (e == 0)
		return;
	atomic_fetch_sub(&devbus_fwd_active, 1);
	free(r);
fail:
	close(a);
	close(b);
}

static void *
devbus_fwd_run(void *arg)
{
	struct devbus_fwd *f = arg;

	while (!atomic_load(&f->db->stop)) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		if (poll(&p, 1, 200) > 0 && (p.revents & POLLIN))
			devbus_fwd_accept(f);
	}
	close(f->lfd);
	free(f);
	return NULL;
}

int
devbus_fwd_start(struct devbus *db, const char *addr, pthread_t *thr)
{
	struct devbus_fwd *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->db = db;
	f->lfd = devbus_listen_tcp(addr);
	if (f->lfd < 0) {
		free(f);
		return -1;
	}
	if (pthread_create(thr, NULL, devbus_fwd_run, f) != 0) {
		close(f->lfd);
		free(f);
		return -1;
	}
	return 0;
}

void
devbus_fwd_wait(int timeout_ms)
{
	for (int waited = 0; atomic_load(&devbus_fwd_active) > 0 && waited < timeout_ms;
	     waited += 10) {
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
}
