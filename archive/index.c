/* SPDX-License-Identifier: MIT */
/*
 * index.c - write and read .sfidx files (docs/index-format.md).
 */
#include "sffs/index.h"
#include "index_i.h"
#include "sffs/blocks.h"
#include "sffs/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

/* MEMBERS (paths that repeat their directories) shrinks by 30% from
 * level 9 to 19, for about 0.4 s a MB of raw records: paid once when
 * indexing, saved by every node's first mount. */
#define ZSTD_LEVEL 19
#define POINT_SIZE 62u /* bytes of one raw point record */
#define MAX_WLEN 65536u

static void sha256(const void *p, size_t len, unsigned char *md)
{
	EVP_Digest(p, len, md, NULL, EVP_sha256(), NULL);
}

/* ---- POINTS: fixed 94-byte records ---- */

static void put_point(struct buf *b, const struct seek_point *pt, uint64_t woff,
		      const unsigned char *wdigest)
{
	unsigned char r[POINT_SIZE];

	put_le(r, pt->coff, 8);
	put_le(r + 8, pt->uoff, 8);
	r[16] = pt->bits;
	r[17] = pt->flags;
	put_le(r + 18, pt->wlen, 4);
	put_le(r + 22, woff, 8);
	memcpy(r + 30, wdigest, 32);
	buf_put(b, r, sizeof(r));
}

/* Each point must follow the last and lie inside both streams; a window
 * must lie inside the window section. */
static bool point_ok(const struct seek_point *pt, const struct seek_point *prev,
		     const struct index_header *h)
{
	if (pt->bits > 7 || (pt->flags & ~SEEK_PT_MEMBER) ||
	    pt->wlen > MAX_WLEN || pt->coff > h->artifact_size)
		return false;
	if (pt->bits && pt->coff == 0)
		return false;
	if (pt->wlen && (pt->woff > h->sec[INDEX_WINDOWS].len ||
			 pt->wlen > h->sec[INDEX_WINDOWS].len - pt->woff))
		return false;
	if (!prev)
		return pt->uoff == 0 && pt->coff == 0;
	return pt->uoff > prev->uoff && pt->uoff < h->usize &&
	       pt->coff >= prev->coff;
}

int index_parse_points(const void *raw, size_t len,
		       const struct index_header *h, struct seek_index **out)
{
	const unsigned char *p = raw;
	struct seek_index *si;
	uint64_t i;

	if (h->npoints == 0 || len / POINT_SIZE != h->npoints ||
	    len % POINT_SIZE)
		return -EINVAL;
	si = calloc(1, sizeof(*si));
	if (!si)
		return -ENOMEM;
	si->pts = calloc((size_t)h->npoints, sizeof(*si->pts));
	if (!si->pts) {
		free(si);
		return -ENOMEM;
	}
	si->codec = h->codec;
	si->csize = h->artifact_size;
	si->usize = h->usize;
	for (i = 0; i < h->npoints; i++, p += POINT_SIZE) {
		struct seek_point *pt = &si->pts[i];

		pt->coff = get_le(p, 8);
		pt->uoff = get_le(p + 8, 8);
		pt->bits = p[16];
		pt->flags = p[17];
		pt->wlen = (uint32_t)get_le(p + 18, 4);
		pt->woff = get_le(p + 22, 8);
		memcpy(pt->wdigest, p + 30, 32);
		if (!point_ok(pt, i ? pt - 1 : NULL, h)) {
			si->n = (size_t)i;
			seek_index_free(si);
			return -EINVAL;
		}
	}
	si->n = (size_t)h->npoints;
	*out = si;
	return 0;
}

/* ---- header ---- */

#define H_BLOCKSIZE 60
#define H_NBLOCKS 96
#define H_FIRST 104
#define H_LAST 136
#define H_SECTIONS 168
#define H_SECTION_SIZE 56
#define H_IDENTITY (H_SECTIONS + INDEX_NSECTIONS * H_SECTION_SIZE)

/* Minor 3.1's binding: three strings with 2-byte lengths, then the
 * publication time. */
static size_t binding_len(const struct index_binding *b)
{
	return 2 + strlen(b->name) + 2 + strlen(b->version) + 2 +
	       strlen(b->toolchain) + 8;
}

