/* store.c: what every storage backend shares. */
#include "files.h"

#include <stdio.h>

void
files_store_close(struct files_store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

void
files_key(const char *id, char out[64])
{
	snprintf(out, 64, "up/%s", id);
}

void
files_part_key(const char *id, int n, char out[64])
{
	snprintf(out, 64, "parts/%s/%d", id, n);
}
