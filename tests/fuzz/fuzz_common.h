/* SPDX-License-Identifier: MIT */
/*
 * fuzz_common.h - small helpers shared by the libFuzzer harnesses: a
 * deterministic piece-size generator (so a crash reproduces from the input
 * alone), a growable byte buffer with a hard cap, and FUZZ_CHECK, which
 * aborts (a libFuzzer crash) when an invariant of the code under test fails.
 */
#ifndef SFFS_FUZZ_COMMON_H
#define SFFS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

/* xorshift64; a zero state is replaced so the stream never sticks. */
static inline uint64_t fuzz_rng(uint64_t *s)
{
	if (*s == 0)
		*s = 0x9e3779b97f4a7c15ull;
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A seed from the last (up to) 8 bytes of the input and its length: valid
 * archives end in ignored padding there, so the fuzzer can change the piece
 * schedule without breaking the format. */
static inline uint64_t fuzz_seed(const uint8_t *data, size_t size)
{
	uint64_t s = (uint64_t)size * 0x100000001b3ull;
	size_t i, n = size < 8 ? size : 8;

	for (i = 0; i < n; i++)
		s = (s ^ data[size - 1 - i]) * 0x100000001b3ull;
	return s;
}

/* Next piece size, 1..left: mostly small pieces, sometimes big ones. */
static inline size_t fuzz_piece(uint64_t *s, size_t left)
{
	uint64_t r = fuzz_rng(s);
	size_t n;

	if (r % 8 == 0)
		return left;
	n = 1 + (size_t)((r >> 8) % (1ull << ((r >> 3) % 17)));
	return n < left ? n : left;
}

struct fuzz_buf {
	unsigned char *p;
	size_t len, cap, max;
};

/* Appends; returns -1 (and keeps nothing new) past b->max bytes. */
static inline int fuzz_buf_add(struct fuzz_buf *b, const void *p, size_t len)
{
	if (len > b->max - b->len)
		return -1;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		unsigned char *np;

		while (cap < b->len + len)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			abort();
		b->p = np;
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, p, len);
	b->len += len;
	return 0;
}

static inline void fuzz_buf_free(struct fuzz_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

#endif
