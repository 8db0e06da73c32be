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
#include <malloc.h>
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

#include "catalog_i.h"

#define TEMPLATE_SEGMENTS_MAX 16
/* A listing or a probe answer larger than this is refused. */
#define DOC_MAX S3_LIST_MAX_BYTES
/* Listing requests in one refresh, at most (pages x directories). */
#define LIST_REQUESTS_MAX 10000
#define NEG_SLOTS 256
#define NAMES_MAX 64 /* configured versions / toolchains */
/* Entries at most: an id must fit the front end's inode numbers. */
#define FS_ENTRY_LIMIT (1u << 23)

struct catalog_entry {
	uint32_t id, vidx;
	char version[CATALOG_NAME_MAX + 1];
	char toolchain[CATALOG_NAME_MAX + 1];
	char *url;
	char *module;
	size_t module_len;
	/* a buildcache package: its blob's digest and who signed it */
	unsigned char sha256[32];
	bool has_sha;
	char signer[TRUST_FPR_LEN + 1];
	/* a package of an artifact's buildcaches: that artifact (NULL for
	 * artifacts and for the packages of layout=buildcache) */
	struct catalog_entry *parent;
	/* an artifact's buildcaches: listed when (guarded by lock) */
	uint64_t bc_listed_ns;
	bool bc_listing;
	unsigned bc_gen;
	atomic_bool present;
	atomic_uint seen; /* the refresh that last found it */
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t changed;
	bool attaching, releasing;
	struct opened o; /* o.ar set while attached */
	uint32_t epoch;
	uint64_t nlookup, active;
	uint64_t last_used_ns, fail_ns;
	int fail_err;
};

struct neg_slot {
	char key[2 * CATALOG_NAME_MAX + 2];
	uint64_t when; /* 0: empty */
};

struct catalog {
	struct catalog_opts o;
	char *base;	  /* ends in '/' */
	char *tmpl;
	char *seg[TEMPLATE_SEGMENTS_MAX];
	size_t nseg;
	bool has_arch;
	char arch[CATALOG_NAME_MAX + 1];
	bool flat; /* layout=buildcache: MNT/<package>/ */
	/* -o buildcache_base=: each artifact's buildcaches, as templates
	 * relative to bc_base */
	char *bc_base;
	char *bc_tmpl[TEMPLATE_SEGMENTS_MAX];
	size_t nbc;
	char *bc_index; /* guarded by lock: the database document */
	size_t bc_index_len;
	bool s3;
	char *bucket_url, *prefix; /* s3: listing URL and key prefix */
	char *module_root;
	char *names[2][NAMES_MAX]; /* configured versions, toolchains */
	size_t nnames[2];
	struct cache *cache, *wcache;

	pthread_mutex_t lock; /* guards the tables and neg[] */
	struct catalog_entry **ents;
	size_t n, cap;
	char **vers; /* by vidx */
	size_t nv, vcap;
	struct neg_slot neg[NEG_SLOTS];
	uint64_t refreshed_ns; /* 0: never */
	bool refreshing;
	atomic_uint gen; /* refreshes begun */

	atomic_uint_fast64_t attaches, attach_failures, releases;
	atomic_uint_fast64_t list_requests, probe_requests, probes_found;
};

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

