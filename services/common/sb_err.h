/* sb_err.h: the runtime's error codes. Functions return 0 on success or one of these. */
#ifndef SB_ERR_H
#define SB_ERR_H

enum sb_err {
	SB_OK = 0,
	SB_ENOMEM = -1,    /* allocation failed */
	SB_EINVAL = -2,    /* invalid argument or input */
	SB_ETIMEDOUT = -3, /* deadline passed */
	SB_ECLOSED = -4,   /* object closed or shutting down */
	SB_EIO = -5,       /* I/O or system call failed */
	SB_ENOTFOUND = -6, /* no such item */
	SB_EUNAVAIL = -7,  /* dependency unreachable; retry later */
	SB_EPROTO = -8,    /* peer broke the protocol (malformed frame or message) */
	SB_EBUSY = -9,     /* resource in use or limit reached */
	SB_ERANGE = -10,   /* value out of bounds */
	SB_EEXIST = -11,   /* already exists */
};

/* sb_strerror returns a static English description of an sb_err code; never NULL. */
const char *sb_strerror(int err);

#endif
