/* SPDX-License-Identifier: MIT */
#include "sffs/open.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "open_i.h"
#include "sffs/log.h"
#include "sffs/util.h"
#include "sigcache_i.h"

/* How an index is checked under a trust set: a cached one by its
 * record and the signature kept beside it (cpath), a published one (at
 * where) by its detached signature over the header or the whole file. */
struct sig_check {
	const struct open_cfg *cfg;
	bool cached;
	const char *cpath;
	const char *where;
	const char *sig_url;
	char *sig;
	size_t siglen;
	struct trust_result res;
	uint64_t when; /* signed_at (open.h) of an accepted index */
	bool misbound; /* refused by check_binding */
};

/* try_signed_index's "signed, but for another artifact": refused, and no
 * other way is tried. */
#define MISBOUND 1

/* The file name the artifact is asked for by. */
static void asked_name(const struct open_cfg *cfg, char *name, size_t len)
{
	if (cfg->expect_name)
		snprintf(name, len, "%s", cfg->expect_name);
	else
		index_url_basename(cfg->source, name, len);
}

static int misbound(char *why, size_t whylen, const char *what, const char *has,
		    const char *asked)
{
	snprintf(why, whylen, "index signed for %s%s but asked for %s%s", what,
		 has, what, asked);
	return -EKEYREJECTED;
}

/* A signed index header's binding (index.h, 3.1) against what was asked
 * for: each field it binds must match; one that binds nothing is only
 * warned about. 0 or -EKEYREJECTED with both named in why. */
static int check_binding(const struct open_cfg *cfg,
			 const struct index_binding *b, char *why,
			 size_t whylen)
{
	char name[INDEX_MAX_NAME + 1], shown[UTIL_URL_SHOWN_MAX];

	asked_name(cfg, name, sizeof(name));
	if (!b->name[0])
		log_warn("%s: its index is signed but not bound to a name "
			 "(made before index format 3.1): it could be served "
			 "under another name; sign it again with `sffs-index "
			 "--sign-with`",
			 util_url_redact(cfg->source, shown, sizeof(shown)));
	if (b->name[0] && strcmp(b->name, name))
		return misbound(why, whylen, "", b->name, name);
	if (b->version[0] && cfg->expect_version &&
	    strcmp(b->version, cfg->expect_version))
		return misbound(why, whylen, "version ", b->version,
				cfg->expect_version);
	if (b->toolchain[0] && cfg->expect_toolchain &&
	    strcmp(b->toolchain, cfg->expect_toolchain))
		return misbound(why, whylen, "toolchain ", b->toolchain,
				cfg->expect_toolchain);
	return 0;
}

static int check_header(void *arg, const void *raw,
			const struct index_header *h, char *why, size_t whylen)
{
	struct sig_check *sc = arg;
	size_t plen = strlen(OPEN_SIGNER_PREFIX);

	if (sc->cached && sc->cfg->expect_sha256) {
		/* computed by this daemon over the bytes its block digests
		 * cover: the digest a signed manifest names is enough */
		if (memcmp(h->artifact_sha256, sc->cfg->expect_sha256, 32)) {
			snprintf(why, whylen,
				 "built from an artifact with "
				 "another SHA-256 than its manifest's");
			return -EKEYREJECTED;
		}
		return 0;
	}
	if (sc->cached && !h->signer[0] && sc->cfg->trust) {
		/* a published index copied here (offline.c): checked as it
		 * was when published, by the signature kept beside it */
		int rc = sigcache_load(sc->cpath, &sc->sig, &sc->siglen, why,
				       whylen);

		if (rc) {
			/* an index this daemon built from bytes nothing
			 * verified, or a copy that lost its signature */
			char detail[512];

			snprintf(detail, sizeof(detail), "%s", why);
			snprintf(why, whylen,
				 "built from an unverified artifact (%s)",
				 detail);
			return rc;
		}
		sc->where = sc->cpath;
		sc->sig_url = sc->cpath;
	} else if (sc->cached) {
		const char *fpr = h->signer + plen;

		if (strncmp(h->signer, OPEN_SIGNER_PREFIX, plen) ||
		    !trust_is_trusted(sc->cfg->trust, fpr)) {
			snprintf(why, whylen, "%s%s%s",
				 h->signer[0]
				     ? "built from an artifact verified by "
				     : "built from an unverified artifact",
				 h->signer,
				 h->signer[0] ? ", a key not trusted now" : "");
			return -EKEYREJECTED;
		}
		snprintf(sc->res.fpr, sizeof(sc->res.fpr), "%s", fpr);
		sc->when = h->bind.published; /* the signature's, kept */
		return sigcache_check(sc->cfg->trust, sc->cpath, fpr, why,
				      whylen);
	}
	if (trust_verify_detached(sc->cfg->trust, raw, h->hlen, sc->sig,
				  sc->siglen,
				  &sc->res) == TRUST_BAD_SIGNATURE &&
	    sc->where) {
		/* a trusted key's, just not over the header: perhaps over
		 * the whole index, as gpg --detach-sign makes it */
		int rc = sigs_whole_index(sc->cfg, sc->where, sc->sig_url, raw,
					  h, sc->sig, sc->siglen, &sc->res, why,
					  whylen);

		if (rc)
			return rc;
	} else if (sc->res.status != TRUST_OK) {
		snprintf(why, whylen, "signature %s: %s%s", sc->sig_url,
			 sc->res.detail,
			 sc->res.status == TRUST_BAD_SIGNATURE
			     ? " (it must cover the index header: sign with "
			       "`sffs-index --sign-with KEY`)"
			     : "");
		return -EKEYREJECTED;
	}
	if (sc->cfg->expect_sha256 &&
	    memcmp(h->artifact_sha256, sc->cfg->expect_sha256, 32)) {
		snprintf(why, whylen,
			 "it describes an artifact with another "
			 "SHA-256 than its manifest names");
		return -EKEYREJECTED;
	}
	sc->when = h->bind.published ? h->bind.published : sc->res.sig_time;
	sc->misbound = check_binding(sc->cfg, &h->bind, why, whylen) != 0;
	return sc->misbound ? -EKEYREJECTED : 0;
}

