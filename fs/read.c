/* SPDX-License-Identifier: MIT */
/*
 * read.c - reads without starved workers.
 *
 * A FUSE worker answers a read itself only when every byte is in decoded
 * chunks already (archive_read_iov with nowait): those bytes go to the
 * kernel straight out of the chunks (fuse_reply_data, no copy, no
 * allocation). Any other read goes to a queue served by FS_READERS reader
 * threads, which may wait on the network up to the read's deadline; the
 * worker is free at once for lookups, getattr, readdir and cached reads.
 * A FUSE interrupt sets the read's cancel flag and wakes the waiters.
 * Network failures of every kind reach the reader as EIO.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sffs/log.h"
#include "fs.h"

/* What a reader sees of a failed read. */
static int read_errno(int rc)
{
	switch (rc) {
	case -EINTR:
	case -ENOMEM:
	case -EISDIR:
	case -EINVAL:
		return -rc;
	default:
		return EIO;
	}
}

static void reply_iov(fuse_req_t req, struct archive_req *rq)
{
	struct {
		struct fuse_bufvec v;
		struct fuse_buf more[ARCHIVE_IOV_MAX];
	} bv;
	struct fuse_buf *b;
	size_t k;

	if (!rq->n) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	memset(&bv, 0, sizeof(bv));
	b = bv.v.buf;
	bv.v.count = rq->n;
	for (k = 0; k < rq->n; k++) {
		b[k].mem = (void *)rq->iov[k].base;
		b[k].size = rq->iov[k].len;
	}
	fuse_reply_data(req, &bv.v, 0);
}

static void log_failure(struct fs_read *r, int rc)
{
	const char *url = fetch_url_shown(archive_fetch(r->ref.ar));
	char what[300];

	if (rc == -EINTR)
		return;
	archive_node_name(r->ref.ar, r->ref.node, what, sizeof(what));
	log_err("read of %s in %s at offset %" PRIu64 " (%zu bytes) failed: %s",
		what, url, r->off, r->size,
		rc == -ETIMEDOUT ? "deadline passed" : strerror(-rc));
}

/* Serves r in full, waiting as long as its deadline allows. */
static void serve(struct fs *fs, struct fs_read *r)
{
	struct archive_req rq = {.cancel = &r->cancel};
	struct archive *ar = r->ref.ar;
	ssize_t n = archive_read_iov(ar, r->ref.node, r->off, r->size, &rq);
	char *buf;

	if (n >= 0) {
		reply_iov(r->req, &rq);
		archive_req_release(&rq);
		return;
	}
	if (n == -ENOTSUP) { /* sparse or too many pieces: copy */
		buf = malloc(r->size ? r->size : 1);
		n = buf ? archive_read_req(ar, r->ref.node, r->off, r->size,
					   buf, &rq)
			: -ENOMEM;
		if (n >= 0)
			fuse_reply_buf(r->req, buf, (size_t)n);
		free(buf);
		if (n >= 0)
			return;
	}
	if (n == -EINTR)
		atomic_fetch_add(&fs->rd.interrupted, 1);
	atomic_fetch_add(&fs->rd.errors, 1);
	log_failure(r, (int)n);
	fuse_reply_err(r->req, read_errno((int)n));
}

static void slot_free(struct fs_readers *rd, struct fs_read *r)
{
	pthread_mutex_lock(&rd->lock);
	r->req = NULL;
	r->next = rd->free;
	rd->free = r;
	pthread_mutex_unlock(&rd->lock);
}

static void *reader_main(void *arg)
{
	struct fs *fs = arg;
	struct fs_readers *rd = &fs->rd;
	struct fs_read *r;
	struct fs_ref held;

	pthread_setname_np(pthread_self(), "sffs-read");

	pthread_mutex_lock(&rd->lock);
	while (!rd->stop) {
		r = rd->head;
		if (!r) {
			pthread_cond_wait(&rd->work, &rd->lock);
			continue;
		}
		rd->head = r->next;
		if (!rd->head)
			rd->tail = NULL;
		pthread_mutex_unlock(&rd->lock);
		serve(fs, r);
		held = r->ref;
		slot_free(rd, r); /* no interrupt can reach it from here */
		fs_unref(fs, &held);
		pthread_mutex_lock(&rd->lock);
	}
	pthread_mutex_unlock(&rd->lock);
	return NULL;
}

/* Called by libfuse when the kernel interrupts a read (perhaps late:
 * the slot may serve another request by then, which is checked). */
static void on_interrupt(fuse_req_t req, void *data)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_read *r = data;
	bool hit;

	if (!fs_req_dying(req))
		return; /* a caught signal: the read goes on */
	pthread_mutex_lock(&fs->rd.lock);
	hit = r->req == req;
	if (hit) {
		atomic_store(&r->cancel, true);
		/* the slot holds the archive until the read is answered */
		archive_wake(r->ref.ar);
	}
	pthread_mutex_unlock(&fs->rd.lock);
}

