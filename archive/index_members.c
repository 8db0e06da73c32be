/* SPDX-License-Identifier: MIT */
/*
 * index_members.c - the MEMBERS section of an .sfidx: one record per
 * accepted tar member, in archive order (docs/index-format.md, MEMBERS;
 * format 3 writes differences and front-coded paths, 2.x is still read).
 */
#include "index_i.h"

#include "sffs/tar.h"
#include "sffs/tree.h"

/* ---- MEMBERS: one record per accepted tar member ---- */

struct index_members {
	struct buf b;
	uint64_t count;
	/* the previous record's header offset and path (format 3 stores
	 * the differences) */
	uint64_t prev_hoff;
	size_t prev_len;
	char prev[TAR_MAX_NAME + 1];
};

struct index_members *index_members_new(void)
{
	return calloc(1, sizeof(struct index_members));
}

void index_members_free(struct index_members *m)
{
	if (!m)
		return;
	free(m->b.p);
	free(m);
}

/* Bytes a and b share at their start. */
static size_t common_prefix(const char *a, size_t alen, const char *b,
			    size_t blen)
{
	size_t k = 0;

	while (k < alen && k < blen && a[k] == b[k])
		k++;
	return k;
}

const struct buf *index_members_buf(const struct index_members *m)
{
	return &m->b;
}

uint64_t index_members_count(const struct index_members *m)
{
	return m->count;
}

/* mtime as zigzag so small negative values stay short. */
static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Format 3: offsets as differences (to the previous header, and from
 * the header to the data), the path as the bytes it shares with the
 * previous one plus the rest: MEMBERS of a 30,000-member tree shrinks
 * from 259 KB to 68 KB (zstd 19). */
int index_members_add(struct index_members *m, const struct tar_entry *e)
{
	struct buf *b = &m->b;
	unsigned char type = (unsigned char)e->type;
	size_t plen = strlen(e->path), i, k;

	if (plen > TAR_MAX_NAME)
		return -EINVAL;
	k = common_prefix(m->prev, m->prev_len, e->path, plen);
	buf_put(b, &type, 1);
	buf_varint(b, e->mode);
	buf_varint(b, zigzag(e->mtime));
	buf_varint(b, e->size);
	buf_varint(b, zigzag((int64_t)(e->header_off - m->prev_hoff)));
	buf_varint(b, zigzag((int64_t)(e->data_off - e->header_off)));
	buf_varint(b, e->data_len);
	buf_varint(b, k);
	buf_varint(b, plen - k);
	buf_put(b, e->path + k, plen - k);
	memcpy(m->prev, e->path, plen + 1);
	m->prev_len = plen;
	m->prev_hoff = e->header_off;
	/* 0: no link; else length + 1 */
	buf_varint(b, e->link ? strlen(e->link) + 1 : 0);
	if (e->link)
		buf_put(b, e->link, strlen(e->link));
	buf_varint(b, e->sparse ? e->nsparse : 0);
	for (i = 0; e->sparse && i < e->nsparse; i++) {
		buf_varint(b, e->sparse[i].off);
		buf_varint(b, e->sparse[i].len);
	}
	if (b->oom)
		return -ENOMEM;
	m->count++;
	return 0;
}

/* A member path from an index must look like one the tar reader makes:
 * relative, no empty, "." or ".." component, no NUL. */
