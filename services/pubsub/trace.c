/* trace.c: the spans of a message's life in pubsub. A publish is the RPC's server span (made by
 * the runtime) with a "pubsub route" span under it; the publish's context travels in the
 * message's traceparent header, and each delivery ("pubsub deliver": a pull consume or a push)
 * and each ack ("pubsub ack") is a span of that trace, so one message's publish, deliveries and
 * ack are one tree in a trace viewer, whoever consumes it. */
#include "pubsub.h"

#include <string.h>
#include <time.h>

int64_t
ps_trace_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
ps_trace_span(const char *name, enum sb_span_kind kind, const char *tp, int64_t start_ns,
              const char *message_id, const char *subscription, int attempt)
{
	if (tp == NULL || tp[0] == '\0' || !sb_span_exporting())
		return;
	struct sb_span s;
	sb_span_start_tp(&s, name, kind, tp);
	if (start_ns > 0 && start_ns < s.start_ns)
		s.start_ns = start_ns;
	sb_span_attr(&s, "messaging.system", "switchboard-pubsub");
	if (message_id != NULL)
		sb_span_attr(&s, "messaging.message.id", message_id);
	if (subscription != NULL)
		sb_span_attr(&s, "messaging.destination.subscription.name", subscription);
	if (attempt > 0)
		sb_span_attr_int(&s, "messaging.delivery.attempt", attempt);
	sb_span_end(&s);
}

const char *
ps_trace_of(Sb__Pubsub__Delivered__HeadersEntry **h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (h[i]->key != NULL && strcmp(h[i]->key, PS_TRACE_HEADER) == 0)
			return h[i]->value;
	return NULL;
}
