/* SPDX-License-Identifier: MIT */
/*
 * names.c - the catalog's tables (versions, entries by id), negative
 * answers, and the name lookups of catalog.h.
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

/* ---- the tables ------------------------------------------------------ */

/* vidx of version, added if new. Caller holds c->lock. -ENOMEM. */
static int version_index(struct catalog *c, const char *version)
{
	char **nv;
	size_t i;

	for (i = 0; i < c->nv; i++)
		if (!strcmp(c->vers[i], version))
			return (int)i;
	if (c->nv == c->vcap) {
		nv = realloc(c->vers,
			     (c->vcap ? 2 * c->vcap : 16) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		c->vers = nv;
		c->vcap = c->vcap ? 2 * c->vcap : 16;
	}
	c->vers[c->nv] = strdup(version);
	return c->vers[c->nv] ? (int)c->nv++ : -ENOMEM;
}

/* Caller holds c->lock. */
struct catalog_entry *cat_find_locked(struct catalog *c, const char *version,
				      const char *toolchain)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->ents[i]->version, version) &&
		    !strcmp(c->ents[i]->toolchain, toolchain))
			return c->ents[i];
	return NULL;
}

char *cat_artifact_url(struct catalog *c, const struct catalog_vars *v)
{
	char *rel = catalog_template_expand(c->tmpl, v), *url = NULL;

	if (rel && asprintf(&url, "%s%s", c->base, rel) < 0)
		url = NULL;
	free(rel);
	return url;
}

static struct catalog_entry *entry_new(struct catalog *c,
				       const struct catalog_vars *v)
{
	struct catalog_entry *e = calloc(1, sizeof(*e));
	char *root = NULL;

	if (!e)
		return NULL;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->changed, NULL);
	snprintf(e->version, sizeof(e->version), "%s", v->version);
	snprintf(e->toolchain, sizeof(e->toolchain), "%s", v->toolchain);
	if (c->flat) {
		/* the caller sets url and digest; no modulefile */
		return e;
	}
	e->url = cat_artifact_url(c, v);
	if (e->url && asprintf(&root, "%s/%s/%s", c->module_root, v->version,
			       v->toolchain) >= 0)
		e->module = catalog_modulefile(v->version, v->toolchain,
					       c->has_arch ? c->arch : NULL,
					       root, e->url);
	free(root);
	if (!e->url || !e->module) {
		cat_entry_free(e);
		return NULL;
	}
	e->module_len = strlen(e->module);
	return e;
}

/* Records that (version, toolchain) exists; the entry, or NULL (ENOMEM). */
struct catalog_entry *cat_entry_found(struct catalog *c,
				      const struct catalog_vars *v)
{
	struct catalog_entry *e, *made = NULL, **ne;
	int vidx;

	pthread_mutex_lock(&c->lock);
	e = cat_find_locked(c, v->version, v->toolchain);
	pthread_mutex_unlock(&c->lock);
	if (e) {
		atomic_store(&e->seen, atomic_load(&c->gen));
		atomic_store(&e->present, true);
		return e;
	}
	made = entry_new(c, v); /* no lock held while making it */
	if (!made)
		return NULL;
	pthread_mutex_lock(&c->lock);
	e = cat_find_locked(c, v->version, v->toolchain);
	if (!e) {
		vidx = version_index(c, v->version);
		if (vidx >= 0 && c->n == c->cap) {
			ne = realloc(c->ents,
				     (c->cap ? 2 * c->cap : 16) *
					 sizeof(struct catalog_entry *));
			if (ne) {
				c->ents = ne;
				c->cap = c->cap ? 2 * c->cap : 16;
			}
		}
		if (vidx >= 0 && c->n < c->cap) {
			made->id = (uint32_t)c->n;
			made->vidx = (uint32_t)vidx;
			c->ents[c->n++] = made;
			e = made;
			made = NULL;
		}
	}
	if (e) {
		atomic_store(&e->seen, atomic_load(&c->gen));
		atomic_store(&e->present, true);
	}
	pthread_mutex_unlock(&c->lock);
	cat_entry_free(made);
	return e;
}

