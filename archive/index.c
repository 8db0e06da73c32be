/* SPDX-License-Identifier: MIT */
/*
 * index.c - write and read .sfidx files (docs/index-format.md); the
 * header's codec and budgets are index_header.c's.
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
#define MAX_WLEN 65536u

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
	index_sha256(out->p, n, d->sha256);
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
			index_sha256(pt->window, pt->wlen, wd);
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
	size_t hlen = index_header_len(h);
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
	if (index_encode_header(h, hdr) != hlen)
		return -EINVAL;
	return write_all(fd, hdr, hlen);
}

/* Minor 2: the digest of every page of BLOCKS. */
static void fill_pages(struct index_header *h, const unsigned char *blocks)
{
	uint64_t i, n;

	h->bpage = index_pick_bpage(h->nblocks);
	h->npages = (uint32_t)((h->nblocks + h->bpage - 1) / h->bpage);
	for (i = 0; i < h->npages; i++) {
		n = h->nblocks - i * h->bpage;
		if (n > h->bpage)
			n = h->bpage;
		index_sha256(blocks + i * h->bpage * BLOCKS_DIGEST,
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
	index_sha256(blocks, (size_t)bsec->len, bsec->sha256);
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

	index_sha256(stored, (size_t)d->len, md);
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

	index_sha256(stored, (size_t)d->len, md);
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
		index_sha256(buf, n, first);
		rc = fetch_range(f, size - n, n, buf, 0);
	}
	if (!rc)
		index_sha256(buf, n, last);
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
		index_sha256(w, pt->wlen, md);
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
