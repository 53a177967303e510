/* attach.c: files as seen from messages (attachments, docs/files.md "Attachments").
 *
 * files.CheckAttachments answers messages.Send: may this owner attach these ids (each a
 * COMPLETED upload of the owner in the owner's tenant)? files_may_read decides a download:
 * the owner may, and so may whoever messages.CanReadAttachment says is a member of a
 * conversation with a message attaching the file. Everyone else gets the same 404 as for an
 * id that does not exist. */
#include "files.h"

#include <stdio.h>
#include <string.h>

#include "files.pb-c.h"
#include "messages.pb-c.h"
#include "sb_err.h"
#include "sb_log.h"
#include "sb_rpc.h"
#include "sb_util_uuid.h"

#define FILES_ATTACH_TIMEOUT_MS 3000

/* files_attach_refusal checks one id for owner of tenant; returns NULL when it may be
 * attached, else why not (in the call's arena or static); SB_EUNAVAIL in *rv when the
 * database failed. */
static const char *
files_attach_refusal(struct sb_rpc_call *call, struct sb_pg *pg, const char *tenant,
                     const char *owner, const char *id, int *rv)
{
	struct sb_uuid u;
	char canon[SB_UUID_STR_LEN + 1];
	if (sb_uuid_parse(id, &u) != 0)
		return "not a file id";
	sb_uuid_format(&u, canon);
	struct files_upload up;
	int r = files_db_get(pg, canon, false, &up);
	if (r != 0 && r != SB_ENOTFOUND) {
		*rv = r;
		return NULL;
	}
	const char *why = NULL;
	if (r == SB_ENOTFOUND || strcmp(up.tenant_id, tenant) != 0 ||
	    strcmp(up.owner_id, owner) != 0) {
		why = "not a file of yours"; /* another user's and a missing one look alike */
	} else if (up.state != FILES_COMPLETED) {
		char buf[64];
		snprintf(buf, sizeof(buf), "not COMPLETED (%s)", files_state_name(up.state));
		why = sb_rpc_call_strdup(call, buf);
		if (why == NULL)
			why = "not COMPLETED";
	}
	if (r == 0)
		files_upload_clear(&up);
	return why;
}

int
files_rpc_check_attachments(struct sb_rpc_call *call, const void *reqp, void *respp)
{
	const Sb__Files__CheckAttachmentsRequest *in = reqp;
	Sb__Files__CheckAttachmentsResponse *out = respp;
	struct sb_worker_conns *wc = sb_service_worker_conns(call);
	if (wc == NULL || wc->pg == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE, "not started");
	if (in->tenant_id[0] == '\0' || in->owner_id[0] == '\0')
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "tenant_id and owner_id are required");
	if (in->n_file_ids > FILES_ATTACH_MAX)
		return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "at most %d file ids", FILES_ATTACH_MAX);
	out->refusals = sb_rpc_call_alloc(call, sizeof(char *) * (in->n_file_ids + 1));
	if (out->refusals == NULL)
		return SB_ENOMEM;
	for (size_t i = 0; i < in->n_file_ids; i++) {
		int rv = 0;
		const char *why = files_attach_refusal(call, wc->pg, in->tenant_id, in->owner_id,
		                                       in->file_ids[i], &rv);
		if (rv != 0) {
			sb_rpc_call_retry_after(call, 1000);
			return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
			                         "upload database unavailable");
		}
		out->refusals[out->n_refusals++] = (char *)(why != NULL ? why : "");
	}
	return SB__RPC__CODE__OK;
}

int
files_may_read(struct files_call *c, const struct files_upload *u)
{
	if (strcmp(u->tenant_id, c->who.tenant_id) != 0)
		return SB_ENOTFOUND; /* another tenant: not even asked */
	if (strcmp(u->owner_id, c->user) == 0)
		return 0;
	if (u->state != FILES_COMPLETED)
		return SB_ENOTFOUND; /* only completed files are ever attached */
	struct sb_rpc_client *cli = sb_service_upstream(c->f->svc, "messages");
	if (cli == NULL)
		return SB_ENOTFOUND;
	Sb__Messages__CanReadAttachmentRequest req =
	    SB__MESSAGES__CAN_READ_ATTACHMENT_REQUEST__INIT;
	req.file_id = (char *)u->id;
	req.user_id = (char *)c->user;
	req.tenant_id = (char *)u->tenant_id;
	struct sb_rpc_meta meta = { .timeout_ms = FILES_ATTACH_TIMEOUT_MS };
	struct sb_rpc_result res;
	if (sb_rpc_call(cli, "messages.CanReadAttachment", &req.base,
	                &sb__messages__can_read_attachment_response__descriptor, &meta, &res) != 0)
		return SB_EUNAVAIL;
	int rv = SB_ENOTFOUND;
	if (res.code == SB__RPC__CODE__OK) {
		const Sb__Messages__CanReadAttachmentResponse *r = (const void *)res.resp;
		rv = r->allowed ? 0 : SB_ENOTFOUND;
	} else {
		sb_log_kv(SB_LOG_WARN, "messages.CanReadAttachment failed", "code",
		          sb_rpc_code_name(res.code), "message", res.message, "upload_id", u->id,
		          NULL);
		rv = SB_EUNAVAIL;
	}
	sb_rpc_result_free(&res);
	return rv;
}
