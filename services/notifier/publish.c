/* publish.c: publish an event's Redis messages exactly once per ce_id. The dedupe mark and the
 * PUBLISHes run in one Lua script, so they happen together or not at all. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"

/* KEYS[1] = sb:seen:<ce_id>; ARGV[1] = ttl; then channel, payload pairs. */
static const char ntf_publish_lua[] =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then\n"
    "  for i = 2, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

static struct sb_redis_script ntf_script;
static pthread_once_t ntf_script_once = PTHREAD_ONCE_INIT;
static int ntf_script_rv;

static void
ntf_publish_script_init(void)
{
	ntf_script_rv = sb_redis_script_init(&ntf_script, ntf_publish_lua);
}

int
ntf_publish_once(struct sb_redis *r, const char *ce_id, const struct ntf_event *ev, bool *published)
{
	char key[320], ttl[16];
	const char **args = NULL;
	redisReply *rep = NULL;
	int rv = SB_ENOMEM;

	*published = false;
	if (strlen(ce_id) > 256)
		return SB_EINVAL;
	pthread_once(&ntf_script_once, ntf_publish_script_init);
	if (ntf_script_rv != 0)
		return ntf_script_rv;
	snprintf(key, sizeof(key), "sb:seen:%s", ce_id);
	snprintf(ttl, sizeof(ttl), "%d", NTF_SEEN_TTL_S);
	if ((args = calloc(1 + 2 * ev->npubs, sizeof(*args))) == NULL)
		return SB_ENOMEM;
	args[0] = ttl;
	for (size_t i = 0; i < ev->npubs; i++) {
		args[1 + 2 * i] = ev->pubs[i].channel;
		args[2 + 2 * i] = ev->pubs[i].payload;
	}
	const char *keys[] = { key };
	rep = sb_redis_evalsha(r, &ntf_script, 1, keys, (int)(1 + 2 * ev->npubs), args);
	if (rep == NULL) {
		rv = sb_redis_err(r);
		goto done;
	}
	if (rep->type != REDIS_REPLY_INTEGER) {
		rv = SB_EIO;
		goto done;
	}
	*published = rep->integer == 1;
	rv = 0;
done:
	if (rep != NULL)
		freeReplyObject(rep);
	free(args);
	return rv;
}