static bool path_ok(const unsigned char *p, size_t len, bool allow_root)
{
	size_t i, start = 0;

	if (len == 0)
		return allow_root;
	if (memchr(p, 0, len) || p[0] == '/' || p[len - 1] == '/')
		return false;
	for (i = 0; i <= len; i++) {
		size_t n;

		if (i < len && p[i] != '/')
			continue;
		n = i - start;
		if (n == 0 || (n == 1 && p[start] == '.') ||
		    (n == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

/* Sorted, disjoint, inside the file, and adding up to the stored bytes. */
static bool sparse_ok(const struct tar_sparse *sp, uint64_t n, uint64_t size,
		      uint64_t stored)
{
	uint64_t i, end = 0, sum = 0;

	for (i = 0; i < n; i++) {
		if (sp[i].off < end || sp[i].len > size ||
		    sp[i].off > size - sp[i].len)
			return false;
		end = sp[i].off + sp[i].len;
		sum += sp[i].len;
	}
	return sum == stored;
}

struct member_bufs {
	unsigned major;	    /* 2: absolute offsets and paths; 3: differences */
	uint64_t prev_hoff; /* format 3: the previous record's */
	char path[TAR_MAX_NAME + 1]; /* format 3: holds the previous path */
	char link[TAR_MAX_NAME + 1];
	struct tar_sparse sparse[TAR_MAX_SPARSE];
};

static int read_string(struct rd *r, uint64_t len, char *dst)
{
	const unsigned char *p;

	if (len > TAR_MAX_NAME || rd_bytes(r, (size_t)len, &p))
		return -EINVAL;
	memcpy(dst, p, (size_t)len);
	dst[len] = '\0';
	return 0;
}

/* Format 2: data_off, data_len, header_off, path length, path. */
static int read_offsets_path2(struct rd *r, struct member_bufs *mb,
			      struct tar_entry *e, uint64_t *plen)
{
	if (rd_varint(r, &e->data_off) || rd_varint(r, &e->data_len) ||
	    rd_varint(r, &e->header_off) || rd_varint(r, plen))
		return -EINVAL;
	return read_string(r, *plen, mb->path);
}

/* Format 3: header_off - previous header_off, data_off - header_off
 * (zigzag), data_len, shared prefix, suffix length, suffix. */
static int read_offsets_path3(struct rd *r, struct member_bufs *mb,
			      struct tar_entry *e, uint64_t *plen)
{
	uint64_t dh, dd, k, n;
	int64_t a, b;

	if (rd_varint(r, &dh) || rd_varint(r, &dd) ||
	    rd_varint(r, &e->data_len) || rd_varint(r, &k) || rd_varint(r, &n))
		return -EINVAL;
	a = unzigzag(dh);
	b = unzigzag(dd);
	/* both offsets stay in [0, 2^62) */
	if ((a < 0 && (uint64_t)-a > mb->prev_hoff) ||
	    (a > 0 && (uint64_t)a >= TAR_MAX_SIZE - mb->prev_hoff))
		return -EINVAL;
	e->header_off = mb->prev_hoff + (uint64_t)a;
	if ((b < 0 && (uint64_t)-b > e->header_off) ||
	    (b > 0 && (uint64_t)b >= TAR_MAX_SIZE - e->header_off))
		return -EINVAL;
	e->data_off = e->header_off + (uint64_t)b;
	mb->prev_hoff = e->header_off;
	if (k > strlen(mb->path) || n > TAR_MAX_NAME - k)
		return -EINVAL;
	*plen = k + n;
	return read_string(r, n, mb->path + k);
}

static int read_member(struct rd *r, struct member_bufs *mb,
		       struct tar_entry *e)
{
	uint64_t v[3], plen, llen, ns, i;
	const unsigned char *type;
	int k;

	memset(e, 0, sizeof(*e));
	if (rd_bytes(r, 1, &type) || *type > TAR_HARDLINK)
		return -EINVAL;
	for (k = 0; k < 3; k++)
		if (rd_varint(r, &v[k]))
			return -EINVAL;
	if ((mb->major == 2 ? read_offsets_path2(r, mb, e, &plen)
			    : read_offsets_path3(r, mb, e, &plen)) ||
	    v[0] > 07777 || v[2] >= TAR_MAX_SIZE || e->data_len >= TAR_MAX_SIZE)
		return -EINVAL;
	e->type = (enum tar_type) * type;
	e->mode = (uint32_t)v[0];
	e->mtime = unzigzag(v[1]);
	e->size = v[2];
	if (!path_ok((const unsigned char *)mb->path, (size_t)plen,
		     e->type == TAR_DIR))
		return -EINVAL;
	e->path = mb->path;
	if (rd_varint(r, &llen))
		return -EINVAL;
	if (llen) {
		if (read_string(r, llen - 1, mb->link) ||
		    strlen(mb->link) != llen - 1)
			return -EINVAL;
		if (e->type == TAR_HARDLINK &&
		    !path_ok((const unsigned char *)mb->link, (size_t)llen - 1,
			     false))
			return -EINVAL;
		e->link = mb->link;
	}
	if ((e->type == TAR_SYMLINK || e->type == TAR_HARDLINK) != !!e->link)
		return -EINVAL;
	if (rd_varint(r, &ns) || ns > TAR_MAX_SPARSE)
		return -EINVAL;
	for (i = 0; i < ns; i++)
		if (rd_varint(r, &mb->sparse[i].off) ||
		    rd_varint(r, &mb->sparse[i].len))
			return -EINVAL;
	if (ns && !sparse_ok(mb->sparse, ns, e->size, e->data_len))
		return -EINVAL;
	e->sparse = ns ? mb->sparse : NULL;
	e->nsparse = (size_t)ns;
	return 0;
}

int index_members_parse(const void *raw, size_t len, uint64_t count,
			unsigned major, struct tree *t)
{
	struct rd r = {.p = raw, .len = len};
	struct member_bufs *mb = calloc(1, sizeof(*mb));
	struct tar_entry e;
	uint64_t i;
	int rc = 0;

	if (!mb)
		return -ENOMEM;
	mb->major = major;
	for (i = 0; i < count && !rc; i++) {
		rc = read_member(&r, mb, &e);
		if (!rc)
			rc = tree_add(t, &e);
	}
	if (!rc && r.pos != r.len)
		rc = -EINVAL; /* trailing bytes: not what the header said */
	free(mb);
	return rc;
}

int index_parse_members(const void *raw, size_t len, uint64_t count,
			struct tree *t)
{
	return index_members_parse(raw, len, count, INDEX_MAJOR, t);
}
