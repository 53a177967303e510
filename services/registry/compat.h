/* compat.h: JSON Schema compatibility between schema versions, by the rules Confluent's Schema
 * Registry applies to JSON Schema (docs/registry.md lists each difference and its class).
 *
 * reg_compat_diff compares an original schema (the writer's) with an update (the reader's) and
 * lists the differences, each classified compatible or not: data valid under the original
 * must stay valid under the update for every difference classified compatible. BACKWARD means
 * the new schema reads data of the old (diff(old, new)); FORWARD the old reads the new
 * (diff(new, old)); FULL both; the _TRANSITIVE levels check against every earlier version
 * rather than the latest only.
 */
#ifndef SB_REGISTRY_COMPAT_H
#define SB_REGISTRY_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum reg_compat_level {
	REG_COMPAT_NONE,
	REG_COMPAT_BACKWARD,
	REG_COMPAT_BACKWARD_TRANSITIVE,
	REG_COMPAT_FORWARD,
	REG_COMPAT_FORWARD_TRANSITIVE,
	REG_COMPAT_FULL,
	REG_COMPAT_FULL_TRANSITIVE,
};

/* One difference: its Confluent-style name (PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL, ...), whether
 * it keeps data readable, and where (a JSON pointer into the schema, "#/properties/a"). */
struct reg_diff {
	const char *type; /* static */
	bool compatible;
	char path[256];
};

struct reg_diffs {
	struct reg_diff *v;
	size_t n, cap;
};

/* reg_compat_level_parse maps "BACKWARD" etc. to *out. Returns 0 or SB_EINVAL. */
int reg_compat_level_parse(const char *s, enum reg_compat_level *out);
/* reg_compat_level_name returns the upper-case name of a level; never NULL. */
const char *reg_compat_level_name(enum reg_compat_level l);

/* reg_compat_diff appends to out the differences between original and update (schemas as
 * JSON values: objects or booleans). Local $refs ("#/...") are resolved within each schema.
 * Returns 0 or SB_ENOMEM. */
int reg_compat_diff(const json_t *original, const json_t *update, struct reg_diffs *out);

/* reg_diffs_compatible tells whether every difference of d is compatible. */
bool reg_diffs_compatible(const struct reg_diffs *d);

/* reg_compat_check checks schema against the earlier versions prev[0..n) (oldest first) at
 * level; the incompatible differences found are appended to out (which the caller frees with
 * reg_diffs_free). Sets *ok. Returns 0 or SB_ENOMEM. */
int reg_compat_check(enum reg_compat_level level, const json_t *schema, const json_t *const *prev,
                     size_t n, bool *ok, struct reg_diffs *out);

/* reg_diffs_free frees d's entries and zeroes it. */
void reg_diffs_free(struct reg_diffs *d);

#endif
