/* SPDX-License-Identifier: MIT */
#include "sffs/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sffs/cache.h"
#include "sffs/log.h"
#include "sffs/util.h"

#include "archive_i.h"
#include "index_i.h"

/* Archive ids: 64 bits from one counter, never reused in the process
 * (2^64 opens do not happen), so keys of a shared cache never alias. */
static atomic_uint_fast64_t next_id;

uint64_t archive_id(const struct archive *ar)
{
	return ar->id;
}

void archive_opts_default(struct archive_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->spacing = ARCHIVE_DEFAULT_SPACING;
	o->cache_mem = ARCHIVE_DEFAULT_CACHE;
	o->window_mem = ARCHIVE_DEFAULT_WINDOWS;
	o->readahead = ARCHIVE_DEFAULT_READAHEAD;
	o->block_size = BLOCKS_DEFAULT_SIZE;
	o->timeout_s = ARCHIVE_DEFAULT_TIMEOUT;
	blocks_opts_default(&o->blocks);
}

/*
 * The budget of a pass nothing vouches for yet. What a real artifact
 * needs, measured by test_budget on the fixture (a Slurm tree, 543
 * members, 10.4 MB as .tar.gz, 10.2 MB as .tar.zst): 576 KiB (gzip) and
 * 256 KiB (zstd) of tree, member records and spill, 0.06 and 0.03 bytes
 * per compressed byte. The gzip spill dominates: a 32 KiB window per MiB
 * of tar, r/32 bytes per compressed byte at a compression ratio r; 2 per
 * byte leaves room for r = 64, which no real tarball of binaries
 * reaches, and the 64 MiB base covers the trees of small artifacts with
 * many members (about 250 bytes a member while building: 250,000
 * members). A tar of empty members with long names (test_budget's:
 * 20,000 of 120 characters in 192 KB) holds 57 bytes per compressed
 * byte, and unbounded would reach TREE_MAX_MEM from a 75 MB artifact.
 */
uint64_t archive_unverified_mem(uint64_t size)
{
	uint64_t room = TREE_MAX_MEM - ARCHIVE_UNVERIFIED_BASE;

	if (size > room / ARCHIVE_UNVERIFIED_PER_BYTE)
		return TREE_MAX_MEM;
	return ARCHIVE_UNVERIFIED_BASE + ARCHIVE_UNVERIFIED_PER_BYTE * size;
}

/* ---- indexing: one streaming pass ---- */

struct open_ctx {
	struct archive *ar;
	struct seek_indexer *ix;
	struct tar_parser *tp;
	const struct archive_opts *o;
	uint64_t done, total;
	uint64_t members;
	uint64_t usize;	     /* uncompressed bytes so far */
	EVP_MD_CTX *md;	     /* SHA-256 of the whole artifact */
	EVP_MD_CTX *bmd;     /* SHA-256 of the current block */
	uint64_t bfill;	     /* bytes of the current block seen */
	uint64_t bnext;	     /* index of the current block */
	unsigned char *seed; /* the first seed_len bytes, for the store */
	uint64_t seed_len;
	int tar_rc;	  /* first tar error, or 0 */
	int failed_stage; /* 0 none, 1 codec, 2 tar, 3 usize, 4 tap, 5 mem */
};

/*
 * What the pass holds that grows with the artifact's members and size:
 * the member tree, the member records and the window spill (on disk, but
 * in RAM where /tmp or the cache is tmpfs). Seek points without their
 * windows and the block digests are a few bytes per MiB: left out.
 */
static uint64_t pass_mem(const struct open_ctx *ctx)
{
	const struct archive *ar = ctx->ar;

	return tree_mem_now(ar->tree) + index_members_buf(ar->members)->cap +
	       ar->spill_len;
}

/* -E2BIG (and the pass stops) once pass_mem passes o->tree_mem_max. */
static int check_budget(struct open_ctx *ctx)
{
	if (!ctx->o->tree_mem_max || pass_mem(ctx) <= ctx->o->tree_mem_max)
		return 0;
	ctx->failed_stage = 5;
	return -E2BIG;
}

static int on_entry(void *arg, const struct tar_entry *e)
{
	struct open_ctx *ctx = arg;

	int rc = index_members_add(ctx->ar->members, e);

	ctx->members++;
	if (!rc)
		rc = tree_add(ctx->ar->tree, e);
	return rc ? rc : check_budget(ctx);
}

