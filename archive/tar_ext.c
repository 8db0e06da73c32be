/* SPDX-License-Identifier: MIT */
/*
 * tar_ext.c - the tar reader's field parsers (octal and base-256 numbers,
 * pax decimals and times), names (bounded, normalised) and extensions
 * (GNU old sparse maps, pax records with GNU.sparse 0.0/0.1/1.0): every
 * field bounded, every refusal through tar_fail with its offset.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tar_i.h"

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
int tar_parse_num(const unsigned char *f, size_t n, int64_t *out)
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

void tar_name_set(struct name_buf *nb, const char *s, size_t len)
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
const char *tar_normalise(const char *src, size_t len, char *dst)
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

int tar_sparse_add(struct tar_parser *p, uint64_t off, uint64_t len)
{
	if (p->nsp >= TAR_MAX_SPARSE)
		return tar_fail(
		    p, -E2BIG,
		    "more than %d sparse segments at offset %" PRIu64,
		    TAR_MAX_SPARSE, p->member_off);
	if (p->nsp == p->sp_cap) {
		size_t cap = p->sp_cap ? p->sp_cap * 2 : 16;
		struct tar_sparse *n = realloc(p->sp, cap * sizeof(*n));

		if (!n)
			return tar_fail(p, -ENOMEM, "out of memory");
		p->sp = n;
		p->sp_cap = cap;
	}
	p->sp[p->nsp].off = off;
	p->sp[p->nsp].len = len;
	p->nsp++;
	return 0;
}

/* Drops empty segments and checks order, bounds and the stored total. */
int tar_sparse_check(struct tar_parser *p, uint64_t avail, uint64_t *sum)
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
int tar_sparse_old(struct tar_parser *p, const unsigned char *f, size_t n)
{
	size_t i;

	for (i = 0; i < n && f[i * 24] != '\0'; i++) {
		int64_t off, len;

		if (tar_parse_num(f + i * 24, 12, &off) ||
		    tar_parse_num(f + i * 24 + 12, 12, &len) || off < 0 ||
		    len < 0 || (uint64_t)off >= TAR_MAX_SIZE ||
		    (uint64_t)len >= TAR_MAX_SIZE)
			return tar_fail(p, -EINVAL,
					"bad sparse header at offset %" PRIu64,
					p->off - BLK);
		if (tar_sparse_add(p, (uint64_t)off, (uint64_t)len))
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
		else if (tar_sparse_add(p, off, num))
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
		tar_name_set(&x->sparse_name, v, vn);
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
		return tar_sparse_add(p, x->pend_off, n);
	}
	return 0;
}

static int pax_size(struct tar_parser *p, const char *v, size_t vn)
{
	uint64_t n;
	int rc = parse_dec(v, vn, UINT64_MAX, &n);

	if (rc == -ERANGE || (rc == 0 && n >= TAR_MAX_SIZE))
		return tar_fail(p, -E2BIG,
				"size %.*s too large at offset %" PRIu64,
				(int)(vn > 40 ? 40 : vn), v, p->member_off);
	if (rc)
		return tar_fail(p, -EINVAL,
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
			return tar_fail(p, -EINVAL,
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
		tar_name_set(&p->x.path, v, vn);
	else if (!strcmp(k, "linkpath"))
		tar_name_set(&p->x.link, v, vn);
	else if (!strcmp(k, "size"))
		return pax_size(p, v, vn);
	else if (!strncmp(k, "GNU.sparse.", 11)) {
		rc = pax_sparse_key(p, k, v, vn);
		if (rc && p->st != ST_ERROR)
			return tar_fail(p, rc,
					"bad pax record %s at offset %" PRIu64,
					k, p->member_off);
		return rc;
	}
	return 0;
}

/* Parses "LEN key=value\n" records; LEN counts the whole record. */
int tar_pax_parse(struct tar_parser *p, char *buf, size_t len, bool global)
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
			return tar_fail(p, -EINVAL,
					"bad pax record at offset %" PRIu64,
					p->member_off);
		end = pos + rlen;
		eq = memchr(buf + i + 1, '=', end - 1 - (i + 1));
		if (!eq || eq == buf + i + 1 ||
		    memchr(buf + i + 1, '\0', (size_t)(eq - buf) - i - 1))
			return tar_fail(p, -EINVAL,
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
