/* ratelimit.c: per-user rate limits of state-changing (GW_MUTATING) routes: fixed one-minute
 * windows per user and bucket, counted atomically in Redis by a Lua script, one pipelined Redis
 * round trip per batch of requests that need one. Reads make no round trip at all (revocation is
 * checked locally, revocation.c). When Redis cannot answer, SB_REDIS_FAIL_OPEN decides: let the
 * request through (default; counted and logged) or answer 503.
 *
 * Quota is claimed in chunks: a claim adds a chunk of units to the window's count in Redis
 * (INCRBY) and the units that fall within the limit are kept in this process's table, where the
 * user's next requests take them without a round trip. A chunk is 1/GW_RL_CHUNK_SHARE of the
 * limit, at most SB_RATE_LIMIT_CHUNK_MAX and at least 1: a limit under 2 × GW_RL_CHUNK_SHARE is
 * counted request by request, as is everything when SB_RATE_LIMIT_CHUNK_MAX is 1. No window
 * ever admits more than its limit (a unit is used only after Redis counted it); with several
 * gateways a user can be refused while another gateway still holds up to chunk - 1 claimed and
 * unused units, so the admitted count lies between limit - (gateways - 1) × (chunk - 1) and the
 * limit; with one gateway it is exact. A window whose count reached the limit is remembered
 * here until it ends, so refusals cost no round trip either. docs/decisions.md "Rate limits". */
#include "gateway.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_redis.h"
#include "sb_util_hash.h"
#include "sb_util_time.h"

#define GW_RL_WINDOW_S    60
#define GW_RL_MAX_RULES   32
#define GW_RL_CHUNK_SHARE 100  /* a claim takes at most this fraction (1/N) of the limit */
#define GW_RL_SLOTS       8192 /* windows held locally (a table of this many slots) */

/* KEYS[1] the window's key, ARGV[1] its length in seconds, ARGV[2] the units claimed. Answers
 * the count after the claim and the milliseconds left in the window. */
static const char gw_rl_lua[] = "local n = redis.call('INCRBY', KEYS[1], ARGV[2])\n"
                                "local t = redis.call('PTTL', KEYS[1])\n"
                                "if t < 0 then\n"
                                "  redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
                                "  t = ARGV[1] * 1000\n"
                                "end\n"
                                "return {n, t}\n";

/* One window known locally: units claimed in Redis and not used yet, or the knowledge that
 * the window is full. A slot is only taken over from another window when that one has ended or
 * holds no unused unit, so claimed units are not dropped (but for two claims racing for one
 * slot, which can only make a window admit fewer). */
struct gw_rl_slot {
	char *key;        /* the window's Redis key; NULL: empty */
	int64_t until_ms; /* monotonic end of the window, from Redis's PTTL */
	long long left;   /* claimed, unused units */
	long long count;  /* the window's count in Redis after this process's last claim */
	long long limit;
};

struct gw_rl_rule {
	char method[8];
	char pattern[96];
	long long limit;
};

struct gw_ratelimit {
	struct sb_redis_script script;
	struct gw_rl_rule rules[GW_RL_MAX_RULES];
	size_t nrules;
	_Atomic int64_t last_warn_ms; /* rate-limits the warning across workers */
	pthread_mutex_t mu;           /* guards slots */
	struct gw_rl_slot *slots;     /* GW_RL_SLOTS */
	struct sb_series *claims;     /* gateway_rate_limit_claims_total */
};

/* gw_ratelimit_parse reads "POST /v1/messages=600;POST /v1/conversations=30". */
static int
gw_ratelimit_parse(struct gw_ratelimit *rl, const char *spec)
{
	char *copy = strdup(spec ? spec : "");
	if (copy == NULL)
		return SB_ENOMEM;
	char *save = NULL;
	int rv = 0;
	for (char *tok = strtok_r(copy, ";", &save); tok != NULL;
	     tok = strtok_r(NULL, ";", &save)) {
		struct gw_rl_rule *r = &rl->rules[rl->nrules];
		char *eq = strrchr(tok, '=');
		if (rl->nrules == GW_RL_MAX_RULES || eq == NULL ||
		    sscanf(tok, "%7s %95[^=]", r->method, r->pattern) != 2) {
			rv = SB_EINVAL;
			break;
		}
		char *end = NULL;
		r->limit = strtoll(eq + 1, &end, 10);
		if (end == eq + 1 || *end != '\0' || r->limit < 1) {
			rv = SB_EINVAL;
			break;
		}
		for (char *p = r->pattern + strlen(r->pattern); p > r->pattern && p[-1] == ' ';)
			*--p = '\0';
		rl->nrules++;
	}
	free(copy);
	if (rv != 0)
		sb_log_kv(SB_LOG_ERROR, "SB_RATE_LIMIT_ROUTES: expected \"METHOD /path=N;...\"",
		          "value", spec, NULL);
	return rv;
}

