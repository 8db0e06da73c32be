/* SPDX-License-Identifier: MIT */
/*
 * tree.c - the in-memory member tree; see sffs/tree.h.
 *
 * Nodes live in one growable array; names, symlink targets and sparse maps
 * in an arena of large chunks. Each directory has an entry list {name,
 * node}; while building, entries are appended and found through a uthash
 * table keyed by (parent node, name); tree_finish() packs all lists into one
 * array, sorts each by name and drops the hash.
 */
#include "sffs/tree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#define CHUNK_MIN (16u << 10)
#define CHUNK_MAX (1u << 20)
#define NO_DIR UINT32_MAX

struct chunk {
	struct chunk *next;
	size_t size, used;
	max_align_t data[];
};

/* Bump allocator; everything goes at once in arena_free(). */
struct arena {
	struct chunk *head;
	size_t bytes; /* total of chunk sizes */
};

struct dent {
	const char *name;
	uint32_t node;
};

struct dirlist {
	struct dent *ents;
	uint32_t n, cap;
};

/* Build-time hash entry: key = parent node (4 bytes) + name bytes. */
struct bent {
	UT_hash_handle hh;
	uint32_t parent;
	uint32_t pos; /* index in the parent's entry list */
	unsigned char key[];
};

struct tree {
	tree_warn_cb warn;
	void *arg;
	struct tree_node *nodes;
	uint32_t n, cap;
	struct dirlist *dirs;
	uint32_t ndirs, dcap;
	struct dent *ents; /* all entry lists, packed by tree_finish() */
	size_t nents;
	struct arena names; /* names, symlink targets, sparse maps */
	struct arena build; /* struct bent, freed by tree_finish() */
	struct bent *hash;
	unsigned char *key; /* lookup key scratch */
	size_t keycap;
	size_t ent_bytes; /* capacity of the build-time entry lists */
	uint32_t max_nodes;
	uint64_t max_mem;
	bool finished;
	char msg[TAR_MAX_NAME + 128];
};

