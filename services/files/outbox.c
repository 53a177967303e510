/* outbox.c: the one writer of the files service's outbox rows (files.outbox), which sb-outbox
 * relays to Kafka: the merge requests of the chunk API (chunks.c) and the completed uploads of
 * the merge worker (merge.c). */
#include "files.h"

#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>

#include "sb_err.h"
#include "sb_pg_outbox.h"

int
files_outbox_put(struct sb_pg *pg, const char *upload_id, const char *event_type, const char *topic,
                 const char *traceparent, const struct ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL)
		return SB_ENOMEM;
	protobuf_c_message_pack(msg, buf);
	char subject[64];
	snprintf(subject, sizeof(subject), "uploads/%s", upload_id);
	struct sb_pg_outbox_event oe = {
		.aggregate_type = "upload",
		.aggregate_id = upload_id,
		.event_type = event_type,
		.topic = topic,
		.source = FILES_EVENT_SOURCE,
		.subject = subject,
		.traceparent = traceparent,
		.payload = buf,
		.payload_len = n,
	};
	int rv = sb_pg_outbox_insert(pg, FILES_OUTBOX, &oe);
	free(buf);
	return rv;
}
