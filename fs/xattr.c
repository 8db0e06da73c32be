/* SPDX-License-Identifier: MIT */
/*
 * xattr.c - extended attributes: the mount's root describes its artifact
 * (or, in a catalog, the catalog's counters) and each attached artifact's
 * root describes that artifact. Nothing else has any.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fs.h"

#define XATTR_PREFIX "user.sffs."

/* The catalog's root has stats and route only: keep them at 2 and 3. */
static const char *const xattr_names[] = {
    XATTR_PREFIX "url",	  XATTR_PREFIX "identity", XATTR_PREFIX "stats",
    XATTR_PREFIX "route", XATTR_PREFIX "signer",   XATTR_PREFIX "verified"};
#define XATTR_CATALOG_FIRST 2
#define XATTR_CATALOG_END 4

/* Where the next part of a line goes when n bytes were asked for so far
 * (snprintf's count: more than len when it was cut): NULL and *left 0
 * once the buffer is full, so that the part is only counted. */
static char *line_at(char *buf, size_t len, int n, size_t *left)
{
	if (n < 0 || (size_t)n >= len) {
		*left = 0;
		return NULL;
	}
	*left = len - (size_t)n;
	return buf + n;
}

/* The process's route (fetch.h): failovers and offline time, numbers. */
static int append_route(char *buf, size_t len, int n)
{
	struct fetch_route_stats rs;
	size_t left;
	char *p = line_at(buf, len, n, &left);
	int m;

	if (n < 0)
		return n;
	fetch_route_get_stats(&rs);
	m = snprintf(p, left,
		     " host_failovers=%" PRIu64 " proxy_failovers=%" PRIu64
		     " offline=%d offline_s=%" PRIu64 " offline_count=%" PRIu64,
		     rs.host_failovers, rs.proxy_failovers, (int)rs.offline,
		     rs.offline_s, rs.offline_count);
	return m < 0 ? m : n + m;
}

/* The route in use: "host=URL proxy=URL" (each "-" when not set). */
static int route_xattr(char *buf, size_t len)
{
	struct fetch_route_stats rs;

	fetch_route_get_stats(&rs);
	return snprintf(buf, len, "host=%s proxy=%s",
			rs.host[0] ? rs.host : "-",
			rs.proxy[0] ? rs.proxy : "-");
}

/* The route's and the disk tier's counters (the process's), then the
 * line's end: every value a number, as tests and scripts parse them.
 * The line's length. */
static int append_disk(char *buf, size_t len, int n,
		       const struct blockstore_stats *ss)
{
	const struct disk_stats *d = &ss->disk;
	size_t left;
	char *p;
	int m;

	n = append_route(buf, len, n);
	if (n < 0)
		return n;
	p = line_at(buf, len, n, &left);
	if (!ss->has_disk)
		m = snprintf(p, left, " disk=0\n");
	else
		m = snprintf(
		    p, left,
		    " disk=1 disk_hits=%" PRIu64 " disk_misses=%" PRIu64
		    " disk_read_bytes=%" PRIu64 " disk_writes=%" PRIu64
		    " disk_written_bytes=%" PRIu64 " disk_verify_fail=%" PRIu64
		    " disk_evictions=%" PRIu64 " disk_scans=%" PRIu64
		    " disk_errors=%" PRIu64 " disk_used=%" PRIu64
		    " disk_quota=%" PRIu64 "\n",
		    d->hits, d->misses, d->bytes_read, d->writes,
		    d->bytes_written, d->verify_fail, d->evictions, d->scans,
		    d->errors, d->used, d->quota);
	return m < 0 ? m : n + m;
}

