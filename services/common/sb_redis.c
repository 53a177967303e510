/* sb_redis.c: a hiredis connection that reconnects with backoff; commands, pipeline, EVALSHA. */
#include "sb_redis.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_metrics.h"
#include "sb_util_backoff.h"
#include "sb_util_time.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SB_REDIS_DEFAULT_TIMEOUT_MS      2000
#define SB_REDIS_DEFAULT_BACKOFF_BASE_MS 100
#define SB_REDIS_DEFAULT_BACKOFF_MAX_MS  5000

struct sb_redis {
	struct sb_redis_url url; /* holds the password: wiped on close */
	redisContext *c;         /* NULL while disconnected */
	struct timeval connect_tv;
	struct timeval command_tv;
	struct sb_backoff backoff;
	int64_t next_attempt_ms;
	int ever_connected;
	uint64_t reconnects;
	size_t pending;       /* appended commands whose reply is unread */
	bool sigpipe_ignored; /* SIGPIPE was ignored process-wide at open: no masking */
	int err;
	char errmsg[160];
};

static struct {
	pthread_once_t once;
	struct sb_series *reconnects;
} sb_redis_m = { PTHREAD_ONCE_INIT, NULL };

static void
sb_redis_metrics_init(void)
{
	struct sb_metric *c = sb_metrics_counter(
	    "redis_reconnects_total", "Redis connections re-established after a loss.", NULL);
	sb_redis_m.reconnects = sb_metric_with(c);
}

/* A write to a socket the peer closed raises SIGPIPE, which kills a process that did not
 * ignore it. Block it around I/O and consume one raised meanwhile (as libpq does), unless the
 * process ignored SIGPIPE when the connection was opened (every service does, at start): then
 * the four system calls per round trip are saved. */
struct sb_redis_sigpipe {
	sigset_t old;
	bool active;
	int was_pending;
};

static bool
sb_redis_sigpipe_is_ignored(void)
{
	struct sigaction sa;
	return sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

static void
sb_redis_sigpipe_block(const struct sb_redis *r, struct sb_redis_sigpipe *sp)
{
	sp->active = !r->sigpipe_ignored;
	if (!sp->active)
		return;
	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &sp->old);
	sigpending(&pend);
	sp->was_pending = sigismember(&pend, SIGPIPE);
}

static void
sb_redis_sigpipe_restore(struct sb_redis_sigpipe *sp)
{
	if (!sp->active)
		return;
	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	if (!sp->was_pending && sigismember(&pend, SIGPIPE)) {
		struct timespec zero = { 0, 0 };
		int saved = errno;
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
		errno = saved;
	}
	pthread_sigmask(SIG_SETMASK, &sp->old, NULL);
}

static void
sb_redis_set_error(struct sb_redis *r, int err, const char *msg)
{
	r->err = err;
	snprintf(r->errmsg, sizeof(r->errmsg), "%s", msg ? msg : sb_strerror(err));
}

/* sb_redis_drop forgets the connection and any pipelined commands; the next call reconnects
 * at once (the loss was noticed, not a failed attempt). */
static void
sb_redis_drop(struct sb_redis *r)
{
	if (r->c != NULL)
		redisFree(r->c);
	r->c = NULL;
	r->pending = 0;
	r->next_attempt_ms = 0;
	sb_backoff_reset(&r->backoff);
}

/* sb_redis_io_error maps the context's error after a failed call, then drops the connection
 * (hiredis contexts are unusable after any error). Returns the sb_err. */
static int
sb_redis_io_error(struct sb_redis *r, int saved_errno)
{
	int err = SB_EUNAVAIL;
	const char *what = r->c ? r->c->errstr : "no connection";
	if (r->c != NULL && r->c->err == REDIS_ERR_IO &&
	    (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
		err = SB_ETIMEDOUT;
	else if (r->c != NULL && r->c->err == REDIS_ERR_OOM)
		err = SB_ENOMEM;
	else if (r->c != NULL && r->c->err == REDIS_ERR_PROTOCOL)
		err = SB_EPROTO;
	else if (r->c != NULL && r->c->err == REDIS_ERR_OTHER &&
	         strstr(r->c->errstr, "format") != NULL)
		err = SB_EINVAL;
	char msg[160];
	snprintf(msg, sizeof(msg), "redis: %s", err == SB_ETIMEDOUT ? "command timed out" : what);
	sb_redis_set_error(r, err, msg);
	sb_redis_drop(r);
	return err;
}

static void
sb_redis_schedule_retry(struct sb_redis *r)
{
	uint32_t d = sb_backoff_next(&r->backoff);
	if (d < r->backoff.base_ms / 2)
		d = r->backoff.base_ms / 2; /* never retry in a tight loop */
	r->next_attempt_ms = sb_time_mono_ms() + d;
}

static int
sb_redis_handshake_lost(struct sb_redis *r)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "redis handshake: %s", r->c->errstr);
	sb_redis_set_error(r, SB_EUNAVAIL, msg);
	return SB_EUNAVAIL;
}

