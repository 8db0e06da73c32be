/* SPDX-License-Identifier: MIT */
/*
 * open.h - the open policy: how an artifact gets ready to serve. From its
 * local index cache, else from the published index (SOURCE.sfidx, or the
 * one named), else by one streaming pass whose index is then kept in the
 * cache. Every index is checked against the artifact it claims
 * (archive_open_index). Used by the single-artifact daemon and by the
 * catalog for each artifact it attaches. No FUSE.
 *
 * With a trust set (trust.h) nothing unverified is served:
 *   - a cached index is used only if it records (index.h, signer) that
 *     the artifact it was built from was verified by a key trusted now,
 *     and the signature that verified it, kept beside it (INDEX.asc),
 *     names that key and its key is still trusted, not revoked, not
 *     expired (it is not re-hashed: the cache directory being private is
 *     what keeps its bytes; open/sigcache_i.h);
 *   - a published index only with its detached signature
 *     (INDEX.asc, over the index header, whose digests chain every other
 *     byte of the index and, through the block digests, of the
 *     artifact), checked before anything else of the index is read; or,
 *     with a warning, over the whole index file (gpg --detach-sign),
 *     which is then fetched whole, at most 64 MiB + artifact size / 8;
 *   - else the one streaming pass checks SOURCE.asc over the whole
 *     artifact as it indexes, and the index kept in the cache records
 *     the signer, with SOURCE.asc kept beside it.
 * A published index's header must also be bound to the name asked for
 * (expect_*), and under trust an artifact older than the newest seen
 * under its name is refused (allow_rollback).
 * An artifact none of these verifies is refused: -EKEYREJECTED, after
 * logging the artifact, the key and the reason. A signature that cannot
 * be fetched (denied, or the network) is not a refusal: the errno says
 * which (-EACCES, -ETIMEDOUT, ...), so the caller tries again later.
 */
#ifndef SFFS_OPEN_H
#define SFFS_OPEN_H

#include <stdbool.h>
#include <stdint.h>

#include "sffs/archive.h"
#include "sffs/fetch.h"
#include "sffs/trust.h"

struct open_cfg {
	const char *source;
	const char *index; /* URL/path, NULL: SOURCE.sfidx, "none" */
	/* the artifact's detached signature (URL/path), NULL: SOURCE.asc;
	 * for presigned URLs, which cannot name a sibling */
	const char *signature;
	const char *cache_dir; /* NULL: default, "none": no cache */
	struct fetch_opts fo;
	bool quiet;
	const struct trust *trust; /* NULL: serve unverified (verify=off) */
	/* The artifact's SHA-256 as a signed document gives it (a Spack
	 * manifest), or NULL. Then that digest is the anchor instead of a
	 * signature of the artifact's own: a cached index is used if it
	 * records that digest (the daemon computed it over the same bytes
	 * as its block digests), a published one only if signed (trust) and
	 * naming that digest, and the streaming pass must compute it (else
	 * -EBADMSG). */
	const unsigned char *expect_sha256;
	/* What a published index's signed header must be bound to (index.h,
	 * minor 3.1): each field the header binds is compared and a
	 * mismatch refused (-EKEYREJECTED, naming both). expect_name NULL:
	 * the file name of source (without query); expect_version and
	 * expect_toolchain NULL: not checked (a catalog sets them from its
	 * entry). */
	const char *expect_name;
	const char *expect_version;
	const char *expect_toolchain;
	/* Under trust, an artifact signed before the newest one seen under
	 * the same name (its rollback record in the cache directory) is
	 * refused as a rollback (-EKEYREJECTED) unless this is set. */
	bool allow_rollback;
};

/* archive_signer() of a verified artifact starts with this. */
#define OPEN_SIGNER_PREFIX "openpgp:"

struct opened {
	struct fetch *f;   /* the artifact */
	struct fetch *idx; /* the index windows come from, or NULL */
	struct archive *ar;
	const char *how; /* "cache", "published index", "indexed" */
	/* The signer's fingerprint when a trust set verified it, or "". */
	char signer[TRUST_FPR_LEN + 1];
	/* When it was signed: the index header's publication time, else the
	 * signature's creation time (seconds since the epoch); 0 unknown. */
	uint64_t signed_at;
};

/* 0 and *out filled, or -errno after logging why nothing could be
 * opened, the class kept from where it was found (fetch.h's table):
 * -ENOENT (no such artifact), -EACCES, -ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -ECONNRESET, -EIO (the network, or not a usable
 * archive), -EBADMSG (an integrity check failed: a digest, a gzip/zstd
 * check, the SHA-256 a manifest names), -EKEYREJECTED (not verified
 * under cfg->trust), -ENOMEM. Only -EBADMSG and -EKEYREJECTED say the
 * artifact is bad; every other errno may go away if tried again. A
 * published index that is missing, unusable or denied (logged with what
 * to do) is not an error: the streaming pass is tried instead. */
int artifact_open(const struct open_cfg *cfg, struct archive_opts *ao,
		  struct opened *out);
/* Whether this node opened source before and kept, in the cache
 * directory cfg names, the record a open with no server answering
 * starts from (then artifact_open of source may succeed offline, from
 * the index cached then). For a catalog whose probes reach no server. */
bool artifact_seen_here(const struct open_cfg *cfg, const char *source);

/* Frees what artifact_open filled; safe on a zeroed struct. */
void artifact_close(struct opened *o);

#endif
