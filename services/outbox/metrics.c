/* metrics.c: the relay's metric families (one table) and their cached series. */
#include "outbox.h"

#include <pthread.h>

#include "sb_metrics.h"

struct outbox_metrics outbox_m;

static const double outbox_batch_buckets[] = { 1, 5, 10, 50, 100, 250, 500, 1000, 5000 };

static void
outbox_metrics_register(void)
{
	struct sb_metric *errors = sb_metrics_counter(
	    "outbox_errors_total",
	    "Relay errors by kind: produce (refused when queued), delivery (a per-message broker "
	    "error), transient (cluster unreachable or timed out), db.",
	    "kind");

	outbox_m.relayed = sb_metric_with(
	    sb_metrics_counter("outbox_rows_relayed_total",
	                       "Outbox rows acknowledged by Kafka and marked relayed.", NULL));
	outbox_m.dlq = sb_metric_with(sb_metrics_counter(
	    "outbox_dlq_total", "Outbox rows sent to <topic>.dlq after repeated rejection.", NULL));
	outbox_m.batch_size = sb_metric_with(sb_metrics_histogram(
	    "outbox_batch_size", "Rows per relayed batch.", NULL, outbox_batch_buckets,
	    sizeof(outbox_batch_buckets) / sizeof(outbox_batch_buckets[0])));
	outbox_m.shards_held = sb_metric_with(
	    sb_metrics_gauge("outbox_shards_held", "Shards this replica holds a lease on.", NULL));
	outbox_m.lag = sb_metric_with(sb_metrics_gauge(
	    "outbox_relay_lag_seconds",
	    "Age of the oldest unrelayed outbox row (0 when none), refreshed every lease interval.",
	    NULL));
	outbox_m.table_lag = sb_metrics_gauge(
	    "outbox_table_lag_seconds",
	    "Age of the oldest unrelayed row of one outbox table (SB_OUTBOX_TABLES), 0 when none.",
	    "table");
	outbox_m.gc_deleted = sb_metric_with(sb_metrics_counter(
	    "outbox_gc_deleted_total", "Relayed rows deleted after SB_OUTBOX_RETENTION_S.", NULL));
	outbox_m.err_produce = sb_metric_with(errors, "produce");
	outbox_m.err_delivery = sb_metric_with(errors, "delivery");
	outbox_m.err_db = sb_metric_with(errors, "db");
	outbox_m.err_transient = sb_metric_with(errors, "transient");
}

void
outbox_metrics_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, outbox_metrics_register);
}
