/* SPDX-License-Identifier: MIT */
/*
 * disk.c - the disk tier of verified blocks (disk.h): one file per block,
 * written under a temporary name and renamed into place, checked against
 * its digest on every read, evicted by mtime under a quota counted from
 * the directory itself.
 *
 * Why a temporary name and rename, not O_TMPFILE + linkat: linkat of an
 * unnamed file needs /proc or CAP_DAC_READ_SEARCH and cannot replace a
 * bad file in place; rename works on every filesystem (tmpfs included)
 * and is atomic. Why no fsync: a file the crash tore fails its digest
 * when read and is deleted, so a block is never served wrong, and a
 * fetcher that fsyncs every block would be as slow as the disk's flush.
 */
#include "sffs/disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sffs/log.h"
#include "sffs/util.h"

#define DISK_FANOUT 256
#define NAME_MAX_LEN 96 /* 64 hex, '-', 20 digits, NUL */

struct disk {
	int root; /* DIR/blocks */
	uint64_t quota, low;
	atomic_uint_fast64_t used; /* bytes, as last counted plus puts since */
	atomic_uint_fast64_t seq;  /* temporary names of this process */
	/* bytes this process wrote since its last scan: past quota - low,
	 * it counts again, so that N processes overshoot by N * 10% at most */
	atomic_uint_fast64_t since_scan;
	pthread_mutex_t evict_lock; /* one scan at a time in this process */
	unsigned salt;		    /* in temporary names */
	atomic_uint_fast64_t hits, misses, bytes_read, writes, bytes_written;
	atomic_uint_fast64_t verify_fail, evictions, scans, errors;
};

/* A block file found by a scan. */
struct dfile {
	int64_t mtime_ns;
	uint64_t size;
	unsigned char sub;
	char name[NAME_MAX_LEN];
};

static unsigned fan(const unsigned char ident[32], uint64_t idx)
{
	return (unsigned)((ident[0] + idx) % DISK_FANOUT);
}

static void block_name(const unsigned char ident[32], uint64_t idx,
		       char name[NAME_MAX_LEN])
{
	for (int k = 0; k < 32; k++)
		snprintf(name + 2 * k, 3, "%02x", ident[k]);
	snprintf(name + 64, NAME_MAX_LEN - 64, "-%" PRIu64, idx);
}

/* Rate-limited logging of I/O errors: the 1st, 2nd, 4th, 8th, ... */
static void count_error(struct disk *d, const char *what, int err)
{
	uint64_t n = atomic_fetch_add(&d->errors, 1) + 1;

	if (!(n & (n - 1)))
		log_warn("disk cache: %s: %s (%" PRIu64 " errors so far)", what,
			 strerror(err), n);
}

/* ---- the directory ---- */

/* mkdir -p dir (0700), then dir/blocks. */
static int make_dirs(const char *dir)
{
	char tmp[PATH_MAX];
	size_t n;

	if (snprintf(tmp, sizeof(tmp), "%s/blocks", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	n = strlen(tmp);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		if (i < n)
			tmp[i] = '/';
	}
	return 0;
}

/* dir/blocks, opened without following a symlink, ours and writable by no
 * one else (made 0700 if readable by others: blocks hold file contents
 * that may be private). An fd or -errno. */
static int open_root(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/blocks", dir);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		int err = errno;

		log_err("disk cache %s: %s", path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022)) {
		log_err("disk cache %s is owned by uid %u with mode %04o: "
			"another user could plant blocks there (make it owned "
			"by uid %u, mode 0700)",
			path, (unsigned)st.st_uid,
			(unsigned)(st.st_mode & 07777), (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	if ((st.st_mode & 077) && fchmod(fd, 0700))
		log_warn("disk cache %s: chmod 0700: %s", path,
			 strerror(errno));
	return fd;
}

/* The fan-out directory sub, made when missing (create). An fd or -errno. */
static int open_sub(struct disk *d, unsigned sub, bool create)
{
	char name[4];
	int fd;

	snprintf(name, sizeof(name), "%02x", sub);
	fd = openat(d->root, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(d->root, name, 0700) && errno != EEXIST)
			return -errno;
		fd = openat(d->root, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

/* ---- scanning and eviction ---- */

static bool is_block_name(const char *n)
{
	size_t len = strlen(n), k;

	if (len < 66 || len >= NAME_MAX_LEN || n[64] != '-')
		return false;
	for (k = 0; k < 64; k++)
		if (!((n[k] >= '0' && n[k] <= '9') ||
		      (n[k] >= 'a' && n[k] <= 'f')))
			return false;
	for (k = 65; k < len; k++)
		if (n[k] < '0' || n[k] > '9')
			return false;
	return true;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* A temporary file of a writer that died: removed. */
static void drop_stale_tmp(int fd, const char *name, const struct stat *st)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec - st->st_mtim.tv_sec > DISK_TMP_STALE_S)
		unlinkat(fd, name, 0);
}

/* Appends fan-out directory sub's block files to *v (n used, *cap). */
static int scan_sub(struct disk *d, unsigned sub, struct dfile **v, size_t *n,
		    size_t *cap)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd = open_sub(d, sub, false);

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(dir))) {
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		if (!strncmp(de->d_name, ".tmp-", 5)) {
			drop_stale_tmp(fd, de->d_name, &st);
			continue;
		}
		if (!is_block_name(de->d_name))
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? 2 * *cap : 1024;
			struct dfile *nv = realloc(*v, nc * sizeof(**v));

			if (!nv) {
				closedir(dir);
				return -ENOMEM;
			}
			*v = nv;
			*cap = nc;
		}
		(*v)[*n].mtime_ns = ts_ns(&st.st_mtim);
		(*v)[*n].size = (uint64_t)st.st_size;
		(*v)[*n].sub = (unsigned char)sub;
		snprintf((*v)[*n].name, NAME_MAX_LEN, "%s", de->d_name);
		(*n)++;
	}
	closedir(dir);
	return 0;
}

