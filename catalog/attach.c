/* SPDX-License-Identifier: MIT */
/*
 * attach.c - attach and release of an entry's archive (catalog.h):
 * the attach state is under each entry's own lock.
 */

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sffs/buildcache.h"
#include "sffs/fetch.h"
#include "sffs/log.h"
#include "sffs/trust.h"
#include "sffs/util.h"

#include "catalog_int.h"

/* ---- attach and release --------------------------------------------- */

/* Frees e's archive if released and unused. Called with e->lock held;
 * returns with it released. */
static void unlock_maybe_free(struct catalog *c, struct catalog_entry *e)
{
	struct opened o;

	if (!e->o.ar || !e->releasing || e->nlookup || e->active) {
		pthread_mutex_unlock(&e->lock);
		return;
	}
	o = e->o;
	memset(&e->o, 0, sizeof(e->o));
	e->releasing = false;
	pthread_cond_broadcast(&e->changed);
	pthread_mutex_unlock(&e->lock);
	artifact_close(&o);
	/* give the freed index, tree and spare chunks back to the system */
	cache_trim(c->cache);
	malloc_trim(0);
	atomic_fetch_add(&c->releases, 1);
	log_info("%s/%s released", e->version, e->toolchain);
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

int catalog_attach(struct catalog *c, struct catalog_entry *e,
		   struct archive **ar, uint32_t *epoch)
{
	struct open_cfg oc = c->o.oc;
	struct archive_opts ao = c->o.ao;
	struct opened o;
	uint64_t t0;
	int rc;

	pthread_mutex_lock(&e->lock);
	for (;;) {
		if (e->o.ar) {
			e->active++;
			e->releasing = false;
			e->last_used_ns = now_ns();
			*ar = e->o.ar;
			*epoch = e->epoch;
			pthread_mutex_unlock(&e->lock);
			return 0;
		}
		if (!e->attaching)
			break;
		pthread_cond_wait(&e->changed, &e->lock);
	}
	if (e->fail_ns && now_ns() - e->fail_ns <
			      (uint64_t)c->o.attach_retry_s * 1000000000u) {
		rc = e->fail_err;
		pthread_mutex_unlock(&e->lock);
		return rc;
	}
	/* a package a listing is still filling in is not there yet */
	if (!e->url || ((c->flat || e->parent) && !e->has_sha)) {
		pthread_mutex_unlock(&e->lock);
		return -ENOENT;
	}
	e->attaching = true;
	/* stable while attaching: cat_set_package leaves them alone */
	oc.source = e->url;
	oc.expect_sha256 = e->has_sha ? e->sha256 : NULL;
	pthread_mutex_unlock(&e->lock);

	t0 = now_ns();
	oc.quiet = true;
	ao.cache = c->cache;
	ao.wcache = c->wcache;
	rc = artifact_open(&oc, &ao, &o);
	if (!rc && oc.expect_sha256)
		rc = package_root(e, &o);

	pthread_mutex_lock(&e->lock);
	e->attaching = false;
	pthread_cond_broadcast(&e->changed);
	if (rc) {
		e->fail_err = rc;
		e->fail_ns = now_ns();
		atomic_fetch_add(&c->attach_failures, 1);
		/* logged under the lock: a listing may replace url after it */
		log_err("cannot attach %s%s%s (%s): %s; retried after %u s",
			e->version, e->toolchain[0] ? "/" : "", e->toolchain,
			e->url, strerror(-rc), c->o.attach_retry_s);
		/* a package whose tarball fails its checks is not shown (until
		 * a listing shows it again); the network's errors hide nothing
		 */
		if (oc.expect_sha256 && rc != -ETIMEDOUT &&
		    rc != -ECONNREFUSED && rc != -EHOSTUNREACH &&
		    rc != -ENOMEM) {
			atomic_store(&e->present, false);
			log_warn("package %s hidden: its tarball %s failed its "
				 "checks (%s)",
				 e->version, e->url, strerror(-rc));
		}
		pthread_mutex_unlock(&e->lock);
		return rc;
	}
	e->o = o;
	e->epoch = (e->epoch + 1) & 0xff;
	e->active = 1;
	e->nlookup = 0;
	e->releasing = false;
	e->fail_ns = 0;
	e->last_used_ns = now_ns();
	*ar = e->o.ar;
	*epoch = e->epoch;
	pthread_mutex_unlock(&e->lock);
	atomic_fetch_add(&c->attaches, 1);
	log_info("%s%s%s attached in %.2f s (%s%s%s, %" PRIu32 " inodes)",
		 e->version, e->toolchain[0] ? "/" : "", e->toolchain,
		 secs(now_ns() - t0), o.how, o.signer[0] ? ", signed by " : "",
		 o.signer, tree_count(archive_tree(o.ar)));
	return 0;
}

/* Not yet on its own thread: waits as catalog_attach does. */
int catalog_attach_wait(struct catalog *c, struct catalog_entry *e,
			uint64_t deadline_ns, const atomic_bool *cancel,
			struct archive **ar, uint32_t *epoch)
{
	(void)deadline_ns;
	(void)cancel;
	return catalog_attach(c, e, ar, epoch);
}

void catalog_wake(struct catalog *c)
{
	(void)c;
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