/* Says why the index at where is not used: quiet (debug) about a missing
 * one when asked; a denied one is named with what to do, since it costs
 * a whole streaming pass (S3 also answers 403 for a missing key where
 * listing is denied, so it may just be missing). */
static void index_unreachable(const char *where, bool missing_ok, int e,
			      const char *err)
{
	if (missing_ok && e == ENOENT)
		log_debug("no index at %s", where);
	else if (e == EACCES)
		log_warn("index %s: %s: access denied; indexing the artifact "
			 "by a whole streaming pass instead (make the index "
			 "readable, or say -o index=none if there is none)",
			 where, err);
	else
		log_warn("index %s: %s", where, err);
}

/* Tries the index at where; quiet about a missing one when asked. With
 * sc, the index must pass check_header first. */
static int try_index(const struct open_cfg *cfg, struct archive_opts *ao,
		     const char *where, bool missing_ok, struct sig_check *sc,
		     struct opened *o, char *why, size_t whylen)
{
	char err[640], shown[360]; /* both fit why */
	int rc;

	util_url_redact(where, shown, sizeof(shown));
	o->idx = fetch_open(where, &cfg->fo, err, sizeof(err));
	if (!o->idx) {
		index_unreachable(shown, missing_ok, errno, err);
		snprintf(why, whylen, "index %s: %s", shown, err);
		return -ENOENT;
	}
	ao->check_index = sc ? check_header : NULL;
	ao->check_arg = sc;
	o->ar = archive_open_index(o->f, o->idx, ao, err, sizeof(err));
	rc = o->ar ? 0 : -errno;
	ao->check_index = NULL;
	ao->check_arg = NULL;
	if (rc) {
		snprintf(why, whylen, "%s", err);
		if (rc == -EKEYREJECTED)
			log_warn("%s", err);
		else
			log_warn("%s; indexing the artifact instead", err);
		fetch_free(o->idx);
		o->idx = NULL;
		return rc;
	}
	/* A record is believed only from the cache, and only under trust. */
	archive_set_signer(o->ar, NULL);
	if (sc && sc->res.fpr[0]) {
		char signer[sizeof(OPEN_SIGNER_PREFIX) + TRUST_FPR_LEN];

		snprintf(o->signer, sizeof(o->signer), "%s", sc->res.fpr);
		snprintf(signer, sizeof(signer), OPEN_SIGNER_PREFIX "%s",
			 o->signer);
		archive_set_signer(o->ar, signer);
		o->signed_at = sc->when;
	}
	return 0;
}

/* The detached signature at named, or beside url (url + ".asc") when
 * named is NULL: 0 with *sig and *sig_url (as messages may show it), or
 * -errno (-ENOENT: none published) with a reason in why. */
