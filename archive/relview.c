/* SPDX-License-Identifier: MIT */
/*
 * relview.c - an archive's files served relocated (archive.h,
 * archive_relocate): the engine of relocate.h run once per file over its
 * verified bytes, the first time the file is read, and its result (a
 * binary's patch list, a text file's new bytes, a symlink's new target)
 * kept for the archive's life.
 *
 * Each node has a kind (an atomic byte: what the read path checks without
 * a lock) and, once touched, a state in a hash under the view's lock:
 * todo, busy (one thread computes; the others wait up to their deadline),
 * ready (immutable from then on: read without the lock) or as-is (served
 * as archived: refused by the engine, too big, or not ELF after all). One
 * file is computed at a time per archive, so that at most one file's
 * bytes are held for it. A network failure while reading leaves the file
 * to do: the next read tries again.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <uthash.h>

#include "sffs/log.h"
#include "sffs/relocate.h"

#include "archive_i.h"

enum { RK_NONE, RK_BIN, RK_TEXT, RK_LINK, RK_MAYBE_ELF };
enum { RS_TODO, RS_BUSY, RS_READY, RS_ASIS };

#define WHY_MAX 200

struct rstate {
	uint32_t node;
	int state;
	struct reloc_patch *p; /* binary: one allocation */
	size_t np;
	unsigned char *text; /* text: the relocated bytes */
	uint64_t tlen;
	char *link; /* symlink: the relocated target */
	char why[WHY_MAX];
	UT_hash_handle hh;
};

struct owned_map {
	struct reloc_pair *pairs;
	struct reloc_map map;
};

struct archive_reloc {
	pthread_mutex_t lock;	/* guards states, each state's state, busy */
	pthread_cond_t changed; /* CLOCK_MONOTONIC */
	struct rstate *states;
	bool busy;		     /* a file is being computed */
	_Atomic unsigned char *kind; /* per node; NULL: refused as a whole */
	uint32_t nnodes;
	struct owned_map bin, text;
	size_t nbin, ntext, nlink;
	bool elf_scan; /* every ELF file under the root, not a list */
	char *what;
	char *refused;
	atomic_uint_fast64_t files, nrefused, patches, scanned, ns, overlays;
};

static void map_free(struct owned_map *m)
{
	size_t k;

	for (k = 0; m->pairs && k < m->map.n; k++) {
		free((char *)m->pairs[k].old_prefix);
		free((char *)m->pairs[k].new_prefix);
	}
	free(m->pairs);
	memset(m, 0, sizeof(*m));
}

static int map_copy(struct owned_map *dst, const struct reloc_map *src)
{
	size_t k;

	memset(dst, 0, sizeof(*dst));
	if (!src || !src->n)
		return -EINVAL;
	dst->pairs = calloc(src->n, sizeof(*dst->pairs));
	if (!dst->pairs)
		return -ENOMEM;
	dst->map.pairs = dst->pairs;
	for (k = 0; k < src->n; k++) {
		const struct reloc_pair *s = &src->pairs[k];

		if (!s->old_prefix || !s->new_prefix || !*s->old_prefix)
			return -EINVAL;
		dst->pairs[k].old_prefix = strdup(s->old_prefix);
		dst->pairs[k].new_prefix = strdup(s->new_prefix);
		dst->map.n = k + 1;
		if (!dst->pairs[k].old_prefix || !dst->pairs[k].new_prefix)
			return -ENOMEM;
	}
	return 0;
}

static void state_free(struct rstate *s)
{
	reloc_patches_free(s->p);
	free(s->text);
	free(s->link);
	free(s);
}

void archive_reloc_free(struct archive_reloc *r)
{
	struct rstate *s, *tmp;

	if (!r)
		return;
	HASH_ITER(hh, r->states, s, tmp)
	{
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc): HASH_ITER's tmp
		HASH_DEL(r->states, s);
		state_free(s);
	}
	map_free(&r->bin);
	map_free(&r->text);
	free(r->kind);
	free(r->what);
	free(r->refused);
	pthread_cond_destroy(&r->changed);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static struct archive_reloc *reloc_new(const char *what)
{
	struct archive_reloc *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;

	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->changed, &ca);
	pthread_condattr_destroy(&ca);
	r->what = strdup(what ? what : "archive");
	if (!r->what) {
		archive_reloc_free(r);
		return NULL;
	}
	return r;
}