/* A hostile archive can hold millions of skipped members: the log gets
 * the first ARCHIVE_MAX_WARNINGS and then a count. */
static void archive_warn(struct archive *ar, uint64_t off, const char *msg)
{
	if (++ar->warnings <= ARCHIVE_MAX_WARNINGS)
		log_warn("%s (archive offset %" PRIu64 ")", msg, off);
	if (ar->warnings == ARCHIVE_MAX_WARNINGS)
		log_warn("further warnings about this archive are counted, "
			 "not shown");
}

static void tree_warn(void *arg, uint64_t off, const char *msg)
{
	archive_warn(arg, off, msg);
}

static void tar_warn(void *arg, uint64_t off, const char *msg)
{
	struct open_ctx *ctx = arg;

	archive_warn(ctx->ar, off, msg);
}

/*
 * A tar error after some members may come from corrupt compressed data
 * that the codec's checksum (at the end of a gzip member or zstd frame)
 * has not caught yet, so decompression goes on to name the real cause.
 * A first header that is not tar stops at once: not a tar archive.
 */
static int on_plain(void *arg, const void *data, size_t len)
{
	struct open_ctx *ctx = arg;

	ctx->usize += len;
	if (ctx->usize > ARCHIVE_MAX_USIZE) {
		ctx->failed_stage = 3;
		return -E2BIG;
	}
	if (ctx->tar_rc)
		return 0;
	ctx->tar_rc = tar_parser_feed(ctx->tp, data, len);
	if (ctx->tar_rc && !tar_parser_seen_header(ctx->tp)) {
		ctx->failed_stage = 2;
		return ctx->tar_rc;
	}
	return 0;
}

/* The digest of every aligned block, as the bytes go by. */
static int hash_blocks(struct open_ctx *ctx, const unsigned char *p, size_t len)
{
	uint32_t bsize = ctx->ar->block_size;
	uint64_t nblocks = blocks_count_for(ctx->total, bsize);

	while (len) {
		size_t n = bsize - ctx->bfill < len ? bsize - ctx->bfill : len;

		if (ctx->bnext >= nblocks || !EVP_DigestUpdate(ctx->bmd, p, n))
			return -EIO;
		ctx->bfill += n;
		p += n;
		len -= n;
		/* A block ends at its size or, the last one, with the
		 * artifact. */
		if (ctx->bfill == bsize ||
		    ctx->bnext * bsize + ctx->bfill == ctx->total) {
			if (!EVP_DigestFinal_ex(ctx->bmd,
						ctx->ar->bdigests +
						    ctx->bnext * BLOCKS_DIGEST,
						NULL) ||
			    !EVP_DigestInit_ex(ctx->bmd, EVP_sha256(), NULL))
				return -ENOMEM;
			ctx->bnext++;
			ctx->bfill = 0;
		}
	}
	return 0;
}

static int on_compressed(void *arg, const void *data, size_t len)
{
	struct open_ctx *ctx = arg;
	int rc = ctx->o->tap ? ctx->o->tap(ctx->o->tap_arg, data, len) : 0;

	/* past the budget the tar parser stops, but decoding would go on
	 * (on_plain): stop the pass itself */
	if (ctx->failed_stage == 5)
		return -E2BIG;
	if (rc) {
		ctx->failed_stage = 4;
		return rc;
	}
	if (ctx->done < ctx->seed_len)
		memcpy(ctx->seed + ctx->done, data,
		       len < ctx->seed_len - ctx->done
			   ? len
			   : (size_t)(ctx->seed_len - ctx->done));
	rc = seek_indexer_feed(ctx->ix, data, len);

	if (!EVP_DigestUpdate(ctx->md, data, len) && !rc)
		rc = -ENOMEM;
	if (!rc)
		rc = hash_blocks(ctx, data, len);
	if (rc && !ctx->failed_stage)
		ctx->failed_stage = 1;
	ctx->done += len;
	if (ctx->o->progress)
		ctx->o->progress(ctx->o->progress_arg, ctx->done, ctx->total);
	return rc;
}

