/* rt_pubsub_fuzz: libFuzzer target for realtime's parser of the Redis messages the notifier
 * publishes, "<seq> <event_ms>\n<frame-json>" (services/realtime/frame.c,
 * rt_frame_parse_pubsub), compiled again here. The first byte picks the mode:
 *   even  the rest is one Redis message, any bytes;
 *   odd   the rest is 16 bytes of two int64 (seq made non-negative) and a JSON text, written
 *         as the notifier writes a message ("%lld %lld\n" + JSON).
 *
 * Properties:
 *   - an accepted message has a header of two decimal integers, one space, one '\n', read
 *     back here independently (strtoll) to the frame's seq and event_ms, seq never negative;
 *     the frame's text is exactly the rest, a JSON object with a string "type"; the frame's
 *     type, conversation and sender are those members (when they fit), else empty;
 *   - what the notifier writes is accepted: every seq >= 0 and every event_ms the notifier
 *     can write with "%lld", with any JSON object that has a string "type". */
#include "fuzz.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>

#include "realtime.h"
#include "sb_err.h"

/* fz_int reads the decimal integer that s[0..n) must be ("-"? digits), or returns -1. */
static int
fz_int(const char *s, size_t n, int64_t *out)
{
	char *buf = fz_cstr((const uint8_t *)s, n);
	const char *d = buf[0] == '-' ? buf + 1 : buf;
	int rc = -1;
	if (n > 0 && *d != '\0' && strspn(d, "0123456789") == strlen(d)) {
		errno = 0;
		char *end;
		long long v = strtoll(buf, &end, 10);
		if (errno == 0 && *end == '\0') {
			*out = v;
			rc = 0;
		}
	}
	free(buf);
	return rc;
}

/* fz_member returns member key of o as the frame keeps it: the string if it fits cap. */
static const char *
fz_member(json_t *o, const char *key, size_t cap)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL && strlen(s) < cap ? s : "";
}

static void
fz_check(const char *msg, size_t len, bool from_notifier)
{
	struct rt_frame *f = NULL;
	int rc = rt_frame_parse_pubsub(msg, len, &f);
	const char *sp = memchr(msg, ' ', len);
	const char *nl = sp ? memchr(sp + 1, '\n', len - (size_t)(sp + 1 - msg)) : NULL;
	int64_t seq = -1, ms = 0;
	bool header = sp != NULL && nl != NULL && fz_int(msg, (size_t)(sp - msg), &seq) == 0 &&
	              fz_int(sp + 1, (size_t)(nl - sp - 1), &ms) == 0 && seq >= 0;
	json_t *o =
	    nl ? json_loadb(nl + 1, len - (size_t)(nl + 1 - msg), JSON_REJECT_DUPLICATES, NULL)
	       : NULL;
	bool body = json_is_object(o) && json_is_string(json_object_get(o, "type"));
	if (rc == 0) {
		CHECK(header && body);
		CHECK(f->seq == seq && f->event_ms == ms && f->seq >= 0);
		CHECK(f->len == len - (size_t)(nl + 1 - msg));
		CHECK(memcmp(rt_frame_text(f), nl + 1, f->len) == 0 &&
		      rt_frame_text(f)[f->len] == 0);
		CHECK(strcmp(f->type, fz_member(o, "type", sizeof(f->type))) == 0);
		CHECK(strcmp(f->conv, fz_member(o, "conversation_id", sizeof(f->conv))) == 0);
		json_t *m = json_object_get(o, "message");
		CHECK(strcmp(f->sender, json_is_object(m)
		                            ? fz_member(m, "sender_id", sizeof(f->sender))
		                            : "") == 0);
		rt_frame_unref(f);
	} else {
		CHECK(rc == SB_EPROTO);
		/* the header the notifier writes is always read */
		char canon[48];
		bool notifier_like = from_notifier;
		if (header) {
			int cl = snprintf(canon, sizeof(canon), "%lld %lld\n", (long long)seq,
			                  (long long)ms);
			notifier_like |= msg + cl == nl + 1 && memcmp(canon, msg, (size_t)cl) == 0;
		}
		CHECK(!(notifier_like && body));
	}
	json_decref(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool structured = data[0] & 1;
	data++, size--;
	if (!structured) {
		char *msg = fz_dup(data, size);
		fz_check(msg, size, false);
		free(msg);
		return 0;
	}
	if (size < 16)
		return 0;
	int64_t seq, ms;
	memcpy(&seq, data, 8);
	memcpy(&ms, data + 8, 8);
	if (seq < 0)
		seq = seq == INT64_MIN ? INT64_MAX : -seq;
	data += 16, size -= 16;
	char head[48];
	int hl = snprintf(head, sizeof(head), "%lld %lld\n", (long long)seq, (long long)ms);
	char *msg = malloc((size_t)hl + size + 1);
	memcpy(msg, head, (size_t)hl);
	if (size > 0)
		memcpy(msg + hl, data, size);
	fz_check(msg, (size_t)hl + size, true);
	free(msg);
	return 0;
}