/* path relative to root, without following symlinks. */
static int resolve_under(const struct tree *t, uint32_t root, const char *path,
			 uint32_t *out)
{
	char comp[TAR_MAX_COMPONENT + 1];
	const char *p = path, *slash;
	uint32_t at = root;
	size_t len;
	int rc;

	while (*p) {
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (len > TAR_MAX_COMPONENT)
			return -ENAMETOOLONG;
		if (len && !(len == 1 && *p == '.')) {
			memcpy(comp, p, len);
			comp[len] = '\0';
			rc = tree_lookup(t, at, comp, &at);
			if (rc)
				return rc;
		}
		p += len + (slash != NULL);
	}
	*out = at;
	return 0;
}

static void mark_list(struct archive *ar, const char *const *paths, size_t n,
		      int kind, size_t *count)
{
	struct archive_reloc *r = ar->reloc;
	uint32_t node;
	size_t k;

	for (k = 0; k < n; k++) {
		const struct tree_node *tn;
		int rc = resolve_under(ar->tree, ar->root, paths[k], &node);

		tn = rc ? NULL : tree_node(ar->tree, node);
		if (tn && ((kind == RK_LINK && S_ISLNK(tn->mode)) ||
			   (kind != RK_LINK && S_ISREG(tn->mode)))) {
			atomic_store(&r->kind[node], (unsigned char)kind);
			(*count)++;
			continue;
		}
		log_warn("%s: %s listed for relocation is %s: left as it is",
			 r->what, paths[k],
			 rc ? "not in the package" : "not of its kind");
	}
}

/* Every regular file under the root that is big enough to be ELF. */
static int mark_elf_candidates(struct archive *ar)
{
	struct archive_reloc *r = ar->reloc;
	uint32_t *stack, node, child;
	size_t top = 0, i;
	const char *name;
	int rc = 0;

	stack = malloc(sizeof(*stack) * ((size_t)r->nnodes + 1));
	if (!stack)
		return -ENOMEM;
	stack[top++] = ar->root;
	while (top) {
		node = stack[--top];
		for (i = 0; !tree_dir_entry(ar->tree, node, i, &name, &child);
		     i++) {
			const struct tree_node *tn = tree_node(ar->tree, child);

			if (S_ISDIR(tn->mode) && top < r->nnodes)
				stack[top++] = child;
			else if (S_ISREG(tn->mode) && tn->size >= 64 &&
				 atomic_load(&r->kind[child]) == RK_NONE)
				atomic_store(&r->kind[child], RK_MAYBE_ELF);
		}
	}
	free(stack);
	return rc;
}

static struct rstate *state_get(struct archive_reloc *r, uint32_t node)
{
	struct rstate *s = NULL;

	HASH_FIND(hh, r->states, &node, sizeof(node), s);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->node = node;
	HASH_ADD(hh, r->states, node, sizeof(s->node), s);
	return s;
}

/* Symlinks need no I/O: relocated here, at once. */
static int links_now(struct archive *ar)
{
	struct archive_reloc *r = ar->reloc;
	uint32_t node;
	int rc;

	for (node = 0; node < r->nnodes; node++) {
		struct rstate *s;

		if (atomic_load(&r->kind[node]) != RK_LINK)
			continue;
		s = state_get(r, node);
		if (!s)
			return -ENOMEM;
		rc = reloc_link(tree_node(ar->tree, node)->u.symlink,
				&r->bin.map, &s->link);
		if (rc)
			return rc;
		s->state = s->link ? RS_READY : RS_ASIS;
		if (!s->link)
			snprintf(s->why, sizeof(s->why), "unchanged");
	}
	return 0;
}