int
gw_ratelimit_init(struct gw *gw)
{
	struct gw_ratelimit *rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return SB_ENOMEM;
	if ((rl->slots = calloc(GW_RL_SLOTS, sizeof(*rl->slots))) == NULL) {
		free(rl);
		return SB_ENOMEM;
	}
	if (sb_redis_script_init(&rl->script, gw_rl_lua) != 0 ||
	    gw_ratelimit_parse(rl, gw->cfg->rate_limit_routes) != 0) {
		free(rl->slots);
		free(rl);
		return SB_EINVAL;
	}
	rl->claims = sb_metric_with(
	    sb_metrics_counter("gateway_rate_limit_claims_total",
	                       "Rate-limit round trips to Redis, each claiming a chunk of a user's "
	                       "window.",
	                       NULL));
	pthread_mutex_init(&rl->mu, NULL);
	if (!gw->cfg->redis_fail_open)
		sb_log_kv(SB_LOG_INFO, "requests are refused while Redis is unavailable", NULL);
	else
		sb_log_kv(
		    SB_LOG_INFO,
		    "requests are let through unchecked (rate limit, revocation) while Redis is "
		    "unavailable",
		    NULL);
	gw->rl = rl;
	return 0;
}

void
gw_ratelimit_fini(struct gw *gw)
{
	struct gw_ratelimit *rl = gw->rl;
	if (rl == NULL)
		return;
	for (size_t i = 0; i < GW_RL_SLOTS; i++)
		free(rl->slots[i].key);
	free(rl->slots);
	pthread_mutex_destroy(&rl->mu);
	free(rl);
	gw->rl = NULL;
}

static long long
gw_ratelimit_limit(const struct gw_ratelimit *rl, const struct gw_route *route, long long def,
                   const char **bucket)
{
	for (size_t i = 0; i < rl->nrules; i++) {
		if (strcmp(rl->rules[i].method, route->method) == 0 &&
		    strcmp(rl->rules[i].pattern, route->pattern) == 0) {
			*bucket = route->pattern;
			return rl->rules[i].limit;
		}
	}
	*bucket = "default";
	return def;
}

int
gw_redis_unavailable(struct gw_req *r)
{
	struct gw *gw = r->gw;
	bool open = gw->cfg->redis_fail_open;
	if (open && r->unchecked)
		return 0; /* counted already for this request */
	r->unchecked = open;
	sb_series_inc(sb_metric_with(gw->m_redisdown, open ? "open" : "closed"));
	int64_t now = sb_time_mono_ms();
	if (now - gw->rl->last_warn_ms > 10000) {
		gw->rl->last_warn_ms = now;
		sb_log_kv(
		    SB_LOG_WARN, "Redis unavailable for rate limit and revocation checks", "mode",
		    open ? "fail-open: requests let through" : "fail-closed: requests refused",
		    NULL);
	}
	if (open)
		return 0;
	gw_reply_problem(r, 503, "the request cannot be checked right now", NULL, 1000);
	return -1;
}

/* gw_ratelimit_prepare computes the rate-limit window key of r when r is an authenticated
 * request on a state-changing route. Returns false when nothing is to be checked. */
static bool
gw_ratelimit_prepare(struct gw_req *r)
{
	struct gw *gw = r->gw;
	r->rl_rate_key[0] = '\0';
	if (!r->authenticated || !(r->route->flags & GW_MUTATING))
		return false;
	const char *bucket = NULL;
	r->rl_limit = gw_ratelimit_limit(gw->rl, r->route, gw->cfg->rate_limit_per_min, &bucket);
	if (strcmp(bucket, "default") == 0)
		snprintf(r->rl_rate_key, sizeof(r->rl_rate_key), "sb:rl:default:%s",
		         r->principal.sub);
	else
		snprintf(r->rl_rate_key, sizeof(r->rl_rate_key), "sb:rl:%s:%s:%s", bucket,
		         r->route->method, r->principal.sub);
	return true;
}

/* gw_ratelimit_chunk is how many units a claim for r takes when they can be kept. */
static long long
gw_ratelimit_chunk(const struct gw_req *r)
{
	long long c = r->rl_limit / GW_RL_CHUNK_SHARE, max = r->gw->cfg->rate_limit_chunk_max;
	return c < 1 ? 1 : (c > max ? max : c);
}

