/* SPDX-License-Identifier: MIT */
/*
 * names.c - the catalog's tables (versions, entries by id), negative
 * answers, and the name lookups of catalog.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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
	struct cat_version *v;
	char **nv;

	HASH_FIND_STR(c->by_version, version, v);
	if (v)
		return (int)v->vidx;
	if (c->nv == c->vcap) {
		nv = realloc(c->vers,
			     (c->vcap ? 2 * c->vcap : 16) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		c->vers = nv;
		c->vcap = c->vcap ? 2 * c->vcap : 16;
	}
	v = calloc(1, sizeof(*v));
	c->vers[c->nv] = strdup(version);
	if (!v || !c->vers[c->nv]) {
		free(v);
		free(c->vers[c->nv]);
		return -ENOMEM;
	}
	v->name = c->vers[c->nv];
	v->vidx = (uint32_t)c->nv;
	HASH_ADD_KEYPTR(hh, c->by_version, v->name, strlen(v->name), v);
	atomic_fetch_add(&c->presence_gen, 1);
	return (int)c->nv++;
}

struct catalog_entry *cat_by_key_locked(struct catalog *c, const char *key)
{
	struct catalog_entry *e;

	HASH_FIND_STR(c->by_key, key, e);
	return e;
}

struct catalog_entry *cat_find_locked(struct catalog *c, const char *version,
				      const char *toolchain)
{
	char key[CAT_KEY_MAX];

	snprintf(key, sizeof(key), "%s/%s", version, toolchain);
	return cat_by_key_locked(c, key);
}

bool cat_add_locked(struct catalog *c, struct catalog_entry *e)
{
	struct catalog_entry **ne;

	if (c->n >= FS_ENTRY_LIMIT) {
		if (!c->full_logged)
			log_err("%s: more than %u artifacts and packages; new "
				"ones are not shown",
				c->base, FS_ENTRY_LIMIT);
		c->full_logged = true;
		return false;
	}
	if (c->n == c->cap) {
		ne = realloc(c->ents, (c->cap ? 2 * c->cap : 16) *
					  sizeof(struct catalog_entry *));
		if (!ne)
			return false;
		c->ents = ne;
		c->cap = c->cap ? 2 * c->cap : 16;
	}
	e->id = (uint32_t)c->n;
	c->ents[c->n++] = e;
	HASH_ADD_STR(c->by_key, key, e);
	return true;
}

void cat_set_present(struct catalog *c, struct catalog_entry *e, bool on)
{
	if (atomic_exchange(&e->present, on) != on)
		atomic_fetch_add(&c->presence_gen, 1);
}

bool cat_in_use(struct catalog_entry *e)
{
	bool used;

	pthread_mutex_lock(&e->lock);
	used = e->o.ar || e->attaching || e->active || e->nlookup;
	pthread_mutex_unlock(&e->lock);
	return used;
}

void cat_missed(struct catalog *c, struct catalog_entry *e)
{
	if (cat_in_use(e)) {
		atomic_store(&e->missed, 0);
		return;
	}
	if (atomic_fetch_add(&e->missed, 1) + 1 >= 2 &&
	    atomic_load(&e->present)) {
		cat_set_present(c, e, false);
		log_info("%s%s%s: missing from two listings in a row: hidden",
			 e->version, e->toolchain[0] ? "/" : "", e->toolchain);
	}
}

char *cat_artifact_url(struct catalog *c, const struct catalog_vars *v)
{
	char *rel = catalog_template_expand(c->tmpl, v), *url = NULL;

	if (rel && asprintf(&url, "%s%s", c->base, rel) < 0)
		url = NULL;
	free(rel);
	return url;
}

struct catalog_entry *cat_entry_alloc(void)
{
	struct catalog_entry *e = calloc(1, sizeof(*e));
	pthread_condattr_t ca;

	if (!e)
		return NULL;
	pthread_mutex_init(&e->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->changed, &ca);
	pthread_condattr_destroy(&ca);
	return e;
}

static struct catalog_entry *entry_new(struct catalog *c,
				       const struct catalog_vars *v)
{
	struct catalog_entry *e = cat_entry_alloc();
	char *root = NULL;

	if (!e)
		return NULL;
	snprintf(e->version, sizeof(e->version), "%s", v->version);
	snprintf(e->toolchain, sizeof(e->toolchain), "%s", v->toolchain);
	snprintf(e->key, sizeof(e->key), "%s/%s", v->version, v->toolchain);
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

static void found(struct catalog *c, struct catalog_entry *e)
{
	atomic_store(&e->seen, atomic_load(&c->gen));
	atomic_store(&e->missed, 0);
	cat_set_present(c, e, true);
}

/* Records that (version, toolchain) exists; the entry, or NULL (ENOMEM,
 * or the table is full). */