/* sb_redis_handshake authenticates and selects the database on a fresh context. */
static int
sb_redis_handshake(struct sb_redis *r)
{
	if (r->url.password[0] != '\0') {
		const char *argv[3] = { "AUTH", r->url.user, r->url.password };
		int argc = r->url.user[0] ? 3 : 2;
		if (argc == 2)
			argv[1] = r->url.password;
		redisReply *rep = redisCommandArgv(r->c, argc, argv, NULL);
		if (rep == NULL)
			return sb_redis_handshake_lost(r);
		int ok = rep->type != REDIS_REPLY_ERROR;
		if (!ok) {
			char msg[160];
			snprintf(msg, sizeof(msg), "redis AUTH failed: %.120s", rep->str);
			sb_redis_set_error(r, SB_EUNAVAIL, msg);
		}
		freeReplyObject(rep);
		if (!ok)
			return SB_EUNAVAIL;
	}
	if (r->url.db != 0) {
		redisReply *rep = redisCommand(r->c, "SELECT %d", r->url.db);
		if (rep == NULL)
			return sb_redis_handshake_lost(r);
		int ok = rep->type != REDIS_REPLY_ERROR;
		if (!ok) {
			char msg[160];
			snprintf(msg, sizeof(msg), "redis SELECT %d failed: %.100s", r->url.db,
			         rep->str);
			sb_redis_set_error(r, SB_EUNAVAIL, msg);
		}
		freeReplyObject(rep);
		if (!ok)
			return SB_EUNAVAIL;
	}
	return 0;
}

/* sb_redis_connect makes sure of a connection, connecting if an attempt is due. */
static int
sb_redis_connect(struct sb_redis *r)
{
	if (r->c != NULL)
		return 0;
	int64_t now = sb_time_mono_ms();
	if (now < r->next_attempt_ms) {
		char msg[96];
		snprintf(msg, sizeof(msg), "redis unavailable; next attempt in %lld ms",
		         (long long)(r->next_attempt_ms - now));
		sb_redis_set_error(r, SB_EUNAVAIL, msg);
		return SB_EUNAVAIL;
	}
	r->c = redisConnectWithTimeout(r->url.host, r->url.port, r->connect_tv);
	int rv = 0;
	if (r->c == NULL) {
		sb_redis_set_error(r, SB_ENOMEM, "redis: out of memory");
		rv = SB_ENOMEM;
	} else if (r->c->err != 0) {
		char msg[160];
		snprintf(msg, sizeof(msg), "redis connect %.60s:%d: %.80s", r->url.host,
		         r->url.port, r->c->errstr);
		sb_redis_set_error(r, SB_EUNAVAIL, msg);
		rv = SB_EUNAVAIL;
	} else if (redisSetTimeout(r->c, r->command_tv) != REDIS_OK) {
		sb_redis_set_error(r, SB_EIO, "redis: cannot set the command timeout");
		rv = SB_EIO;
	} else {
		(void)redisEnableKeepAlive(r->c);
		rv = sb_redis_handshake(r);
	}
	if (rv != 0) {
		if (r->c != NULL)
			redisFree(r->c);
		r->c = NULL;
		r->pending = 0;
		sb_redis_schedule_retry(r);
		sb_log_kv(SB_LOG_DEBUG, "redis connect failed", "error", r->errmsg, NULL);
		return rv == SB_ENOMEM ? rv : SB_EUNAVAIL;
	}
	sb_backoff_reset(&r->backoff);
	r->next_attempt_ms = 0;
	if (r->ever_connected) {
		r->reconnects++;
		sb_series_inc(sb_redis_m.reconnects);
		sb_log_kv(SB_LOG_INFO, "redis reconnected", NULL);
	}
	r->ever_connected = 1;
	return 0;
}

/* sb_redis_enter starts a command: no unread pipeline, a connection. */
static int
sb_redis_enter(struct sb_redis *r)
{
	r->err = 0;
	r->errmsg[0] = '\0';
	if (r->pending > 0) {
		sb_redis_set_error(r, SB_EBUSY, "redis: pipelined replies are still unread");
		return SB_EBUSY;
	}
	return sb_redis_connect(r);
}

