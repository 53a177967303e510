/* sb_service_authn.h: access-token verification for an edge that is not the gateway.
 *
 * One verifier (sb_jwt) built from the expected issuer and audience, whose keys come from auth's
 * JWKS (sb_service_fetch_jwks), fetched by a thread of its own so that no request thread waits:
 * at start (retried every second until it succeeds), every refresh_ms, and soon after a token
 * named an unknown kid (at most once per 5 s). Verification is CPU-only and thread-safe. */
#ifndef SB_SERVICE_AUTHN_H
#define SB_SERVICE_AUTHN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_jwt.h"

struct sb_rpc_client;

struct sb_authn {
	struct sb_jwt_verifier *verifier;
	struct sb_rpc_client *auth;
	pthread_t thread;
	pthread_mutex_t mu; /* guards stop, kick, last_kick_ms */
	pthread_cond_t cv;
	bool stop, kick, started;
	atomic_bool have_keys;
	int64_t refresh_ms, last_kick_ms;
};

/* What sb_authn_start needs: the policy's strings are copied. */
struct sb_authn_opts {
	const char *issuer;
	const char *audience;
	int64_t leeway_s;
	int64_t refresh_ms;
};

/* sb_authn_start builds a's verifier and starts the thread fetching auth's JWKS. auth must
 * outlive sb_authn_stop. Returns 0 or an error; on error nothing is left to stop. */
int sb_authn_start(struct sb_authn *a, const struct sb_authn_opts *o, struct sb_rpc_client *auth);
/* sb_authn_verify checks a token (len bytes) on any thread and fills *p. Returns 0 or an
 * sb_jwt_reason (an unknown kid also asks the thread for a fresh JWKS). */
int sb_authn_verify(struct sb_authn *a, const char *token, size_t len, struct sb_jwt_principal *p);
/* sb_authn_bearer extracts the token of an "Authorization: Bearer <token>" value (scheme
 * without case) into *tok and *len. Returns 0, or SB_EINVAL when value is NULL or not Bearer. */
int sb_authn_bearer(const char *value, const char **tok, size_t *len);
/* sb_authn_ready is a readiness check (arg: the struct sb_authn): keys loaded. */
int sb_authn_ready(void *arg, char *detail, size_t n);
/* sb_authn_stop joins the thread and frees the verifier; a no-op unless started. */
void sb_authn_stop(struct sb_authn *a);

#endif