static void *arena_alloc(struct arena *a, size_t n, size_t align)
{
	struct chunk *c = a->head;
	size_t at;

	if (c) {
		at = (c->used + align - 1) & ~(align - 1);
		if (at <= c->size && n <= c->size - at) {
			c->used = at + n;
			return (char *)c->data + at;
		}
	}
	at = c ? (c->size + sizeof(*c)) * 2 : CHUNK_MIN;
	if (at > CHUNK_MAX)
		at = CHUNK_MAX;
	if (at < n + sizeof(*c))
		at =
		    (n + sizeof(*c) + CHUNK_MIN - 1) & ~(size_t)(CHUNK_MIN - 1);
	/* mmap, not malloc: the build arena's memory must really go back to
	 * the system when tree_finish() drops it. */
	c = mmap(NULL, at, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (c == MAP_FAILED)
		return NULL;
	c->next = a->head;
	c->size = at - sizeof(*c);
	c->used = n;
	a->head = c;
	a->bytes += at;
	return c->data;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct chunk *c = a->head;

		a->head = c->next;
		munmap(c, c->size + sizeof(*c));
	}
	a->bytes = 0;
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *d = arena_alloc(a, n + 1, 1);

	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static void warnf(struct tree *t, const struct tar_entry *e, const char *fmt,
		  ...) __attribute__((format(printf, 3, 4)));

static void warnf(struct tree *t, const struct tar_entry *e, const char *fmt,
		  ...)
{
	va_list ap;

	if (!t->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
	va_end(ap);
	t->warn(t->arg, e->header_off, t->msg);
}

static bool is_dir(const struct tree_node *n)
{
	return S_ISDIR(n->mode);
}

/* ---- nodes ------------------------------------------------------------ */

static int node_alloc(struct tree *t, uint32_t *idx)
{
	if (t->n >= t->max_nodes)
		return -E2BIG;
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 64;
		struct tree_node *n;

		if (cap > t->max_nodes)
			cap = t->max_nodes;
		n = realloc(t->nodes, (size_t)cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->nodes = n;
		t->cap = cap;
	}
	*idx = t->n++;
	memset(&t->nodes[*idx], 0, sizeof(t->nodes[0]));
	t->nodes[*idx].nlink = 1;
	t->nodes[*idx].dir = NO_DIR;
	return 0;
}

static int dir_new(struct tree *t, uint32_t parent, uint32_t mode,
		   int64_t mtime, uint32_t *idx)
{
	struct tree_node *n;
	int rc;

	if (t->ndirs == t->dcap) {
		uint32_t cap = t->dcap ? t->dcap * 2 : 16;
		struct dirlist *d = realloc(t->dirs, (size_t)cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		t->dirs = d;
		t->dcap = cap;
	}
	rc = node_alloc(t, idx);
	if (rc)
		return rc;
	n = &t->nodes[*idx];
	n->mode = S_IFDIR | (mode & 07777);
	n->mtime = mtime;
	n->u.parent = parent;
	n->dir = t->ndirs;
	memset(&t->dirs[t->ndirs++], 0, sizeof(t->dirs[0]));
	return 0;
}

static int reg_new(struct tree *t, const struct tar_entry *e, uint32_t *idx)
{
	struct tree_sparse_map *m = NULL;
	struct tree_node *n;
	int rc;

	if (e->sparse) {
		m = arena_alloc(&t->names,
				sizeof(*m) + e->nsparse * sizeof(m->seg[0]),
				_Alignof(struct tree_sparse_map));
		if (!m)
			return -ENOMEM;
		m->n = e->nsparse;
		if (e->nsparse)
			memcpy(m->seg, e->sparse,
			       e->nsparse * sizeof(m->seg[0]));
	}
	rc = node_alloc(t, idx);
	if (rc)
		return rc;
	n = &t->nodes[*idx];
	n->mode = S_IFREG | (e->mode & 07777);
	n->size = e->size;
	n->data_off = e->data_off;
	n->mtime = e->mtime;
	n->u.sparse = m;
	return 0;
}

static int symlink_new(struct tree *t, const struct tar_entry *e, uint32_t *idx)
{
	size_t len = strlen(e->link);
	char *target = arena_strndup(&t->names, e->link, len);
	struct tree_node *n;
	int rc;

	if (!target)
		return -ENOMEM;
	rc = node_alloc(t, idx);
	if (rc)
		return rc;
	n = &t->nodes[*idx];
	n->mode = S_IFLNK | (e->mode & 07777);
	n->size = len;
	n->mtime = e->mtime;
	n->u.symlink = target;
	return 0;
}

/* ---- build-time entries ----------------------------------------------- */

static int key_make(struct tree *t, uint32_t parent, const char *name,
		    size_t len)
{
	if (len + 4 > t->keycap) {
		size_t cap = len + 4 > 256 ? len + 4 : 256;
		unsigned char *k = realloc(t->key, cap);

		if (!k)
			return -ENOMEM;
		t->key = k;
		t->keycap = cap;
	}
	memcpy(t->key, &parent, 4);
	memcpy(t->key + 4, name, len);
	return 0;
}

/* The build entry for name in directory node parent (*out NULL if none). */
static int bent_find(struct tree *t, uint32_t parent, const char *name,
		     size_t len, struct bent **out)
{
	struct bent *b = NULL;

	if (key_make(t, parent, name, len))
		return -ENOMEM;
	HASH_FIND(hh, t->hash, t->key, (unsigned)(len + 4), b);
	*out = b;
	return 0;
}

static struct dent *bent_dent(struct tree *t, const struct bent *b)
{
	return &t->dirs[t->nodes[b->parent].dir].ents[b->pos];
}

/* Appends name -> node to directory parent. */
static int dent_add(struct tree *t, uint32_t parent, const char *name,
		    size_t len, uint32_t node)
{
	struct dirlist *d = &t->dirs[t->nodes[parent].dir];
	struct bent *b;
	char *s;

	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 4;
		struct dent *n = realloc(d->ents, (size_t)cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->ent_bytes += (size_t)(cap - d->cap) * sizeof(*n);
		d->ents = n;
		d->cap = cap;
	}
	s = arena_strndup(&t->names, name, len);
	b = arena_alloc(&t->build, sizeof(*b) + 4 + len, _Alignof(struct bent));
	if (!s || !b)
		return -ENOMEM;
	b->parent = parent;
	b->pos = d->n;
	memcpy(b->key, &parent, 4);
	memcpy(b->key + 4, name, len);
	HASH_ADD_KEYPTR(hh, t->hash, b->key, (unsigned)(len + 4), b);
	if (!b->hh.tbl)
		return -ENOMEM;
	d->ents[d->n].name = s;
	d->ents[d->n].node = node;
	d->n++;
	return 0;
}

/* ---- adding members --------------------------------------------------- */

/* Resolves a normalised path while building: 0, -ENOENT, -ENOTDIR. */
static int build_resolve(struct tree *t, const char *path, uint32_t *out)
{
	uint32_t cur = 0;

	while (*path) {
		const char *slash = strchr(path, '/');
		size_t len = slash ? (size_t)(slash - path) : strlen(path);
		struct bent *b;
		int rc;

		if (!is_dir(&t->nodes[cur]))
			return -ENOTDIR;
		rc = bent_find(t, cur, path, len, &b);
		if (rc)
			return rc;
		if (!b)
			return -ENOENT;
		cur = bent_dent(t, b)->node;
		path = slash ? slash + 1 : path + len;
	}
	*out = cur;
	return 0;
}

/* The node a hardlink names: 0, 1 if skipped (warned) or -errno. */
static int hardlink_node(struct tree *t, const struct tar_entry *e,
			 uint32_t old, uint32_t *node)
{
	int rc = build_resolve(t, e->link, node);

	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		warnf(t, e, "skipped hardlink '%s': target '%s' is missing",
		      e->path, e->link);
		return 1;
	}
	if (is_dir(&t->nodes[*node])) {
		warnf(t, e, "skipped hardlink '%s': target '%s' is a directory",
		      e->path, e->link);
		return 1;
	}
	if (*node == old)
		return 1; /* already that node */
	t->nodes[*node].nlink++;
	return 0;
}

/* A new node for member e in directory dir: 0, 1 if skipped, -errno. */
static int node_for(struct tree *t, const struct tar_entry *e, uint32_t dir,
		    uint32_t old, uint32_t *node)
{
	switch (e->type) {
	case TAR_DIR:
		return dir_new(t, dir, e->mode, e->mtime, node);
	case TAR_REG:
		return reg_new(t, e, node);
	case TAR_SYMLINK:
		return symlink_new(t, e, node);
	case TAR_HARDLINK:
		return hardlink_node(t, e, old, node);
	}
	return 1;
}

/* Puts member e at name in directory dir, with GNU tar's semantics for an
 * existing entry of that name. */
static int place(struct tree *t, const struct tar_entry *e, uint32_t dir,
		 const char *name, size_t len)
{
	uint32_t old = NO_DIR, node;
	struct tree_node *o = NULL;
	struct bent *b;
	int rc = bent_find(t, dir, name, len, &b);

	if (rc)
		return rc;
	if (b) {
		old = bent_dent(t, b)->node;
		o = &t->nodes[old];
	}
	if (o && is_dir(o) && e->type == TAR_DIR) {
		o->mode = S_IFDIR | (e->mode & 07777);
		o->mtime = e->mtime;
		return 0;
	}
	if (o && is_dir(o) && t->dirs[o->dir].n) {
		warnf(t, e,
		      "skipped '%s': a non-empty directory of that name exists",
		      e->path);
		return 0;
	}
	rc = node_for(t, e, dir, old, &node);
	if (rc)
		return rc > 0 ? 0 : rc;
	if (!b)
		return dent_add(t, dir, name, len, node);
	if (!is_dir(&t->nodes[old]))
		t->nodes[old].nlink--;
	bent_dent(t, b)->node = node;
	return 0;
}

/* Enters (creating if need be) directory name below dir: 0, 1 if skipped. */
static int step_dir(struct tree *t, const struct tar_entry *e, uint32_t dir,
		    const char *name, size_t len, uint32_t *out)
{
	struct bent *b;
	int rc = bent_find(t, dir, name, len, &b);

	if (rc)
		return rc;
	if (b) {
		*out = bent_dent(t, b)->node;
		if (is_dir(&t->nodes[*out]))
			return 0;
		warnf(t, e, "skipped '%s': '%.*s' is not a directory", e->path,
		      (int)(name + len - e->path), e->path);
		return 1;
	}
	rc = dir_new(t, dir, 0755, e->mtime, out);
	if (rc)
		return rc;
	return dent_add(t, dir, name, len, *out);
}

/* Components of a normalised path, or 0 if it has an empty, "." or ".."
 * one. */
static size_t depth_of(const char *s)
{
	size_t d = 0;

	for (;;) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);

		if (len == 0 || (len == 1 && s[0] == '.') ||
		    (len == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		d++;
		if (!slash)
			return d;
		s = slash + 1;
	}
}

static int add_member(struct tree *t, const struct tar_entry *e)
{
	const char *s = e->path;
	uint32_t dir = 0;
	size_t depth;

	if (*s == '\0' || !strcmp(s, ".")) {
		if (e->type != TAR_DIR) {
			warnf(t, e,
			      "skipped a root entry that is not a directory");
			return 0;
		}
		t->nodes[0].mode = S_IFDIR | (e->mode & 07777);
		t->nodes[0].mtime = e->mtime;
		return 0;
	}
	depth = depth_of(s);
	if (depth == 0) {
		warnf(t, e, "skipped '%s': not a normalised path", e->path);
		return 0;
	}
	if (depth > TREE_MAX_DEPTH) {
		warnf(t, e,
		      "'%.64s...' has %zu path components; the limit is %d",
		      e->path, depth, TREE_MAX_DEPTH);
		return -E2BIG;
	}
	for (;;) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);
		int rc;

		if (!slash)
			return place(t, e, dir, s, len);
		rc = step_dir(t, e, dir, s, len, &dir);
		if (rc)
			return rc > 0 ? 0 : rc;
		s = slash + 1;
	}
}

