/* merge.c: the merge worker. One thread per process consumes merge requests from
 * sb.file-merge.v1 (a consumer group: replicas share the partitions) and assembles each upload.
 *
 * One merge is one transaction that holds the upload's row lock (FOR UPDATE) from the state
 * check to COMPLETED, so two workers never merge one upload at once, and a request delivered
 * again for a COMPLETED upload finds it COMPLETED and does nothing (but remove parts a crash
 * left). The parts are read in order through the storage interface, each checked against the
 * SHA-256 recorded when it arrived, and written at their offsets into the final object, which
 * storage makes durable; the whole file's size and SHA-256 are checked (against the client's,
 * if it gave one at initiate). Then, in that transaction: COMPLETED, the chunk rows deleted,
 * FileUploadCompleted written to files.outbox; commit; the parts are removed; the Kafka offset
 * is committed last. The final object is served only once the upload is COMPLETED (download.c
 * checks the state), so a merge cut short is never seen; a new attempt rewrites it whole.
 *
 * A part missing, short or corrupt, or a storage error, is retried with back-off
 * (SB_FILES_MERGE_BACKOFF_MS, doubling) up to SB_FILES_MERGE_ATTEMPTS; then, or at once when
 * the file's SHA-256 is not the client's, the upload becomes FAILED with the reason, its bytes
 * are removed, and it is logged and counted (files_merges_total{result="failed"}). A database
 * outage is not the upload's fault: it is waited out without counting attempts. */
#include "files.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events/files_events.pb-c.h"
#include "sb_err.h"
#include "sb_kafka.h"
#include "sb_log.h"
#include "sb_names.h"
#include "sb_util_hex.h"
#include "sb_util_time.h"
#include "sb_util_uuid.h"

struct files_merge {
	struct files *f;
	struct sb_kafka_consumer *kc;
	struct sb_pg *pg;
	pthread_t thread;
	bool started;
	atomic_bool stop;
};

enum files_merge_result {
	FILES_MERGE_DONE = 0, /* merged and committed */
	FILES_MERGE_NOOP,     /* nothing to do (completed already, unknown, not MERGING) */
	FILES_MERGE_RETRY,    /* a part or storage failed: counts as an attempt */
	FILES_MERGE_BAD,      /* the file is not the client's: FAILED at once */
	FILES_MERGE_DB,       /* the database failed: wait, no attempt counted */
};

/* files_merge_count counts one merge outcome. */
static void
files_merge_count(struct files_merge *m, const char *result)
{
	sb_series_inc(sb_metric_with(m->f->m.merges, result));
}

