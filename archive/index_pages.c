/* SPDX-License-Identifier: MIT */
/*
 * index_pages.c - block digests of an .sfidx read page by page (format
 * 2.2, docs/index-format.md "Block pages"), and the whole BLOCKS section
 * for any version.
 */
#include "sffs/blocks.h"
#include "sffs/index.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

static int sha256_is(const void *p, size_t len, const unsigned char want[32])
{
	unsigned char md[32];

	if (!EVP_Digest(p, len, md, NULL, EVP_sha256(), NULL))
		return -ENOMEM;
	return memcmp(md, want, 32) ? -EBADMSG : 0;
}

uint64_t index_page_of(const struct index_header *h, uint64_t b)
{
	return h->bpage ? b / h->bpage : 0;
}

/* Digests on page `page` (the last page may be shorter). */
static uint64_t page_count(const struct index_header *h, uint64_t page)
{
	uint64_t first = page * h->bpage;

	return h->nblocks - first < h->bpage ? h->nblocks - first : h->bpage;
}

static int load_page_until(struct fetch *idx, const struct index_header *h,
			   uint64_t page, unsigned char *out, uint64_t *n,
			   uint64_t deadline_ns)
{
	uint64_t cnt;
	int rc;

	if (!h->bpage || page >= h->npages)
		return -EINVAL;
	cnt = page_count(h, page);
	rc = fetch_range_until(
	    idx, h->sec[INDEX_BLOCKS].off + page * h->bpage * BLOCKS_DIGEST,
	    (size_t)(cnt * BLOCKS_DIGEST), out, 0, deadline_ns);
	if (!rc)
		rc = sha256_is(out, (size_t)(cnt * BLOCKS_DIGEST),
			       h->page_sha256[page]);
	if (!rc)
		*n = cnt;
	return rc;
}

int index_load_page(struct fetch *idx, const struct index_header *h,
		    uint64_t page, unsigned char *out, uint64_t *n)
{
	return load_page_until(idx, h, page, out, n, 0);
}

int index_load_blocks(struct fetch *idx, const struct index_header *h,
		      unsigned char **out)
{
	const struct index_section_desc *d = &h->sec[INDEX_BLOCKS];
	unsigned char *stored = malloc(d->len ? (size_t)d->len : 1);
	int rc;

	if (!stored)
		return -ENOMEM;
	rc = d->len ? fetch_range(idx, d->off, (size_t)d->len, stored, 0) : 0;
	if (!rc)
		rc = sha256_is(stored, (size_t)d->len, d->sha256);
	if (rc) {
		free(stored);
		return rc;
	}
	*out = stored;
	return 0;
}

/* ---- the lazy digest table ---- */

enum page_state { PAGE_NONE, PAGE_LOADING, PAGE_HELD };

struct index_digests {
	struct fetch *idx; /* borrowed */
	struct index_header h;
	pthread_mutex_t lock;
	pthread_cond_t cond;		      /* a load ended */
	enum page_state st[INDEX_MAX_PAGES];  /* guarded by lock */
	unsigned char *page[INDEX_MAX_PAGES]; /* set once, when HELD */
	uint64_t bytes, loads;		      /* guarded by lock */
};

struct index_digests *index_digests_new(struct fetch *idx,
					const struct index_header *h)
{
	struct index_digests *d;
	pthread_condattr_t ca;

	if (!h->bpage || !h->npages)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->idx = idx;
	d->h = *h;
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	return d;
}

void index_digests_free(struct index_digests *d)
{
	uint32_t i;

	if (!d)
		return;
	for (i = 0; i < d->h.npages; i++)
		free(d->page[i]);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* Waits (lock held) while page p is loading, until deadline_ns (0 =
 * none). 0 or -ETIMEDOUT. */
static int wait_loading(struct index_digests *d, uint64_t p,
			uint64_t deadline_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
			      .tv_nsec = (long)(deadline_ns % 1000000000u)};

	while (d->st[p] == PAGE_LOADING) {
		if (!deadline_ns)
			pthread_cond_wait(&d->cond, &d->lock);
		else if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) ==
			 ETIMEDOUT)
			return -ETIMEDOUT;
	}
	return 0;
}

/* Loads page p (no lock held during the fetch) and publishes it; a
 * failure leaves the page unloaded, so the next caller tries again. */
static int load(struct index_digests *d, uint64_t p, uint64_t deadline_ns)
{
	unsigned char *buf = malloc((size_t)d->h.bpage * BLOCKS_DIGEST);
	uint64_t n = 0;
	int rc = buf ? load_page_until(d->idx, &d->h, p, buf, &n, deadline_ns)
		     : -ENOMEM;

	pthread_mutex_lock(&d->lock);
	if (!rc) {
		d->page[p] = buf;
		d->st[p] = PAGE_HELD;
		d->bytes += n * BLOCKS_DIGEST;
		d->loads++;
	} else {
		d->st[p] = PAGE_NONE;
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (rc)
		free(buf);
	return rc;
}

int index_digests_get(struct index_digests *d, uint64_t b, uint64_t deadline_ns,
		      unsigned char out[32])
{
	uint64_t p;
	int rc;

	if (b >= d->h.nblocks)
		return -EINVAL;
	p = b / d->h.bpage;
	pthread_mutex_lock(&d->lock);
	rc = wait_loading(d, p, deadline_ns);
	if (!rc && d->st[p] == PAGE_NONE) {
		d->st[p] = PAGE_LOADING;
		pthread_mutex_unlock(&d->lock);
		rc = load(d, p, deadline_ns);
		pthread_mutex_lock(&d->lock);
	}
	if (!rc)
		memcpy(out, d->page[p] + (b - p * d->h.bpage) * BLOCKS_DIGEST,
		       BLOCKS_DIGEST);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void index_digests_stats(struct index_digests *d, uint64_t *bytes,
			 uint64_t *loads)
{
	pthread_mutex_lock(&d->lock);
	*bytes = d->bytes;
	*loads = d->loads;
	pthread_mutex_unlock(&d->lock);
}