static uint64_t now_ns(void)
{
	return fetch_now_ns();
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
		snprintf(err, errlen, "template '%s': too many segments or "
				      "out of memory", t);
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
		snprintf(err, errlen, "cannot tell this node's arch: give "
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

/* The seed's two buildcaches of an artifact (catalog.h). */
#define CATALOG_BC_TEMPLATES \
	"{toolchain}/slurm/deps/buildcache/:{toolchain}/slurm/{version}/buildcache/"

static int setup_buildcaches(struct catalog *c, char *err, size_t errlen)
{
	const char *list = c->o.bc_templates ? c->o.bc_templates
					     : CATALOG_BC_TEMPLATES;
	const char *p, *q;
	size_t n = c->o.bc_base ? strlen(c->o.bc_base) : 0;

	if (!n)
		return 0;
	if (c->flat) {
		snprintf(err, errlen, "buildcache_base= is for a catalog of "
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
			snprintf(err, errlen, "bad buildcache template list "
				 "'%s'", list);
			return -EINVAL;
		}
		c->bc_tmpl[c->nbc] = strndup(p, (size_t)(q - p));
		if (!c->bc_tmpl[c->nbc])
			return -ENOMEM;
		c->nbc++;
	}
	return 0;
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
	err[0] = '\0';
	if (setup_template(c, err, errlen) || setup_base(c, err, errlen) ||
	    parse_names(c, 0, o->versions, err, errlen) ||
	    parse_names(c, 1, o->toolchains, err, errlen))
		goto fail;
	if (setup_buildcaches(c, err, errlen))
		goto fail;
	c->module_root = strdup(o->module_root ? o->module_root : "/sf");
	c->cache = cache_new(o->ao.cache_mem);
	c->wcache = cache_new(o->ao.window_mem);
	if (!c->module_root || !c->cache || !c->wcache) {
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

static void entry_free(struct catalog_entry *e)
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
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++)
		entry_free(c->ents[i]);
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
	free(c->tmpl);
	free(c->base);
	free(c->bucket_url);
	free(c->prefix);
	free(c->module_root);
	free(c->bc_index);
	free(c->bc_base);
	for (i = 0; i < c->nbc; i++)
		free(c->bc_tmpl[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

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
		nv = realloc(c->vers, (c->vcap ? 2 * c->vcap : 16) *
					  sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		c->vers = nv;
		c->vcap = c->vcap ? 2 * c->vcap : 16;
	}
	c->vers[c->nv] = strdup(version);
	return c->vers[c->nv] ? (int)c->nv++ : -ENOMEM;
}

/* Caller holds c->lock. */
static struct catalog_entry *find_locked(struct catalog *c,
					 const char *version,
					 const char *toolchain)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->ents[i]->version, version) &&
		    !strcmp(c->ents[i]->toolchain, toolchain))
			return c->ents[i];
	return NULL;
}

static char *artifact_url(struct catalog *c, const struct catalog_vars *v)
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
	e->url = artifact_url(c, v);
	if (e->url && asprintf(&root, "%s/%s/%s", c->module_root, v->version,
			       v->toolchain) >= 0)
		e->module = catalog_modulefile(v->version, v->toolchain,
					       c->has_arch ? c->arch : NULL,
					       root, e->url);
	free(root);
	if (!e->url || !e->module) {
		entry_free(e);
		return NULL;
	}
	e->module_len = strlen(e->module);
	return e;
}