static int archive_xattr(struct fs *fs, struct archive *ar, const char *name,
			 char *buf, size_t len)
{
	struct fetch *f = archive_fetch(ar);
	struct archive_reloc_stats rs;
	struct archive_stats as;
	struct fetch_stats fst;
	size_t left;
	char *p;
	int n, m;

	if (!strcmp(name, xattr_names[0]))
		return snprintf(buf, len, "%s", fetch_url_shown(f));
	if (!strcmp(name, xattr_names[1]))
		return snprintf(buf, len, "size=%" PRIu64 " %s", fetch_size(f),
				fetch_identity(f));
	/* signer: the fingerprint that verified it ("" if none) */
	if (!strcmp(name, xattr_names[3]))
		return route_xattr(buf, len);
	if (!strcmp(name, xattr_names[4]))
		return snprintf(buf, len, "%s",
				strchrnul(archive_signer(ar), ':') +
				    !!*archive_signer(ar));
	if (!strcmp(name, xattr_names[5]))
		return snprintf(buf, len, "%s",
				*archive_signer(ar) ? "yes" : "no");
	if (strcmp(name, xattr_names[2]))
		return -ENODATA;
	archive_get_stats(ar, &as);
	fetch_get_stats(f, &fst);
	n = snprintf(buf, len,
		     "requests=%" PRIu64 " bytes=%" PRIu64 " retries=%" PRIu64
		     " spans_loaded=%" PRIu64 " verify_fail=%" PRIu64
		     " cache_hits=%" PRIu64 " cache_misses=%" PRIu64
		     " cache_bytes=%" PRIu64 " blocks_fetched=%" PRIu64
		     " block_requests=%" PRIu64 " block_bytes=%" PRIu64
		     " block_hits=%" PRIu64 " blocks_prefetched=%" PRIu64
		     " block_errors=%" PRIu64 " block_mem=%" PRIu64
		     " windows_loaded=%" PRIu64 " window_mem=%" PRIu64
		     " reads_cached=%" PRIu64 " reads_queued=%" PRIu64
		     " reads_sync=%" PRIu64 " read_errors=%" PRIu64
		     " reads_interrupted=%" PRIu64
		     " index_mem=%zu members=%" PRIu32,
		     fst.requests, fst.bytes, fst.retries, as.spans_loaded,
		     as.verify_fail, as.cache.hits, as.cache.misses,
		     as.cache.bytes, as.blocks.fetched, as.blocks.requests,
		     as.blocks.bytes, as.blocks.hits, as.blocks.prefetched,
		     as.blocks.errors, as.blocks.mem, as.windows_loaded,
		     as.window_mem, (uint64_t)atomic_load(&fs->rd.fast),
		     (uint64_t)atomic_load(&fs->rd.queued),
		     (uint64_t)atomic_load(&fs->rd.sync),
		     (uint64_t)atomic_load(&fs->rd.errors),
		     (uint64_t)atomic_load(&fs->rd.interrupted), as.index_mem,
		     tree_count(archive_tree(ar)));
	/* the tiers: memory (block_hits), disk, network (block_bytes) */
	p = line_at(buf, len, n, &left);
	archive_reloc_get_stats(ar, &rs);
	m = snprintf(p, left,
		     " block_hit_bytes=%" PRIu64 " disk_blocks=%" PRIu64
		     " disk_bytes=%" PRIu64 " disk_bad=%" PRIu64
		     " blocks_seeded=%" PRIu64 " reloc_files=%" PRIu64
		     " reloc_refused=%" PRIu64 " reloc_patches=%" PRIu64
		     " reloc_overlays=%" PRIu64,
		     as.blocks.hit_bytes, as.blocks.disk_hits,
		     as.blocks.disk_bytes, as.blocks.disk_bad, as.blocks.seeded,
		     rs.files, rs.refused, rs.patches, rs.overlays);
	return append_disk(buf, len, n < 0 || m < 0 ? -1 : n + m, &as.store);
}

static int catalog_xattr(struct fs *fs, const char *name, char *buf, size_t len)
{
	struct catalog_stats cs;
	int n;

	if (!strcmp(name, xattr_names[3]))
		return route_xattr(buf, len);
	if (strcmp(name, xattr_names[2]))
		return -ENODATA;
	catalog_get_stats(fs->cat, &cs);
	n = snprintf(buf, len,
		     "known=%" PRIu64 " attached=%" PRIu64 " attaches=%" PRIu64
		     " attach_failures=%" PRIu64 " releases=%" PRIu64
		     " list_requests=%" PRIu64 " probe_requests=%" PRIu64
		     " probes_found=%" PRIu64 " reads_cached=%" PRIu64
		     " reads_queued=%" PRIu64 " read_errors=%" PRIu64
		     " store_blocks=%" PRIu64 " store_bytes=%" PRIu64
		     " store_budget=%" PRIu64 " fetchers=%" PRIu64
		     " store_artifacts=%" PRIu64 " store_requests=%" PRIu64
		     " parallel_lookups=%d",
		     cs.known, cs.attached, cs.attaches, cs.attach_failures,
		     cs.releases, cs.list_requests, cs.probe_requests,
		     cs.probes_found, (uint64_t)atomic_load(&fs->rd.fast),
		     (uint64_t)atomic_load(&fs->rd.queued),
		     (uint64_t)atomic_load(&fs->rd.errors), cs.store.blocks,
		     cs.store.bytes, cs.store.budget, cs.store.threads,
		     cs.store.handles, cs.store.requests,
		     (int)atomic_load(&fs->parallel_dirops));
	return append_disk(buf, len, n, &cs.store);
}

