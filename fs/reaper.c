/* SPDX-License-Identifier: MIT */
/*
 * reaper.c - keeps the kernel's view of the catalog fresh: when a newer
 * version appears, the cached target of latest is dropped; and it
 * releases the catalog's idle artifacts: every few seconds,
 * catalog_idle() marks those unused for release_after seconds, and for
 * each the kernel is told to drop its entry (and so the whole subtree of
 * dentries under it, and then its inodes: the forgets that let the
 * catalog free the archive) and its root's cached attributes and
 * listing. Runs in its own thread: the kernel may answer a notification
 * only after requests ahead of it, which a FUSE worker must not wait for.
 * Listings readdir asks for are redone here, in the background. The
 * kernel's forgets are passed on to the catalog here too: the last
 * one of a released artifact frees it (threads joined, memory trimmed),
 * which must not hold up a FUSE worker.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sffs/log.h"
#include "fs.h"

static void drop_entry(void *arg, struct catalog_entry *e)
{
	struct fs *fs = arg;
	const char *tc = catalog_entry_toolchain(e);
	int rc;

	if (catalog_entry_parent(e))
		rc = fuse_lowlevel_notify_inval_entry(
		    fs->se,
		    FS_INO_BCDIR + catalog_entry_id(catalog_entry_parent(e)),
		    catalog_entry_version(e), strlen(catalog_entry_version(e)));
	else if (catalog_flat(fs->cat))
		rc = fuse_lowlevel_notify_inval_entry(
		    fs->se, FS_INO_ROOT, catalog_entry_version(e),
		    strlen(catalog_entry_version(e)));
	else
		rc = fuse_lowlevel_notify_inval_entry(
		    fs->se, FS_INO_VERSION + catalog_entry_vidx(e), tc,
		    strlen(tc));
	if (rc && rc != -ENOENT)
		log_debug("dropping %s/%s: %s", catalog_entry_version(e), tc,
			  strerror(-rc));
	rc = fuse_lowlevel_notify_inval_inode(
	    fs->se, FS_INO_ARTROOT + catalog_entry_id(e), 0, 0);
	if (rc && rc != -ENOENT)
		log_debug("dropping %s/%s's root: %s", catalog_entry_version(e),
			  tc, strerror(-rc));
}

/* The kernel caches symlink targets: when a newer version appears,
 * latest's cached target is dropped. */
static void check_latest(struct fs *fs, const char **seen)
{
	const char *now = catalog_latest(fs->cat);

	if (now == *seen || !fs->se)
		return;
	*seen = now;
	fuse_lowlevel_notify_inval_inode(fs->se, FS_INO_LATEST, 0, 0);
	fuse_lowlevel_notify_inval_entry(fs->se, FS_INO_ROOT, "latest", 6);
}

/* Passes the queued forgets on to the catalog, outside reaper_lock (the
 * last one of a released artifact frees it). Called with the lock held;
 * returns with it held. */
static void run_forgets(struct fs *fs)
{
	struct fs_forget *f;
	size_t n;

	while (fs->nforgets) {
		f = fs->forgets;
		n = fs->nforgets;
		fs->forgets = NULL;
		fs->nforgets = fs->forgets_cap = 0;
		pthread_mutex_unlock(&fs->reaper_lock);
		fs_forgets_run(fs, f, n);
		free(f);
		pthread_mutex_lock(&fs->reaper_lock);
	}
}

/* A listing readdir asked for (catalog_maybe_refresh does it only when
 * the last is older than refresh_s). With reaper_lock held, as
 * run_forgets. */
static void run_refresh(struct fs *fs)
{
	if (!fs->refresh_wanted || fs->reaper_stop)
		return;
	fs->refresh_wanted = false;
	pthread_mutex_unlock(&fs->reaper_lock);
	catalog_maybe_refresh(fs->cat);
	pthread_mutex_lock(&fs->reaper_lock);
}

void fs_reaper_refresh(struct fs *fs)
{
	bool queued;

	pthread_mutex_lock(&fs->reaper_lock);
	queued = fs->reaper_started && !fs->reaper_stop;
	if (queued) {
		fs->refresh_wanted = true;
		pthread_cond_signal(&fs->reaper_wake);
	}
	pthread_mutex_unlock(&fs->reaper_lock);
	if (!queued)
		catalog_maybe_refresh(fs->cat);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Every reap_period_s: latest and idle artifacts; at once: forgets. */
static void *reaper_main(void *arg)
{
	struct fs *fs = arg;
	const char *latest = catalog_latest(fs->cat);
	uint64_t period = (uint64_t)fs->reap_period_s * 1000000000u;
	uint64_t next = mono_ns() + period;
	struct timespec ts;

	pthread_setname_np(pthread_self(), "sffs-reaper");

	pthread_mutex_lock(&fs->reaper_lock);
	while (!fs->reaper_stop) {
		ts.tv_sec = (time_t)(next / 1000000000u);
		ts.tv_nsec = (long)(next % 1000000000u);
		if (!fs->nforgets && !fs->refresh_wanted)
			pthread_cond_timedwait(&fs->reaper_wake,
					       &fs->reaper_lock, &ts);
		run_forgets(fs);
		run_refresh(fs);
		if (fs->reaper_stop || mono_ns() < next)
			continue;
		next = mono_ns() + period;
		pthread_mutex_unlock(&fs->reaper_lock);
		check_latest(fs, &latest);
		catalog_idle(fs->cat, fs->se ? drop_entry : NULL, fs);
		pthread_mutex_lock(&fs->reaper_lock);
	}
	run_forgets(fs);
	pthread_mutex_unlock(&fs->reaper_lock);
	return NULL;
}

int fs_reaper_start(struct fs *fs)
{
	int rc;

	if (!fs->cat || fs->reaper_started)
		return 0;
	if (!fs->reap_period_s)
		fs->reap_period_s = 5; /* latest only: nothing is released */
	pthread_mutex_lock(&fs->reaper_lock);
	fs->reaper_stop = false;
	rc = pthread_create(&fs->reaper, NULL, reaper_main, fs);
	if (!rc)
		fs->reaper_started = true;
	pthread_mutex_unlock(&fs->reaper_lock);
	if (rc) {
		log_warn("no release thread: idle artifacts stay attached");
		return -rc;
	}
	return 0;
}

void fs_reaper_stop(struct fs *fs)
{
	if (!fs->reaper_started)
		return;
	pthread_mutex_lock(&fs->reaper_lock);
	fs->reaper_stop = true;
	pthread_cond_broadcast(&fs->reaper_wake);
	pthread_mutex_unlock(&fs->reaper_lock);
	pthread_join(fs->reaper, NULL);
	pthread_mutex_lock(&fs->reaper_lock);
	fs->reaper_started = false;
	pthread_mutex_unlock(&fs->reaper_lock);
}