/* gw_ratelimit_headers sets r's RateLimit-* values. */
static void
gw_ratelimit_headers(struct gw_req *r, long long remaining, int64_t reset_ms)
{
	r->rl_set = true;
	snprintf(r->rl_headers[0], sizeof(r->rl_headers[0]), "%lld", r->rl_limit);
	snprintf(r->rl_headers[1], sizeof(r->rl_headers[1]), "%lld", remaining < 0 ? 0 : remaining);
	snprintf(r->rl_headers[2], sizeof(r->rl_headers[2]), "%lld",
	         (long long)((reset_ms + 999) / 1000));
}

/* gw_ratelimit_refuse answers r 429 for a window that ends in reset_ms; returns -1. */
static int
gw_ratelimit_refuse(struct gw_req *r, int64_t reset_ms)
{
	struct gw *gw = r->gw;
	long long retry_s = (reset_ms + 999) / 1000;
	if (retry_s < 1)
		retry_s = 1;
	gw_ratelimit_headers(r, 0, reset_ms);
	sb_series_inc(sb_metric_with(gw->m_limited, r->route->pattern));
	gw_audit(r, "rate_limited", r->route->pattern);
	char detail[128];
	snprintf(detail, sizeof(detail), "more than %lld requests per minute; retry in %lld s",
	         r->rl_limit, retry_s);
	gw_reply_problem(r, 429, detail, NULL, retry_s * 1000);
	return -1;
}

/* gw_ratelimit_takeable says whether r's window may be kept in slot s at now (rl->mu held): the
 * slot is r's own window, empty, ended, or holds no unused unit of another one. */
static bool
gw_ratelimit_takeable(const struct gw_rl_slot *s, bool same, int64_t now)
{
	return same || s->key == NULL || now >= s->until_ms || s->left == 0;
}

/* gw_ratelimit_slot returns r's window slot (rl->mu held). */
static struct gw_rl_slot *
gw_ratelimit_slot(struct gw_ratelimit *rl, const struct gw_req *r)
{
	return &rl->slots[sb_hash_fnv1a64_str(r->rl_rate_key) % GW_RL_SLOTS];
}

/* gw_ratelimit_local decides r from this process's table when it can: 0 when r took a claimed
 * unit, -1 when r was answered 429 (its window is full), 1 when Redis must be asked; then
 * r->rl_chunk is the claim's size: a chunk when r's window can be kept in its slot, else 1 (the
 * slot holds another window's unused units, which are kept, and units that could not
 * be kept would be lost to the user). */
static int
gw_ratelimit_local(struct gw_req *r)
{
	struct gw_ratelimit *rl = r->gw->rl;
	int64_t now = sb_time_mono_ms();
	pthread_mutex_lock(&rl->mu);
	struct gw_rl_slot *s = gw_ratelimit_slot(rl, r);
	bool same = s->key != NULL && strcmp(s->key, r->rl_rate_key) == 0;
	if (!same || now >= s->until_ms || s->limit != r->rl_limit) {
		bool keepable = gw_ratelimit_takeable(s, same, now);
		pthread_mutex_unlock(&rl->mu);
		r->rl_chunk = keepable ? gw_ratelimit_chunk(r) : 1;
		return 1;
	}
	int64_t reset_ms = s->until_ms - now;
	if (s->left > 0) {
		s->left--;
		long long remaining = s->limit - s->count + s->left;
		pthread_mutex_unlock(&rl->mu);
		gw_ratelimit_headers(r, remaining, reset_ms);
		return 0;
	}
	bool full = s->count >= s->limit;
	pthread_mutex_unlock(&rl->mu);
	r->rl_chunk = gw_ratelimit_chunk(r);
	return full ? gw_ratelimit_refuse(r, reset_ms) : 1;
}

/* gw_ratelimit_keep records the answer of a claim of chunk units for r: count is the window's
 * count after it, ttl_ms what is left of the window; usable (>= 0) units fell within the limit,
 * one of which r uses. Returns the units left for later requests. */
