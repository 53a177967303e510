/* revocation.c: the set of revoked access-token ids (jti → exp), held in memory so that a
 * request costs a hash lookup instead of a Redis round trip.
 *
 * The set is a table of GW_REVSET_STRIPES independent chained hash tables, each under its own
 * rwlock: readers (the workers, on every authenticated request) share a stripe; the watcher
 * thread (below) is the only writer. An entry is dropped once its token can no
 * longer pass verification anyway (exp + leeway in the past). */
#include "gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_redis.h"
#include "sb_util_hash.h"
#include "sb_util_backoff.h"
#include "sb_util_time.h"

#define GW_REVSET_STRIPES     64
#define GW_REVSET_MIN_BUCKETS 16

struct gw_revset_entry {
	struct gw_revset_entry *next;
	int64_t exp;
	size_t len;
	char jti[]; /* NUL-terminated */
};

struct gw_revset_stripe {
	pthread_rwlock_t lock;
	struct gw_revset_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
};

struct gw_revset {
	int64_t leeway_s;
	_Atomic size_t count; /* all stripes; read without a lock for the empty fast path */
	struct gw_revset_stripe stripe[GW_REVSET_STRIPES];
};

int
gw_revset_new(int64_t leeway_s, struct gw_revset **out)
{
	struct gw_revset *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return SB_ENOMEM;
	s->leeway_s = leeway_s;
	size_t i;
	for (i = 0; i < GW_REVSET_STRIPES; i++) {
		struct gw_revset_stripe *st = &s->stripe[i];
		st->nbuckets = GW_REVSET_MIN_BUCKETS;
		st->buckets = calloc(st->nbuckets, sizeof(*st->buckets));
		if (st->buckets == NULL)
			goto fail;
		pthread_rwlock_init(&st->lock, NULL);
	}
	*out = s;
	return 0;
fail:
	while (i-- > 0) {
		free(s->stripe[i].buckets);
		pthread_rwlock_destroy(&s->stripe[i].lock);
	}
	free(s);
	return SB_ENOMEM;
}

void
gw_revset_free(struct gw_revset *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < GW_REVSET_STRIPES; i++) {
		struct gw_revset_stripe *st = &s->stripe[i];
		for (size_t b = 0; b < st->nbuckets; b++) {
			struct gw_revset_entry *e = st->buckets[b];
			while (e != NULL) {
				struct gw_revset_entry *next = e->next;
				free(e);
				e = next;
			}
		}
		free(st->buckets);
		pthread_rwlock_destroy(&st->lock);
	}
	free(s);
}

/* gw_revset_grow doubles st's bucket array; called with the write lock held. On allocation
 * failure the table keeps its size (longer chains, still correct). */
static void
gw_revset_grow(struct gw_revset_stripe *st)
{
	size_t n = st->nbuckets * 2;
	struct gw_revset_entry **nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return;
	for (size_t b = 0; b < st->nbuckets; b++) {
		struct gw_revset_entry *e = st->buckets[b];
		while (e != NULL) {
			struct gw_revset_entry *next = e->next;
			size_t i = (sb_hash_fnv1a64(e->jti, e->len) / GW_REVSET_STRIPES) & (n - 1);
			e->next = nb[i];
			nb[i] = e;
			e = next;
		}
	}
	free(st->buckets);
	st->buckets = nb;
	st->nbuckets = n;
}

int
gw_revset_add(struct gw_revset *s, const char *jti, int64_t exp)
{
	size_t len = strlen(jti);
	if (len == 0 || len >= SB_JWT_ID_MAX)
		return SB_EINVAL;
	uint64_t h = sb_hash_fnv1a64(jti, len);
	struct gw_revset_stripe *st = &s->stripe[h % GW_REVSET_STRIPES];
	int rv = 0;
	pthread_rwlock_wrlock(&st->lock);
	size_t b = (h / GW_REVSET_STRIPES) & (st->nbuckets - 1);
	for (struct gw_revset_entry *e = st->buckets[b]; e != NULL; e = e->next) {
		if (e->len == len && memcmp(e->jti, jti, len) == 0) {
			if (exp > e->exp) /* keep the latest expiry known */
				e->exp = exp;
			goto done;
		}
	}
	struct gw_revset_entry *e = malloc(sizeof(*e) + len + 1);
	if (e == NULL) {
		rv = SB_ENOMEM;
		goto done;
	}
	e->exp = exp;
	e->len = len;
	memcpy(e->jti, jti, len + 1);
	e->next = st->buckets[b];
	st->buckets[b] = e;
	st->count++;
	s->count++;
	if (st->count > 2 * st->nbuckets)
		gw_revset_grow(st);
done:
	pthread_rwlock_unlock(&st->lock);
	return rv;
}

