/* authn.c: access tokens. The verifier (sb_jwt) is CPU-only and runs on the lws thread; its keys
 * come from auth's JWKS (sb_service_fetch_jwks, the fetch the gateway uses too), fetched by a
 * thread of its own so that the lws thread never waits: at start (retried every second until it
 * succeeds), every SB_JWKS_REFRESH_MS, and soon after a token named an unknown kid (at most once
 * per 5 s). */
#include "realtime.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_util_time.h"

#define RT_JWKS_KICK_MIN_MS 5000

static int
rt_authn_fetch(struct rt_authn *a)
{
	int rv = sb_service_fetch_jwks(a->auth, a->verifier, atomic_load(&a->have_keys), NULL);
	if (rv != 0)
		return rv;
	if (!atomic_exchange(&a->have_keys, true))
		sb_log_kv(SB_LOG_INFO, "JWKS loaded from auth", NULL);
	return 0;
}

static void *
rt_authn_main(void *arg)
{
	struct rt_authn *a = arg;
	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		pthread_mutex_unlock(&a->mu);
		int rv = rt_authn_fetch(a);
		pthread_mutex_lock(&a->mu);
		a->kick = false;
		int64_t wait = rv == 0 ? a->refresh_ms : 1000;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!a->stop && !a->kick)
			if (pthread_cond_timedwait(&a->cv, &a->mu, &ts) != 0)
				break;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int
rt_authn_start(struct rt_authn *a, const struct realtime_cfg *cfg, struct sb_rpc_client *auth)
{
	memset(a, 0, sizeof(*a));
	if (auth == NULL)
		return SB_EINVAL;
	struct sb_jwt_policy policy = {
		.issuer = cfg->issuer,
		.audience = cfg->audience,
		.typ = "at+jwt",
		.leeway_s = cfg->leeway_s,
	};
	int rv = sb_jwt_verifier_new(&policy, NULL, &a->verifier);
	if (rv != 0)
		return rv;
	a->auth = auth;
	a->refresh_ms = cfg->jwks_refresh_ms;
	atomic_init(&a->have_keys, false);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (pthread_create(&a->thread, NULL, rt_authn_main, a) != 0) {
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		sb_jwt_verifier_free(a->verifier);
		a->verifier = NULL;
		return SB_EIO;
	}
	a->started = true;
	return 0;
}

int
rt_authn_verify(struct rt_authn *a, const char *token, size_t len, struct sb_jwt_principal *p)
{
	int rv = sb_jwt_verify(a->verifier, token, len, p);
	if (rv == SB_JWT_UNKNOWN_KID) {
		int64_t now = sb_time_mono_ms();
		pthread_mutex_lock(&a->mu);
		if (a->last_kick_ms == 0 || now - a->last_kick_ms > RT_JWKS_KICK_MIN_MS) {
			a->last_kick_ms = now;
			a->kick = true;
			pthread_cond_signal(&a->cv);
		}
		pthread_mutex_unlock(&a->mu);
	}
	return rv;
}

int
rt_authn_ready(void *arg, char *detail, size_t n)
{
	struct rt_authn *a = arg;
	if (atomic_load(&a->have_keys))
		return 0;
	snprintf(detail, n, "no JWKS from auth yet");
	return SB_EUNAVAIL;
}

void
rt_authn_stop(struct rt_authn *a)
{
	if (!a->started)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	sb_jwt_verifier_free(a->verifier);
	a->verifier = NULL;
	a->started = false;
}
