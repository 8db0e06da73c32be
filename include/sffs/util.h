/* SPDX-License-Identifier: MIT */
/*
 * util.h - sizes in human units, a terminal progress line, and what of a
 * URL or an untrusted name may be shown.
 */
#ifndef SFFS_UTIL_H
#define SFFS_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parses "4096", "64K", "256M", "2G" (binary units, optional "iB"/"B").
 * 0 and *out, or -EINVAL (junk, overflow). */
int util_parse_size(const char *s, uint64_t *out);
/* "1.4 GiB" into buf; returns buf. */
char *util_format_size(uint64_t n, char *buf, size_t len);

/*
 * Replacing a file atomically: util_atomic_open creates a temporary file
 * (mode 0644) beside path and opens it as a->f; util_atomic_finish(a, rc)
 * flushes, fsyncs and closes it, then renames it over path if rc is 0 and
 * everything went well, or removes it. It returns the first error (rc if
 * non-zero), 0 on success. Readers of path see the old file or the new
 * one, never half of one.
 */
struct util_atomic {
	FILE *f;
	const char *path;
	char *tmp;
};
int util_atomic_open(struct util_atomic *a, const char *path);
int util_atomic_finish(struct util_atomic *a, int rc);

/*
 * What a log line, the mount's fsname or an xattr may show of a URL:
 * scheme://host[:port]/path, without the userinfo (replaced by
 * UTIL_REDACTED "@"), the query and the fragment (replaced by "?"
 * UTIL_REDACTED or "#" UTIL_REDACTED), where presigned URLs and tokens keep
 * their secrets. A string without "scheme://" (a local path) is copied as
 * is. Truncated to fit len; never shows a removed byte. Returns buf.
 */
#define UTIL_REDACTED "..."
#define UTIL_URL_SHOWN_MAX 1024 /* a buffer size that fits any sane URL */
char *util_url_redact(const char *url, char *buf, size_t len);
/* Every URL (scheme://... up to white space or a quote) inside the text s
 * redacted as util_url_redact does; one too long to parse loses all past
 * its "scheme://". log_msg applies it to every line. Returns buf. */
char *util_text_redact(const char *s, char *buf, size_t len);

/*
 * An untrusted string (a member name, a link target, a server's reason)
 * made safe for one log line: control characters, DEL, backslash and bytes
 * that are not valid UTF-8 become \xHH; valid UTF-8 is kept. Truncated to
 * fit len, never inside a character or an escape. log_msg applies it to
 * every line. Returns buf.
 */
char *util_escape(const char *s, char *buf, size_t len);

/* The daemon's default cache directory (root: /var/cache/sffs, others
 * $XDG_CACHE_HOME/sffs or $HOME/.cache/sffs) into buf: 0, or
 * -ENAMETOOLONG / -ENOENT (no home). Indexes and the disk tier share it. */
int util_default_cache_dir(char *buf, size_t len);

/* Initialises c for pthread_cond_timedwait on CLOCK_MONOTONIC deadlines
 * (immune to clock steps). */
void util_cond_init_monotonic(pthread_cond_t *c);

/*
 * A one-line progress display on stderr: bytes done / total, percent,
 * rate and ETA, redrawn at most 5 times a second. Draws only when stderr
 * is a terminal (or force is set). Single threaded.
 */
struct progress;
struct progress *progress_new(const char *label, uint64_t total, bool force);
void progress_update(struct progress *p, uint64_t done);
/* Draws the final state, ends the line, frees p. NULL does nothing. */
void progress_finish(struct progress *p);

#endif
