/* SPDX-License-Identifier: MIT */
/*
 * bcart.c - the Spack buildcaches of each artifact (bc_base): package
 * entries listed on demand, hidden when a complete listing drops them.
 */

#include <errno.h>
#include <inttypes.h>
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

/* ---- an artifact's buildcaches ----------------------------------- */

/* Caller holds c->lock. O(1): by "<art id>:<name>". */
static struct catalog_entry *find_pkg_locked(struct catalog *c,
					     const struct catalog_entry *art,
					     const char *name)
{
	char key[CAT_KEY_MAX];

	snprintf(key, sizeof(key), "%" PRIu32 ":%s", art->id, name);
	return cat_by_key_locked(c, key);
}

static struct catalog_entry *pkg_new(struct catalog_entry *art,
				     const char *name)
{
	struct catalog_entry *e = cat_entry_alloc();

	if (!e)
		return NULL;
	snprintf(e->version, sizeof(e->version), "%s", name);
	snprintf(e->key, sizeof(e->key), "%" PRIu32 ":%s", art->id, name);
	e->parent = art;
	e->vidx = art->vidx;
	return e;
}

/* A package of art's buildcaches found: the entry (made if new), or NULL
 * (ENOMEM, or the table is full). */
static struct catalog_entry *pkg_found(struct catalog *c,
				       struct catalog_entry *art,
				       const struct bc_package *p, unsigned gen)
{
	struct catalog_entry *e, *made = NULL;

	pthread_mutex_lock(&c->lock);
	e = find_pkg_locked(c, art, p->dir);
	pthread_mutex_unlock(&c->lock);
	if (!e) {
		made = pkg_new(art, p->dir);
		if (!made)
			return NULL;
		pthread_mutex_lock(&c->lock);
		e = find_pkg_locked(c, art, p->dir);
		if (!e && cat_add_locked(c, made)) {
			e = made;
			made = NULL;
		}
		pthread_mutex_unlock(&c->lock);
		cat_entry_free(made);
		if (!e)
			return NULL;
	}
	if (cat_set_package(e, p))
		return NULL;
	atomic_store(&e->seen, gen);
	atomic_store(&e->missed, 0);
	cat_set_present(c, e, true);
	return e;
}

/* Lists art's buildcaches (each template under bc_base) into package
 * entries; a complete listing hides the packages it no longer shows. */
static bool list_buildcaches(struct catalog *c, struct catalog_entry *art,
			     unsigned gen)
{
	struct catalog_vars v = {0};
	struct bc_listing l;
	char *rel, *base;
	bool complete = true;
	size_t i, k, n, found = 0;
	int rc;

	snprintf(v.version, sizeof(v.version), "%s", art->version);
	snprintf(v.toolchain, sizeof(v.toolchain), "%s", art->toolchain);
	snprintf(v.arch, sizeof(v.arch), "%s", c->arch);
	for (i = 0; i < c->nbc; i++) {
		rel = catalog_template_expand(c->bc_tmpl[i], &v);
		base = NULL;
		if (!rel ||
		    asprintf(&base, "%s%s%s", c->bc_base, rel,
			     rel[0] && rel[strlen(rel) - 1] != '/' ? "/" : "") <
			0) {
			free(rel);
			complete = false;
			continue;
		}
		free(rel);
		atomic_fetch_add(&c->list_requests, 1);
		rc =
		    bc_list_seen(base, &c->o.oc.fo,
				 (struct trust *)c->o.oc.trust, c->bc_keys, &l);
		if (rc) {
			/* a missing cache is an empty one; any other failure
			 * (5xx, reset, 403) leaves the listing incomplete */
			if (rc != -ENOENT)
				complete = false;
			log_debug("%s/%s: no buildcache at %s (%s)",
				  art->version, art->toolchain, base,
				  strerror(-rc));
			free(base);
			continue;
		}
		if (l.incomplete)
			complete = false;
		for (k = 0; k < l.n; k++)
			if (pkg_found(c, art, &l.pkgs[k], gen))
				found++;
			else
				complete = false;
		log_info("%s/%s: buildcache %s: %zu packages (%zu hidden)",
			 art->version, art->toolchain, base, l.n, l.hidden);
		bc_listing_free(&l);
		free(base);
	}
	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	/* an empty listing hides nothing either */
	for (i = 0; complete && found && i < n; i++) {
		struct catalog_entry *e = catalog_entry_by_id(c, (uint32_t)i);

		if (e->parent == art && atomic_load(&e->seen) != gen)
			cat_missed(c, e);
	}
	return complete;
}

