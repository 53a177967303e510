/* sb_metrics.c: the registry of metric families and their series, and the text renderer. */
#include "sb_metrics.h"
#include "sb_err.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_METRICS_MAX_LABELS 16

enum sb_metric_type {
	SB_METRIC_COUNTER,
	SB_METRIC_GAUGE,
	SB_METRIC_HISTOGRAM,
	SB_METRIC_GAUGE_FN,
};

static const char *const sb_metrics_type_names[] = {
	[SB_METRIC_COUNTER] = "counter",
	[SB_METRIC_GAUGE] = "gauge",
	[SB_METRIC_HISTOGRAM] = "histogram",
	[SB_METRIC_GAUGE_FN] = "gauge",
};

static const double sb_metrics_default_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
	                                             0.025,  0.05,  0.1,    0.25,  0.5,
	                                             1,      2.5,   5,      10 };

struct sb_series {
	struct sb_metric *m;
	struct sb_series *next;
	_Atomic uint64_t bits;    /* counter/gauge value, or histogram sum, as double bits */
	_Atomic uint64_t *counts; /* histogram: per bucket (not cumulative), then overflow */
	char **values;            /* nlabels label values */
};

struct sb_metric {
	enum sb_metric_type type;
	char *name;
	char *help;
	size_t nlabels;
	char **labels;
	size_t nbuckets;
	double *buckets;
	double (*fn)(void *arg); /* SB_METRIC_GAUGE_FN */
	void *fn_arg;
	struct sb_series *series, **series_tail; /* guarded by the registry lock */
	struct sb_metric *next;
};

/* The registry: the one piece of process-wide mutable state of this module. */
static struct sb_metrics_registry {
	pthread_mutex_t lock;
	struct sb_metric *head, **tail;
} sb_metrics_reg = { PTHREAD_MUTEX_INITIALIZER, NULL, &sb_metrics_reg.head };

static double
sb_metrics_from_bits(uint64_t b)
{
	double d;
	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t
sb_metrics_to_bits(double d)
{
	uint64_t b;
	memcpy(&b, &d, sizeof(b));
	return b;
}

static void
sb_metrics_atomic_add(_Atomic uint64_t *p, double v)
{
	uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(
	    p, &old, sb_metrics_to_bits(sb_metrics_from_bits(old) + v), memory_order_relaxed,
	    memory_order_relaxed))
		;
}

int
sb_metrics_name_valid(const char *name)
{
	if (name == NULL || *name == '\0')
		return 0;
	for (const char *p = name; *p; p++) {
		char c = *p;
		bool alpha =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
		if (!alpha && !(p != name && c >= '0' && c <= '9'))
			return 0;
	}
	return 1;
}

