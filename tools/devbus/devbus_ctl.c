/* devbus_ctl.c: the control port (one command per line, one answer line per command) and its
 * command-line client. Commands: ping, bootstrap, down ID, up ID, create TOPIC PARTITIONS, quit.
 * Every answer is "ok ..." or "err reason". */
#include "devbus.h"
#include "sb_err.h"
#include "sb_kafka.h"
#include "sb_log.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEVBUS_CTL_CLIENTS 16
#define DEVBUS_CTL_LINE    512
#define DEVBUS_CTL_ARGS    4

struct devbus_ctl_conn {
	int fd;
	size_t len;
	char buf[DEVBUS_CTL_LINE];
};

struct devbus_ctl {
	struct devbus *db;
	int lfd;
	struct devbus_ctl_conn conns[DEVBUS_CTL_CLIENTS];
};

typedef void (*devbus_ctl_fn)(struct devbus *db, int argc, char **argv, char *out, size_t n);

static int
devbus_ctl_broker_id(struct devbus *db, const char *s, char *out, size_t n)
{
	char *end;
	long id = strtol(s, &end, 10);
	if (end == s || *end != '\0' || id < 1 || id > db->nbrokers) {
		snprintf(out, n, "err broker id must be 1..%d", db->nbrokers);
		return -1;
	}
	return (int)id;
}

static void
devbus_ctl_ping(struct devbus *db, int argc, char **argv, char *out, size_t n)
{
	snprintf(out, n, "ok pong");
}

static void
devbus_ctl_bootstrap(struct devbus *db, int argc, char **argv, char *out, size_t n)
{
	snprintf(out, n, "ok %s", db->bootstraps);
}

static void
devbus_ctl_updown(struct devbus *db, char **argv, bool up, char *out, size_t n)
{
	int id = devbus_ctl_broker_id(db, argv[1], out, n);
	if (id < 0)
		return;
	rd_kafka_resp_err_t e = up ? rd_kafka_mock_broker_set_up(db->mc, id)
	                           : rd_kafka_mock_broker_set_down(db->mc, id);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(out, n, "err %s", rd_kafka_err2str(e));
		return;
	}
	atomic_store(&db->broker_up[id], up);
	sb_log_kv(SB_LOG_INFO, up ? "broker up" : "broker down", "broker", argv[1], NULL);
	snprintf(out, n, "ok broker %d %s", id, up ? "up" : "down");
}

static void
devbus_ctl_down(struct devbus *db, int argc, char **argv, char *out, size_t n)
{
	devbus_ctl_updown(db, argv, false, out, n);
}

static void
devbus_ctl_up(struct devbus *db, int argc, char **argv, char *out, size_t n)
{
	devbus_ctl_updown(db, argv, true, out, n);
}

static void
devbus_ctl_create(struct devbus *db, int argc, char **argv, char *out, size_t n)
{
	char *end;
	long parts = strtol(argv[2], &end, 10);
	size_t len = strlen(argv[1]);

	if (end == argv[2] || *end != '\0' || parts < 1 || parts > 1000) {
		snprintf(out, n, "err partitions must be 1..1000");
		return;
	}
	/* Kafka's rule for topic names: [a-zA-Z0-9._-], at most 249 characters. */
	if (len > 249 || strspn(argv[1], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                 "0123456789._-") != len) {
		snprintf(out, n, "err invalid topic name");
		return;
	}
	rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(db->mc, argv[1], (int)parts, 1);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(out, n, "err %s", rd_kafka_err2str(e));
		return;
	}
	sb_log_kv(SB_LOG_INFO, "topic created", "topic", argv[1], "partitions", argv[2], NULL);
	snprintf(out, n, "ok created %s %ld", argv[1], parts);
}

static void
devbus_ctl_quit(struct devbus *db, int argc, char **argv, char *out, size_t n)
{
	atomic_store(&db->stop, true);
	snprintf(out, n, "ok bye");
}

static const struct {
	const char *name;
	int argc; /* including the command itself */
	const char *usage;
	devbus_ctl_fn fn;
} devbus_ctl_cmds[] = {
	{ "ping", 1, "ping", devbus_ctl_ping },
	{ "bootstrap", 1, "bootstrap", devbus_ctl_bootstrap },
	{ "down", 2, "down <broker_id>", devbus_ctl_down },
	{ "up", 2, "up <broker_id>", devbus_ctl_up },
	{ "create", 3, "create <topic> <partitions>", devbus_ctl_create },
	{ "quit", 1, "quit", devbus_ctl_quit },
};

/* devbus_ctl_exec runs one command line and writes its answer (no newline) to out. */
static void
devbus_ctl_exec(struct devbus *db, char *line, char *out, size_t n)
{
	char *argv[DEVBUS_CTL_ARGS + 1];
	char *save = NULL;
	int argc = 0;

	for (char *t = strtok_r(line, " \t\r", &save); t != NULL;
	     t = strtok_r(NULL, " \t\r", &save)) {
		if (argc == DEVBUS_CTL_ARGS) {
			snprintf(out, n, "err too many arguments");
			return;
		}
		argv[argc++] = t;
	}
	if (argc == 0) {
		snprintf(out, n, "err empty command");
		return;
	}
	for (size_t i = 0; i < sizeof(devbus_ctl_cmds) / sizeof(devbus_ctl_cmds[0]); i++) {
		if (strcmp(argv[0], devbus_ctl_cmds[i].name) != 0)
			continue;
		if (argc != devbus_ctl_cmds[i].argc) {
			snprintf(out, n, "err usage: %s", devbus_ctl_cmds[i].usage);
			return;
		}
		devbus_ctl_cmds[i].fn(db, argc, argv, out, n);
		return;
	}
	snprintf(out, n, "err unknown command (ping, bootstrap, down, up, create, quit)");
}

