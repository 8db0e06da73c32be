/* SPDX-License-Identifier: MIT */
/*
 * tar.c - a streaming (push) tar parser; see sffs/tar.h.
 *
 * The parser is a state machine over 512-byte blocks. It gathers one header
 * block, one extended-header payload (pax x/g, GNU L/K) or one sparse block
 * at a time into its own bounded buffers and only counts member data. A
 * member's metadata comes from, in decreasing precedence: the pax local
 * header, the GNU long name/link records, the pax global header (mtime only)
 * and the ustar/GNU/v7 header block itself.
 */
#include "sffs/tar.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLK 512

/* Header field offsets and lengths (POSIX ustar and old GNU layouts). */
enum {
	H_NAME = 0,
	H_MODE = 100,
	H_SIZE = 124,
	H_MTIME = 136,
	H_CHKSUM = 148,
	H_TYPE = 156,
	H_LINK = 157,
	H_MAGIC = 257,
	H_PREFIX = 345,
	H_GNU_SPARSE = 386, /* 4 x (offset[12], numbytes[12]) */
	H_GNU_ISEXT = 482,
	H_GNU_REALSIZE = 483,
	X_ISEXT = 504, /* sparse extension block: 21 pairs, then isextended */
};

enum tar_state {
	ST_HEADER,     /* gathering a header block */
	ST_EXT,	       /* gathering an x/g/L/K payload */
	ST_SPARSE_EXT, /* gathering an old GNU sparse extension block */
	ST_MAP,	       /* gathering a block of a pax 1.0 sparse map */
	ST_SKIP,       /* counting member data and padding */
	ST_ZERO2,      /* after one zero block: is the next one zero too? */
	ST_END,	       /* past the end-of-archive marker */
	ST_ERROR,
};

enum name_state { NB_NONE, NB_SET, NB_LONG, NB_NUL };

/* A name from an extended header, bounded by TAR_MAX_NAME. */
struct name_buf {
	char s[TAR_MAX_NAME + 1];
	size_t len;
	enum name_state st;
};

/* What a pax local header says about the next member. */
struct pax_attrs {
	struct name_buf path, link, sparse_name;
	bool has_size, has_mtime, has_realsize, has_off, sparse_v0;
	uint64_t size, realsize, pend_off;
	int64_t mtime;
	int sparse_major, sparse_minor; /* -1 if absent */
};

struct tar_parser {
	tar_entry_cb entry_cb;
	tar_warn_cb warn_cb;
	void *arg;

	enum tar_state st;
	uint64_t off; /* bytes consumed */
	unsigned char blk[BLK];
	size_t blk_have;

	char *ext; /* extended-header payload, at most TAR_MAX_PAX */
	size_t ext_cap, ext_len, ext_have;
	char ext_type;
	uint64_t skip; /* ST_SKIP: bytes still to count */

	/* State gathered for the next member. */
	bool pending;
	uint64_t member_off;
	struct name_buf longname, longlink;
	struct pax_attrs x;
	bool g_has_mtime;
	int64_t g_mtime;

	/* The member being built. */
	struct tar_entry e;
	uint64_t stored; /* bytes of data area (before padding) */
	bool sparse;
	uint64_t realsize;
	struct tar_sparse *sp;
	size_t nsp, sp_cap;
	size_t map_idx, map_count; /* pax 1.0 map: numbers read / expected */
	uint64_t map_num, map_bytes;
	unsigned map_digits;
	struct name_buf hlink;	    /* link name from the header block */
	const struct name_buf *lnk; /* the link name that applies */
	const char *name_why;	    /* why the chosen name is unusable */
	char why[128];		    /* formatted reasons point here */
	const char *cur;	    /* member name for messages */
	bool skip_ext;		    /* ST_SKIP is extended-header padding */
	size_t rawlen;
	char raw[TAR_MAX_NAME + 1];  /* raw member name */
	char path[TAR_MAX_NAME + 1]; /* normalised */
	char link[TAR_MAX_NAME + 1];

	bool seen_header; /* a header with a valid checksum came by */
	int err;
	char errmsg[TAR_MAX_NAME + 256];
	char warnmsg[TAR_MAX_NAME + 256];
};

static const struct tar_sparse no_segments[1];

static int fail(struct tar_parser *p, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warnf(struct tar_parser *p, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct tar_parser *p, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->errmsg, sizeof(p->errmsg), fmt, ap);
	va_end(ap);
	p->err = err;
	p->st = ST_ERROR;
	return err;
}

