/* SPDX-License-Identifier: MIT */
/*
 * offline.c - opening an artifact while no server answers (a node that
 * reboots with the origin down). Two things are kept in the cache
 * directory for that:
 *   - per artifact URL, what its last open pinned: size and validator
 *     (last-<sha256 of the URL>), so that the cached index, whose name
 *     derives from them, is found again without a request;
 *   - the published index itself, copied whole (with the signature that
 *     vouched for it, <index>.asc) by a thread of its own once the
 *     artifact is open, when a disk tier keeps the blocks it describes.
 * The copy is checked at each reuse as the published index was (its
 * header signature, or a whole-file one, and its binding), never trusted
 * because it is on disk.
 */
#include "open_i.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sffs/log.h"
#include "sigcache_i.h"

#define LAST_MAGIC "sffs-last 1\n"
#define LAST_MAX 2048u /* a record: magic, size, a bounded validator */

/* The record file of url in cdir. 0, or 1. */
static int last_path(const char *cdir, const char *url, char *buf, size_t len)
{
	return open_cache_key(cdir, "last-", url, NULL, NULL, "", buf, len);
}

/* Reads a private record file (at most LAST_MAX bytes) into buf. */
static int read_record(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	if (!open_cache_file_ok(path))
		return -ENOENT;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

void offline_record(const char *cdir, const char *source, struct fetch *f)
{
	char path[PATH_MAX], rec[LAST_MAX], old[LAST_MAX];
	int n, rc;

	if (!cdir || !cdir[0] || last_path(cdir, source, path, sizeof(path)))
		return;
	n = snprintf(rec, sizeof(rec),
		     LAST_MAGIC "size %" PRIu64 "\nidentity %s\n",
		     fetch_size(f), fetch_identity(f));
	if (n < 0 || (size_t)n >= sizeof(rec))
		return;
	/* written once per change, not once per attach */
	if (!read_record(path, old, sizeof(old)) && !strcmp(old, rec))
		return;
	rc = open_write_private(path, rec, (size_t)n);
	if (rc)
		log_warn("cannot record %s for offline use in %s: %s",
			 fetch_url_shown(f), cdir, strerror(-rc));
}

bool artifact_seen_here(const struct open_cfg *cfg, const char *source)
{
	char dir[PATH_MAX], path[PATH_MAX];

	return !open_cache_dir(cfg, dir, sizeof(dir)) &&
	       !last_path(dir, source, path, sizeof(path)) &&
	       open_cache_file_ok(path);
}

int offline_pinned(const struct open_cfg *cfg, const char *cdir,
		   struct fetch **out, char *why, size_t whylen)
{
	char path[PATH_MAX], rec[LAST_MAX], err[512], *id, *end;
	struct fetch_pinned pin = {0};
	int rc;

	*out = NULL;
	/* the URL as fetch_open resolves it is what the record was made
	 * under; a URL SOURCE is that URL */
	if (!cdir[0] || last_path(cdir, cfg->source, path, sizeof(path))) {
		snprintf(why, whylen, "no cache directory");
		return -ENOENT;
	}
	rc = read_record(path, rec, sizeof(rec));
	if (rc) {
		snprintf(why, whylen, "never opened on this node");
		return rc;
	}
	if (strncmp(rec, LAST_MAGIC "size ", strlen(LAST_MAGIC "size ")))
		goto bad;
	errno = 0;
	pin.size = strtoull(rec + strlen(LAST_MAGIC "size "), &end, 10);
	if (errno || strncmp(end, "\nidentity ", 10))
		goto bad;
	id = end + 10;
	end = strchr(id, '\n');
	if (!end || end[1])
		goto bad;
	*end = '\0';
	pin.identity = id;
	*out = fetch_open_pinned(cfg->source, &cfg->fo, &pin, err, sizeof(err));
	if (!*out) {
		snprintf(why, whylen, "%s", err);
		return -errno;
	}
	return 0;
bad:
	snprintf(why, whylen, "its record %s is malformed", path);
	return -EINVAL;
}

/* ---- the published index, copied ---- */

struct keep_job {
	struct fetch *idx; /* its own, pinned to the index served */
	char *cpath;
	char *sig; /* the signature that vouched for it, or NULL */
	size_t siglen;
	int fd;
};

static int keep_sink(void *arg, const void *data, size_t len)
{
	struct keep_job *j = arg;

	return open_write_all(j->fd, data, len);
}

static void keep_free(struct keep_job *j)
{
	fetch_free(j->idx);
	free(j->cpath);
	free(j->sig);
	free(j);
}

static void *keep_thread(void *arg)
{
	struct keep_job *j = arg;
	char tmp[PATH_MAX];
	int rc;

	pthread_setname_np(pthread_self(), "sffs-keepidx");
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", j->cpath) >=
	    (int)sizeof(tmp)) {
		keep_free(j);
		return NULL;
	}
	j->fd = mkostemp(tmp, O_CLOEXEC);
	rc = j->fd < 0 ? -errno : 0;
	if (!rc && fchmod(j->fd, 0600))
		rc = -errno;
	if (!rc)
		rc = fetch_stream(j->idx, 0, 0, keep_sink, j);
	if (j->fd >= 0 && close(j->fd) && !rc)
		rc = -errno;
	/* the signature first: an index without its own is never used
	 * under trust, one with a stale one is refused by it */
	if (!rc)
		rc = j->sig ? sigcache_store(j->cpath, j->sig, j->siglen) : 0;
	if (!rc && !j->sig)
		sigcache_drop(j->cpath);
	if (!rc && rename(tmp, j->cpath))
		rc = -errno;
	if (rc) {
		if (j->fd >= 0)
			unlink(tmp);
		log_warn("cannot keep the index %s in the cache: %s",
			 fetch_url_shown(j->idx), strerror(-rc));
	} else {
		log_info("index %s kept in %s for offline use",
			 fetch_url_shown(j->idx), j->cpath);
	}
	keep_free(j);
	return NULL;
}

void offline_keep_index(const char *cpath, const char *index_url,
			const struct fetch_opts *fo, struct fetch *served,
			const void *sig, size_t siglen)
{
	struct fetch_pinned pin = {.size = fetch_size(served),
				   .identity = fetch_identity(served)};
	struct keep_job *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t t;
	char err[512];

	if (!j)
		return;
	j->fd = -1;
	/* pinned to what was served: another index there since is a
	 * change, and the copy fails instead of mixing the two */
	j->idx = fetch_open_pinned(index_url, fo, &pin, err, sizeof(err));
	j->cpath = strdup(cpath);
	j->sig = sig ? malloc(siglen) : NULL;
	if (!j->idx || !j->cpath || (sig && !j->sig)) {
		keep_free(j);
		return;
	}
	if (sig)
		memcpy(j->sig, sig, siglen);
	j->siglen = siglen;
	fetch_adopt_validators(j->idx, false);
	if (pthread_attr_init(&attr)) {
		keep_free(j);
		return;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, keep_thread, j))
		keep_free(j);
	pthread_attr_destroy(&attr);
}
