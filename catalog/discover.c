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

/* Tokens back at CAT_PROBES_PER_S, at most one second's worth. Caller
 * holds c->plock. */
static void probe_refill(struct catalog *c, uint64_t now)
{
	if (c->prefill_ns) {
		c->ptokens +=
		    (double)(now - c->prefill_ns) / 1e9 * CAT_PROBES_PER_S;
		if (c->ptokens > CAT_PROBES_PER_S)
			c->ptokens = CAT_PROBES_PER_S;
	} else {
		c->ptokens = CAT_PROBES_PER_S;
	}
	c->prefill_ns = now;
}

int cat_probe_admit(struct catalog *c, uint64_t deadline_ns)
{
	struct timespec ts;
	uint64_t now, until;
	int rc = 0;

	pthread_mutex_lock(&c->plock);
	for (;;) {
		now = now_ns();
		probe_refill(c, now);
		if (c->pinflight < CAT_PROBES_INFLIGHT && c->ptokens >= 1.0)
			break;
		if (now >= deadline_ns) {
			rc = -ETIMEDOUT;
			break;
		}
		/* a slot frees with a signal; a token within 1/rate s */
		until = now + 1000000000u / CAT_PROBES_PER_S;
		if (until > deadline_ns)
			until = deadline_ns;
		ts.tv_sec = (time_t)(until / 1000000000u);
		ts.tv_nsec = (long)(until % 1000000000u);
		pthread_cond_timedwait(&c->pcond, &c->plock, &ts);
	}
	if (!rc) {
		c->pinflight++;
		c->ptokens -= 1.0;
	}
	pthread_mutex_unlock(&c->plock);
	return rc;
}

void cat_probe_done(struct catalog *c)
{
	pthread_mutex_lock(&c->plock);
	c->pinflight--;
	pthread_cond_signal(&c->pcond);
	pthread_mutex_unlock(&c->plock);
}

/* The probe's own time limits, within what is left before deadline. */
static void probe_opts(struct catalog *c, uint64_t deadline_ns,
		       struct fetch_opts *fo)
{
	uint64_t now = now_ns();
	uint64_t left64 =
	    deadline_ns > now ? (deadline_ns - now) / 1000000000u : 0;
	unsigned left = left64 > 3600 ? 3600 : (unsigned)left64;

	*fo = c->o.oc.fo;
	if (left < 1)
		left = 1;
	if (!fo->connect_timeout_s || fo->connect_timeout_s > left)
		fo->connect_timeout_s = left;
	if (!fo->low_speed_time_s || fo->low_speed_time_s > left)
		fo->low_speed_time_s = left;
	/* a lookup waits for this: one retry, not five */
	if (fo->retries > 1)
		fo->retries = 1;
}

/* A HEAD of the artifact (version, toolchain), within deadline_ns: 0
 * (exists), -ENOENT, or another -errno (the server could not tell: a
 * 403 is -EACCES, not a missing name; -ETIMEDOUT when no probe slot
 * came before the deadline). */
int cat_probe(struct catalog *c, const char *version, const char *toolchain,
	      uint64_t deadline_ns)
{
	struct catalog_vars v = {0};
	struct fetch_opts fo;
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
	rc = cat_probe_admit(c, deadline_ns);
	if (rc) {
		log_debug("probing %s: no probe slot in time", url);
		free(url);
		return rc;
	}
	probe_opts(c, deadline_ns, &fo);
	atomic_fetch_add(&c->probe_requests, 1);
	rc = fetch_document(url, &fo, FETCH_DOC_HEAD, 0, &body, &len, err,
			    sizeof(err));
	cat_probe_done(c);
	free(body);
	/* no server: an artifact this node opened before may still be
	 * served from what it cached (open.h) */
	if ((rc == -ECONNREFUSED || rc == -EHOSTUNREACH || rc == -ETIMEDOUT ||
	     rc == -ECONNRESET) &&
	    artifact_seen_here(&c->o.oc, url)) {
		log_debug("probing %s: %s; opened here before, so known", url,
			  err);
		rc = 0;
	} else if (rc == 0) {
		atomic_fetch_add(&c->probes_found, 1);
	} else if (rc != -ENOENT) {
		log_warn("probing %s: %s", url, err);
	}
	if (rc == 0 && !cat_entry_found(c, &v))
		rc = -ENOMEM;
	free(url);
	return rc;
}