/* An attached artifact's root in a catalog: its attributes, through a
 * reference taken and given back here. Never attaches. */
static int artroot_xattr(struct fs *fs, struct catalog_entry *e,
			 const char *name, char *buf, size_t len)
{
	struct archive *ar;
	int n;

	if (catalog_peek(fs->cat, e, &ar))
		return -ENODATA;
	n = archive_xattr(fs, ar, name, buf, len);
	catalog_put(fs->cat, e);
	return n;
}

/* user.sffs.relocation: what relocation did to a file of a relocated
 * archive (archive_reloc_describe), on any of its inodes; its root says
 * whether the package is relocated or refused. Never attaches. */
static int relocation_xattr(struct fs *fs, fuse_ino_t ino, char *buf,
			    size_t len)
{
	struct archive *ar;
	struct fs_ref r;
	int n = -ENODATA;

	if (fs_resolve(fs, ino, &r))
		return -ENODATA;
	if (r.kind == FS_NODE)
		n = archive_reloc_describe(r.ar, r.node, buf, len);
	else if (r.kind == FS_ARTROOT && fs->cat &&
		 !catalog_peek(fs->cat, r.e, &ar)) {
		n = archive_reloc_describe(ar, archive_root(ar), buf, len);
		catalog_put(fs->cat, r.e);
	}
	fs_unref(fs, &r);
	return n;
}

/* The mount root (the artifact, or the catalog's counters) and, in a
 * catalog, each attached artifact's root; every other inode has none.
 * Whatever fs_resolve holds (a node inode holds its archive) is given
 * back on every path: getfattr, cp -a and rsync -X must not pin an
 * artifact. */
static int xattr_value(struct fs *fs, fuse_ino_t ino, const char *name,
		       char *buf, size_t len)
{
	struct fs_ref r;
	int n = -ENODATA;

	if (!strcmp(name, XATTR_PREFIX "relocation"))
		return relocation_xattr(fs, ino, buf, len);
	if (!fs->cat)
		return ino == FUSE_ROOT_ID
			   ? archive_xattr(fs, fs->ar, name, buf, len)
			   : -ENODATA;
	if (ino == FS_INO_ROOT)
		return catalog_xattr(fs, name, buf, len);
	if (fs_resolve(fs, ino, &r))
		return -ENODATA;
	if (r.kind == FS_ARTROOT)
		n = artroot_xattr(fs, r.e, name, buf, len);
	fs_unref(fs, &r);
	return n;
}

void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char buf[4096];
	int n =
	    xattr_value(fuse_req_userdata(req), ino, name, buf, sizeof(buf));

	if (n >= (int)sizeof(buf))
		n = (int)sizeof(buf) - 1;
	if (n < 0)
		fuse_reply_err(req, -n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fuse_req_userdata(req);
	char buf[256];
	size_t i, n = 0, first = 0;
	size_t end = sizeof(xattr_names) / sizeof(*xattr_names);

	if (fs->cat && ino == FS_INO_ROOT) {
		first = XATTR_CATALOG_FIRST;
		end = XATTR_CATALOG_END;
	}
	if (ino == FUSE_ROOT_ID ||
	    (fs->cat && (ino & ~0xfffffffull) == FS_INO_ARTROOT)) {
		for (i = first; i < end; i++) {
			memcpy(buf + n, xattr_names[i],
			       strlen(xattr_names[i]) + 1);
			n += strlen(xattr_names[i]) + 1;
		}
	}
	if (size == 0)
		fuse_reply_xattr(req, n);
	else if (n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, n);
}
