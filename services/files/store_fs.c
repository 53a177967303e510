/* store_fs.c: the filesystem storage backend. A key "a/b" is the file <root>/a/b. Writes are
 * pwrite + fdatasync; a file that was created also has its directory fsynced, so that after a
 * crash an acknowledged byte is there and under its name. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sb_err.h"
#include "sb_log.h"

struct files_store_fs {
	struct files_store base; /* first: the ops */
	char root[PATH_MAX];
};

static int
fs_path(struct files_store_fs *s, const char *key, char *out, size_t n)
{
	if (key[0] == '/' || strstr(key, "..") != NULL)
		return SB_EINVAL;
	int w = snprintf(out, n, "%s/%s", s->root, key);
	return w < 0 || (size_t)w >= n ? SB_ERANGE : 0;
}

static int
fs_fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return SB_EIO;
	int rv = fsync(fd) == 0 ? 0 : SB_EIO;
	close(fd);
	return rv;
}

/* fs_mkdirs makes every directory above path (mkdir -p of its parent). */
static int
fs_mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
			return SB_EIO;
		*p = '/';
	}
	return 0;
}

static int
fs_open_rw(const char *path, int *fd)
{
	bool created = false;
	*fd = open(path, O_WRONLY | O_CLOEXEC);
	if (*fd < 0 && errno == ENOENT) {
		if (fs_mkdirs(path) != 0)
			return SB_EIO;
		*fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
		created = true;
	}
	if (*fd < 0)
		return SB_EIO;
	if (created && fs_fsync_dir(path) != 0) {
		close(*fd);
		return SB_EIO;
	}
	return 0;
}

static int
fs_write(struct files_store *base, const char *key, int64_t off, const void *buf, size_t len)
{
	struct files_store_fs *s = (struct files_store_fs *)base;
	char path[PATH_MAX];
	int fd, rv = fs_path(s, key, path, sizeof(path));
	if (rv != 0 || (rv = fs_open_rw(path, &fd)) != 0)
		return rv;
	const char *p = buf;
	size_t left = len;
	while (left > 0) {
		ssize_t w = pwrite(fd, p, left, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			sb_log_kv(SB_LOG_ERROR, "storage write failed", "key", key, "error",
			          strerror(errno), NULL);
			close(fd);
			return SB_EIO;
		}
		p += w;
		off += w;
		left -= (size_t)w;
	}
	rv = fdatasync(fd) == 0 ? 0 : SB_EIO;
	if (rv != 0)
		sb_log_kv(SB_LOG_ERROR, "storage fdatasync failed", "key", key, "error",
		          strerror(errno), NULL);
	close(fd);
	return rv;
}

static int
fs_read(struct files_store *base, const char *key, int64_t off, void *buf, size_t len, size_t *got)
{
	struct files_store_fs *s = (struct files_store_fs *)base;
	char path[PATH_MAX];
	int rv = fs_path(s, key, path, sizeof(path));
	if (rv != 0)
		return rv;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? SB_ENOTFOUND : SB_EIO;
	size_t have = 0;
	while (have < len) {
		ssize_t r = pread(fd, (char *)buf + have, len - have, (off_t)(off + (int64_t)have));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			return SB_EIO;
		}
		if (r == 0)
			break;
		have += (size_t)r;
	}
	close(fd);
	*got = have;
	return 0;
}

static int
fs_size(struct files_store *base, const char *key, int64_t *out)
{
	struct files_store_fs *s = (struct files_store_fs *)base;
	char path[PATH_MAX];
	struct stat st;
	int rv = fs_path(s, key, path, sizeof(path));
	if (rv != 0)
		return rv;
	if (stat(path, &st) != 0)
		return errno == ENOENT ? SB_ENOTFOUND : SB_EIO;
	*out = st.st_size;
	return 0;
}

static int
fs_truncate(struct files_store *base, const char *key, int64_t len)
{
	struct files_store_fs *s = (struct files_store_fs *)base;
	char path[PATH_MAX];
	int fd, rv = fs_path(s, key, path, sizeof(path));
	if (rv != 0 || (rv = fs_open_rw(path, &fd)) != 0)
		return rv;
	rv = ftruncate(fd, (off_t)len) == 0 && fdatasync(fd) == 0 ? 0 : SB_EIO;
	close(fd);
	return rv;
}