/* One ListObjectsV2 listing of prefix with delimiter '/', all pages; cb
 * gets each key's or common prefix's last component. */
struct walk {
	struct catalog *c;
	unsigned requests;
	size_t keys; /* entries of this refresh (s3_pager) */
	bool cut;    /* a listing stopped at a bound: hide nothing */
	int err;
};

/* One page of a listing into l: 0, or -errno (logged). */
static int list_page(struct walk *w, const char *prefix, const char *token,
		     struct s3_listing *l)
{
	struct catalog *c = w->c;
	char err[512], *url, *body;
	size_t len;
	int rc;

	memset(l, 0, sizeof(*l));
	if (++w->requests > S3_REFRESH_PAGES_MAX) {
		log_warn("listing %s: more than %d pages in one refresh; "
			 "stopped, what was read is kept and nothing is hidden",
			 c->base, S3_REFRESH_PAGES_MAX);
		return -E2BIG;
	}
	url = s3_list_url(c->bucket_url, prefix, "/", token, 0);
	if (!url)
		return -ENOMEM;
	atomic_fetch_add(&c->list_requests, 1);
	rc = fetch_document(url, &c->o.oc.fo, 0, DOC_MAX, &body, &len, err,
			    sizeof(err));
	if (rc == 0) {
		rc = s3_list_parse(body, len, l, err, sizeof(err));
		free(body);
	}
	/* the prefix is in the URL's query, which the log does not show */
	if (rc < 0)
		log_err("listing %s prefix \"%s\": %s", url, prefix, err);
	free(url);
	return rc;
}

