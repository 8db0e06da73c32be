/* SPDX-License-Identifier: MIT */
/*
 * test_budget.c - what a streaming pass may hold before its artifact is
 * verified (archive_opts.tree_mem_max, archive_unverified_mem) and where
 * its window spill lives (archive_opts.spill_dir).
 *
 * A tar of many tiny members with long names (made here with Python's
 * tarfile) is refused past a small budget, with E2BIG and a message that
 * names the budget; the fixture's tarball (SFFS_FIXTURE_DIR) measures what
 * a real artifact holds per compressed byte and opens within the default
 * budget; its spill is an unlinked 0600 file in spill_dir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "sffs/archive.h"
#include "sffs/fetch.h"

static char tmp[PATH_MAX];

static void run(const char *cmd)
{
	int st = system(cmd); // NOLINT(cert-env33-c): a test helper

	if (st != 0)
		fprintf(stderr, "failed (%d): %s\n", st, cmd);
	CHECK(st == 0);
}

/* Opens path with a budget of max bytes (0: none) and spill_dir; the
 * archive, or NULL with *err_no and err. */
static struct archive *open_with(const char *path, uint64_t max,
				 const char *spill_dir, struct fetch **f,
				 int *err_no, char *err, size_t errlen)
{
	struct archive_opts o;
	struct archive *ar;

	archive_opts_default(&o);
	o.tree_mem_max = max;
	o.spill_dir = spill_dir;
	*f = fetch_open(path, NULL, err, errlen);
	if (!*f) {
		*err_no = errno;
		return NULL;
	}
	errno = 0;
	ar = archive_open(*f, &o, err, errlen);
	*err_no = errno;
	if (!ar) {
		fetch_free(*f);
		*f = NULL;
	}
	return ar;
}

static void close_all(struct archive *ar, struct fetch *f)
{
	archive_free(ar);
	fetch_free(f);
}

/* 20,000 empty members with 120-character names, gzip'd: about 3 MB of
 * tree from a few hundred KB of artifact. */
static void make_tiny_members(const char *path)
{
	char cmd[PATH_MAX + 512];

	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import io, sys, tarfile\n"
		 "with tarfile.open(sys.argv[1], \"w:gz\") as t:\n"
		 "    for i in range(20000):\n"
		 "        ti = tarfile.TarInfo(\"d%%d/\" %% (i // 1000) + "
		 "\"%%0120d\" %% i)\n"
		 "        t.addfile(ti, io.BytesIO(b\"\"))\n' '%s'",
		 path);
	run(cmd);
}

/* The least budget the artifact at path opens with, to 64 KiB. */
static uint64_t least_budget(const char *path)
{
	uint64_t lo = 0, hi = ARCHIVE_UNVERIFIED_BASE, mid;
	char err[1024];
	struct archive *ar;
	struct fetch *f;
	int e;

	while (hi - lo > 65536) {
		mid = lo + (hi - lo) / 2;
		ar = open_with(path, mid, NULL, &f, &e, err, sizeof(err));
		if (ar)
			hi = mid;
		else
			lo = mid;
		CHECK(ar || e == E2BIG);
		close_all(ar, f);
	}
	return hi;
}

static void test_tiny_members(void)
{
	char path[PATH_MAX + 32], err[1024];
	struct archive *ar;
	struct fetch *f;
	struct stat st;
	uint64_t need;
	int e;

	snprintf(path, sizeof(path), "%s/tiny.tar.gz", tmp);
	make_tiny_members(path);
	CHECK(stat(path, &st) == 0);

	/* no budget: the tree is built */
	ar = open_with(path, 0, NULL, &f, &e, err, sizeof(err));
	CHECK(ar != NULL);
	if (!ar)
		fprintf(stderr, "tiny: %s\n", err);
	close_all(ar, f);

	/* 1 MiB: refused with E2BIG, saying what it held and the limit */
	ar = open_with(path, 1u << 20, NULL, &f, &e, err, sizeof(err));
	CHECK(ar == NULL);
	CHECK_EQ_U64(e, E2BIG);
	CHECK(strstr(err, "before the artifact is verified") != NULL);
	CHECK(strstr(err, "more than 1.0 MiB") != NULL);
	fprintf(stderr, "tiny members, 1 MiB budget: %s\n", err);
	close_all(ar, f);

	need = least_budget(path);
	fprintf(stderr,
		"tiny members: %lld bytes; the pass needs %llu KiB, %.1f "
		"bytes per compressed byte\n",
		(long long)st.st_size, (unsigned long long)(need >> 10),
		(double)need / (double)st.st_size);
	/* the default budget for its size has room for it */
	ar = open_with(path, archive_unverified_mem((uint64_t)st.st_size), NULL,
		       &f, &e, err, sizeof(err));
	CHECK(ar != NULL);
	close_all(ar, f);
}