static void warnf(struct tar_parser *p, uint64_t off, const char *fmt, ...)
{
	va_list ap;

	if (!p->warn_cb)
		return;
	va_start(ap, fmt);
	vsnprintf(p->warnmsg, sizeof(p->warnmsg), fmt, ap);
	va_end(ap);
	p->warn_cb(p->arg, off, p->warnmsg);
}

static uint64_t round_blk(uint64_t n)
{
	return (n + BLK - 1) & ~(uint64_t)(BLK - 1);
}

static void pax_reset(struct pax_attrs *x)
{
	x->path.st = x->link.st = x->sparse_name.st = NB_NONE;
	x->has_size = x->has_mtime = x->has_realsize = false;
	x->has_off = x->sparse_v0 = false;
	x->sparse_major = x->sparse_minor = -1;
}

static void member_reset(struct tar_parser *p)
{
	p->pending = false;
	p->longname.st = p->longlink.st = NB_NONE;
	pax_reset(&p->x);
	p->nsp = 0;
	p->sparse = false;
	p->map_idx = p->map_count = 0;
	p->map_num = p->map_bytes = 0;
	p->map_digits = 0;
}

struct tar_parser *tar_parser_new(tar_entry_cb entry, tar_warn_cb warn,
				  void *arg)
{
	struct tar_parser *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->entry_cb = entry;
	p->warn_cb = warn;
	p->arg = arg;
	p->st = ST_HEADER;
	member_reset(p);
	return p;
}

void tar_parser_free(struct tar_parser *p)
{
	if (!p)
		return;
	free(p->ext);
	free(p->sp);
	free(p);
}

const char *tar_parser_error(const struct tar_parser *p)
{
	return p->errmsg;
}

uint64_t tar_parser_offset(const struct tar_parser *p)
{
	return p->off;
}

bool tar_parser_seen_header(const struct tar_parser *p)
{
	return p->seen_header;
}

/* ---- numbers ---------------------------------------------------------- */

/* GNU base-256: 0x80 then a big-endian magnitude, or 0xff then a two's
 * complement negative number. */
static int parse_b256(const unsigned char *f, size_t n, int64_t *out)
{
	bool neg = f[0] == 0xff;
	uint64_t v = neg ? UINT64_MAX : 0;
	size_t i;

	for (i = 1; i < n; i++) {
		if (n > 9 && i < n - 8) {
			if (f[i] != (neg ? 0xff : 0))
				return -ERANGE;
			continue;
		}
		v = (v << 8) | f[i];
	}
	if ((v >> 63) != (neg ? 1u : 0u))
		return -ERANGE;
	*out = neg ? -(int64_t)~v - 1 : (int64_t)v;
	return 0;
}

/* A numeric header field: octal padded with spaces/NULs, or base-256. An
 * empty field reads as 0 (as libarchive does). */
static int parse_num(const unsigned char *f, size_t n, int64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] == 0x80 || f[0] == 0xff)
		return parse_b256(f, n, out);
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > ((uint64_t)INT64_MAX >> 3))
			return -ERANGE;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	if (i < n && f[i] != ' ' && f[i] != '\0')
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