/* The entries of one page directly under prefix, to cb. */
static int
list_entries(struct walk *w, const char *prefix, const struct s3_listing *l,
	     int (*cb)(struct walk *w, const char *name, bool dir, void *arg),
	     void *arg)
{
	size_t plen = strlen(prefix), i;
	int rc = 0;

	for (i = 0; i < l->nprefixes && !rc; i++) {
		const char *p = l->prefixes[i];
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
	for (i = 0; i < l->nobjects && !rc; i++) {
		const char *k = l->objects[i].key;

		if (strlen(k) > plen && !strncmp(k, prefix, plen) &&
		    !strchr(k + plen, '/'))
			rc = cb(w, k + plen, false, arg);
	}
	return rc;
}

/*
 * Every page of prefix, within the bounds of s3_pager (catalog_i.h). A
 * listing stopped at a bound keeps what it read: the entries of the pages
 * before it were found (cat_entry_found) and stay, since they did exist;
 * but the refresh is incomplete (w->cut), so it hides nothing, and it is
 * not retried sooner than a normal refresh, since a server that loops
 * would loop again. The listing goes on with the walk's other prefixes.
 */
static int list_all(struct walk *w, const char *prefix,
		    int (*cb)(struct walk *w, const char *name, bool dir,
			      void *arg),
		    void *arg)
{
	struct s3_pager pg;
	struct s3_listing l;
	const char *token = NULL;
	char *next = NULL;
	int rc;

	s3_pager_init(&pg, &w->keys);
	for (;;) {
		rc = list_page(w, prefix, token, &l);
		if (rc < 0)
			break;
		rc = s3_pager_take(&pg, &l);
		if (!rc)
			rc = list_entries(w, prefix, &l, cb, arg);
		if (!rc)
			rc = s3_pager_next(&pg, &l);
		free(next);
		next = rc == 1 && l.next_token ? strdup(l.next_token) : NULL;
		s3_listing_free(&l);
		if (rc == 1 && !next)
			rc = -ENOMEM;
		if (rc != 1)
			break;
		token = next;
	}
	free(next);
	if (rc == -E2BIG && pg.why[0]) {
		log_warn("listing %s prefix \"%s\": %s; stopped, what was "
			 "read is kept and nothing is hidden",
			 w->c->base, prefix, pg.why);
		w->cut = true;
		/* the refresh's keys are spent: so is the walk */
		if (!pg.spent)
			rc = 0;
	}
	s3_pager_free(&pg);
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

	int rc;

	snprintf(v.arch, sizeof(v.arch), "%s", c->has_arch ? c->arch : "");
	rc = walk_level(&w, 0, c->prefix, &v);
	return rc ? rc : w.cut ? -E2BIG : 0;
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

	/* in the background: probes wait for their slots as long as need be */
	for (i = 0; i < c->nnames[0]; i++)
		for (k = 0; k < c->nnames[1]; k++) {
			r = cat_probe(c, c->names[0][i], c->names[1][k],
				      UINT64_MAX);
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
		r = cat_probe(c, e->version, e->toolchain, UINT64_MAX);
		if (r == -ENOENT)
			cat_missed(c, e); /* a 403 or 5xx hides nothing */
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

/* A package's modulefile is made again at its next read (it names the
 * url, hash, name and version). Caller holds e->lock. */
static void pkg_module_drop(struct catalog_entry *e)
{
	free(e->module);
	e->module = NULL;
	e->module_len = 0;
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
		pkg_module_drop(e);
	}
	e->has_sha = true;
	snprintf(e->signer, sizeof(e->signer), "%s", p->signer);
	if (strcmp(e->hash, p->hash) || strcmp(e->pkg_name, p->name) ||
	    strcmp(e->pkg_version, p->version))
		pkg_module_drop(e);
	snprintf(e->hash, sizeof(e->hash), "%s", p->hash);
	snprintf(e->pkg_name, sizeof(e->pkg_name), "%s", p->name);
	snprintf(e->pkg_version, sizeof(e->pkg_version), "%s", p->version);
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
	rc = bc_list_seen(c->base, &c->o.oc.fo, (struct trust *)c->o.oc.trust,
			  c->bc_keys, &l);
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
	if (!rc && l.incomplete) {
		log_warn("%s: some manifests could not be fetched: hiding "
			 "nothing, listing again in %u s",
			 c->base, c->o.attach_retry_s);
		rc = -EAGAIN;
	}
	bc_listing_free(&l);
	return rc;
}

/* After a complete listing of generation gen: what it no longer shows is
 * missed (cat_missed); a listing that found nothing hides nothing. */
static void hide_unlisted(struct catalog *c, unsigned gen)
{
	size_t n, i, seen = 0;

	pthread_mutex_lock(&c->lock);
	n = c->n;
	for (i = 0; i < n; i++)
		seen += !c->ents[i]->parent &&
			atomic_load(&c->ents[i]->seen) == gen;
	pthread_mutex_unlock(&c->lock);
	if (!seen) {
		if (n)
			log_warn("%s: an empty listing: hiding nothing",
				 c->base);
		return;
	}
	for (i = 0; i < n; i++) {
		struct catalog_entry *e = catalog_entry_by_id(c, (uint32_t)i);

		if (!e->parent && atomic_load(&e->seen) != gen)
			cat_missed(c, e);
	}
}

int catalog_refresh(struct catalog *c)
{
	unsigned gen;
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
	/* a complete listing hides what it no longer shows (cat_missed); an
	 * incomplete one hides nothing */
	if ((c->s3 || c->flat) && rc == 0)
		hide_unlisted(c, gen);
	pthread_mutex_lock(&c->lock);
	c->refreshing = false;
	c->refreshed_ns = now_ns();
	/* a failed or incomplete listing is redone soon; one cut at a
	 * bound (-E2BIG) would be cut again, so at the usual time */
	c->refresh_next_ns =
	    c->refreshed_ns +
	    (uint64_t)(rc < 0 && rc != -E2BIG &&
			       c->o.attach_retry_s < c->o.refresh_s
			   ? c->o.attach_retry_s
			   : c->o.refresh_s) *
		1000000000u;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void refresh_job(struct catalog *c, void *arg)
{
	(void)arg;
	catalog_refresh(c);
	pthread_mutex_lock(&c->lock);
	c->refresh_queued = false;
	pthread_mutex_unlock(&c->lock);
}

/* Never lists in the caller (a thread that answers the kernel): the
 * refresh is queued on a catalog thread and names answer from what is
 * known until it is done. */
void catalog_maybe_refresh(struct catalog *c)
{
	bool go;

	pthread_mutex_lock(&c->lock);
	go = !c->refresh_queued && !c->refreshing &&
	     (!c->refreshed_ns || now_ns() >= c->refresh_next_ns);
	if (go)
		c->refresh_queued = true;
	pthread_mutex_unlock(&c->lock);
	if (go && cat_submit(c, refresh_job, NULL) < 0) {
		pthread_mutex_lock(&c->lock);
		c->refresh_queued = false;
		pthread_mutex_unlock(&c->lock);
	}
}
