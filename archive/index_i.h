/* SPDX-License-Identifier: MIT */
/*
 * index_i.h - private to archive/index*.c: the bounded byte buffers and
 * little-endian/varint codecs the .sfidx writer and readers share, and
 * the MEMBERS section's entry points (archive/index_members.c).
 */
#ifndef SFFS_INDEX_I_H
#define SFFS_INDEX_I_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sffs/index.h"

static inline void index_sha256(const void *p, size_t len, unsigned char *md)
{
	EVP_Digest(p, len, md, NULL, EVP_sha256(), NULL);
}

#define POINT_SIZE 62u /* bytes of one raw point record in POINTS */

/* ---- the header (index_header.c) ---- */

/* Bytes h's encoded header takes (its identity, signer, pages and
 * binding included). */
size_t index_header_len(const struct index_header *h);
/* Encodes h into p (index_header_len(h) bytes), its self-digest last;
 * returns the length written. */
size_t index_encode_header(const struct index_header *h, unsigned char *p);
/* The digests per page of BLOCKS for an index of nblocks blocks. */
uint32_t index_pick_bpage(uint64_t nblocks);

/* ---- little-endian fields and varints ---- */

struct buf {
	unsigned char *p;
	size_t len, cap;
	bool oom;
};

static inline void buf_put(struct buf *b, const void *data, size_t len)
{
	if (b->oom)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		unsigned char *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static inline void put_le(unsigned char *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline void buf_varint(struct buf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	buf_put(b, tmp, n);
}

/* A bounded reader over raw bytes: every get fails past the end. */
struct rd {
	const unsigned char *p;
	size_t len, pos;
};

static inline int rd_varint(struct rd *r, uint64_t *out)
{
	uint64_t v = 0;
	int shift;

	for (shift = 0; shift < 64; shift += 7) {
		unsigned char c;

		if (r->pos >= r->len)
			return -EINVAL;
		c = r->p[r->pos++];
		if (shift == 63 && c > 1)
			return -EINVAL; /* overflows 64 bits */
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EINVAL;
}

static inline int rd_bytes(struct rd *r, size_t n, const unsigned char **out)
{
	if (n > r->len - r->pos)
		return -EINVAL;
	*out = r->p + r->pos;
	r->pos += n;
	return 0;
}

/* The raw (uncompressed) MEMBERS records appended so far. */
const struct buf *index_members_buf(const struct index_members *m);
/* Replays raw MEMBERS records of format `major` (2 or 3) into t. 0 or
 * -EINVAL (malformed, trailing bytes), -ENOMEM, or tree_add's -errno. */
int index_members_parse(const void *raw, size_t len, uint64_t count,
			unsigned major, struct tree *t);

#endif
