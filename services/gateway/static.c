/* static.c: the web console, embedded at build time (services/gateway/web, see
 * cmake/embed_files.cmake) and served at / and /console/<file>. */
#include "gateway.h"

#include <string.h>

struct sb_embedded_file {
	const char *path;
	const unsigned char *data;
	size_t size;
};
extern const struct sb_embedded_file console_files[];
/* third-party scripts from the cache (tools/deps.d/console.sh); may be empty */
extern const struct sb_embedded_file console_vendor_files[];

static const struct {
	const char *ext;
	const char *type;
} gw_static_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".json", "application/json" },
};

static const char *
gw_static_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	for (size_t i = 0; dot != NULL && i < sizeof(gw_static_types) / sizeof(gw_static_types[0]);
	     i++) {
		if (strcmp(dot, gw_static_types[i].ext) == 0)
			return gw_static_types[i].type;
	}
	return "application/octet-stream";
}

void
gw_static(struct gw_req *r)
{
	const char *name = "index.html";
	for (size_t i = 0; i < r->params.n; i++) {
		if (strcmp(r->params.name[i], "file") == 0)
			name = r->params.value[i];
	}
	const struct sb_embedded_file *f = console_files;
	while (f->path != NULL && strcmp(f->path, name) != 0)
		f++;
	if (f->path == NULL)
		for (f = console_vendor_files; f->path != NULL && strcmp(f->path, name) != 0; f++)
			;
	if (f->path != NULL) {
		const struct sb_http_header h[] = {
			{ "Cache-Control", "no-cache" },
			{ "Content-Security-Policy",
			  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
			  "frame-ancestors 'none'" },
			{ "X-Frame-Options", "DENY" },
			{ "Referrer-Policy", "no-referrer" },
		};
		gw_reply(r, 200, gw_static_type(name), h, sizeof(h) / sizeof(h[0]),
		         (const char *)f->data, f->size);
		return;
	}
	gw_reply_problem(r, 404, "no such file", NULL, 0);
}