static bool
sb_metrics_label_valid(const char *name, size_t n)
{
	if (n == 0 || (n >= 2 && name[0] == '_' && name[1] == '_'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static void
sb_metrics_free_strv(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* sb_metrics_split_labels parses "a,b" into a new array; 0, SB_EINVAL or SB_ENOMEM. */
static int
sb_metrics_split_labels(const char *labels, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (labels == NULL || *labels == '\0')
		return 0;
	char **v = calloc(SB_METRICS_MAX_LABELS, sizeof(*v));
	if (v == NULL)
		return SB_ENOMEM;
	size_t cnt = 0;
	int ret = SB_EINVAL;
	const char *p = labels;
	for (;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (cnt == SB_METRICS_MAX_LABELS || !sb_metrics_label_valid(p, len))
			goto fail;
		for (size_t i = 0; i < cnt; i++) {
			if (strlen(v[i]) == len && memcmp(v[i], p, len) == 0)
				goto fail; /* duplicate label name */
		}
		if ((v[cnt] = strndup(p, len)) == NULL) {
			ret = SB_ENOMEM;
			goto fail;
		}
		cnt++;
		if (e == NULL)
			break;
		p = e + 1;
	}
	*out = v;
	*n = cnt;
	return 0;
fail:
	sb_metrics_free_strv(v, cnt);
	return ret;
}

static struct sb_metric *
sb_metrics_find_locked(const char *name)
{
	for (struct sb_metric *m = sb_metrics_reg.head; m; m = m->next) {
		if (strcmp(m->name, name) == 0)
			return m;
	}
	return NULL;
}

static bool
sb_metrics_same_labels(const struct sb_metric *m, char **labels, size_t n)
{
	if (m->nlabels != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(m->labels[i], labels[i]) != 0)
			return false;
	}
	return true;
}

static void
sb_metrics_free_series(struct sb_series *s, size_t nlabels)
{
	if (s == NULL)
		return;
	sb_metrics_free_strv(s->values, nlabels);
	free(s->counts);
	free(s);
}

static void
sb_metrics_free_metric(struct sb_metric *m)
{
	if (m == NULL)
		return;
	while (m->series) {
		struct sb_series *s = m->series;
		m->series = s->next;
		sb_metrics_free_series(s, m->nlabels);
	}
	free(m->name);
	free(m->help);
	sb_metrics_free_strv(m->labels, m->nlabels);
	free(m->buckets);
	free(m);
}

/* sb_metrics_new_series allocates a series of m with the given values (copied). */
static struct sb_series *
sb_metrics_new_series(struct sb_metric *m, const char *const *values)
{
	struct sb_series *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->m = m;
	if (m->nlabels > 0 && (s->values = calloc(m->nlabels, sizeof(char *))) == NULL)
		goto fail;
	for (size_t i = 0; i < m->nlabels; i++) {
		if ((s->values[i] = strdup(values[i])) == NULL)
			goto fail;
	}
	if (m->type == SB_METRIC_HISTOGRAM) {
		s->counts = calloc(m->nbuckets + 1, sizeof(*s->counts));
		if (s->counts == NULL)
			goto fail;
	}
	return s;
fail:
	sb_metrics_free_series(s, m->nlabels);
	return NULL;
}

static struct sb_metric *
sb_metrics_register(enum sb_metric_type type, const char *name, const char *help,
                    const char *labels, const double *buckets, size_t nbuckets)
{
	if (!sb_metrics_name_valid(name) || sb__metrics_is_process_name(name))
		return NULL;
	if (type == SB_METRIC_HISTOGRAM) {
		if (buckets == NULL || nbuckets == 0) {
			buckets = sb_metrics_default_buckets;
			nbuckets = sizeof(sb_metrics_default_buckets) / sizeof(double);
		}
		for (size_t i = 0; i < nbuckets; i++) {
			if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
				return NULL;
		}
	}
	struct sb_metric *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->type = type;
	m->series_tail = &m->series;
	if (sb_metrics_split_labels(labels, &m->labels, &m->nlabels) != 0)
		goto fail;
	for (size_t i = 0; type == SB_METRIC_HISTOGRAM && i < m->nlabels; i++) {
		if (strcmp(m->labels[i], "le") == 0)
			goto fail;
	}
	m->name = strdup(name);
	m->help = strdup(help ? help : "");
	if (m->name == NULL || m->help == NULL)
		goto fail;
	if (type == SB_METRIC_HISTOGRAM) {
		if ((m->buckets = malloc(nbuckets * sizeof(double))) == NULL)
			goto fail;
		memcpy(m->buckets, buckets, nbuckets * sizeof(double));
		m->nbuckets = nbuckets;
	}
	/* A family without labels has exactly one series, shown from the start. */
	if (m->nlabels == 0) {
		if ((m->series = sb_metrics_new_series(m, NULL)) == NULL)
			goto fail;
		m->series_tail = &m->series->next;
	}

	pthread_mutex_lock(&sb_metrics_reg.lock);
	struct sb_metric *old = sb_metrics_find_locked(name);
	if (old == NULL) {
		*sb_metrics_reg.tail = m;
		sb_metrics_reg.tail = &m->next;
	}
	pthread_mutex_unlock(&sb_metrics_reg.lock);
	if (old == NULL)
		return m;
	/* Same name again: the existing family if it is the same kind of family. */
	bool same = old->type == type && sb_metrics_same_labels(old, m->labels, m->nlabels);
	sb_metrics_free_metric(m);
	return same ? old : NULL;
fail:
	sb_metrics_free_metric(m);
	return NULL;
}

struct sb_metric *
sb_metrics_counter(const char *name, const char *help, const char *labels)
{
	return sb_metrics_register(SB_METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct sb_metric *
sb_metrics_gauge(const char *name, const char *help, const char *labels)
{
	return sb_metrics_register(SB_METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct sb_metric *
sb_metrics_histogram(const char *name, const char *help, const char *labels, const double *buckets,
                     size_t nbuckets)
{
	return sb_metrics_register(SB_METRIC_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

struct sb_series *
sb_metric_with(struct sb_metric *m, ...)
{
	if (m == NULL || m->type == SB_METRIC_GAUGE_FN)
		return NULL;
	const char *values[SB_METRICS_MAX_LABELS];
	va_list ap;
	va_start(ap, m);
	for (size_t i = 0; i < m->nlabels; i++)
		values[i] = va_arg(ap, const char *);
	va_end(ap);
	for (size_t i = 0; i < m->nlabels; i++) {
		if (values[i] == NULL)
			return NULL;
	}

	pthread_mutex_lock(&sb_metrics_reg.lock);
	struct sb_series *s;
	for (s = m->series; s; s = s->next) {
		size_t i = 0;
		while (i < m->nlabels && strcmp(s->values[i], values[i]) == 0)
			i++;
		if (i == m->nlabels)
			break;
	}
	if (s == NULL && (s = sb_metrics_new_series(m, values)) != NULL) {
		*m->series_tail = s;
		m->series_tail = &s->next;
	}
	pthread_mutex_unlock(&sb_metrics_reg.lock);
	return s;
}

void
sb_series_inc(struct sb_series *s)
{
	sb_series_add(s, 1.0);
}

void
sb_series_add(struct sb_series *s, double v)
{
	if (s == NULL)
		return;
	if (s->m->type == SB_METRIC_GAUGE || (s->m->type == SB_METRIC_COUNTER && v >= 0))
		sb_metrics_atomic_add(&s->bits, v);
}

void
sb_series_set(struct sb_series *s, double v)
{
	if (s != NULL && s->m->type == SB_METRIC_GAUGE)
		atomic_store_explicit(&s->bits, sb_metrics_to_bits(v), memory_order_relaxed);
}

void
sb_series_observe(struct sb_series *s, double v)
{
	if (s == NULL || s->m->type != SB_METRIC_HISTOGRAM || isnan(v))
		return;
	const struct sb_metric *m = s->m;
	size_t lo = 0, hi = m->nbuckets; /* first bucket with v <= bound, or nbuckets */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v <= m->buckets[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	atomic_fetch_add_explicit(&s->counts[lo], 1, memory_order_relaxed);
	sb_metrics_atomic_add(&s->bits, v);
}

double
sb_series_value(const struct sb_series *s)
{
	if (s == NULL)
		return 0;
	if (s->m->type != SB_METRIC_HISTOGRAM)
		return sb_metrics_from_bits(atomic_load_explicit(&s->bits, memory_order_relaxed));
	uint64_t n = 0;
	for (size_t i = 0; i <= s->m->nbuckets; i++)
		n += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
	return (double)n;
}

int
sb_metrics_gauge_fn(const char *name, const char *help, double (*fn)(void *arg), void *arg)
{
	if (fn == NULL || !sb_metrics_name_valid(name))
		return SB_EINVAL;
	if (sb__metrics_is_process_name(name))
		return SB_EEXIST;
	struct sb_metric *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return SB_ENOMEM;
	m->type = SB_METRIC_GAUGE_FN;
	m->series_tail = &m->series;
	m->fn = fn;
	m->fn_arg = arg;
	m->name = strdup(name);
	m->help = strdup(help ? help : "");
	if (m->name == NULL || m->help == NULL) {
		sb_metrics_free_metric(m);
		return SB_ENOMEM;
	}
	int ret = 0;
	pthread_mutex_lock(&sb_metrics_reg.lock);
	struct sb_metric *old = sb_metrics_find_locked(name);
	if (old == NULL) {
		*sb_metrics_reg.tail = m;
		sb_metrics_reg.tail = &m->next;
		m = NULL;
	} else if (old->type == SB_METRIC_GAUGE_FN) {
		old->fn = fn;
		old->fn_arg = arg;
	} else {
		ret = SB_EEXIST;
	}
	pthread_mutex_unlock(&sb_metrics_reg.lock);
	sb_metrics_free_metric(m);
	return ret;
}

int
sb_metrics_gauge_fn_remove(const char *name)
{
	struct sb_metric *found = NULL;
	if (name == NULL)
		return SB_ENOTFOUND;
	pthread_mutex_lock(&sb_metrics_reg.lock);
	for (struct sb_metric **pp = &sb_metrics_reg.head; *pp; pp = &(*pp)->next) {
		struct sb_metric *m = *pp;
		if (m->type == SB_METRIC_GAUGE_FN && strcmp(m->name, name) == 0) {
			*pp = m->next;
			if (sb_metrics_reg.tail == &m->next)
				sb_metrics_reg.tail = pp;
			found = m;
			break;
		}
	}
	pthread_mutex_unlock(&sb_metrics_reg.lock);
	sb_metrics_free_metric(found);
	return found ? 0 : SB_ENOTFOUND;
}

int
sb__metrics_fmt_double(struct sb_buf *out, double v)
{
	if (isnan(v))
		return sb_buf_puts(out, "NaN");
	if (isinf(v))
		return sb_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	char tmp[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	return sb_buf_puts(out, tmp);
}

/* sb_metrics_put_escaped appends s escaping backslash and newline, and also the double quote
 * when quote is set (label values). */
static int
sb_metrics_put_escaped(struct sb_buf *out, const char *s, bool quote)
{
	int rc = 0;
	for (const char *p = s; *p && rc == 0; p++) {
		if (*p == '\\')
			rc = sb_buf_append(out, "\\\\", 2);
		else if (*p == '\n')
			rc = sb_buf_append(out, "\\n", 2);
		else if (*p == '"' && quote)
			rc = sb_buf_append(out, "\\\"", 2);
		else
			rc = sb_buf_append(out, p, 1);
	}
	return rc;
}

/* sb_metrics_put_sample appends one line: name+suffix{labels[,le="..."]} value. */
static int
sb_metrics_put_sample(struct sb_buf *out, const struct sb_metric *m, const struct sb_series *s,
                      const char *suffix, const double *le, double v)
{
	int rc = sb_buf_puts(out, m->name);
	rc |= sb_buf_puts(out, suffix);
	if (m->nlabels > 0 || le != NULL) {
		rc |= sb_buf_append(out, "{", 1);
		for (size_t i = 0; i < m->nlabels; i++) {
			rc |= sb_buf_printf(out, "%s%s=\"", i ? "," : "", m->labels[i]);
			rc |= sb_metrics_put_escaped(out, s->values[i], true);
			rc |= sb_buf_append(out, "\"", 1);
		}
		if (le != NULL) {
			rc |= sb_buf_puts(out, m->nlabels ? ",le=\"" : "le=\"");
			rc |= sb__metrics_fmt_double(out, *le);
			rc |= sb_buf_append(out, "\"", 1);
		}
		rc |= sb_buf_append(out, "}", 1);
	}
	rc |= sb_buf_append(out, " ", 1);
	rc |= sb__metrics_fmt_double(out, v);
	rc |= sb_buf_append(out, "\n", 1);
	return rc ? SB_ENOMEM : 0;
}

static int
sb_metrics_render_histogram(struct sb_buf *out, const struct sb_metric *m,
                            const struct sb_series *s)
{
	int rc = 0;
	uint64_t cum = 0;
	for (size_t i = 0; i <= m->nbuckets; i++) {
		cum += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
		double le = i < m->nbuckets ? m->buckets[i] : INFINITY;
		rc |= sb_metrics_put_sample(out, m, s, "_bucket", &le, (double)cum);
	}
	double sum = sb_metrics_from_bits(atomic_load_explicit(&s->bits, memory_order_relaxed));
	rc |= sb_metrics_put_sample(out, m, s, "_sum", NULL, sum);
	rc |= sb_metrics_put_sample(out, m, s, "_count", NULL, (double)cum);
	return rc ? SB_ENOMEM : 0;
}

static int
sb_metrics_render_family(struct sb_buf *out, const struct sb_metric *m)
{
	int rc = sb_buf_printf(out, "# HELP %s ", m->name);
	rc |= sb_metrics_put_escaped(out, m->help, false);
	rc |= sb_buf_printf(out, "\n# TYPE %s %s\n", m->name, sb_metrics_type_names[m->type]);
	if (m->type == SB_METRIC_GAUGE_FN)
		return rc | sb_metrics_put_sample(out, m, NULL, "", NULL, m->fn(m->fn_arg));
	for (const struct sb_series *s = m->series; s && rc == 0; s = s->next) {
		if (m->type == SB_METRIC_HISTOGRAM) {
			rc = sb_metrics_render_histogram(out, m, s);
		} else {
			uint64_t b = atomic_load_explicit(&s->bits, memory_order_relaxed);
			rc = sb_metrics_put_sample(out, m, s, "", NULL, sb_metrics_from_bits(b));
		}
	}
	return rc ? SB_ENOMEM : 0;
}

int
sb_metrics_render(struct sb_buf *out)
{
	int rc = 0;
	pthread_mutex_lock(&sb_metrics_reg.lock);
	for (const struct sb_metric *m = sb_metrics_reg.head; m && rc == 0; m = m->next)
		rc = sb_metrics_render_family(out, m);
	pthread_mutex_unlock(&sb_metrics_reg.lock);
	if (rc != 0)
		return SB_ENOMEM;
	return sb__metrics_render_process(out);
}