int
sb_redis_open_opts(const char *url, const struct sb_redis_opts *opts, struct sb_redis **out)
{
	*out = NULL;
	struct sb_redis *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return SB_ENOMEM;
	char err[160];
	if (sb_redis_url_parse(url, &r->url, err, sizeof(err)) != 0) {
		sb_log_kv(SB_LOG_ERROR, "invalid Redis URL", "error", err, NULL);
		sb_redis_close(r);
		return SB_EINVAL;
	}
	pthread_once(&sb_redis_m.once, sb_redis_metrics_init);
	int ct = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
	                                              : SB_REDIS_DEFAULT_TIMEOUT_MS;
	int cmd = opts && opts->command_timeout_ms > 0 ? opts->command_timeout_ms
	                                               : SB_REDIS_DEFAULT_TIMEOUT_MS;
	int base = opts && opts->backoff_base_ms > 0 ? opts->backoff_base_ms
	                                             : SB_REDIS_DEFAULT_BACKOFF_BASE_MS;
	int max = opts && opts->backoff_max_ms > 0 ? opts->backoff_max_ms
	                                           : SB_REDIS_DEFAULT_BACKOFF_MAX_MS;
	if (max < base)
		max = base;
	r->connect_tv = (struct timeval){ ct / 1000, (ct % 1000) * 1000 };
	r->command_tv = (struct timeval){ cmd / 1000, (cmd % 1000) * 1000 };
	sb_backoff_init(&r->backoff, (uint32_t)base, (uint32_t)max);
	r->sigpipe_ignored = sb_redis_sigpipe_is_ignored();
	*out = r;
	return 0;
}

int
sb_redis_open(const char *url, struct sb_redis **out)
{
	return sb_redis_open_opts(url, NULL, out);
}

void
sb_redis_close(struct sb_redis *r)
{
	if (r == NULL)
		return;
	if (r->c != NULL)
		redisFree(r->c);
	explicit_bzero(&r->url, sizeof(r->url));
	free(r);
}

/* sb_redis_finish turns a command's reply (or its absence) into the result. */
static redisReply *
sb_redis_finish(struct sb_redis *r, redisReply *rep, int saved_errno)
{
	if (rep == NULL)
		sb_redis_io_error(r, saved_errno);
	return rep;
}

redisReply *
sb_redis_command(struct sb_redis *r, const char *fmt, ...)
{
	if (sb_redis_enter(r) != 0)
		return NULL;
	struct sb_redis_sigpipe sp;
	sb_redis_sigpipe_block(r, &sp);
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(r->c, fmt, ap);
	va_end(ap);
	int saved = errno;
	sb_redis_sigpipe_restore(&sp);
	return sb_redis_finish(r, rep, saved);
}

redisReply *
sb_redis_command_argv(struct sb_redis *r, int argc, const char **argv, const size_t *argvlen)
{
	if (argc <= 0 || argv == NULL) {
		sb_redis_set_error(r, SB_EINVAL, "redis: empty command");
		return NULL;
	}
	if (sb_redis_enter(r) != 0)
		return NULL;
	struct sb_redis_sigpipe sp;
	sb_redis_sigpipe_block(r, &sp);
	redisReply *rep = redisCommandArgv(r->c, argc, argv, argvlen);
	int saved = errno;
	sb_redis_sigpipe_restore(&sp);
	return sb_redis_finish(r, rep, saved);
}

/* sb_redis_enter_append makes sure of a connection for a pipelined command. */
static int
sb_redis_enter_append(struct sb_redis *r)
{
	r->err = 0;
	r->errmsg[0] = '\0';
	if (r->c == NULL && r->pending > 0) {
		sb_redis_set_error(r, SB_EUNAVAIL, "redis: connection lost with the pipeline");
		return SB_EUNAVAIL;
	}
	return sb_redis_connect(r);
}

int
sb_redis_append(struct sb_redis *r, const char *fmt, ...)
{
	int rv = sb_redis_enter_append(r);
	if (rv != 0)
		return rv;
	va_list ap;
	va_start(ap, fmt);
	int st = redisvAppendCommand(r->c, fmt, ap);
	va_end(ap);
	if (st != REDIS_OK)
		return sb_redis_io_error(r, errno);
	r->pending++;
	return 0;
}

int
sb_redis_append_argv(struct sb_redis *r, int argc, const char **argv, const size_t *argvlen)
{
	if (argc <= 0 || argv == NULL) {
		sb_redis_set_error(r, SB_EINVAL, "redis: empty command");
		return SB_EINVAL;
	}
	int rv = sb_redis_enter_append(r);
	if (rv != 0)
		return rv;
	if (redisAppendCommandArgv(r->c, argc, argv, argvlen) != REDIS_OK)
		return sb_redis_io_error(r, errno);
	r->pending++;
	return 0;
}