/* Identity, the signer field (minor 1; always written since minor 2,
 * empty or not), the block pages (minor 2), then the binding (3.1,
 * always written, empty or not). */
static size_t header_len(const struct index_header *h)
{
	return H_IDENTITY + 2 + strlen(h->identity) + 2 + strlen(h->signer) +
	       4 + (size_t)h->npages * 32 + binding_len(&h->bind) + 32;
}

static unsigned char *put_str(unsigned char *s, const char *str)
{
	size_t n = strlen(str);

	put_le(s, n, 2);
	/* length-prefixed: no NUL is wanted */
	// NOLINTNEXTLINE(bugprone-not-null-terminated-result)
	memcpy(s + 2, str, n);
	return s + 2 + n;
}

static void encode_binding(const struct index_binding *b, unsigned char *s)
{
	s = put_str(s, b->name);
	s = put_str(s, b->version);
	s = put_str(s, b->toolchain);
	put_le(s, b->published, 8);
}

/* Minor 2's block pages: digests per page and one digest per page. */
static unsigned char *encode_pages(const struct index_header *h,
				   unsigned char *s)
{
	put_le(s, h->bpage, 4);
	memcpy(s + 4, h->page_sha256, (size_t)h->npages * 32);
	return s + 4 + (size_t)h->npages * 32;
}

static size_t encode_header(const struct index_header *h, unsigned char *p)
{
	size_t idlen = strlen(h->identity), slen = strlen(h->signer), k;
	size_t hlen = header_len(h);
	unsigned char *s;

	memset(p, 0, INDEX_HEADER_MAX);
	/* The magic is 8 bytes, not a C string: no NUL is wanted. */
	// NOLINTNEXTLINE(bugprone-not-null-terminated-result)
	memcpy(p, INDEX_MAGIC, 8);
	put_le(p + 8, INDEX_MAJOR, 2);
	put_le(p + 10, INDEX_MINOR, 2);
	put_le(p + 12, hlen, 4);
	put_le(p + 16, h->artifact_size, 8);
	memcpy(p + 24, h->artifact_sha256, 32);
	p[56] = (unsigned char)h->codec;
	put_le(p + 64, h->usize, 8);
	put_le(p + 72, h->spacing, 8);
	put_le(p + 80, h->nmembers, 8);
	put_le(p + 88, h->npoints, 8);
	put_le(p + H_BLOCKSIZE, h->block_size, 4);
	put_le(p + H_NBLOCKS, h->nblocks, 8);
	memcpy(p + H_FIRST, h->first_edge, 32);
	memcpy(p + H_LAST, h->last_edge, 32);
	for (k = 0; k < INDEX_NSECTIONS; k++) {
		s = p + H_SECTIONS + k * H_SECTION_SIZE;
		put_le(s, h->sec[k].off, 8);
		put_le(s + 8, h->sec[k].len, 8);
		put_le(s + 16, h->sec[k].rawlen, 8);
		memcpy(s + 24, h->sec[k].sha256, 32);
	}
	put_le(p + H_IDENTITY, idlen, 2);
	memcpy(p + H_IDENTITY + 2, h->identity, idlen);
	s = p + H_IDENTITY + 2 + idlen;
	put_le(s, slen, 2);
	memcpy(s + 2, h->signer, slen);
	encode_binding(&h->bind, encode_pages(h, s + 2 + slen));
	sha256(p, hlen - 32, p + hlen - 32);
	return hlen;
}

/* Minor 1's signer field, if the header has room for one; *next is
 * where the field after it starts. */
static int parse_signer(const unsigned char *p, size_t at,
			struct index_header *h, size_t *next)
{
	size_t slen;

	*next = at;
	if (at + 32 == h->hlen)
		return 0;
	if (at + 2 + 32 > h->hlen)
		return -EINVAL;
	slen = (size_t)get_le(p + at, 2);
	if (slen > INDEX_MAX_SIGNER || at + 2 + slen + 32 > h->hlen)
		return -EINVAL;
	memcpy(h->signer, p + at + 2, slen);
	h->signer[slen] = '\0';
	*next = at + 2 + slen;
	return strlen(h->signer) == slen ? 0 : -EINVAL;
}