static int
fs_remove(struct files_store *base, const char *key)
{
	struct files_store_fs *s = (struct files_store_fs *)base;
	char path[PATH_MAX];
	int rv = fs_path(s, key, path, sizeof(path));
	if (rv != 0)
		return rv;
	if (unlink(path) != 0 && errno != ENOENT)
		return SB_EIO;
	return 0;
}

static void
fs_close(struct files_store *base)
{
	free(base);
}

/* The piecewise writer: pwrite at the running offset; every FILES_FS_KICK bytes, the range
 * written since the last kick is handed to writeback (sync_file_range SYNC_FILE_RANGE_WRITE,
 * which does not wait), so that the disk works while the rest of the body arrives and the
 * closing fdatasync has little left to do. */
#define FILES_FS_KICK (4 << 20)

struct files_wr {
	int fd;
	int64_t off;    /* where the next byte goes */
	int64_t kicked; /* bytes before this offset were handed to writeback */
	char key[64];
};

static int
fs_wopen(struct files_store *base, const char *key, int64_t off, struct files_wr **out)
{
	struct files_store_fs *s = (struct files_store_fs *)base;
	char path[PATH_MAX];
	int fd, rv = fs_path(s, key, path, sizeof(path));
	if (rv != 0 || (rv = fs_open_rw(path, &fd)) != 0)
		return rv;
	struct files_wr *w = calloc(1, sizeof(*w));
	if (w == NULL) {
		close(fd);
		return SB_ENOMEM;
	}
	w->fd = fd;
	w->off = w->kicked = off;
	snprintf(w->key, sizeof(w->key), "%s", key);
	*out = w;
	return 0;
}

static int
fs_wput(struct files_wr *w, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = pwrite(w->fd, p, len, (off_t)w->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			sb_log_kv(SB_LOG_ERROR, "storage write failed", "key", w->key, "error",
			          strerror(errno), NULL);
			return SB_EIO;
		}
		p += n;
		w->off += n;
		len -= (size_t)n;
	}
	if (w->off - w->kicked >= FILES_FS_KICK) {
		/* advisory: a failure here shows up at the closing fdatasync */
		(void)sync_file_range(w->fd, (off_t)w->kicked, (off_t)(w->off - w->kicked),
		                      SYNC_FILE_RANGE_WRITE);
		w->kicked = w->off;
	}
	return 0;
}

static int
fs_wclose(struct files_wr *w, bool sync)
{
	int rv = 0;
	if (sync && fdatasync(w->fd) != 0) {
		sb_log_kv(SB_LOG_ERROR, "storage fdatasync failed", "key", w->key, "error",
		          strerror(errno), NULL);
		rv = SB_EIO;
	}
	close(w->fd);
	free(w);
	return rv;
}

static const struct files_store_ops files_store_fs_ops = {
	.name = "fs",
	.write = fs_write,
	.read = fs_read,
	.size = fs_size,
	.truncate = fs_truncate,
	.remove = fs_remove,
	.close = fs_close,
	.wopen = fs_wopen,
	.wput = fs_wput,
	.wclose = fs_wclose,
};

int
files_store_fs_open(const char *dir, struct files_store **out)
{
	struct files_store_fs *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return SB_ENOMEM;
	s->base.ops = &files_store_fs_ops;
	if (realpath(dir, s->root) == NULL) {
		char probe[PATH_MAX];
		if (snprintf(probe, sizeof(probe), "%s/x", dir) >= (int)sizeof(probe) ||
		    fs_mkdirs(probe) != 0 || realpath(dir, s->root) == NULL) {
			sb_log_kv(SB_LOG_ERROR, "cannot create the storage directory", "dir", dir,
			          "error", strerror(errno), NULL);
			free(s);
			return SB_EIO;
		}
	}
	*out = &s->base;
	return 0;
}
