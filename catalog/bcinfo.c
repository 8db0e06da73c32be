/* SPDX-License-Identifier: MIT */
/*
 * bcinfo.c - a Spack package's .spack/binary_distribution (YAML, through
 * libyaml's event API) and the relocation maps Spack's relocate_package
 * builds from it. Pure: no I/O; every count and string is bounded.
 */
#include "sffs/buildcache.h"

#include "catalog_i.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <yaml.h>

#define WHAT "binary_distribution"

/* ---- the event stream ---- */

/* The parser and the event just read (owned until the next one). */
struct yp {
	yaml_parser_t p;
	yaml_event_t ev;
	bool have_ev;
	char *err;
	size_t errlen;
};

/* Reads the next event into y->ev. Anchors and aliases are refused here
 * once for all (a billion laughs needs them). */
static int next(struct yp *y)
{
	const yaml_event_t *e = &y->ev;

	if (y->have_ev)
		yaml_event_delete(&y->ev);
	y->have_ev = false;
	if (!yaml_parser_parse(&y->p, &y->ev)) {
		if (y->p.error == YAML_MEMORY_ERROR)
			return -ENOMEM;
		return catalog_fail(
		    y->err, y->errlen, WHAT ": YAML: %s at line %zu column %zu",
		    y->p.problem ? y->p.problem : "error",
		    y->p.problem_mark.line + 1, y->p.problem_mark.column + 1);
	}
	y->have_ev = true;
	if (e->type == YAML_ALIAS_EVENT ||
	    (e->type == YAML_SCALAR_EVENT && e->data.scalar.anchor) ||
	    (e->type == YAML_SEQUENCE_START_EVENT &&
	     e->data.sequence_start.anchor) ||
	    (e->type == YAML_MAPPING_START_EVENT &&
	     e->data.mapping_start.anchor))
		return catalog_fail(y->err, y->errlen,
				    WHAT ": YAML anchors and aliases are "
					 "refused (line %zu)",
				    e->start_mark.line + 1);
	return 0;
}

/* Reads an event that must be of type t. */
static int expect(struct yp *y, yaml_event_type_t t, const char *what)
{
	int rc = next(y);

	if (rc)
		return rc;
	if (y->ev.type != t)
		return catalog_fail(y->err, y->errlen, WHAT ": %s (line %zu)",
				    what, y->ev.start_mark.line + 1);
	return 0;
}

/* Skips the value whose first event was just read, however nested (up
 * to BC_INFO_MAX_DEPTH). */
static int skip_value(struct yp *y, const char *key)
{
	unsigned depth = 0;
	int rc;

	for (;;) {
		switch (y->ev.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > BC_INFO_MAX_DEPTH)
				return catalog_fail(
				    y->err, y->errlen,
				    WHAT ": %.64s: nested deeper than %u", key,
				    BC_INFO_MAX_DEPTH);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		if (depth == 0)
			return 0;
		rc = next(y);
		if (rc)
			return rc;
	}
}

/* ---- strings ---- */

static bool has_dotdot(const char *s)
{
	const char *p = s;

	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += n;
		p += *p == '/';
	}
	return false;
}

enum kind { ABSOLUTE, RELATIVE, HASH };

/* Why the scalar s (n bytes) is not of kind k, or NULL. */
static const char *bad_scalar(const char *s, size_t n, enum kind k)
{
	if (k == HASH)
		return bc_hash_ok(s, n) ? NULL
					: "not 32 characters of [a-z2-7]";
	if (memchr(s, '\0', n))
		return "a NUL";
	if (n == 0)
		return "empty";
	if (n >= PATH_MAX)
		return "PATH_MAX or longer";
	if (k == ABSOLUTE && s[0] != '/')
		return "not an absolute path";
	if (k == RELATIVE && s[0] == '/')
		return "not a relative path";
	if (has_dotdot(s))
		return "a '..' component";
	return NULL;
}

/* The event just read as a malloc'd string of kind k. where names the
 * key (idx: its list index, or -1). */