int archive_relocate(struct archive *ar, const struct archive_reloc_opts *o,
		     char *err, size_t errlen)
{
	struct archive_reloc *r;
	int rc;

	if (ar->reloc)
		return -EALREADY;
	r = reloc_new(o->what);
	if (!r)
		return -ENOMEM;
	r->nnodes = tree_count(ar->tree);
	r->kind = calloc(r->nnodes ? r->nnodes : 1, sizeof(*r->kind));
	rc = r->kind ? map_copy(&r->bin, o->bin) : -ENOMEM;
	if (!rc)
		rc = map_copy(&r->text, o->text ? o->text : o->bin);
	if (rc) {
		snprintf(err, errlen, "%s: %s", r->what,
			 rc == -EINVAL ? "an empty or invalid relocation map"
				       : strerror(-rc));
		archive_reloc_free(r);
		return rc;
	}
	ar->reloc = r;
	mark_list(ar, o->binaries, o->nbinaries, RK_BIN, &r->nbin);
	mark_list(ar, o->textfiles, o->ntextfiles, RK_TEXT, &r->ntext);
	mark_list(ar, o->links, o->nlinks, RK_LINK, &r->nlink);
	r->elf_scan = o->elf_scan;
	rc = o->elf_scan ? mark_elf_candidates(ar) : 0;
	if (!rc)
		rc = links_now(ar);
	if (rc) {
		snprintf(err, errlen, "%s: relocating symlinks: %s", r->what,
			 strerror(-rc));
		ar->reloc = NULL;
		archive_reloc_free(r);
	}
	return rc;
}

/* One OLD[=REL] of a -o relocate= spec into pair (strings malloc'd). */
static int spec_pair(const char *item, size_t len, const char *new_root,
		     struct reloc_pair *pair, char *err, size_t errlen)
{
	const char *eq = memchr(item, '=', len);
	size_t olen = eq ? (size_t)(eq - item) : len;
	char *old = strndup(item, olen), *rel = NULL, *nw = NULL;
	int rc = 0;

	if (eq)
		rel = strndup(eq + 1, len - olen - 1);
	if (!old || (eq && !rel)) {
		rc = -ENOMEM;
	} else if (old[0] != '/' || olen < 2 || strstr(old, "/../") ||
		   (rel && (rel[0] == '/' || strstr(rel, "..")))) {
		snprintf(err, errlen,
			 "relocate: '%s' is not OLD[=REL] with OLD an absolute "
			 "path and REL a relative one",
			 old);
		rc = -EINVAL;
	} else if (asprintf(&nw, "%s%s%s", new_root, rel && *rel ? "/" : "",
			    rel ? rel : "") < 0) {
		nw = NULL;
		rc = -ENOMEM;
	}
	free(rel);
	if (rc) {
		free(old);
		return rc;
	}
	pair->old_prefix = old;
	pair->new_prefix = nw;
	return 0;
}

int archive_relocate_tree(struct archive *ar, const char *spec,
			  const char *new_root, const char *what, char *err,
			  size_t errlen)
{
	struct archive_reloc_opts o = {.elf_scan = true, .what = what};
	struct reloc_pair pairs[16];
	struct reloc_map map = {.pairs = pairs};
	const char *p = spec, *end;
	size_t k;
	int rc = 0;

	while (*p && !rc) {
		end = strchrnul(p, ':');
		if (map.n == sizeof(pairs) / sizeof(*pairs)) {
			snprintf(err, errlen, "relocate: more than %zu pairs",
				 map.n);
			rc = -EINVAL;
		} else if (end > p) {
			rc = spec_pair(p, (size_t)(end - p), new_root,
				       &pairs[map.n], err, errlen);
			map.n += !rc;
		}
		p = *end ? end + 1 : end;
	}
	if (!rc && !map.n) {
		snprintf(err, errlen, "relocate: no OLD path given");
		rc = -EINVAL;
	}
	if (!rc) {
		o.bin = &map;
		rc = archive_relocate(ar, &o, err, errlen);
	}
	for (k = 0; k < map.n; k++) {
		free((char *)pairs[k].old_prefix);
		free((char *)pairs[k].new_prefix);
	}
	return rc;
}