/* Decimal digits only, value at most max. */
static int parse_dec(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* A pax time: [-]digits[.digits]; the fraction rounds toward -infinity. */
static int parse_time(const char *s, size_t n, int64_t *out)
{
	bool neg = n > 0 && s[0] == '-';
	const char *dot;
	size_t ilen, i;
	bool frac = false;
	uint64_t v;
	int rc;

	if (neg) {
		s++;
		n--;
	}
	dot = memchr(s, '.', n);
	ilen = dot ? (size_t)(dot - s) : n;
	rc = parse_dec(s, ilen, INT64_MAX - 1, &v);
	if (rc)
		return rc;
	for (i = ilen + 1; dot && i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		frac |= s[i] != '0';
	}
	*out = neg ? -(int64_t)v - (frac ? 1 : 0) : (int64_t)v;
	return 0;
}

/* ---- names ------------------------------------------------------------ */

static void name_set(struct name_buf *nb, const char *s, size_t len)
{
	if (memchr(s, '\0', len)) {
		nb->st = NB_NUL;
	} else if (len > TAR_MAX_NAME) {
		nb->st = NB_LONG;
		nb->len = len; /* for the message; the bytes are not kept */
	} else {
		memcpy(nb->s, s, len);
		nb->s[len] = '\0';
		nb->len = len;
		nb->st = len ? NB_SET : NB_NONE; /* an empty value unsets */
	}
}

/* Drops empty, "." components and leading "/"; NULL or why it is bad (a
 * ".." component, or one longer than NAME_MAX that no lookup could reach).
 * dst holds at least len + 1 bytes. */
static const char *normalise(const char *src, size_t len, char *dst)
{
	size_t i = 0, o = 0;

	while (i < len) {
		size_t j = i, cl;

		while (j < len && src[j] != '/')
			j++;
		cl = j - i;
		if (cl == 2 && src[i] == '.' && src[i + 1] == '.')
			return "a '..' component";
		if (cl > TAR_MAX_COMPONENT)
			return "a component longer than 255 bytes";
		if (cl > 0 && !(cl == 1 && src[i] == '.')) {
			if (o)
				dst[o++] = '/';
			memcpy(dst + o, src + i, cl);
			o += cl;
		}
		i = j + 1;
	}
	dst[o] = '\0';
	return NULL;
}

/* ---- sparse maps ------------------------------------------------------ */

static int sparse_add(struct tar_parser *p, uint64_t off, uint64_t len)
{
	if (p->nsp >= TAR_MAX_SPARSE)
		return fail(p, -E2BIG,
			    "more than %d sparse segments at offset %" PRIu64,
			    TAR_MAX_SPARSE, p->member_off);
	if (p->nsp == p->sp_cap) {
		size_t cap = p->sp_cap ? p->sp_cap * 2 : 16;
		struct tar_sparse *n = realloc(p->sp, cap * sizeof(*n));

		if (!n)
			return fail(p, -ENOMEM, "out of memory");
		p->sp = n;
		p->sp_cap = cap;
	}
	p->sp[p->nsp].off = off;
	p->sp[p->nsp].len = len;
	p->nsp++;
	return 0;
}

/* Drops empty segments and checks order, bounds and the stored total. */
static int sparse_check(struct tar_parser *p, uint64_t avail, uint64_t *sum)
{
	uint64_t end = 0, total = 0;
	size_t i, o = 0;

	for (i = 0; i < p->nsp; i++) {
		struct tar_sparse s = p->sp[i];

		if (s.len == 0)
			continue;
		if (s.off < end || s.off > p->realsize ||
		    s.len > p->realsize - s.off)
			return -EINVAL;
		end = s.off + s.len;
		total += s.len;
		p->sp[o++] = s;
	}
	p->nsp = o;
	if (total > avail)
		return -EINVAL;
	*sum = total;
	return 0;
}

/* Old GNU sparse pairs (offset[12], numbytes[12]); stops at an empty one. */
static int sparse_old(struct tar_parser *p, const unsigned char *f, size_t n)
{
	size_t i;

	for (i = 0; i < n && f[i * 24] != '\0'; i++) {
		int64_t off, len;

		if (parse_num(f + i * 24, 12, &off) ||
		    parse_num(f + i * 24 + 12, 12, &len) || off < 0 ||
		    len < 0 || (uint64_t)off >= TAR_MAX_SIZE ||
		    (uint64_t)len >= TAR_MAX_SIZE)
			return fail(p, -EINVAL,
				    "bad sparse header at offset %" PRIu64,
				    p->off - BLK);
		if (sparse_add(p, (uint64_t)off, (uint64_t)len))
			return p->err;
	}
	return 0;
}

/* GNU.sparse.map: "off,len,off,len..." (sparse 0.1). */
static int sparse_map01(struct tar_parser *p, const char *v, size_t n)
{
	size_t i = 0, k = 0;
	uint64_t num, off = 0;

	while (i < n) {
		const char *c = memchr(v + i, ',', n - i);
		size_t e = c ? (size_t)(c - v) : n;

		if (parse_dec(v + i, e - i, TAR_MAX_SIZE - 1, &num))
			return -EINVAL;
		if (k++ % 2 == 0)
			off = num;
		else if (sparse_add(p, off, num))
			return p->err;
		i = e + 1;
		if (c && i == n)
			return -EINVAL;
	}
	return k % 2 ? -EINVAL : 0;
}

/* ---- pax records ------------------------------------------------------ */

static int pax_sparse_key(struct tar_parser *p, const char *k, const char *v,
			  size_t vn)
{
	struct pax_attrs *x = &p->x;
	uint64_t n;

	if (!strcmp(k, "GNU.sparse.name")) {
		name_set(&x->sparse_name, v, vn);
		return 0;
	}
	if (!strcmp(k, "GNU.sparse.map")) {
		x->sparse_v0 = true;
		return sparse_map01(p, v, vn);
	}
	if (parse_dec(v, vn, TAR_MAX_SIZE - 1, &n))
		return -EINVAL;
	if (!strcmp(k, "GNU.sparse.major")) {
		x->sparse_major = n > 1000 ? 1000 : (int)n;
	} else if (!strcmp(k, "GNU.sparse.minor")) {
		x->sparse_minor = n > 1000 ? 1000 : (int)n;
	} else if (!strcmp(k, "GNU.sparse.realsize") ||
		   !strcmp(k, "GNU.sparse.size")) {
		x->realsize = n;
		x->has_realsize = true;
	} else if (!strcmp(k, "GNU.sparse.numblocks")) {
		if (n > TAR_MAX_SPARSE)
			return -E2BIG;
	} else if (!strcmp(k, "GNU.sparse.offset")) {
		x->pend_off = n;
		x->has_off = x->sparse_v0 = true;
	} else if (!strcmp(k, "GNU.sparse.numbytes")) {
		if (!x->has_off)
			return -EINVAL;
		x->has_off = false;
		return sparse_add(p, x->pend_off, n);
	}
	return 0;
}

static int pax_size(struct tar_parser *p, const char *v, size_t vn)
{
	uint64_t n;
	int rc = parse_dec(v, vn, UINT64_MAX, &n);

	if (rc == -ERANGE || (rc == 0 && n >= TAR_MAX_SIZE))
		return fail(p, -E2BIG, "size %.*s too large at offset %" PRIu64,
			    (int)(vn > 40 ? 40 : vn), v, p->member_off);
	if (rc)
		return fail(p, -EINVAL,
			    "bad pax size '%.*s' at offset %" PRIu64,
			    (int)(vn > 40 ? 40 : vn), v, p->member_off);
	p->x.size = n;
	p->x.has_size = true;
	return 0;
}

/* Applies one record; key is NUL-terminated, the value is not. */
static int pax_record(struct tar_parser *p, const char *k, const char *v,
		      size_t vn, bool global)
{
	int64_t t;
	int rc;

	if (!strcmp(k, "mtime")) {
		if (parse_time(v, vn, &t))
			return fail(p, -EINVAL,
				    "bad pax mtime at offset %" PRIu64,
				    p->member_off);
		if (global) {
			p->g_mtime = t;
			p->g_has_mtime = true;
		} else {
			p->x.mtime = t;
			p->x.has_mtime = true;
		}
		return 0;
	}
	if (global)
		return 0; /* a global path/size makes no sense; ignore it */
	if (!strcmp(k, "path"))
		name_set(&p->x.path, v, vn);
	else if (!strcmp(k, "linkpath"))
		name_set(&p->x.link, v, vn);
	else if (!strcmp(k, "size"))
		return pax_size(p, v, vn);
	else if (!strncmp(k, "GNU.sparse.", 11)) {
		rc = pax_sparse_key(p, k, v, vn);
		if (rc && p->st != ST_ERROR)
			return fail(p, rc,
				    "bad pax record %s at offset %" PRIu64, k,
				    p->member_off);
		return rc;
	}
	return 0;
}

/* Parses "LEN key=value\n" records; LEN counts the whole record. */
static int pax_parse(struct tar_parser *p, char *buf, size_t len, bool global)
{
	size_t pos = 0;

	while (pos < len) {
		size_t i = pos, rlen = 0, end;
		char *eq;
		int rc;

		for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
			rlen = rlen * 10 + (size_t)(buf[i] - '0');
			if (rlen > len)
				break;
		}
		if (i == pos || rlen > len - pos || i >= len || buf[i] != ' ' ||
		    pos + rlen < i + 4 || buf[pos + rlen - 1] != '\n')
			return fail(p, -EINVAL,
				    "bad pax record at offset %" PRIu64,
				    p->member_off);
		end = pos + rlen;
		eq = memchr(buf + i + 1, '=', end - 1 - (i + 1));
		if (!eq || eq == buf + i + 1 ||
		    memchr(buf + i + 1, '\0', (size_t)(eq - buf) - i - 1))
			return fail(p, -EINVAL,
				    "bad pax record at offset %" PRIu64,
				    p->member_off);
		*eq = '\0';
		rc = pax_record(p, buf + i + 1, eq + 1,
				(size_t)(buf + end - 1 - (eq + 1)), global);
		if (rc)
			return rc;
		pos = end;
	}
	return 0;
}

