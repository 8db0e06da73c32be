/* SPDX-License-Identifier: MIT */
/*
 * attach.c - attach and release of an entry's archive (catalog.h):
 * the attach state is under each entry's own lock.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sffs/buildcache.h"
#include "sffs/fetch.h"
#include "sffs/seek.h"
#include "sffs/log.h"
#include "sffs/trust.h"
#include "sffs/util.h"

#include "catalog_int.h"

/* ---- attach and release --------------------------------------------- */

struct release {
	struct opened o;
	struct catalog_entry *e;
};

/* Closing an archive joins its threads and gives memory back: never in
 * the kernel's forget path, always on a catalog thread. */
static void release_job(struct catalog *c, void *arg)
{
	struct release *r = arg;

	artifact_close(&r->o);
	/* give the freed index, tree and spare chunks back to the system */
	cache_trim(c->cache);
	seek_pool_trim();
	if (CAT_MALLOC_TRIM)
		malloc_trim(0);
	atomic_fetch_add(&c->releases, 1);
	log_info("%s/%s released", r->e->version, r->e->toolchain);
	free(r);
}

/* Frees e's archive if released and unused (on a catalog thread). Called
 * with e->lock held; returns with it released. */
static void unlock_maybe_free(struct catalog *c, struct catalog_entry *e)
{
	struct release *r;

	if (!e->o.ar || !e->releasing || e->nlookup || e->active) {
		pthread_mutex_unlock(&e->lock);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		pthread_mutex_unlock(&e->lock); /* freed at a later put */
		return;
	}
	r->o = e->o;
	r->e = e;
	memset(&e->o, 0, sizeof(e->o));
	e->releasing = false;
	pthread_cond_broadcast(&e->changed);
	pthread_mutex_unlock(&e->lock);
	if (cat_submit(c, release_job, r) < 0)
		release_job(c, r); /* no catalog thread: here, as before */
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

/* A package's root is its install prefix; its signer, its manifest's. */
static int package_root(struct catalog_entry *e, struct opened *o)
{
	char signer[sizeof(OPEN_SIGNER_PREFIX) + TRUST_FPR_LEN];
	uint32_t root;

	if (bc_find_prefix(archive_tree(o->ar), &root)) {
		log_err("%s: no .spack/binary_distribution in the package "
			"tarball %s",
			e->version, fetch_url(o->f));
		artifact_close(o);
		return -EBADMSG;
	}
	archive_set_root(o->ar, root);
	pthread_mutex_lock(&e->lock); /* a listing may set it meanwhile */
	snprintf(o->signer, sizeof(o->signer), "%s", e->signer);
	pthread_mutex_unlock(&e->lock);
	snprintf(signer, sizeof(signer), OPEN_SIGNER_PREFIX "%s", o->signer);
	archive_set_signer(o->ar, o->signer[0] ? signer : NULL);
	return 0;
}

bool cat_integrity_err(int rc)
{
	return rc == -EBADMSG || rc == -EKEYREJECTED;
}

uint64_t cat_deadline(struct catalog *c)
{
	unsigned t =
	    c->o.ao.timeout_s ? c->o.ao.timeout_s : ARCHIVE_DEFAULT_TIMEOUT;

	return now_ns() + (uint64_t)t * 1000000000u;
}

/* When a failed attach may be tried again: an integrity failure after
 * attach_retry_s; a network one after attach_retry_s doubled per failure
 * in a row, capped, with +-25% jitter so that nodes spread out. */
static uint64_t retry_after_ns(struct catalog *c, struct catalog_entry *e,
			       int rc)
{
	uint64_t base = (uint64_t)c->o.attach_retry_s * 1000000000u;
	uint64_t cap = (uint64_t)CAT_BACKOFF_CAP_S * 1000000000u, d, r;
	unsigned k = e->fails > 1 ? e->fails - 1 : 0;

	if (cat_integrity_err(rc) || !base)
		return base;
	if (cap < base)
		cap = base;
	d = k >= 16 || (base << k) > cap ? cap : base << k;
	r = now_ns() ^ ((uint64_t)e->id * 0x9e3779b97f4a7c15ull);
	r ^= r >> 29;
	r *= 0xbf58476d1ce4e5b9ull;
	r ^= r >> 32;
	return d - d / 4 + r % (d / 2 + 1);
}

/* The attach has failed with rc: noted, logged, and (integrity only) the
 * package hidden. Caller holds e->lock. */
static void attach_failed(struct catalog *c, struct catalog_entry *e, int rc,
			  bool package)
{
	uint64_t after;

	e->fail_err = rc;
	e->fails = cat_integrity_err(rc) ? 0 : e->fails + 1;
	after = retry_after_ns(c, e, rc);
	e->retry_ns = now_ns() + after;
	atomic_fetch_add(&c->attach_failures, 1);
	/* logged under the lock: a listing may replace url after it */
	log_err("cannot attach %s%s%s (%s): %s; retried after %.1f s",
		e->version, e->toolchain[0] ? "/" : "", e->toolchain, e->url,
		strerror(-rc), secs(after));
	/* only a tarball that fails its checks hides its package (until a
	 * listing shows it again); the network's errors hide nothing */
	if (package && cat_integrity_err(rc)) {
		cat_set_present(c, e, false);
		log_warn("package %s hidden: its tarball %s failed its "
			 "checks (%s)",
			 e->version, e->url, strerror(-rc));
	}
}

/* The attach itself, on a catalog thread: e->attaching was set by the
 * one who queued it; the waiters are woken when it ends. */
/* Logs e's world-writable directories, as the mount shows them. */
static void warn_writable(struct catalog *c, struct catalog_entry *e,
			  const struct opened *o)
{
	char where[PATH_MAX];

	if (e->parent)
		snprintf(where, sizeof(where), "%s/%s/%s/buildcache/%s",
			 c->module_root, e->parent->version,
			 e->parent->toolchain, e->version);
	else if (e->has_sha || !e->toolchain[0])
		snprintf(where, sizeof(where), "%s/%s", c->module_root,
			 e->version);
	else
		snprintf(where, sizeof(where), "%s/%s/%s", c->module_root,
			 e->version, e->toolchain);
	bc_warn_writable(archive_tree(o->ar), archive_root(o->ar), where);
}

/* -o relocate=: an artifact's ELF files relocated to MNT/<v>/<tc>. */
static int relocate_artifact(struct catalog *c, struct catalog_entry *e,
			     struct archive *ar)
{
	char root[PATH_MAX], err[512];
	int rc;

	if (!c->o.relocate)
		return 0;
	if (e->toolchain[0])
		rc = snprintf(root, sizeof(root), "%s/%s/%s", c->module_root,
			      e->version, e->toolchain);
	else
		rc = snprintf(root, sizeof(root), "%s/%s", c->module_root,
			      e->version);
	if (rc < 0 || (size_t)rc >= sizeof(root))
		return -ENAMETOOLONG;
	rc = archive_relocate_tree(ar, c->o.relocate, root, root, err,
				   sizeof(err));
	if (rc)
		log_err("%s", err);
	return rc;
}

static void attach_job(struct catalog *c, void *arg)
{
	struct catalog_entry *e = arg;
	struct open_cfg oc = c->o.oc;
	struct archive_opts ao = c->o.ao;
	struct opened o;
	uint64_t t0 = now_ns();
	uint32_t inodes;
	int rc = -ECANCELED;
	bool check;

	pthread_mutex_lock(&e->lock);
	check = !e->writable_checked;
	/* stable while attaching: set_package leaves them alone */
	oc.source = e->url;
	oc.expect_sha256 = e->has_sha ? e->sha256 : NULL;
	/* what a signed index header must be bound to (a package's own
	 * manifest binds it instead) */
	oc.expect_version = e->has_sha ? NULL : e->version;
	oc.expect_toolchain =
	    e->has_sha || !e->toolchain[0] ? NULL : e->toolchain;
	pthread_mutex_unlock(&e->lock);
	oc.quiet = true;
	ao.cache = c->cache;
	ao.wcache = c->wcache;
	ao.store = c->store;
	if (!cat_stopping(c))
		rc = artifact_open(&oc, &ao, &o);
	if (!rc && oc.expect_sha256) {
		rc = package_root(e, &o);
		if (!rc && (rc = cat_package_relocate(c, e, o.ar)))
			artifact_close(&o);
	} else if (!rc && (rc = relocate_artifact(c, e, o.ar))) {
		artifact_close(&o);
	}
	if (!rc && check)
		warn_writable(c, e, &o);

	pthread_mutex_lock(&e->lock);
	e->attaching = false;
	pthread_cond_broadcast(&e->changed);
	if (rc) {
		attach_failed(c, e, rc, oc.expect_sha256 != NULL);
		pthread_mutex_unlock(&e->lock);
		return;
	}
	e->o = o;
	e->writable_checked = true;
	e->epoch = (e->epoch + 1) & 0xff;
	/* no reference yet: each waiter takes its own; unused, the reaper
	 * releases it after release_after_s */
	e->active = 0;
	e->nlookup = 0;
	e->releasing = false;
	e->retry_ns = 0;
	e->fails = 0;
	e->last_used_ns = now_ns();
	atomic_fetch_add(&c->attaches, 1); /* counted before a waiter sees it */
	inodes = tree_count(archive_tree(o.ar)); /* o.ar is e's from here */
	/* logged before a waiter can go on: what it does next comes after */
	log_info("%s%s%s attached in %.2f s (%s%s%s, %" PRIu32 " inodes)",
		 e->version, e->toolchain[0] ? "/" : "", e->toolchain,
		 secs(now_ns() - t0), o.how, o.signer[0] ? ", signed by " : "",
		 o.signer, inodes);
	pthread_mutex_unlock(&e->lock);
}

/* Queues e's attach unless its last failure is too recent. Called and
 * returns with e->lock held. 0 (attaching), or -errno. */
static int attach_start(struct catalog *c, struct catalog_entry *e)
{
	if (e->retry_ns && now_ns() < e->retry_ns)
		return e->fail_err;
	/* a package a listing is still filling in is not there yet */
	if (!e->url || ((c->flat || e->parent) && !e->has_sha))
		return -ENOENT;
	e->attaching = true;
	e->attach_overdue = false;
	if (cat_submit(c, attach_job, e) < 0) {
		/* no catalog thread to be had: this one attaches */
		pthread_mutex_unlock(&e->lock);
		attach_job(c, e);
		pthread_mutex_lock(&e->lock);
	}
	return 0;
}

void cat_attach_ahead(struct catalog *c, struct catalog_entry *e)
{
	pthread_mutex_lock(&e->lock);
	if (!e->o.ar && !e->attaching && !cat_stopping(c) &&
	    !(e->retry_ns && now_ns() < e->retry_ns) && e->url &&
	    !((c->flat || e->parent) && !e->has_sha)) {
		e->attaching = true;
		e->attach_overdue = false;
		/* no thread to be had: attached when looked up, as before */
		if (cat_submit(c, attach_job, e) < 0)
			e->attaching = false;
	}
	pthread_mutex_unlock(&e->lock);
}

/* Takes an active reference on the attached archive. Holds e->lock. */
static void take_locked(struct catalog_entry *e, struct archive **ar,
			uint32_t *epoch)
{
	e->active++;
	e->releasing = false;
	e->last_used_ns = now_ns();
	*ar = e->o.ar;
	if (epoch)
		*epoch = e->epoch;
}

int catalog_attach_wait(struct catalog *c, struct catalog_entry *e,
			uint64_t deadline_ns, const atomic_bool *cancel,
			struct archive **ar, uint32_t *epoch)
{
	bool late_ok = false; /* the default deadline may be shortened */
	uint64_t late;
	int rc;

	if (!deadline_ns) {
		deadline_ns = cat_deadline(c);
		late_ok = true;
	}
	pthread_mutex_lock(&e->lock);
	e->waiters++;
	atomic_fetch_add(&c->nwaiters, 1);
	for (;;) {
		if (e->o.ar) {
			take_locked(e, ar, epoch);
			rc = 0;
			break;
		}
		if (cancel && atomic_load(cancel)) {
			rc = -EINTR;
			break;
		}
		if (!e->attaching) {
			rc = attach_start(c, e);
			if (rc)
				break;
			continue;
		}
		if (late_ok && e->attach_overdue) {
			late = now_ns() + CAT_LATE_WAIT_MS * 1000000ull;
			if (late < deadline_ns)
				deadline_ns = late;
		}
		rc = cat_wait_locked(e, deadline_ns);
		if (rc) {
			/* -ETIMEDOUT: the attach goes on */
			e->attach_overdue = e->attaching;
			break;
		}
	}
	e->waiters--;
	atomic_fetch_sub(&c->nwaiters, 1);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int catalog_attach(struct catalog *c, struct catalog_entry *e,
		   struct archive **ar, uint32_t *epoch)
{
	return catalog_attach_wait(c, e, 0, NULL, ar, epoch);
}

void catalog_wake(struct catalog *c)
{
	size_t n, i;

	if (!atomic_load(&c->nwaiters))
		return;
	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n && atomic_load(&c->nwaiters); i++) {
		struct catalog_entry *e = catalog_entry_by_id(c, (uint32_t)i);

		pthread_mutex_lock(&e->lock);
		if (e->waiters)
			pthread_cond_broadcast(&e->changed);
		pthread_mutex_unlock(&e->lock);
	}
}

/* An active reference if attached (of generation epoch, unless any). */
static int take(struct catalog_entry *e, bool any, uint32_t epoch,
		struct archive **ar)
{
	int rc = -ESTALE;

	pthread_mutex_lock(&e->lock);
	if (e->o.ar && (any || e->epoch == epoch)) {
		e->active++;
		e->releasing = false;
		e->last_used_ns = now_ns();
		*ar = e->o.ar;
		rc = 0;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int catalog_get(struct catalog *c, struct catalog_entry *e, uint32_t epoch,
		struct archive **ar)
{
	(void)c;
	return take(e, false, epoch, ar);
}

int catalog_peek(struct catalog *c, struct catalog_entry *e,
		 struct archive **ar)
{
	(void)c;
	return take(e, true, 0, ar);
}

void catalog_put(struct catalog *c, struct catalog_entry *e)
{
	pthread_mutex_lock(&e->lock);
	if (e->active)
		e->active--;
	e->last_used_ns = now_ns();
	unlock_maybe_free(c, e);
}

void catalog_ref(struct catalog *c, struct catalog_entry *e, uint32_t epoch,
		 uint64_t n)
{
	(void)c;
	pthread_mutex_lock(&e->lock);
	if (e->o.ar && e->epoch == epoch)
		e->nlookup += n;
	pthread_mutex_unlock(&e->lock);
}

void catalog_unref(struct catalog *c, struct catalog_entry *e, uint32_t epoch,
		   uint64_t n)
{
	pthread_mutex_lock(&e->lock);
	if (e->o.ar && e->epoch == epoch)
		e->nlookup = e->nlookup > n ? e->nlookup - n : 0;
	unlock_maybe_free(c, e);
}

size_t catalog_idle(struct catalog *c,
		    void (*cb)(void *arg, struct catalog_entry *e), void *arg)
{
	uint64_t after = (uint64_t)c->o.release_after_s * 1000000000u;
	size_t n, i, count = 0;
	bool go;

	if (!c->o.release_after_s)
		return 0;
	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n; i++) {
		struct catalog_entry *e = catalog_entry_by_id(c, (uint32_t)i);

		pthread_mutex_lock(&e->lock);
		go = e->o.ar && !e->releasing && !e->active &&
		     now_ns() - e->last_used_ns >= after;
		if (go)
			e->releasing = true;
		pthread_mutex_unlock(&e->lock);
		if (!go)
			continue;
		count++;
		log_debug("%s/%s unused for %u s: releasing", e->version,
			  e->toolchain, c->o.release_after_s);
		if (cb)
			cb(arg, e);
		pthread_mutex_lock(&e->lock);
		unlock_maybe_free(c, e);
	}
	return count;
}