static void bc_list_job(struct catalog *c, void *arg)
{
	struct catalog_entry *art = arg;
	uint64_t wait;
	unsigned gen;
	bool complete;

	pthread_mutex_lock(&art->lock);
	gen = ++art->bc_gen;
	pthread_mutex_unlock(&art->lock);
	complete = !cat_stopping(c) && list_buildcaches(c, art, gen);
	/* an incomplete listing (the network failed) is redone soon */
	wait = complete ? (uint64_t)c->o.refresh_s : c->o.attach_retry_s;
	pthread_mutex_lock(&art->lock);
	art->bc_listing = false;
	art->bc_listed_ns = now_ns();
	art->bc_next_ns = art->bc_listed_ns + wait * 1000000000u;
	pthread_cond_broadcast(&art->changed);
	pthread_mutex_unlock(&art->lock);
}

/* Waits on e->changed until deadline_ns. Caller holds e->lock. */
int cat_wait_locked(struct catalog_entry *e, uint64_t deadline_ns)
{
	struct timespec ts = {
	    .tv_sec = (time_t)(deadline_ns / 1000000000u),
	    .tv_nsec = (long)(deadline_ns % 1000000000u),
	};

	if (now_ns() >= deadline_ns)
		return -ETIMEDOUT;
	return pthread_cond_timedwait(&e->changed, &e->lock, &ts) == ETIMEDOUT
		   ? -ETIMEDOUT
		   : 0;
}

/* art's buildcaches listed on a catalog thread, if never or longer than
 * refresh_s ago; one listing at a time. Never listed yet: waits for it
 * until the read deadline; otherwise answers from what is known while
 * the listing goes on. */
static void ensure_buildcaches(struct catalog *c, struct catalog_entry *art)
{
	uint64_t deadline = cat_deadline(c);
	bool queued = false;

	pthread_mutex_lock(&art->lock);
	if (!art->bc_listing &&
	    (!art->bc_listed_ns || now_ns() >= art->bc_next_ns)) {
		art->bc_listing = true;
		queued = true;
	}
	pthread_mutex_unlock(&art->lock);
	if (queued && cat_submit(c, bc_list_job, art) < 0)
		bc_list_job(c, art); /* no thread: this one lists */
	pthread_mutex_lock(&art->lock);
	while (art->bc_listing && !art->bc_listed_ns &&
	       !cat_wait_locked(art, deadline))
		;
	pthread_mutex_unlock(&art->lock);
}

bool catalog_bc_enabled(const struct catalog *c)
{
	return c->nbc > 0;
}

static int cmp_name(const void *a, const void *b)
{
	const struct catalog_entry *x = *(struct catalog_entry *const *)a;
	const struct catalog_entry *y = *(struct catalog_entry *const *)b;

	return strcmp(x->version, y->version);
}

size_t catalog_bc_packages(struct catalog *c, struct catalog_entry *art,
			   struct catalog_entry **out, size_t max)
{
	struct catalog_entry **all;
	size_t i, n = 0;

	if (!c->nbc)
		return 0;
	ensure_buildcaches(c, art);
	pthread_mutex_lock(&c->lock);
	all = calloc(c->n ? c->n : 1, sizeof(struct catalog_entry *));
	for (i = 0; all && i < c->n; i++)
		if (c->ents[i]->parent == art &&
		    atomic_load(&c->ents[i]->present))
			all[n++] = c->ents[i];
	pthread_mutex_unlock(&c->lock);
	if (!all)
		return 0;
	qsort(all, n, sizeof(struct catalog_entry *), cmp_name);
	if (out)
		memcpy(out, all,
		       (n < max ? n : max) * sizeof(struct catalog_entry *));
	free(all);
	return n;
}

struct catalog_entry *
catalog_bc_find(struct catalog *c, struct catalog_entry *art, const char *name)
{
	struct catalog_entry *e;

	if (!c->nbc)
		return NULL;
	ensure_buildcaches(c, art);
	pthread_mutex_lock(&c->lock);
	e = find_pkg_locked(c, art, name);
	pthread_mutex_unlock(&c->lock);
	return e && atomic_load(&e->present) ? e : NULL;
}

struct catalog_entry *catalog_entry_parent(const struct catalog_entry *e)
{
	return e->parent;
}

bool catalog_flat(const struct catalog *c)
{
	return c->flat;
}

size_t catalog_bc_index(struct catalog *c, uint64_t off, void *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	if (c->bc_index && off < c->bc_index_len) {
		n = c->bc_index_len - (size_t)off < len
			? c->bc_index_len - (size_t)off
			: len;
		if (buf)
			memcpy(buf, c->bc_index + off, n);
	}
	if (!buf)
		n = c->bc_index ? c->bc_index_len : 0;
	pthread_mutex_unlock(&c->lock);
	return n;
}