/* ---- state transitions ------------------------------------------------ */

static void begin_skip(struct tar_parser *p, uint64_t n)
{
	p->skip = n;
	p->st = n ? ST_SKIP : ST_HEADER;
	p->blk_have = 0;
	p->skip_ext = false;
}

static int ext_done(struct tar_parser *p)
{
	int rc = 0;

	p->ext[p->ext_len] = '\0';
	switch (p->ext_type) {
	case 'L':
		name_set(&p->longname, p->ext, strnlen(p->ext, p->ext_len));
		break;
	case 'K':
		name_set(&p->longlink, p->ext, strnlen(p->ext, p->ext_len));
		break;
	case 'g':
		rc = pax_parse(p, p->ext, p->ext_len, true);
		break;
	default:
		rc = pax_parse(p, p->ext, p->ext_len, false);
		break;
	}
	if (rc)
		return rc;
	begin_skip(p, round_blk(p->ext_len) - p->ext_len);
	p->skip_ext = true;
	return 0;
}

static int ext_begin(struct tar_parser *p, char type, int64_t size)
{
	if ((uint64_t)size > TAR_MAX_PAX)
		return fail(p, -E2BIG,
			    "%s header too large (%" PRId64
			    " bytes) at offset %" PRIu64,
			    type == 'L' || type == 'K' ? "long name" : "pax",
			    size, p->off - BLK);
	if ((size_t)size + 1 > p->ext_cap) {
		char *n = realloc(p->ext, (size_t)size + 1);

		if (!n)
			return fail(p, -ENOMEM, "out of memory");
		p->ext = n;
		p->ext_cap = (size_t)size + 1;
	}
	p->ext_type = type;
	p->ext_len = (size_t)size;
	p->ext_have = 0;
	p->st = ST_EXT;
	if (size == 0)
		return ext_done(p);
	return 0;
}