/* The fewest pages of at most INDEX_MAX_PAGES: bpage is the smallest
 * power of two from INDEX_MIN_BPAGE up that gets there. */
static uint32_t pick_bpage(uint64_t nblocks)
{
	uint32_t bpage = INDEX_MIN_BPAGE;

	while ((nblocks + bpage - 1) / bpage > INDEX_MAX_PAGES)
		bpage *= 2;
	return bpage;
}

/* Minor 2's block pages, if the header has room for them (an older
 * index has none: bpage stays 0); *next is where the field after them
 * starts. */
static int parse_pages(const unsigned char *p, size_t at,
		       struct index_header *h, size_t *next)
{
	uint64_t npages;

	*next = at;
	if (at + 32 == h->hlen)
		return 0;
	if (at + 4 + 32 > h->hlen)
		return -EINVAL;
	h->bpage = (uint32_t)get_le(p + at, 4);
	if (h->bpage < INDEX_MIN_BPAGE || (h->bpage & (h->bpage - 1)) ||
	    (uint64_t)h->bpage * BLOCKS_DIGEST > INDEX_MAX_SECTION)
		return -EINVAL;
	npages = (h->nblocks + h->bpage - 1) / h->bpage;
	if (npages > INDEX_MAX_PAGES || at + 4 + npages * 32 + 32 > h->hlen)
		return -EINVAL;
	h->npages = (uint32_t)npages;
	memcpy(h->page_sha256, p + at + 4, (size_t)npages * 32);
	*next = at + 4 + (size_t)npages * 32;
	return 0;
}

/* One string of the binding at *at (2-byte length, at most max bytes, no
 * NUL inside, room left for the final digest) into out. */
static int get_str(const unsigned char *p, size_t *at, size_t hlen, size_t max,
		   char *out)
{
	size_t n;

	if (*at + 2 + 32 > hlen)
		return -EINVAL;
	n = (size_t)get_le(p + *at, 2);
	if (n > max || *at + 2 + n + 32 > hlen)
		return -EINVAL;
	memcpy(out, p + *at + 2, n);
	out[n] = '\0';
	*at += 2 + n;
	return strlen(out) == n ? 0 : -EINVAL;
}

/* Minor 3.1's binding, if the header has room for it (an older index
 * has none: bound stays false). A newer minor may add fields after it. */
static int parse_binding(const unsigned char *p, size_t at,
			 struct index_header *h)
{
	struct index_binding *b = &h->bind;

	if (at + 32 == h->hlen || (h->major == 3 && h->minor < 1) ||
	    h->major < 3)
		return 0;
	if (get_str(p, &at, h->hlen, INDEX_MAX_NAME, b->name) ||
	    get_str(p, &at, h->hlen, INDEX_MAX_TAG, b->version) ||
	    get_str(p, &at, h->hlen, INDEX_MAX_TAG, b->toolchain) ||
	    at + 8 + 32 > h->hlen)
		return -EINVAL;
	b->published = get_le(p + at, 8);
	h->bound = true;
	return 0;
}

/* The sections follow the header in order, without gaps. */
static bool sections_ok(const struct index_header *h)
{
	uint64_t at = h->hlen;
	int k;

	if (h->npoints > INDEX_MAX_SECTION / POINT_SIZE ||
	    h->nmembers > TREE_MAX_NODES || h->block_size < BLOCKS_MIN_SIZE ||
	    h->block_size > BLOCKS_MAX_SIZE ||
	    h->nblocks != blocks_count_for(h->artifact_size, h->block_size))
		return false;
	for (k = 0; k < INDEX_NSECTIONS; k++) {
		const struct index_section_desc *s = &h->sec[k];

		if (s->off != at || s->len > INDEX_MAX_SECTION ||
		    s->rawlen > INDEX_MAX_SECTION)
			return false;
		at += s->len;
	}
	return h->sec[INDEX_WINDOWS].len == h->sec[INDEX_WINDOWS].rawlen &&
	       h->sec[INDEX_BLOCKS].len == h->sec[INDEX_BLOCKS].rawlen &&
	       h->sec[INDEX_BLOCKS].len == h->nblocks * BLOCKS_DIGEST &&
	       h->sec[INDEX_POINTS].rawlen == h->npoints * POINT_SIZE;
}

