/* SPDX-License-Identifier: MIT */
/*
 * spill.c - the window spill file of a streaming pass (private to the
 * process, unlinked from birth) and the index written from it
 * (archive_write_index): the pass's windows are read back from there.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sffs/log.h"

#include "archive_i.h"

/* A file in dir that no name reaches and no one else may open: O_TMPFILE
 * (never linked), else mkstemp and unlink at once. NULL (errno set). */
static FILE *spill_in(const char *dir)
{
	char path[PATH_MAX];
	FILE *fp;
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_debug("spill file in %s: O_TMPFILE: %s; mkstemp", dir,
			  strerror(errno));
		if (snprintf(path, sizeof(path), "%s/.sffs-spill-XXXXXX",
			     dir) >= (int)sizeof(path)) {
			errno = ENAMETOOLONG;
			return NULL;
		}
		fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0)
			return NULL;
		unlink(path);
	}
	fp = fdopen(fd, "w+");
	if (!fp)
		close(fd);
	return fp;
}

/* The spill file: in o->spill_dir when it allows, else tmpfile(). */
FILE *archive_spill_open(const struct archive_opts *o)
{
	FILE *fp = NULL;

	if (o->spill_dir) {
		fp = spill_in(o->spill_dir);
		if (!fp)
			log_debug("spill file in %s: %s; tmpfile", o->spill_dir,
				  strerror(errno));
	}
	return fp ? fp : tmpfile();
}

int archive_spill_read(struct archive *ar, uint64_t off, size_t len,
		       unsigned char *buf)
{
	if (!ar->spill || off > ar->spill_len || len > ar->spill_len - off ||
	    pread(fileno(ar->spill), buf, len, (off_t)off) != (ssize_t)len)
		return -EIO;
	return 0;
}

static int spill_read(void *arg, const struct seek_point *pt,
		      unsigned char *buf)
{
	return archive_spill_read(arg, pt->woff, pt->wlen, buf);
}

int archive_write_index(struct archive *ar, const char *path,
			const char *identity)
{
	return archive_write_index_bound(ar, path, identity, NULL);
}

int archive_write_index_bound(struct archive *ar, const char *path,
			      const char *identity,
			      const struct index_binding *bind)
{
	struct index_windows w = {.read = spill_read, .arg = ar};
	struct index_header h;
	int rc;

	if (!ar->members)
		return -EINVAL;
	memset(&h, 0, sizeof(h));
	h.artifact_size = fetch_size(ar->f);
	memcpy(h.artifact_sha256, ar->sha256, sizeof(h.artifact_sha256));
	h.spacing = ar->spacing;
	h.block_size = ar->block_size;
	rc = index_edge_digests(ar->f, h.first_edge, h.last_edge);
	if (rc)
		return rc;
	if (identity)
		snprintf(h.identity, sizeof(h.identity), "%s", identity);
	snprintf(h.signer, sizeof(h.signer), "%s", ar->ih.signer);
	if (bind)
		h.bind = *bind;
	rc = index_write(path, &h, ar->members, ar->si, ar->bdigests, &w);
	index_members_free(ar->members);
	ar->members = NULL;
	return rc;
}
