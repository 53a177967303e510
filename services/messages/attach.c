/* attach.c: attachments of a message (docs/files.md "Attachments").
 *
 * A send that attaches files is checked with files before it is queued: files.CheckAttachments
 * says whether each id is a COMPLETED upload of the sender in the sender's tenant. The call is
 * asynchronous (Send never blocks an nng thread): its callback queues the send on its lane, or
 * answers INVALID_ARGUMENT naming each refused id. The ids are stored with the message
 * (messages.attachments, uuid[]) and travel in history, in MessageCreated and so in the
 * realtime frame. messages.CanReadAttachment answers files when someone other than the owner
 * downloads a file. */
#include "messages.h"

#include <stdio.h>
#include <string.h>

#include "files.pb-c.h"
#include "sb_buf.h"
#include "sb_err.h"
#include "sb_log.h"

#define MSG_ATTACH_TIMEOUT_MS 3000

int
msg_attach_parse(struct sb_rpc_call *call, const Sb__Messages__SendRequest *req,
                 struct msg_send_item *it)
{
	it->attachments = NULL;
	it->att = NULL;
	it->n_att = 0;
	if (req->n_attachments == 0)
		return 0;
	if (req->n_attachments > MSG_ATTACH_MAX) {
		sb_rpc_call_violation(call, "attachments", "at most 10 file ids");
		return SB_EINVAL;
	}
	char **att = sb_rpc_call_alloc(call, sizeof(char *) * req->n_attachments);
	char *joined = sb_rpc_call_alloc(call, req->n_attachments * (SB_UUID_STR_LEN + 1));
	if (att == NULL || joined == NULL)
		return SB_ENOMEM;
	int rv = 0;
	for (size_t i = 0; i < req->n_attachments; i++) {
		char field[48];
		struct sb_uuid u;
		snprintf(field, sizeof(field), "attachments[%zu]", i);
		if (!msg_valid_uuid(call, field, req->attachments[i])) {
			rv = SB_EINVAL;
			continue;
		}
		sb_uuid_parse(req->attachments[i], &u);
		char *p = joined + i * (SB_UUID_STR_LEN + 1);
		sb_uuid_format(&u, p); /* canonical: compared as text from here on */
		for (size_t j = 0; j < it->n_att; j++)
			if (strcmp(att[j], p) == 0) {
				sb_rpc_call_violation(call, field, "the same file twice");
				rv = SB_EINVAL;
			}
		att[it->n_att++] = p;
	}
	if (rv != 0)
		return rv;
	/* the column's text: ids joined by commas (split again by the insert) */
	for (size_t i = 0; i + 1 < it->n_att; i++)
		att[i][SB_UUID_STR_LEN] = ',';
	it->attachments = joined;
	/* att[i] must stay NUL-ended for the event: copy them apart */
	char **sep = sb_rpc_call_alloc(call, sizeof(char *) * it->n_att);
	if (sep == NULL)
		return SB_ENOMEM;
	for (size_t i = 0; i < it->n_att; i++) {
		char id[SB_UUID_STR_LEN + 1];
		memcpy(id, att[i], SB_UUID_STR_LEN);
		id[SB_UUID_STR_LEN] = '\0';
		if ((sep[i] = sb_rpc_call_strdup(call, id)) == NULL)
			return SB_ENOMEM;
	}
	it->att = sep;
	return 0;
}

/* What the callback of files.CheckAttachments needs. */
struct msg_attach_wait {
	struct msg_batcher *batcher;
	struct msg_send_item *it;
};