/* Why the member cannot be accepted, or NULL. Fills p->path and p->link. */
static const char *member_names(struct tar_parser *p)
{
	const struct name_buf *lnk = p->lnk;
	size_t rawlen = p->rawlen;
	const char *why;

	if (p->name_why)
		return p->name_why;
	why = normalise(p->raw, rawlen, p->path);
	if (why)
		return why;
	if (rawlen == 0 || (p->path[0] == '\0' && p->e.type != TAR_DIR))
		return "an empty name";
	if (p->e.type != TAR_SYMLINK && p->e.type != TAR_HARDLINK)
		return NULL;
	if (lnk->st == NB_NUL)
		return "a NUL in its link target";
	if (lnk->st == NB_LONG) {
		snprintf(p->why, sizeof(p->why),
			 "a link target too long (%zu bytes; the limit is %d)",
			 lnk->len, TAR_MAX_NAME);
		return p->why;
	}
	if (lnk->st != NB_SET)
		return "an empty link target";
	if (p->e.type == TAR_SYMLINK) {
		memcpy(p->link, lnk->s, lnk->len + 1);
		return NULL;
	}
	why = normalise(lnk->s, lnk->len, p->link);
	if (why) {
		snprintf(p->why, sizeof(p->why), "%s in its link target", why);
		return p->why;
	}
	return p->link[0] ? NULL : "an empty link target";
}

static int member_emit(struct tar_parser *p)
{
	uint64_t area = round_blk(p->stored) - p->map_bytes;
	const char *why;
	int rc;

	p->e.data_off = p->off;
	p->e.data_len = p->stored - p->map_bytes;
	p->e.sparse = NULL;
	p->e.nsparse = 0;
	if (p->sparse) {
		if (sparse_check(p, p->e.data_len, &p->e.data_len))
			return fail(p, -EINVAL,
				    "bad sparse map at offset %" PRIu64,
				    p->member_off);
		p->e.size = p->realsize;
		p->e.sparse = p->nsp ? p->sp : no_segments;
		p->e.nsparse = p->nsp;
	}
	why = member_names(p);
	member_reset(p);
	begin_skip(p, area);
	p->cur = why ? p->raw : p->path;
	if (why) {
		warnf(p, p->e.header_off, "skipped '%s': %s", p->raw, why);
		return 0;
	}
	p->e.path = p->path;
	p->e.link = p->e.type == TAR_SYMLINK || p->e.type == TAR_HARDLINK
			? p->link
			: NULL;
	rc = p->entry_cb ? p->entry_cb(p->arg, &p->e) : 0;
	if (rc)
		return fail(p, rc, "stopped at '%s' (offset %" PRIu64 "): %s",
			    p->path, p->e.header_off,
			    rc == -E2BIG ? "an index limit was reached"
					 : strerror(-rc));
	return 0;
}

/* ---- header blocks ---------------------------------------------------- */

