/* devcreds.c: GET /dev/credentials, development only. A browser cannot read the file that
 * `sb-auth seed-dev --out FILE` writes, so when SB_DEV_CREDENTIALS_FILE names it the gateway
 * answers its JSON (read at request time: the file is small and is written after the gateway
 * starts), and the web console offers "sign in as alice / bob / admin". Unset, the route is
 * a plain 404, as if it did not exist. */
#include "gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_log.h"

/* A seed-dev file is a few hundred bytes; anything much larger is not one. */
#define GW_DEVCREDS_MAX 65536

/* gw_devcreds_read reads path into a new NUL-terminated buffer, *out, that the caller wipes
 * and frees. Returns 0, SB_ENOTFOUND when the file does not exist (yet), or another error. */
static int
gw_devcreds_read(const char *path, char **out, size_t *len)
{
	int ret = SB_EIO;
	char *buf = NULL;
	size_t off = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? SB_ENOTFOUND : SB_EIO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto fail;
	if (st.st_size > GW_DEVCREDS_MAX) {
		ret = SB_ERANGE;
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		ret = SB_ENOMEM;
		goto fail;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	*out = buf;
	*len = off;
	buf = NULL;
	ret = 0;
fail:
	if (buf != NULL)
		free(buf);
	close(fd);
	return ret;
}

void
gw_devcreds(struct gw_req *r)
{
	const char *path = r->gw->cfg->dev_credentials_file;
	char *text = NULL;
	size_t len = 0;
	if (path == NULL || path[0] == '\0') {
		gw_reply_problem(r, 404, "not found", NULL, 0);
		return;
	}
	int rv = gw_devcreds_read(path, &text, &len);
	if (rv == SB_ENOTFOUND) {
		gw_reply_problem(
		    r, 503,
		    "the dev credentials are not written yet (sb-auth seed-dev runs once "
		    "every service is ready); try again shortly",
		    NULL, 1000);
		return;
	}
	if (rv != 0) {
		sb_log_kv(SB_LOG_ERROR, "cannot read SB_DEV_CREDENTIALS_FILE", "path", path,
		          "error", sb_strerror(rv), NULL);
		gw_reply_problem(r, 500, "cannot read the dev credentials file", NULL, 0);
		return;
	}
	/* Answer only what looks like seed-dev's JSON object (it writes the file whole, by rename):
	 * anything else is an error, not a body. Not parsed, so no extra copy of the secrets. */
	size_t b = 0, e = len;
	while (b < e && memchr(" \t\r\n", text[b], 4) != NULL)
		b++;
	while (e > b && memchr(" \t\r\n", text[e - 1], 4) != NULL)
		e--;
	if (e - b < 2 || text[b] != '{' || text[e - 1] != '}') {
		sb_log_kv(SB_LOG_ERROR, "SB_DEV_CREDENTIALS_FILE is not a JSON object", "path",
		          path, NULL);
		gw_reply_problem(r, 500, "the dev credentials file is not a JSON object", NULL, 0);
	} else {
		const struct sb_http_header h[] = {
			{ "Cache-Control", "no-store" },
		};
		gw_reply(r, 200, "application/json", h, 1, text + b, e - b);
	}
	explicit_bzero(text, len);
	free(text);
}
