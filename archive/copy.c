/* SPDX-License-Identifier: MIT */
/*
 * copy.c - reads into the caller's buffer (archive_read_req): dense files
 * piece by piece out of the decoded chunks span.c gives, sparse files
 * with their holes zeroed, relocated files through relview.c.
 */
#include <errno.h>
#include <string.h>

#include "archive_i.h"

/* Copies len bytes of the tar stream at uoff into dst; the reader may
 * want bytes up to uend. */
static int stream_copy(struct archive *ar, uint64_t uoff, size_t len,
		       uint64_t uend, unsigned char *dst,
		       struct archive_req *rq)
{
	while (len) {
		size_t coff, clen;
		struct chunk *ch;
		int rc = span_piece(ar, uoff, len, uend, rq, &ch, &coff, &clen);

		if (rc)
			return rc;
		memcpy(dst, ch->data + coff, clen);
		cache_chunk_put(ch);
		uoff += clen;
		dst += clen;
		len -= clen;
	}
	return 0;
}

/* Sparse file: zeros, except where a segment's stored bytes go. */
static int sparse_copy(struct archive *ar, const struct tree_node *n,
		       uint64_t off, size_t len, unsigned char *dst,
		       struct archive_req *rq)
{
	const struct tree_sparse_map *m = n->u.sparse;
	uint64_t stored = n->data_off;
	size_t k;

	memset(dst, 0, len);
	for (k = 0; k < m->n; k++) {
		const struct tar_sparse *sg = &m->seg[k];
		uint64_t a = off > sg->off ? off : sg->off;
		uint64_t b = off + len < sg->off + sg->len ? off + len
							   : sg->off + sg->len;
		int rc;

		if (a < b) {
			rc = stream_copy(
			    ar, stored + (a - sg->off), (size_t)(b - a),
			    stored + (b - sg->off), dst + (a - off), rq);
			if (rc)
				return rc;
		}
		stored += sg->len;
	}
	return 0;
}

ssize_t archive_read_raw(struct archive *ar, uint32_t node, uint64_t off,
			 size_t len, void *buf, struct archive_req *rq)
{
	struct archive_req dflt = {0};
	const struct tree_node *n;
	int rc = span_check_node(ar, node, off, &len, &n);

	if (rc)
		return rc;
	if (!rq)
		rq = &dflt;
	rq->n = 0;
	span_req_defaults(ar, rq);
	if (!n->u.sparse && !rq->nowait && len)
		span_follow(ar, node, n, off, len);
	if (n->u.sparse)
		rc = sparse_copy(ar, n, off, len, buf, rq);
	else
		rc = stream_copy(ar, n->data_off + off, len,
				 n->data_off + n->size, buf, rq);
	return rc ? rc : (ssize_t)len;
}

ssize_t archive_read_req(struct archive *ar, uint32_t node, uint64_t off,
			 size_t len, void *buf, struct archive_req *rq)
{
	struct archive_req dflt = {0};

	if (!relview_copy_only(ar, node))
		return archive_read_raw(ar, node, off, len, buf, rq);
	if (!rq)
		rq = &dflt;
	rq->n = 0;
	return relview_read(ar, node, off, len, buf, rq);
}

ssize_t archive_read(struct archive *ar, uint32_t node, uint64_t off,
		     size_t len, void *buf)
{
	return archive_read_req(ar, node, off, len, buf, NULL);
}
