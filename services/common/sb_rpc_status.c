/* sb_rpc_status.c: RPC status codes at HTTP edges. */
#include "sb_rpc_status.h"

/* HTTP status by RPC code (the index). */
static const int sb_rpc_status_table[] = {
	200, /* OK */
	499, /* CANCELLED */
	500, /* UNKNOWN */
	400, /* INVALID_ARGUMENT */
	504, /* DEADLINE_EXCEEDED */
	404, /* NOT_FOUND */
	409, /* ALREADY_EXISTS */
	403, /* PERMISSION_DENIED */
	429, /* RESOURCE_EXHAUSTED */
	412, /* FAILED_PRECONDITION */
	409, /* ABORTED */
	400, /* OUT_OF_RANGE */
	501, /* UNIMPLEMENTED */
	500, /* INTERNAL */
	503, /* UNAVAILABLE */
	500, /* DATA_LOSS */
	401, /* UNAUTHENTICATED */
};

#define SB_RPC_NCODES ((int)(sizeof(sb_rpc_status_table) / sizeof(sb_rpc_status_table[0])))

int
sb_rpc_status_http(int code)
{
	return (code >= 0 && code < SB_RPC_NCODES) ? sb_rpc_status_table[code] : 500;
}