static long long
gw_ratelimit_keep(struct gw_req *r, long long count, int64_t ttl_ms, long long usable)
{
	struct gw_ratelimit *rl = r->gw->rl;
	int64_t now = sb_time_mono_ms();
	long long spare = usable > 0 ? usable - 1 : 0;
	pthread_mutex_lock(&rl->mu);
	struct gw_rl_slot *s = gw_ratelimit_slot(rl, r);
	bool same = s->key != NULL && strcmp(s->key, r->rl_rate_key) == 0;
	if (same && now < s->until_ms && s->limit == r->rl_limit) {
		/* another worker's claim of the same window: add to it */
		s->left += spare;
		if (count > s->count)
			s->count = count;
		spare = s->left;
	} else if (gw_ratelimit_takeable(s, same, now)) {
		char *key = same ? s->key : strdup(r->rl_rate_key);
		if (key != NULL) {
			if (!same)
				free(s->key);
			*s = (struct gw_rl_slot){ .key = key,
				                  .until_ms = now + ttl_ms,
				                  .left = spare,
				                  .count = count,
				                  .limit = r->rl_limit };
		}
	}
	/* else the slot holds another live window's unused units: keep them; r's spare units
	 * are not kept (counted in Redis, never used: the window admits fewer, never more) */
	pthread_mutex_unlock(&rl->mu);
	return spare;
}

static int
gw_ratelimit_append(struct gw_req *r, struct sb_redis *redis)
{
	char window[16], chunk[24];
	snprintf(window, sizeof(window), "%d", GW_RL_WINDOW_S);
	snprintf(chunk, sizeof(chunk), "%lld", r->rl_chunk);
	const char *argv[] = {
		"EVALSHA", r->gw->rl->script.sha, "1", r->rl_rate_key, window, chunk
	};
	return sb_redis_append_argv(redis, 6, argv, NULL);
}

/* gw_ratelimit_apply acts on the script's reply for r (NULL: Redis could not answer). Returns
 * 0 to go on, or answers r and returns non-zero. Consumes nothing. */
static int
gw_ratelimit_apply(struct gw_req *r, const redisReply *rep)
{
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER)
		return gw_redis_unavailable(r);
	sb_series_inc(r->gw->rl->claims);
	long long count = rep->element[0]->integer, chunk = r->rl_chunk;
	int64_t ttl_ms = rep->element[1]->integer;
	if (ttl_ms < 0)
		ttl_ms = GW_RL_WINDOW_S * 1000;
	/* the claim's units are count - chunk + 1 .. count; those up to the limit are usable */
	long long usable = r->rl_limit - (count - chunk);
	usable = usable < 0 ? 0 : (usable > chunk ? chunk : usable);
	long long spare = gw_ratelimit_keep(r, count, ttl_ms, usable);
	if (usable == 0)
		return gw_ratelimit_refuse(r, ttl_ms);
	gw_ratelimit_headers(r, r->rl_limit - count + spare, ttl_ms);
	return 0;
}

static bool
gw_ratelimit_noscript(const redisReply *rep)
{
	return rep != NULL && rep->type == REDIS_REPLY_ERROR &&
	       strncmp(rep->str, "NOSCRIPT", 8) == 0;
}

void
gw_ratelimit_check_batch(struct gw_req **reqs, size_t n, struct sb_redis *redis)
{
	if (n == 0)
		return;
	size_t idx[GW_BATCH_MAX];
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (redis == NULL || !gw_ratelimit_prepare(reqs[i]))
			continue;
		int local = gw_ratelimit_local(reqs[i]);
		if (local <= 0) {
			if (local < 0)
				reqs[i] = NULL; /* answered 429 */
			continue;
		}
		if (gw_ratelimit_append(reqs[i], redis) != 0) {
			/* cannot even queue: the connection is down */
			if (gw_redis_unavailable(reqs[i]) != 0)
				reqs[i] = NULL;
			continue;
		}
		idx[m++] = i;
	}
	if (m == 0)
		return;
	redisReply *replies[GW_BATCH_MAX] = { 0 };
	int rv = sb_redis_get_replies(redis, replies, m);
	for (size_t k = 0; k < m; k++) {
		struct gw_req *r = reqs[idx[k]];
		redisReply *rep = rv == 0 ? replies[k] : NULL;
		if (gw_ratelimit_noscript(rep)) {
			/* Redis restarted or flushed its scripts: run this one through the loader.
			 */
			freeReplyObject(rep);
			const char *keys[1] = { r->rl_rate_key };
			char window[16];
			snprintf(window, sizeof(window), "%d", GW_RL_WINDOW_S);
			char chunk[24];
			snprintf(chunk, sizeof(chunk), "%lld", r->rl_chunk);
			const char *args[2] = { window, chunk };
			rep = sb_redis_evalsha(redis, &r->gw->rl->script, 1, keys, 2, args);
			replies[k] = rep;
		}
		if (gw_ratelimit_apply(r, rep) != 0)
			reqs[idx[k]] = NULL;
		if (rep != NULL)
			freeReplyObject(rep);
	}
}