/* Heap bytes now, in O(1): what tree_mem_usage() counts while building. */
static uint64_t mem_now(const struct tree *t)
{
	uint64_t bytes = sizeof(*t) + (uint64_t)t->cap * sizeof(t->nodes[0]) +
			 (uint64_t)t->dcap * sizeof(t->dirs[0]) +
			 t->names.bytes + t->build.bytes + t->keycap +
			 t->ent_bytes;

	if (t->hash)
		bytes += HASH_OVERHEAD(hh, t->hash);
	return bytes;
}

int tree_add(struct tree *t, const struct tar_entry *e)
{
	int rc;

	if (t->finished)
		return -EINVAL;
	if (mem_now(t) > t->max_mem) {
		warnf(t, e,
		      "the member tree holds more than %llu MiB; the limit is "
		      "%llu MiB",
		      (unsigned long long)(t->max_mem >> 20),
		      (unsigned long long)(t->max_mem >> 20));
		return -E2BIG;
	}
	rc = add_member(t, e);
	if (rc == -E2BIG && t->n >= t->max_nodes)
		warnf(t, e,
		      "more than %lu files and directories; the limit is %lu",
		      (unsigned long)t->max_nodes, (unsigned long)t->max_nodes);
	return rc;
}

void tree_set_limits(struct tree *t, uint32_t max_nodes, uint64_t max_mem)
{
	if (max_nodes && max_nodes < TREE_MAX_NODES)
		t->max_nodes = max_nodes;
	if (max_mem && max_mem < TREE_MAX_MEM)
		t->max_mem = max_mem;
}

