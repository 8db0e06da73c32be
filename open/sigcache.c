/* SPDX-License-Identifier: MIT */
/*
 * sigcache.c - a published index signed over the whole file, and the
 * signature kept beside a cached index (sigcache_i.h says what each
 * protects against, and what not).
 */
#include "open_i.h"
#include "sigcache_i.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sffs/log.h"
#include "sffs/util.h"

/* The bound on what a whole-index signature makes a node fetch. */
static size_t whole_limit(uint64_t artifact_size)
{
	uint64_t limit = SIGS_WHOLE_BASE + artifact_size / SIGS_WHOLE_DIV;

	return limit > SIZE_MAX ? SIZE_MAX : (size_t)limit;
}

int sigs_whole_index(const struct open_cfg *cfg, const char *where,
		     const char *sig_url, const void *raw,
		     const struct index_header *h, const void *sig,
		     size_t siglen, struct trust_result *res, char *why,
		     size_t whylen)
{
	size_t limit = whole_limit(h->artifact_size), len = 0;
	char err[512], shown[400], *buf = NULL;
	int rc;

	util_url_redact(where, shown, sizeof(shown));
	rc = fetch_document(where, &cfg->fo, 0, limit, &buf, &len, err,
			    sizeof(err));
	if (rc == -EFBIG) {
		snprintf(why, whylen,
			 "signature %s covers neither the index header nor "
			 "a whole index of at most %zu bytes (the most "
			 "fetched to verify one for this artifact): sign "
			 "the header with `sffs-index --sign-with KEY`",
			 sig_url, limit);
		return -EKEYREJECTED;
	}
	if (rc) {
		snprintf(why, whylen, "index %s: %s", shown, err);
		return rc;
	}
	rc = -EKEYREJECTED;
	if (trust_verify_detached(cfg->trust, buf, len, sig, siglen, res) !=
	    TRUST_OK)
		snprintf(why, whylen,
			 "signature %s: %s, over the index header and over "
			 "the whole index",
			 sig_url, res->detail);
	else if (len < h->hlen || memcmp(buf, raw, h->hlen))
		/* the server gave another header to the loader's read */
		snprintf(why, whylen,
			 "index %s changed between two reads: the header "
			 "read is not the one its signature covers",
			 shown);
	else
		rc = 0;
	free(buf);
	if (!rc)
		log_warn("%s is signed over the whole file: %zu bytes fetched "
			 "to verify it; `sffs-index --sign-with KEY` signs the "
			 "header alone and keeps the cold path small",
			 shown, len);
	return rc;
}

static int asc_path(const char *cpath, char *buf, size_t len)
{
	return snprintf(buf, len, "%s.asc", cpath) >= (int)len ? -ENAMETOOLONG
							       : 0;
}

int sigcache_store(const char *cpath, const void *sig, size_t siglen)
{
	char path[PATH_MAX];
	int rc = asc_path(cpath, path, sizeof(path));

	return rc ? rc : open_write_private(path, sig, siglen);
}

void sigcache_drop(const char *cpath)
{
	char path[PATH_MAX];

	if (!asc_path(cpath, path, sizeof(path)) && unlink(path) &&
	    errno != ENOENT)
		log_warn("cannot remove %s: %s", path, strerror(errno));
}

/* Whether fd is a private regular file of ours, of 1..TRUST_MAX_SIG
 * bytes: its size, or -errno with why. */
static ssize_t private_size(int fd, const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (fstat(fd, &st)) {
		snprintf(why, whylen, "its signature %s: %s", path,
			 strerror(errno));
		return -EKEYREJECTED;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022)) {
		snprintf(why, whylen,
			 "its signature %s is not a private file of uid %u",
			 path, (unsigned)geteuid());
		return -EKEYREJECTED;
	}
	if (st.st_size <= 0 || st.st_size > (off_t)TRUST_MAX_SIG) {
		snprintf(why, whylen,
			 "its signature %s has %lld bytes, not 1 to %u", path,
			 (long long)st.st_size, TRUST_MAX_SIG);
		return -EKEYREJECTED;
	}
	return (ssize_t)st.st_size;
}

/* The kept signature at path into a new buffer of *len bytes. */
static int read_kept(const char *path, char **sig, size_t *len, char *why,
		     size_t whylen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t size, n;
	int rc = -EKEYREJECTED;

	*sig = NULL;
	if (fd < 0) {
		snprintf(why, whylen, "%s %s",
			 errno == ENOENT ? "no signature kept beside it at"
					 : "its signature",
			 path);
		if (errno != ENOENT)
			snprintf(
			    why + strlen(why), whylen - strlen(why), ": %s",
			    errno == ELOOP ? "a symlink" : strerror(errno));
		return rc;
	}
	size = private_size(fd, path, why, whylen);
	if (size < 0)
		goto out_close;
	*sig = malloc((size_t)size);
	if (!*sig) {
		rc = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		goto out_close;
	}
	n = pread(fd, *sig, (size_t)size, 0);
	if (n != size) {
		snprintf(why, whylen, "its signature %s: short read", path);
		free(*sig);
		*sig = NULL;
		goto out_close;
	}
	*len = (size_t)size;
	rc = 0;
out_close:
	close(fd);
	return rc;
}

int sigcache_check(const struct trust *t, const char *cpath, const char *fpr,
		   char *why, size_t whylen)
{
	struct trust_result r;
	char path[PATH_MAX], *sig = NULL;
	size_t len = 0;
	int rc;

	rc = asc_path(cpath, path, sizeof(path));
	if (rc) {
		snprintf(why, whylen, "no signature path beside %s", cpath);
		return -EKEYREJECTED;
	}
	rc = read_kept(path, &sig, &len, why, whylen);
	if (rc)
		return rc;
	/* the key only: the artifact it signed is not re-hashed */
	rc = -EKEYREJECTED;
	if (trust_check_signature_key(t, sig, len, &r) != TRUST_OK)
		snprintf(why, whylen, "its signature %s: %s", path, r.detail);
	else if (strcmp(r.fpr, fpr))
		snprintf(why, whylen,
			 "its record names key %s, the signature kept at %s "
			 "is by key %s",
			 fpr, path, r.fpr);
	else
		rc = 0;
	free(sig);
	return rc;
}

int sigcache_load(const char *cpath, char **sig, size_t *len, char *why,
		  size_t whylen)
{
	char path[PATH_MAX];

	*sig = NULL;
	if (asc_path(cpath, path, sizeof(path))) {
		snprintf(why, whylen, "no signature path beside %s", cpath);
		return -EKEYREJECTED;
	}
	return read_kept(path, sig, len, why, whylen);
}