static void describe_failure(struct open_ctx *ctx, int rc, char *err,
			     size_t errlen)
{
	const char *url = fetch_url(ctx->ar->f);

	if (ctx->failed_stage == 5)
		snprintf(err, errlen,
			 "%s: the streaming pass would hold more than %.1f MiB "
			 "(the budget of an artifact of %" PRIu64
			 " bytes) before the artifact is verified, at "
			 "compressed offset %" PRIu64
			 ": refused (publish a signed index: sffs-index "
			 "--sign-with)",
			 url, (double)ctx->o->tree_mem_max / (1 << 20),
			 ctx->total, ctx->done);
	else if (ctx->failed_stage == 4)
		snprintf(err, errlen,
			 "%s: stopped at compressed offset %" PRIu64 ": %s",
			 url, ctx->done, strerror(-rc));
	else if (ctx->failed_stage == 3)
		snprintf(err, errlen,
			 "%s: uncompressed size exceeds %" PRIu64
			 " bytes (at compressed offset %" PRIu64 "): refused",
			 url, (uint64_t)ARCHIVE_MAX_USIZE, ctx->done);
	else if (ctx->failed_stage == 2 && !tar_parser_seen_header(ctx->tp))
		snprintf(err, errlen, "%s is not a tar archive: %s", url,
			 tar_parser_error(ctx->tp));
	else if (ctx->failed_stage == 2)
		snprintf(err, errlen, "%s: tar: %s", url,
			 tar_parser_error(ctx->tp));
	else if (ctx->failed_stage == 1)
		snprintf(err, errlen, "%s: %s", url,
			 seek_indexer_error(ctx->ix));
	else
		snprintf(err, errlen, "reading %s failed: %s", url,
			 strerror(-rc));
}

/* Windows leave memory as soon as their point is final: appended to the
 * spill file, which then serves them like an index's WINDOWS section. */
static int spill_window(void *arg, struct seek_point *pt)
{
	struct open_ctx *ctx = arg;
	struct archive *ar = ctx->ar;

	if (!ar->spill) {
		ar->spill = archive_spill_open(ctx->o);
		if (!ar->spill)
			return -errno;
	}
	if (fwrite(pt->window, 1, pt->wlen, ar->spill) != pt->wlen)
		return -EIO;
	if (!EVP_Digest(pt->window, pt->wlen, pt->wdigest, NULL, EVP_sha256(),
			NULL))
		return -ENOMEM;
	pt->woff = ar->spill_len;
	ar->spill_len += pt->wlen;
	free(pt->window);
	pt->window = NULL;
	return check_budget(ctx);
}

/*
 * The bytes of the pass kept for the block store: the first whole blocks
 * that fit in blocks_seed_room (all of a small artifact). The first, not
 * the last: a software tree's tar holds bin/ and lib/ (what a cold start
 * runs) before share/ (documentation). No buffer when there is no room
 * or no memory: seeding is only a saving.
 */
static void seed_alloc(struct open_ctx *ctx)
{
	const struct archive_opts *o = ctx->o;
	uint64_t room = blocks_seed_room(o->store, &o->blocks);
	uint64_t len = room / ctx->ar->block_size * ctx->ar->block_size;

	if (len > ctx->total)
		len = ctx->total;
	ctx->seed = len ? malloc(len) : NULL;
	ctx->seed_len = ctx->seed ? len : 0;
}

/* Streams the artifact once; fills ar->si and ar->tree, and *seed with
 * the first *seed_len bytes (to free) for the store. */