bool
gw_revset_contains(struct gw_revset *s, const char *jti)
{
	if (s->count == 0)
		return false;
	size_t len = strlen(jti);
	uint64_t h = sb_hash_fnv1a64(jti, len);
	struct gw_revset_stripe *st = &s->stripe[h % GW_REVSET_STRIPES];
	bool found = false;
	pthread_rwlock_rdlock(&st->lock);
	size_t b = (h / GW_REVSET_STRIPES) & (st->nbuckets - 1);
	for (struct gw_revset_entry *e = st->buckets[b]; e != NULL; e = e->next) {
		if (e->len == len && memcmp(e->jti, jti, len) == 0) {
			found = true;
			break;
		}
	}
	pthread_rwlock_unlock(&st->lock);
	return found;
}

size_t
gw_revset_expire(struct gw_revset *s, int64_t now_s)
{
	size_t dropped = 0;
	for (size_t i = 0; i < GW_REVSET_STRIPES; i++) {
		struct gw_revset_stripe *st = &s->stripe[i];
		pthread_rwlock_wrlock(&st->lock);
		for (size_t b = 0; b < st->nbuckets; b++) {
			struct gw_revset_entry **pp = &st->buckets[b];
			while (*pp != NULL) {
				struct gw_revset_entry *e = *pp;
				if (e->exp + s->leeway_s < now_s) {
					*pp = e->next;
					free(e);
					st->count--;
					s->count--;
					dropped++;
				} else {
					pp = &e->next;
				}
			}
		}
		pthread_rwlock_unlock(&st->lock);
	}
	return dropped;
}

size_t
gw_revset_size(const struct gw_revset *s)
{
	return s->count;
}

int
gw_revset_parse_msg(const char *msg, size_t len, char *jti, size_t n, int64_t *exp)
{
	const char *sp = memchr(msg, ' ', len);
	if (sp == NULL || sp == msg || (size_t)(sp - msg) >= n ||
	    (size_t)(sp - msg) >= SB_JWT_ID_MAX)
		return SB_EINVAL;
	size_t jlen = (size_t)(sp - msg);
	for (size_t i = 0; i < jlen; i++)
		if ((unsigned char)msg[i] <= ' ' || msg[i] == 0x7f)
			return SB_EINVAL;
	const char *p = sp + 1, *end = msg + len;
	if (p == end)
		return SB_EINVAL;
	int64_t v = 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
			return SB_EINVAL;
		v = v * 10 + (*p - '0');
	}
	memcpy(jti, msg, jlen);
	jti[jlen] = '\0';
	*exp = v;
	return 0;
}

/* The watcher: one thread, one subscribed connection of its own (plain hiredis, so that it
 * can poll its socket), one short-lived sb_redis connection per (re)scan. */

#define GW_REVO_IO_TIMEOUT_MS 2000
#define GW_REVO_POLL_MS       1000
#define GW_REVO_SWEEP_MS      5000
#define GW_REVO_START_WAIT_MS 2000
#define GW_REVO_SCAN_COUNT    "1000"
#define GW_REVO_NO_TTL_EXP    (INT64_MAX / 4) /* a key without TTL: kept while known */

struct gw_revocation {
	struct gw *gw;
	struct gw_revset *set;
	struct sb_redis_url url; /* password wiped at stop */
	const char *redis_url;   /* the config's; outlives the watcher */
	pthread_t thread;
	int wake[2]; /* a byte written to wake[1] interrupts the watcher's poll */
	_Atomic bool stopping;
	_Atomic bool synced;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool first_done;            /* the first sync attempt ended (either way); under mu */
	struct sb_series *m_known;  /* gateway_revocations_known */
	struct sb_series *m_synced; /* gateway_revocation_synced */
	struct sb_series *m_bad;    /* gateway_revocation_messages_invalid_total */
};

static void
gw_revocation_set_synced(struct gw_revocation *rv, bool synced)
{
	rv->synced = synced;
	sb_series_set(rv->m_synced, synced ? 1 : 0);
	sb_series_set(rv->m_known, (double)gw_revset_size(rv->set));
	pthread_mutex_lock(&rv->mu);
	rv->first_done = true;
	pthread_cond_broadcast(&rv->cv);
	pthread_mutex_unlock(&rv->mu);
}

/* gw_revocation_sleep waits ms or until stop is asked. */
static void
gw_revocation_sleep(struct gw_revocation *rv, int ms)
{
	struct pollfd p = { .fd = rv->wake[0], .events = POLLIN };
	if (!rv->stopping)
		(void)poll(&p, 1, ms);
}