static int take_scalar(struct yp *y, enum kind k, const char *where, long idx,
		       char **out)
{
	const char *s, *why;
	char at[32] = "";
	size_t n;

	if (idx >= 0)
		snprintf(at, sizeof(at), "[%ld]", idx);
	/* the refusals return -EINVAL themselves: *out is set only on 0 */
	if (y->ev.type != YAML_SCALAR_EVENT) {
		catalog_fail(y->err, y->errlen,
			     WHAT ": %.64s%s: not a string (line %zu)", where,
			     at, y->ev.start_mark.line + 1);
		return -EINVAL;
	}
	s = (const char *)y->ev.data.scalar.value;
	n = y->ev.data.scalar.length;
	why = bad_scalar(s, n, k);
	if (why) {
		catalog_fail(y->err, y->errlen, WHAT ": %.64s%s: %s (line %zu)",
			     where, at, why, y->ev.start_mark.line + 1);
		return -EINVAL;
	}
	*out = strndup(s, n);
	return *out ? 0 : -ENOMEM;
}

/* ---- relocate_* lists ---- */

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, ncap * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int parse_list(struct yp *y, const char *key, char ***list, size_t *n)
{
	size_t cap = 0;
	int rc;

	if (y->ev.type != YAML_SEQUENCE_START_EVENT)
		return catalog_fail(y->err, y->errlen,
				    WHAT ": %s: not a list (line %zu)", key,
				    y->ev.start_mark.line + 1);
	for (;;) {
		rc = next(y);
		if (rc)
			return rc;
		if (y->ev.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (*n >= BC_INFO_MAX_FILES)
			return catalog_fail(y->err, y->errlen,
					    WHAT ": %s: more than %u entries",
					    key, BC_INFO_MAX_FILES);
		rc = grow((void **)list, &cap, *n + 1, sizeof(**list));
		if (rc)
			return rc;
		rc = take_scalar(y, RELATIVE, key, (long)*n, &(*list)[*n]);
		if (rc)
			return rc;
		(*n)++;
	}
}

/* ---- hash_to_prefix, prefix_to_hash ---- */

/* The dependencies of one map, with a hash table on the map's keys. */
struct depset {
	struct bc_dep *deps;
	size_t n, cap;
	struct dkey *keys; /* uthash on the map's keys */
};

struct dkey {
	UT_hash_handle hh;
	size_t idx; /* into deps */
	char key[]; /* a hash or a prefix */
};

static void dkeys_free(struct dkey **keys)
{
	struct dkey *k, *tmp;

	HASH_ITER(hh, *keys, k, tmp)
	{
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc): HASH_ITER's tmp
		HASH_DEL(*keys, k);
		free(k);
	}
}

static void depset_free(struct depset *d)
{
	size_t i;

	dkeys_free(&d->keys);
	for (i = 0; i < d->n; i++)
		free(d->deps[i].prefix);
	free(d->deps);
	memset(d, 0, sizeof(*d));
}

static struct dkey *dkey_find(struct dkey *keys, const char *key)
{
	struct dkey *k = NULL;

	HASH_FIND_STR(keys, key, k);
	return k;
}

static int dkey_add(struct dkey **keys, const char *key, size_t idx)
{
	size_t n = strlen(key);
	struct dkey *k = malloc(sizeof(*k) + n + 1);

	if (!k)
		return -ENOMEM;
	k->idx = idx;
	memcpy(k->key, key, n + 1);
	HASH_ADD_STR(*keys, key, k);
	return 0;
}

/* Adds hash -> prefix (taking prefix). A hash already there keeps its
 * place and takes the new prefix (prefix_to_hash inverted as a dict). */
static int depset_put(struct depset *d, const char *hash, char *prefix)
{
	struct dkey *k = dkey_find(d->keys, hash);
	int rc;

	if (k) {
		free(d->deps[k->idx].prefix);
		d->deps[k->idx].prefix = prefix;
		return 0;
	}
	rc = grow((void **)&d->deps, &d->cap, d->n + 1, sizeof(*d->deps));
	if (!rc)
		rc = dkey_add(&d->keys, hash, d->n);
	if (rc) {
		free(prefix);
		return rc;
	}
	memcpy(d->deps[d->n].hash, hash, 33);
	d->deps[d->n++].prefix = prefix;
	return 0;
}

