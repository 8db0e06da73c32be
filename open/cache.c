/* SPDX-License-Identifier: MIT */
/*
 * cache.c - the open policy's cache directory: made private (0700, the
 * daemon's user's, written by no one else, else ignored with a warning),
 * its files checked before use (regular, ours, reached without a symlink)
 * and sealed 0600, and their names: a SHA-256 of what they stand for.
 */
#include "open_i.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sffs/log.h"
#include "sffs/util.h"

/* Creates the directories of path up to its last '/' (0700: a cache
 * is private). */
int open_mkdir_p(const char *path)
{
	char tmp[PATH_MAX], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/*
 * The cache directory may hold only what this user wrote: made 0700 (with
 * missing parents), owned by the daemon's user, writable by no one else.
 * One that is not is ignored with a warning rather than refused: the
 * artifact is then indexed by streaming, which is safe, and a misconfigured
 * cache does not take the mount down on every node. Our own directory
 * readable by others is made 0700: indexes hold the plaintext of files
 * that may be 0600 in the artifact. 0, or 1 (no cache).
 */
static int cache_dir_private(const char *dir)
{
	char slash[PATH_MAX];
	struct stat st;
	int fd, rc = 1;

	if (snprintf(slash, sizeof(slash), "%s/", dir) >= (int)sizeof(slash))
		return 1;
	rc = open_mkdir_p(slash);
	if (rc < 0) {
		log_warn("cache %s: %s; indexes are not kept", dir,
			 strerror(-rc));
		return 1;
	}
	rc = 1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		log_warn("cache %s: %s; indexes are not kept", dir,
			 strerror(errno));
		goto out_close;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022)) {
		log_warn("cache %s is owned by uid %u with mode %04o: another "
			 "user could plant an index there, so it is not used "
			 "(make it owned by uid %u, mode 0700)",
			 dir, (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
		goto out_close;
	}
	if ((st.st_mode & 077) && fchmod(fd, 0700))
		log_warn("cache %s: chmod 0700: %s", dir, strerror(errno));
	rc = 0;
out_close:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* A cached index is used only if it is a regular file of ours that no
 * one else may write, reached without following a symlink. */
bool open_cache_file_ok(const char *cpath)
{
	struct stat st;
	bool ok;
	int fd = open(cpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (errno != ENOENT)
			log_warn("cached index %s: %s; not used", cpath,
				 errno == ELOOP ? "a symlink"
						: strerror(errno));
		return false;
	}
	ok = !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	     !(st.st_mode & 022);
	if (!ok)
		log_warn("cached index %s is not a private file of uid %u; "
			 "not used",
			 cpath, (unsigned)geteuid());
	close(fd);
	return ok;
}

/* The index just written: 0600, whatever the writer's umask said. */
void open_cache_file_seal(const char *cpath)
{
	int fd = open(cpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || fchmod(fd, 0600))
		log_warn("cached index %s: chmod 0600: %s", cpath,
			 strerror(errno));
	if (fd >= 0)
		close(fd);
}

int open_cache_dir(const struct open_cfg *cfg, char *dir, size_t len)
{
	if (cfg->cache_dir && !strcmp(cfg->cache_dir, "none"))
		return 1;
	if (cfg->cache_dir) {
		if (snprintf(dir, len, "%s", cfg->cache_dir) >= (int)len)
			return 1;
	} else if (util_default_cache_dir(dir, len)) {
		return 1;
	}
	return cache_dir_private(dir);
}

int open_cache_key(const char *dir, const char *prefix, const char *s1,
		   const char *s2, const char *s3, const char *suffix,
		   char *buf, size_t len)
{
	static const unsigned char sep = 0;
	const char *parts[] = {s1, s2, s3};
	unsigned char md[32];
	char hex[65];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);

	/* every part whole, however long (never cut), but the URL's query
	 * and fragment: a presigned URL signed again names the same
	 * object (which the size and validator parts pin) */
	for (int i = 0; ok && i < 3 && parts[i]; i++)
		ok = (i == 0 || EVP_DigestUpdate(ctx, &sep, 1)) &&
		     EVP_DigestUpdate(ctx, parts[i],
				      i ? strlen(parts[i])
					: strcspn(parts[i], "?#"));
	ok = ok && EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return 1;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return snprintf(buf, len, "%s/%s%s%s", dir, prefix, hex, suffix) >=
	       (int)len;
}

int open_cache_path(const char *dir, const char *url, uint64_t size,
		    const char *identity, char *buf, size_t len)
{
	char sz[24];

	snprintf(sz, sizeof(sz), "%" PRIu64, size);
	return open_cache_key(dir, "", url, sz, identity, ".sfidx", buf, len);
}

int open_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int open_write_private(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* O_EXCL: a planted name or symlink is never written through */
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	rc = fchmod(fd, 0600) ? -errno : 0;
	if (!rc)
		rc = open_write_all(fd, data, len);
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}
