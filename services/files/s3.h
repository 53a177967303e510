/* s3.h: the S3 storage backend of the files service (store_s3.c) and its AWS Signature
 * Version 4 signer (s3_sigv4.c). See docs/files.md "Storage on S3" for the object layout. */
#ifndef SB_FILES_S3_H
#define SB_FILES_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sb_buf.h"

/* --- s3_sigv4.c: AWS Signature Version 4 (header form) --------------------------------- */

/* One signed header besides host, x-amz-content-sha256 and x-amz-date (which are always
 * signed): name in lowercase. */
struct s3_hdr {
	const char *name;
	const char *value;
};
/* What a request's signature covers. */
struct s3_sign_in {
	const char *method;
	const char *host;  /* the Host header as sent: "h" or "h:port" */
	const char *uri;   /* canonical URI, already encoded (s3_uri_encode): "/bucket/key" */
	const char *query; /* canonical query string (sorted, encoded), "" for none */
	const struct s3_hdr *hdrs; /* more signed headers (sorted here), n of them */
	size_t nhdrs;
	const char *amz_date;       /* "YYYYMMDDTHHMMSSZ" */
	const char *payload_sha256; /* lowercase hex digest of the body */
	const char *region;
	const char *service; /* "s3" */
	const char *access_key;
	const char *secret_key;
};
/* s3_sign appends the value of the Authorization header for in to out ("AWS4-HMAC-SHA256
 * Credential=..., SignedHeaders=..., Signature=..."). When canon is not NULL the canonical
 * request is appended to it too (for tests and logs). Returns 0, SB_EINVAL (a header name not
 * in lowercase, more than 16 headers) or SB_ENOMEM. */
int s3_sign(const struct s3_sign_in *in, struct sb_buf *out, struct sb_buf *canon);
/* s3_uri_encode appends s percent-encoded as SigV4 asks: every byte but A-Z a-z 0-9 - . _ ~
 * as %XX (uppercase), '/' kept when keep_slash. Returns 0 or SB_ENOMEM. */
int s3_uri_encode(struct sb_buf *out, const char *s, bool keep_slash);
/* s3_sha256_hex writes the lowercase hex SHA-256 of n bytes of p and a NUL to out. */
void s3_sha256_hex(const void *p, size_t n, char out[65]);
/* s3_amz_date writes t (UTC) as "YYYYMMDDTHHMMSSZ" to out. */
void s3_amz_date(time_t t, char out[17]);

/* --- store_s3.c ----------------------------------------------------------------------- */

/* How to reach the bucket. Strings are copied by s3_store_open. */
struct s3_opts {
	const char *endpoint; /* "http[s]://host:port" (path-style addressing: /bucket/key) */
	const char *bucket;
	const char *region;
	const char *access_key;
	const char *secret_key;
	int timeout_ms;      /* per S3 request */
	const char *ca_file; /* https: PEM file of the CAs to trust; NULL or "": the system's */
	int64_t compose_max; /* compose completed chains up to this many bytes; 0: never */
	bool create_bucket;  /* create the bucket when it does not exist */
};
struct files_store;
/* s3_store_open checks that the bucket can be reached with these credentials (creating it when
 * asked and missing) and returns the backend in *out. Returns 0, SB_EINVAL (bad endpoint),
 * SB_EUNAVAIL (cannot reach it), SB_EIO (refused, e.g. a wrong secret: logged with S3's error
 * code) or SB_ENOMEM. */
int s3_store_open(const struct s3_opts *o, struct files_store **out);

/* s3_seg_key writes the object key of the segment of key that starts at off to out. */
int s3_seg_key(struct sb_buf *out, const char *key, int64_t off);
/* One segment of a stored key, as listed. */
struct s3_seg {
	int64_t off, size;
};
/* s3_list_parse reads one page of a ListObjectsV2 answer: appends the segments of the keys
 * "<prefix><20 digits>" to *segs (realloc'd, *n of them; other keys are ignored), and sets
 * *next to a malloc'd continuation token when the page is truncated (else NULL). Returns 0,
 * SB_EPROTO or SB_ENOMEM. */
int s3_list_parse(const char *xml, size_t len, const char *prefix, struct s3_seg **segs, size_t *n,
                  char **next);
/* s3_xml_text copies the text between the first <tag> and the next </tag> in [s, e) to out
 * (reset first), undoing the five predefined XML entities; returns a pointer past the closing
 * tag, or NULL when absent (or out of memory). */
const char *s3_xml_text(const char *s, const char *e, const char *tag, struct sb_buf *out);

#endif
