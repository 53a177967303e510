/* authn.c: access tokens. The verifier (sb_jwt) is CPU-only and runs on the lws thread; its keys
 * come from auth's JWKS (auth.Jwks over RPC), fetched by a thread of its own so that the lws
 * thread never waits: at start (retried every second until it succeeds), every
 * SB_JWKS_REFRESH_MS, and soon after a token named an unknown kid (at most once per 5 s).
 * The same approach as services/gateway/authn.c, whose fetch is blocking on the gateway's
 * worker threads; docs/realtime.md proposes moving the shared part to services/common. */
#include "realtime.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

#define RT_JWKS_KICK_MIN_MS 5000

static struct {
	struct sb_jwt_verifier *verifier;
	struct sb_rpc_client *auth;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, kick, started;
	atomic_bool have_keys;
	int64_t refresh_ms, last_kick_ms;
} rt_authn = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static int
rt_authn_fetch(void)
{
	int rv = sb_service_fetch_jwks(rt_authn.auth, rt_authn.verifier,
	                               atomic_load(&rt_authn.have_keys), NULL);
	if (rv != 0)
		return rv;
	if (!atomic_exchange(&rt_authn.have_keys, true))
		sb_log_kv(SB_LOG_INFO, "JWKS loaded from auth", NULL);
	return 0;
}

static void *
rt_authn_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&rt_authn.mu);
	while (!rt_authn.stop) {
		pthread_mutex_unlock(&rt_authn.mu);
		int rv = rt_authn_fetch();
		pthread_mutex_lock(&rt_authn.mu);
		rt_authn.kick = false;
		int64_t wait = rv == 0 ? rt_authn.refresh_ms : 1000;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!rt_authn.stop && !rt_authn.kick)
			if (pthread_cond_timedwait(&rt_authn.cv, &rt_authn.mu, &ts) != 0)
				break;
	}
	pthread_mutex_unlock(&rt_authn.mu);
	return NULL;
}

int
rt_authn_start(struct sb_service *svc)
{
	const struct realtime_cfg *cfg = sb_service_config(svc);
	struct sb_jwt_policy policy = {
		.issuer = cfg->issuer,
		.audience = cfg->audience,
		.typ = "at+jwt",
		.leeway_s = cfg->leeway_s,
	};
	int rv = sb_jwt_verifier_new(&policy, NULL, &rt_authn.verifier);
	if (rv != 0)
		return rv;
	rt_authn.auth = sb_service_upstream(svc, "auth");
	rt_authn.refresh_ms = cfg->jwks_refresh_ms;
	if (rt_authn.auth == NULL || pthread_create(&rt_authn.thread, NULL, rt_authn_main, NULL)) {
		sb_jwt_verifier_free(rt_authn.verifier);
		rt_authn.verifier = NULL;
		return SB_EIO;
	}
	rt_authn.started = true;
	return 0;
}

int
rt_authn_verify(const char *token, size_t len, struct sb_jwt_principal *p)
{
	int rv = sb_jwt_verify(rt_authn.verifier, token, len, p);
	if (rv == SB_JWT_UNKNOWN_KID) {
		int64_t now = sb_time_mono_ms();
		pthread_mutex_lock(&rt_authn.mu);
		if (rt_authn.last_kick_ms == 0 ||
		    now - rt_authn.last_kick_ms > RT_JWKS_KICK_MIN_MS) {
			rt_authn.last_kick_ms = now;
			rt_authn.kick = true;
			pthread_cond_signal(&rt_authn.cv);
		}
		pthread_mutex_unlock(&rt_authn.mu);
	}
	return rv;
}

int
rt_authn_ready(void *arg, char *detail, size_t n)
{
	(void)arg;
	if (atomic_load(&rt_authn.have_keys))
		return 0;
	snprintf(detail, n, "no JWKS from auth yet");
	return SB_EUNAVAIL;
}

void
rt_authn_stop(void)
{
	if (!rt_authn.started)
		return;
	pthread_mutex_lock(&rt_authn.mu);
	rt_authn.stop = true;
	pthread_cond_signal(&rt_authn.cv);
	pthread_mutex_unlock(&rt_authn.mu);
	pthread_join(rt_authn.thread, NULL);
	sb_jwt_verifier_free(rt_authn.verifier);
	rt_authn.verifier = NULL;
	rt_authn.started = false;
}