/* files_merge_sleep waits ms, or less when stopping. Returns false when stopping. */
static bool
files_merge_sleep(struct files_merge *m, int64_t ms)
{
	int64_t end = sb_time_mono_ms() + ms;
	while (!atomic_load(&m->stop)) {
		int64_t left = end - sb_time_mono_ms();
		if (left <= 0)
			return true;
		struct timespec ts = { 0, (left > 100 ? 100 : left) * 1000000L };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* files_merge_remove_parts removes parts 1..total of upload id (missing ones are fine). */
static void
files_merge_remove_parts(struct files_merge *m, const char *id, int64_t total)
{
	struct files_store *s = m->f->store;
	char key[64];
	for (int64_t n = 1; n <= total; n++) {
		files_part_key(id, (int)n, key);
		int rv = s->ops->remove(s, key);
		if (rv != 0)
			sb_log_kv(SB_LOG_WARN, "cannot remove a part", "key", key, "error",
			          sb_strerror(rv), NULL);
	}
}

/* files_merge_completed_event writes FileUploadCompleted of u to files.outbox (inside the
 * merge's transaction). */
static int
files_merge_completed_event(struct files_merge *m, const struct files_chunked *u, const char *sha,
                            int64_t completed_ms)
{
	Sb__Events__FileUploadCompleted ev = SB__EVENTS__FILE_UPLOAD_COMPLETED__INIT;
	ev.upload_id = (char *)u->id;
	ev.tenant_id = (char *)u->tenant_id;
	ev.owner_id = (char *)u->owner_id;
	ev.filename = (char *)u->filename;
	ev.content_type = (char *)u->content_type;
	ev.size = u->length;
	ev.sha256 = (char *)sha;
	ev.completed_at_ms = completed_ms;
	return files_outbox_put(m->pg, u->id, FILES_EV_COMPLETED, SB_TOPIC_FILES, NULL, &ev.base);
}

/* files_merge_assemble copies the parts of u (listed in res: n, size, sha256) in order into
 * the final object and writes the whole file's SHA-256 (hex) to sha. Returns
 * FILES_MERGE_DONE, FILES_MERGE_RETRY with the reason in why, or FILES_MERGE_DB when stopping
 * (no attempt counted; the caller then leaves the request uncommitted). */
static enum files_merge_result
files_merge_assemble(struct files_merge *m, const struct files_chunked *u, PGresult *res,
                     char sha[65], char *why, size_t whylen)
{
	struct files_store *s = m->f->store;
	enum files_merge_result r = FILES_MERGE_RETRY;
	char final[64], key[64];
	uint8_t *buf = NULL;
	EVP_MD_CTX *all = EVP_MD_CTX_new();
	int64_t off = 0;
	int rv;

	if (PQntuples(res) != u->total) {
		snprintf(why, whylen, "%d of %" PRId64 " chunk rows", PQntuples(res), u->total);
		goto done;
	}
	if (all == NULL || EVP_DigestInit_ex(all, EVP_sha256(), NULL) != 1 ||
	    (buf = malloc((size_t)(u->chunk_size > 0 ? u->chunk_size : 1))) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto done;
	}
	files_key(u->id, final);
	for (int64_t i = 0; i < u->total; i++) {
		int64_t n = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
		int64_t size = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
		const char *want = PQgetvalue(res, (int)i, 2);
		uint8_t d[32];
		unsigned dl = 0;
		char hex[65];
		size_t got = 0;
		if (atomic_load(&m->stop)) { /* the request is delivered again after a restart */
			snprintf(why, whylen, "stopping");
			r = FILES_MERGE_DB;
			goto done;
		}
		if (n != i + 1 ||
		    !files_chunk_size_ok(u->length, u->chunk_size, u->total, n, size)) {
			snprintf(why, whylen, "chunk row %" PRId64 " does not fit the upload",
			         i + 1);
			goto done;
		}
		files_part_key(u->id, (int)n, key);
		rv = s->ops->read(s, key, 0, buf, (size_t)size, &got);
		if (rv != 0 || (int64_t)got != size) {
			snprintf(why, whylen, "part %" PRId64 " is missing or short", n);
			goto done;
		}
		if (EVP_Digest(buf, (size_t)size, d, &dl, EVP_sha256(), NULL) != 1) {
			snprintf(why, whylen, "cannot hash part %" PRId64, n);
			goto done;
		}
		sb_hex_encode(d, 32, hex);
		hex[64] = '\0';
		if (strcmp(hex, want) != 0) {
			snprintf(why, whylen, "part %" PRId64 " is corrupt (SHA-256 differs)", n);
			goto done;
		}
		if ((rv = s->ops->write(s, final, off, buf, (size_t)size)) != 0) {
			snprintf(why, whylen, "storage: %s", sb_strerror(rv));
			goto done;
		}
		EVP_DigestUpdate(all, buf, (size_t)size);
		off += size;
	}
	/* a longer object left by an earlier attempt (not possible with fixed sizes, but cheap) */
	if (off != u->length || (rv = s->ops->truncate(s, final, u->length)) != 0) {
		snprintf(why, whylen, "the assembled file is not %" PRId64 " bytes", u->length);
		goto done;
	}
	uint8_t d[32];
	unsigned dl = 0;
	if (EVP_DigestFinal_ex(all, d, &dl) != 1 || dl != 32) {
		snprintf(why, whylen, "cannot hash the file");
		goto done;
	}
	sb_hex_encode(d, 32, sha);
	sha[64] = '\0';
	r = FILES_MERGE_DONE;
done:
	EVP_MD_CTX_free(all);
	free(buf);
	return r;
}

/* files_merge_once makes one attempt at merging upload id; why gets the reason of a failure. */
static enum files_merge_result
files_merge_once(struct files_merge *m, const char *id, char *why, size_t whylen)
{
	struct files_chunked u;
	PGresult *res = NULL;
	char sha[65];
	int rv;

	if ((rv = sb_pg_begin(m->pg)) != 0 ||
	    (rv = sb_pg_exec(m->pg, "SET LOCAL statement_timeout = 0", NULL)) != 0)
		goto db;
	rv = files_chunked_get(m->pg, "chunk_upload_lock", id, &u);
	if (rv == SB_ENOTFOUND || (rv == 0 && (!u.chunked || u.state != FILES_MERGING))) {
		sb_pg_rollback(m->pg);
		if (rv == 0 && u.chunked && u.state == FILES_COMPLETED)
			files_merge_remove_parts(m, u.id, u.total); /* a crash may have left them */
		snprintf(why, whylen, "%s", rv != 0 ? "unknown upload" : files_state_name(u.state));
		return FILES_MERGE_NOOP;
	}
	if (rv != 0)
		goto db;
	sb_log_kv(SB_LOG_INFO, "merging an upload", "upload_id", u.id, NULL);
	const char *p[] = { u.id };
	if ((rv = sb_pg_exec_prepared(m->pg, "chunk_list", 1, p, &res)) != 0)
		goto db;
	enum files_merge_result r = files_merge_assemble(m, &u, res, sha, why, whylen);
	PQclear(res);
	if (r != FILES_MERGE_DONE) {
		sb_pg_rollback(m->pg);
		return r;
	}
	if (u.sha256[0] != '\0' && strcmp(u.sha256, sha) != 0) {
		sb_pg_rollback(m->pg);
		snprintf(why, whylen, "SHA-256 %s is not the client's %s", sha, u.sha256);
		return FILES_MERGE_BAD;
	}
	const char *dp[] = { u.id, sha };
	if ((rv = sb_pg_exec_prepared(m->pg, "merge_done", 2, dp, &res)) != 0)
		goto db;
	int64_t completed_ms =
	    PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : sb_time_now_ms();
	PQclear(res);
	if ((rv = files_merge_completed_event(m, &u, sha, completed_ms)) != 0 ||
	    (rv = sb_pg_commit(m->pg)) != 0)
		goto db;
	files_merge_remove_parts(m, u.id, u.total);
	sb_series_inc(m->f->m.completed);
	sb_log_kv(SB_LOG_INFO, "upload merged", "upload_id", u.id, "sha256", sha, NULL);
	return FILES_MERGE_DONE;
db:
	sb_pg_rollback(m->pg);
	snprintf(why, whylen, "database: %s (%s)", sb_strerror(rv), sb_pg_errmsg(m->pg));
	return FILES_MERGE_DB;
}

/* files_merge_fail makes upload id FAILED with why (if it is still MERGING) and removes its
 * bytes. Returns 0 or a database error. */
static int
files_merge_fail(struct files_merge *m, const char *id, const char *why)
{
	struct files_chunked u;
	char final[64];
	int rv;

	if ((rv = sb_pg_begin(m->pg)) != 0)
		return rv;
	rv = files_chunked_get(m->pg, "chunk_upload_lock", id, &u);
	if (rv == 0 && u.state == FILES_MERGING) {
		const char *p[] = { id, why };
		rv = sb_pg_exec_prepared(m->pg, "merge_failed", 2, p, NULL);
		if (rv == 0)
			rv = sb_pg_commit(m->pg);
		if (rv == 0) {
			files_key(id, final);
			m->f->store->ops->remove(m->f->store, final);
			files_merge_remove_parts(m, id, u.total);
		}
	}
	if (rv != 0 || u.state != FILES_MERGING)
		sb_pg_rollback(m->pg);
	return rv == SB_ENOTFOUND ? 0 : rv;
}

/* files_merge_attempt counts one more failed attempt at upload id on its row and returns the
 * count so far (0 when the upload is no longer MERGING), or -1 on a database error. */
static long long
files_merge_attempt(struct files_merge *m, const char *id)
{
	PGresult *res = NULL;
	const char *p[] = { id };
	if (sb_pg_exec_prepared(m->pg, "merge_attempt", 1, p, &res) != 0) {
		PQclear(res);
		return -1;
	}
	long long n = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return n;
}

/* files_merge_handle merges upload id, with retries. Returns false when stopped before the
 * request was settled (its offset must not be committed). */
static bool
files_merge_handle(struct files_merge *m, const char *id)
{
	const struct files_cfg *cfg = m->f->cfg;
	int64_t t0 = sb_time_mono_ms(), wait = cfg->merge_backoff_ms, db_wait = 100;
	char why[256] = "", attempt_s[24];

	for (long long attempt = 1;;) {
		enum files_merge_result r = files_merge_once(m, id, why, sizeof(why));
		switch (r) {
		case FILES_MERGE_DONE:
			files_merge_count(m, "completed");
			sb_series_observe(m->f->m.merge_seconds,
			                  (double)(sb_time_mono_ms() - t0) / 1000.0);
			return true;
		case FILES_MERGE_NOOP:
			files_merge_count(m, "noop");
			sb_log_kv(SB_LOG_INFO, "merge request: nothing to do", "upload_id", id,
			          "state", why, NULL);
			return true;
		case FILES_MERGE_DB:
			if (atomic_load(&m->stop))
				return false;
			sb_log_kv(SB_LOG_WARN, "merge waits for the database", "upload_id", id,
			          "error", why, NULL);
			if (!files_merge_sleep(m, db_wait))
				return false;
			db_wait = db_wait * 2 > 5000 ? 5000 : db_wait * 2;
			continue;
		case FILES_MERGE_RETRY:
			/* counted on the row: a request delivered again after a restart goes
			 * on counting (0 rows: no longer MERGING; the next attempt finds out) */
			if ((attempt = files_merge_attempt(m, id)) < 0) {
				attempt = 1;
				if (!files_merge_sleep(m, db_wait))
					return false;
				continue;
			}
			snprintf(attempt_s, sizeof(attempt_s), "%lld", attempt);
			if (attempt < cfg->merge_attempts) {
				files_merge_count(m, "retried");
				sb_log_kv(SB_LOG_WARN, "merge attempt failed; will retry",
				          "upload_id", id, "attempt", attempt_s, "error", why,
				          NULL);
				if (!files_merge_sleep(m, wait))
					return false;
				wait *= 2;
				continue;
			}
			break;
		case FILES_MERGE_BAD:
			break;
		}
		/* FAILED, for good: reported, never half-done. */
		while (files_merge_fail(m, id, why) != 0)
			if (!files_merge_sleep(m, 1000))
				return false;
		files_merge_count(m, "failed");
		snprintf(attempt_s, sizeof(attempt_s), "%lld", attempt);
		sb_log_kv(SB_LOG_ERROR, "merge failed; the upload is FAILED", "upload_id", id,
		          "attempts", attempt_s, "error", why, NULL);
		return true;
	}
}

/* files_merge_main is the worker thread: poll, merge, commit the offset. */
static void *
files_merge_main(void *arg)
{
	struct files_merge *m = arg;
	while (!atomic_load(&m->stop)) {
		rd_kafka_message_t *msg = sb_kafka_consumer_poll(m->kc, 500);
		if (msg == NULL)
			continue;
		if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			rd_kafka_message_destroy(msg);
			continue;
		}
		Sb__Events__FileMergeRequested *req = sb__events__file_merge_requested__unpack(
		    NULL, msg->len, (const uint8_t *)msg->payload);
		struct sb_uuid u;
		bool settled = true;
		if (req == NULL || req->upload_id == NULL || strlen(req->upload_id) != 36 ||
		    sb_uuid_parse(req->upload_id, &u) != 0) {
			files_merge_count(m, "invalid");
			sb_log_kv(SB_LOG_ERROR, "malformed merge request skipped", NULL);
		} else {
			char id[SB_UUID_STR_LEN + 1];
			sb_uuid_format(&u, id);
			settled = files_merge_handle(m, id);
		}
		if (req != NULL)
			sb__events__file_merge_requested__free_unpacked(req, NULL);
		if (settled && sb_kafka_consumer_commit(m->kc, msg) != 0)
			sb_log_kv(SB_LOG_WARN, "cannot commit the merge request's offset", NULL);
		rd_kafka_message_destroy(msg);
	}
	return NULL;
}

int
files_merge_start(struct files *f)
{
	const struct files_cfg *cfg = f->cfg;
	struct files_merge *m = calloc(1, sizeof(*m));
	char topic[256], group[320];
	int rv;

	if (m == NULL)
		return SB_ENOMEM;
	m->f = f;
	atomic_init(&m->stop, false);
	if ((rv = sb_kafka_topic_name(cfg->common.kafka_topic_prefix, SB_TOPIC_FILE_MERGE, topic,
	                              sizeof(topic))) != 0)
		goto fail;
	/* the group carries the topic prefix too: platforms sharing a cluster never share it */
	snprintf(group, sizeof(group), "%s%s", cfg->common.kafka_topic_prefix, cfg->merge_group);
	const char *const topics[] = { topic, NULL };
	/* A replica killed without leaving the group holds its partitions until the session
	 * times out: 10 s, not librdkafka's 45 s. */
	const char *const conf[] = { "session.timeout.ms", "10000", "heartbeat.interval.ms", "2000",
		                     NULL };
	if ((rv = sb_kafka_consumer_new(cfg->common.kafka_brokers, group, topics, conf, &m->kc)) !=
	    0)
		goto fail;
	if ((rv = sb_pg_open_opts(cfg->common.database_url, files_stmts, &files_pg_opts, &m->pg)) !=
	    0)
		goto fail;
	if (pthread_create(&m->thread, NULL, files_merge_main, m) != 0) {
		rv = SB_EIO;
		goto fail;
	}
	m->started = true;
	f->merge = m;
	sb_log_kv(SB_LOG_INFO, "merge worker started", "topic", topic, "group", group, NULL);
	return 0;
fail:
	sb_log_kv(SB_LOG_ERROR, "cannot start the merge worker", "error", sb_strerror(rv), NULL);
	sb_kafka_consumer_close(m->kc);
	sb_pg_close(m->pg);
	free(m);
	return rv;
}

void
files_merge_stop(struct files_merge *m)
{
	if (m == NULL)
		return;
	atomic_store(&m->stop, true);
	if (m->started)
		pthread_join(m->thread, NULL);
	sb_kafka_consumer_close(m->kc);
	sb_pg_close(m->pg);
	free(m);
}
