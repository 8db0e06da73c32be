/* SPDX-License-Identifier: MIT */
/*
 * relocate.c - Spack's relocation (rpath and interpreter, C strings in
 * binaries, text files, symlinks) as pure functions; see relocate.h.
 *
 * Spack does its string work with Python regular expressions; the
 * matchers here do the same searches by hand, with the same leftmost,
 * first-alternative-wins choices, so the bytes come out identical.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sffs/relocate.h"

/* Spack's suffix_safety_size: C-string suffixes this long may be aliased
 * by the linker and must be kept. */
#define SUFFIX_SAFETY 7

/* A map prepared for matching: lengths, and which bytes start a key. */
struct pmap {
	size_t n;
	const unsigned char **old, **new;
	size_t *oldlen, *newlen;
	bool first[256];
	int only_first; /* the one byte every key starts with, or -1 */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* skip_identity: drop pairs that map a prefix to itself, as Spack's
 * PrefixReplacer does (its rpath and symlink code does not). */
static void pmap_release(struct pmap *pm)
{
	free(pm->old);
	free(pm->oldlen);
}

static int pmap_init(struct pmap *pm, const struct reloc_map *map,
		     bool skip_identity)
{
	size_t cap;

	memset(pm, 0, sizeof(*pm));
	pm->only_first = -1;
	if (!map || (map->n && !map->pairs) || map->n > SIZE_MAX / 32)
		return -EINVAL;
	cap = map->n ? map->n : 1;
	pm->old = calloc(2 * cap, sizeof(*pm->old));
	pm->oldlen = calloc(2 * cap, sizeof(*pm->oldlen));
	if (!pm->old || !pm->oldlen) {
		pmap_release(pm);
		return -ENOMEM;
	}
	pm->new = pm->old + cap;
	pm->newlen = pm->oldlen + cap;
	for (size_t i = 0; i < map->n; i++) {
		const char *o = map->pairs[i].old_prefix;
		const char *nw = map->pairs[i].new_prefix;

		if (!o || !nw || !o[0]) {
			pmap_release(pm);
			return -EINVAL;
		}
		if (skip_identity && strcmp(o, nw) == 0)
			continue;
		pm->old[pm->n] = (const unsigned char *)o;
		pm->new[pm->n] = (const unsigned char *)nw;
		pm->oldlen[pm->n] = strlen(o);
		pm->newlen[pm->n] = strlen(nw);
		pm->first[(unsigned char)o[0]] = true;
		if (pm->n == 0 || pm->only_first == (unsigned char)o[0])
			pm->only_first = (unsigned char)o[0];
		else
			pm->only_first = -2;
		pm->n++;
	}
	if (pm->only_first < 0)
		pm->only_first = -1;
	return 0;
}

/* The first key (in map order) that matches s[pos..len), or -1. */
static int match_at(const struct pmap *pm, const unsigned char *s, size_t len,
		    size_t pos)
{
	if (pos >= len || !pm->first[s[pos]])
		return -1;
	for (size_t k = 0; k < pm->n; k++)
		if (pm->oldlen[k] <= len - pos &&
		    memcmp(s + pos, pm->old[k], pm->oldlen[k]) == 0)
			return (int)k;
	return -1;
}

/* The leftmost position >= pos where a key matches; *key gets it. */
static size_t find_next(const struct pmap *pm, const unsigned char *s,
			size_t len, size_t pos, int *key)
{
	while (pos < len) {
		if (pm->only_first >= 0) {
			const unsigned char *c =
			    memchr(s + pos, pm->only_first, len - pos);
			if (!c)
				break;
			pos = (size_t)(c - s);
		}
		*key = match_at(pm, s, len, pos);
		if (*key >= 0)
			return pos;
		pos++;
	}
	*key = -1;
	return len;
}

/* ---- patch regions ---- */

struct region {
	uint64_t off, len;
};

struct regions {
	struct region *r;
	size_t n, cap;
};

static int regions_add(struct regions *rs, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 16;
		struct region *r = realloc(rs->r, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		rs->r = r;
		rs->cap = cap;
	}
	rs->r[rs->n].off = off;
	rs->r[rs->n].len = len;
	rs->n++;
	return 0;
}

static int region_cmp(const void *a, const void *b)
{
	const struct region *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Sorts and merges overlapping or touching regions (up to 4 GiB each). */
static void regions_merge(struct regions *rs)
{
	size_t w = 0;

	if (rs->n == 0)
		return;
	qsort(rs->r, rs->n, sizeof(*rs->r), region_cmp);
	for (size_t i = 1; i < rs->n; i++) {
		struct region *cur = &rs->r[w];
		uint64_t end = cur->off + cur->len;
		uint64_t nend = rs->r[i].off + rs->r[i].len;

		if (rs->r[i].off <= end && nend - cur->off <= UINT32_MAX) {
			if (nend > end)
				cur->len = nend - cur->off;
			continue;
		}
		rs->r[++w] = rs->r[i];
	}
	rs->n = w + 1;
}

/* One allocation: the patch array, then the bytes of every patch, taken
 * from the relocated copy. */
static int regions_to_patches(const struct regions *rs,
			      const unsigned char *relocated,
			      struct reloc_patch **out, size_t *n)
{
	size_t bytes = 0;
	struct reloc_patch *p;
	unsigned char *pool;

	for (size_t i = 0; i < rs->n; i++)
		bytes += rs->r[i].len;
	p = malloc(rs->n * sizeof(*p) + bytes);
	if (!p)
		return -ENOMEM;
	pool = (unsigned char *)(p + rs->n);
	for (size_t i = 0; i < rs->n; i++) {
		p[i].off = rs->r[i].off;
		p[i].len = (uint32_t)rs->r[i].len;
		p[i].data = pool;
		memcpy(pool, relocated + rs->r[i].off, rs->r[i].len);
		pool += rs->r[i].len;
	}
	*out = p;
	*n = rs->n;
	return 0;
}

/* ---- phase 1: rpath and interpreter (Spack's util/elf.py) ---- */

/* Appends n bytes at *o: into dst when it is not NULL (a first pass only
 * measures). */
static void emit(unsigned char *dst, size_t *o, const void *src, size_t n)
{
	if (dst)
		memcpy(dst + *o, src, n);
	*o += n;
}

/* Writes the new rpath into dst (when not NULL); returns its length.
 * Empty components (padding colons) are dropped, as Spack drops them; each
 * other one gets the new prefix of the first old prefix it starts with. */
static size_t rpath_build(const struct pmap *pm, const unsigned char *s,
			  size_t len, unsigned char *dst, bool *changed)
{
	size_t o = 0, i = 0;
	bool first = true;

	while (i < len) {
		const unsigned char *comp = s + i;
		const unsigned char *c = memchr(comp, ':', len - i);
		size_t clen = c ? (size_t)(c - comp) : len - i;
		size_t skip = 0;
		int k;

		i += clen + 1;
		if (clen == 0)
			continue;
		if (!first)
			emit(dst, &o, ":", 1);
		first = false;
		k = match_at(pm, comp, clen, 0);
		if (k >= 0) {
			emit(dst, &o, pm->new[k], pm->newlen[k]);
			skip = pm->oldlen[k];
			*changed = true;
		}
		emit(dst, &o, comp + skip, clen - skip);
	}
	return o;
}

struct cstr_update {
	bool set;
	uint64_t off;
	size_t oldlen, newlen;
	unsigned char *val; /* newlen bytes */
};

static int rpath_update(const struct pmap *pm, const unsigned char *b,
			const struct reloc_elf_info *info,
			struct cstr_update *u)
{
	const unsigned char *s = b + info->rpath_off;
	bool changed = false;
	size_t nl;

	if (!info->has_rpath)
		return 0;
	nl = rpath_build(pm, s, info->rpath_len, NULL, &changed);
	if (!changed)
		return 0;
	u->val = malloc(nl + 1);
	if (!u->val)
		return -ENOMEM;
	rpath_build(pm, s, info->rpath_len, u->val, &changed);
	u->set = true;
	u->off = info->rpath_off;
	u->oldlen = info->rpath_len;
	u->newlen = nl;
	return 0;
}

static int interp_update(const struct pmap *pm, const unsigned char *b,
			 const struct reloc_elf_info *info,
			 struct cstr_update *u)
{
	const unsigned char *s = b + info->interp_off;
	int k;

	if (!info->has_interp)
		return 0;
	k = match_at(pm, s, info->interp_len, 0);
	if (k < 0)
		return 0;
	u->newlen = pm->newlen[k] + info->interp_len - pm->oldlen[k];
	u->val = malloc(u->newlen + 1);
	if (!u->val)
		return -ENOMEM;
	memcpy(u->val, pm->new[k], pm->newlen[k]);
	memcpy(u->val + pm->newlen[k], s + pm->oldlen[k],
	       info->interp_len - pm->oldlen[k]);
	u->set = true;
	u->off = info->interp_off;
	u->oldlen = info->interp_len;
	return 0;
}

/* The new value, then NUL bytes over what it shortened. */
static int cstr_apply(const struct cstr_update *u, unsigned char *w,
		      struct regions *rs)
{
	if (!u->set)
		return 0;
	memcpy(w + u->off, u->val, u->newlen);
	memset(w + u->off + u->newlen, 0, u->oldlen - u->newlen);
	return regions_add(rs, u->off, u->oldlen);
}

static int phase1(const struct pmap *pm, unsigned char *w, size_t len,
		  struct regions *rs, char *err, size_t errlen)
{
	struct reloc_elf_info info;
	struct cstr_update rp = {0}, in = {0};
	int rc;

	/* Like Spack: a file that does not parse keeps rpath and interp. */
	if (reloc_elf_parse(w, len, &info) < 0)
		return 0;
	rc = rpath_update(pm, w, &info, &rp);
	if (rc == 0)
		rc = interp_update(pm, w, &info, &in);
	if (rc < 0)
		goto out_free;
	if ((rp.set && rp.newlen > rp.oldlen) ||
	    (in.set && in.newlen > in.oldlen)) {
		set_err(err, errlen, "the new %s is longer than the old one",
			rp.set && rp.newlen > rp.oldlen ? "rpath"
							: "interpreter");
		rc = -ENAMETOOLONG;
		goto out_free;
	}
	rc = cstr_apply(&rp, w, rs);
	if (rc == 0)
		rc = cstr_apply(&in, w, rs);
out_free:
	free(rp.val);
	free(in.val);
	return rc;
}

/* ---- phase 2: C strings (Spack's relocate_text_bin) ---- */

/* Python's s[-m:] for m > 0: the last min(m, len) bytes. */
static bool tails_equal(const unsigned char *a, size_t alen,
			const unsigned char *b, size_t blen, size_t m)
{
	size_t ta = alen < m ? alen : m, tb = blen < m ? blen : m;

	return ta == tb && memcmp(a + alen - ta, b + blen - tb, ta) == 0;
}

/* Rewrites the match of key k at p in w; *next is where the search goes
 * on (after the prefix, and its C string's end when one was seen). */
static int replace_one(const struct pmap *pm, int k, unsigned char *w,
		       size_t len, size_t p, size_t *next, struct regions *rs,
		       char *err, size_t errlen)
{
	size_t ol = pm->oldlen[k], nl = pm->newlen[k], end1 = p + ol;
	size_t win =
	    len - end1 < SUFFIX_SAFETY + 1 ? len - end1 : SUFFIX_SAFETY + 1;
	const unsigned char *nul = memchr(w + end1, 0, win);
	size_t suf = nul ? (size_t)(nul - (w + end1)) : 0;

	*next = nul ? end1 + suf + 1 : end1;
	if (nl > ol) {
		set_err(err, errlen,
			"cannot replace %s with %s: the new prefix is longer",
			(const char *)pm->old[k], (const char *)pm->new[k]);
		return -ENAMETOOLONG;
	}
	if (!nul || suf >= SUFFIX_SAFETY ||
	    tails_equal(pm->old[k], ol, pm->new[k], nl, SUFFIX_SAFETY - suf)) {
		memset(w + p, '/', ol - nl);
		memcpy(w + p + ol - nl, pm->new[k], nl);
		return regions_add(rs, p, ol);
	}
	if (ol - nl > SUFFIX_SAFETY) {
		/* new prefix, then the old suffix and its NUL moved up */
		memcpy(w + p, pm->new[k], nl);
		memmove(w + p + nl, w + end1, suf + 1);
		return regions_add(rs, p, nl + suf + 1);
	}
	set_err(err, errlen, "cannot replace %s with %s in a C string",
		(const char *)pm->old[k], (const char *)pm->new[k]);
	return -ENAMETOOLONG;
}

static int phase2(const struct pmap *pm, unsigned char *w, size_t len,
		  struct regions *rs, char *err, size_t errlen)
{
	size_t pos = 0;

	while (pos < len && pm->n) {
		int k;
		size_t p = find_next(pm, w, len, pos, &k);
		int rc;

		if (k < 0)
			break;
		rc = replace_one(pm, k, w, len, p, &pos, rs, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int reloc_elf_patches_inplace(void *elf, size_t len,
			      const struct reloc_map *map,
			      struct reloc_patch **out, size_t *n, char *err,
			      size_t errlen)
{
	struct pmap all, moved;
	struct regions rs = {0};
	int rc;

	*out = NULL;
	*n = 0;
	rc = pmap_init(&all, map, false);
	if (rc < 0)
		return rc;
	rc = all.n ? pmap_init(&moved, map, true) : -EINVAL;
	if (rc < 0)
		goto out_all;
	/* Phase 2 sees the bytes phase 1 left, as Spack's second pass does */
	rc = phase1(&all, elf, len, &rs, err, errlen);
	if (rc == 0)
		rc = phase2(&moved, elf, len, &rs, err, errlen);
	if (rc == 0 && rs.n) {
		regions_merge(&rs);
		rc = regions_to_patches(&rs, elf, out, n);
	}
	free(rs.r);
	pmap_release(&moved);
out_all:
	pmap_release(&all);
	return rc;
}

int reloc_elf_patches(const void *elf, size_t len, const struct reloc_map *map,
		      struct reloc_patch **out, size_t *n, char *err,
		      size_t errlen)
{
	unsigned char *w = malloc(len ? len : 1);
	int rc;

	*out = NULL;
	*n = 0;
	if (!w)
		return -ENOMEM;
	memcpy(w, elf, len);
	rc = reloc_elf_patches_inplace(w, len, map, out, n, err, errlen);
	free(w);
	return rc;
}

void reloc_patches_free(struct reloc_patch *p)
{
	free(p);
}

void reloc_apply(const struct reloc_patch *p, size_t n, uint64_t off, void *buf,
		 size_t len)
{
	uint64_t end = off + len;
	size_t lo = 0, hi = n;

	/* the first patch that ends after off */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p[mid].off + p[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < n && p[i].off < end; i++) {
		uint64_t s = p[i].off > off ? p[i].off : off;
		uint64_t e =
		    p[i].off + p[i].len < end ? p[i].off + p[i].len : end;

		memcpy((unsigned char *)buf + (s - off),
		       p[i].data + (s - p[i].off), e - s);
	}
}

/* ---- stored patch lists ---- */

#define REC_SIZE 12u /* u64 offset, u32 length */

static void put_le(unsigned char *b, uint64_t v, unsigned size)
{
	for (unsigned i = 0; i < size; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *b, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

int reloc_patches_encode(const struct reloc_patch *p, size_t n, void **out,
			 size_t *outlen)
{
	size_t total = 4, o;
	unsigned char *b;

	*out = NULL;
	*outlen = 0;
	for (size_t i = 0; i < n; i++) {
		total += REC_SIZE + p[i].len;
		if (total > RELOC_STORED_MAX)
			return -EFBIG;
	}
	b = malloc(total);
	if (!b)
		return -ENOMEM;
	put_le(b, n, 4);
	o = 4 + n * REC_SIZE;
	for (size_t i = 0; i < n; i++) {
		put_le(b + 4 + i * REC_SIZE, p[i].off, 8);
		put_le(b + 4 + i * REC_SIZE + 8, p[i].len, 4);
		memcpy(b + o, p[i].data, p[i].len);
		o += p[i].len;
	}
	*out = b;
	*outlen = total;
	return 0;
}

/* Checks every record against the file and its predecessor; returns the
 * sum of the lengths, or SIZE_MAX when a record is bad. */
static size_t check_records(const unsigned char *rec, size_t n,
			    uint64_t file_size)
{
	uint64_t end = 0, sum = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t off = get_le(rec + i * REC_SIZE, 8);
		uint64_t len = get_le(rec + i * REC_SIZE + 8, 4);

		if (len == 0 || off < end || off > file_size ||
		    len > file_size - off)
			return SIZE_MAX;
		end = off + len;
		sum += len;
		if (sum > RELOC_STORED_MAX)
			return SIZE_MAX;
	}
	return (size_t)sum;
}

int reloc_patches_decode(const void *buf, size_t len, uint64_t file_size,
			 struct reloc_patch **out, size_t *n)
{
	const unsigned char *b = buf;
	struct reloc_patch *p;
	const unsigned char *data;
	size_t count, bytes;

	*out = NULL;
	*n = 0;
	if (len < 4 || len > RELOC_STORED_MAX)
		return -EINVAL;
	count = (size_t)get_le(b, 4);
	if (count > (len - 4) / REC_SIZE)
		return -EINVAL;
	bytes = check_records(b + 4, count, file_size);
	if (bytes == SIZE_MAX || bytes != len - 4 - count * REC_SIZE)
		return -EINVAL;
	if (count == 0)
		return 0;
	p = malloc(count * sizeof(*p) + bytes);
	if (!p)
		return -ENOMEM;
	memcpy(p + count, b + 4 + count * REC_SIZE, bytes);
	data = (const unsigned char *)(p + count);
	for (size_t i = 0; i < count; i++) {
		p[i].off = get_le(b + 4 + i * REC_SIZE, 8);
		p[i].len = (uint32_t)get_le(b + 4 + i * REC_SIZE + 8, 4);
		p[i].data = data;
		data += p[i].len;
	}
	*out = p;
	*n = count;
	return 0;
}

/* ---- text files (Spack's relocate_text) ---- */

/* Python's bytes \w (ASCII), '-' and '_': what may come before a prefix
 * inside the same path word. */
static bool is_word(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A match starts at p (no word character or '/' before it), skips word
 * characters lazily and needs a key right after them. Returns where the
 * key starts, or SIZE_MAX. */
static size_t text_match(const struct pmap *pm, const unsigned char *s,
			 size_t len, size_t p, int *key)
{
	size_t q = p;

	if (p > 0 && (is_word(s[p - 1]) || s[p - 1] == '/'))
		return SIZE_MAX;
	for (;;) {
		*key = match_at(pm, s, len, q);
		if (*key >= 0)
			return q;
		if (q >= len || !is_word(s[q]))
			return SIZE_MAX;
		q++;
	}
}

/* One pass; writes into dst when not NULL. Returns the output length, or
 * SIZE_MAX past RELOC_TEXT_MAX. */
static size_t text_pass(const struct pmap *pm, const unsigned char *s,
			size_t len, unsigned char *dst, size_t *nmatch)
{
	size_t p = 0, copied = 0, o = 0;

	*nmatch = 0;
	while (p < len) {
		int k;
		size_t q = text_match(pm, s, len, p, &k);

		if (q == SIZE_MAX) {
			p++;
			continue;
		}
		emit(dst, &o, s + copied, q - copied);
		emit(dst, &o, pm->new[k], pm->newlen[k]);
		(*nmatch)++;
		if (o > RELOC_TEXT_MAX)
			return SIZE_MAX;
		copied = q + pm->oldlen[k];
		/* the rest of the path word is part of the match */
		p = copied;
		while (p < len && (is_word(s[p]) || s[p] == '/'))
			p++;
	}
	emit(dst, &o, s + copied, len - copied);
	return o > RELOC_TEXT_MAX ? SIZE_MAX : o;
}

int reloc_text(const void *in, size_t len, const struct reloc_map *map,
	       void **out, size_t *outlen)
{
	struct pmap pm;
	size_t n, nmatch;
	int rc;

	*out = NULL;
	*outlen = len;
	rc = pmap_init(&pm, map, true);
	if (rc < 0)
		return rc;
	if (pm.n == 0)
		goto out_pm;
	n = text_pass(&pm, in, len, NULL, &nmatch);
	rc = n == SIZE_MAX ? -EFBIG : 0;
	if (rc < 0 || nmatch == 0)
		goto out_pm;
	*out = malloc(n ? n : 1);
	if (!*out) {
		rc = -ENOMEM;
		goto out_pm;
	}
	text_pass(&pm, in, len, *out, &nmatch);
	*outlen = n;
out_pm:
	pmap_release(&pm);
	return rc;
}

/* ---- symlinks (Spack's relocate_links) ---- */

int reloc_link(const char *target, const struct reloc_map *map, char **out)
{
	struct pmap pm;
	size_t len = strlen(target);
	int rc, k;

	*out = NULL;
	rc = pmap_init(&pm, map, false);
	if (rc < 0)
		return rc;
	k = target[0] == '/'
		? match_at(&pm, (const unsigned char *)target, len, 0)
		: -1;
	if (k >= 0) {
		*out = malloc(pm.newlen[k] + len - pm.oldlen[k] + 1);
		rc = *out ? 0 : -ENOMEM;
	}
	if (*out) {
		memcpy(*out, pm.new[k], pm.newlen[k]);
		memcpy(*out + pm.newlen[k], target + pm.oldlen[k],
		       len - pm.oldlen[k] + 1);
	}
	pmap_release(&pm);
	return rc;
}