/*
 * Budgets relative to the artifact: what an index may make a node
 * allocate before any digest of its sections is checked. The header's
 * artifact_size is checked against the served artifact's size before a
 * section is read, so an unsigned index cannot make these grow.
 *   - members: each costs a 512-byte tar header block, and even 20,000
 *     empty files compress to 8.3 (gzip -9) and 4.9 (zstd -19) bytes a
 *     member; the fixture has one member per 19 KB. At most 2^20 +
 *     size / 2 members.
 *   - points: one per spacing (64 KiB or more of tar, 63 bytes of gzip
 *     at deflate's 1032:1) or per gzip member / zstd frame (9 bytes or
 *     more): at most 2^16 + size / 8 (the fixture: 25 points in 10 MB).
 *   - MEMBERS raw: the empty files' records are 2.7 (gzip) and 4.5
 *     (zstd) times their artifact, the fixture's 0.0017 times: at most
 *     16 MiB + 8 * size. POINTS raw is npoints * 62 bytes.
 *   - MEMBERS and POINTS stored: zstd frames of their raw bytes, never
 *     more than zstd's own bound (raw + raw / 256 + a frame header; we
 *     allow raw / 128 + 4 KiB).
 */
#define BUDGET_MEMBERS(size) ((UINT64_C(1) << 20) + (size) / 2)
#define BUDGET_POINTS(size) ((UINT64_C(1) << 16) + (size) / 8)
#define BUDGET_MEMBERS_RAW(size) ((UINT64_C(16) << 20) + 8 * (size))
#define BUDGET_STORED(raw) ((raw) + (raw) / 128 + 4096)

static int over_budget(char *why, size_t whylen, const char *what,
		       uint64_t have, uint64_t bound, uint64_t size)
{
	if (why)
		snprintf(why, whylen,
			 "%s is %" PRIu64 ", more than an artifact of %" PRIu64
			 " bytes can need (at most %" PRIu64 ")",
			 what, have, size, bound);
	return -EFBIG;
}

int index_budget_check(const struct index_header *h, char *why, size_t whylen)
{
	const struct index_section_desc *ms = &h->sec[INDEX_MEMBERS];
	const struct index_section_desc *ps = &h->sec[INDEX_POINTS];
	uint64_t size = h->artifact_size;

	if (h->nmembers > BUDGET_MEMBERS(size))
		return over_budget(why, whylen, "the member count", h->nmembers,
				   BUDGET_MEMBERS(size), size);
	if (h->npoints > BUDGET_POINTS(size))
		return over_budget(why, whylen, "the seek-point count",
				   h->npoints, BUDGET_POINTS(size), size);
	if (ms->rawlen > BUDGET_MEMBERS_RAW(size))
		return over_budget(why, whylen, "MEMBERS (raw bytes)",
				   ms->rawlen, BUDGET_MEMBERS_RAW(size), size);
	if (ms->len > BUDGET_STORED(ms->rawlen))
		return over_budget(why, whylen, "MEMBERS (stored bytes)",
				   ms->len, BUDGET_STORED(ms->rawlen), size);
	if (ps->len > BUDGET_STORED(ps->rawlen))
		return over_budget(why, whylen, "POINTS (stored bytes)",
				   ps->len, BUDGET_STORED(ps->rawlen), size);
	return 0;
}

