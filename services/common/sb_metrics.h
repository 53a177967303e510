/* sb_metrics.h: the process-wide metrics registry (Prometheus text exposition format 0.0.4).
 *
 * A family (struct sb_metric) has a type, a name, a help text and label names; a series
 * (struct sb_series) is one combination of label values. Families and series live until the
 * process exits, so pointers to them may be cached freely (and should be on hot paths: updating
 * a series is a few atomic operations, with no lock and no allocation). Every function is
 * thread-safe. Update functions accept a NULL series and do nothing, so that a failed
 * registration never crashes its caller; using a series with an operation its type does not
 * support (observe on a counter, set on a counter, a negative add on a counter) is ignored. */
#ifndef SB_METRICS_H
#define SB_METRICS_H

#include <stddef.h>

#include "sb_buf.h"

struct sb_metric; /* a family: type, name, help, label names */
struct sb_series; /* one combination of label values */

/* sb_metrics_counter registers (or finds) the counter family name with help text help and
 * label names labels (comma-separated, "method,code", or NULL for none). Registering the same
 * name again with the same type and label names returns the existing family; a different type
 * or different label names, an invalid metric or label name, or a name used by a scrape-time
 * gauge or by the built-in process metrics returns NULL. The registry owns the family. */
struct sb_metric *sb_metrics_counter(const char *name, const char *help, const char *labels);
/* sb_metrics_gauge is sb_metrics_counter for a gauge (a value that goes up and down). */
struct sb_metric *sb_metrics_gauge(const char *name, const char *help, const char *labels);
/* sb_metrics_histogram registers a histogram with the given bucket upper bounds (strictly
 * ascending, finite; copied). NULL or 0 buckets selects the default latency buckets in seconds
 * (0.0005 .. 10). A label named "le" is refused. Same rules as sb_metrics_counter otherwise. */
struct sb_metric *sb_metrics_histogram(const char *name, const char *help, const char *labels,
                                       const double *buckets, size_t nbuckets);

/* sb_metric_with returns the series of m for the given label values (exactly as many
 * const char * as m has label names; values are copied), creating it on first use. It takes a
 * lock and compares strings: cache the result on hot paths. Returns NULL if m or a value is
 * NULL or on allocation failure. */
struct sb_series *sb_metric_with(struct sb_metric *m, ...);

/* sb_series_inc adds 1 to a counter or gauge. */
void sb_series_inc(struct sb_series *s);
/* sb_series_add adds v to a counter (v >= 0 only) or a gauge. */
void sb_series_add(struct sb_series *s, double v);
/* sb_series_set sets a gauge to v. */
void sb_series_set(struct sb_series *s, double v);
/* sb_series_observe records one observation v in a histogram. */
void sb_series_observe(struct sb_series *s, double v);
/* sb_series_value returns the current value of a counter or gauge, or the number of
 * observations of a histogram (tests, diagnostics); 0 for NULL. */
double sb_series_value(const struct sb_series *s);

/* sb_metrics_gauge_fn registers a gauge computed at scrape time: fn(arg) is called on the
 * scraping thread, under the registry lock, each time the registry is rendered; it must be quick,
 * must not block and must not call into sb_metrics. Registering a name that is already a
 * scrape-time gauge replaces its fn and arg. Returns 0, SB_EINVAL (bad name, NULL fn) or
 * SB_EEXIST (the name belongs to another family), or SB_ENOMEM. */
int sb_metrics_gauge_fn(const char *name, const char *help, double (*fn)(void *arg), void *arg);
/* sb_metrics_gauge_fn_remove unregisters the scrape-time gauge name; once it returns, fn is
 * never called again (so arg may be freed). Returns 0 or SB_ENOTFOUND. */
int sb_metrics_gauge_fn_remove(const char *name);

/* sb_metrics_render appends the whole registry to out in Prometheus text format 0.0.4, in
 * registration order, then the process metrics read from /proc (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
 * process_max_fds, process_start_time_seconds). Returns 0 or SB_ENOMEM (out then holds a
 * partial text). */
int sb_metrics_render(struct sb_buf *out);

/* sb_metrics_name_valid tells whether name is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
int sb_metrics_name_valid(const char *name);

/* Internals shared by sb_metrics*.c. */
/* sb__metrics_fmt_double appends v as Prometheus writes floats (shortest round-trip form,
 * +Inf, -Inf, NaN). */
int sb__metrics_fmt_double(struct sb_buf *out, double v);
/* sb__metrics_render_process appends the process_* families read from /proc. */
int sb__metrics_render_process(struct sb_buf *out);
/* sb__metrics_is_process_name tells whether name is one of the built-in process metrics. */
int sb__metrics_is_process_name(const char *name);

#endif
