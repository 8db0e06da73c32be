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

#include "tar_i.h"

static const struct tar_sparse no_segments[1];

static void warnf(struct tar_parser *p, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int tar_fail(struct tar_parser *p, int err, const char *fmt, ...)
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
		tar_name_set(&p->longname, p->ext, strnlen(p->ext, p->ext_len));
		break;
	case 'K':
		tar_name_set(&p->longlink, p->ext, strnlen(p->ext, p->ext_len));
		break;
	case 'g':
		rc = tar_pax_parse(p, p->ext, p->ext_len, true);
		break;
	default:
		rc = tar_pax_parse(p, p->ext, p->ext_len, false);
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
		return tar_fail(p, -E2BIG,
				"%s header too large (%" PRId64
				" bytes) at offset %" PRIu64,
				type == 'L' || type == 'K' ? "long name"
							   : "pax",
				size, p->off - BLK);
	if ((size_t)size + 1 > p->ext_cap) {
		char *n = realloc(p->ext, (size_t)size + 1);

		if (!n)
			return tar_fail(p, -ENOMEM, "out of memory");
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
	why = tar_normalise(p->raw, rawlen, p->path);
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
	why = tar_normalise(lnk->s, lnk->len, p->link);
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
		if (tar_sparse_check(p, p->e.data_len, &p->e.data_len))
			return tar_fail(p, -EINVAL,
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
		return tar_fail(p, rc,
				"stopped at '%s' (offset %" PRIu64 "): %s",
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

	if (tar_parse_num(b + H_CHKSUM, 8, &rec))
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
		tar_name_set(&p->hlink, (const char *)b + H_LINK,
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

	if (tar_parse_num(b + H_GNU_REALSIZE, 12, &real) || real < 0 ||
	    (uint64_t)real >= TAR_MAX_SIZE)
		return tar_fail(p, -EINVAL,
				"bad sparse header at offset %" PRIu64,
				p->off - BLK);
	p->sparse = true;
	p->realsize = (uint64_t)real;
	rc = tar_sparse_old(p, b + H_GNU_SPARSE, 4);
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
		return tar_fail(
		    p, -EINVAL,
		    "sparse member without a real size at offset %" PRIu64,
		    p->member_off);
	p->sparse = true;
	p->realsize = x->realsize;
	if (x->sparse_major < 1)
		return member_emit(p);
	if (x->sparse_major != 1 || x->sparse_minor != 0 || x->sparse_v0 ||
	    p->stored == 0)
		return tar_fail(
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

	if (tar_parse_num(b + H_MTIME, 12, &mtime) ||
	    tar_parse_num(b + H_MODE, 8, &mode))
		return tar_fail(p, -EINVAL,
				"bad numeric field at offset %" PRIu64,
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
			return tar_fail(
			    p, -EINVAL,
			    "end-of-archive marker after an extended "
			    "header at offset %" PRIu64,
			    hoff);
		p->st = ST_ZERO2;
		return 0;
	}
	if (!checksum_ok(b))
		return tar_fail(p, -EINVAL,
				"bad header checksum at offset %" PRIu64, hoff);
	p->seen_header = true;
	if (!p->pending) {
		/* A global header belongs to no member. */
		p->pending = type != 'g';
		p->member_off = hoff;
	}
	if (tar_parse_num(b + H_SIZE, 12, &size) || size < 0)
		return tar_fail(p, -EINVAL, "bad size field at offset %" PRIu64,
				hoff);
	if ((uint64_t)size >= TAR_MAX_SIZE)
		return tar_fail(p, -E2BIG,
				"size %" PRId64 " too large at offset %" PRIu64,
				size, hoff);
	if (type == 'x' || type == 'X' || type == 'g' || type == 'L' ||
	    type == 'K')
		return ext_begin(p, type == 'X' ? 'x' : type, size);
	return member_header(p, b, type, size);
}

static int on_sparse_ext(struct tar_parser *p)
{
	int rc = tar_sparse_old(p, p->blk, 21);

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
			return tar_fail(
			    p, -E2BIG,
			    "more than %d sparse segments at offset %" PRIu64,
			    TAR_MAX_SPARSE, p->member_off);
		p->map_count = (size_t)v;
	} else if (p->map_idx % 2 == 0) {
		p->x.pend_off = v;
	} else {
		return tar_sparse_add(p, p->x.pend_off, v);
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
		return tar_fail(
		    p, -EINVAL,
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
			return tar_fail(p, -EINVAL,
					"bad sparse map at offset %" PRIu64,
					p->member_off);
		}
	}
	if (!map_done(p))
		return 0;
	if (p->map_bytes > p->stored)
		return tar_fail(
		    p, -EINVAL,
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
			return tar_fail(p, -EIO,
					"archive truncated inside a header at "
					"offset %" PRIu64,
					p->off - p->blk_have);
		if (p->pending)
			return tar_fail(p, -EIO,
					"archive truncated after an extended "
					"header at offset %" PRIu64,
					p->member_off);
		warnf(p, p->off,
		      "archive ends without an end-of-archive marker");
		return 0;
	case ST_SKIP:
		if (!p->skip_ext)
			return tar_fail(
			    p, -EIO,
			    "archive truncated inside member data of "
			    "'%s' (offset %" PRIu64 ")",
			    p->cur, p->off);
		/* fall through */
	default:
		return tar_fail(
		    p, -EIO,
		    "archive truncated inside an extended header at "
		    "offset %" PRIu64,
		    p->member_off);
	}
}