int index_parse_header(const void *buf, size_t len, struct index_header *h)
{
	const unsigned char *p = buf;
	unsigned char md[32];
	size_t idlen, k, next;

	memset(h, 0, sizeof(*h));
	if (len < H_IDENTITY + 2 + 32 || memcmp(p, INDEX_MAGIC, 8))
		return -EINVAL;
	h->major = (uint16_t)get_le(p + 8, 2);
	h->minor = (uint16_t)get_le(p + 10, 2);
	if (h->major < INDEX_MAJOR_MIN || h->major > INDEX_MAJOR)
		return -EPROTO;
	h->hlen = (uint32_t)get_le(p + 12, 4);
	idlen = (size_t)get_le(p + H_IDENTITY, 2);
	/* A newer minor version may add header fields before the digest. */
	if (idlen > INDEX_MAX_IDENTITY || h->hlen > INDEX_HEADER_MAX ||
	    h->hlen > len || h->hlen < H_IDENTITY + 2 + idlen + 32)
		return -EINVAL;
	sha256(p, h->hlen - 32, md);
	if (memcmp(md, p + h->hlen - 32, 32))
		return -EINVAL;
	h->artifact_size = get_le(p + 16, 8);
	memcpy(h->artifact_sha256, p + 24, 32);
	if (p[56] > SEEK_ZSTD || p[57] || p[58] || p[59])
		return -EINVAL;
	h->codec = (enum seek_codec)p[56];
	h->usize = get_le(p + 64, 8);
	h->spacing = get_le(p + 72, 8);
	h->nmembers = get_le(p + 80, 8);
	h->npoints = get_le(p + 88, 8);
	h->block_size = (uint32_t)get_le(p + H_BLOCKSIZE, 4);
	h->nblocks = get_le(p + H_NBLOCKS, 8);
	memcpy(h->first_edge, p + H_FIRST, 32);
	memcpy(h->last_edge, p + H_LAST, 32);
	for (k = 0; k < INDEX_NSECTIONS; k++) {
		const unsigned char *s = p + H_SECTIONS + k * H_SECTION_SIZE;

		h->sec[k].off = get_le(s, 8);
		h->sec[k].len = get_le(s + 8, 8);
		h->sec[k].rawlen = get_le(s + 16, 8);
		memcpy(h->sec[k].sha256, s + 24, 32);
	}
	memcpy(h->identity, p + H_IDENTITY + 2, idlen);
	h->identity[idlen] = '\0';
	if (strlen(h->identity) != idlen || !sections_ok(h) ||
	    parse_signer(p, H_IDENTITY + 2 + idlen, h, &next) ||
	    parse_pages(p, next, h, &next) || parse_binding(p, next, h))
		return -EINVAL;
	return index_budget_check(h, NULL, 0);
}

/* ---- writing ---- */

static int compress_section(const struct buf *raw, struct buf *out,
			    struct index_section_desc *d)
{
	size_t bound = ZSTD_compressBound(raw->len), n;

	out->p = malloc(bound ? bound : 1);
	if (!out->p)
		return -ENOMEM;
	n = ZSTD_compress(out->p, bound, raw->p, raw->len, ZSTD_LEVEL);
	if (ZSTD_isError(n))
		return -EIO;
	out->len = n;
	d->len = n;
	d->rawlen = raw->len;
	sha256(out->p, n, d->sha256);
	return 0;
}

static int write_all(FILE *f, const void *p, size_t len)
{
	return fwrite(p, 1, len, f) == len ? 0 : -EIO;
}

/* Raw POINTS: window offsets and digests (computed for windows held in
 * memory when w is NULL). */
static int build_points(const struct seek_index *si, struct buf *raw,
			const struct index_windows *w, uint64_t *wtotal)
{
	uint64_t woff = 0;
	size_t i;

	for (i = 0; i < si->n; i++) {
		const struct seek_point *pt = &si->pts[i];
		unsigned char wd[32] = {0};

		if (pt->wlen && !w) {
			if (!pt->window)
				return -EINVAL;
			sha256(pt->window, pt->wlen, wd);
		} else if (pt->wlen) {
			memcpy(wd, pt->wdigest, 32);
		}
		put_point(raw, pt, pt->wlen ? woff : 0, wd);
		woff += pt->wlen;
	}
	*wtotal = woff;
	return raw->oom ? -ENOMEM : 0;
}

/* Streams the windows into the file, hashing the WINDOWS section. */
static int write_windows(FILE *fd, const struct seek_index *si,
			 const struct index_windows *w,
			 struct index_section_desc *d)
{
	unsigned char *buf = malloc(MAX_WLEN);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t i;
	int rc = -ENOMEM;