/* ---- negative answers ------------------------------------------------ */

static struct neg_slot *neg_slot(struct catalog *c, const char *key)
{
	uint32_t h = 2166136261u;

	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &c->neg[h % NEG_SLOTS];
}

static void neg_key(char *key, size_t len, const char *version,
		    const char *toolchain)
{
	snprintf(key, len, "%s/%s", version, toolchain ? toolchain : "");
}

static bool neg_hit(struct catalog *c, const char *version,
		    const char *toolchain)
{
	char key[sizeof(c->neg[0].key)];
	struct neg_slot *s;
	bool hit;

	neg_key(key, sizeof(key), version, toolchain);
	pthread_mutex_lock(&c->lock);
	s = neg_slot(c, key);
	hit = s->when && !strcmp(s->key, key) &&
	      now_ns() - s->when < (uint64_t)c->o.negative_ttl_s * 1000000000u;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static void neg_note(struct catalog *c, const char *version,
		     const char *toolchain)
{
	char key[sizeof(c->neg[0].key)];
	struct neg_slot *s;

	neg_key(key, sizeof(key), version, toolchain);
	pthread_mutex_lock(&c->lock);
	s = neg_slot(c, key);
	snprintf(s->key, sizeof(s->key), "%s", key);
	s->when = now_ns();
	pthread_mutex_unlock(&c->lock);
}

/* ---- names ----------------------------------------------------------- */

static int cmp_version(const void *a, const void *b)
{
	return catalog_version_cmp(*(const char *const *)a,
				   *(const char *const *)b);
}

/* Is version vidx shown (one of its entries present)? Holds c->lock. */
static bool version_shown(struct catalog *c, size_t vidx)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->ents[i]->vidx == vidx &&
		    atomic_load(&c->ents[i]->present))
			return true;
	return false;
}

size_t catalog_versions(struct catalog *c, const char **names, size_t max)
{
	size_t i, n = 0;
	const char **all;

	pthread_mutex_lock(&c->lock);
	all = calloc(c->nv ? c->nv : 1, sizeof(*all));
	for (i = 0; all && i < c->nv; i++)
		if (version_shown(c, i))
			all[n++] = c->vers[i];
	pthread_mutex_unlock(&c->lock);
	if (!all)
		return 0;
	qsort(all, n, sizeof(*all), cmp_version);
	if (names)
		memcpy(names, all, (n < max ? n : max) * sizeof(*names));
	free(all);
	return n;
}

const char *catalog_latest(struct catalog *c)
{
	const char *best = NULL;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nv; i++)
		if (version_shown(c, i) &&
		    (!best || catalog_version_cmp(c->vers[i], best) > 0))
			best = c->vers[i];
	pthread_mutex_unlock(&c->lock);
	return best;
}

static int version_find(struct catalog *c, const char *name)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nv; i++)
		if (!strcmp(c->vers[i], name) && version_shown(c, i))
			rc = (int)i;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Toolchains to probe for a new version: configured and known ones. */