/* One entry of hash_to_prefix (inverted: prefix_to_hash); the key event
 * was just read. */
static int parse_dep(struct yp *y, const char *key, bool inverted,
		     struct depset *d, struct dkey **seen)
{
	char *k = NULL, *v = NULL, *hash, *prefix;
	int rc;

	rc = take_scalar(y, inverted ? ABSOLUTE : HASH, key, -1, &k);
	if (!rc && dkey_find(*seen, k))
		rc = catalog_fail(y->err, y->errlen,
				  WHAT ": %s: duplicate key (line %zu)", key,
				  y->ev.start_mark.line + 1);
	if (!rc)
		rc = next(y);
	if (!rc)
		rc = take_scalar(y, inverted ? HASH : ABSOLUTE, key, -1, &v);
	if (rc)
		goto out;
	hash = inverted ? v : k;
	prefix = inverted ? k : v;
	if (inverted) {
		rc = dkey_add(seen, prefix, 0);
		if (rc)
			goto out;
	}
	rc = depset_put(d, hash, prefix);
	if (inverted)
		k = NULL;
	else
		v = NULL;
out:
	free(k);
	free(v);
	return rc;
}

static int parse_deps(struct yp *y, const char *key, bool inverted,
		      struct depset *d)
{
	struct depset prefixes = {0}; /* prefix_to_hash's keys */
	size_t n = 0;
	int rc;

