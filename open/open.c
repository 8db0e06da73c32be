/* SPDX-License-Identifier: MIT */
#include "sffs/open.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sffs/log.h"
#include "sffs/util.h"

/* Root's cache is system-wide; anyone else's is per user. */
static int default_cache_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		return snprintf(buf, len, "/var/cache/sffs") >= (int)len;
	if (xdg && *xdg)
		return snprintf(buf, len, "%s/sffs", xdg) >= (int)len;
	if (home && *home)
		return snprintf(buf, len, "%s/.cache/sffs", home) >= (int)len;
	return 1;
}

/* DIR/<sha256 of URL, size and identity>.sfidx: a changed artifact gets
 * another name, so a stale index is never used. */
static int cache_path(const struct open_cfg *cfg, struct fetch *f, char *buf,
		      size_t len)
{
	static const unsigned char sep = 0;
	unsigned char md[32];
	char dir[PATH_MAX - 80], hex[65], size[24];
	EVP_MD_CTX *ctx;
	int i, ok;

	if (cfg->cache_dir && !strcmp(cfg->cache_dir, "none"))
		return 1;
	if (cfg->cache_dir)
		snprintf(dir, sizeof(dir), "%s", cfg->cache_dir);
	else if (default_cache_dir(dir, sizeof(dir)))
		return 1;
	/* The whole URL, size and identity, however long: never cut. */
	snprintf(size, sizeof(size), "%" PRIu64, fetch_size(f));
	ctx = EVP_MD_CTX_new();
	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, fetch_url(f), strlen(fetch_url(f))) &&
	     EVP_DigestUpdate(ctx, &sep, 1) &&
	     EVP_DigestUpdate(ctx, size, strlen(size)) &&
	     EVP_DigestUpdate(ctx, &sep, 1) &&
	     EVP_DigestUpdate(ctx, fetch_identity(f),
			      strlen(fetch_identity(f))) &&
	     EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return 1;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return snprintf(buf, len, "%s/%s.sfidx", dir, hex) >= (int)len;
}

/* Tries the index at where; quiet about a missing one when asked. */
static int try_index(const struct open_cfg *cfg, struct archive_opts *ao,
		     const char *where, bool missing_ok, struct opened *o)
{
	char err[1024];

	o->idx = fetch_open(where, &cfg->fo, err, sizeof(err));
	if (!o->idx) {
		/* S3 answers 403 for a missing key where listing is denied */
		if (missing_ok && (errno == ENOENT || errno == EACCES))
			log_debug("no index at %s", where);
		else
			log_warn("index %s: %s", where, err);
		return -ENOENT;
	}
	o->ar = archive_open_index(o->f, o->idx, ao, err, sizeof(err));
	if (!o->ar) {
		log_warn("%s; indexing the artifact instead", err);
		fetch_free(o->idx);
		o->idx = NULL;
		return -EINVAL;
	}
	return 0;
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)total;
	progress_update(arg, done);
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* One streaming pass; then the index goes to the cache for next time. */
static int build_index(const struct open_cfg *cfg, struct archive_opts *ao,
		       const char *cpath, struct opened *o)
{
	struct progress *pg;
	char err[1024];
	int rc;

	pg = cfg->quiet ? NULL
			: progress_new("indexing", fetch_size(o->f), false);
	ao->progress = on_progress;
	ao->progress_arg = pg;
	o->ar = archive_open(o->f, ao, err, sizeof(err));
	progress_finish(pg);
	ao->progress = NULL;
	if (!o->ar) {
		log_err("%s", err);
		return errno == ENOMEM ? -ENOMEM : -EIO;
	}
	o->how = "indexed";
	if (!cpath)
		return 0;
	rc = mkdir_p(cpath);
	if (!rc)
		rc = archive_write_index(o->ar, cpath, NULL);
	if (rc)
		log_warn("cannot keep the index in %s: %s", cpath,
			 strerror(-rc));
	else
		log_debug("index kept in %s", cpath);
	return 0;
}

int artifact_open(const struct open_cfg *cfg, struct archive_opts *ao,
		  struct opened *o)
{
	char err[1024], cpath[PATH_MAX], *published = NULL;
	bool cached;
	int rc;

	memset(o, 0, sizeof(*o));
	o->f = fetch_open(cfg->source, &cfg->fo, err, sizeof(err));
	if (!o->f) {
		int e = errno ? errno : EIO;

		log_err("%s", err);
		return -e;
	}
	cached = !cache_path(cfg, o->f, cpath, sizeof(cpath));
	if (cached && access(cpath, R_OK) == 0 &&
	    !try_index(cfg, ao, cpath, true, o)) {
		o->how = "cache";
		return 0;
	}
	if (!cfg->index || strcmp(cfg->index, "none")) {
		/* ".sfidx" goes on the path: a presigned URL keeps its query */
		if (!cfg->index)
			published =
			    fetch_sibling_url(fetch_url(o->f), ".sfidx");
		if (!cfg->index && !published)
			log_warn("no index URL beside %s: %s", fetch_url(o->f),
				 strerror(errno));
		else if (!try_index(cfg, ao,
				    cfg->index ? cfg->index : published,
				    !cfg->index, o)) {
			free(published);
			o->how = "published index";
			return 0;
		}
		free(published);
	}
	rc = build_index(cfg, ao, cached ? cpath : NULL, o);
	if (rc)
		artifact_close(o);
	return rc;
}

void artifact_close(struct opened *o)
{
	archive_free(o->ar);
	fetch_free(o->idx);
	fetch_free(o->f);
	memset(o, 0, sizeof(*o));
}