/* gw_revocation_subscribe connects, authenticates and subscribes. Returns 0 and *out (free
 * with redisFree), or SB_EUNAVAIL with the reason in err. */
static int
gw_revocation_subscribe(struct gw_revocation *rv, redisContext **out, char *err, size_t n)
{
	struct timeval tv = { GW_REVO_IO_TIMEOUT_MS / 1000, (GW_REVO_IO_TIMEOUT_MS % 1000) * 1000 };
	redisReply *rep = NULL;
	redisContext *c = redisConnectWithTimeout(rv->url.host, rv->url.port, tv);
	if (c == NULL) {
		snprintf(err, n, "out of memory");
		return SB_ENOMEM;
	}
	if (c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(err, n, "connect %.60s:%d: %.80s", rv->url.host, rv->url.port, c->errstr);
		goto fail;
	}
	if (rv->url.password[0] != '\0') {
		const char *argv[3] = { "AUTH", rv->url.user, rv->url.password };
		int argc = 3;
		if (rv->url.user[0] == '\0') {
			argv[1] = rv->url.password;
			argc = 2;
		}
		rep = redisCommandArgv(c, argc, argv, NULL);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
			snprintf(err, n, "AUTH: %.100s", rep ? rep->str : c->errstr);
			goto fail;
		}
		freeReplyObject(rep);
	}
	rep = redisCommand(c, "SUBSCRIBE %s", GW_REVOCATION_CHANNEL);
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(rep->element[0]->str, "subscribe") != 0) {
		snprintf(err, n, "SUBSCRIBE: %.100s",
		         rep == NULL
		             ? c->errstr
		             : (rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply"));
		goto fail;
	}
	freeReplyObject(rep);
	*out = c;
	return 0;
fail:
	if (rep != NULL)
		freeReplyObject(rep);
	redisFree(c);
	return SB_EUNAVAIL;
}

/* gw_revocation_scan_keys reads the TTL of each key of one SCAN page (one pipelined round
 * trip) and adds the live ones. */
static int
gw_revocation_scan_keys(struct gw_revocation *rv, struct sb_redis *r, const redisReply *keys)
{
	size_t n = keys->elements, m = 0;
	if (n == 0)
		return 0;
	redisReply **replies = calloc(n, sizeof(*replies));
	const redisReply **asked = calloc(n, sizeof(*asked));
	int ret = SB_ENOMEM;
	if (replies == NULL || asked == NULL)
		goto done;
	for (size_t i = 0; i < n; i++) {
		const redisReply *k = keys->element[i];
		if (k->type != REDIS_REPLY_STRING)
			continue;
		const char *argv[2] = { "TTL", k->str };
		const size_t argvlen[2] = { 3, k->len };
		if ((ret = sb_redis_append_argv(r, 2, argv, argvlen)) != 0)
			goto done;
		asked[m++] = k;
	}
	if (m > 0 && (ret = sb_redis_get_replies(r, replies, m)) != 0)
		goto done;
	int64_t now = sb_time_now_ms() / 1000;
	const size_t plen = strlen(GW_REVOCATION_PREFIX);
	for (size_t i = 0; i < m; i++) {
		const redisReply *t = replies[i];
		if (t == NULL || t->type != REDIS_REPLY_INTEGER || t->integer == -2)
			continue; /* gone since the SCAN */
		const char *jti = asked[i]->str + plen;
		int64_t exp = t->integer < 0 ? GW_REVO_NO_TTL_EXP : now + t->integer;
		if (asked[i]->len > plen && strlen(asked[i]->str) == asked[i]->len)
			(void)gw_revset_add(rv->set, jti, exp);
	}
	ret = 0;
done:
	if (replies != NULL)
		for (size_t i = 0; i < n; i++)
			if (replies[i] != NULL)
				freeReplyObject(replies[i]);
	free(replies);
	free(asked);
	return ret;
}

/* gw_revocation_scan loads every sb:revoked:jti:* key with its TTL into the set, on a
 * connection of its own. Entries already known are kept (a revocation is never undone; a
 * Redis that lost its data must not resurrect a revoked token). */
static int
gw_revocation_scan(struct gw_revocation *rv, char *err, size_t n)
{
	struct sb_redis_opts opts = { .connect_timeout_ms = GW_REVO_IO_TIMEOUT_MS,
		                      .command_timeout_ms = GW_REVO_IO_TIMEOUT_MS };
	struct sb_redis *r = NULL;
	int ret = sb_redis_open_opts(rv->redis_url, &opts, &r);
	if (ret != 0) {
		snprintf(err, n, "cannot open a connection for SCAN");
		return ret;
	}
	char cursor[32] = "0";
	do {
		const char *argv[] = { "SCAN",  cursor,
			               "MATCH", GW_REVOCATION_PREFIX "*",
			               "COUNT", GW_REVO_SCAN_COUNT };
		redisReply *rep = sb_redis_command_argv(r, 6, argv, NULL);
		if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[0]->len >= sizeof(cursor) ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			snprintf(
			    err, n, "SCAN: %.100s",
			    rep == NULL
			        ? sb_redis_errmsg(r)
			        : (rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply"));
			if (rep != NULL)
				freeReplyObject(rep);
			ret = SB_EUNAVAIL;
			break;
		}
		memcpy(cursor, rep->element[0]->str, rep->element[0]->len + 1);
		ret = gw_revocation_scan_keys(rv, r, rep->element[1]);
		freeReplyObject(rep);
		if (ret != 0) {
			snprintf(err, n, "TTL: %.100s", sb_redis_errmsg(r));
			break;
		}
	} while (strcmp(cursor, "0") != 0 && !rv->stopping);
	sb_redis_close(r);
	return ret;
}

/* gw_revocation_message applies one reply read on the subscribed connection. */
static void
gw_revocation_message(struct gw_revocation *rv, const redisReply *rep)
{
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(rep->element[0]->str, "message") != 0)
		return; /* (un)subscribe confirmations and the like */
	const redisReply *payload = rep->element[2];
	char jti[SB_JWT_ID_MAX];
	int64_t exp;
	if (payload->type != REDIS_REPLY_STRING ||
	    gw_revset_parse_msg(payload->str, payload->len, jti, sizeof(jti), &exp) != 0 ||
	    gw_revset_add(rv->set, jti, exp) != 0) {
		sb_series_inc(rv->m_bad);
		sb_log_kv(SB_LOG_WARN, "ignored an invalid message on " GW_REVOCATION_CHANNEL,
		          NULL);
		return;
	}
	sb_series_set(rv->m_known, (double)gw_revset_size(rv->set));
}

/* gw_revocation_drain applies every reply already buffered in c's reader. */
static int
gw_revocation_drain(struct gw_revocation *rv, redisContext *c)
{
	for (;;) {
		void *rep = NULL;
		if (redisGetReplyFromReader(c, &rep) != REDIS_OK)
			return SB_EIO;
		if (rep == NULL)
			return 0;
		gw_revocation_message(rv, rep);
		freeReplyObject(rep);
	}
}

/* gw_revocation_listen applies published revocations until the connection is lost (returns
 * SB_EUNAVAIL, reason in err) or stop is asked (returns 0). Sweeps expired entries. */
static int
gw_revocation_listen(struct gw_revocation *rv, redisContext *c, char *err, size_t n)
{
	int64_t last_sweep = sb_time_mono_ms();
	if (gw_revocation_drain(rv, c) != 0)
		goto lost;
	while (!rv->stopping) {
		struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN },
			               { .fd = rv->wake[0], .events = POLLIN } };
		int k = poll(p, 2, GW_REVO_POLL_MS);
		if (k < 0 && errno != EINTR) {
			snprintf(err, n, "poll: %s", strerror(errno));
			return SB_EIO;
		}
		if (k > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (redisBufferRead(c) != REDIS_OK || gw_revocation_drain(rv, c) != 0)
				goto lost;
		}
		int64_t now = sb_time_mono_ms();
		if (now - last_sweep >= GW_REVO_SWEEP_MS) {
			last_sweep = now;
			if (gw_revset_expire(rv->set, sb_time_now_ms() / 1000) > 0)
				sb_series_set(rv->m_known, (double)gw_revset_size(rv->set));
		}
	}
	return 0;
