/* ratelimit.c: per-user rate limits of state-changing (GW_MUTATING) routes: one more request
 * in the caller's window (fixed one-minute window per user and bucket, counted atomically in a
 * Lua script), one pipelined Redis round trip per batch. Reads make no round trip at all
 * (revocation is checked locally, revocation.c). When Redis cannot answer, SB_REDIS_FAIL_OPEN
 * decides: let the request through (default; counted and logged) or answer 503. */
#include "gateway.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_redis.h"
#include "sb_util_time.h"

#define GW_RL_WINDOW_S  60
#define GW_RL_MAX_RULES 32

static const char gw_rl_lua[] = "local n = redis.call('INCR', KEYS[1])\n"
                                "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
                                "return {n, redis.call('TTL', KEYS[1])}\n";

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
	if (sb_redis_script_init(&rl->script, gw_rl_lua) != 0 ||
	    gw_ratelimit_parse(rl, gw->cfg->rate_limit_routes) != 0) {
		free(rl);
		return SB_EINVAL;
	}
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
	free(gw->rl);
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

static int
gw_ratelimit_append(struct gw_req *r, struct sb_redis *redis)
{
	char window[16];
	snprintf(window, sizeof(window), "%d", GW_RL_WINDOW_S);
	const char *argv[] = { "EVALSHA", r->gw->rl->script.sha, "1", r->rl_rate_key, window };
	return sb_redis_append_argv(redis, 5, argv, NULL);
}

/* gw_ratelimit_apply acts on the script's reply for r (NULL: Redis could not answer). Returns
 * 0 to go on, or answers r and returns non-zero. Consumes nothing. */
static int
gw_ratelimit_apply(struct gw_req *r, const redisReply *rep)
{
	struct gw *gw = r->gw;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER)
		return gw_redis_unavailable(r);
	long long n = rep->element[0]->integer;
	long long ttl = rep->element[1]->integer;
	long long limit = r->rl_limit;
	if (ttl < 0)
		ttl = GW_RL_WINDOW_S;
	r->rl_set = true;
	snprintf(r->rl_headers[0], sizeof(r->rl_headers[0]), "%lld", limit);
	snprintf(r->rl_headers[1], sizeof(r->rl_headers[1]), "%lld", n >= limit ? 0 : limit - n);
	snprintf(r->rl_headers[2], sizeof(r->rl_headers[2]), "%lld", ttl);
	if (n <= limit)
		return 0;
	sb_series_inc(sb_metric_with(gw->m_limited, r->route->pattern));
	gw_audit(r, "rate_limited", r->route->pattern);
	char detail[128];
	snprintf(detail, sizeof(detail), "more than %lld requests per minute; retry in %lld s",
	         limit, ttl);
	gw_reply_problem(r, 429, detail, NULL, ttl * 1000);
	return -1;
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
			const char *args[1] = { window };
			rep = sb_redis_evalsha(redis, &r->gw->rl->script, 1, keys, 1, args);
			replies[k] = rep;
		}
		if (gw_ratelimit_apply(r, rep) != 0)
			reqs[idx[k]] = NULL;
		if (rep != NULL)
			freeReplyObject(rep);
	}
}