static void test_unverified_mem(void)
{
	CHECK_EQ_U64(archive_unverified_mem(0), ARCHIVE_UNVERIFIED_BASE);
	CHECK_EQ_U64(archive_unverified_mem(10u << 20),
		     ARCHIVE_UNVERIFIED_BASE + (20u << 20));
	CHECK_EQ_U64(archive_unverified_mem(UINT64_C(3) << 30), TREE_MAX_MEM);
	CHECK_EQ_U64(archive_unverified_mem(UINT64_MAX), TREE_MAX_MEM);
}

static void test_fixture_budget(const char *fixture)
{
	static const char *const names[] = {
	    "slurm-22.05-bookworm-software.tar.gz",
	    "slurm-22.05-bookworm-software.tar.zst",
	};
	char path[PATH_MAX];
	struct stat st;
	uint64_t need;
	size_t i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", fixture, names[i]);
		if (stat(path, &st)) {
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
			CHECK(0);
			continue;
		}
		need = least_budget(path);
		fprintf(stderr,
			"%s: %llu bytes; the pass needs %llu KiB, %.3f bytes "
			"per compressed byte; the budget is %llu MiB\n",
			names[i], (unsigned long long)st.st_size,
			(unsigned long long)(need >> 10),
			(double)need / (double)st.st_size,
			(unsigned long long)(archive_unverified_mem(
						 (uint64_t)st.st_size) >>
					     20));
		/* a real artifact uses a small part of its budget */
		CHECK(need * 4 < archive_unverified_mem((uint64_t)st.st_size));
	}
}

/* The fd of this process open on a file of dir, or -1. */
static int fd_in(const char *dir, char *target, size_t len)
{
	char link[300];
	struct dirent *d;
	DIR *fds = opendir("/proc/self/fd");
	int fd = -1;
	ssize_t n;

	if (!fds)
		return -1;
	while (fd < 0 && (d = readdir(fds)) != NULL) {
		snprintf(link, sizeof(link), "/proc/self/fd/%s", d->d_name);
		n = readlink(link, target, len - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (!strncmp(target, dir, strlen(dir)) &&
		    target[strlen(dir)] == '/')
			fd = atoi(d->d_name);
	}
	closedir(fds);
	return fd;
}

static void test_spill_dir(const char *fixture)
{
	char path[PATH_MAX], dir[PATH_MAX + 16], target[PATH_MAX + 64];
	char err[1024], cmd[PATH_MAX + 64];
	struct archive *ar;
	struct fetch *f;
	struct stat st;
	DIR *d;
	int e, fd, names = 0;

	snprintf(path, sizeof(path), "%s/slurm-22.05-bookworm-software.tar.gz",
		 fixture);
	snprintf(dir, sizeof(dir), "%s/spill", tmp);
	snprintf(cmd, sizeof(cmd), "mkdir -p -m 0700 '%s'", dir);
	run(cmd);
	ar = open_with(path, 0, dir, &f, &e, err, sizeof(err));
	CHECK(ar != NULL);
	fd = fd_in(dir, target, sizeof(target));
	CHECK(fd >= 0);
	if (fd >= 0) {
		fprintf(stderr, "spill: %s\n", target);
		CHECK(fstat(fd, &st) == 0);
		CHECK_EQ_U64(st.st_mode & 07777, 0600);
		CHECK_EQ_U64(st.st_nlink, 0); /* no name reaches it */
		CHECK(st.st_size > 0);
	}
	d = opendir(dir);
	CHECK(d != NULL);
	for (struct dirent *de; d && (de = readdir(d)) != NULL;)
		names += de->d_name[0] != '.' || strlen(de->d_name) > 2;
	if (d)
		closedir(d);
	CHECK_EQ_U64(names, 0);
	/* windows read back from it */
	if (ar) {
		char buf[4096];
		uint32_t node;

		CHECK(tree_resolve(archive_tree(ar), "view/lib/libslurmfull.so",
				   &node) == 0);
		CHECK(archive_read(ar, node, 1u << 20, sizeof(buf), buf) ==
		      (ssize_t)sizeof(buf));
	}
	close_all(ar, f);
	CHECK(fd_in(dir, target, sizeof(target)) < 0);

	/* a directory that is not there: tmpfile(), as before */
	snprintf(dir, sizeof(dir), "%s/no-such-dir", tmp);
	ar = open_with(path, 0, dir, &f, &e, err, sizeof(err));
	CHECK(ar != NULL);
	close_all(ar, f);
}

int main(void)
{
	const char *fixture = getenv("SFFS_FIXTURE_DIR");
	const char *base = getenv("SFFS_TEST_TMP");
	char cmd[PATH_MAX + 64];

	snprintf(tmp, sizeof(tmp), "%s/test_budget.%d", base ? base : "/tmp",
		 (int)getpid());
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", tmp);
	run(cmd);
	test_unverified_mem();
	test_tiny_members();
	if (!fixture) {
		fprintf(stderr, "SFFS_FIXTURE_DIR is not set\n");
		CHECK(0);
	} else {
		test_fixture_budget(fixture);
		test_spill_dir(fixture);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	run(cmd);
	return check_done();
}
