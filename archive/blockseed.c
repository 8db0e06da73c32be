/* SPDX-License-Identifier: MIT */
/*
 * blockseed.c - blocks the caller already has (a streaming pass's bytes)
 * put into the store as verified blocks (blocks.h, blocks_seed): checked
 * against the handle's digest, held like a fetched block, written to the
 * disk tier when there is one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>
#include <utlist.h>

#include "sffs/disk.h"

#include "blocks_i.h"

uint64_t blocks_seed_room(const struct blockstore *store,
			  const struct blocks_opts *o)
{
	struct blocks_opts d;
	uint64_t room;

	if (!store && !o) {
		blocks_opts_default(&d);
		o = &d;
	}
	if (store)
		o = &store->o;
	room = o->mem / 2;
	if (room > o->seed_max)
		room = o->seed_max;
	return room < BLOCKS_SEED_MAX ? room : BLOCKS_SEED_MAX;
}

/* Puts the ready entry e in the store unless block e->b.idx is there in
 * any state; with s->lock held. */
static int seed_insert(struct blocks *bs, struct bent *e)
{
	struct blockstore *s = bs->s;

	if (bstore_bent_find(bs, e->b.idx))
		return -EEXIST;
	HASH_ADD(hh, s->hash, key, sizeof(e->key), e);
	DL_APPEND2(s->lru, e, lprev, lnext);
	e->ident->mem += e->b.len;
	s->mem += e->b.len;
	s->nblocks++;
	bs->st.seeded++;
	bstore_evict(s);
	return 0;
}

/* A ready entry for block i of bs holding a copy of data, verified. */
static int seed_entry(struct blocks *bs, uint64_t i, const void *data,
		      size_t len, struct bent **out)
{
	uint64_t deadline =
	    fetch_now_ns() + (uint64_t)bs->s->o.timeout_s * 1000000000u;
	struct bent *e = calloc(1, sizeof(*e));
	int rc;

	if (!e)
		return -ENOMEM;
	rc = bstore_digest_check(bs, i, data, len, deadline, e->vd);
	if (rc)
		goto out_free;
	e->ext = bstore_extent_new(bs->s, len);
	if (!e->ext) {
		rc = -ENOMEM;
		goto out_free;
	}
	memcpy(e->ext->data, data, len);
	e->buf = e->ext->data;
	e->b.idx = i;
	e->b.len = len;
	e->b.data = e->buf;
	e->key.ident = bs->ident->id;
	e->key.idx = i;
	e->ident = bs->ident;
	e->st = B_READY;
	e->refs = 1; /* the hash's */
	e->in_hash = true;
	*out = e;
	return 0;
out_free:
	free(e);
	return rc;
}

int blocks_seed(struct blocks *bs, uint64_t i, const void *data, size_t len)
{
	struct blockstore *s = bs->s;
	struct bent *e = NULL;
	int rc;

	if (i >= bs->n || len != bstore_block_len(bs, i))
		return -EINVAL;
	rc = seed_entry(bs, i, data, len, &e);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->lock);
	rc = seed_insert(bs, e);
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		bstore_extent_put(s, e->ext);
		free(e);
		return rc;
	}
	/* the bytes are verified: the disk tier takes them as a fetcher's
	 * (its identity key never changes while bs lives) */
	if (s->o.disk)
		disk_put(s->o.disk, bs->ident->key, i, data, len);
	return 0;
}
