/* chunk_parse.c: the chunk API's parsers of request input (untrusted; fuzzed by
 * tests/fuzz/files_chunk_fuzz.c) and its size rule. No I/O. */
#include "files.h"

#include <string.h>

int64_t
files_chunk_number(const char *s, size_t n)
{
	int64_t v = 0;
	if (n == 0 || n > 9 || s[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

bool
files_chunk_size_ok(int64_t size, int64_t chunk_size, int64_t total, int64_t n, int64_t len)
{
	if (size <= 0 || chunk_size <= 0 || total <= 0 || n < 1 || n > total)
		return false;
	if (n < total)
		return len == chunk_size;
	return len == size - (total - 1) * chunk_size;
}

bool
files_sha256_hex_parse(const char *s, char out[65])
{
	if (s == NULL || strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++) {
		char ch = s[i];
		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
		out[i] = ch;
	}
	out[64] = '\0';
	return true;
}

int64_t
files_chunk_query(const char *query)
{
	const char *p = query;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > 13 && strncmp(p, "chunk_number=", 13) == 0)
			return files_chunk_number(p + 13, len - 13);
		p = end ? end + 1 : NULL;
	}
	return -1;
}