lost:
	snprintf(err, n, "%.120s", c->errstr[0] ? c->errstr : "connection lost");
	return SB_EUNAVAIL;
}

static void *
gw_revocation_main(void *arg)
{
	struct gw_revocation *rv = arg;
	/* A write to a connection Redis closed must not kill the process. */
	sigset_t pipe;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	struct sb_backoff bo;
	sb_backoff_init(&bo, 100, 5000);
	bool warned = false;
	while (!rv->stopping) {
		char err[160] = "";
		redisContext *c = NULL;
		int ret = gw_revocation_subscribe(rv, &c, err, sizeof(err));
		if (ret == 0)
			ret = gw_revocation_scan(rv, err, sizeof(err));
		if (ret == 0) {
			char known[24];
			snprintf(known, sizeof(known), "%zu", gw_revset_size(rv->set));
			sb_log_kv(SB_LOG_INFO, "revocation set in sync with Redis", "known", known,
			          NULL);
			gw_revocation_set_synced(rv, true);
			sb_backoff_reset(&bo);
			warned = false;
			ret = gw_revocation_listen(rv, c, err, sizeof(err));
		}
		if (c != NULL)
			redisFree(c);
		gw_revocation_set_synced(rv, false);
		if (rv->stopping)
			break;
		if (!warned) {
			sb_log_kv(SB_LOG_WARN, "revocation set not in sync with Redis; retrying",
			          "error", err, NULL);
			warned = true;
		}
		gw_revocation_sleep(rv, (int)sb_backoff_next(&bo));
	}
	return NULL;
}

