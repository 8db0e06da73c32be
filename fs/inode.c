/* SPDX-License-Identifier: MIT */
/*
 * inode.c - inode numbers <-> (artifact, node), and the references that
 * keep an archive alive while a request or the kernel uses it (fs.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "sffs/fetch.h"
#include "sffs/log.h"

#include "fs.h"

static int resolve_single(struct fs *fs, fuse_ino_t ino, struct fs_ref *r)
{
	if (ino < FUSE_ROOT_ID || ino - 1 >= tree_count(archive_tree(fs->ar)))
		return -ENOENT;
	r->kind = FS_NODE;
	r->ar = fs->ar;
	r->node = (uint32_t)(ino - 1);
	return 0;
}

/* FS_INO_VERSION .. FS_INO_BCMODFILE ranges: base + index below 2^28. */
static int in_range(fuse_ino_t ino, uint64_t base, uint32_t *idx)
{
	if (ino < base || ino - base >= 0x10000000ull)
		return 0;
	*idx = (uint32_t)(ino - base);
	return 1;
}

static int resolve_node(struct fs *fs, fuse_ino_t ino, struct fs_ref *r)
{
	uint32_t id = (uint32_t)((ino >> 40) & (FS_ID_MAX - 1));
	int rc;

	r->kind = FS_NODE;
	r->e = catalog_entry_by_id(fs->cat, id);
	r->epoch = (uint32_t)((ino >> 32) & 0xff);
	r->node = (uint32_t)ino;
	if (!r->e || !r->node)
		return -ENOENT;
	rc = catalog_get(fs->cat, r->e, r->epoch, &r->ar);
	if (rc)
		return rc;
	r->held = true;
	/* the served root is the artifact root's inode, never a node one */
	if (r->node >= tree_count(archive_tree(r->ar)) ||
	    r->node == archive_root(r->ar)) {
		fs_unref(fs, r);
		return -ENOENT;
	}
	return 0;
}

int fs_resolve(struct fs *fs, fuse_ino_t ino, struct fs_ref *r)
{
	uint32_t idx;

	memset(r, 0, sizeof(*r));
	if (!fs->cat)
		return resolve_single(fs, ino, r);
	if (ino & FS_INO_NODE)
		return resolve_node(fs, ino, r);
	switch (ino) {
	case FS_INO_ROOT:
		r->kind = FS_ROOT;
		return 0;
	case FS_INO_MODULES:
		r->kind = FS_MODULES;
		return 0;
	case FS_INO_MODSLURM:
		r->kind = FS_MODSLURM;
		return 0;
	case FS_INO_LATEST:
		r->kind = FS_LATEST;
		return 0;
	case FS_INO_BCINDEX:
		r->kind = FS_BCINDEX;
		return 0;
	}
	if (in_range(ino, FS_INO_VERSION, &idx)) {
		if (!catalog_version_name(fs->cat, idx))
			return -ENOENT;
		r->kind = FS_VERSION;
		r->vidx = idx;
		return 0;
	}
	if (in_range(ino, FS_INO_ARTROOT, &idx) ||
	    in_range(ino, FS_INO_MODFILE, &idx) ||
	    in_range(ino, FS_INO_BCDIR, &idx)) {
		r->e = catalog_entry_by_id(fs->cat, idx);
		if (!r->e)
			return -ENOENT;
		r->kind = ino >= FS_INO_BCDIR	  ? FS_BCDIR
			  : ino >= FS_INO_MODFILE ? FS_MODFILE
						  : FS_ARTROOT;
		return 0;
	}
	if (in_range(ino, FS_INO_BCMODS, &idx) ||
	    in_range(ino, FS_INO_BCMODDIR, &idx) ||
	    in_range(ino, FS_INO_BCMODFILE, &idx)) {
		r->e = catalog_entry_by_id(fs->cat, idx);
		if (!r->e)
			return -ENOENT;
		r->kind = ino >= FS_INO_BCMODFILE  ? FS_BCMODFILE
			  : ino >= FS_INO_BCMODDIR ? FS_BCMODDIR
						   : FS_BCMODS;
		return 0;
	}
	return -ENOENT;
}

void fs_unref(struct fs *fs, struct fs_ref *r)
{
	if (r->held)
		catalog_put(fs->cat, r->e);
	r->held = false;
}

/* A lookup or readdir waiting for an attach: a FUSE interrupt sets
 * cancel and wakes the catalog's waiters. Lives on the waiting handler's
 * stack: the interrupt function is cleared (under the request's lock,
 * which libfuse holds while calling it) before the handler returns. */
struct attach_cancel {
	struct fs *fs;
	atomic_bool cancel;
};

/* Signals whose default action neither ends nor stops a process... and
 * the stops: none of them may turn a waiting lookup into EINTR. */
#define SIG_BIT(s) (UINT64_C(1) << ((s)-1))
#define SIGS_NOT_FATAL                                                         \
	(SIG_BIT(SIGCHLD) | SIG_BIT(SIGCONT) | SIG_BIT(SIGURG) |               \
	 SIG_BIT(SIGWINCH) | SIG_BIT(SIGSTOP) | SIG_BIT(SIGTSTP) |             \
	 SIG_BIT(SIGTTIN) | SIG_BIT(SIGTTOU))

bool fs_req_dying(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	unsigned long long pend = 0, cgt = 0, ign = 0;
	char path[64], line[128];
	FILE *f;

	if (!ctx || ctx->pid <= 0) /* another pid namespace: cannot tell */
		return true;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)ctx->pid);
	f = fopen(path, "re");
	if (!f)
		return true; /* gone */
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "SigPnd:", 7) ||
		    !strncmp(line, "ShdPnd:", 7))
			pend |= strtoull(line + 7, NULL, 16);
		else if (!strncmp(line, "SigCgt:", 7))
			cgt = strtoull(line + 7, NULL, 16);
		else if (!strncmp(line, "SigIgn:", 7))
			ign = strtoull(line + 7, NULL, 16);
	}
	fclose(f);
	return (pend & ~cgt & ~ign & ~SIGS_NOT_FATAL) != 0;
}

