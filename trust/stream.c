/* SPDX-License-Identifier: MIT */
/*
 * stream.c - a detached signature verified over bytes fed piece by piece.
 *
 * A thread of the stream's own runs the whole librnp verification; its
 * data input reads from a ring buffer that trust_stream_feed fills. One
 * producer and one consumer: each copies outside the lock into (or out
 * of) the part of the ring the counters under the lock give it, and
 * wakes the other side only when that side waits.
 */
#include "trust_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RING_SIZE (4u << 20)

struct trust_stream {
	const struct trust *t;
	pthread_t thread;
	unsigned char *sig;
	size_t siglen;
	unsigned char *ring;
	pthread_mutex_t lock;
	pthread_cond_t readable; /* fill > 0, eof or abort */
	pthread_cond_t writable; /* room, or done */
	size_t head;		 /* guarded by lock: next byte to read */
	size_t fill;		 /* guarded by lock: bytes in the ring */
	bool eof;		 /* guarded by lock: no more data */
	bool aborted;		 /* guarded by lock: reads fail */
	bool done;		 /* guarded by lock: the thread has judged */
	bool reader_waits;	 /* guarded by lock */
	bool writer_waits;	 /* guarded by lock */
	/* Written by the thread before done is set, read after the join. */
	struct trust_result res;
};

/* librnp's reader: up to len bytes out of the ring; 0 bytes at EOF. */
static bool ring_read(void *ctx, void *buf, size_t len, size_t *read)
{
	struct trust_stream *s = ctx;
	size_t head, n;
	bool ok;

	*read = 0;
	pthread_mutex_lock(&s->lock);
	while (!s->fill && !s->eof && !s->aborted) {
		s->reader_waits = true;
		pthread_cond_wait(&s->readable, &s->lock);
	}
	s->reader_waits = false;
	if (s->aborted || !s->fill) {
		ok = !s->aborted;
		pthread_mutex_unlock(&s->lock);
		return ok;
	}
	head = s->head;
	n = s->fill;
	pthread_mutex_unlock(&s->lock);

	if (n > len)
		n = len;
	if (n > RING_SIZE - head)
		n = RING_SIZE - head;
	memcpy(buf, s->ring + head, n);

	pthread_mutex_lock(&s->lock);
	s->head = (head + n) % RING_SIZE;
	s->fill -= n;
	if (s->writer_waits)
		pthread_cond_signal(&s->writable);
	pthread_mutex_unlock(&s->lock);
	*read = n;
	return true;
}

static void ring_close(void *ctx)
{
	(void)ctx;
}

static void *verifier(void *arg)
{
	struct trust_stream *s = arg;
	struct trust_keys *keys = trust_keys_get(s->t);
	rnp_input_t din = NULL, sin = NULL;
	rnp_op_verify_t op = NULL;
	rnp_ffi_t ffi = NULL;
	int rc;

	pthread_setname_np(pthread_self(), "sffs-verify");

	rc = trust_ffi_open(keys, &ffi);
	trust_keys_put(keys);
	if (rc) {
		trust_result_set(&s->res, TRUST_ERROR,
				 "cannot set up librnp: %s", strerror(-rc));
		goto out_done;
	}
	if (rnp_input_from_callback(&din, ring_read, ring_close, s) ||
	    rnp_input_from_memory(&sin, s->sig, s->siglen, false) ||
	    rnp_op_verify_detached_create(&op, ffi, din, sin)) {
		trust_result_set(&s->res, TRUST_ERROR, "cannot set up librnp");
		goto out_destroy;
	}
	trust_judge(s->t, ffi, op, rnp_op_verify_execute(op), &s->res);
out_destroy:
	rnp_op_verify_destroy(op);
	rnp_input_destroy(sin);
	rnp_input_destroy(din);
	rnp_ffi_destroy(ffi);
out_done:
	pthread_mutex_lock(&s->lock);
	s->done = true;
	pthread_cond_broadcast(&s->writable);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void stream_free(struct trust_stream *s)
{
	pthread_cond_destroy(&s->writable);
	pthread_cond_destroy(&s->readable);
	pthread_mutex_destroy(&s->lock);
	free(s->ring);
	free(s->sig);
	free(s);
}

struct trust_stream *trust_stream_new(const struct trust *t, const void *sig,
				      size_t siglen, struct trust_result *r)
{
	struct trust_stream *s;

	memset(r, 0, sizeof(*r));
	if (!sig || !siglen || siglen > TRUST_MAX_SIG) {
		trust_result_set(r, TRUST_NO_SIGNATURE,
				 "signature of %zu bytes (1 to %u allowed)",
				 siglen, TRUST_MAX_SIG);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_nomem;
	s->t = t;
	s->siglen = siglen;
	s->sig = malloc(siglen);
	s->ring = malloc(RING_SIZE);
	if (!s->sig || !s->ring) {
		free(s->sig);
		free(s->ring);
		free(s);
		goto out_nomem;
	}
	memcpy(s->sig, sig, siglen);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->readable, NULL);
	pthread_cond_init(&s->writable, NULL);
	if (pthread_create(&s->thread, NULL, verifier, s)) {
		stream_free(s);
		trust_result_set(r, TRUST_ERROR, "cannot start a thread");
		return NULL;
	}
	return s;
out_nomem:
	trust_result_set(r, TRUST_ERROR, "out of memory");
	return NULL;
}

/* Room in the ring for up to len bytes: its offset and size, 0 when the
 * verifier is done. Called locked. */
static size_t ring_room(struct trust_stream *s, size_t len, size_t *tail)
{
	size_t n;

	while (s->fill == RING_SIZE && !s->done) {
		s->writer_waits = true;
		pthread_cond_wait(&s->writable, &s->lock);
	}
	s->writer_waits = false;
	if (s->done)
		return 0;
	*tail = (s->head + s->fill) % RING_SIZE;
	n = RING_SIZE - s->fill;
	if (n > RING_SIZE - *tail)
		n = RING_SIZE - *tail;
	return n < len ? n : len;
}

int trust_stream_feed(struct trust_stream *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t n, tail = 0;

	while (len) {
		pthread_mutex_lock(&s->lock);
		n = ring_room(s, len, &tail);
		pthread_mutex_unlock(&s->lock);
		/* The verifier ended before the data did: it failed. */
		if (!n)
			return -EBADMSG;
		memcpy(s->ring + tail, p, n);
		pthread_mutex_lock(&s->lock);
		s->fill += n;
		if (s->reader_waits)
			pthread_cond_signal(&s->readable);
		pthread_mutex_unlock(&s->lock);
		p += n;
		len -= n;
	}
	return 0;
}

/* Ends the input (with an error when failed) and waits for the thread. */
static void stream_end(struct trust_stream *s, bool failed)
{
	pthread_mutex_lock(&s->lock);
	s->eof = true;
	s->aborted = failed;
	pthread_cond_signal(&s->readable);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
}

enum trust_status trust_stream_finish(struct trust_stream *s,
				      struct trust_result *r)
{
	stream_end(s, false);
	*r = s->res;
	stream_free(s);
	return r->status;
}

void trust_stream_abort(struct trust_stream *s)
{
	if (!s)
		return;
	stream_end(s, true);
	stream_free(s);
}