static bool block_is_zero(const unsigned char *b)
{
	size_t i;

	for (i = 0; i < BLK; i++)
		if (b[i])
			return false;
	return true;
}

/* GNU tar accepts both the unsigned and the (historic) signed sum. */
static bool checksum_ok(const unsigned char *b)
{
	uint64_t usum = 0;
	int64_t ssum = 0, rec;
	size_t i;

	if (parse_num(b + H_CHKSUM, 8, &rec))
		return false;
	for (i = 0; i < BLK; i++) {
		unsigned char c =
		    i >= H_CHKSUM && i < H_CHKSUM + 8 ? ' ' : b[i];

		usum += c;
		ssum += (signed char)c;
	}
	return rec == (int64_t)usum || rec == ssum;
}

/* Picks the raw name and the link name that apply to this member. */
static void header_names(struct tar_parser *p, const unsigned char *b)
{
	const struct name_buf *nb = NULL;
	size_t n = strnlen((const char *)b + H_NAME, 100), pn = 0;

	if (!memcmp(b + H_MAGIC, "ustar\0", 6))
		pn = strnlen((const char *)b + H_PREFIX, 155);
	if (pn) {
		memcpy(p->raw, b + H_PREFIX, pn);
		p->raw[pn++] = '/';
	}
	memcpy(p->raw + pn, b + H_NAME, n);
	p->rawlen = pn + n;
	p->raw[p->rawlen] = '\0';
	if (p->x.sparse_name.st != NB_NONE)
		nb = &p->x.sparse_name;
	else if (p->x.path.st != NB_NONE)
		nb = &p->x.path;
	else if (p->longname.st != NB_NONE)
		nb = &p->longname;
	p->name_why = NULL;
	if (nb && nb->st == NB_SET) {
		memcpy(p->raw, nb->s, nb->len + 1);
		p->rawlen = nb->len;
	} else if (nb && nb->st == NB_NUL) {
		p->name_why = "a NUL in its name";
	} else if (nb) {
		snprintf(p->why, sizeof(p->why),
			 "a name too long (%zu bytes; the limit is %d)",
			 nb->len, TAR_MAX_NAME);
		p->name_why = p->why;
	}
	if (p->x.link.st != NB_NONE) {
		p->lnk = &p->x.link;
	} else if (p->longlink.st != NB_NONE) {
		p->lnk = &p->longlink;
	} else {
		name_set(&p->hlink, (const char *)b + H_LINK,
			 strnlen((const char *)b + H_LINK, 100));
		p->lnk = &p->hlink;
	}
}

/* A member we leave out: count its data and forget the pending state. */
static int member_drop(struct tar_parser *p, bool warn, const char *what)
{
	if (warn)
		warnf(p, p->member_off, "skipped '%s': %s", p->raw, what);
	p->cur = p->raw;
	member_reset(p);
	begin_skip(p, round_blk(p->stored));
	return 0;
}

static int old_sparse_begin(struct tar_parser *p, const unsigned char *b)
{
	int64_t real;
	int rc;

	if (parse_num(b + H_GNU_REALSIZE, 12, &real) || real < 0 ||
	    (uint64_t)real >= TAR_MAX_SIZE)
		return fail(p, -EINVAL, "bad sparse header at offset %" PRIu64,
			    p->off - BLK);
	p->sparse = true;
	p->realsize = (uint64_t)real;
	rc = sparse_old(p, b + H_GNU_SPARSE, 4);
	if (rc)
		return rc;
	if (b[H_GNU_ISEXT]) {
		p->st = ST_SPARSE_EXT;
		return 0;
	}
	return member_emit(p);
}

static int pax_sparse_begin(struct tar_parser *p)
{
	struct pax_attrs *x = &p->x;

	if (!x->has_realsize)
		return fail(
		    p, -EINVAL,
		    "sparse member without a real size at offset %" PRIu64,
		    p->member_off);
	p->sparse = true;
	p->realsize = x->realsize;
	if (x->sparse_major < 1)
		return member_emit(p);
	if (x->sparse_major != 1 || x->sparse_minor != 0 || x->sparse_v0 ||
	    p->stored == 0)
		return fail(
		    p, -EINVAL,
		    "unsupported sparse format %d.%d at offset %" PRIu64,
		    x->sparse_major, x->sparse_minor, p->member_off);
	p->st = ST_MAP;
	return 0;
}