/* ---- life cycle ------------------------------------------------------- */

struct tree *tree_new(tree_warn_cb warn, void *arg)
{
	struct tree *t = calloc(1, sizeof(*t));
	uint32_t root;

	if (!t)
		return NULL;
	t->warn = warn;
	t->arg = arg;
	t->max_nodes = TREE_MAX_NODES;
	t->max_mem = TREE_MAX_MEM;
	if (dir_new(t, 0, 0755, 0, &root)) {
		tree_free(t);
		return NULL;
	}
	return t;
}

void tree_free(struct tree *t)
{
	uint32_t i;

	if (!t)
		return;
	if (!t->finished)
		for (i = 0; i < t->ndirs; i++)
			free(t->dirs[i].ents);
	HASH_CLEAR(hh, t->hash);
	arena_free(&t->build);
	arena_free(&t->names);
	free(t->ents);
	free(t->dirs);
	free(t->nodes);
	free(t->key);
	free(t);
}

static int dent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name,
		      ((const struct dent *)b)->name);
}

/* Moves every entry list into one array and sorts each by name. */
static int pack_dirs(struct tree *t)
{
	size_t total = 0, at = 0;
	uint32_t i;

	for (i = 0; i < t->ndirs; i++)
		total += t->dirs[i].n;
	t->ents = malloc((total ? total : 1) * sizeof(*t->ents));
	if (!t->ents)
		return -ENOMEM;
	for (i = 0; i < t->ndirs; i++) {
		struct dirlist *d = &t->dirs[i];

		if (d->n)
			memcpy(t->ents + at, d->ents, d->n * sizeof(*d->ents));
		free(d->ents);
		d->ents = t->ents + at;
		d->cap = d->n;
		qsort(d->ents, d->n, sizeof(*d->ents), dent_cmp);
		at += d->n;
	}
	t->nents = total;
	return 0;
}

