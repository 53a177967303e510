/* jsv.h: JSON Schema validation for the registry, a C interface over valijson (jsv.cpp).
 *
 * The only C++ of the service: jsv.cpp parses documents with nlohmann::json and validates with
 * valijson (Debian's libvalijson-dev, 1.0), which implements drafts 4 and 7. Every error of a
 * validation carries the JSON pointer (RFC 6901) of the instance location that failed.
 * Thread safety: a compiled schema may be used by any number of threads at once (each
 * validation borrows a validator, which caches compiled "pattern" regexes, from the schema's
 * pool under a mutex).
 */
#ifndef SB_REGISTRY_JSV_H
#define SB_REGISTRY_JSV_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The drafts a schema may be compiled as. */
enum reg_jsv_draft {
	REG_JSV_DRAFT4 = 4,
	REG_JSV_DRAFT7 = 7,
};

#define REG_JSV_POINTER_MAX 512
#define REG_JSV_MESSAGE_MAX 256

/* One violation: where in the instance (a JSON pointer, "" for the whole document) and why. */
struct reg_jsv_error {
	char pointer[REG_JSV_POINTER_MAX];
	char message[REG_JSV_MESSAGE_MAX];
};

/* A fetch callback resolves the URI of a remote $ref (without its fragment) to a JSON text the
 * callee malloc()ed and the validator frees, or NULL when it cannot. */
typedef char *(*reg_jsv_fetch_fn)(void *arg, const char *uri);

struct reg_jsv;

/* reg_jsv_compile parses schema (len bytes of JSON text) as a schema of draft. Remote $refs are
 * resolved through fetch (NULL: a remote $ref fails the compile). On success *out is freed with
 * reg_jsv_free. Returns 0, or -1 with a reason in err (n bytes) for text that is not JSON or a
 * schema valijson refuses, -2 when memory runs out. */
int reg_jsv_compile(const char *schema, size_t len, enum reg_jsv_draft draft,
                    reg_jsv_fetch_fn fetch, void *arg, struct reg_jsv **out, char *err, size_t n);

/* reg_jsv_validate validates the JSON text doc (len bytes) against s. Up to max violations
 * are written to errs (may be NULL with max 0); *nerrs gets how many there were in total.
 * Returns 0 when doc is valid, 1 when it is not, -1 when doc is not JSON (reason in errs[0]
 * when max > 0), -2 when memory runs out. */
int reg_jsv_validate(const struct reg_jsv *s, const char *doc, size_t len,
                     struct reg_jsv_error *errs, size_t max, size_t *nerrs);

/* reg_jsv_free frees s; NULL is allowed. */
void reg_jsv_free(struct reg_jsv *s);

#ifdef __cplusplus
}
#endif

#endif