/* Sets e.type from the type flag; returns 1 if the member is left out. */
static int member_type(struct tar_parser *p, char type)
{
	bool slash = p->rawlen && p->raw[p->rawlen - 1] == '/';

	switch (type) {
	case '0':
	case '\0':
	case '7':
	case 'S':
		p->e.type = slash ? TAR_DIR : TAR_REG;
		break;
	case '1':
		p->e.type = TAR_HARDLINK;
		p->stored = 0; /* GNU tar: links have no data on tape */
		break;
	case '2':
		p->e.type = TAR_SYMLINK;
		break;
	case '5':
		p->e.type = TAR_DIR;
		p->stored = 0; /* GNU tar does not skip a directory's size */
		break;
	case 'D': /* GNU dumpdir: a directory whose data lists names */
		p->e.type = TAR_DIR;
		break;
	case '3':
	case '4':
	case '6':
		return member_drop(p, true, "device node or FIFO") + 1;
	case 'V': /* GNU volume label */
		return member_drop(p, false, "") + 1;
	case 'M':
	case 'N':
		return member_drop(p, true,
				   "multi-volume or old long-name member") +
		       1;
	default:
		warnf(p, p->member_off,
		      "'%s': unknown type '%c', read as a regular file", p->raw,
		      type);
		p->e.type = TAR_REG;
		break;
	}
	return 0;
}

static int member_header(struct tar_parser *p, const unsigned char *b,
			 char type, int64_t size)
{
	int64_t mtime, mode;

	if (parse_num(b + H_MTIME, 12, &mtime) ||
	    parse_num(b + H_MODE, 8, &mode))
		return fail(p, -EINVAL, "bad numeric field at offset %" PRIu64,
			    p->off - BLK);
	p->e.header_off = p->member_off;
	p->e.mode = (uint32_t)mode & 07777;
	p->e.mtime = p->x.has_mtime   ? p->x.mtime
		     : p->g_has_mtime ? p->g_mtime
				      : mtime;
	p->stored = p->x.has_size ? p->x.size : (uint64_t)size;
	header_names(p, b);
	if (member_type(p, type))
		return 0;
	p->e.size = p->e.type == TAR_REG ? p->stored : 0;
	if (type == 'S')
		return old_sparse_begin(p, b);
	if (p->e.type == TAR_REG &&
	    (p->x.sparse_v0 || p->x.sparse_major >= 0 || p->x.has_realsize))
		return pax_sparse_begin(p);
	return member_emit(p);
}

static int on_header(struct tar_parser *p)
{
	const unsigned char *b = p->blk;
	uint64_t hoff = p->off - BLK;
	char type = (char)b[H_TYPE];
	int64_t size;

	if (block_is_zero(b)) {
		if (p->pending)
			return fail(p, -EINVAL,
				    "end-of-archive marker after an extended "
				    "header at offset %" PRIu64,
				    hoff);
		p->st = ST_ZERO2;
		return 0;
	}
	if (!checksum_ok(b))
		return fail(p, -EINVAL,
			    "bad header checksum at offset %" PRIu64, hoff);
	p->seen_header = true;
	if (!p->pending) {
		/* A global header belongs to no member. */
		p->pending = type != 'g';
		p->member_off = hoff;
	}
	if (parse_num(b + H_SIZE, 12, &size) || size < 0)
		return fail(p, -EINVAL, "bad size field at offset %" PRIu64,
			    hoff);
	if ((uint64_t)size >= TAR_MAX_SIZE)
		return fail(p, -E2BIG,
			    "size %" PRId64 " too large at offset %" PRIu64,
			    size, hoff);
	if (type == 'x' || type == 'X' || type == 'g' || type == 'L' ||
	    type == 'K')
		return ext_begin(p, type == 'X' ? 'x' : type, size);
	return member_header(p, b, type, size);
}

static int on_sparse_ext(struct tar_parser *p)
{
	int rc = sparse_old(p, p->blk, 21);

	if (rc)
		return rc;
	if (p->blk[X_ISEXT])
		return 0;
	return member_emit(p);
}

/* One number of a pax 1.0 map: the count, then offset/length pairs. */
static int map_number(struct tar_parser *p, uint64_t v)
{
	if (p->map_idx++ == 0) {
		if (v > TAR_MAX_SPARSE)
			return fail(
			    p, -E2BIG,
			    "more than %d sparse segments at offset %" PRIu64,
			    TAR_MAX_SPARSE, p->member_off);
		p->map_count = (size_t)v;
	} else if (p->map_idx % 2 == 0) {
		p->x.pend_off = v;
	} else {
		return sparse_add(p, p->x.pend_off, v);
	}
	return 0;
}