	if (y->ev.type != YAML_MAPPING_START_EVENT)
		return catalog_fail(y->err, y->errlen,
				    WHAT ": %s: not a mapping (line %zu)", key,
				    y->ev.start_mark.line + 1);
	for (;;) {
		rc = next(y);
		if (rc || y->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (n++ >= BC_INFO_MAX_DEPS) {
			rc = catalog_fail(y->err, y->errlen,
					  WHAT ": %s: more than %u entries",
					  key, BC_INFO_MAX_DEPS);
			break;
		}
		rc = parse_dep(y, key, inverted, d,
			       inverted ? &prefixes.keys : &d->keys);
		if (rc)
			break;
	}
	depset_free(&prefixes);
	return rc;
}

/* ---- the top-level mapping ---- */

struct pstate {
	struct yp y;
	struct bc_buildinfo *bi;
	struct depset h2p, p2h;
	bool has_h2p;
	struct dkey *seen; /* top-level keys */
};

/* The value of key (its first event just read). */
static int parse_known(struct pstate *s, const char *key)
{
	struct bc_buildinfo *bi = s->bi;
	struct yp *y = &s->y;
	bool had_lists = bi->has_lists;

	if (!strcmp(key, "buildpath"))
		return take_scalar(y, ABSOLUTE, key, -1, &bi->buildpath);
	if (!strcmp(key, "relative_prefix"))
		return take_scalar(y, RELATIVE, key, -1, &bi->relative_prefix);
	if (!strcmp(key, "sbang_install_path"))
		return take_scalar(y, ABSOLUTE, key, -1,
				   &bi->sbang_install_path);
	if (!strcmp(key, "spackprefix"))
		return take_scalar(y, ABSOLUTE, key, -1, &bi->spackprefix);
	if (!strcmp(key, "hash_to_prefix")) {
		s->has_h2p = true;
		return parse_deps(y, key, false, &s->h2p);
	}
	if (!strcmp(key, "prefix_to_hash"))
		return parse_deps(y, key, true, &s->p2h);
	bi->has_lists = true;
	if (!strcmp(key, "relocate_binaries"))
		return parse_list(y, key, &bi->binaries, &bi->nbinaries);
	if (!strcmp(key, "relocate_textfiles"))
		return parse_list(y, key, &bi->textfiles, &bi->ntextfiles);
	if (!strcmp(key, "relocate_links"))
		return parse_list(y, key, &bi->links, &bi->nlinks);
	bi->has_lists = had_lists;
	return skip_value(y, key);
}

/* One key and its value; the key event was just read. */
static int parse_entry(struct pstate *s)
{
	struct yp *y = &s->y;
	char *key = NULL;
	int rc;

	if (y->ev.type != YAML_SCALAR_EVENT)
		return catalog_fail(y->err, y->errlen,
				    WHAT ": a key that is not a string "
					 "(line %zu)",
				    y->ev.start_mark.line + 1);
	key = strndup((const char *)y->ev.data.scalar.value,
		      y->ev.data.scalar.length);
	if (!key)
		return -ENOMEM;
	if (dkey_find(s->seen, key)) {
		rc = catalog_fail(y->err, y->errlen,
				  WHAT ": %.64s: duplicate key (line %zu)", key,
				  y->ev.start_mark.line + 1);
		goto out;
	}
	rc = dkey_add(&s->seen, key, 0);
	if (!rc)
		rc = next(y);
	if (!rc)
		rc = parse_known(s, key);
out:
	free(key);
	return rc;
}

/* The stream: one document holding one mapping. */
static int parse_stream(struct pstate *s)
{
	struct yp *y = &s->y;
	int rc;

	rc = expect(y, YAML_STREAM_START_EVENT, "not a YAML stream");
	if (!rc)
		rc = expect(y, YAML_DOCUMENT_START_EVENT, "no document");
	if (!rc)
		rc = expect(y, YAML_MAPPING_START_EVENT, "not a mapping");
	while (!rc) {
		rc = next(y);
		if (rc || y->ev.type == YAML_MAPPING_END_EVENT)
			break;
		rc = parse_entry(s);
	}
	if (!rc)
		rc = expect(y, YAML_DOCUMENT_END_EVENT, "not one mapping");
	if (!rc)
		rc = expect(y, YAML_STREAM_END_EVENT, "more than one document");
	return rc;
}

/* Required keys, and the dependencies chosen as Spack does:
 * hash_to_prefix if given (even empty), else prefix_to_hash. */
static int finish(struct pstate *s, char *err, size_t errlen)
{
	struct depset *d = s->has_h2p ? &s->h2p : &s->p2h;

	if (!s->bi->buildpath)
		return catalog_fail(err, errlen, WHAT ": no buildpath");
	if (!s->bi->relative_prefix)
		return catalog_fail(err, errlen, WHAT ": no relative_prefix");
	s->bi->deps = d->deps;
	s->bi->ndeps = d->n;
	d->deps = NULL;
	d->n = d->cap = 0;
	return 0;
}

int bc_parse_buildinfo(const char *doc, size_t len, struct bc_buildinfo *out,
		       char *err, size_t errlen)
{
	struct pstate s = {.bi = out};
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (len > BC_INFO_MAX)
		return catalog_fail(err, errlen,
				    WHAT ": %zu bytes, more than %u", len,
				    BC_INFO_MAX);
	if (!yaml_parser_initialize(&s.y.p))
		return -ENOMEM;
	s.y.err = err;
	s.y.errlen = errlen;
	/* libyaml asserts a non-NULL input */
	yaml_parser_set_input_string(
	    &s.y.p, (const unsigned char *)(doc ? doc : ""), doc ? len : 0);
	rc = parse_stream(&s);
	if (!rc)
		rc = finish(&s, err, errlen);
	if (s.y.have_ev)
		yaml_event_delete(&s.y.ev);
	yaml_parser_delete(&s.y.p);
	dkeys_free(&s.seen);
	depset_free(&s.h2p);
	depset_free(&s.p2h);
	if (rc)
		bc_buildinfo_free(out);
	return rc;
}

static void free_list(char **l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void bc_buildinfo_free(struct bc_buildinfo *b)
{
	size_t i;

	if (!b)
		return;
	free(b->buildpath);
	free(b->relative_prefix);
	free(b->sbang_install_path);
	free(b->spackprefix);
	for (i = 0; i < b->ndeps; i++)
		free(b->deps[i].prefix);
	free(b->deps);
	free_list(b->binaries, b->nbinaries);
	free_list(b->textfiles, b->ntextfiles);
	free_list(b->links, b->nlinks);
	memset(b, 0, sizeof(*b));
}

/* ---- relocation maps ---- */

/* One map being built: pairs of malloc'd strings, a hash on the old
 * prefixes (Spack's OrderedDict: a key set again keeps its place). */
struct mapb {
	struct reloc_pair *pairs;
	size_t n, cap;
	struct dkey *index;
};

static int map_set(struct mapb *b, const char *old_prefix,
		   const char *new_prefix)
{
	struct dkey *k = dkey_find(b->index, old_prefix);
	char *o = NULL, *v = strdup(new_prefix);
	int rc = -ENOMEM;

	if (!v)
		return -ENOMEM;
	if (k) {
		free((char *)b->pairs[k->idx].new_prefix);
		b->pairs[k->idx].new_prefix = v;
		return 0;
	}
	if (b->n >= b->cap) /* cap is the most pairs a map can get */
		goto out;
	o = strdup(old_prefix);
	if (!o)
		goto out;
	rc = dkey_add(&b->index, old_prefix, b->n);
	if (rc)
		goto out;
	b->pairs[b->n].old_prefix = o;
	b->pairs[b->n++].new_prefix = v;
	return 0;
out:
	free(o);
	free(v);
	return rc;
}

static void pairs_free(struct reloc_pair *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free((char *)p[i].old_prefix);
		free((char *)p[i].new_prefix);
	}
	free(p);
}

/* Sets old -> new in the text map, and in the binary map too unless
 * text_only. */
static int both_set(struct mapb *bin, struct mapb *text, const char *old_prefix,
		    const char *new_prefix, bool text_only)
{
	int rc = map_set(text, old_prefix, new_prefix);

	if (!rc && !text_only)
		rc = map_set(bin, old_prefix, new_prefix);
	return rc;
}

static bool abs_ok(const char *s)
{
	return s && s[0] == '/' && !bad_scalar(s, strlen(s), ABSOLUTE);
}

/* Each dependency lookup finds (document order), but not own. */
static int add_deps(const struct bc_buildinfo *bi, const char *own,
		    bc_dep_lookup_fn lookup, void *arg, struct mapb *bin,
		    struct mapb *text, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	size_t i;
	int rc;

	for (i = 0; lookup && i < bi->ndeps; i++) {
		if (!strcmp(bi->deps[i].prefix, own))
			continue;
		memset(dir, 0, sizeof(dir));
		rc = lookup(arg, bi->deps[i].hash, dir, sizeof(dir));
		if (rc == -ENOENT)
			continue;
		if (rc < 0) {
			snprintf(err, err ? errlen : 0,
				 WHAT ": looking up %s: %s", bi->deps[i].hash,
				 strerror(-rc));
			return rc;
		}
		if (!memchr(dir, '\0', sizeof(dir)) || !abs_ok(dir))
			return catalog_fail(err, errlen,
					    WHAT ": the lookup of %s gave no "
						 "absolute path",
					    bi->deps[i].hash);
		rc = both_set(bin, text, bi->deps[i].prefix, dir, false);
		if (rc)
			return rc;
	}
	return 0;
}

/* The own old prefix, as os.path.join(buildpath, relative_prefix). */
static int own_prefix(const struct bc_buildinfo *bi, char *buf, size_t len,
		      char *err, size_t errlen)
{
	size_t n = strlen(bi->buildpath);
	const char *sep = n && bi->buildpath[n - 1] == '/' ? "" : "/";
	int w = snprintf(buf, len, "%s%s%s", bi->buildpath, sep,
			 bi->relative_prefix);

	if (w < 0 || (size_t)w >= len)
		return catalog_fail(err, errlen,
				    WHAT ": buildpath + relative_prefix is "
					 "PATH_MAX or longer");
	return 0;
}

static int build(const struct bc_buildinfo *bi, const char *new_prefix,
		 const char *new_root, bc_dep_lookup_fn lookup, void *arg,
		 struct mapb *bin, struct mapb *text, char *err, size_t errlen)
{
	char own[PATH_MAX], sbang[PATH_MAX + 16], line[PATH_MAX + 32];
	char shebang[PATH_MAX + 32];
	int rc;