/* msg_attach_done runs on an nng thread when files answered: queue the send, or answer it. */
static void
msg_attach_done(struct sb_rpc_result *res, void *arg)
{
	struct msg_attach_wait *w = arg;
	struct msg_send_item *it = w->it;
	struct sb_rpc_call *call = it->call;
	int code;
	if (res->code != SB__RPC__CODE__OK) {
		sb_log_kv(SB_LOG_WARN, "files.CheckAttachments failed", "code",
		          sb_rpc_code_name(res->code), "message", res->message, NULL);
		sb_rpc_call_retry_after(call, res->retry_after_ms > 0 ? res->retry_after_ms : 1000);
		code = sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
		                         "the files service cannot check the attachments; retry");
		sb_rpc_result_free(res);
		sb_rpc_call_finish(call, code);
		return;
	}
	const Sb__Files__CheckAttachmentsResponse *r = (const void *)res->resp;
	bool ok = r->n_refusals == it->n_att;
	const char *first = NULL;
	for (size_t i = 0; ok && i < r->n_refusals; i++) {
		if (r->refusals[i][0] == '\0')
			continue;
		char field[48], why[160];
		snprintf(field, sizeof(field), "attachments[%zu]", i);
		snprintf(why, sizeof(why), "file %s: %s", it->att[i], r->refusals[i]);
		sb_rpc_call_violation(call, field, why);
		if (first == NULL)
			first = it->att[i];
	}
	if (!ok) {
		sb_rpc_result_free(res);
		sb_rpc_call_finish(
		    call, sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "internal error"));
		return;
	}
	if (first != NULL) {
		code = sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "attachment %s is not a completed upload of the sender",
		                         first);
		sb_log_kv(SB_LOG_INFO, "send refused: bad attachment", "file_id", first, NULL);
		sb_rpc_result_free(res);
		sb_rpc_call_finish(call, code);
		return;
	}
	sb_rpc_result_free(res);
	msg_batcher_submit(w->batcher, it); /* answered by the committer, as any send */
}

int
msg_attach_check(struct sb_rpc_call *call, struct msg_batcher *b, struct msg_send_item *it)
{
	struct sb_rpc_client *files = sb_service_upstream(sb_service_from_call(call), "files");
	struct msg_attach_wait *w = sb_rpc_call_alloc(call, sizeof(*w));
	if (w == NULL)
		return SB_ENOMEM;
	if (files == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "no files service");
	w->batcher = b;
	w->it = it;
	Sb__Files__CheckAttachmentsRequest req = SB__FILES__CHECK_ATTACHMENTS_REQUEST__INIT;
	req.tenant_id = (char *)it->tenant;
	req.owner_id = (char *)it->sender;
	req.file_ids = it->att;
	req.n_file_ids = it->n_att;
	int64_t left = sb_rpc_call_remaining_ms(call);
	struct sb_rpc_meta meta = {
		.traceparent = it->traceparent,
		.timeout_ms =
		    left > 0 && left < MSG_ATTACH_TIMEOUT_MS ? left : MSG_ATTACH_TIMEOUT_MS,
	};
	int rv = sb_rpc_call_async(files, "files.CheckAttachments", &req.base,
	                           &sb__files__check_attachments_response__descriptor, &meta,
	                           msg_attach_done, w);
	if (rv != 0) {
		sb_rpc_call_retry_after(call, 1000);
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
		                         "cannot reach the files service");
	}
	return SB_RPC_DEFER;
}

int
msg_rpc_can_read_attachment(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Messages__CanReadAttachmentRequest *req = reqp;
	Sb__Messages__CanReadAttachmentResponse *resp = respp;
	if (req->tenant_id[0] == '\0' || req->user_id[0] == '\0')
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "tenant_id and user_id are required");
	if (!msg_valid_uuid(call, "file_id", req->file_id))
		return msg_invalid(call);
	struct sb_pg *pg = msg_pg(call);
	const char *params[] = { req->tenant_id, req->file_id, req->user_id };
	PGresult *res = NULL;
	int rv = sb_pg_exec_prepared(pg, "attachment_reader", 3, params, &res);
	if (rv != 0)
		return msg_db_error(call, pg, rv);
	resp->allowed = PQntuples(res) > 0;
	PQclear(res);
	return SB__RPC__CODE__OK;
}

int
msg_attach_split(struct sb_rpc_call *call, const char *joined, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (joined == NULL || joined[0] == '\0')
		return 0;
	size_t cnt = 1;
	for (const char *p = joined; *p != '\0'; p++)
		cnt += *p == ',';
	char **v = sb_rpc_call_alloc(call, sizeof(char *) * cnt);
	char *copy = sb_rpc_call_strdup(call, joined);
	if (v == NULL || copy == NULL)
		return SB_ENOMEM;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
		v[(*n)++] = t;
	*out = v;
	return 0;
}
