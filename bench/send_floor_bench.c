/* send_floor_bench.c: the kernel's share of one WebSocket delivery on this machine.
 *
 * A fan-out server pays at least one send() per recipient. This measures, in the sending
 * thread only (CLOCK_THREAD_CPUTIME_ID), the CPU of delivering one 300-byte frame to one of
 * SB_FLOOR_CONNS (2,000) loopback TCP connections, round robin, in two ways:
 *   send:     a bare send() per frame, the least any server can pay;
 *   readiness: what an event loop that writes only when told the socket is writable pays per
 *             frame (libwebsockets' model): arm EPOLLOUT, epoll_wait, send, disarm EPOLLOUT.
 * The receiving ends live in a child process that drains them with epoll (its CPU is not
 * counted; on loopback part of the receive path still runs in the sender's context, as it does
 * for a real server talking to local load generators). The result bounds the fan-out target:
 * deliveries per server CPU-second can never exceed 1 / (CPU per send). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FRAME_LEN 300

static double
thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* receiver connects n sockets to port and drains them until the parent closes them all. */
static int
receiver(int port, int n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int ep = epoll_create1(0), open_fds = 0;
	char buf[65536];

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			perror("send_floor_bench: connect");
			return 1;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		open_fds++;
	}
	while (open_fds > 0) {
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 10000);
		if (k <= 0)
			return k == 0 ? 1 : (errno == EINTR ? 0 : 1);
		for (int i = 0; i < k; i++) {
			ssize_t r = read(evs[i].data.fd, buf, sizeof(buf));
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				close(evs[i].data.fd);
				open_fds--;
			}
		}
	}
	return 0;
}

/* run_send delivers total frames round robin, bare send() or through readiness. Returns the
 * sender thread's CPU seconds, or a negative value on failure. */
static double
run_send(const int *fds, int n, long total, int readiness)
{
	char frame[FRAME_LEN];
	int ep = -1;

	memset(frame, 'x', sizeof(frame));
	if (readiness) {
		ep = epoll_create1(0);
		for (int i = 0; i < n; i++) {
			struct epoll_event ev = { .events = 0, .data.u32 = (uint32_t)i };
			epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
		}
	}
	double c0 = thread_cpu_s();
	for (long k = 0; k < total; k++) {
		int i = (int)(k % n);
		if (readiness) {
			struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)i },
			                   got;
			epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
			if (epoll_wait(ep, &got, 1, 1000) != 1)
				return -1;
			ev.events = 0;
			epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
		}
		if (send(fds[i], frame, sizeof(frame), MSG_NOSIGNAL) != (ssize_t)sizeof(frame))
			return -1;
	}
	double c1 = thread_cpu_s();
	if (ep >= 0)
		close(ep);
	return c1 - c0;
}

int
main(void)
{
	const char *e = getenv("SB_FLOOR_CONNS");
	int n = e ? atoi(e) : 2000;
	long total = 400000;

	if (n < 1 || n > 8000) {
		fprintf(stderr, "send_floor_bench: SB_FLOOR_CONNS must be 1..8000\n");
		return 2;
	}
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
		perror("send_floor_bench: listen");
		return 1;
	}
	pid_t child = fork();
	if (child == 0)
		_exit(receiver(ntohs(a.sin_port), n));
	int *fds = calloc((size_t)n, sizeof(*fds));
	for (int i = 0; i < n; i++) {
		if ((fds[i] = accept(lfd, NULL, NULL)) < 0) {
			perror("send_floor_bench: accept");
			kill(child, SIGKILL);
			return 1;
		}
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	run_send(fds, n, total / 10, 0); /* warm-up */
	double w0 = wall_s();
	double bare = run_send(fds, n, total, 0);
	double w1 = wall_s();
	double ready = run_send(fds, n, total, 1);
	double w2 = wall_s();
	for (int i = 0; i < n; i++)
		close(fds[i]);
	int st = 0;
	waitpid(child, &st, 0);
	if (bare < 0 || ready < 0) {
		fprintf(stderr, "send_floor_bench: a send failed\n");
		return 1;
	}
	printf("one %d-byte frame to one of %d loopback TCP connections, %ld frames each way, CPU "
	       "of the sending thread:\n",
	       FRAME_LEN, n, total);
	printf("  bare send():                    %6.2f us per frame (%.0f frames per CPU-second, "
	       "%.0f per wall second)\n",
	       bare / (double)total * 1e6, (double)total / bare, (double)total / (w1 - w0));
	printf("  readiness (arm, wait, send, disarm): %6.2f us per frame (%.0f frames per "
	       "CPU-second, %.0f per wall second)\n",
	       ready / (double)total * 1e6, (double)total / ready, (double)total / (w2 - w1));
	printf("RESULT send_us=%.2f readiness_us=%.2f\n", bare / (double)total * 1e6,
	       ready / (double)total * 1e6);
	return 0;
}