static struct fs_read *slot_take(struct fs_readers *rd, fuse_req_t req)
{
	struct fs_read *r;

	pthread_mutex_lock(&rd->lock);
	r = rd->nthreads ? rd->free : NULL;
	if (r) {
		rd->free = r->next;
		r->req = req;
		r->next = NULL;
		atomic_store(&r->cancel, false);
	}
	pthread_mutex_unlock(&rd->lock);
	return r;
}

static void enqueue(struct fs_readers *rd, struct fs_read *r)
{
	pthread_mutex_lock(&rd->lock);
	if (rd->tail)
		rd->tail->next = r;
	else
		rd->head = r;
	rd->tail = r;
	pthread_cond_signal(&rd->work);
	pthread_mutex_unlock(&rd->lock);
}

/* A catalog file (modulefile, index.json): a copy of its bytes. */
static void read_virtual(fuse_req_t req, struct fs *fs, const struct fs_ref *r,
			 size_t size, off_t off)
{
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fs_vdir_read(fs, r, (uint64_t)off, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* A file whose bytes must be copied (sparse, relocated): answered here
 * if every byte is at hand (a relocated file computed already, its
 * chunks cached). */
static bool copy_nowait(fuse_req_t req, const struct fs_ref *ref, size_t size,
			off_t off)
{
	struct archive_req rq = {.nowait = true};
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	if (!buf)
		return false;
	n = archive_read_req(ref->ar, ref->node, (uint64_t)off, size, buf, &rq);
	if (n >= 0)
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
	return n >= 0;
}

void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct archive_req rq = {.nowait = true};
	struct fs_read tmp, *r;
	struct fs_ref ref;
	ssize_t n;
	int rc = fs_resolve(fs, ino, &ref);

	(void)fi;
	if (!rc && off < 0)
		rc = -EINVAL;
	if (!rc && ref.kind != FS_NODE) {
		read_virtual(req, fs, &ref, size, off);
		fs_unref(fs, &ref);
		return;
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		fs_unref(fs, &ref);
		return;
	}
	n = archive_read_iov(ref.ar, ref.node, (uint64_t)off, size, &rq);
	if (n >= 0) {
		atomic_fetch_add(&fs->rd.fast, 1);
		reply_iov(req, &rq);
		archive_req_release(&rq);
		fs_unref(fs, &ref);
		return;
	}
	if (n == -ENOTSUP && copy_nowait(req, &ref, size, off)) {
		atomic_fetch_add(&fs->rd.fast, 1);
		fs_unref(fs, &ref);
		return;
	}
	if (n != -EAGAIN && n != -ENOTSUP) {
		fuse_reply_err(req, read_errno((int)n));
		fs_unref(fs, &ref);
		return;
	}
	r = slot_take(&fs->rd, req);
	if (!r) { /* every slot busy: serve it here, as before */
		memset(&tmp, 0, sizeof(tmp));
		r = &tmp;
		r->req = req;
	}
	r->ref = ref;
	r->off = (uint64_t)off;
	r->size = size;
	if (r == &tmp) {
		atomic_fetch_add(&fs->rd.sync, 1);
		serve(fs, r);
		fs_unref(fs, &r->ref);
		return;
	}
	atomic_fetch_add(&fs->rd.queued, 1);
	/* Calls on_interrupt at once if the read is interrupted already. */
	fuse_req_interrupt_func(req, on_interrupt, r);
	enqueue(&fs->rd, r);
}

int fs_readers_start(struct fs *fs)
{
	struct fs_readers *rd = &fs->rd;
	unsigned k;

	for (k = 0; k < FS_READ_SLOTS; k++) {
		rd->slots[k].next = rd->free;
		rd->free = &rd->slots[k];
	}
	for (k = 0; k < FS_READERS; k++) {
		if (pthread_create(&rd->threads[k], NULL, reader_main, fs))
			break;
		rd->nthreads++;
	}
	if (!rd->nthreads)
		log_warn("no reader threads: reads are served by the FUSE "
			 "workers");
	return rd->nthreads ? 0 : -EAGAIN;
}

void fs_readers_stop(struct fs *fs)
{
	struct fs_readers *rd = &fs->rd;
	unsigned k;

	pthread_mutex_lock(&rd->lock);
	rd->stop = true;
	pthread_cond_broadcast(&rd->work);
	pthread_mutex_unlock(&rd->lock);
	for (k = 0; k < rd->nthreads; k++)
		pthread_join(rd->threads[k], NULL);
	rd->nthreads = 0;
}