int
gw_revocation_start(struct gw *gw)
{
	const char *url = gw->cfg->common.redis_url;
	gw->revo = NULL;
	if (!gw->cfg->auth_enabled)
		return 0;
	if (url == NULL || url[0] == '\0') {
		sb_log_kv(SB_LOG_WARN,
		          "REDIS_URL is empty: access-token revocations are not checked", NULL);
		return 0;
	}
	struct gw_revocation *rv = calloc(1, sizeof(*rv));
	if (rv == NULL)
		return SB_ENOMEM;
	char err[160];
	int ret = sb_redis_url_parse(url, &rv->url, err, sizeof(err));
	if (ret != 0) {
		sb_log_kv(SB_LOG_ERROR, "REDIS_URL is invalid", "error", err, NULL);
		free(rv);
		return ret;
	}
	rv->gw = gw;
	rv->redis_url = url;
	rv->wake[0] = rv->wake[1] = -1;
	ret = SB_ENOMEM;
	if (gw_revset_new(gw->cfg->leeway_s, &rv->set) != 0)
		goto fail;
	ret = SB_EIO;
	if (pipe2(rv->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		goto fail;
	rv->m_known = sb_metric_with(sb_metrics_gauge(
	    "gateway_revocations_known",
	    "Revoked access tokens known to this gateway (not yet expired).", NULL));
	rv->m_synced = sb_metric_with(sb_metrics_gauge(
	    "gateway_revocation_synced",
	    "1 while the local revocation set follows Redis (subscribed and scanned), else 0.",
	    NULL));
	rv->m_bad = sb_metric_with(sb_metrics_counter(
	    "gateway_revocation_messages_invalid_total",
	    "Messages on " GW_REVOCATION_CHANNEL " that could not be parsed.", NULL));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rv->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&rv->mu, NULL);
	if (pthread_create(&rv->thread, NULL, gw_revocation_main, rv) != 0) {
		pthread_cond_destroy(&rv->cv);
		pthread_mutex_destroy(&rv->mu);
		goto fail;
	}
	/* Wait (briefly) for the first attempt, so that a gateway whose Redis is up starts in
	 * sync rather than applying the outage policy to its first requests. */
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += GW_REVO_START_WAIT_MS / 1000;
	pthread_mutex_lock(&rv->mu);
	while (!rv->first_done && pthread_cond_timedwait(&rv->cv, &rv->mu, &until) == 0)
		;
	pthread_mutex_unlock(&rv->mu);
	gw->revo = rv;
	return 0;
fail:
	if (rv->wake[0] >= 0) {
		close(rv->wake[0]);
		close(rv->wake[1]);
	}
	gw_revset_free(rv->set);
	explicit_bzero(&rv->url, sizeof(rv->url));
	free(rv);
	return ret;
}

void
gw_revocation_stop(struct gw *gw)
{
	struct gw_revocation *rv = gw->revo;
	if (rv == NULL)
		return;
	rv->stopping = true;
	ssize_t w = write(rv->wake[1], "x", 1);
	(void)w;
	pthread_join(rv->thread, NULL);
	close(rv->wake[0]);
	close(rv->wake[1]);
	pthread_cond_destroy(&rv->cv);
	pthread_mutex_destroy(&rv->mu);
	gw_revset_free(rv->set);
	explicit_bzero(&rv->url, sizeof(rv->url));
	free(rv);
	gw->revo = NULL;
}

enum gw_revo_state
gw_revocation_check(struct gw *gw, const char *jti)
{
	struct gw_revocation *rv = gw->revo;
	if (rv == NULL || jti[0] == '\0')
		return GW_REVO_OK;
	if (gw_revset_contains(rv->set, jti))
		return GW_REVO_REVOKED;
	return rv->synced ? GW_REVO_OK : GW_REVO_UNSYNCED;
}
