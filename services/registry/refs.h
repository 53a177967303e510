/* refs.h: Confluent schema references without I/O: reading a "references" array, writing it
 * back, and rewriting a schema's "$ref"s for the bundle that core.c builds (docs/registry.md,
 * References). Used by the registry and by the fuzz target reg_refs_fuzz. */
#ifndef SB_REGISTRY_REFS_H
#define SB_REGISTRY_REFS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define REG_REF_NAME_MAX 255
#define REG_REFS_MAX     32        /* references of one version */
#define REG_BUNDLE_KEY   "$sbrefs" /* the bundle's root key for referenced schemas */

/* A schema reference: the schema refers to version `version` of `subject` (in the same tenant)
 * by `name`, the value of its "$ref"; id is that version's id once resolved. */
struct reg_ref {
	char name[REG_REF_NAME_MAX + 1];
	char subject[REG_REF_NAME_MAX + 1];
	int version; /* 1.., or -1: the latest (until resolved) */
	int64_t id;
};

/* reg_refs_parse reads a "references" array (NULL or null: none) of {name, subject, version}
 * into *out (caller frees; NULL when none), unresolved. Returns 0, or -1 with a reason in why
 * (wn bytes): not an array, more than REG_REFS_MAX, a name empty, too long or holding '#', a
 * subject empty, too long or holding control characters, a version not -1 or 1..2^31-1. */
int reg_refs_parse(const json_t *arr, struct reg_ref **out, size_t *n, char *why, size_t wn);
/* reg_refs_json makes the array back ({name, subject, version} each), for answers. */
json_t *reg_refs_json(const struct reg_ref *refs, size_t n);
/* reg_refs_rewrite rewrites, in place, every "$ref" of schema s (not those inside enum, const,
 * default, examples: data) for a bundle: a ref by a reference's name ("n", "n#/a") becomes
 * "#/$sbrefs/<id>" plus the fragment; a local "#..." ref becomes "#<prefix>..." (prefix "" for
 * the root, which leaves them as they are; "/$sbrefs/<id>" for a referenced schema). Other refs
 * stay (the validator refuses them as remote). Returns 0, or -1 with a reason in why for a
 * fragment that is not a JSON pointer or a result too long. */
int reg_refs_rewrite(json_t *s, const char *prefix, const struct reg_ref *refs, size_t n, char *why,
                     size_t wn);

#endif
