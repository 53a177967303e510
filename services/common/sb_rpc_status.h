/* sb_rpc_status.h: what RPC status codes mean at an HTTP edge. */
#ifndef SB_RPC_STATUS_H
#define SB_RPC_STATUS_H

/* sb_rpc_status_http maps a gRPC status code to the HTTP status an edge answers with
 * (INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404,
 * ALREADY_EXISTS 409, FAILED_PRECONDITION 412, RESOURCE_EXHAUSTED 429, UNIMPLEMENTED 501,
 * UNAVAILABLE 503, DEADLINE_EXCEEDED 504, the rest 500). */
int sb_rpc_status_http(int code);
#endif