static int fetch_signature(const struct open_cfg *cfg, const char *url,
			   const char *named, char **sig_url, char **sig,
			   size_t *siglen, char *why, size_t whylen)
{
	char err[512], shown[400]; /* both fit why */
	char *full;
	int rc;

	*sig = NULL;
	*sig_url = NULL;
	full = named ? strdup(named) : fetch_sibling_url(url, ".asc");
	if (!full) {
		snprintf(why, whylen, "no signature URL beside %s",
			 util_url_redact(url, shown, sizeof(shown)));
		return -ENOMEM;
	}
	util_url_redact(full, shown, sizeof(shown));
	rc = fetch_document(full, &cfg->fo, 0, TRUST_MAX_SIG, sig, siglen, err,
			    sizeof(err));
	free(full);
	*sig_url = strdup(shown);
	if (rc == -ENOENT)
		snprintf(why, whylen, "no signature at %s", shown);
	else if (rc == -EACCES)
		snprintf(why, whylen,
			 "signature %s: access denied, so the artifact cannot "
			 "be verified now (make it readable; a presigned URL "
			 "signs its path, so name the artifact's signature "
			 "with -o signature=URL; S3 also answers 403 for a "
			 "missing key)",
			 shown);
	else if (rc)
		snprintf(why, whylen, "signature %s: %s", shown, err);
	if (!rc && !*sig_url) {
		free(*sig);
		*sig = NULL;
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	return rc;
}

/* The published index under trust: only with its signature. */
static int try_signed_index(const struct open_cfg *cfg, struct archive_opts *ao,
			    const char *where, struct opened *o, char **kept,
			    size_t *keptlen, char *why, size_t whylen)
{
	struct sig_check sc = {.cfg = cfg};
	char *sig_url;
	int rc;

	rc = fetch_signature(cfg, where, NULL, &sig_url, &sc.sig, &sc.siglen,
			     why, whylen);
	if (rc == -EACCES) {
		log_warn("%s: the published index is not used; the artifact "
			 "is indexed by a whole streaming pass instead",
			 why);
	} else if (rc == -ENOENT) {
		log_debug("%s: the published index is not used", why);
	} else if (!rc) {
		sc.sig_url = sig_url;
		sc.where = where;
		rc =
		    try_index(cfg, ao, where, !cfg->index, &sc, o, why, whylen);
		if (rc && sc.misbound)
			rc = MISBOUND;
	}
	if (!rc) { /* the caller may keep it beside a copy of the index */
		*kept = sc.sig;
		*keptlen = sc.siglen;
		sc.sig = NULL;
	}
	free(sc.sig);
	free(sig_url);
	return rc;
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)total;
	progress_update(arg, done);
}

static int tap_verify(void *arg, const void *data, size_t len)
{
	return trust_stream_feed(arg, data, len);
}

/* The errno a failed streaming pass gives: the network's and the
 * integrity checks' own (fetch.h's table, EBADMSG, EKEYREJECTED) kept as
 * they are, anything else the archive layer says about bytes it cannot
 * use (EINVAL, EPROTO, ...) as EIO, "not a usable archive". */
static int pass_errno(int rc)
{
	switch (-rc) {
	case ENOENT:
	case EACCES:
	case ETIMEDOUT:
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ECONNRESET:
	case ESTALE:
	case ENOMEM:
	case EBADMSG:
	case EKEYREJECTED:
	case EINTR:
		return rc;
	default:
		return -EIO;
	}
}

/* The one streaming pass, checking the artifact's own signature over the
 * whole stream as it goes when there is a trust set; the signature that
 * verified it is handed to *kept (malloc'd, *keptlen bytes; else NULL). */
