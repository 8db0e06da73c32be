/* SPDX-License-Identifier: MIT */
/*
 * file.c - the local-file backend: pread(2), identity = size + mtime (ns) +
 * inode, re-checked with fstat(2) after every read.
 */
#include "fetch_i.h"

#include "sffs/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_STREAM_CHUNK (256 * 1024)

struct file_priv {
	int fd;
	struct stat st; /* pinned at open; read only afterwards */
};

static int file_open(struct fetch *f, char *err, size_t errlen)
{
	struct file_priv *p = calloc(1, sizeof(*p));
	char *abs;

	if (!p)
		return -ENOMEM;
	p->fd = -1;
	f->priv = p;
	p->fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0 || fstat(p->fd, &p->st) < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot open %s: %s", f->path,
			 strerror(e));
		return -e;
	}
	if (!S_ISREG(p->st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", f->path);
		return -EINVAL;
	}
	abs = realpath(f->path, NULL);
	if (!abs) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", f->path, strerror(e));
		return -e;
	}
	if (asprintf(&f->url, "file://%s", abs) < 0)
		f->url = NULL; /* asprintf leaves it undefined on failure */
	fetch_set_shown(f);
	free(abs);
	if (f->url &&
	    asprintf(&f->identity, "%lld.%09ld-%llu",
		     (long long)p->st.st_mtim.tv_sec, p->st.st_mtim.tv_nsec,
		     (unsigned long long)p->st.st_ino) < 0)
		f->identity = NULL;
	if (!f->url || !f->identity) {
		snprintf(err, errlen, "%s: %s", f->path, strerror(ENOMEM));
		return -ENOMEM;
	}
	f->size = (uint64_t)p->st.st_size;
	return 0;
}

static void file_close(struct fetch *f)
{
	struct file_priv *p = f->priv;

	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	free(p);
	f->priv = NULL;
}

/* Same size and file: a new mtime is adopted (fetch_adopt) when it is
 * not the pinned one. */
static int file_adopt(struct fetch *f, const struct stat *st)
{
	struct file_priv *p = f->priv;
	char now[64];

	if (st->st_mtim.tv_sec == p->st.st_mtim.tv_sec &&
	    st->st_mtim.tv_nsec == p->st.st_mtim.tv_nsec)
		return 0;
	snprintf(now, sizeof(now), "%lld.%09ld-%llu",
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
		 (unsigned long long)st->st_ino);
	return fetch_adopt(f, "mtime", now);
}

/* 0 if the open file still is the one pinned, else -EIO (logged once);
 * under adoption a new mtime is adopted and a new size is -ESTALE. */
static int file_check(struct fetch *f)
{
	struct file_priv *p = f->priv;
	struct stat st;

	if (fstat(p->fd, &st) < 0) {
		int e = errno;

		log_err("%s: fstat: %s", f->shown, strerror(e));
		return -e;
	}
	if (fetch_adopting(f) && st.st_size != p->st.st_size) {
		fetch_changed(f, "size was %lld, now %lld",
			      (long long)p->st.st_size, (long long)st.st_size);
		return -ESTALE;
	}
	if (fetch_adopting(f) && st.st_ino == p->st.st_ino &&
	    st.st_dev == p->st.st_dev)
		return file_adopt(f, &st);
	if (st.st_size != p->st.st_size || st.st_ino != p->st.st_ino ||
	    st.st_dev != p->st.st_dev ||
	    st.st_mtim.tv_sec != p->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != p->st.st_mtim.tv_nsec)
		return fetch_changed(
		    f,
		    "was size %lld, mtime %lld.%09ld, inode %llu; now size "
		    "%lld, mtime %lld.%09ld, inode %llu",
		    (long long)p->st.st_size, (long long)p->st.st_mtim.tv_sec,
		    p->st.st_mtim.tv_nsec, (unsigned long long)p->st.st_ino,
		    (long long)st.st_size, (long long)st.st_mtim.tv_sec,
		    st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
	return 0;
}

/* Reads exactly len bytes at off; a short file is -EIO. */
static int file_pread_all(struct fetch *f, uint64_t off, size_t len,
			  unsigned char *buf)
{
	struct file_priv *p = f->priv;
	size_t done = 0;

	while (done < len) {
		size_t want = len - done;
		ssize_t n;

		if (want > (size_t)SSIZE_MAX)
			want = (size_t)SSIZE_MAX;
		n = pread(p->fd, buf + done, want, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			log_err("%s: read %llu+%zu: %s", f->shown,
				(unsigned long long)(off + done), want,
				strerror(e));
			return -e;
		}
		if (n == 0) {
			log_err("%s: read %llu+%zu: file is shorter than "
				"pinned",
				f->shown, (unsigned long long)(off + done),
				want);
			fetch_changed(f, "it is shorter than %llu bytes",
				      (unsigned long long)f->size);
			return fetch_adopting(f) ? -ESTALE : -EIO;
		}
		done += (size_t)n;
		atomic_fetch_add(&f->bytes, (uint64_t)n);
	}
	return 0;
}

/* The deadline was checked by fetch.c; a pread does not stall. */
static int file_range(struct fetch *f, uint64_t off, size_t len, void *buf,
		      unsigned flags, uint64_t deadline_ns)
{
	int rc;

	(void)flags;
	(void)deadline_ns;
	atomic_fetch_add(&f->requests, 1);
	rc = file_pread_all(f, off, len, buf);
	if (rc == 0)
		rc = file_check(f);
	if (rc < 0)
		atomic_fetch_add(&f->errors, 1);
	return rc;
}

static int file_stream(struct fetch *f, uint64_t off, uint64_t end,
		       fetch_sink sink, void *arg)
{
	unsigned char *buf = malloc(FILE_STREAM_CHUNK);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	atomic_fetch_add(&f->requests, 1);
	while (off < end && rc == 0) {
		size_t n = end - off < FILE_STREAM_CHUNK ? (size_t)(end - off)
							 : FILE_STREAM_CHUNK;

		rc = file_pread_all(f, off, n, buf);
		if (rc == 0)
			rc = file_check(f);
		if (rc < 0)
			atomic_fetch_add(&f->errors, 1);
		if (rc == 0)
			rc = sink(arg, buf, n);
		off += n;
	}
	free(buf);
	return rc;
}

const struct fetch_backend fetch_file_backend = {
    .name = "file",
    .open = file_open,
    .close = file_close,
    .range = file_range,
    .stream = file_stream,
};