void archive_reloc_refused(struct archive *ar, const char *reason)
{
	struct archive_reloc *r;

	if (ar->reloc)
		return;
	r = reloc_new(NULL);
	if (!r)
		return;
	r->refused = strdup(reason ? reason : "refused");
	ar->reloc = r;
}

bool relview_copy_only(const struct archive *ar, uint32_t node)
{
	const struct archive_reloc *r = ar->reloc;

	return r && r->kind && node < r->nnodes &&
	       atomic_load_explicit(&r->kind[node], memory_order_acquire) !=
		   RK_NONE;
}

/* The whole of node's archived bytes, in a buffer of its own. */
static int read_whole(struct archive *ar, uint32_t node, uint64_t size,
		      struct archive_req *rq, unsigned char **out)
{
	unsigned char *buf = malloc(size ? (size_t)size : 1);
	ssize_t n;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	n = archive_read_raw(ar, node, 0, (size_t)size, buf, rq);
	if (n < 0 || (uint64_t)n != size) {
		free(buf);
		return n < 0 ? (int)n : -EIO;
	}
	*out = buf;
	return 0;
}

static bool is_elf(struct archive *ar, uint32_t node, struct archive_req *rq,
		   int *rc)
{
	unsigned char m[4];
	ssize_t n = archive_read_raw(ar, node, 0, sizeof(m), m, rq);

	*rc = n < 0 ? (int)n : 0;
	return n == (ssize_t)sizeof(m) && !memcmp(m, "\177ELF", 4);
}

static int compute_binary(struct archive *ar, struct rstate *s,
			  unsigned char *buf, uint64_t size)
{
	struct archive_reloc *r = ar->reloc;
	char err[WHY_MAX - 16];
	int rc = reloc_elf_patches_inplace(buf, (size_t)size, &r->bin.map,
					   &s->p, &s->np, err, sizeof(err));

	if (rc == -ENAMETOOLONG) {
		snprintf(s->why, sizeof(s->why), "refused: %s", err);
		return 1;
	}
	if (!rc)
		atomic_fetch_add(&r->patches, s->np);
	return rc;
}

static int compute_text(struct archive *ar, struct rstate *s,
			unsigned char *buf, uint64_t size)
{
	void *out = NULL;
	size_t outlen = 0;
	int rc =
	    reloc_text(buf, (size_t)size, &ar->reloc->text.map, &out, &outlen);

	if (rc)
		return rc;
	s->text = out;
	s->tlen = outlen;
	if (!out) { /* nothing matched: the archived bytes */
		snprintf(s->why, sizeof(s->why), "unchanged");
		return 1;
	}
	return 0;
}

/* Computes node's relocation (s is busy: the caller holds no lock). 0
 * ready, 1 as-is (s->why says why), or -errno (still to do). */
static int compute(struct archive *ar, struct rstate *s, int kind,
		   struct archive_req *rq)
{
	struct archive_reloc *r = ar->reloc;
	const struct tree_node *tn = tree_node(ar->tree, s->node);
	uint64_t cap =
	    kind == RK_TEXT ? ARCHIVE_RELOC_MAX_TEXT : ARCHIVE_RELOC_MAX_FILE;
	uint64_t t0 = fetch_now_ns();
	unsigned char *buf;
	int rc;

	if (kind == RK_MAYBE_ELF && !is_elf(ar, s->node, rq, &rc)) {
		if (rc)
			return rc;
		snprintf(s->why, sizeof(s->why), "not ELF");
		atomic_store_explicit(&r->kind[s->node], RK_NONE,
				      memory_order_release);
		return 1;
	}
	if (tn->size > cap) {
		snprintf(s->why, sizeof(s->why),
			 "refused: %" PRIu64 " bytes, over the %" PRIu64
			 " relocated at most",
			 tn->size, cap);
		return 1;
	}
	rc = read_whole(ar, s->node, tn->size, rq, &buf);
	if (rc)
		return rc;
	atomic_fetch_add(&r->scanned, tn->size);
	rc = kind == RK_TEXT ? compute_text(ar, s, buf, tn->size)
			     : compute_binary(ar, s, buf, tn->size);
	free(buf);
	atomic_fetch_add(&r->ns, fetch_now_ns() - t0);
	if (rc >= 0)
		atomic_fetch_add(&r->files, 1);
	return rc;
}

