/* SPDX-License-Identifier: MIT */
/*
 * index_header.c - the .sfidx header (docs/index-format.md): its fixed
 * fields, section table, identity, signer record, block-digest pages and
 * 3.1 binding, encoded and parsed with every length bounded, and the
 * budgets a header's sections must keep for the artifact's size.
 */
#include "sffs/index.h"
#include "index_i.h"
#include "sffs/blocks.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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
size_t index_header_len(const struct index_header *h)
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

size_t index_encode_header(const struct index_header *h, unsigned char *p)
{
	size_t idlen = strlen(h->identity), slen = strlen(h->signer), k;
	size_t hlen = index_header_len(h);
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
	index_sha256(p, hlen - 32, p + hlen - 32);
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
uint32_t index_pick_bpage(uint64_t nblocks)
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
	index_sha256(p, h->hlen - 32, md);
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