/* devbus_ctl_read reads from a client and answers every complete line. Returns -1 to close. */
static int
devbus_ctl_read(struct devbus_ctl *ctl, struct devbus_ctl_conn *c)
{
	char out[DEVBUS_CTL_LINE + 1100];
	ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	char *nl;

	if (r <= 0)
		return r < 0 && (errno == EINTR || errno == EAGAIN) ? 0 : -1;
	c->len += (size_t)r;
	c->buf[c->len] = '\0';
	while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
		*nl = '\0';
		if (strlen(c->buf) != (size_t)(nl - c->buf))
			snprintf(out, sizeof(out), "err NUL byte in command");
		else
			devbus_ctl_exec(ctl->db, c->buf, out, sizeof(out));
		size_t olen = strlen(out);
		out[olen++] = '\n';
		if (send(c->fd, out, olen, MSG_NOSIGNAL) != (ssize_t)olen)
			return -1;
		size_t used = (size_t)(nl + 1 - c->buf);
		memmove(c->buf, nl + 1, c->len - used);
		c->len -= used;
		c->buf[c->len] = '\0';
	}
	if (c->len == sizeof(c->buf) - 1) {
		static const char tl[] = "err line too long\n";
		send(c->fd, tl, sizeof(tl) - 1, MSG_NOSIGNAL);
		return -1;
	}
	return 0;
}

static void
devbus_ctl_accept(struct devbus_ctl *ctl)
{
	int fd = accept4(ctl->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < DEVBUS_CTL_CLIENTS; i++) {
		if (ctl->conns[i].fd < 0) {
			ctl->conns[i].fd = fd;
			ctl->conns[i].len = 0;
			return;
		}
	}
	static const char busy[] = "err too many control connections\n";
	send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
	close(fd);
}

static void *
devbus_ctl_run(void *arg)
{
	struct devbus_ctl *ctl = arg;
	struct pollfd pfd[DEVBUS_CTL_CLIENTS + 1];
	int idx[DEVBUS_CTL_CLIENTS + 1];

	while (!atomic_load(&ctl->db->stop)) {
		int n = 0;
		pfd[n++] = (struct pollfd){ .fd = ctl->lfd, .events = POLLIN };
		for (int i = 0; i < DEVBUS_CTL_CLIENTS; i++) {
			if (ctl->conns[i].fd >= 0) {
				idx[n] = i;
				pfd[n++] =
				    (struct pollfd){ .fd = ctl->conns[i].fd, .events = POLLIN };
			}
		}
		if (poll(pfd, (nfds_t)n, 200) <= 0)
			continue;
		if (pfd[0].revents & POLLIN)
			devbus_ctl_accept(ctl);
		for (int k = 1; k < n; k++) {
			struct devbus_ctl_conn *c = &ctl->conns[idx[k]];
			if (pfd[k].revents == 0)
				continue;
			if (devbus_ctl_read(ctl, c) != 0) {
				close(c->fd);
				c->fd = -1;
			}
		}
	}
	for (int i = 0; i < DEVBUS_CTL_CLIENTS; i++) {
		if (ctl->conns[i].fd >= 0)
			close(ctl->conns[i].fd);
	}
	close(ctl->lfd);
	free(ctl);
	return NULL;
}

int
devbus_listen_tcp(const char *addr)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		                  .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL;
	int fd = -1, one = 1;

	if (colon == NULL || colon == addr || (size_t)(colon - addr) >= sizeof(host) ||
	    colon[1] == '\0') {
		sb_log_kv(SB_LOG_ERROR, "expected HOST:PORT", "address", addr, NULL);
		return -1;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	int gr = getaddrinfo(host, colon + 1, &hints, &res);
	if (gr != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot resolve listen address", "address", addr, "error",
		          gai_strerror(gr), NULL);
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		sb_log_kv(SB_LOG_ERROR, "cannot listen", "address", addr, "error", strerror(errno),
		          NULL);
	return fd;
}

int
devbus_ctl_start(struct devbus *db, const char *addr, pthread_t *thr)
{
	struct devbus_ctl *ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL)
		return -1;
	ctl->db = db;
	for (int i = 0; i < DEVBUS_CTL_CLIENTS; i++)
		ctl->conns[i].fd = -1;
	ctl->lfd = devbus_listen_tcp(addr);
	if (ctl->lfd < 0) {
		free(ctl);
		return -1;
	}
	if (pthread_create(thr, NULL, devbus_ctl_run, ctl) != 0) {
		close(ctl->lfd);
		free(ctl);
		return -1;
	}
	return 0;
}

int
devbus_ctl_client(const char *addr, int argc, char **argv)
{
	char cmd[DEVBUS_CTL_LINE], reply[1200];
	size_t len = 0;

	cmd[0] = '\0';
	for (int i = 0; i < argc; i++) {
		int w = snprintf(cmd + len, sizeof(cmd) - len, "%s%s", i ? " " : "", argv[i]);
		if (w < 0 || (size_t)w >= sizeof(cmd) - len) {
			fprintf(stderr, "devbus ctl: command too long\n");
			return 1;
		}
		len += (size_t)w;
	}
	int r = sb_kafka_devbus_ctl(addr, cmd, 5000, reply, sizeof(reply));
	if (reply[0] != '\0') {
		printf("%s\n", reply);
	} else {
		fprintf(stderr, "devbus ctl %s: %s\n", addr, sb_strerror(r));
	}
	return r == 0 ? 0 : 1;
}
