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

/* Caller holds c->lock. */
static struct catalog_entry *find_pkg_locked(struct catalog *c,
					     const struct catalog_entry *art,
					     const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->ents[i]->parent == art &&
		    !strcmp(c->ents[i]->version, name))
			return c->ents[i];
	return NULL;
}

/* A package of art's buildcaches found: the entry (made if new), or NULL
 * (ENOMEM). */
static struct catalog_entry *pkg_found(struct catalog *c,
				       struct catalog_entry *art,
				       const struct bc_package *p, unsigned gen)
{
	struct catalog_entry *e, *made = NULL, **ne;

	pthread_mutex_lock(&c->lock);
	e = find_pkg_locked(c, art, p->dir);
	pthread_mutex_unlock(&c->lock);
	if (!e) {
		made = calloc(1, sizeof(*made));
		if (!made)
			return NULL;
		pthread_mutex_init(&made->lock, NULL);
		pthread_cond_init(&made->changed, NULL);
		snprintf(made->version, sizeof(made->version), "%s", p->dir);
		made->parent = art;
		made->vidx = art->vidx;
		pthread_mutex_lock(&c->lock);
		e = find_pkg_locked(c, art, p->dir);
		if (!e && c->n == c->cap && c->n < FS_ENTRY_LIMIT) {
			ne = realloc(c->ents,
				     (c->cap ? 2 * c->cap : 16) *
					 sizeof(struct catalog_entry *));
			if (ne) {
				c->ents = ne;
				c->cap = c->cap ? 2 * c->cap : 16;
			}
		}
		if (!e && c->n < c->cap) {
			made->id = (uint32_t)c->n;
			c->ents[c->n++] = made;
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
	atomic_store(&e->present, true);
	return e;
}

/* Lists art's buildcaches (each template under bc_base) into package
 * entries; a complete listing hides the packages it no longer shows. */
static void list_buildcaches(struct catalog *c, struct catalog_entry *art,
			     unsigned gen)
{
	struct catalog_vars v = {0};
	struct bc_listing l;
	char *rel, *base;
	bool complete = true;
	size_t i, k, n;

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
		if (bc_list(base, &c->o.oc.fo, (struct trust *)c->o.oc.trust,
			    &l)) {
			/* a missing cache is an empty one, not an error */
			log_debug("%s/%s: no buildcache at %s", art->version,
				  art->toolchain, base);
			free(base);
			continue;
		}
		for (k = 0; k < l.n; k++)
			if (!pkg_found(c, art, &l.pkgs[k], gen))
				complete = false;
		log_info("%s/%s: buildcache %s: %zu packages (%zu hidden)",
			 art->version, art->toolchain, base, l.n, l.hidden);
		bc_listing_free(&l);
		free(base);
	}
	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; complete && i < n; i++) {
		struct catalog_entry *e = catalog_entry_by_id(c, (uint32_t)i);

		if (e->parent == art && atomic_load(&e->seen) != gen)
			atomic_store(&e->present, false);
	}
}

/* art's buildcaches listed, if never or longer than refresh_s ago; one
 * listing at a time, the others wait for it. */
static void ensure_buildcaches(struct catalog *c, struct catalog_entry *art)
{
	uint64_t now = now_ns();
	unsigned gen;

	pthread_mutex_lock(&art->lock);
	while (art->bc_listing)
		pthread_cond_wait(&art->changed, &art->lock);
	if (art->bc_listed_ns &&
	    now - art->bc_listed_ns < (uint64_t)c->o.refresh_s * 1000000000u) {
		pthread_mutex_unlock(&art->lock);
		return;
	}
	art->bc_listing = true;
	gen = ++art->bc_gen;
	pthread_mutex_unlock(&art->lock);
	list_buildcaches(c, art, gen);
	pthread_mutex_lock(&art->lock);
	art->bc_listing = false;
	art->bc_listed_ns = now_ns();
	pthread_cond_broadcast(&art->changed);
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
