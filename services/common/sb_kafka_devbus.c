/* sb_kafka_devbus.c: client of devbus's line-oriented control port (tests, local tools). */
#include "sb_kafka.h"
#include "sb_err.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long
sb_kafka_devbus_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sb_kafka_devbus_connect opens a TCP connection to "host:port". Returns an fd or an sb_err. */
static int
sb_kafka_devbus_connect(const char *addr)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int fd = -1;

	if (colon == NULL || colon == addr || (size_t)(colon - addr) >= sizeof(host) ||
	    colon[1] == '\0')
		return SB_EINVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return SB_EINVAL;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd < 0 ? SB_EUNAVAIL : fd;
}

int
sb_kafka_devbus_ctl(const char *addr, const char *cmd, int timeout_ms, char *reply, size_t n)
{
	char line[512];
	size_t got = 0;
	int fd, len, ret = SB_EIO;
	long long deadline = sb_kafka_devbus_now_ms() + timeout_ms;

	if (addr == NULL || cmd == NULL || reply == NULL || n == 0 || strchr(cmd, '\n') != NULL)
		return SB_EINVAL;
	reply[0] = '\0';
	len = snprintf(line, sizeof(line), "%s\n", cmd);
	if (len < 0 || (size_t)len >= sizeof(line))
		return SB_EINVAL;
	if ((fd = sb_kafka_devbus_connect(addr)) < 0)
		return fd;
	if (send(fd, line, (size_t)len, MSG_NOSIGNAL) != len)
		goto done;
	for (;;) {
		long long left = deadline - sb_kafka_devbus_now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (left <= 0) {
			ret = SB_ETIMEDOUT;
			goto done;
		}
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			ret = pr == 0 ? SB_ETIMEDOUT : SB_EIO;
			goto done;
		}
		ssize_t r = recv(fd, line + got, sizeof(line) - 1 - got, 0);
		if (r <= 0) {
			ret = SB_EPROTO; /* closed before a full line */
			goto done;
		}
		got += (size_t)r;
		line[got] = '\0';
		char *nl = strchr(line, '\n');
		if (nl != NULL) {
			*nl = '\0';
			break;
		}
		if (got == sizeof(line) - 1) {
			ret = SB_EPROTO;
			goto done;
		}
	}
	snprintf(reply, n, "%s", line);
	ret = strncmp(line, "ok", 2) == 0 && (line[2] == '\0' || line[2] == ' ') ? 0 : SB_EPROTO;
done:
	close(fd);
	return ret;
}