static int archive_index(struct archive *ar, const struct archive_opts *o,
			 enum seek_codec codec, unsigned char **seed,
			 uint64_t *seed_len, char *err, size_t errlen)
{
	struct open_ctx ctx = {.ar = ar, .o = o, .total = fetch_size(ar->f)};
	uint64_t spacing = o->spacing;
	const char *note;
	int rc = -ENOMEM;

	/* Uncompressed spans cost no decoding, so keep them small. */
	if (codec == SEEK_NONE && spacing > ARCHIVE_CHUNK)
		spacing = ARCHIVE_CHUNK;
	ar->spacing = spacing;
	ctx.tp = tar_parser_new(on_entry, tar_warn, &ctx);
	ctx.ix = seek_indexer_new(codec, spacing, on_plain, &ctx);
	ctx.md = EVP_MD_CTX_new();
	ctx.bmd = EVP_MD_CTX_new();
	ar->members = index_members_new();
	ar->bdigests = malloc(
	    blocks_count_for(ctx.total, ar->block_size) * BLOCKS_DIGEST + 1);
	if (!ctx.tp || !ctx.ix || !ctx.md || !ctx.bmd || !ar->members ||
	    !ar->bdigests || !EVP_DigestInit_ex(ctx.md, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(ctx.bmd, EVP_sha256(), NULL)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	seek_indexer_set_spill(ctx.ix, spill_window, &ctx);
	seed_alloc(&ctx);
	rc = fetch_stream(ar->f, 0, 0, on_compressed, &ctx);
	if (!rc && !EVP_DigestFinal_ex(ctx.md, ar->sha256, NULL))
		rc = -ENOMEM;
	if (!rc && ctx.bnext != blocks_count_for(ctx.total, ar->block_size))
		rc = -EIO;
	if (!rc && ar->spill && fflush(ar->spill))
		rc = -EIO;
	if (!rc) {
		rc = seek_indexer_finish(ctx.ix, &ar->si);
		if (rc)
			ctx.failed_stage = 1;
	}
	if (!rc) {
		rc = ctx.tar_rc ? ctx.tar_rc : tar_parser_finish(ctx.tp);
		if (rc)
			ctx.failed_stage = 2;
	}
	if (rc) {
		describe_failure(&ctx, rc, err, errlen);
		goto out;
	}
	note = seek_indexer_warning(ctx.ix);
	if (note)
		log_warn("%s: %s", fetch_url(ar->f), note);
	if (ctx.members == 0)
		log_warn("%s: the archive has no members", fetch_url(ar->f));
	if (ar->warnings > ARCHIVE_MAX_WARNINGS)
		log_warn("%s: %" PRIu64 " warnings in all", fetch_url(ar->f),
			 ar->warnings);
	rc = tree_finish(ar->tree);
	if (rc)
		snprintf(err, errlen, "building the member tree: %s",
			 strerror(-rc));
	if (!rc && ctx.done == ctx.total) {
		*seed = ctx.seed;
		*seed_len = ctx.seed_len;
		ctx.seed = NULL;
	}
out:
	free(ctx.seed);
	EVP_MD_CTX_free(ctx.bmd);
	EVP_MD_CTX_free(ctx.md);
	seek_indexer_free(ctx.ix);
	tar_parser_free(ctx.tp);
	return rc;
}

static int lazy_digest(void *arg, uint64_t i, uint64_t deadline_ns,
		       unsigned char out[BLOCKS_DIGEST])
{
	return index_digests_get(arg, i, deadline_ns, out);
}

int archive_start_blocks(struct archive *ar)
{
	/* cache keys hold a point in 32 bits (archive_i.h) */
	if (ar->si && ar->si->n >= (UINT64_C(1) << ARCHIVE_SPAN_SHIFT))
		return -EFBIG;
	if (ar->ldigests)
		ar->blocks = blocks_new_lazy(
		    ar->o.store, ar->f, ar->block_size, ar->ih.artifact_sha256,
		    lazy_digest, ar->ldigests, &ar->o.blocks);
	else
		ar->blocks = blocks_new(ar->o.store, ar->f, ar->block_size,
					ar->bdigests, &ar->o.blocks);
	return ar->blocks ? 0 : -ENOMEM;
}

/*
 * The pass's first bytes (seed_alloc) into the store as verified blocks,
 * so that a cold start does not fetch them again. Called once the pass
 * succeeded and the handle exists: they are held under the identity of
 * the digests the pass computed from these very bytes, so only a handle
 * whose digest table names exactly these bytes can ever be served them
 * (a fetch for it would pass its check with the same bytes). If the open
 * policy then refuses the artifact (a manifest's or signature's verdict
 * comes after archive_open), it frees the archive, the last handle of
 * that identity, and the seeded blocks leave memory with it.
 */
static void seed_blocks(struct archive *ar, const unsigned char *seed,
			uint64_t len)
{
	uint64_t n = blocks_count_for(len, ar->block_size), i;
	int rc = 0;

	for (i = 0; i < n && (!rc || rc == -EEXIST); i++) {
		uint64_t off = i * ar->block_size;
		size_t blen =
		    (size_t)(len - off < ar->block_size ? len - off
							: ar->block_size);

		rc = blocks_seed(ar->blocks, i, seed + off, blen);
	}
	if (rc && rc != -EEXIST)
		log_warn("%s: keeping the streamed block %" PRIu64
			 " failed: %s (it is fetched on demand)",
			 fetch_url(ar->f), i - 1, strerror(-rc));
	else if (n)
		log_debug("%s: %" PRIu64 " streamed blocks (%" PRIu64
			  " bytes) kept as verified",
			  fetch_url(ar->f), n, len);
}

/* An empty archive object: tree, caches, locks (o may be NULL for the
 * defaults). NULL + err on ENOMEM. */
static struct archive *archive_alloc(struct fetch *f,
				     const struct archive_opts *o, char *err,
				     size_t errlen)
{
	struct archive *ar = calloc(1, sizeof(*ar));

	if (!ar) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ar->f = f;
	if (o)
		ar->o = *o;
	else
		archive_opts_default(&ar->o);
	ar->o.spill_dir = NULL; /* borrowed only while archive_open runs */
	ar->block_size = ar->o.block_size;
	pthread_mutex_init(&ar->lock, NULL);
	pthread_mutex_init(&ar->seq_lock, NULL);
	util_cond_init_monotonic(&ar->loaded);
	ar->tree = tree_new(tree_warn, ar);
	/* The owner of this archive's cache keys; a freed archive leaves
	 * no key, and no later archive has its id. */
	ar->id = atomic_fetch_add(&next_id, 1) + 1;
	ar->own_cache = !ar->o.cache;
	ar->own_wcache = !ar->o.wcache;
	ar->cache = ar->o.cache ? ar->o.cache : cache_new(ar->o.cache_mem);
	ar->wcache = ar->o.wcache ? ar->o.wcache : cache_new(ar->o.window_mem);
	if (!ar->tree || !ar->cache || !ar->wcache) {
		snprintf(err, errlen, "out of memory");
		archive_free(ar);
		return NULL;
	}
	return ar;
}

struct archive *archive_open(struct fetch *f, const struct archive_opts *o,
			     char *err, size_t errlen)
{
	struct archive_opts defaults;
	struct archive *ar;
	unsigned char head[512], *seed = NULL;
	size_t hlen = sizeof(head);
	uint64_t seed_len = 0;
	int rc;

	if (!o) {
		archive_opts_default(&defaults);
		o = &defaults;
	}
	ar = archive_alloc(f, o, err, errlen);
	if (!ar)
		return NULL;
	if (hlen > fetch_size(f))
		hlen = fetch_size(f);
	rc = fetch_range(f, 0, hlen, head, 0);
	if (rc) {
		snprintf(err, errlen, "reading %s failed: %s", fetch_url(f),
			 strerror(-rc));
		goto fail;
	}
	rc = archive_index(ar, o, seek_detect(head, hlen), &seed, &seed_len,
			   err, errlen);
	if (rc)
		goto fail;
	rc = archive_start_blocks(ar);
	if (rc) {
		snprintf(err, errlen, "%s",
			 rc == -EFBIG ? "more than 2^32 seek points"
				      : "out of memory");
		goto fail;
	}
	seed_blocks(ar, seed, seed_len);
	free(seed);
	return ar;
fail:
	free(seed);
	archive_free(ar);
	errno = rc < 0 ? -rc : EIO;
	return NULL;
}

void archive_free(struct archive *ar)
{
	if (!ar)
		return;
	archive_reloc_free(ar->reloc);
	blocks_free(ar->blocks);
	index_digests_free(ar->ldigests);
	free(ar->bdigests);
	if (ar->spill)
		fclose(ar->spill);
	index_members_free(ar->members);
	if (ar->own_wcache)
		cache_free(ar->wcache);
	else
		cache_drop(ar->wcache, ar->id);
	if (ar->own_cache)
		cache_free(ar->cache);
	else
		cache_drop(ar->cache, ar->id);
	seek_index_free(ar->si);
	tree_free(ar->tree);
	pthread_cond_destroy(&ar->loaded);
	pthread_mutex_destroy(&ar->seq_lock);
	pthread_mutex_destroy(&ar->lock);
	free(ar);
}

const struct tree *archive_tree(const struct archive *ar)
{
	return ar->tree;
}

void archive_node_name(const struct archive *ar, uint32_t node, char *buf,
		       size_t len)
{
	const struct tree *t = ar->tree;
	uint32_t d, child, count = tree_count(t);
	const char *name;
	size_t i;

	for (d = 0; d < count; d++) {
		for (i = 0; !tree_dir_entry(t, d, i, &name, &child); i++) {
			if (child == node) {
				snprintf(buf, len, "%s (node %" PRIu32 ")",
					 name, node);
				return;
			}
		}
	}
	snprintf(buf, len, "node %" PRIu32, node);
}

const struct seek_index *archive_seek_index(const struct archive *ar)
{
	return ar->si;
}

struct fetch *archive_fetch(const struct archive *ar)
{
	return ar->f;
}

/* The served artifact must be the one the index describes: its first
 * and last 4 KiB (the gzip trailer's CRC-32 and size cover everything
 * before it; the last zstd frame's checksum its frame). Two small range
 * requests. */
static int check_edges(struct archive *ar, char *why, size_t whylen)
{
	unsigned char first[32], last[32];
	int rc = index_edge_digests(ar->f, first, last);

	if (rc) {
		snprintf(why, whylen,
			 "cannot read the artifact to check it: %s",
			 strerror(-rc));
		return rc;
	}
	if (memcmp(first, ar->ih.first_edge, 32) ||
	    memcmp(last, ar->ih.last_edge, 32)) {
		snprintf(why, whylen,
			 "it describes another artifact of the "
			 "same size: its %s 4 KiB differ",
			 memcmp(last, ar->ih.last_edge, 32) ? "last" : "first");
		return -ESTALE;
	}
	return 0;
}

/* Block digests: by page on first need when the index has pages (a cold
 * read fetches only the pages of its blocks), else the whole table. */
static int load_digests(struct archive *ar, struct fetch *idx, char *why,
			size_t whylen)
{
	int rc = 0;

	if (ar->ih.bpage) {
		ar->ldigests = index_digests_new(idx, &ar->ih);
		if (!ar->ldigests)
			rc = -ENOMEM;
	} else {
		rc = index_load_blocks(idx, &ar->ih, &ar->bdigests);
	}
	if (rc)
		snprintf(why, whylen, "block digests: %s", strerror(-rc));
	return rc;
}

struct archive *archive_open_index(struct fetch *f, struct fetch *idx,
				   const struct archive_opts *o, char *err,
				   size_t errlen)
{
	struct archive *ar = archive_alloc(f, o, err, errlen);
	char why[512];
	int rc;

	if (!ar)
		return NULL;
	ar->idx = idx;
	rc = index_load(idx, fetch_size(f), &ar->ih, ar->tree, &ar->si, NULL,
			ar->o.check_index, ar->o.check_arg, why, sizeof(why));
	if (!rc)
		rc = load_digests(ar, idx, why, sizeof(why));
	if (!rc) {
		ar->block_size = ar->ih.block_size;
		rc = archive_start_blocks(ar);
		if (rc)
			snprintf(why, sizeof(why), "%s",
				 rc == -EFBIG ? "more than 2^32 seek points"
					      : "out of memory");
	}
	if (!rc && !ar->o.offline)
		rc = check_edges(ar, why, sizeof(why));
	if (!rc) {
		rc = tree_finish(ar->tree);
		if (rc)
			snprintf(why, sizeof(why), "building the tree: %s",
				 strerror(-rc));
	}
	if (rc) {
		snprintf(err, errlen, "index %s refused: %s", fetch_url(idx),
			 why);
		archive_free(ar);
		errno = rc < 0 ? -rc : EINVAL;
		return NULL;
	}
	memcpy(ar->sha256, ar->ih.artifact_sha256, sizeof(ar->sha256));
	ar->spacing = ar->ih.spacing;
	return ar;
}

void archive_set_signer(struct archive *ar, const char *signer)
{
	snprintf(ar->ih.signer, sizeof(ar->ih.signer), "%s",
		 signer ? signer : "");
}

const char *archive_signer(const struct archive *ar)
{
	return ar->ih.signer;
}

const unsigned char *archive_sha256(const struct archive *ar)
{
	return ar->sha256;
}

void archive_set_root(struct archive *ar, uint32_t node)
{
	ar->root = node;
}

uint32_t archive_root(const struct archive *ar)
{
	return ar->root;
}
