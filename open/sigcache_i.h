/* SPDX-License-Identifier: MIT */
/*
 * sigcache_i.h - the signatures of the open policy beyond a header
 * signature (open.c calls them; sigcache.c has them):
 *   - a published index signed the standard way, by a detached signature
 *     over the whole file (`gpg --detach-sign X.sfidx`): fetched whole,
 *     bounded by the artifact's size, verified, and bound to the header
 *     the loader then parses;
 *   - the signature that verified an artifact, kept beside the index the
 *     daemon built from it in its cache (<index>.asc), and checked again
 *     (key still trusted, not revoked, not expired) before that index is
 *     reused. It cannot re-hash the artifact: what binds the cached bytes
 *     is the cache directory being private (open.c, cache_dir_private);
 *     the kept signature makes a change of trust (a key dropped, revoked,
 *     expired) apply to cached indexes too.
 * Every function logs nothing but what it says; errors are -errno with a
 * reason in why.
 */
#ifndef SFFS_SIGCACHE_I_H
#define SFFS_SIGCACHE_I_H

#include <stddef.h>

#include "sffs/index.h"
#include "sffs/open.h"
#include "sffs/trust.h"

/* The most a whole-index signature makes a node fetch to verify it:
 * SIGS_WHOLE_BASE + artifact size / SIGS_WHOLE_DIV (a real index is
 * about 3% of its artifact). */
#define SIGS_WHOLE_BASE (UINT64_C(64) << 20)
#define SIGS_WHOLE_DIV 8u

/*
 * The index at where (raw: its first h->hlen bytes as the loader read
 * and parsed them) checked against sig (shown as sig_url), a detached
 * signature over the whole index file: fetches the whole file (at most
 * the bound above, else -EFBIG), verifies it with cfg->trust into *res
 * and requires its first hlen bytes to be raw (so the header the loader
 * goes on with, whose digests chain every other byte, is the signed
 * one). Logs a warning on success (the cold path fetched the whole
 * index). 0, or -EKEYREJECTED (not signed by a trusted key, or another
 * header), -EFBIG, or fetch_document's errno, with why.
 */
int sigs_whole_index(const struct open_cfg *cfg, const char *where,
		     const char *sig_url, const void *raw,
		     const struct index_header *h, const void *sig,
		     size_t siglen, struct trust_result *res, char *why,
		     size_t whylen);

/* Keeps sig beside the cached index cpath as <cpath>.asc: mode 0600,
 * written to a new temporary file and renamed over. 0 or -errno. */
int sigcache_store(const char *cpath, const void *sig, size_t siglen);
/* Removes <cpath>.asc, if any (an index kept without a signature). */
void sigcache_drop(const char *cpath);

/*
 * Whether the signature kept beside the cached index cpath still vouches
 * for it: <cpath>.asc is a private regular file of this user (reached
 * without a symlink, at most TRUST_MAX_SIG bytes), its key is still
 * trusted, neither revoked nor expired, the signature not expired
 * (trust_check_signature_key), and that key is fpr, the one the index's
 * signer record names. 0, or -EKEYREJECTED with why.
 */
int sigcache_check(const struct trust *t, const char *cpath, const char *fpr,
		   char *why, size_t whylen);

/* The signature kept beside cpath (<cpath>.asc, read as sigcache_check
 * reads it) into *sig (malloc'd) and *len: for a published index copied
 * into the cache (offline.c), checked as the published one was. 0, or
 * -EKEYREJECTED / -ENOMEM with why. */
int sigcache_load(const char *cpath, char **sig, size_t *len, char *why,
		  size_t whylen);

#endif
