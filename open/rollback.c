/* SPDX-License-Identifier: MIT */
/*
 * rollback.c - refuse an older signed build served under a name a newer
 * one was seen under (open_i.h).
 *
 * Signatures vouch for bytes, not for being the newest: whoever controls
 * a bucket can serve last month's validly signed build again. Each name
 * gets one small file in the cache directory, DIR/rollback-<SHA-256 of
 * the name>, holding the newest time seen and that artifact's SHA-256
 * (so the same artifact, however it was verified, is never a rollback):
 *   sffs-rollback 1
 *   <seconds since the epoch> <64 hex digits>
 *   <the name, for whoever reads it>
 * One file a name, not one for all: attaches of different artifacts run
 * in parallel and never contend.
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
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sffs/log.h"

#define RECORD_MAX 2048 /* bytes of a record read; a real one is < 400 */
#define RECORD_MAGIC "sffs-rollback 1\n"

struct record {
	uint64_t when;
	char sha[65]; /* hex */
};

static void hex(const unsigned char *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* DIR/rollback-<SHA-256 of key, hex>: 0, or 1 if it does not fit. */
static int record_path(const char *dir, const char *key, char *buf, size_t len)
{
	unsigned char md[32];
	char h[65];

	if (!EVP_Digest(key, strlen(key), md, NULL, EVP_sha256(), NULL))
		return 1;
	hex(md, sizeof(md), h);
	return snprintf(buf, len, "%s/rollback-%s", dir, h) >= (int)len;
}

/* "sffs-rollback 1\n<when> <64 hex>\n...": 1 and *r, or -EINVAL. */
static int parse_record(const char *buf, struct record *r)
{
	const char *p = buf + strlen(RECORD_MAGIC);
	char *end;

	if (strncmp(buf, RECORD_MAGIC, strlen(RECORD_MAGIC)) || *p < '0' ||
	    *p > '9')
		return -EINVAL;
	errno = 0;
	r->when = strtoull(p, &end, 10);
	if (errno || *end != ' ' || strspn(end + 1, "0123456789abcdef") != 64 ||
	    end[65] != '\n')
		return -EINVAL;
	memcpy(r->sha, end + 1, 64);
	r->sha[64] = '\0';
	return 1;
}

/* 1 and *r if there is a record, 0 if none, -errno if it cannot be
 * believed (not a private regular file of ours, or malformed). */
static int read_record(const char *path, struct record *r)
{
	char buf[RECORD_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = -EINVAL;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022)) {
		rc = -EPERM;
		goto out_close;
	}
	n = read(fd, buf, RECORD_MAX);
	if (n < 0) {
		rc = -errno;
		goto out_close;
	}
	buf[n] = '\0';
	rc = parse_record(buf, r);
out_close:
	close(fd);
	return rc;
}

/* The record, written to a temporary name (mkstemp: 0600, O_EXCL, so
 * never through a planted link) and renamed over path. 0 or -errno. */
static int write_record(const char *path, const char *key,
			const struct record *r)
{
	char text[RECORD_MAX];
	int len =
	    snprintf(text, sizeof(text), RECORD_MAGIC "%" PRIu64 " %s\n%s\n",
		     r->when, r->sha, key);

	if (len < 0 || len >= (int)sizeof(text))
		return -ENAMETOOLONG;
	return open_write_private(path, text, (size_t)len);
}

static const char *iso8601(uint64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%" PRIu64, t);
	return buf;
}

/* Older than the record and another artifact: refused unless allowed. */
static int judge(const char *key, const struct record *seen,
		 const struct record *now, bool allow, const char *path,
		 char *why, size_t whylen)
{
	char a[32], b[32];

	iso8601(now->when, a, sizeof(a));
	iso8601(seen->when, b, sizeof(b));
	if (allow) {
		log_warn("%s: signed %s, older than the %s seen before under "
			 "this name: a rollback, allowed by -o allow_rollback",
			 key, a, b);
		return 0;
	}
	snprintf(why, whylen,
		 "%s: signed %s, older than the %s seen before under this "
		 "name: refused as a rollback (if serving the older build is "
		 "intended, mount with -o allow_rollback, or remove %s)",
		 key, a, b, path);
	return -EKEYREJECTED;
}

int rollback_check(const char *dir, const char *key, uint64_t when,
		   const unsigned char sha256[32], bool allow, char *why,
		   size_t whylen)
{
	struct record seen = {0}, now = {.when = when};
	char path[PATH_MAX];
	int rc;

	if (!dir || !when) {
		log_debug("%s: no rollback check (%s)", key,
			  dir ? "no signed time" : "no cache directory");
		return 0;
	}
	if (record_path(dir, key, path, sizeof(path)))
		return 0;
	hex(sha256, 32, now.sha);
	rc = read_record(path, &seen);
	if (rc < 0) {
		log_warn("rollback record %s: %s; rewritten", path,
			 rc == -EPERM ? "not a private file of ours"
				      : strerror(-rc));
	} else if (rc == 1 && strcmp(seen.sha, now.sha) && when < seen.when) {
		return judge(key, &seen, &now, allow, path, why, whylen);
	} else if (rc == 1 && when <= seen.when) {
		return 0; /* nothing newer to record */
	}
	rc = write_record(path, key, &now);
	if (rc)
		log_warn("rollback record %s: %s; not kept", path,
			 strerror(-rc));
	return 0;
}
