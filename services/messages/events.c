/* events.c: outbox rows for each domain event (the contract of docs/architecture.md and of
 * the outbox relay): topic sb.messages.v1, aggregate = conversation (the Kafka key), a fresh
 * event id, CloudEvents type and source, the packed protobuf payload. */
#include "messages.h"

#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_names.h"
#include "sb_util_hex.h"

/* msg_events_hex appends the packed payload as hex (decoded by the SQL) to b's array. */
static int
msg_events_hex(struct sb_buf *arr, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *bin = malloc(n ? n : 1);
	char *hex = malloc(n * 2 + 1);
	int rv = SB_ENOMEM;
	if (bin != NULL && hex != NULL) {
		protobuf_c_message_pack(m, bin);
		sb_hex_encode(bin, n, hex);
		hex[2 * n] = '\0';
		rv = msg_arr_add(arr, hex);
	}
	free(bin);
	free(hex);
	return rv;
}

void
msg_params_free(struct msg_params *mp)
{
	for (int i = 0; i < MSG_PARAMS_MAX; i++)
		sb_buf_free(&mp->a[i]);
}

int
msg_params_end(struct msg_params *mp, int n)
{
	for (int i = 0; i < n; i++) {
		if (msg_arr_end(&mp->a[i]) != 0)
			return SB_ENOMEM;
		mp->p[i] = mp->a[i].data;
	}
	return 0;
}

int
msg_events_params(const struct msg_event *ev, size_t n, struct msg_params *mp)
{
	struct sb_buf *a = mp->a;
	for (size_t i = 0; i < n; i++) {
		struct sb_uuid u;
		char eid[SB_UUID_STR_LEN + 1];
		struct sb_buf src = SB_BUF_INIT;
		int rv = sb_uuid_v7(&u);
		if (rv != 0)
			return rv;
		sb_uuid_format(&u, eid);
		if (sb_buf_printf(&src, "/tenants/%s/conversations/%s", ev[i].tenant, ev[i].conv) !=
		    0)
			return SB_ENOMEM;
		const char *tp =
		    ev[i].traceparent && ev[i].traceparent[0] ? ev[i].traceparent : NULL;
		if (msg_arr_add(&a[0], ev[i].conv) || msg_arr_add(&a[1], eid) ||
		    msg_arr_add(&a[2], ev[i].type) || msg_arr_add(&a[3], src.data) ||
		    msg_arr_add(&a[4], ev[i].subject) || msg_events_hex(&a[5], ev[i].payload) ||
		    msg_arr_add(&a[6], tp))
			rv = SB_ENOMEM;
		sb_buf_free(&src);
		if (rv != 0)
			return rv;
	}
	return msg_params_end(mp, 7);
}

int
msg_events_insert(struct sb_pg *pg, const struct msg_event *ev, size_t n)
{
	struct msg_params mp = { 0 };
	int rv = msg_events_params(ev, n, &mp);
	if (rv == 0) {
		const struct sb_pg_step steps[] = {
			{ .name = "outbox_insert", .nparams = 7, .params = mp.p },
			{ .sql = "NOTIFY " SB_PG_OUTBOX_CHANNEL },
		};
		rv = sb_pg_exec_pipeline(pg, steps, 2);
	}
	msg_params_free(&mp);
	return rv;
}
