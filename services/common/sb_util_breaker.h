/* sb_util_breaker.h: a thread-safe circuit breaker around calls to one dependency.
 *
 *   CLOSED     every call is allowed. failure_threshold consecutive failures open the breaker
 *              (a success resets the count).
 *   OPEN       every call is rejected until open_ms have passed since it opened, then the
 *              breaker turns HALF_OPEN.
 *   HALF_OPEN  up to half_open_trials trial calls are allowed, the rest rejected. When that
 *              many trials have succeeded the breaker closes; any failure reopens it for
 *              another open_ms. Trials that never report back (a caller that lost its result)
 *              are given up after open_ms, and new trial calls are allowed.
 * Results reported while OPEN (calls allowed before it opened) are ignored. Transitions are
 * made lazily by sb_breaker_allow and sb_breaker_state: no timer or thread is involved.
 * The clock is injectable so tests need not sleep. */
#ifndef SB_UTIL_BREAKER_H
#define SB_UTIL_BREAKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum sb_breaker_state {
	SB_BREAKER_CLOSED = 0,
	SB_BREAKER_OPEN = 1,
	SB_BREAKER_HALF_OPEN = 2,
};

struct sb_breaker_opts {
	uint32_t failure_threshold; /* consecutive failures that open the breaker (>= 1) */
	uint32_t open_ms;           /* cool-down before trial calls (>= 1) */
	uint32_t half_open_trials;  /* trial calls let through, and successes needed to close */
	/* Monotonic clock in ms; NULL means sb_time_mono_ms. */
	int64_t (*now_ms)(void *arg);
	void *clock_arg;
};

/* Treat as opaque: use the functions below. */
struct sb_breaker {
	pthread_mutex_t mu;
	struct sb_breaker_opts o;
	enum sb_breaker_state state;
	uint32_t failures;  /* consecutive, while CLOSED */
	uint32_t trials;    /* trial calls allowed, while HALF_OPEN */
	uint32_t successes; /* trial calls that succeeded, while HALF_OPEN */
	int64_t since_ms;   /* when the current state (or trial round) began */
	uint64_t rejected;  /* calls rejected in total (for metrics) */
};

/* sb_breaker_init sets up b as CLOSED with a copy of opts. Returns 0, or SB_EINVAL when a
 * threshold, the cool-down or the trial count is 0. On success b must be released with
 * sb_breaker_fini. */
int sb_breaker_init(struct sb_breaker *b, const struct sb_breaker_opts *opts);

/* sb_breaker_fini releases b's mutex. No call on b may be in progress or follow. */
void sb_breaker_fini(struct sb_breaker *b);

/* sb_breaker_allow tells whether a call may be made now. A caller that gets true must report
 * the call's outcome with sb_breaker_success or sb_breaker_failure; one that gets false must
 * fail fast without calling the dependency. */
bool sb_breaker_allow(struct sb_breaker *b);

/* sb_breaker_success reports that an allowed call succeeded. */
void sb_breaker_success(struct sb_breaker *b);

/* sb_breaker_failure reports that an allowed call failed in a way that counts against the
 * dependency (timeouts, unavailability — not the caller's own invalid requests). */
void sb_breaker_failure(struct sb_breaker *b);

/* sb_breaker_state returns the current state, applying the OPEN → HALF_OPEN time transition. */
enum sb_breaker_state sb_breaker_state(struct sb_breaker *b);

/* sb_breaker_state_name returns "closed", "open" or "half_open". */
const char *sb_breaker_state_name(enum sb_breaker_state s);

/* sb_breaker_rejected returns how many calls sb_breaker_allow has rejected so far. */
uint64_t sb_breaker_rejected(struct sb_breaker *b);

#endif