static int index_pass(const struct open_cfg *cfg, struct archive_opts *ao,
		      struct opened *o, char **kept, size_t *keptlen, char *why,
		      size_t whylen)
{
	struct trust_stream *ts = NULL;
	struct trust_result res;
	struct progress *pg;
	char err[1024], *sig_url = NULL, *sig = NULL;
	size_t siglen = 0;
	int rc = 0;

	if (cfg->trust && !cfg->expect_sha256) {
		rc = fetch_signature(cfg, fetch_url(o->f), cfg->signature,
				     &sig_url, &sig, &siglen, err, sizeof(err));
		if (!rc) {
			ts = trust_stream_new(cfg->trust, sig, siglen, &res);
			if (!ts) {
				snprintf(err, sizeof(err), "signature %s: %s",
					 sig_url, res.detail);
				rc = -EKEYREJECTED;
			}
		} else if (rc == -ENOENT || rc == -EFBIG) {
			/* none published, or too large to be one */
			rc = -EKEYREJECTED;
		}
		/* a denied signature (a WAF, a throttle) is not a bad one:
		 * -EACCES, tried again later, never "refused" */
		if (rc) {
			snprintf(why, whylen, "%s", err);
			goto out;
		}
		ao->tap = tap_verify;
		ao->tap_arg = ts;
	}
	pg = cfg->quiet
		 ? NULL
		 : progress_new(ts ? "indexing and verifying" : "indexing",
				fetch_size(o->f), false);
	ao->progress = on_progress;
	ao->progress_arg = pg;
	/* until the verdict, no more than an artifact of its size needs */
	ao->tree_mem_max = ts || cfg->expect_sha256
			       ? archive_unverified_mem(fetch_size(o->f))
			       : 0;
	o->ar = archive_open(o->f, ao, err, sizeof(err));
	rc = o->ar ? 0 : -errno;
	progress_finish(pg);
	ao->progress = NULL;
	ao->tap = NULL;
	ao->tap_arg = NULL;
	if (ts && rc) {
		trust_stream_abort(ts);
	} else if (ts && trust_stream_finish(ts, &res) != TRUST_OK) {
		snprintf(err, sizeof(err), "signature %s: %s", sig_url,
			 res.detail);
		rc = -EKEYREJECTED;
	} else if (ts) {
		char signer[sizeof(OPEN_SIGNER_PREFIX) + TRUST_FPR_LEN];

		snprintf(o->signer, sizeof(o->signer), "%s", res.fpr);
		snprintf(signer, sizeof(signer), OPEN_SIGNER_PREFIX "%s",
			 res.fpr);
		archive_set_signer(o->ar, signer);
		*kept = sig;
		*keptlen = siglen;
		sig = NULL;
		o->signed_at = res.sig_time;
	}
	if (!rc && cfg->expect_sha256 &&
	    memcmp(archive_sha256(o->ar), cfg->expect_sha256, 32)) {
		snprintf(err, sizeof(err),
			 "%s: its SHA-256 is not the one its "
			 "manifest names",
			 fetch_url_shown(o->f));
		archive_free(o->ar);
		o->ar = NULL;
		rc = -EBADMSG;
	}
	if (rc) {
		snprintf(why, whylen, "%s", err);
		rc = pass_errno(rc);
	}
out:
	free(sig);
	free(sig_url);
	return rc;
}

/* One streaming pass; then the index goes to the cache for next time. */
static int build_index(const struct open_cfg *cfg, struct archive_opts *ao,
		       const char *cpath, struct opened *o, char *why,
		       size_t whylen)
{
	const char *slash = cpath ? strrchr(cpath, '/') : NULL;
	struct index_binding keep = {0};
	char *sig = NULL, sdir[PATH_MAX];
	size_t siglen = 0;
	int rc;

	/* the window spill beside the cached indexes (private), not in /tmp */
	if (slash && snprintf(sdir, sizeof(sdir), "%.*s", (int)(slash - cpath),
			      cpath) < (int)sizeof(sdir))
		ao->spill_dir = sdir;
	rc = index_pass(cfg, ao, o, &sig, &siglen, why, whylen);
	ao->spill_dir = NULL;
	if (rc || !cpath)
		goto out;
	/* bound as sffs-index binds it by default (the same bytes as
	 * `sffs-index --published T`), T the signature's time (0 if none)
	 * for the rollback check of a later hit */
	asked_name(cfg, keep.name, sizeof(keep.name));
	keep.published = o->signed_at;
	rc = open_mkdir_p(cpath);
	if (!rc)
		rc = archive_write_index_bound(o->ar, cpath, NULL, &keep);
	if (!rc)
		open_cache_file_seal(cpath);
	/* the signature that vouched for it, checked again at each reuse */
	if (!rc && sig)
		rc = sigcache_store(cpath, sig, siglen);
	else if (!rc)
		sigcache_drop(cpath);
	if (rc)
		log_warn("cannot keep the index in %s: %s", cpath,
			 strerror(-rc));
	else
		log_debug("index kept in %s", cpath);
	rc = 0;
out:
	free(sig);
	if (!rc)
		o->how = "indexed";
	return rc;
}