static int by_mtime(const void *a, const void *b)
{
	const struct dfile *x = a, *y = b;

	return (x->mtime_ns > y->mtime_ns) - (x->mtime_ns < y->mtime_ns);
}

/* Deletes the oldest of v[0..n) until total is at most the low-water
 * mark; returns what is left. */
static uint64_t evict_oldest(struct disk *d, struct dfile *v, size_t n,
			     uint64_t total)
{
	qsort(v, n, sizeof(*v), by_mtime);
	for (size_t k = 0; k < n && total > d->low; k++) {
		int fd = open_sub(d, v[k].sub, false);

		if (fd < 0)
			continue;
		if (!unlinkat(fd, v[k].name, 0))
			atomic_fetch_add(&d->evictions, 1);
		/* ENOENT: another process evicted it first; gone either way */
		total -= v[k].size;
		close(fd);
	}
	return total;
}

/* Counts the directory and evicts when over the quota (lock held). */
static int scan_locked(struct disk *d)
{
	struct dfile *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	int rc = 0;

	atomic_fetch_add(&d->scans, 1);
	atomic_store(&d->since_scan, 0);
	for (unsigned sub = 0; sub < DISK_FANOUT && !rc; sub++)
		rc = scan_sub(d, sub, &v, &n, &cap);
	if (rc) {
		count_error(d, "scanning the directory", -rc);
		goto out;
	}
	for (size_t k = 0; k < n; k++)
		total += v[k].size;
	if (total > d->quota)
		total = evict_oldest(d, v, n, total);
	atomic_store(&d->used, total);
out:
	free(v);
	return rc;
}

int disk_evict(struct disk *d)
{
	int rc;

	if (pthread_mutex_trylock(&d->evict_lock))
		return 0;
	rc = scan_locked(d);
	pthread_mutex_unlock(&d->evict_lock);
	return rc;
}

/* ---- the object ---- */

struct disk *disk_new(const char *dir, uint64_t quota)
{
	struct disk *d;
	int rc;

	if (!quota) {
		errno = EINVAL;
		return NULL;
	}
	rc = make_dirs(dir);
	if (rc) {
		log_err("disk cache %s: %s", dir, strerror(-rc));
		errno = -rc;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->root = -1;
	pthread_mutex_init(&d->evict_lock, NULL);
	d->quota = quota;
	if (getrandom(&d->salt, sizeof(d->salt), GRND_NONBLOCK) !=
	    sizeof(d->salt))
		d->salt = (unsigned)time(NULL);
	d->low =
	    quota / 100 * DISK_LOW_WATER + quota % 100 * DISK_LOW_WATER / 100;
	d->root = open_root(dir);
	if (d->root < 0) {
		rc = d->root;
		goto fail;
	}
	rc = disk_evict(d);
	if (rc)
		goto fail;
	return d;
fail:
	disk_free(d);
	errno = -rc;
	return NULL;
}

void disk_free(struct disk *d)
{
	if (!d)
		return;
	if (d->root >= 0)
		close(d->root);
	pthread_mutex_destroy(&d->evict_lock);
	free(d);
}

void disk_get_stats(struct disk *d, struct disk_stats *st)
{
	st->hits = atomic_load(&d->hits);
	st->misses = atomic_load(&d->misses);
	st->bytes_read = atomic_load(&d->bytes_read);
	st->writes = atomic_load(&d->writes);
	st->bytes_written = atomic_load(&d->bytes_written);
	st->verify_fail = atomic_load(&d->verify_fail);
	st->evictions = atomic_load(&d->evictions);
	st->scans = atomic_load(&d->scans);
	st->errors = atomic_load(&d->errors);
	st->used = atomic_load(&d->used);
	st->quota = d->quota;
}

/* ---- blocks ---- */

static int read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r =
		    pread(fd, (char *)buf + done, len - done, (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EBADMSG; /* shrank under us: torn */
		done += (size_t)r;
	}
	return 0;
}

static bool digest_ok(const void *buf, size_t len,
		      const unsigned char digest[32])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	return EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) &&
	       mdlen == 32 && !memcmp(md, digest, 32);
}

