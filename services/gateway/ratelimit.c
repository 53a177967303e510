/* ratelimit.c: one Redis round trip per authenticated request: is the token's jti revoked
 * (key sb:revoked:jti:<jti>, written by auth), and, on state-changing routes, one more request
 * in the caller's window (fixed one-minute window per user and bucket, counted atomically in
 * a Lua script). When Redis cannot answer, SB_REDIS_FAIL_OPEN decides: let the request through
 * (default; counted and logged) or answer 503. */
#include "gw_int.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_redis.h"
#include "sb_util_time.h"

#define GW_RL_WINDOW_S  60
#define GW_RL_MAX_RULES 32

static const char gw_rl_lua[] =
    "local revoked = 0\n"
    "if KEYS[1] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then revoked = 1 end\n"
    "if revoked == 1 or KEYS[2] == '' then return {revoked, 0, 0} end\n"
    "local n = redis.call('INCR', KEYS[2])\n"
    "if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end\n"
    "local ttl = redis.call('TTL', KEYS[2])\n"
    "return {0, n, ttl}\n";

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

static int
gw_ratelimit_unavailable(struct gw_req *r)
{
	struct gw *gw = r->gw;
	bool open = gw->cfg->redis_fail_open;
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

int
gw_ratelimit_check(struct gw_req *r, struct sb_redis *redis)
{
	struct gw *gw = r->gw;
	if (redis == NULL)
		return 0;
	char revoked_key[300] = "", rate_key[600] = "";
	if (r->authenticated && r->principal.jti[0] != '\0')
		snprintf(revoked_key, sizeof(revoked_key), "sb:revoked:jti:%s", r->principal.jti);
	const char *bucket = NULL;
	long long limit = 0;
	if (r->authenticated && (r->route->flags & GW_MUTATING)) {
		limit = gw_ratelimit_limit(gw->rl, r->route, gw->cfg->rate_limit_per_min, &bucket);
		snprintf(rate_key, sizeof(rate_key), "sb:rl:%s:%s:%s", bucket, r->route->method,
		         r->principal.sub);
		if (strcmp(bucket, "default") == 0)
			snprintf(rate_key, sizeof(rate_key), "sb:rl:default:%s", r->principal.sub);
	}
	if (revoked_key[0] == '\0' && rate_key[0] == '\0')
		return 0;
	char window[16];
	snprintf(window, sizeof(window), "%d", GW_RL_WINDOW_S);
	const char *keys[2] = { revoked_key, rate_key };
	const char *args[1] = { window };
	redisReply *rep = sb_redis_evalsha(redis, &gw->rl->script, 2, keys, 1, args);
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
		if (rep != NULL)
			freeReplyObject(rep);
		return gw_ratelimit_unavailable(r);
	}
	long long revoked = rep->element[0]->integer;
	long long n = rep->element[1]->integer;
	long long ttl = rep->element[2]->integer;
	freeReplyObject(rep);
	if (revoked)
		return gw_authn_reject(r, "revoked", "the access token has been revoked", true);
	if (rate_key[0] == '\0')
		return 0;
	if (ttl < 0)
		ttl = GW_RL_WINDOW_S;
	r->rl_set = true;
	snprintf(r->rl_headers[0], sizeof(r->rl_headers[0]), "%lld", limit);
	snprintf(r->rl_headers[1], sizeof(r->rl_headers[1]), "%lld", n >= limit ? 0 : limit - n);
	snprintf(r->rl_headers[2], sizeof(r->rl_headers[2]), "%lld", ttl);
	if (n <= limit)
		return 0;
	sb_series_inc(sb_metric_with(gw->m_limited, r->route->pattern));
	gw_audit(r, "rate_limited", bucket);
	char detail[128];
	snprintf(detail, sizeof(detail), "more than %lld requests per minute; retry in %lld s",
	         limit, ttl);
	gw_reply_problem(r, 429, detail, NULL, ttl * 1000);
	return -1;
}
