/* sb_err.c: descriptions of the runtime's error codes. */
#include "sb_err.h"

const char *
sb_strerror(int err)
{
	switch (err) {
	case SB_OK:
		return "success";
	case SB_ENOMEM:
		return "out of memory";
	case SB_EINVAL:
		return "invalid argument";
	case SB_ETIMEDOUT:
		return "timed out";
	case SB_ECLOSED:
		return "closed";
	case SB_EIO:
		return "I/O error";
	case SB_ENOTFOUND:
		return "not found";
	case SB_EUNAVAIL:
		return "unavailable";
	case SB_EPROTO:
		return "protocol error";
	case SB_EBUSY:
		return "busy";
	case SB_ERANGE:
		return "out of range";
	case SB_EEXIST:
		return "already exists";
	}
	return "unknown error";
}
