/* SPDX-License-Identifier: MIT */
/*
 * catalog.c - the set of artifacts under one base (catalog.h).
 *
 * Entries are never removed while the catalog lives (their ids and
 * version indexes are inode numbers); one that vanishes from a listing is
 * marked absent and hidden. c->lock guards the tables and the negative
 * cache; each entry's attach state has its own lock, so attaching one
 * artifact never holds up lookups of another. No lock is held during a
 * listing, a probe or an attach.
 */
#include "sffs/catalog.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sffs/buildcache.h"
#include "sffs/fetch.h"
#include "sffs/log.h"
#include "sffs/trust.h"
#include "sffs/util.h"

#include "catalog_int.h"

void catalog_opts_default(struct catalog_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->layout = "seed";
	o->refresh_s = 300;
	o->negative_ttl_s = 30;
	o->release_after_s = 600;
	o->attach_retry_s = 5;
	fetch_opts_default(&o->oc.fo);
	archive_opts_default(&o->ao);
}

/* ---- set up ---------------------------------------------------------- */

/* Splits a ':' list of names into c->names[which]. */
static int parse_names(struct catalog *c, int which, const char *list,
		       char *err, size_t errlen)
{
	const char *p = list, *q;
	char name[CATALOG_NAME_MAX + 1];
	size_t len;

	if (!list)
		return 0;
	for (; *p; p = *q ? q + 1 : q) {
		q = strchr(p, ':');
		if (!q)
			q = p + strlen(p);
		len = (size_t)(q - p);
		if (!len)
			continue;
		if (len > CATALOG_NAME_MAX)
			goto bad;
		memcpy(name, p, len);
		name[len] = '\0';
		if (which == 0 ? !catalog_version_ok(name)
			       : !catalog_name_ok(name))
			goto bad;
		if (c->nnames[which] == NAMES_MAX) {
			snprintf(err, errlen, "more than %d %s", NAMES_MAX,
				 which ? "toolchains" : "versions");
			return -EINVAL;
		}
		c->names[which][c->nnames[which]] = strdup(name);
		if (!c->names[which][c->nnames[which]])
			return -ENOMEM;
		c->nnames[which]++;
	}
	return 0;
bad:
	snprintf(err, errlen, "bad %s name '%.*s' in '%s'",
		 which ? "toolchain" : "version", (int)len, p, list);
	return -EINVAL;
}

static int setup_template(struct catalog *c, char *err, size_t errlen)
{
	const struct catalog_opts *o = &c->o;
	const char *t = o->tmpl;

	if (!t && o->layout && !strcmp(o->layout, "buildcache")) {
		c->flat = true;
		return 0;
	}
	if (!t) {
		if (!o->layout || !strcmp(o->layout, "seed"))
			t = CATALOG_SEED_TEMPLATE;
		else if (!strcmp(o->layout, "factory"))
			t = CATALOG_FACTORY_TEMPLATE;
		else {
			snprintf(err, errlen,
				 "unknown layout '%s' (seed, factory or "
				 "buildcache, or give template=)",
				 o->layout);
			return -EINVAL;
		}
	}
	if (catalog_template_check(t, err, errlen) < 0)
		return -EINVAL;
	c->tmpl = strdup(t);
	if (!c->tmpl ||
	    catalog_template_segments(c->tmpl, c->seg, TEMPLATE_SEGMENTS_MAX,
				      &c->nseg) < 0) {
		snprintf(err, errlen,
			 "template '%s': too many segments or "
			 "out of memory",
			 t);
		return -EINVAL;
	}
	c->has_arch = strstr(t, "{arch}") != NULL;
	if (o->arch) {
		if (!catalog_name_ok(o->arch)) {
			snprintf(err, errlen, "bad arch '%s'", o->arch);
			return -EINVAL;
		}
		snprintf(c->arch, sizeof(c->arch), "%s", o->arch);
	} else if (catalog_node_arch(c->arch, sizeof(c->arch)) < 0 ||
		   !catalog_name_ok(c->arch)) {
		snprintf(err, errlen,
			 "cannot tell this node's arch: give "
			 "arch=");
		return -EINVAL;
	}
	return 0;
}

static int setup_base(struct catalog *c, char *err, size_t errlen)
{
	const char *b = c->o.base;
	size_t n = b ? strlen(b) : 0;

	if (!n || b[n - 1] != '/') {
		snprintf(err, errlen, "a catalog base ends in '/': %s",
			 b ? b : "(none)");
		return -EINVAL;
	}
	c->base = strdup(b);
	if (!c->base)
		return -ENOMEM;
	if (strncasecmp(b, "s3://", 5))
		return 0;
	c->s3 = true;
	return fetch_s3_split(b, &c->o.oc.fo, &c->bucket_url, &c->prefix, err,
			      errlen);
}

/* The buildcaches of an artifact (catalog.h): the seed's two, then the
 * factory's own, one per toolchain (to be unified in mid-2026). A cache
 * that is not there costs one probe and is empty. */
#define CATALOG_BC_TEMPLATES                                                   \
	"{toolchain}/slurm/deps/buildcache/:{toolchain}/slurm/{version}/"      \
	"buildcache/:{toolchain}/spack/"