static bool map_done(const struct tar_parser *p)
{
	return p->map_idx > 0 && p->map_idx == 1 + 2 * p->map_count;
}

static int on_map_block(struct tar_parser *p)
{
	size_t i;
	int rc;

	p->map_bytes += BLK;
	if (p->map_bytes > round_blk(p->stored))
		return fail(p, -EINVAL,
			    "sparse map overruns its member at offset %" PRIu64,
			    p->member_off);
	for (i = 0; i < BLK && !map_done(p); i++) {
		unsigned char c = p->blk[i];

		if (c == '\n' && p->map_digits) {
			rc = map_number(p, p->map_num);
			if (rc)
				return rc;
			p->map_num = 0;
			p->map_digits = 0;
		} else if (c >= '0' && c <= '9' &&
			   p->map_num < TAR_MAX_SIZE / 10) {
			p->map_num = p->map_num * 10 + (c - '0');
			p->map_digits++;
		} else {
			return fail(p, -EINVAL,
				    "bad sparse map at offset %" PRIu64,
				    p->member_off);
		}
	}
	if (!map_done(p))
		return 0;
	if (p->map_bytes > p->stored)
		return fail(p, -EINVAL,
			    "sparse map overruns its member at offset %" PRIu64,
			    p->member_off);
	return member_emit(p);
}

/* ---- feeding ---------------------------------------------------------- */

/* Takes what the current state wants from d; *full when it has it all. */
static size_t take(struct tar_parser *p, const unsigned char *d, size_t len,
		   bool *full)
{
	size_t n;

	switch (p->st) {
	case ST_END:
		*full = false;
		return len;
	case ST_SKIP:
		n = len < p->skip ? len : (size_t)p->skip;
		p->skip -= n;
		*full = p->skip == 0;
		return n;
	case ST_EXT:
		n = p->ext_len - p->ext_have;
		n = len < n ? len : n;
		memcpy(p->ext + p->ext_have, d, n);
		p->ext_have += n;
		*full = p->ext_have == p->ext_len;
		return n;
	default:
		n = BLK - p->blk_have;
		n = len < n ? len : n;
		memcpy(p->blk + p->blk_have, d, n);
		p->blk_have += n;
		*full = p->blk_have == BLK;
		if (*full)
			p->blk_have = 0;
		return n;
	}
}

static int dispatch(struct tar_parser *p)
{
	switch (p->st) {
	case ST_HEADER:
		return on_header(p);
	case ST_EXT:
		return ext_done(p);
	case ST_SPARSE_EXT:
		return on_sparse_ext(p);
	case ST_MAP:
		return on_map_block(p);
	case ST_ZERO2:
		p->st = ST_END;
		if (!block_is_zero(p->blk))
			warnf(p, p->off - BLK,
			      "a lone zero block at offset %" PRIu64,
			      p->off - 2 * BLK);
		return 0;
	case ST_SKIP:
		p->st = ST_HEADER;
		return 0;
	default:
		return 0;
	}
}

int tar_parser_feed(struct tar_parser *p, const void *data, size_t len)
{
	const unsigned char *d = data;

	if (p->st == ST_ERROR)
		return p->err;
	while (len > 0 && p->st != ST_END) {
		bool full;
		size_t n = take(p, d, len, &full);
		int rc;

		d += n;
		len -= n;
		p->off += n;
		if (!full)
			continue;
		rc = dispatch(p);
		if (rc)
			return rc;
	}
	p->off += len; /* bytes after the end marker are ignored */
	return 0;
}

int tar_parser_finish(struct tar_parser *p)
{
	switch (p->st) {
	case ST_ERROR:
		return p->err;
	case ST_END:
	case ST_ZERO2:
		return 0;
	case ST_HEADER:
		if (p->blk_have)
			return fail(p, -EIO,
				    "archive truncated inside a header at "
				    "offset %" PRIu64,
				    p->off - p->blk_have);
		if (p->pending)
			return fail(p, -EIO,
				    "archive truncated after an extended "
				    "header at offset %" PRIu64,
				    p->member_off);
		warnf(p, p->off,
		      "archive ends without an end-of-archive marker");
		return 0;
	case ST_SKIP:
		if (!p->skip_ext)
			return fail(p, -EIO,
				    "archive truncated inside member data of "
				    "'%s' (offset %" PRIu64 ")",
				    p->cur, p->off);
		/* fall through */
	default:
		return fail(p, -EIO,
			    "archive truncated inside an extended header at "
			    "offset %" PRIu64,
			    p->member_off);
	}
}
