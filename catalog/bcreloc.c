/* SPDX-License-Identifier: MIT */
/*
 * bcreloc.c - a buildcache package served relocated to where the mount
 * shows it (docs/relocation.md): its .spack/binary_distribution read
 * through the verified path, the map built in Spack's order with each
 * dependency's directory in the same listing, and the archive told
 * (archive_relocate). A package that cannot be relocated as a whole (a
 * new prefix longer than its old one) is served as in its blob, with one
 * log line and the xattr user.sffs.relocation saying why.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sffs/buildcache.h"
#include "sffs/log.h"
#include "sffs/relocate.h"

#include "catalog_int.h"

struct dep_ctx {
	struct catalog *c;
	struct catalog_entry *parent; /* the packages' artifact, or NULL */
	const char *root;	      /* their directory in the mount */
	struct catalog_entry *self;
	/* the dependencies found, to attach ahead (NULL: not kept) */
	struct catalog_entry **found;
	size_t nfound, cap;
};

static void keep(struct dep_ctx *d, struct catalog_entry *e);

/* A dependency by its full hash: a package of the same listing. */
static int dep_lookup(void *arg, const char *hash, char *buf, size_t len)
{
	struct dep_ctx *d = arg;
	struct catalog *c = d->c;
	int rc = -ENOENT;
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->n && rc; i++) {
		struct catalog_entry *e = c->ents[i];

		if (!e->has_sha || e->parent != d->parent)
			continue;
		pthread_mutex_lock(&e->lock);
		if (!strcmp(e->hash, hash) &&
		    snprintf(buf, len, "%s/%s", d->root, e->version) < (int)len)
			rc = 0;
		pthread_mutex_unlock(&e->lock);
		if (!rc && e != d->self)
			keep(d, e);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void keep(struct dep_ctx *d, struct catalog_entry *e)
{
	struct catalog_entry **n;

	if (d->nfound == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;

		n = realloc(d->found, cap * sizeof(struct catalog_entry *));
		if (!n)
			return; /* only an optimisation lost */
		d->found = n;
		d->cap = cap;
	}
	d->found[d->nfound++] = e;
}

/* The package's .spack/binary_distribution, read and parsed. */
static int read_buildinfo(struct archive *ar, struct bc_buildinfo *bi,
			  char *err, size_t errlen)
{
	const struct tree *t = archive_tree(ar);
	const struct tree_node *n;
	uint32_t dot, node;
	char *doc;
	ssize_t got;
	int rc;

	if (tree_lookup(t, archive_root(ar), ".spack", &dot) ||
	    tree_lookup(t, dot, "binary_distribution", &node) ||
	    !S_ISREG((n = tree_node(t, node))->mode)) {
		snprintf(err, errlen, "no .spack/binary_distribution");
		return -ENOENT;
	}
	if (n->size > BC_INFO_MAX) {
		snprintf(err, errlen,
			 ".spack/binary_distribution is over %u bytes",
			 BC_INFO_MAX);
		return -EFBIG;
	}
	doc = malloc((size_t)n->size + 1);
	if (!doc) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	got = archive_read(ar, node, 0, (size_t)n->size, doc);
	if (got < 0 || (uint64_t)got != n->size) {
		snprintf(err, errlen, "reading .spack/binary_distribution: %s",
			 strerror(got < 0 ? (int)-got : EIO));
		free(doc);
		return got < 0 ? (int)got : -EIO;
	}
	rc = bc_parse_buildinfo(doc, (size_t)n->size, bi, err, errlen);
	free(doc);
	return rc;
}

static void refuse(struct archive *ar, const char *where, const char *why)
{
	log_warn("%s cannot be relocated (%s): served as in its tarball", where,
		 why);
	archive_reloc_refused(ar, why);
}

static int relocate_with(struct archive *ar, const struct bc_buildinfo *bi,
			 const struct bc_reloc_maps *m, const char *where)
{
	const struct reloc_pair *p = bc_reloc_maps_too_long(m);
	struct archive_reloc_opts o = {0};
	char why[PATH_MAX + 64];
	int rc;

	if (p) {
		snprintf(why, sizeof(why),
			 "new prefix %s is longer than the old %s",
			 p->new_prefix, p->old_prefix);
		refuse(ar, where, why);
		return 0;
	}
	o.bin = &m->bin;
	o.text = &m->text;
	o.binaries = (const char *const *)bi->binaries;
	o.nbinaries = bi->nbinaries;
	o.textfiles = (const char *const *)bi->textfiles;
	o.ntextfiles = bi->ntextfiles;
	o.links = (const char *const *)bi->links;
	o.nlinks = bi->nlinks;
	o.what = where;
	rc = archive_relocate(ar, &o, why, sizeof(why));
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		refuse(ar, where, why);
	return 0;
}

int cat_package_relocate(struct catalog *c, struct catalog_entry *e,
			 struct archive *ar)
{
	struct dep_ctx d = {.c = c, .parent = e->parent, .self = e};
	size_t k;
	struct bc_buildinfo bi = {0};
	struct bc_reloc_maps m = {0};
	char root[PATH_MAX], prefix[PATH_MAX], err[256];
	int rc;

	if (c->o.norelocate)
		return 0;
	if (e->parent)
		rc = snprintf(root, sizeof(root), "%s/%s/%s/buildcache",
			      c->module_root, e->parent->version,
			      e->parent->toolchain);
	else
		rc = snprintf(root, sizeof(root), "%s", c->module_root);
	if (rc < 0 || (size_t)rc >= sizeof(root) ||
	    snprintf(prefix, sizeof(prefix), "%s/%s", root, e->version) >=
		(int)sizeof(prefix)) {
		refuse(ar, e->version, "its path in the mount is too long");
		return 0;
	}
	d.root = root;
	rc = read_buildinfo(ar, &bi, err, sizeof(err));
	if (!rc)
		rc = bc_buildinfo_maps(&bi, prefix, root, dep_lookup, &d, &m,
				       err, sizeof(err));
	/* the network's failures fail the attach (tried again later) */
	if (rc && rc != -ENOENT && rc != -EFBIG && rc != -EINVAL) {
		log_err("%s: %s", prefix, err);
		goto out;
	}
	if (rc) {
		refuse(ar, prefix, err);
		rc = 0;
		goto out;
	}
	rc = relocate_with(ar, &bi, &m, prefix);
	/* a loader walks the RPATH one directory after another: the
	 * dependencies attach now, side by side */
	for (k = 0; !rc && k < d.nfound; k++)
		cat_attach_ahead(c, d.found[k]);
out:
	free(d.found);
	bc_reloc_maps_free(&m);
	bc_buildinfo_free(&bi);
	return rc;
}
