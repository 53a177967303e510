/* sb_json_valid_fuzz: libFuzzer target for sb_json_valid, the check the encoder makes of every
 * raw JSON payload (sb.json.Raw) instead of loading it with jansson.
 *
 * The input is the text. Checked besides crashes:
 *   - sb_json_valid answers exactly as json_loadb with JSON_DECODE_ANY | JSON_REJECT_DUPLICATES
 *     (jansson decides what JSON the gateway accepted before: the two must never differ), on
 *     text without NUL bytes; text with one is refused (jansson loses a NUL that follows a
 *     number or a literal, "9\0" loads; the encoder's text is a C string and has none);
 *   - what is valid, written back by jansson (compact, and indented), is valid again;
 *   - the answer does not depend on bytes past the length it is given (the text is copied to
 *     a buffer of exactly that size, so ASan reports any read beyond). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_json.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "sb_json_valid_fuzz: invariant broken: %s (line %d)\n",    \
			        #cond, __LINE__);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	bool ours = sb_json_valid(text, size);
	json_t *j = json_loadb(text, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (memchr(text, '\0', size) != NULL)
		CHECK(!ours);
	else
		CHECK(ours == (j != NULL));
	if (j != NULL) {
		for (int k = 0; k < 2; k++) {
			char *out =
			    json_dumps(j, JSON_ENCODE_ANY | (k ? JSON_INDENT(2) : JSON_COMPACT));
			if (out != NULL)
				CHECK(sb_json_valid(out, strlen(out)));
			free(out);
		}
		json_decref(j);
	}
	free(text);
	return 0;
}