int
sb_redis_get_replies(struct sb_redis *r, redisReply **replies, size_t n)
{
	for (size_t i = 0; i < n; i++)
		replies[i] = NULL;
	r->err = 0;
	r->errmsg[0] = '\0';
	if (n > r->pending) {
		char msg[96];
		snprintf(msg, sizeof(msg), "redis: %zu replies asked, %zu commands queued", n,
		         r->pending);
		sb_redis_set_error(r, SB_EINVAL, msg);
		return SB_EINVAL;
	}
	if (r->c == NULL) {
		sb_redis_set_error(r, SB_EUNAVAIL, "redis: connection lost with the pipeline");
		return SB_EUNAVAIL;
	}
	struct sb_redis_sigpipe sp;
	sb_redis_sigpipe_block(r, &sp);
	int rv = 0;
	for (size_t i = 0; i < n; i++) {
		void *rep = NULL;
		if (redisGetReply(r->c, &rep) != REDIS_OK || rep == NULL) {
			rv = sb_redis_io_error(r, errno);
			for (size_t j = 0; j < i; j++) {
				freeReplyObject(replies[j]);
				replies[j] = NULL;
			}
			break;
		}
		replies[i] = rep;
	}
	sb_redis_sigpipe_restore(&sp);
	if (rv == 0)
		r->pending -= n;
	return rv;
}

size_t
sb_redis_pending(const struct sb_redis *r)
{
	return r->pending;
}

/* sb_redis_evalsha_once runs EVALSHA with the arguments prepared in argv. */
static redisReply *
sb_redis_evalsha_once(struct sb_redis *r, int argc, const char **argv)
{
	return sb_redis_command_argv(r, argc, argv, NULL);
}

redisReply *
sb_redis_evalsha(struct sb_redis *r, const struct sb_redis_script *s, int nkeys,
                 const char *const *keys, int nargs, const char *const *args)
{
	if (s == NULL || s->lua == NULL || s->sha[0] == '\0' || nkeys < 0 || nargs < 0) {
		sb_redis_set_error(r, SB_EINVAL, "redis: script not initialised");
		return NULL;
	}
	int argc = 3 + nkeys + nargs;
	const char **argv = calloc((size_t)argc, sizeof(*argv));
	if (argv == NULL) {
		sb_redis_set_error(r, SB_ENOMEM, NULL);
		return NULL;
	}
	char nk[16];
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[0] = "EVALSHA";
	argv[1] = s->sha;
	argv[2] = nk;
	for (int i = 0; i < nkeys; i++)
		argv[3 + i] = keys[i];
	for (int i = 0; i < nargs; i++)
		argv[3 + nkeys + i] = args[i];

	redisReply *rep = sb_redis_evalsha_once(r, argc, argv);
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR &&
	    strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(rep);
		rep = NULL;
		const char *load[] = { "SCRIPT", "LOAD", s->lua };
		redisReply *lr = sb_redis_command_argv(r, 3, load, NULL);
		if (lr == NULL)
			goto done;
		int ok = lr->type == REDIS_REPLY_STRING && strcmp(lr->str, s->sha) == 0;
		if (!ok) {
			char msg[160];
			snprintf(msg, sizeof(msg), "redis SCRIPT LOAD failed: %.120s",
			         lr->str ? lr->str : "unexpected reply");
			sb_redis_set_error(r, SB_EPROTO, msg);
			freeReplyObject(lr);
			goto done;
		}
		freeReplyObject(lr);
		rep = sb_redis_evalsha_once(r, argc, argv);
	}
done:
	free(argv);
	return rep;
}

int
sb_redis_ping(struct sb_redis *r, char *detail, size_t n)
{
	if (r == NULL) {
		snprintf(detail, n, "no connection object");
		return SB_EINVAL;
	}
	redisReply *rep = sb_redis_command(r, "PING");
	if (rep == NULL) {
		snprintf(detail, n, "%s", r->errmsg[0] ? r->errmsg : sb_strerror(r->err));
		return r->err ? r->err : SB_EUNAVAIL;
	}
	int rv = 0;
	if (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "PONG") != 0) {
		snprintf(detail, n, "PING answered: %.100s", rep->str ? rep->str : "?");
		rv = SB_EUNAVAIL;
	}
	freeReplyObject(rep);
	return rv;
}

int
sb_redis_err(const struct sb_redis *r)
{
	return r->err;
}

const char *
sb_redis_errmsg(const struct sb_redis *r)
{
	return r->errmsg;
}

int64_t
sb_redis_retry_after_ms(const struct sb_redis *r)
{
	if (r->c != NULL)
		return 0;
	int64_t d = r->next_attempt_ms - sb_time_mono_ms();
	return d > 0 ? d : 0;
}

uint64_t
sb_redis_reconnects(const struct sb_redis *r)
{
	return r->reconnects;
}
