/* sb_redis.h: one Redis connection for one thread (hiredis 0.14, synchronous).
 *
 * Opening never needs Redis to be up: the connection is made on the first call and re-made on
 * the call after a loss, with attempts spaced by exponential backoff with jitter; a call made
 * before the next attempt is due fails at once with SB_EUNAVAIL (no busy loop), and
 * sb_redis_retry_after_ms says how long to wait. Commands are never re-sent automatically.
 * Every I/O is bounded by the connect and command timeouts. A write to a connection Redis has
 * closed raises no SIGPIPE in the process (the signal is blocked and consumed around I/O,
 * unless the process ignored SIGPIPE before the connection was opened, as services do).
 *
 * Replies are hiredis's redisReply, freed by the caller with freeReplyObject. A Redis error
 * reply (type REDIS_REPLY_ERROR) is a reply, not a failure: callers check its type.
 *
 * Metric: redis_reconnects_total. */
#ifndef SB_REDIS_H
#define SB_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

struct sb_redis;

/* Tunables; zero fields take the defaults shown. */
struct sb_redis_opts {
	int connect_timeout_ms; /* default 2000 */
	int command_timeout_ms; /* default 2000; a timed-out connection is re-made */
	int backoff_base_ms;    /* ceiling of the first reconnect delay (default 100) */
	int backoff_max_ms;     /* ceiling of every reconnect delay (default 5000) */
};

/* A parsed redis:// URL. */
struct sb_redis_url {
	char host[256];
	int port;           /* default 6379 */
	char user[128];     /* ACL user, "" for none */
	char password[256]; /* "" for none; percent-decoded */
	int db;             /* default 0 */
};

/* sb_redis_url_parse parses redis://[[user]:password@]host[:port][/db] (host may be [ipv6]).
 * Returns 0, or SB_EINVAL with the reason in err (size n; the password is never written). */
int sb_redis_url_parse(const char *url, struct sb_redis_url *out, char *err, size_t n);

/* sb_redis_open makes a connection object for url. It does not connect: it succeeds while
 * Redis is down. Returns 0 and *out (free with sb_redis_close), SB_EINVAL for a bad URL (the
 * reason is logged), or SB_ENOMEM. */
int sb_redis_open(const char *url, struct sb_redis **out);
/* sb_redis_open_opts is sb_redis_open with tunables (opts may be NULL). */
int sb_redis_open_opts(const char *url, const struct sb_redis_opts *opts, struct sb_redis **out);
/* sb_redis_close closes the connection, wipes the password and frees r; NULL is ignored. */
void sb_redis_close(struct sb_redis *r);

/* sb_redis_command runs one command formatted as hiredis's redisCommand (%s, %b, %d...).
 * Returns the reply (caller frees with freeReplyObject), or NULL with sb_redis_err(r) set:
 * SB_EUNAVAIL on connection loss or refusal (the next call reconnects), SB_ETIMEDOUT when no
 * reply came within the command timeout, SB_EBUSY when pipelined replies are still unread,
 * SB_ENOMEM, SB_EINVAL for a bad format. */
redisReply *sb_redis_command(struct sb_redis *r, const char *fmt, ...);
/* sb_redis_command_argv runs one command given as argc arguments (argvlen may be NULL for C
 * strings). Result as sb_redis_command. */
redisReply *sb_redis_command_argv(struct sb_redis *r, int argc, const char **argv,
                                  const size_t *argvlen);

/* sb_redis_append queues a command (redisCommand format) in the pipeline; nothing is sent
 * until sb_redis_get_replies. Returns 0 or an error as sb_redis_command's. */
int sb_redis_append(struct sb_redis *r, const char *fmt, ...);
/* sb_redis_append_argv queues a command given as arguments. */
int sb_redis_append_argv(struct sb_redis *r, int argc, const char **argv, const size_t *argvlen);
/* sb_redis_get_replies sends the queued commands in one write and reads n replies in order
 * into replies[0..n-1] (the caller frees each). n must not exceed the number queued. On error
 * no reply is returned (replies[] all NULL), the rest of the pipeline is dropped and the
 * connection is re-made on the next call; the commands may or may not have been executed. */
int sb_redis_get_replies(struct sb_redis *r, redisReply **replies, size_t n);
/* sb_redis_pending returns how many queued commands have not had their reply read. */
size_t sb_redis_pending(const struct sb_redis *r);

/* A Lua script run with EVALSHA. Initialise with sb_redis_script_init; lua must outlive it. */
struct sb_redis_script {
	const char *lua;
	char sha[41]; /* lower-case hex SHA-1 of lua */
};
/* sb_redis_script_init sets s to run lua. Returns 0 or SB_EIO. */
int sb_redis_script_init(struct sb_redis_script *s, const char *lua);
/* sb_redis_evalsha runs s with EVALSHA sha nkeys keys... args...; when Redis answers NOSCRIPT
 * (after a restart or SCRIPT FLUSH) it loads the script with SCRIPT LOAD and runs it once more.
 * Result as sb_redis_command. */
redisReply *sb_redis_evalsha(struct sb_redis *r, const struct sb_redis_script *s, int nkeys,
                             const char *const *keys, int nargs, const char *const *args);

/* sb_redis_ping checks Redis for readiness (PING, reconnecting if due). Returns 0, or an error
 * with a one-line reason in detail (size n). */
int sb_redis_ping(struct sb_redis *r, char *detail, size_t n);
/* sb_redis_err returns the sb_err of the last failed call on r (0 after a success). */
int sb_redis_err(const struct sb_redis *r);
/* sb_redis_errmsg returns a one-line reason for the last failure ("" if none). */
const char *sb_redis_errmsg(const struct sb_redis *r);
/* sb_redis_retry_after_ms returns how long to wait before the next attempt can reach Redis: 0
 * when connected or when an attempt is due now. */
int64_t sb_redis_retry_after_ms(const struct sb_redis *r);
/* sb_redis_reconnects returns how many times r re-established a lost connection. */
uint64_t sb_redis_reconnects(const struct sb_redis *r);

#endif
