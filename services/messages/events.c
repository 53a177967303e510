/* events.c: outbox rows for each domain event (the contract of docs/architecture.md and of
 * the outbox relay): topic sb.messages.v1, aggregate = conversation (the Kafka key), a fresh
 * event id, CloudEvents type and source, the packed protobuf payload. */
#include "messages.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

/* msg_events_hex appends the packed payload as hex (decoded by the SQL) to b's array. */
static int
msg_events_hex(struct sb_buf *arr, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *bin = malloc(n ? n : 1);
	char *hex = malloc(n * 2 + 1);
	int rv = SB_ENOMEM;
	if (bin != NULL && hex != NULL) {
		static const char digits[] = "0123456789abcdef";
		protobuf_c_message_pack(m, bin);
		for (size_t i = 0; i < n; i++) {
			hex[2 * i] = digits[bin[i] >> 4];
			hex[2 * i + 1] = digits[bin[i] & 15];
		}
		hex[2 * n] = '\0';
		rv = msg_arr_add(arr, hex);
	}
	free(bin);
	free(hex);
	return rv;
}

int
msg_events_insert(struct sb_pg *pg, const struct msg_event *ev, size_t n)
{
	struct sb_buf a[7] = { SB_BUF_INIT, SB_BUF_INIT, SB_BUF_INIT, SB_BUF_INIT,
		               SB_BUF_INIT, SB_BUF_INIT, SB_BUF_INIT };
	int rv = SB_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct sb_uuid u;
		char eid[SB_UUID_STR_LEN + 1];
		struct sb_buf src = SB_BUF_INIT;
		if ((rv = sb_uuid_v7(&u)) != 0)
			goto done;
		sb_uuid_format(&u, eid);
		if (sb_buf_printf(&src, "/tenants/%s/conversations/%s", ev[i].tenant, ev[i].conv) !=
		    0) {
			rv = SB_ENOMEM;
			goto done;
		}
		const char *tp =
		    ev[i].traceparent && ev[i].traceparent[0] ? ev[i].traceparent : NULL;
		rv = 0;
		if (msg_arr_add(&a[0], ev[i].conv) || msg_arr_add(&a[1], eid) ||
		    msg_arr_add(&a[2], ev[i].type) || msg_arr_add(&a[3], src.data) ||
		    msg_arr_add(&a[4], ev[i].subject) || msg_events_hex(&a[5], ev[i].payload) ||
		    msg_arr_add(&a[6], tp))
			rv = SB_ENOMEM;
		sb_buf_free(&src);
		if (rv != 0)
			goto done;
	}
	const char *params[7];
	for (int i = 0; i < 7; i++) {
		if (msg_arr_end(&a[i]) != 0) {
			rv = SB_ENOMEM;
			goto done;
		}
		params[i] = a[i].data;
	}
	if ((rv = sb_pg_exec_prepared(pg, "outbox_insert", 7, params, NULL)) != 0)
		goto done;
	rv = sb_pg_exec(pg, "NOTIFY sb_outbox", NULL);
done:
	for (int i = 0; i < 7; i++)
		sb_buf_free(&a[i]);
	return rv;
}