static size_t probe_toolchains(struct catalog *c,
			       char names[][CATALOG_NAME_MAX + 1], size_t max)
{
	size_t n = 0, i, k;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nnames[1] + c->n && n < max; i++) {
		const char *t = i < c->nnames[1]
				    ? c->names[1][i]
				    : c->ents[i - c->nnames[1]]->toolchain;

		for (k = 0; k < n && strcmp(names[k], t); k++)
			;
		if (k == n)
			snprintf(names[n++], CATALOG_NAME_MAX + 1, "%s", t);
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

int catalog_version(struct catalog *c, const char *name, bool do_probe)
{
	char tcs[NAMES_MAX][CATALOG_NAME_MAX + 1];
	size_t n, i;
	int rc = version_find(c, name);

	if (rc >= 0 || !do_probe || !catalog_version_ok(name) ||
	    neg_hit(c, name, NULL))
		return rc;
	n = probe_toolchains(c, tcs, NAMES_MAX);
	for (i = 0; i < n; i++)
		cat_probe(c, name, tcs[i]);
	rc = version_find(c, name);
	if (rc < 0)
		neg_note(c, name, NULL);
	return rc;
}

const char *catalog_version_name(struct catalog *c, uint32_t vidx)
{
	const char *s = NULL;

	pthread_mutex_lock(&c->lock);
	if (vidx < c->nv)
		s = c->vers[vidx];
	pthread_mutex_unlock(&c->lock);
	return s;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct catalog_entry *x = *(struct catalog_entry *const *)a;
	const struct catalog_entry *y = *(struct catalog_entry *const *)b;
	int r = catalog_version_cmp(x->version, y->version);

	return r ? r : strcmp(x->toolchain, y->toolchain);
}

/* Present entries (of vidx, or all when vidx is UINT32_MAX), sorted. */
static size_t collect(struct catalog *c, uint32_t vidx,
		      struct catalog_entry **out, size_t max)
{
	struct catalog_entry **all;
	size_t i, n = 0;

	pthread_mutex_lock(&c->lock);
	all = calloc(c->n ? c->n : 1, sizeof(struct catalog_entry *));
	for (i = 0; all && i < c->n; i++)
		if ((vidx == UINT32_MAX || c->ents[i]->vidx == vidx) &&
		    !c->ents[i]->parent && atomic_load(&c->ents[i]->present))
			all[n++] = c->ents[i];
	pthread_mutex_unlock(&c->lock);
	if (!all)
		return 0;
	qsort(all, n, sizeof(struct catalog_entry *), cmp_entry);
	if (out)
		memcpy(out, all,
		       (n < max ? n : max) * sizeof(struct catalog_entry *));
	free(all);
	return n;
}

size_t catalog_entries(struct catalog *c, uint32_t vidx,
		       struct catalog_entry **out, size_t max)
{
	return collect(c, vidx, out, max);
}

size_t catalog_all(struct catalog *c, struct catalog_entry **out, size_t max)
{
	return collect(c, UINT32_MAX, out, max);
}

struct catalog_entry *catalog_find(struct catalog *c, const char *version,
				   const char *toolchain, bool do_probe)
{
	struct catalog_entry *e;

	pthread_mutex_lock(&c->lock);
	e = cat_find_locked(c, version, toolchain);
	pthread_mutex_unlock(&c->lock);
	if (e && atomic_load(&e->present))
		return e;
	if (!do_probe || !catalog_version_ok(version) ||
	    !catalog_name_ok(toolchain) || neg_hit(c, version, toolchain)) {
		errno = ENOENT;
		return NULL;
	}
	if (cat_probe(c, version, toolchain) == 0) {
		pthread_mutex_lock(&c->lock);
		e = cat_find_locked(c, version, toolchain);
		pthread_mutex_unlock(&c->lock);
		if (e)
			return e;
	}
	neg_note(c, version, toolchain);
	errno = ENOENT;
	return NULL;
}

struct catalog_entry *catalog_entry_by_id(struct catalog *c, uint32_t id)
{
	struct catalog_entry *e = NULL;

	pthread_mutex_lock(&c->lock);
	if (id < c->n)
		e = c->ents[id];
	pthread_mutex_unlock(&c->lock);
	return e;
}

uint32_t catalog_entry_id(const struct catalog_entry *e)
{
	return e->id;
}

uint32_t catalog_entry_vidx(const struct catalog_entry *e)
{
	return e->vidx;
}

const char *catalog_entry_version(const struct catalog_entry *e)
{
	return e->version;
}

const char *catalog_entry_toolchain(const struct catalog_entry *e)
{
	return e->toolchain;
}

const char *catalog_entry_url(const struct catalog_entry *e)
{
	return e->url;
}

bool catalog_entry_present(const struct catalog_entry *e)
{
	return atomic_load(&e->present);
}

const char *catalog_entry_module(const struct catalog_entry *e, size_t *len)
{
	*len = e->module_len;
	return e->module;
}