/* The index cached at cpath, checked as the policy says. 0 or -errno
 * with why. */
static int try_cached(const struct open_cfg *cfg, struct archive_opts *ao,
		      const char *cpath, struct opened *o, char *why,
		      size_t whylen)
{
	struct sig_check sc = {.cfg = cfg, .cached = true, .cpath = cpath};
	int rc;

	if (!open_cache_file_ok(cpath))
		return -ENOENT;
	rc = try_index(cfg, ao, cpath, true,
		       cfg->trust || cfg->expect_sha256 ? &sc : NULL, o, why,
		       whylen);
	free(sc.sig);
	if (!rc)
		o->how = "cache";
	return rc;
}

/* The published index (SOURCE.sfidx, or cfg->index): signed under trust.
 * With a disk tier its copy (and signature) goes to the cache for a
 * reboot with no server (offline.c). 0, -errno or MISBOUND with why. */
static int try_published(const struct open_cfg *cfg, struct archive_opts *ao,
			 const char *cpath, struct opened *o, char *why,
			 size_t whylen)
{
	char *published = NULL, *sig = NULL;
	const char *where;
	size_t siglen = 0;
	int rc = -ENOENT;

	/* ".sfidx" goes on the path: a presigned URL keeps its query */
	if (!cfg->index)
		published = fetch_sibling_url(fetch_url(o->f), ".sfidx");
	where = cfg->index ? cfg->index : published;
	if (!where)
		log_warn("no index URL beside %s: %s", fetch_url_shown(o->f),
			 strerror(errno));
	else if (cfg->trust)
		rc = try_signed_index(cfg, ao, where, o, &sig, &siglen, why,
				      whylen);
	else
		rc = try_index(cfg, ao, where, !cfg->index, NULL, o, why,
			       whylen);
	if (!rc) {
		o->how = "published index";
		if (cpath && ao->blocks.disk)
			offline_keep_index(cpath, where, &cfg->fo, o->idx, sig,
					   siglen);
	}
	free(sig);
	free(published);
	return rc;
}

static bool network_errno(int e)
{
	return e == ETIMEDOUT || e == ECONNREFUSED || e == EHOSTUNREACH ||
	       e == ECONNRESET;
}

/* No server answers (fail says how): the artifact as this node last
 * opened it, from the index it cached then, if any. 0 or -errno. */
static int open_offline(const struct open_cfg *cfg, struct archive_opts *ao,
			struct opened *o, char *cdir, size_t cdirlen,
			const char *fail)
{
	char why[1024] = "no cache directory", cpath[PATH_MAX];
	int rc = -ENOENT;

	if (!open_cache_dir(cfg, cdir, cdirlen))
		rc = offline_pinned(cfg, cdir, &o->f, why, sizeof(why));
	if (!rc && open_cache_path(cdir, fetch_url(o->f), fetch_size(o->f),
				   fetch_identity(o->f), cpath, sizeof(cpath)))
		rc = -ENOENT;
	if (!rc) {
		/* its first and last 4 KiB cannot be fetched to compare: the
		 * size and validator it was cached under stand for them */
		ao->offline = true;
		rc = try_cached(cfg, ao, cpath, o, why, sizeof(why));
		ao->offline = false;
		if (rc == -ENOENT)
			snprintf(why, sizeof(why), "no index of it cached");
	}
	if (rc) {
		log_debug("offline: %s", why);
		fetch_free(o->f);
		o->f = NULL;
		cdir[0] = '\0';
		return rc;
	}
	o->how = "cache, offline";
	log_warn("%s: no server answers (%s): served from the index this "
		 "node cached; reads of blocks the disk tier does not hold "
		 "fail with EIO until a server answers",
		 fetch_url_shown(o->f), fail);
	return 0;
}

static int open_ways(const struct open_cfg *cfg, struct archive_opts *ao,
		     struct opened *o, char *cdir, size_t cdirlen)
{
	char err[1024], cpath[PATH_MAX];
	char why_cache[1024] = "", why_idx[1024] = "", why[1024] = "";
	bool cached;
	int rc;