static int setup_buildcaches(struct catalog *c, char *err, size_t errlen)
{
	const char *list =
	    c->o.bc_templates ? c->o.bc_templates : CATALOG_BC_TEMPLATES;
	const char *p, *q;
	size_t n = c->o.bc_base ? strlen(c->o.bc_base) : 0;

	if (!n)
		return 0;
	if (c->flat) {
		snprintf(err, errlen,
			 "buildcache_base= is for a catalog of "
			 "artifacts, not for layout=buildcache");
		return -EINVAL;
	}
	if (asprintf(&c->bc_base, "%s%s", c->o.bc_base,
		     c->o.bc_base[n - 1] == '/' ? "" : "/") < 0) {
		c->bc_base = NULL;
		return -ENOMEM;
	}
	for (p = list; *p; p = *q ? q + 1 : q) {
		q = strchr(p, ':');
		if (!q)
			q = p + strlen(p);
		if (q == p)
			continue;
		if (c->nbc == TEMPLATE_SEGMENTS_MAX || *p == '/' ||
		    strstr(p, "..")) {
			snprintf(err, errlen,
				 "bad buildcache template list "
				 "'%s'",
				 list);
			return -EINVAL;
		}
		c->bc_tmpl[c->nbc] = strndup(p, (size_t)(q - p));
		if (!c->bc_tmpl[c->nbc])
			return -ENOMEM;
		c->nbc++;
	}
	return 0;
}

static void cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

struct catalog *catalog_new(const struct catalog_opts *o, char *err,
			    size_t errlen)
{
	struct catalog *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->o = *o;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->wlock, NULL);
	cond_init_monotonic(&c->wcond);
	pthread_mutex_init(&c->plock, NULL);
	cond_init_monotonic(&c->pcond);
	err[0] = '\0';
	if (setup_template(c, err, errlen) || setup_base(c, err, errlen) ||
	    parse_names(c, 0, o->versions, err, errlen) ||
	    parse_names(c, 1, o->toolchains, err, errlen))
		goto fail;
	if (setup_buildcaches(c, err, errlen))
		goto fail;
	c->module_root = strdup(o->module_root ? o->module_root : "/sf");
	c->bc_keys = bc_keyset_new();
	c->cache = cache_new(o->ao.cache_mem);
	c->wcache = cache_new(o->ao.window_mem);
	/* one block store, one set of fetchers for every artifact */
	c->store = blockstore_new(&o->ao.blocks);
	if (!c->module_root || !c->cache || !c->wcache || !c->bc_keys ||
	    !c->store) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* strings the caller owns are not kept */
	c->o.base = c->o.layout = c->o.tmpl = c->o.arch = NULL;
	c->o.versions = c->o.toolchains = c->o.module_root = NULL;
	c->o.bc_base = c->o.bc_templates = NULL;
	return c;
fail:
	if (!err[0])
		snprintf(err, errlen, "out of memory");
	catalog_free(c);
	return NULL;
}

void cat_entry_free(struct catalog_entry *e)
{
	if (!e)
		return;
	artifact_close(&e->o);
	pthread_cond_destroy(&e->changed);
	pthread_mutex_destroy(&e->lock);
	free(e->url);
	free(e->module);
	free(e);
}

void catalog_free(struct catalog *c)
{
	struct cat_version *v, *tmp;
	size_t i;

	if (!c)
		return;
	/* queued releases run; queued attaches end at once */
	cat_work_stop(c);
	HASH_CLEAR(hh, c->by_key);
	HASH_ITER(hh, c->by_version, v, tmp)
	{
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc): HASH_ITER's tmp
		HASH_DEL(c->by_version, v);
		free(v); /* its name is c->vers[v->vidx] */
	}
	free(c->vshown);
	for (i = 0; i < c->n; i++)
		cat_entry_free(c->ents[i]);
	free(c->ents);
	for (i = 0; i < c->nv; i++)
		free(c->vers[i]);
	free(c->vers);
	for (i = 0; i < 2; i++)
		for (size_t k = 0; k < c->nnames[i]; k++)
			free(c->names[i][k]);
	catalog_segments_free(c->seg, c->nseg);
	cache_free(c->cache);
	cache_free(c->wcache);
	blockstore_free(c->store); /* after every archive */
	free(c->tmpl);
	free(c->base);
	free(c->bucket_url);
	free(c->prefix);
	free(c->module_root);
	free(c->bc_index);
	bc_keyset_free(c->bc_keys);
	free(c->bc_base);
	for (i = 0; i < c->nbc; i++)
		free(c->bc_tmpl[i]);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->wlock);
	pthread_cond_destroy(&c->wcond);
	pthread_mutex_destroy(&c->plock);
	pthread_cond_destroy(&c->pcond);
	free(c);
}

void catalog_get_stats(struct catalog *c, struct catalog_stats *st)
{
	size_t i, n;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&c->lock);
	n = c->n;
	for (i = 0; i < n; i++)
		st->known += atomic_load(&c->ents[i]->present);
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n; i++) {
		struct catalog_entry *e = catalog_entry_by_id(c, (uint32_t)i);

		pthread_mutex_lock(&e->lock);
		st->attached += e->o.ar != NULL;
		pthread_mutex_unlock(&e->lock);
	}
	st->attaches = atomic_load(&c->attaches);
	st->attach_failures = atomic_load(&c->attach_failures);
	st->releases = atomic_load(&c->releases);
	st->list_requests = atomic_load(&c->list_requests);
	st->probe_requests = atomic_load(&c->probe_requests);
	st->probes_found = atomic_load(&c->probes_found);
	blockstore_get_stats(c->store, &st->store);
}
