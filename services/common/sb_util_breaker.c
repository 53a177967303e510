/* sb_util_breaker.c: circuit breaker state machine (see sb_util_breaker.h). */
#include "sb_util_breaker.h"
#include "sb_err.h"
#include "sb_util_time.h"

static int64_t
sb_breaker_now(const struct sb_breaker *b)
{
	return b->o.now_ms ? b->o.now_ms(b->o.clock_arg) : sb_time_mono_ms();
}

/* Moves b to state s at time now. Called with b->mu held. */
static void
sb_breaker_enter(struct sb_breaker *b, enum sb_breaker_state s, int64_t now)
{
	b->state = s;
	b->since_ms = now;
	b->failures = 0;
	b->trials = 0;
	b->successes = 0;
}

/* Applies the time-driven transitions. Called with b->mu held. */
static void
sb_breaker_tick(struct sb_breaker *b, int64_t now)
{
	if (b->state == SB_BREAKER_OPEN && now - b->since_ms >= b->o.open_ms) {
		sb_breaker_enter(b, SB_BREAKER_HALF_OPEN, now);
	} else if (b->state == SB_BREAKER_HALF_OPEN && b->trials >= b->o.half_open_trials &&
	           now - b->since_ms >= b->o.open_ms) {
		/* Trials outstanding for a whole cool-down: their callers are gone. */
		b->since_ms = now;
		b->trials = b->successes;
	}
}

int
sb_breaker_init(struct sb_breaker *b, const struct sb_breaker_opts *opts)
{
	if (opts == NULL || opts->failure_threshold == 0 || opts->open_ms == 0 ||
	    opts->half_open_trials == 0)
		return SB_EINVAL;
	b->o = *opts;
	b->rejected = 0;
	if (pthread_mutex_init(&b->mu, NULL) != 0)
		return SB_ENOMEM;
	sb_breaker_enter(b, SB_BREAKER_CLOSED, sb_breaker_now(b));
	return 0;
}

void
sb_breaker_fini(struct sb_breaker *b)
{
	pthread_mutex_destroy(&b->mu);
}

bool
sb_breaker_allow(struct sb_breaker *b)
{
	bool ok = false;
	pthread_mutex_lock(&b->mu);
	int64_t now = sb_breaker_now(b);
	sb_breaker_tick(b, now);
	switch (b->state) {
	case SB_BREAKER_CLOSED:
		ok = true;
		break;
	case SB_BREAKER_OPEN:
		break;
	case SB_BREAKER_HALF_OPEN:
		if (b->trials < b->o.half_open_trials) {
			b->trials++;
			ok = true;
		}
		break;
	}
	if (!ok)
		b->rejected++;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

void
sb_breaker_success(struct sb_breaker *b)
{
	pthread_mutex_lock(&b->mu);
	switch (b->state) {
	case SB_BREAKER_CLOSED:
		b->failures = 0;
		break;
	case SB_BREAKER_OPEN:
		break;
	case SB_BREAKER_HALF_OPEN:
		if (++b->successes >= b->o.half_open_trials)
			sb_breaker_enter(b, SB_BREAKER_CLOSED, sb_breaker_now(b));
		break;
	}
	pthread_mutex_unlock(&b->mu);
}

void
sb_breaker_failure(struct sb_breaker *b)
{
	pthread_mutex_lock(&b->mu);
	switch (b->state) {
	case SB_BREAKER_CLOSED:
		if (++b->failures >= b->o.failure_threshold)
			sb_breaker_enter(b, SB_BREAKER_OPEN, sb_breaker_now(b));
		break;
	case SB_BREAKER_OPEN:
		break;
	case SB_BREAKER_HALF_OPEN:
		sb_breaker_enter(b, SB_BREAKER_OPEN, sb_breaker_now(b));
		break;
	}
	pthread_mutex_unlock(&b->mu);
}

enum sb_breaker_state
sb_breaker_state(struct sb_breaker *b)
{
	pthread_mutex_lock(&b->mu);
	sb_breaker_tick(b, sb_breaker_now(b));
	enum sb_breaker_state s = b->state;
	pthread_mutex_unlock(&b->mu);
	return s;
}

const char *
sb_breaker_state_name(enum sb_breaker_state s)
{
	static const char *const names[] = { "closed", "open", "half_open" };
	return (unsigned)s < 3 ? names[s] : "unknown";
}

uint64_t
sb_breaker_rejected(struct sb_breaker *b)
{
	pthread_mutex_lock(&b->mu);
	uint64_t n = b->rejected;
	pthread_mutex_unlock(&b->mu);
	return n;
}