static void log_refused(struct archive *ar, struct rstate *s)
{
	char name[300];

	if (strncmp(s->why, "refused", 7))
		return;
	atomic_fetch_add(&ar->reloc->nrefused, 1);
	archive_node_name(ar, s->node, name, sizeof(name));
	log_warn("%s: %s cannot be relocated (%s): served as archived",
		 ar->reloc->what, name, s->why + 9);
}

static int wait_changed(struct archive_reloc *r, uint64_t deadline_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
			      .tv_nsec = (long)(deadline_ns % 1000000000u)};

	return pthread_cond_timedwait(&r->changed, &r->lock, &ts) == ETIMEDOUT
		   ? -ETIMEDOUT
		   : 0;
}

/* node's state once ready or as-is (computed here if need be). */
static int prepare(struct archive *ar, uint32_t node, struct archive_req *rq,
		   struct rstate **out)
{
	struct archive_reloc *r = ar->reloc;
	int kind = atomic_load(&r->kind[node]), rc = 0;
	struct rstate *s;

	pthread_mutex_lock(&r->lock);
	s = state_get(r, node);
	while (s && rc == 0 &&
	       (s->state == RS_BUSY || (s->state == RS_TODO && r->busy))) {
		if (rq->nowait || (rq->cancel && atomic_load(rq->cancel)))
			rc = rq->nowait ? -EAGAIN : -EINTR;
		else
			rc = wait_changed(r, rq->deadline_ns);
	}
	if (!s || rc || s->state != RS_TODO) {
		pthread_mutex_unlock(&r->lock);
		*out = s;
		return s ? rc : -ENOMEM;
	}
	if (rq->nowait) {
		pthread_mutex_unlock(&r->lock);
		return -EAGAIN;
	}
	s->state = RS_BUSY;
	r->busy = true;
	pthread_mutex_unlock(&r->lock);
	rc = compute(ar, s, kind, rq);
	pthread_mutex_lock(&r->lock);
	s->state = rc < 0 ? RS_TODO : rc ? RS_ASIS : RS_READY;
	r->busy = false;
	pthread_cond_broadcast(&r->changed);
	pthread_mutex_unlock(&r->lock);
	if (rc == 1)
		log_refused(ar, s);
	*out = s;
	return rc < 0 ? rc : 0;
}

static void fill_deadline(struct archive *ar, struct archive_req *rq)
{
	if (!rq->deadline_ns)
		rq->deadline_ns =
		    fetch_now_ns() + (uint64_t)ar->o.timeout_s * 1000000000u;
}

ssize_t relview_read(struct archive *ar, uint32_t node, uint64_t off,
		     size_t len, void *buf, struct archive_req *rq)
{
	struct rstate *s;
	ssize_t n;
	int rc;

	fill_deadline(ar, rq);
	rc = prepare(ar, node, rq, &s);
	if (rc)
		return rc;
	if (s->state == RS_ASIS)
		return archive_read_raw(ar, node, off, len, buf, rq);
	if (s->text) {
		if (off >= s->tlen)
			return 0;
		if (len > s->tlen - off)
			len = (size_t)(s->tlen - off);
		memcpy(buf, s->text + off, len);
		atomic_fetch_add(&ar->reloc->overlays, 1);
		return (ssize_t)len;
	}
	n = archive_read_raw(ar, node, off, len, buf, rq);
	if (n > 0 && s->np) {
		reloc_apply(s->p, s->np, off, buf, (size_t)n);
		atomic_fetch_add(&ar->reloc->overlays, 1);
	}
	return n;
}