	if (!buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	rc = 0;
	for (i = 0; i < si->n && !rc; i++) {
		const struct seek_point *pt = &si->pts[i];

		if (!pt->wlen)
			continue;
		if (pt->wlen > MAX_WLEN)
			rc = -EINVAL;
		else if (w)
			rc = w->read(w->arg, pt, buf);
		else
			memcpy(buf, pt->window, pt->wlen);
		if (!rc && !EVP_DigestUpdate(ctx, buf, pt->wlen))
			rc = -ENOMEM;
		if (!rc)
			rc = write_all(fd, buf, pt->wlen);
	}
	if (!rc && !EVP_DigestFinal_ex(ctx, d->sha256, NULL))
		rc = -ENOMEM;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

/* The sections first (the header carries the windows' digest), then the
 * header at offset 0. */
static int write_file(FILE *fd, struct index_header *h, const struct buf *mem,
		      const struct buf *pts, const unsigned char *blocks,
		      const struct seek_index *si,
		      const struct index_windows *w)
{
	unsigned char hdr[INDEX_HEADER_MAX];
	size_t hlen = header_len(h);
	int rc;

	h->sec[INDEX_MEMBERS].off = hlen;
	h->sec[INDEX_POINTS].off = h->sec[INDEX_MEMBERS].off + mem->len;
	h->sec[INDEX_BLOCKS].off = h->sec[INDEX_POINTS].off + pts->len;
	h->sec[INDEX_WINDOWS].off =
	    h->sec[INDEX_BLOCKS].off + h->sec[INDEX_BLOCKS].len;
	if (fseeko(fd, (off_t)hlen, SEEK_SET))
		return -EIO;
	rc = write_all(fd, mem->p, mem->len);
	if (!rc)
		rc = write_all(fd, pts->p, pts->len);
	if (!rc)
		rc = write_all(fd, blocks, (size_t)h->sec[INDEX_BLOCKS].len);
	if (!rc)
		rc = write_windows(fd, si, w, &h->sec[INDEX_WINDOWS]);
	if (rc)
		return rc;
	if (fseeko(fd, 0, SEEK_SET))
		return -EIO;
	if (encode_header(h, hdr) != hlen)
		return -EINVAL;
	return write_all(fd, hdr, hlen);
}

/* Minor 2: the digest of every page of BLOCKS. */
static void fill_pages(struct index_header *h, const unsigned char *blocks)
{
	uint64_t i, n;

	h->bpage = pick_bpage(h->nblocks);
	h->npages = (uint32_t)((h->nblocks + h->bpage - 1) / h->bpage);
	for (i = 0; i < h->npages; i++) {
		n = h->nblocks - i * h->bpage;
		if (n > h->bpage)
			n = h->bpage;
		sha256(blocks + i * h->bpage * BLOCKS_DIGEST,
		       (size_t)(n * BLOCKS_DIGEST), h->page_sha256[i]);
	}
}

int index_write(const char *path, struct index_header *hdr,
		const struct index_members *m, const struct seek_index *si,
		const unsigned char *blocks, const struct index_windows *w)
{
	struct buf praw = {0}, pz = {0}, mz = {0};
	struct index_section_desc *bsec = &hdr->sec[INDEX_BLOCKS];
	struct util_atomic af;
	uint64_t wtotal = 0;
	int rc;

	if (strlen(hdr->identity) > INDEX_MAX_IDENTITY ||
	    strlen(hdr->signer) > INDEX_MAX_SIGNER ||
	    strlen(hdr->bind.name) > INDEX_MAX_NAME ||
	    strlen(hdr->bind.version) > INDEX_MAX_TAG ||
	    strlen(hdr->bind.toolchain) > INDEX_MAX_TAG ||
	    hdr->block_size < BLOCKS_MIN_SIZE ||
	    hdr->block_size > BLOCKS_MAX_SIZE)
		return -EINVAL;
	hdr->codec = si->codec;
	hdr->usize = si->usize;
	hdr->nmembers = index_members_count(m);
	hdr->npoints = si->n;
	hdr->nblocks = blocks_count_for(hdr->artifact_size, hdr->block_size);
	bsec->len = bsec->rawlen = hdr->nblocks * BLOCKS_DIGEST;
	sha256(blocks, (size_t)bsec->len, bsec->sha256);
	fill_pages(hdr, blocks);
	rc = build_points(si, &praw, w, &wtotal);
	hdr->sec[INDEX_WINDOWS].len = hdr->sec[INDEX_WINDOWS].rawlen = wtotal;
	if (!rc)
		rc = compress_section(index_members_buf(m), &mz,
				      &hdr->sec[INDEX_MEMBERS]);
	if (!rc)
		rc = compress_section(&praw, &pz, &hdr->sec[INDEX_POINTS]);
	if (rc)
		goto out;
	rc = util_atomic_open(&af, path);
	if (!rc)
		rc = util_atomic_finish(
		    &af, write_file(af.f, hdr, &mz, &pz, blocks, si, w));
out:
	free(praw.p);
	free(pz.p);
	free(mz.p);
	return rc;
}

void index_url_basename(const char *url, char *out, size_t outlen)
{
	const char *auth = strstr(url, "://");
	size_t end = strcspn(url, "?#"), start = end;

	while (start > 0 && url[start - 1] != '/')
		start--;
	/* "scheme://user@host" names no file */
	if (auth && start <= (size_t)(auth - url) + 3)
		start = end;
	if (!outlen)
		return;
	if (end - start >= outlen)
		end = start + outlen - 1;
	memcpy(out, url + start, end - start);
	out[end - start] = '\0';
}

/* ---- reading through a fetch ---- */

static int decompress_section(const unsigned char *stored,
			      const struct index_section_desc *d,
			      unsigned char **out)
{
	unsigned char md[32];
	unsigned char *raw;
	size_t n;

	sha256(stored, (size_t)d->len, md);
	if (memcmp(md, d->sha256, 32))
		return -EBADMSG;
	raw = malloc(d->rawlen ? (size_t)d->rawlen : 1);
	if (!raw)
		return -ENOMEM;
	n = ZSTD_decompress(raw, (size_t)d->rawlen, stored, (size_t)d->len);
	if (ZSTD_isError(n) || n != d->rawlen) {
		free(raw);
		return -EINVAL;
	}
	*out = raw;
	return 0;
}

/* Reads the first INDEX_HEADER_MAX bytes (or all of a smaller file) into
 * buf, *held of them, and checks the header they start with. */
static int load_header(struct fetch *idx, uint64_t artifact_size,
		       struct index_header *h, unsigned char *buf, size_t *held,
		       index_check_cb check, void *check_arg, char *err,
		       size_t errlen)
{
	uint64_t size = fetch_size(idx);
	size_t n = size < INDEX_HEADER_MAX ? (size_t)size : INDEX_HEADER_MAX;
	int rc = fetch_range(idx, 0, n, buf, 0);

	*held = n;
	if (rc) {
		snprintf(err, errlen, "cannot read it: %s", strerror(-rc));
		return rc;
	}
	rc = index_parse_header(buf, n, h);
	if (rc == -EFBIG) {
		index_budget_check(h, err, errlen);
	} else if (rc == -EPROTO) {
		snprintf(err, errlen,
			 "format version %u.%u, this sffs reads "
			 "%u.x to %u.x",
			 h->major, h->minor, (unsigned)INDEX_MAJOR_MIN,
			 (unsigned)INDEX_MAJOR);
	} else if (rc) {
		snprintf(err, errlen,
			 "not a valid index header (truncated or "
			 "corrupt)");
	} else if (h->sec[INDEX_WINDOWS].off + h->sec[INDEX_WINDOWS].len !=
		   size) {
		rc = -EINVAL;
		snprintf(err, errlen,
			 "index file is %" PRIu64 " bytes, its "
			 "header says %" PRIu64,
			 size,
			 h->sec[INDEX_WINDOWS].off + h->sec[INDEX_WINDOWS].len);
	} else if (h->artifact_size != artifact_size) {
		rc = -ESTALE;
		snprintf(err, errlen,
			 "index is for an artifact of %" PRIu64
			 " bytes, this one has %" PRIu64,
			 h->artifact_size, artifact_size);
	} else if (check) {
		rc = check(check_arg, buf, h, err, errlen);
	}
	return rc;
}

/* The len bytes at off into out: those among the first held bytes of
 * the file (the header's read brought them) are copied, one request
 * fetches the rest. */
static int fetch_eager(struct fetch *idx, const unsigned char *head,
		       size_t held, uint64_t off, size_t len,
		       unsigned char *out)
{
	size_t have = 0;

	if (off < held)
		have = held - off < len ? held - (size_t)off : len;
	if (have)
		memcpy(out, head + off, have);
	if (have == len)
		return 0;
	return fetch_range(idx, off + have, len - have, out + have, 0);
}

/* Copies the raw BLOCKS section after checking its digest. */
static int copy_blocks(const unsigned char *stored,
		       const struct index_section_desc *d, unsigned char **out)
{
	unsigned char md[32];

	sha256(stored, (size_t)d->len, md);
	if (memcmp(md, d->sha256, 32))
		return -EBADMSG;
	*out = malloc(d->len ? (size_t)d->len : 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, stored, (size_t)d->len);
	return 0;
}

int index_edge_digests(struct fetch *f, unsigned char first[32],
		       unsigned char last[32])
{
	unsigned char buf[INDEX_EDGE];
	uint64_t size = fetch_size(f);
	size_t n = size < INDEX_EDGE ? (size_t)size : INDEX_EDGE;
	int rc = fetch_range(f, 0, n, buf, 0);

	if (!rc) {
		sha256(buf, n, first);
		rc = fetch_range(f, size - n, n, buf, 0);
	}
	if (!rc)
		sha256(buf, n, last);
	return rc;
}

int index_load(struct fetch *idx, uint64_t artifact_size,
	       struct index_header *h, struct tree *t, struct seek_index **si,
	       unsigned char **blocks, index_check_cb check, void *check_arg,
	       char *err, size_t errlen)
{
	const struct index_section_desc *ms = &h->sec[INDEX_MEMBERS];
	const struct index_section_desc *ps = &h->sec[INDEX_POINTS];
	const struct index_section_desc *bsd = &h->sec[INDEX_BLOCKS];
	unsigned char *eager = NULL, *mraw = NULL, *praw = NULL;
	unsigned char head[INDEX_HEADER_MAX];
	size_t held = 0;
	int rc = load_header(idx, artifact_size, h, head, &held, check,
			     check_arg, err, errlen);
	uint64_t blen = blocks ? bsd->len : 0;

	*si = NULL;
	if (blocks)
		*blocks = NULL;
	if (rc)
		return rc;
	/* MEMBERS, POINTS and (when asked for) BLOCKS in one request. */
	eager = malloc((size_t)(ms->len + ps->len + blen) + 1);
	if (!eager)
		return -ENOMEM;
	rc = fetch_eager(idx, head, held, ms->off,
			 (size_t)(ms->len + ps->len + blen), eager);
	if (rc) {
		snprintf(err, errlen, "cannot read it: %s", strerror(-rc));
		goto out;
	}
	rc = decompress_section(eager, ms, &mraw);
	if (!rc)
		rc = decompress_section(eager + ms->len, ps, &praw);
	if (!rc && blocks)
		rc = copy_blocks(eager + ms->len + ps->len, bsd, blocks);
	if (rc) {
		snprintf(err, errlen, "a section is corrupt (%s)",
			 rc == -EBADMSG ? "SHA-256 mismatch" : "bad zstd data");
		goto out;
	}
	rc = index_parse_points(praw, (size_t)ps->rawlen, h, si);
	if (!rc)
		rc = index_members_parse(mraw, (size_t)ms->rawlen, h->nmembers,
					 h->major, t);
	if (rc)
		snprintf(err, errlen, "malformed %s section",
			 *si ? "member" : "seek-point");
out:
	if (rc) {
		seek_index_free(*si);
		*si = NULL;
		if (blocks) {
			free(*blocks);
			*blocks = NULL;
		}
	}
	free(praw);
	free(mraw);
	free(eager);
	return rc;
}

int index_load_window(struct fetch *idx, const struct index_header *h,
		      const struct seek_point *pt, unsigned char **out)
{
	unsigned char md[32];
	unsigned char *w;
	int rc;

	if (!pt->wlen)
		return -EINVAL;
	w = malloc(pt->wlen);
	if (!w)
		return -ENOMEM;
	rc = fetch_range(idx, h->sec[INDEX_WINDOWS].off + pt->woff, pt->wlen, w,
			 0);
	if (!rc) {
		sha256(w, pt->wlen, md);
		if (memcmp(md, pt->wdigest, 32))
			rc = -EIO;
	}
	if (rc) {
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}
