/* schema.c: a publish to a topic with a schema_subject is validated against the subject's
 * active schema by the schema registry (services/registry, RPC registry.ValidateSubject) before
 * anything is stored, in the publisher's tenant. Each violation comes back with its JSON pointer
 * into the payload and is answered as a field violation "payload<pointer>" (400). A subject without
 * an active schema is a 400 too (the topic names a subject nobody registered); the registry
 * unreachable is 503 with a retry hint: a message never enters such a topic unvalidated. */
#include "pubsub.h"

#include <string.h>

#include "registry.pb-c.h"
#include "sb_err.h"

int
ps_schema_validate(struct sb_rpc_call *call, const char *subject, const char *at,
                   const char *payload)
{
	struct sb_service *svc = sb_service_from_call(call);
	struct sb_rpc_client *reg = svc ? sb_service_upstream(svc, "registry") : NULL;
	if (reg == NULL)
		return sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
		                         "the schema registry is not configured");
	Sb__Registry__ValidateSubjectRequest req = SB__REGISTRY__VALIDATE_SUBJECT_REQUEST__INIT;
	req.subject = (char *)subject;
	req.document = (char *)payload;
	/* the publisher's principal goes along: the registry validates against the subject of the
	 * publisher's tenant */
	struct sb_rpc_meta meta = { .principal = sb_rpc_call_principal(call),
		                    .traceparent = sb_rpc_call_traceparent(call),
		                    .timeout_ms = 2000 };
	struct sb_rpc_result res;
	if (sb_rpc_call(reg, "registry.ValidateSubject", &req.base,
	                &sb__registry__validate_subject_response__descriptor, &meta, &res) != 0)
		return sb_rpc_call_error(call, SB__RPC__CODE__INTERNAL, "cannot call the registry");
	int code;
	if (res.code == SB__RPC__CODE__NOT_FOUND) {
		code = sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
		                         "schema subject %s has no active schema", subject);
	} else if (res.code != SB__RPC__CODE__OK) {
		sb_rpc_call_retry_after(call, res.retry_after_ms > 0 ? res.retry_after_ms : 1000);
		code = sb_rpc_call_error(call, SB__RPC__CODE__UNAVAILABLE,
		                         "the schema registry did not validate the payload: %s",
		                         res.message);
	} else {
		const Sb__Registry__ValidateSubjectResponse *v = (const void *)res.resp;
		code = SB__RPC__CODE__OK;
		if (!v->valid) {
			for (size_t i = 0; i < v->n_violations; i++) {
				char field[512];
				snprintf(field, sizeof(field), "%spayload%s", at,
				         v->violations[i]->pointer);
				sb_rpc_call_violation(call, field, v->violations[i]->message);
			}
			code =
			    sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT,
			                      "payload does not match schema subject %s", subject);
		}
	}
	sb_rpc_result_free(&res);
	return code;
}
