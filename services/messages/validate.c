/* validate.c: checks of request fields; each bad field adds one violation. */
#include "messages.h"

#include <stdio.h>
#include <string.h>

static const char *const msg_content_types[] = {
	"text/plain",
	"text/markdown",
	"application/json",
	NULL,
};

bool
msg_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned c = *p;
		size_t len;
		unsigned min;
		if (c == 0)
			return false;
		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2, min = 0x80, c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, min = 0x800, c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, min = 0x10000, c &= 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) < len)
			return false;
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			c = (c << 6) | (p[i] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		p += len;
	}
	return true;
}

bool
msg_valid_uuid(struct sb_rpc_call *call, const char *field, const char *s)
{
	struct sb_uuid u;
	if (s == NULL || s[0] == '\0') {
		sb_rpc_call_violation(call, field, "required");
		return false;
	}
	if (sb_uuid_parse(s, &u) != 0) {
		sb_rpc_call_violation(call, field, "not a UUID (8-4-4-4-12 hex digits)");
		return false;
	}
	return true;
}

bool
msg_valid_user_id(struct sb_rpc_call *call, const char *field, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0) {
		sb_rpc_call_violation(call, field, "required");
		return false;
	}
	if (n > MSG_USER_ID_MAX || !msg_utf8_valid(s, n)) {
		sb_rpc_call_violation(call, field, "not a user id (1-128 bytes of UTF-8)");
		return false;
	}
	return true;
}

bool
msg_valid_content(struct sb_rpc_call *call, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0) {
		sb_rpc_call_violation(call, "content", "required (empty)");
		return false;
	}
	if (n > MSG_CONTENT_MAX) {
		sb_rpc_call_violation(call, "content", "longer than 65536 bytes");
		return false;
	}
	if (!msg_utf8_valid(s, n)) {
		sb_rpc_call_violation(call, "content", "not valid UTF-8");
		return false;
	}
	return true;
}

const char *
msg_content_type(struct sb_rpc_call *call, const char *s)
{
	if (s == NULL || s[0] == '\0')
		return "text/plain";
	for (size_t i = 0; msg_content_types[i] != NULL; i++)
		if (strcmp(s, msg_content_types[i]) == 0)
			return msg_content_types[i];
	sb_rpc_call_violation(call, "content_type",
	                      "not one of text/plain, text/markdown, application/json");
	return NULL;
}

bool
msg_valid_limit(struct sb_rpc_call *call, const char *field, int32_t v, int32_t max)
{
	if (v >= 0 && v <= max)
		return true;
	char reason[64];
	snprintf(reason, sizeof(reason), "out of range (1..%d)", (int)max);
	sb_rpc_call_violation(call, field, reason);
	return false;
}

int
msg_invalid(struct sb_rpc_call *call)
{
	return sb_rpc_call_error(call, SB__RPC__CODE__INVALID_ARGUMENT, "invalid request");
}
