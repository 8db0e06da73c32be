/* SPDX-License-Identifier: MIT */
/*
 * discover.c - what exists under the base: HEAD probes, S3 ListObjectsV2
 * walks of the template, a buildcache's listing, and refresh.
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

/* ---- probes and listings -------------------------------------------- */

/* A HEAD of the artifact (version, toolchain): 0 (exists), -ENOENT, or
 * another -errno (the server could not tell). */
int cat_probe(struct catalog *c, const char *version, const char *toolchain)
{
	struct catalog_vars v = {0};
	struct fetch_opts fo = c->o.oc.fo;
	char err[512], *url, *body = NULL;
	size_t len;
	int rc;

	if (c->flat)
		return -ENOENT; /* a buildcache is listed, never probed */
	snprintf(v.version, sizeof(v.version), "%s", version);
	snprintf(v.toolchain, sizeof(v.toolchain), "%s", toolchain);
	snprintf(v.arch, sizeof(v.arch), "%s", c->arch);
	url = cat_artifact_url(c, &v);
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
		if (!cat_entry_found(c, &v))
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
		return cat_entry_found(c, &v) ? 0 : -ENOMEM;
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
	struct walk_at at = {.depth = depth, .prefix = prefix, .v = *v};
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
	struct walk w = {.c = c};
	struct catalog_vars v = {0};

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
			r = cat_probe(c, c->names[0][i], c->names[1][k]);
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
		r = cat_probe(c, e->version, e->toolchain);
		if (r == -ENOENT)
			atomic_store(&e->present, false);
	}
	return rc;
}

/* A buildcache package found (cat_entry_found, then its blob and digest;
 * a package republished under the same name gets its new ones). */
static int bc_found(struct catalog *c, const struct bc_package *p)
{
	struct catalog_vars v = {0};
	struct catalog_entry *e;

	snprintf(v.version, sizeof(v.version), "%s", p->dir);
	e = cat_entry_found(c, &v);
	if (!e)
		return -ENOMEM;
	return cat_set_package(e, p);
}

int cat_set_package(struct catalog_entry *e, const struct bc_package *p)
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
		 "%" PRIu64 " requests",
		 c->base, l.layout, l.n,
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
	     : c->s3 ? refresh_s3(c)
		     : refresh_probe(c);
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