	memset(o, 0, sizeof(*o));
	o->f = fetch_open(cfg->source, &cfg->fo, err, sizeof(err));
	if (!o->f) {
		int e = errno ? errno : EIO;

		if (network_errno(e) &&
		    !open_offline(cfg, ao, o, cdir, cdirlen, err))
			return 0;
		log_err("%s", err);
		return -e;
	}
	cached = !open_cache_dir(cfg, cdir, cdirlen) &&
		 !open_cache_path(cdir, fetch_url(o->f), fetch_size(o->f),
				  fetch_identity(o->f), cpath, sizeof(cpath));
	if (!cached)
		cdir[0] = '\0';
	if (cached &&
	    !try_cached(cfg, ao, cpath, o, why_cache, sizeof(why_cache)))
		return 0;
	/* a published index's digest is only its claim: with a digest
	 * to meet, only a signed one */
	if ((!cfg->expect_sha256 || cfg->trust) &&
	    (!cfg->index || strcmp(cfg->index, "none"))) {
		rc = try_published(cfg, ao, cached ? cpath : NULL, o, why_idx,
				   sizeof(why_idx));
		if (!rc)
			return 0;
		/* its signer said it is another artifact: nothing serves it
		 * under this name (its bytes may well carry a valid .asc) */
		if (rc == MISBOUND) {
			log_err("%s refused: %s", fetch_url_shown(o->f),
				why_idx);
			artifact_close(o);
			return -EKEYREJECTED;
		}
	}
	rc = build_index(cfg, ao, cached ? cpath : NULL, o, why, sizeof(why));
	/* every way tried, the streaming pass's first */
	if (rc == -EKEYREJECTED)
		log_err("%s refused: not verified: %s%s%s%s%s",
			fetch_url_shown(o->f), why, why_idx[0] ? "; " : "",
			why_idx, why_cache[0] ? "; cached index: " : "",
			why_cache);
	else if (rc)
		log_err("%s", why);
	if (rc)
		artifact_close(o);
	return rc;
}

/* An artifact accepted under trust, against the newest signed time seen
 * under its name (rollback.c): the catalog's version/toolchain/name, or
 * its URL as logs show it. 0 or -EKEYREJECTED (logged). */
static int check_rollback(const struct open_cfg *cfg, struct opened *o,
			  const char *cdir)
{
	char key[UTIL_URL_SHOWN_MAX + 2 * INDEX_MAX_TAG + 2], why[2048];
	char name[INDEX_MAX_NAME + 1];
	int rc;

	asked_name(cfg, name, sizeof(name));
	if (cfg->expect_version)
		snprintf(key, sizeof(key), "%s/%s/%s", cfg->expect_version,
			 cfg->expect_toolchain ? cfg->expect_toolchain : "",
			 name);
	else
		snprintf(key, sizeof(key), "%.*s",
			 (int)strcspn(fetch_url_shown(o->f), "?#"),
			 fetch_url_shown(o->f));
	rc = rollback_check(cdir[0] ? cdir : NULL, key, o->signed_at,
			    archive_sha256(o->ar), cfg->allow_rollback, why,
			    sizeof(why));
	if (rc) {
		log_err("%s refused: %s", fetch_url_shown(o->f), why);
		artifact_close(o);
	}
	return rc;
}

int artifact_open(const struct open_cfg *cfg, struct archive_opts *ao,
		  struct opened *o)
{
	char cdir[PATH_MAX] = "";
	int rc = open_ways(cfg, ao, o, cdir, sizeof(cdir));

	if (!rc && cfg->trust && o->signer[0])
		rc = check_rollback(cfg, o, cdir);
	if (rc)
		return rc;
	/* nothing vouches for these bytes: say so on every attach */
	if (!o->signer[0] && !cfg->expect_sha256)
		log_warn("%s: unverified: no trusted signature checked, its "
			 "bytes are served as the server gives them (give -o "
			 "trust=FPR to verify)",
			 fetch_url_shown(o->f));
	if (cdir[0])
		offline_record(cdir, cfg->source, o->f);
	/* From here every byte served comes through blocks and windows
	 * checked against the index's digests: identity is the size +
	 * SHA-256, so a server's new validator of the same size is only
	 * logged and adopted. The streaming pass itself stays strict (it
	 * computes those digests), and so does an offline open, which
	 * never compared the artifact's edges with its index. */
	fetch_adopt_validators(o->f, strcmp(o->how, "cache, offline") != 0);
	if (o->idx)
		fetch_adopt_validators(o->idx, true);
	return 0;
}

void artifact_close(struct opened *o)
{
	archive_free(o->ar);
	fetch_free(o->idx);
	fetch_free(o->f);
	memset(o, 0, sizeof(*o));
}