int archive_node_size(struct archive *ar, uint32_t node, uint64_t *size)
{
	const struct tree_node *tn = tree_node(ar->tree, node);
	struct archive_req rq = {0};
	struct rstate *s;
	int rc;

	if (!tn)
		return -EINVAL;
	*size = tn->size;
	if (S_ISLNK(tn->mode)) {
		*size = strlen(archive_link_target(ar, node));
		return 0;
	}
	if (!relview_copy_only(ar, node) ||
	    atomic_load(&ar->reloc->kind[node]) != RK_TEXT)
		return 0;
	fill_deadline(ar, &rq);
	rc = prepare(ar, node, &rq, &s);
	if (!rc && s->state == RS_READY)
		*size = s->tlen;
	return rc;
}

const char *archive_link_target(struct archive *ar, uint32_t node)
{
	const struct tree_node *tn = tree_node(ar->tree, node);
	struct archive_reloc *r = ar->reloc;
	struct rstate *s = NULL;

	if (!tn || !S_ISLNK(tn->mode))
		return NULL;
	if (!r || !r->kind || node >= r->nnodes ||
	    atomic_load(&r->kind[node]) != RK_LINK)
		return tn->u.symlink;
	pthread_mutex_lock(&r->lock);
	HASH_FIND(hh, r->states, &node, sizeof(node), s);
	pthread_mutex_unlock(&r->lock);
	/* ready states never change again */
	return s && s->link ? s->link : tn->u.symlink;
}

static int describe_root(struct archive_reloc *r, char *buf, size_t len)
{
	char what[128];

	if (r->refused)
		return snprintf(buf, len, "refused: %s", r->refused);
	if (r->elf_scan && !r->nbin && !r->ntext && !r->nlink)
		snprintf(what, sizeof(what), "every ELF file");
	else
		snprintf(what, sizeof(what),
			 "%zu binaries, %zu text files, %zu links listed",
			 r->nbin, r->ntext, r->nlink);
	return snprintf(buf, len,
			"relocated: %s; %" PRIu64 " files computed, %" PRIu64
			" refused, %" PRIu64 " patches, %" PRIu64
			" bytes scanned, %" PRIu64 " ms",
			what, atomic_load(&r->files), atomic_load(&r->nrefused),
			atomic_load(&r->patches), atomic_load(&r->scanned),
			atomic_load(&r->ns) / 1000000u);
}

int archive_reloc_describe(struct archive *ar, uint32_t node, char *buf,
			   size_t len)
{
	struct archive_reloc *r = ar->reloc;
	struct rstate *s = NULL;
	int kind, n;

	if (!r)
		return -ENODATA;
	if (node == ar->root || !r->kind)
		return describe_root(r, buf, len);
	kind = node < r->nnodes ? atomic_load(&r->kind[node]) : RK_NONE;
	if (kind == RK_NONE)
		return snprintf(buf, len, "unchanged");
	pthread_mutex_lock(&r->lock);
	HASH_FIND(hh, r->states, &node, sizeof(node), s);
	if (!s || s->state == RS_TODO || s->state == RS_BUSY)
		n = snprintf(buf, len, "not yet read");
	else if (s->state == RS_ASIS)
		n = snprintf(buf, len, "%s", s->why);
	else if (s->link)
		n = snprintf(buf, len, "link: %s", s->link);
	else if (s->text)
		n = snprintf(buf, len, "text: %" PRIu64 " -> %" PRIu64 " bytes",
			     tree_node(ar->tree, node)->size, s->tlen);
	else
		n = snprintf(buf, len, "binary: %zu patches", s->np);
	pthread_mutex_unlock(&r->lock);
	return n;
}

void archive_reloc_get_stats(struct archive *ar, struct archive_reloc_stats *st)
{
	struct archive_reloc *r = ar->reloc;

	memset(st, 0, sizeof(*st));
	if (!r)
		return;
	st->files = atomic_load(&r->files);
	st->refused = atomic_load(&r->nrefused);
	st->patches = atomic_load(&r->patches);
	st->scanned = atomic_load(&r->scanned);
	st->ns = atomic_load(&r->ns);
	st->overlays = atomic_load(&r->overlays);
}