/* Records that (version, toolchain) exists; the entry, or NULL (ENOMEM). */
static struct catalog_entry *entry_found(struct catalog *c,
					 const struct catalog_vars *v)
{
	struct catalog_entry *e, *made = NULL, **ne;
	int vidx;

	pthread_mutex_lock(&c->lock);
	e = find_locked(c, v->version, v->toolchain);
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
	e = find_locked(c, v->version, v->toolchain);
	if (!e) {
		vidx = version_index(c, v->version);
		if (vidx >= 0 && c->n == c->cap) {
			ne = realloc(c->ents, (c->cap ? 2 * c->cap : 16) *
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
	entry_free(made);
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

/* ---- probes and listings -------------------------------------------- */

/* A HEAD of the artifact (version, toolchain): 0 (exists), -ENOENT, or
 * another -errno (the server could not tell). */
static int probe(struct catalog *c, const char *version,
		 const char *toolchain)
{
	struct catalog_vars v = { 0 };
	struct fetch_opts fo = c->o.oc.fo;
	char err[512], *url, *body = NULL;
	size_t len;
	int rc;

	if (c->flat)
		return -ENOENT; /* a buildcache is listed, never probed */
	snprintf(v.version, sizeof(v.version), "%s", version);
	snprintf(v.toolchain, sizeof(v.toolchain), "%s", toolchain);
	snprintf(v.arch, sizeof(v.arch), "%s", c->arch);
	url = artifact_url(c, &v);
	if (!url)
		return -ENOMEM;
	/* a lookup waits for this: one retry, not five */
	if (fo.retries > 1)
		fo.retries = 1;
	atomic_fetch_add(&c->probe_requests, 1);
	rc = fetch_document(url, &fo, FETCH_DOC_HEAD, 0, &body, &len, err,
			    sizeof(err));
	free(body);
	if (rc == -EACCES)
		rc = -ENOENT; /* S3 without ListBucket: 403 for no such key */
	if (rc == 0) {
		atomic_fetch_add(&c->probes_found, 1);
		if (!entry_found(c, &v))
			rc = -ENOMEM;
	} else if (rc != -ENOENT) {
		log_warn("probing %s: %s", url, err);
	}
	free(url);
	return rc;
}

/* One ListObjectsV2 listing of prefix with delimiter '/', all pages; cb
 * gets each key's or common prefix's last component. */
struct walk {
	struct catalog *c;
	unsigned requests;
	int err;
};

static int list_all(struct walk *w, const char *prefix,
		    int (*cb)(struct walk *w, const char *name, bool dir,
			      void *arg),
		    void *arg)
{
	struct catalog *c = w->c;
	struct s3_listing l;
	char err[512], *url, *body, *token = NULL;
	size_t len, plen = strlen(prefix), i;
	int rc = 0;

	do {
		memset(&l, 0, sizeof(l));
		if (++w->requests > LIST_REQUESTS_MAX) {
			log_err("listing %s: more than %d requests; stopped",
				c->base, LIST_REQUESTS_MAX);
			rc = -E2BIG;
			break;
		}
		url = s3_list_url(c->bucket_url, prefix, "/", token, 0);
		if (!url) {
			rc = -ENOMEM;
			break;
		}
		atomic_fetch_add(&c->list_requests, 1);
		rc = fetch_document(url, &c->o.oc.fo, 0, DOC_MAX, &body, &len,
				    err, sizeof(err));
		if (rc == 0) {
			rc = s3_list_parse(body, len, &l, err, sizeof(err));
			free(body);
		}
		if (rc < 0) {
			log_err("listing %s: %s", url, err);
			free(url);
			break;
		}
		free(url);
		for (i = 0; i < l.nprefixes && !rc; i++) {
			const char *p = l.prefixes[i];
			size_t n = strlen(p);
			char name[CATALOG_NAME_MAX * 4];

			if (n <= plen + 1 || strncmp(p, prefix, plen) ||
			    p[n - 1] != '/' || n - plen - 1 >= sizeof(name))
				continue;
			memcpy(name, p + plen, n - plen - 1);
			name[n - plen - 1] = '\0';
			if (!strchr(name, '/'))
				rc = cb(w, name, true, arg);
		}
		for (i = 0; i < l.nobjects && !rc; i++) {
			const char *k = l.objects[i].key;

			if (strlen(k) > plen && !strncmp(k, prefix, plen) &&
			    !strchr(k + plen, '/'))
				rc = cb(w, k + plen, false, arg);
		}
		free(token);
		token = NULL;
		if (l.truncated && l.next_token) {
			token = strdup(l.next_token);
			if (!token)
				rc = -ENOMEM;
		}
		s3_listing_free(&l);
	} while (!rc && token);
	free(token);
	return rc;
}

struct walk_at {
	size_t depth;
	const char *prefix;
	struct catalog_vars v;
};

static int walk_level(struct walk *w, size_t depth, const char *prefix,
		      const struct catalog_vars *v);

static int walk_cb(struct walk *w, const char *name, bool dir, void *arg)
{
	const struct walk_at *at = arg;
	struct catalog *c = w->c;
	struct catalog_vars v = at->v;
	bool last = at->depth + 1 == c->nseg;
	char *sub;
	int rc;

	if (dir == last ||
	    catalog_segment_match(c->seg[at->depth], name, &v) < 0)
		return 0;
	if (c->has_arch && v.arch[0] && strcmp(v.arch, c->arch))
		return 0; /* another CPU's artifact */
	if (last)
		return entry_found(c, &v) ? 0 : -ENOMEM;
	if (asprintf(&sub, "%s%s/", at->prefix, name) < 0)
		return -ENOMEM;
	rc = walk_level(w, at->depth + 1, sub, &v);
	free(sub);
	return rc;
}

/* Lists one level of the template under prefix: literal segments are
 * stepped into without a request. */
static int walk_level(struct walk *w, size_t depth, const char *prefix,
		      const struct catalog_vars *v)
{
	struct catalog *c = w->c;
	struct walk_at at = { .depth = depth, .prefix = prefix, .v = *v };
	char *sub;
	int rc;

	if (depth + 1 < c->nseg && !strchr(c->seg[depth], '{')) {
		if (asprintf(&sub, "%s%s/", prefix, c->seg[depth]) < 0)
			return -ENOMEM;
		rc = walk_level(w, depth + 1, sub, v);
		free(sub);
		return rc;
	}
	return list_all(w, prefix, walk_cb, &at);
}

static int refresh_s3(struct catalog *c)
{
	struct walk w = { .c = c };
	struct catalog_vars v = { 0 };

	snprintf(v.arch, sizeof(v.arch), "%s", c->has_arch ? c->arch : "");
	return walk_level(&w, 0, c->prefix, &v);
}

/* Probes every configured (version, toolchain), then every entry known
 * that this refresh has not found yet (one discovered by a lookup, or a
 * configured one that answered 404 and so may be gone): at mount each
 * configured artifact costs one HEAD, not two. */
static int refresh_probe(struct catalog *c)
{
	unsigned gen = atomic_load(&c->gen);
	size_t i, k, n;
	int rc = 0, r;

	for (i = 0; i < c->nnames[0]; i++)
		for (k = 0; k < c->nnames[1]; k++) {
			r = probe(c, c->names[0][i], c->names[1][k]);
			if (r && r != -ENOENT)
				rc = r;
		}
	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < n; i++) {
		struct catalog_entry *e = catalog_entry_by_id(c, (uint32_t)i);

		if (e->parent || atomic_load(&e->seen) == gen)
			continue; /* found by this refresh: just probed */
		r = probe(c, e->version, e->toolchain);
		if (r == -ENOENT)
			atomic_store(&e->present, false);
	}
	return rc;
}

static int set_package(struct catalog_entry *e, const struct bc_package *p);

/* A buildcache package found (entry_found, then its blob and digest;
 * a package republished under the same name gets its new ones). */
static int bc_found(struct catalog *c, const struct bc_package *p)
{
	struct catalog_vars v = { 0 };
	struct catalog_entry *e;

	snprintf(v.version, sizeof(v.version), "%s", p->dir);
	e = entry_found(c, &v);
	if (!e)
		return -ENOMEM;
	return set_package(e, p);
}

static int set_package(struct catalog_entry *e, const struct bc_package *p)
{
	char *url;

	pthread_mutex_lock(&e->lock);
	/* an attach reads url and digest unlocked: a package republished
	 * under its name is taken up once it is not attached */
	if ((!e->url || strcmp(e->url, p->url) ||
	     memcmp(e->sha256, p->sha256, 32)) &&
	    !e->attaching && !e->o.ar) {
		url = strdup(p->url);
		if (!url) {
			pthread_mutex_unlock(&e->lock);
			return -ENOMEM;
		}
		free(e->url);
		e->url = url;
		memcpy(e->sha256, p->sha256, 32);
	}
	e->has_sha = true;
	snprintf(e->signer, sizeof(e->signer), "%s", p->signer);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

/* The buildcache's packages that verify (buildcache.h). Trust is
 * const for the catalog, but offered keys may be added to it: the set's
 * additions are locked (trust.h). */
static int refresh_buildcache(struct catalog *c)
{
	struct bc_listing l;
	int rc;

	atomic_fetch_add(&c->list_requests, 1);
	rc = bc_list(c->base, &c->o.oc.fo, (struct trust *)c->o.oc.trust, &l);
	if (rc)
		return rc;
	atomic_fetch_add(&c->list_requests, l.requests - 1);
	for (size_t i = 0; i < l.n && !rc; i++)
		rc = bc_found(c, &l.pkgs[i]);
	log_info("%s: buildcache layout v%d, %zu packages%s (%zu hidden), "
		 "%" PRIu64 " requests", c->base, l.layout, l.n,
		 c->o.oc.trust ? " verified" : ", verify=off", l.hidden,
		 l.requests);
	pthread_mutex_lock(&c->lock);
	free(c->bc_index);
	c->bc_index = l.index;
	c->bc_index_len = l.index_len;
	l.index = NULL;
	pthread_mutex_unlock(&c->lock);
	bc_listing_free(&l);
	return rc;
}

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
			ne = realloc(c->ents, (c->cap ? 2 * c->cap : 16) *
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
		entry_free(made);
		if (!e)
			return NULL;
	}
	if (set_package(e, p))
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
	struct catalog_vars v = { 0 };
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
		if (!rel || asprintf(&base, "%s%s%s", c->bc_base, rel,
				     rel[0] && rel[strlen(rel) - 1] != '/'
					 ? "/"
					 : "") < 0) {
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

struct catalog_entry *catalog_bc_find(struct catalog *c,
				      struct catalog_entry *art,
				      const char *name)
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

size_t catalog_bc_index(struct catalog *c, uint64_t off, void *buf,
			size_t len)
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

int catalog_refresh(struct catalog *c)
{
	unsigned gen;
	size_t n, i;
	int rc;

	pthread_mutex_lock(&c->lock);
	if (c->refreshing) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	c->refreshing = true;
	gen = atomic_fetch_add(&c->gen, 1) + 1;
	pthread_mutex_unlock(&c->lock);
	rc = c->flat ? refresh_buildcache(c)
	     : c->s3 ? refresh_s3(c) : refresh_probe(c);
	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	/* a complete listing hides what it no longer shows; an incomplete
	 * one hides nothing */
	for (i = 0; (c->s3 || c->flat) && rc == 0 && i < n; i++) {
		struct catalog_entry *e = catalog_entry_by_id(c, (uint32_t)i);

		if (!e->parent && atomic_load(&e->seen) != gen)
			atomic_store(&e->present, false);
	}
	pthread_mutex_lock(&c->lock);
	c->refreshing = false;
	c->refreshed_ns = now_ns();
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void catalog_maybe_refresh(struct catalog *c)
{
	uint64_t last;

	pthread_mutex_lock(&c->lock);
	last = c->refreshed_ns;
	pthread_mutex_unlock(&c->lock);
	if (!last || now_ns() - last >= (uint64_t)c->o.refresh_s * 1000000000u)
		catalog_refresh(c);
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
static size_t probe_toolchains(struct catalog *c, char names[][CATALOG_NAME_MAX + 1],
			       size_t max)
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
		probe(c, name, tcs[i]);
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
	e = find_locked(c, version, toolchain);
	pthread_mutex_unlock(&c->lock);
	if (e && atomic_load(&e->present))
		return e;
	if (!do_probe || !catalog_version_ok(version) ||
	    !catalog_name_ok(toolchain) || neg_hit(c, version, toolchain)) {
		errno = ENOENT;
		return NULL;
	}
	if (probe(c, version, toolchain) == 0) {
		pthread_mutex_lock(&c->lock);
		e = find_locked(c, version, toolchain);
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
			"tarball %s", e->version, fetch_url(o->f));
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
	if (e->fail_ns &&
	    now_ns() - e->fail_ns < (uint64_t)c->o.attach_retry_s * 1000000000u) {
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
	/* stable while attaching: set_package leaves them alone */
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
		 * a listing shows it again); the network's errors hide nothing */
		if (oc.expect_sha256 && rc != -ETIMEDOUT &&
		    rc != -ECONNREFUSED && rc != -EHOSTUNREACH && rc != -ENOMEM) {
			atomic_store(&e->present, false);
			log_warn("package %s hidden: its tarball %s failed its "
				 "checks (%s)", e->version, e->url,
				 strerror(-rc));
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
		 secs(now_ns() - t0), o.how,
		 o.signer[0] ? ", signed by " : "", o.signer,
		 tree_count(archive_tree(o.ar)));
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

void catalog_unref(struct catalog *c, struct catalog_entry *e,
		   uint32_t epoch, uint64_t n)
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
}