struct catalog_entry *cat_entry_found(struct catalog *c,
				      const struct catalog_vars *v)
{
	struct catalog_entry *e, *made = NULL;
	int vidx;

	pthread_mutex_lock(&c->lock);
	e = cat_find_locked(c, v->version, v->toolchain);
	pthread_mutex_unlock(&c->lock);
	if (e) {
		found(c, e);
		return e;
	}
	made = entry_new(c, v); /* no lock held while making it */
	if (!made)
		return NULL;
	pthread_mutex_lock(&c->lock);
	e = cat_find_locked(c, v->version, v->toolchain);
	if (!e && c->n < FS_ENTRY_LIMIT) {
		vidx = version_index(c, v->version);
		made->vidx = vidx >= 0 ? (uint32_t)vidx : 0;
		if (vidx >= 0 && cat_add_locked(c, made)) {
			e = made;
			made = NULL;
		}
	} else if (!e) {
		cat_add_locked(c, made); /* refuses and logs */
	}
	if (e)
		found(c, e);
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

/* c->vshown[] and c->latest brought up to date with the entries'
 * presence: one pass over the entries, only after a change. Caller holds
 * c->lock; false when out of memory. */
static bool shown_update(struct catalog *c)
{
	unsigned gen = atomic_load(&c->presence_gen);
	bool *ns;
	size_t i;

	if (c->vshown && c->shown_gen == gen && c->vshown_cap >= c->nv)
		return true;
	if (c->vshown_cap < c->nv) {
		ns = realloc(c->vshown, c->nv * sizeof(*ns));
		if (!ns)
			return false;
		c->vshown = ns;
		c->vshown_cap = c->nv;
	}
	if (!c->vshown) { /* no version yet: none shown */
		c->latest = NULL;
		return c->nv == 0;
	}
	if (c->nv)
		memset(c->vshown, 0, c->nv * sizeof(*c->vshown));
	for (i = 0; i < c->n; i++)
		if (!c->ents[i]->parent && atomic_load(&c->ents[i]->present))
			c->vshown[c->ents[i]->vidx] = true;
	c->latest = NULL;
	for (i = 0; i < c->nv; i++)
		if (c->vshown[i] &&
		    (!c->latest ||
		     catalog_version_cmp(c->vers[i], c->latest) > 0))
			c->latest = c->vers[i];
	c->shown_gen = gen;
	return true;
}

/* Is version vidx shown (one of its entries present)? Holds c->lock. */
static bool version_shown(struct catalog *c, size_t vidx)
{
	return shown_update(c) && vidx < c->nv && c->vshown[vidx];
}

size_t catalog_versions(struct catalog *c, const char **names, size_t max)
{
	size_t i, n = 0;
	const char **all;

	pthread_mutex_lock(&c->lock);
	all = calloc(c->nv ? c->nv : 1, sizeof(*all));
	for (i = 0; all && shown_update(c) && i < c->nv; i++)
		if (c->vshown[i])
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

/* Recomputed only when a version or an entry's presence changed, not at
 * every call (the reaper asks every few seconds). */
const char *catalog_latest(struct catalog *c)
{
	const char *best = NULL;

	pthread_mutex_lock(&c->lock);
	if (shown_update(c))
		best = c->latest;
	pthread_mutex_unlock(&c->lock);
	return best;
}

static int version_find(struct catalog *c, const char *name)
{
	struct cat_version *v;
	int rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	HASH_FIND_STR(c->by_version, name, v);
	if (v && version_shown(c, v->vidx))
		rc = (int)v->vidx;
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

/* Probes a new version under every toolchain known (at most
 * CAT_PROBES_PER_LOOKUP, within the lookup's deadline); it is missing
 * (negatively cached) only when every probe said so. */
int catalog_version(struct catalog *c, const char *name, bool do_probe)
{
	char tcs[NAMES_MAX][CATALOG_NAME_MAX + 1];
	uint64_t deadline = cat_deadline(c);
	size_t n, i;
	int rc = version_find(c, name), r, neterr = 0;

	if (rc >= 0 || !do_probe || !catalog_version_ok(name) ||
	    neg_hit(c, name, NULL))
		return rc;
	n = probe_toolchains(c, tcs, NAMES_MAX);
	if (n > CAT_PROBES_PER_LOOKUP) {
		log_debug("%s: probing %d of %zu toolchains", name,
			  CAT_PROBES_PER_LOOKUP, n);
		n = CAT_PROBES_PER_LOOKUP;
	}
	for (i = 0; i < n; i++) {
		r = cat_probe(c, name, tcs[i], deadline);
		if (r && r != -ENOENT)
			neterr = r;
		if (r == -ETIMEDOUT)
			break;
	}
	rc = version_find(c, name);
	if (rc < 0 && !neterr)
		neg_note(c, name, NULL);
	/* a server that could not tell (403, 5xx, timeout) says so */
	return rc < 0 && neterr ? neterr : rc;
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
	int rc;

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
	rc = cat_probe(c, version, toolchain, cat_deadline(c));
	if (rc == 0) {
		pthread_mutex_lock(&c->lock);
		e = cat_find_locked(c, version, toolchain);
		pthread_mutex_unlock(&c->lock);
		if (e)
			return e;
	}
	if (rc == 0 || rc == -ENOENT) {
		neg_note(c, version, toolchain);
		rc = -ENOENT;
	}
	errno = -rc;
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

/* ---- buildcache packages' modulefiles -------------------------------- */

/* A package of a set as its modulefiles see it: the name copied under
 * its entry's lock, so that no lock is held while the rows are sorted. */
struct pkg_row {
	struct catalog_entry *e;
	char name[BC_FIELD_MAX];
	bool present;
};

static int cmp_row(const void *a, const void *b)
{
	const struct pkg_row *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	return x->e->id < y->e->id ? -1 : x->e->id > y->e->id;
}

/* Every entry of set art (NULL: the flat set's), present or not. */
static struct catalog_entry **
set_entries(struct catalog *c, const struct catalog_entry *art, size_t *n)
{
	struct catalog_entry **all;
	size_t i;

	*n = 0;
	pthread_mutex_lock(&c->lock);
	all = calloc(c->n ? c->n : 1, sizeof(struct catalog_entry *));
	for (i = 0; all && i < c->n; i++)
		if (c->ents[i]->parent == art)
			all[(*n)++] = c->ents[i];
	pthread_mutex_unlock(&c->lock);
	return all;
}

/* The packages of set art (only those named name, unless NULL), sorted
 * by (name, id): *rows malloc'd, the count (0 with *rows NULL when there
 * is none or no memory). A lookup filters as it copies: Lmod looks up
 * every name of a large set once. */
static size_t pkg_rows(struct catalog *c, struct catalog_entry *art,
		       const char *name, struct pkg_row **rows)
{
	struct catalog_entry **all;
	size_t i, n, k = 0;

	*rows = NULL;
	if (art)
		catalog_bc_packages(c, art, NULL, 0); /* listed if due */
	all = set_entries(c, art, &n);
	if (all && n)
		*rows = calloc(n, sizeof(**rows));
	for (i = 0; *rows && i < n; i++) {
		struct pkg_row *r = &(*rows)[k];

		pthread_mutex_lock(&all[i]->lock);
		snprintf(r->name, sizeof(r->name), "%s", all[i]->pkg_name);
		pthread_mutex_unlock(&all[i]->lock);
		r->e = all[i];
		r->present = atomic_load(&all[i]->present);
		if (r->name[0] && (!name || !strcmp(r->name, name)))
			k++;
	}
	free(all);
	if (k)
		qsort(*rows, k, sizeof(**rows), cmp_row);
	return k;
}

/* The row group of name starting at rows[i]: its length, and whether one
 * of them is present. */
static size_t pkg_group(const struct pkg_row *rows, size_t n, size_t i,
			bool *present)
{
	size_t j;

	*present = false;
	for (j = i; j < n && !strcmp(rows[j].name, rows[i].name); j++)
		*present = *present || rows[j].present;
	return j - i;
}

size_t catalog_pkg_module_dirs(struct catalog *c, struct catalog_entry *art,
			       struct catalog_entry **out, size_t max)
{
	struct pkg_row *rows;
	size_t n = pkg_rows(c, art, NULL, &rows), i = 0, k = 0;
	bool present;

	while (i < n) {
		size_t g = pkg_group(rows, n, i, &present);

		/* the group's first row is its lowest id */
		if (present && out && k < max)
			out[k] = rows[i].e;
		k += present;
		i += g;
	}
	free(rows);
	return k;
}

struct catalog_entry *catalog_pkg_module_dir(struct catalog *c,
					     struct catalog_entry *art,
					     const char *name)
{
	struct pkg_row *rows;
	struct catalog_entry *e = NULL;
	size_t n = pkg_rows(c, art, name, &rows);
	bool present;

	/* one group: its first row is the lowest id */
	if (n && pkg_group(rows, n, 0, &present) && present)
		e = rows[0].e;
	free(rows);
	return e;
}

size_t catalog_pkg_modules(struct catalog *c, struct catalog_entry *dir,
			   struct catalog_entry **out, size_t max)
{
	char name[BC_FIELD_MAX];
	struct pkg_row *rows;
	size_t n, i, k = 0;

	pthread_mutex_lock(&dir->lock);
	snprintf(name, sizeof(name), "%s", dir->pkg_name);
	pthread_mutex_unlock(&dir->lock);
	if (!name[0])
		return 0;
	n = pkg_rows(c, dir->parent, name, &rows);
	for (i = 0; i < n; i++) {
		if (!rows[i].present)
			continue;
		if (out && k < max)
			out[k] = rows[i].e;
		k++;
	}
	free(rows);
	return k;
}

bool catalog_pkg_names(struct catalog_entry *e, char *name, size_t nlen,
		       char *file, size_t flen)
{
	bool pkg;
	int a, b;

	pthread_mutex_lock(&e->lock);
	pkg = e->pkg_name[0] != '\0';
	a = snprintf(name, nlen, "%s", e->pkg_name);
	b = snprintf(file, flen, "%s-%.7s.lua", e->pkg_version, e->hash);
	pthread_mutex_unlock(&e->lock);
	return pkg && a >= 0 && (size_t)a < nlen && b >= 0 && (size_t)b < flen;
}

/* e's directory as the mount shows it. Caller holds e->lock (parent,
 * version and module_root are immutable). 0 or -ENAMETOOLONG. */
static int pkg_prefix(struct catalog *c, const struct catalog_entry *e,
		      char *buf, size_t len)
{
	int rc;

	if (e->parent)
		rc = snprintf(buf, len, "%s/%s/%s/buildcache/%s",
			      c->module_root, e->parent->version,
			      e->parent->toolchain, e->version);
	else
		rc = snprintf(buf, len, "%s/%s", c->module_root, e->version);
	return rc < 0 || (size_t)rc >= len ? -ENAMETOOLONG : 0;
}

/* Makes e's modulefile if it has none. Caller holds e->lock. */
static void pkg_module_make(struct catalog *c, struct catalog_entry *e)
{
	char prefix[PATH_MAX];

	if (e->module || !e->pkg_name[0] || !e->url)
		return;
	if (pkg_prefix(c, e, prefix, sizeof(prefix))) {
		log_warn("%s: no modulefile: its path in the mount is too long",
			 e->version);
		return;
	}
	e->module = catalog_bc_modulefile(e->pkg_name, e->pkg_version, e->hash,
					  prefix, e->url, c->o.norelocate);
	if (!e->module) {
		log_warn("%s: no modulefile: %s", e->version, strerror(errno));
		return;
	}
	e->module_len = strlen(e->module);
}

size_t catalog_pkg_module(struct catalog *c, struct catalog_entry *e,
			  uint64_t off, void *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&e->lock);
	pkg_module_make(c, e);
	n = e->module ? e->module_len : 0;
	if (buf && off < n) {
		if (len > n - off)
			len = n - (size_t)off;
		memcpy(buf, e->module + off, len);
		n = len;
	} else if (buf) {
		n = 0;
	}
	pthread_mutex_unlock(&e->lock);
	return n;
}