	rc = own_prefix(bi, own, sizeof(own), err, errlen);
	if (rc)
		return rc;
	snprintf(sbang, sizeof(sbang), "%s/bin/sbang", new_root);
	if (bi->sbang_install_path) {
		rc = both_set(bin, text, bi->sbang_install_path, sbang, true);
		if (rc)
			return rc;
	}
	rc = add_deps(bi, own, lookup, arg, bin, text, err, errlen);
	if (!rc)
		rc = both_set(bin, text, own, new_prefix, false);
	if (!rc)
		rc = both_set(bin, text, bi->buildpath, new_root, false);
	if (rc || !bi->spackprefix)
		return rc;
	/* Spack's sbang_shebang_line(): "#!/bin/sh " + sbang_install_path() */
	snprintf(line, sizeof(line), "#!/bin/bash %s/bin/sbang",
		 bi->spackprefix);
	snprintf(shebang, sizeof(shebang), "#!/bin/sh %s", sbang);
	return map_set(text, line, shebang);
}

static int check_new(const char *what, const char *path, char *err,
		     size_t errlen)
{
	if (!abs_ok(path))
		return catalog_fail(err, errlen,
				    WHAT
				    ": the new %s is not an absolute "
				    "path without '..' shorter than PATH_MAX",
				    what);
	return 0;
}

int bc_buildinfo_maps(const struct bc_buildinfo *bi, const char *new_prefix,
		      const char *new_root, bc_dep_lookup_fn lookup, void *arg,
		      struct bc_reloc_maps *out, char *err, size_t errlen)
{
	struct mapb bin = {0}, text = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (!bi || !bi->buildpath || !bi->relative_prefix)
		return catalog_fail(err, errlen, WHAT ": no buildinfo");
	rc = check_new("prefix", new_prefix, err, errlen);
	if (!rc)
		rc = check_new("root", new_root, err, errlen);
	if (rc)
		return rc;
	/* at most: the dependencies, own, root, two sbang pairs */
	bin.cap = text.cap = bi->ndeps + 4;
	bin.pairs = calloc(bin.cap, sizeof(*bin.pairs));
	text.pairs = calloc(text.cap, sizeof(*text.pairs));
	rc = bin.pairs && text.pairs ? 0 : -ENOMEM;
	if (!rc)
		rc = build(bi, new_prefix, new_root, lookup, arg, &bin, &text,
			   err, errlen);
	dkeys_free(&bin.index);
	dkeys_free(&text.index);
	if (rc) {
		pairs_free(bin.pairs, bin.n);
		pairs_free(text.pairs, text.n);
		return rc;
	}
	out->bin_pairs_ = bin.pairs;
	out->text_pairs_ = text.pairs;
	out->bin = (struct reloc_map){bin.pairs, bin.n};
	out->text = (struct reloc_map){text.pairs, text.n};
	return 0;
}

void bc_reloc_maps_free(struct bc_reloc_maps *m)
{
	if (!m)
		return;
	pairs_free(m->bin_pairs_, m->bin.n);
	pairs_free(m->text_pairs_, m->text.n);
	memset(m, 0, sizeof(*m));
}

const struct reloc_pair *bc_reloc_maps_too_long(const struct bc_reloc_maps *m)
{
	size_t i;

	for (i = 0; m && i < m->bin.n; i++)
		if (strlen(m->bin.pairs[i].new_prefix) >
		    strlen(m->bin.pairs[i].old_prefix))
			return &m->bin.pairs[i];
	return NULL;
}
