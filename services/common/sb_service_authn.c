/* sb_service_authn.c: access-token verification with a JWKS fetcher thread (sb_service_authn.h),
 * for the edges that are not the gateway (realtime, files). */
#include "sb_service_authn.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sb_err.h"
#include "sb_log.h"
#include "sb_service.h"
#include "sb_util_time.h"

#define SB_AUTHN_KICK_MIN_MS 5000

static int
sb_authn_fetch(struct sb_authn *a)
{
	int rv = sb_service_fetch_jwks(a->auth, a->verifier, atomic_load(&a->have_keys), NULL);
	if (rv != 0)
		return rv;
	if (!atomic_exchange(&a->have_keys, true))
		sb_log_kv(SB_LOG_INFO, "JWKS loaded from auth", NULL);
	return 0;
}

static void *
sb_authn_main(void *arg)
{
	struct sb_authn *a = arg;
	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		pthread_mutex_unlock(&a->mu);
		int rv = sb_authn_fetch(a);
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
sb_authn_start(struct sb_authn *a, const struct sb_authn_opts *o, struct sb_rpc_client *auth)
{
	memset(a, 0, sizeof(*a));
	if (auth == NULL || o == NULL)
		return SB_EINVAL;
	struct sb_jwt_policy policy = {
		.issuer = o->issuer,
		.audience = o->audience,
		.typ = "at+jwt",
		.leeway_s = o->leeway_s,
	};
	int rv = sb_jwt_verifier_new(&policy, NULL, &a->verifier);
	if (rv != 0)
		return rv;
	a->auth = auth;
	a->refresh_ms = o->refresh_ms > 0 ? o->refresh_ms : 300000;
	atomic_init(&a->have_keys, false);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (pthread_create(&a->thread, NULL, sb_authn_main, a) != 0) {
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
sb_authn_verify(struct sb_authn *a, const char *token, size_t len, struct sb_jwt_principal *p)
{
	int rv = sb_jwt_verify(a->verifier, token, len, p);
	if (rv == SB_JWT_UNKNOWN_KID) {
		int64_t now = sb_time_mono_ms();
		pthread_mutex_lock(&a->mu);
		if (a->last_kick_ms == 0 || now - a->last_kick_ms > SB_AUTHN_KICK_MIN_MS) {
			a->last_kick_ms = now;
			a->kick = true;
			pthread_cond_signal(&a->cv);
		}
		pthread_mutex_unlock(&a->mu);
	}
	return rv;
}

int
sb_authn_bearer(const char *value, const char **tok, size_t *len)
{
	if (value == NULL || strncasecmp(value, "Bearer ", 7) != 0)
		return SB_EINVAL;
	const char *t = value + 7;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	if (n == 0)
		return SB_EINVAL;
	*tok = t;
	*len = n;
	return 0;
}

int
sb_authn_ready(void *arg, char *detail, size_t n)
{
	struct sb_authn *a = arg;
	if (atomic_load(&a->have_keys))
		return 0;
	snprintf(detail, n, "no JWKS from auth yet");
	return SB_EUNAVAIL;
}

void
sb_authn_stop(struct sb_authn *a)
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
