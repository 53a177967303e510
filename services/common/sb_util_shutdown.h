/* sb_util_shutdown.h: graceful shutdown of a process on SIGTERM or SIGINT.
 *
 * sb_shutdown_install blocks SIGTERM and SIGINT in the calling thread — and so in every thread
 * created after it — and starts one dedicated thread that takes them with sigwait. The first
 * signal (or sb_shutdown_request) sets the shutdown flag, wakes sb_shutdown_wait and makes
 * sb_shutdown_fd readable; the process then drains and exits by itself. A second signal while
 * shutting down exits at once with status 128 + signal (the operator pressed Ctrl-C twice).
 * SIGPIPE is ignored, as a daemon writing to sockets wants. */
#ifndef SB_UTIL_SHUTDOWN_H
#define SB_UTIL_SHUTDOWN_H

#include <stdbool.h>

/* sb_shutdown_install sets the above up. Call it once from main before creating any thread;
 * later calls do nothing and return 0. Returns 0, or SB_EIO when the signal mask, the eventfd
 * or the thread cannot be set up (signals then keep their default action). */
int sb_shutdown_install(void);

/* sb_shutdown_wait blocks the calling thread until shutdown is requested and returns the
 * signal number that requested it, or 0 if sb_shutdown_request did. Returns at once when
 * shutdown was already requested. */
int sb_shutdown_wait(void);

/* sb_shutdown_requested tells whether shutdown has been requested; cheap, any thread. */
bool sb_shutdown_requested(void);

/* sb_shutdown_request asks for shutdown from inside the process (tests, a fatal dependency
 * error, an admin endpoint), exactly as if a signal had come but with signal number 0. Safe
 * from any thread, also without sb_shutdown_install. */
void sb_shutdown_request(void);

/* sb_shutdown_fd returns a file descriptor that becomes readable (and stays so) once shutdown
 * is requested, for poll/epoll-based loops, or -1 before sb_shutdown_install. The runtime owns
 * it: do not read or close it. */
int sb_shutdown_fd(void);

#endif
