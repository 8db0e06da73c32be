/* SPDX-License-Identifier: MIT */
/*
 * memtar.h - a ustar archive made in memory for unit tests (regular
 * files, directories, symlinks), gzip'd with zlib, and served to the
 * archive layer through fetch_open_source from memory.
 */
#ifndef SFFS_TEST_MEMTAR_H
#define SFFS_TEST_MEMTAR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "sffs/fetch.h"

struct memtar {
	unsigned char *p;
	size_t len, cap;
	int oom;
};

static inline void memtar_octal(char *dst, size_t n, uint64_t v)
{
	snprintf(dst, n, "%0*llo", (int)n - 1, (unsigned long long)v);
}

static inline unsigned char *memtar_grow(struct memtar *t, size_t n)
{
	unsigned char *q;

	if (t->len + n > t->cap) {
		size_t cap = (t->len + n) * 2;

		q = realloc(t->p, cap);
		if (!q) {
			t->oom = 1;
			return NULL;
		}
		memset(q + t->cap, 0, cap - t->cap);
		t->p = q;
		t->cap = cap;
	}
	q = t->p + t->len;
	t->len += n;
	return q;
}

/* type '0' file, '5' directory, '2' symlink (link: its target). */
static inline void memtar_add(struct memtar *t, const char *name, char type,
			      unsigned mode, const void *data, size_t size,
			      const char *link)
{
	unsigned char *h = memtar_grow(t, 512);
	unsigned sum = 0;
	size_t k;

	if (!h)
		return;
	snprintf((char *)h, 100, "%s", name);
	memtar_octal((char *)h + 100, 8, mode);
	memtar_octal((char *)h + 108, 8, 0);
	memtar_octal((char *)h + 116, 8, 0);
	memtar_octal((char *)h + 124, 12, type == '0' ? size : 0);
	memtar_octal((char *)h + 136, 12, 1700000000);
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	if (link)
		snprintf((char *)h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (k = 0; k < 512; k++)
		sum += h[k];
	snprintf((char *)h + 148, 8, "%06o", sum);
	if (type == '0' && size) {
		unsigned char *d = memtar_grow(t, (size + 511) / 512 * 512);

		if (d)
			memcpy(d, data, size);
	}
}

/* The gzip of len bytes at in (malloc'd), *out bytes; NULL on failure. */
static inline unsigned char *memtar_gzip_buf(const unsigned char *in,
					     size_t len, size_t *out)
{
	z_stream zs = {0};
	size_t cap = len + len / 100 + 1024;
	unsigned char *o = malloc(cap);

	if (!o || deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY)) {
		free(o);
		return NULL;
	}
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = o;
	zs.avail_out = (uInt)cap;
	deflate(&zs, Z_FINISH);
	*out = zs.total_out;
	deflateEnd(&zs);
	return o;
}

/* The end-of-archive marker, then the gzip of it all (malloc'd). */
static inline unsigned char *memtar_gzip(struct memtar *t, size_t *out)
{
	memtar_grow(t, 1024);
	return t->oom ? NULL : memtar_gzip_buf(t->p, t->len, out);
}

struct memtar_src {
	const unsigned char *data;
	size_t len;
};

static inline int memtar_range(void *arg, uint64_t off, size_t len, void *buf,
			       unsigned flags)
{
	const struct memtar_src *s = arg;

	(void)flags;
	if (off > s->len || len > s->len - off)
		return -EIO;
	memcpy(buf, s->data + off, len);
	return 0;
}

static inline const struct fetch_source_ops *memtar_ops(void)
{
	static const struct fetch_source_ops ops = {.range = memtar_range};

	return &ops;
}

#endif