/* Reads and checks an open block file: 0, -EBADMSG or -errno. */
static int read_block(int fd, void *buf, size_t len,
		      const unsigned char digest[32])
{
	struct stat st;
	struct timespec now;
	int rc;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != len)
		return -EBADMSG;
	rc = read_all(fd, buf, len);
	if (rc)
		return rc;
	if (!digest_ok(buf, len, digest))
		return -EBADMSG;
	/* recency for every process's eviction, without a write per hit */
	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec - st.st_mtim.tv_sec >= DISK_TOUCH_S)
		futimens(fd, NULL);
	return 0;
}

static int get_result(struct disk *d, int rc, size_t len)
{
	if (rc) {
		atomic_fetch_add(&d->misses, 1);
		return rc;
	}
	atomic_fetch_add(&d->hits, 1);
	atomic_fetch_add(&d->bytes_read, len);
	return 0;
}

int disk_get(struct disk *d, const unsigned char ident[32], uint64_t idx,
	     void *buf, size_t len, const unsigned char digest[32])
{
	char name[NAME_MAX_LEN], path[NAME_MAX_LEN + 4];
	int fd, rc;

	if (!len || len > DISK_MAX_BLOCK)
		return get_result(d, -EINVAL, len);
	block_name(ident, idx, name);
	/* one open: the fan-out directory is ours, inside our 0700 root */
	snprintf(path, sizeof(path), "%02x/%s", fan(ident, idx), name);
	fd = openat(d->root, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	rc = fd < 0 ? -errno : read_block(fd, buf, len, digest);
	if (fd >= 0)
		close(fd);
	if (rc == -EBADMSG || rc == -ELOOP) {
		/* torn by a crash, damaged, or not ours: never served */
		atomic_fetch_add(&d->verify_fail, 1);
		log_warn("disk cache: block file %s failed its SHA-256 check: "
			 "deleted, fetching it again",
			 path);
		unlinkat(d->root, path, 0);
		rc = -EBADMSG;
	} else if (rc && rc != -ENOENT) {
		count_error(d, "reading a block", -rc);
	}
	return get_result(d, rc, len);
}

static int write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = write(fd, (const char *)buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
	}
	return 0;
}

/* Writes buf under a fresh temporary name in sub, renamed to name. */
static int write_block(struct disk *d, int sub, const char *name,
		       const void *buf, size_t len)
{
	char tmp[64];
	int fd, rc;

	/* pid and a random salt: unique across pid namespaces too */
	snprintf(tmp, sizeof(tmp), ".tmp-%ld-%08x-%" PRIu64, (long)getpid(),
		 d->salt, (uint64_t)atomic_fetch_add(&d->seq, 1));
	fd = openat(sub, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, buf, len);
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && renameat(sub, tmp, sub, name))
		rc = -errno;
	if (rc)
		unlinkat(sub, tmp, 0);
	return rc;
}

int disk_put(struct disk *d, const unsigned char ident[32], uint64_t idx,
	     const void *buf, size_t len)
{
	char name[NAME_MAX_LEN];
	int sub, rc;

	if (!len || len > DISK_MAX_BLOCK || len > d->low)
		return -E2BIG;
	block_name(ident, idx, name);
	sub = open_sub(d, fan(ident, idx), true);
	if (sub < 0) {
		count_error(d, "making a directory", -sub);
		return sub;
	}
	rc = write_block(d, sub, name, buf, len);
	close(sub);
	if (rc) {
		count_error(d, "writing a block", -rc);
		return rc;
	}
	atomic_fetch_add(&d->writes, 1);
	atomic_fetch_add(&d->bytes_written, len);
	if (atomic_fetch_add(&d->used, len) + len > d->quota ||
	    atomic_fetch_add(&d->since_scan, len) + len > d->quota - d->low)
		disk_evict(d);
	return 0;
}
