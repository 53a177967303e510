/* publish.c: publish events' Redis messages exactly once per ce_id, a batch at a time. For each
 * event one Lua script sets the dedupe mark and, only if it was new, PUBLISHes the event's
 * messages, so mark and messages happen together or not at all. The script takes a chunk of
 * events; the chunks of a batch are pipelined (one round trip). */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_err.h"
#include "sb_log.h"

/* Events per EVAL: Redis runs a script without serving other clients, so a chunk is kept
 * short (about a millisecond). */
#define NTF_PUB_CHUNK 128

/* KEYS[i] = sb:seen:<ce_id of event i>; ARGV[1] = ttl; then, per event, the number of its
 * messages and their channel, payload pairs. Returns 1 (published) or 0 (seen before) per
 * event, in order. Run with EVAL: Redis caches the compiled script by its SHA-1, and a
 * restarted Redis needs no SCRIPT LOAD. */
static const char ntf_publish_lua[] =
    "local out, a = {}, 2\n"
    "for i = 1, #KEYS do\n"
    "  local n = tonumber(ARGV[a])\n"
    "  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then\n"
    "    for j = 1, n do redis.call('PUBLISH', ARGV[a + 2 * j - 1], ARGV[a + 2 * j]) end\n"
    "    out[i] = 1\n"
    "  else\n"
    "    out[i] = 0\n"
    "  end\n"
    "  a = a + 1 + 2 * n\n"
    "end\n"
    "return out\n";

/* One chunk's command, kept until its reply is read. */
struct ntf_chunk {
	size_t idx[NTF_PUB_CHUNK]; /* indexes into reqs */
	size_t n;
};

/* ntf_chunk_append queues EVAL for the events of ch. Returns 0 or an sb_err. */
static int
ntf_chunk_append(struct sb_redis *r, struct ntf_pub_req *reqs, const struct ntf_chunk *ch)
{
	char nkeys[16], ttl[16];
	char(*keys)[272] = NULL, (*counts)[16] = NULL;
	const char **argv = NULL;
	size_t *lens = NULL, argc = 4, k = 0;
	int rv = SB_ENOMEM;

	for (size_t i = 0; i < ch->n; i++)
		argc += 2 + 2 * reqs[ch->idx[i]].ev->npubs;
	keys = calloc(ch->n, sizeof(*keys));
	counts = calloc(ch->n, sizeof(*counts));
	argv = calloc(argc, sizeof(*argv));
	lens = calloc(argc, sizeof(*lens));
	if (keys == NULL || counts == NULL || argv == NULL || lens == NULL)
		goto done;
	snprintf(nkeys, sizeof(nkeys), "%zu", ch->n);
	snprintf(ttl, sizeof(ttl), "%d", NTF_SEEN_TTL_S);
	argv[k++] = "EVAL";
	argv[k++] = ntf_publish_lua;
	argv[k++] = nkeys;
	for (size_t i = 0; i < ch->n; i++) {
		snprintf(keys[i], sizeof(keys[i]), SB_REDIS_SEEN_PREFIX "%s",
		         reqs[ch->idx[i]].ce_id);
		argv[k++] = keys[i];
	}
	argv[k++] = ttl;
	for (size_t i = 0; i < ch->n; i++) {
		const struct ntf_event *ev = reqs[ch->idx[i]].ev;
		snprintf(counts[i], sizeof(counts[i]), "%zu", ev->npubs);
		argv[k++] = counts[i];
		for (size_t j = 0; j < ev->npubs; j++) {
			argv[k] = ev->pubs[j].channel;
			lens[k++] = strlen(ev->pubs[j].channel);
			argv[k] = ev->pubs[j].payload;
			lens[k++] = ev->pubs[j].len;
		}
	}
	for (size_t i = 0; i < k; i++)
		if (lens[i] == 0)
			lens[i] = strlen(argv[i]);
	rv = sb_redis_append_argv(r, (int)k, argv, lens);
done:
	free(keys);
	free(counts);
	free(argv);
	free(lens);
	return rv;
}

/* ntf_chunk_reply applies one chunk's reply. Returns 0 or SB_EIO (an error or unexpected
 * reply: its events stay not done). */
static int
ntf_chunk_reply(struct ntf_pub_req *reqs, const struct ntf_chunk *ch, const redisReply *rep)
{
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != ch->n) {
		sb_log_kv(SB_LOG_WARN, "unexpected Redis reply to the publish script", "reply",
		          rep != NULL && rep->type == REDIS_REPLY_ERROR ? rep->str : "not an array",
		          NULL);
		return SB_EIO;
	}
	for (size_t i = 0; i < ch->n; i++)
		if (rep->element[i]->type != REDIS_REPLY_INTEGER)
			return SB_EIO;
	for (size_t i = 0; i < ch->n; i++) {
		reqs[ch->idx[i]].done = true;
		reqs[ch->idx[i]].published = rep->element[i]->integer == 1;
	}
	return 0;
}

int
ntf_publish_batch(struct sb_redis *r, struct ntf_pub_req *reqs, size_t n)
{
	struct ntf_chunk *chunks = NULL;
	redisReply **replies = NULL;
	size_t nch = 0, sent = 0;
	int rv = 0;

	for (size_t i = 0; i < n; i++)
		if (!reqs[i].done && strlen(reqs[i].ce_id) > 256)
			return SB_EINVAL;
	if ((chunks = calloc(n / NTF_PUB_CHUNK + 1, sizeof(*chunks))) == NULL)
		return SB_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (reqs[i].done)
			continue;
		if (nch == 0 || chunks[nch - 1].n == NTF_PUB_CHUNK)
			nch++;
		chunks[nch - 1].idx[chunks[nch - 1].n++] = i;
	}
	if (nch == 0)
		goto done;
	if ((replies = calloc(nch, sizeof(*replies))) == NULL) {
		rv = SB_ENOMEM;
		goto done;
	}
	for (; sent < nch; sent++)
		if ((rv = ntf_chunk_append(r, reqs, &chunks[sent])) != 0)
			break;
	/* Read the replies of whatever was queued, even after a failed append, so that the
	 * connection holds no unread pipeline. */
	if (sent > 0) {
		int gr = sb_redis_get_replies(r, replies, sent);
		if (gr != 0) {
			rv = gr;
			goto done;
		}
	}
	for (size_t c = 0; c < sent; c++) {
		int cr = ntf_chunk_reply(reqs, &chunks[c], replies[c]);
		if (cr != 0 && rv == 0)
			rv = cr;
	}
done:
	for (size_t c = 0; replies != NULL && c < sent; c++)
		if (replies[c] != NULL)
			freeReplyObject(replies[c]);
	free(replies);
	free(chunks);
	return rv;
}