/* Only a dying process is let go: a caught signal (a shell's SIGCHLD
 * while a lookup waits) must not fail the lookup with EINTR. */
static void attach_interrupted(fuse_req_t req, void *data)
{
	struct attach_cancel *w = data;

	if (!fs_req_dying(req))
		return;
	atomic_store(&w->cancel, true);
	catalog_wake(w->fs->cat);
}

static void log_wait_end(struct catalog_entry *e, int rc)
{
	if (rc == -EINTR)
		log_info("%s/%s: a lookup was interrupted while it attaches",
			 catalog_entry_version(e), catalog_entry_toolchain(e));
	else
		log_info("%s/%s: a lookup gave up after its deadline while it "
			 "attaches (the attach goes on)",
			 catalog_entry_version(e), catalog_entry_toolchain(e));
}

/*
 * Waits for r's attach as fs_hold_artroot says: 0 or -errno. The deadline
 * is the catalog's default (now + the read timeout, cut short once an
 * earlier wait on the same attach ran out: libfuse 3.14 never grants the
 * kernel parallel directory operations, so lookups queued behind a slow
 * attach arrive one after another and must not each wait a deadline).
 */
static int attach_wait(struct fs *fs, struct fs_ref *r, fuse_req_t req)
{
	struct attach_cancel w = {.fs = fs};
	int rc;

	atomic_init(&w.cancel, false);
	if (req)
		fuse_req_interrupt_func(req, attach_interrupted, &w);
	rc =
	    catalog_attach_wait(fs->cat, r->e, 0, &w.cancel, &r->ar, &r->epoch);
	if (req)
		fuse_req_interrupt_func(req, NULL, NULL);
	if (rc == -ETIMEDOUT || rc == -EINTR)
		log_wait_end(r->e, rc);
	return rc;
}

int fs_hold_artroot(struct fs *fs, struct fs_ref *r, fuse_req_t req)
{
	int rc;

	if (r->kind != FS_ARTROOT)
		return 0;
	rc = attach_wait(fs, r, req);
	if (rc)
		return rc;
	r->held = true;
	r->kind = FS_NODE;
	r->node = archive_root(r->ar);
	return 0;
}

fuse_ino_t fs_node_ino(const struct fs *fs, const struct fs_ref *r,
		       uint32_t node)
{
	uint64_t id;

	if (!fs->cat)
		return (fuse_ino_t)node + 1;
	id = catalog_entry_id(r->e);
	if (node == archive_root(r->ar))
		return FS_INO_ARTROOT + id;
	return FS_INO_NODE | id << 40 | (uint64_t)(r->epoch & 0xff) << 32 |
	       node;
}

void fs_node_looked_up(struct fs *fs, const struct fs_ref *r)
{
	if (fs->cat && r->e)
		catalog_ref(fs->cat, r->e, r->epoch, 1);
}

/* Room for one more queued forget; called with reaper_lock held. */
static bool forget_room(struct fs *fs)
{
	size_t cap = fs->forgets_cap ? 2 * fs->forgets_cap : 64;
	struct fs_forget *nf;

	if (fs->nforgets < fs->forgets_cap)
		return true;
	nf = realloc(fs->forgets, cap * sizeof(*nf));
	if (!nf)
		return false;
	fs->forgets = nf;
	fs->forgets_cap = cap;
	return true;
}

/* Queues (coalescing) a forget for the reaper; false when there is no
 * reaper or no memory: the caller passes it on itself. */
static bool forget_queue(struct fs *fs, uint32_t id, uint32_t epoch, uint64_t n)
{
	struct fs_forget *last;
	bool ok;

	pthread_mutex_lock(&fs->reaper_lock);
	ok = fs->reaper_started && !fs->reaper_stop;
	last = fs->nforgets ? &fs->forgets[fs->nforgets - 1] : NULL;
	if (ok && last && last->id == id && last->epoch == epoch) {
		last->n += n;
	} else if (ok && forget_room(fs) && fs->forgets) {
		last = &fs->forgets[fs->nforgets++];
		last->id = id;
		last->epoch = epoch;
		last->n = n;
	} else {
		ok = false;
	}
	if (ok)
		pthread_cond_signal(&fs->reaper_wake);
	pthread_mutex_unlock(&fs->reaper_lock);
	return ok;
}

void fs_forget_ino(struct fs *fs, fuse_ino_t ino, uint64_t n)
{
	uint32_t id = (uint32_t)((ino >> 40) & (FS_ID_MAX - 1));
	uint32_t epoch = (uint32_t)((ino >> 32) & 0xff);
	struct catalog_entry *e;

	if (!fs->cat || !(ino & FS_INO_NODE))
		return;
	/* The last forget of a released artifact frees it (threads joined,
	 * memory trimmed): the reaper does that, never a FUSE worker. */
	if (forget_queue(fs, id, epoch, n))
		return;
	e = catalog_entry_by_id(fs->cat, id);
	if (e)
		catalog_unref(fs->cat, e, epoch, n);
}

void fs_forgets_run(struct fs *fs, struct fs_forget *f, size_t n)
{
	struct catalog_entry *e;
	size_t i;

	for (i = 0; i < n; i++) {
		e = catalog_entry_by_id(fs->cat, f[i].id);
		if (e)
			catalog_unref(fs->cat, e, f[i].epoch, f[i].n);
	}
}