int tree_finish(struct tree *t)
{
	struct tree_node *n;
	uint32_t i, j;

	if (t->finished)
		return 0;
	if (pack_dirs(t))
		return -ENOMEM;
	t->finished = true;
	HASH_CLEAR(hh, t->hash);
	arena_free(&t->build);
	free(t->key);
	t->key = NULL;
	t->keycap = 0;
	/* A directory's link count: itself, its entry, its subdirectories. */
	for (i = 0; i < t->n; i++) {
		struct dirlist *d;

		if (!is_dir(&t->nodes[i]))
			continue;
		d = &t->dirs[t->nodes[i].dir];
		t->nodes[i].nlink = 2;
		for (j = 0; j < d->n; j++)
			t->nodes[i].nlink += is_dir(&t->nodes[d->ents[j].node]);
	}
	/* Shrink to fit; the root is always there, so the size is never 0. */
	n = t->n ? realloc(t->nodes, (size_t)t->n * sizeof(*n)) : NULL;
	if (n) {
		t->nodes = n;
		t->cap = t->n;
	}
	return 0;
}

/* ---- readers ---------------------------------------------------------- */

uint32_t tree_count(const struct tree *t)
{
	return t->n;
}

const struct tree_node *tree_node(const struct tree *t, uint32_t idx)
{
	return idx < t->n ? &t->nodes[idx] : NULL;
}

/* Compares entry name e with the len bytes at s. */
static int name_cmp(const char *e, const char *s, size_t len)
{
	int c = strncmp(e, s, len);

	if (c)
		return c;
	return e[len] ? 1 : 0;
}

static int lookup_n(const struct tree *t, uint32_t dir, const char *name,
		    size_t len, uint32_t *out)
{
	const struct dirlist *d;
	size_t lo = 0, hi;

	if (dir >= t->n)
		return -ENOENT;
	if (!is_dir(&t->nodes[dir]))
		return -ENOTDIR;
	d = &t->dirs[t->nodes[dir].dir];
	hi = d->n;
	if (!t->finished) /* unsorted while building: scan */
		for (; lo < hi; lo++)
			if (!name_cmp(d->ents[lo].name, name, len)) {
				*out = d->ents[lo].node;
				return 0;
			}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(d->ents[mid].name, name, len);

		if (c == 0) {
			*out = d->ents[mid].node;
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

int tree_lookup(const struct tree *t, uint32_t dir, const char *name,
		uint32_t *out)
{
	return lookup_n(t, dir, name, strlen(name), out);
}

int tree_resolve(const struct tree *t, const char *path, uint32_t *out)
{
	uint32_t cur = 0;

	while (*path) {
		const char *slash = strchr(path, '/');
		size_t len = slash ? (size_t)(slash - path) : strlen(path);
		int rc;

		if (len) {
			rc = lookup_n(t, cur, path, len, &cur);
			if (rc)
				return rc;
		}
		path = slash ? slash + 1 : path + len;
	}
	*out = cur;
	return 0;
}

size_t tree_dir_size(const struct tree *t, uint32_t dir)
{
	if (dir >= t->n || !is_dir(&t->nodes[dir]))
		return 0;
	return t->dirs[t->nodes[dir].dir].n;
}

int tree_dir_entry(const struct tree *t, uint32_t dir, size_t i,
		   const char **name, uint32_t *node)
{
	const struct dirlist *d;

	if (dir >= t->n || !is_dir(&t->nodes[dir]))
		return -ENOENT;
	d = &t->dirs[t->nodes[dir].dir];
	if (i >= d->n)
		return -ENOENT;
	*name = d->ents[i].name;
	*node = d->ents[i].node;
	return 0;
}

uint64_t tree_mem_now(const struct tree *t)
{
	return mem_now(t);
}

size_t tree_mem_usage(const struct tree *t)
{
	size_t bytes = sizeof(*t) + (size_t)t->cap * sizeof(t->nodes[0]) +
		       (size_t)t->dcap * sizeof(t->dirs[0]) + t->names.bytes +
		       t->build.bytes + t->keycap;
	uint32_t i;

	if (t->finished) {
		bytes += t->nents * sizeof(t->ents[0]);
	} else {
		for (i = 0; i < t->ndirs; i++)
			bytes += (size_t)t->dirs[i].cap * sizeof(struct dent);
		if (t->hash)
			bytes += HASH_OVERHEAD(hh, t->hash);
	}
	return bytes;
}
