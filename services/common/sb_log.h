/* sb_log.h: JSON-lines logging to stdout.
 *
 * Every line is one JSON object with at least ts, level, service, msg, plus trace_id and
 * request_id when the calling thread has them set, plus any key/value fields given. Values of
 * keys that look secret (password, secret, token, authorization, cookie, key material) are
 * written as "***", and credentials inside URLs (user:pass@) are masked, so that no secret
 * reaches a log even by mistake. */
#ifndef SB_LOG_H
#define SB_LOG_H

#include <stdbool.h>

enum sb_log_level {
	SB_LOG_DEBUG = 0,
	SB_LOG_INFO = 1,
	SB_LOG_WARN = 2,
	SB_LOG_ERROR = 3,
};

/* sb_log_init sets the service name written on every line and the minimum level. Call once at
 * start, before other threads log. service is copied. */
void sb_log_init(const char *service, enum sb_log_level min);
/* sb_log_set_level changes the minimum level (thread-safe). */
void sb_log_set_level(enum sb_log_level min);
/* sb_log_level_parse maps "debug|info|warn|error" to a level. Returns 0 or SB_EINVAL. */
int sb_log_level_parse(const char *s, enum sb_log_level *out);
/* sb_log_enabled tells whether a line at lvl would be written. */
bool sb_log_enabled(enum sb_log_level lvl);

/* sb_log_set_context sets the calling thread's trace and request ids (NULL clears); they are
 * copied and written on every line this thread logs until changed. */
void sb_log_set_context(const char *trace_id, const char *request_id);

/* sb_log writes one line; msg is printf-formatted. */
void sb_log(enum sb_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sb_log_kv writes one line with msg (not formatted) and string fields given as
 * key, value pairs ending with NULL: sb_log_kv(SB_LOG_INFO, "listening", "url", url, NULL).
 * A NULL value is written as JSON null. */
void sb_log_kv(enum sb_log_level lvl, const char *msg, ...) __attribute__((sentinel));

/* sb_log_is_secret_key tells whether a field or variable name denotes a secret. */
bool sb_log_is_secret_key(const char *key);
/* sb_log_mask_url copies url to out (size n) with any password replaced by ***: user:pass@ of a
 * URL, a password= query parameter, libpq's password=... keyword. */
void sb_log_mask_url(const char *url, char *out, unsigned long n);

/* sb_log_set_sink redirects lines to fn instead of stdout (tests); NULL restores stdout. */
void sb_log_set_sink(void (*fn)(const char *line, void *arg), void *arg);

#define SB_DEBUG(...) sb_log(SB_LOG_DEBUG, __VA_ARGS__)
#define SB_INFO(...)  sb_log(SB_LOG_INFO, __VA_ARGS__)
#define SB_WARN(...)  sb_log(SB_LOG_WARN, __VA_ARGS__)
#define SB_ERROR(...) sb_log(SB_LOG_ERROR, __VA_ARGS__)

#endif
