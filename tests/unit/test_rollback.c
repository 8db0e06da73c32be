/* SPDX-License-Identifier: MIT */
/*
 * test_rollback.c - the rollback record (open/rollback.c): per name, the
 * newest signed time seen and that artifact's SHA-256, in a private file
 * of the cache directory.
 *
 * Checks: a first artifact is recorded (0600, no temporary left); a newer
 * one replaces it; an older other artifact is refused with both times in
 * ISO 8601 and what to do, and accepted with allow (the record keeps the
 * newer time); the same artifact with an older time is no rollback; names
 * do not share records; no directory or no time checks nothing; a record
 * that is a symlink is not followed (its target is left alone) and is
 * replaced by a file of ours.
 */
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "open_i.h"

static unsigned char sha_a[32] = {1}, sha_b[32] = {2}, sha_c[32] = {3};

/* The one rollback-* file in dir (its path into out), and how many
 * entries dir holds. */
static int only_record(const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	out[0] = '\0';
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' &&
		    (!e->d_name[1] || !strcmp(e->d_name, "..")))
			continue;
		n++;
		if (!strncmp(e->d_name, "rollback-", 9))
			snprintf(out, len, "%s/%s", dir, e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

static void test_order(const char *dir)
{
	char why[1024] = "", rec[PATH_MAX];
	const char *key = "http://h/slurm-25.05-bookworm-software.tar.gz";
	struct stat st;

	CHECK(rollback_check(dir, key, 1700000000, sha_a, false, why,
			     sizeof(why)) == 0);
	CHECK_EQ_U64(only_record(dir, rec, sizeof(rec)), 1);
	CHECK(rec[0] && lstat(rec, &st) == 0 && S_ISREG(st.st_mode));
	CHECK_EQ_U64(st.st_mode & 07777, 0600);
	/* newer: accepted and recorded */
	CHECK(rollback_check(dir, key, 1700000100, sha_b, false, why,
			     sizeof(why)) == 0);
	/* older, another artifact: refused, naming both times */
	CHECK(rollback_check(dir, key, 1700000000, sha_a, false, why,
			     sizeof(why)) == -EKEYREJECTED);
	CHECK(strstr(why, "2023-11-14T22:13:20Z") != NULL);
	CHECK(strstr(why, "2023-11-14T22:15:00Z") != NULL);
	CHECK(strstr(why, "allow_rollback") != NULL);
	CHECK(strstr(why, key) != NULL);
	/* allowed: accepted, and the record still says the newer one */
	CHECK(rollback_check(dir, key, 1700000000, sha_a, true, why,
			     sizeof(why)) == 0);
	CHECK(rollback_check(dir, key, 1700000050, sha_c, false, why,
			     sizeof(why)) == -EKEYREJECTED);
	/* the newest artifact again, however old its time: not a rollback */
	CHECK(rollback_check(dir, key, 5, sha_b, false, why, sizeof(why)) == 0);
	CHECK(rollback_check(dir, key, 1700000100, sha_c, false, why,
			     sizeof(why)) == 0);
	/* another name has its own record */
	CHECK(rollback_check(dir, "25.05/bookworm/x.tar.gz", 1, sha_a, false,
			     why, sizeof(why)) == 0);
	CHECK(rollback_check(dir, key, 1700000099, sha_a, false, why,
			     sizeof(why)) == -EKEYREJECTED);
	/* nothing to compare with: accepted */
	CHECK(rollback_check(NULL, key, 1, sha_a, false, why, sizeof(why)) ==
	      0);
	CHECK(rollback_check(dir, key, 0, sha_a, false, why, sizeof(why)) == 0);
}

static void test_symlink(const char *dir)
{
	char why[1024] = "", rec[PATH_MAX], target[PATH_MAX + 16], buf[64];
	const char *key = "http://h/other.tar";
	struct stat st;
	FILE *f;
	int n;

	snprintf(target, sizeof(target), "%s.target", dir);
	f = fopen(target, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("planted\n", f);
		fclose(f);
	}
	/* learn the record's name, then plant a link in its place */
	CHECK(rollback_check(dir, key, 100, sha_a, false, why, sizeof(why)) ==
	      0);
	n = only_record(dir, rec, sizeof(rec));
	CHECK_EQ_U64(n, 1);
	unlink(rec);
	CHECK(symlink(target, rec) == 0);
	/* not believed (an older one passes), replaced by a file of ours */
	CHECK(rollback_check(dir, key, 50, sha_b, false, why, sizeof(why)) ==
	      0);
	CHECK(lstat(rec, &st) == 0 && S_ISREG(st.st_mode));
	f = fopen(target, "r");
	CHECK(f && fgets(buf, sizeof(buf), f) && !strcmp(buf, "planted\n"));
	if (f)
		fclose(f);
	CHECK(rollback_check(dir, key, 49, sha_a, false, why, sizeof(why)) ==
	      -EKEYREJECTED);
	unlink(target);
	unlink(rec);
}

/* A record that does not parse is not believed, and is rewritten. */
static void test_malformed(const char *dir)
{
	static const char *bad[] = {
	    "sffs-rollback 1\n100\n",
	    "sffs-rollback 1\n100 abc\n",
	    "sffs-rollback 1\n-5 "
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    "\n",
	    "sffs-rollback 2\n100 "
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    "\n",
	};
	char why[1024] = "", rec[PATH_MAX];
	const char *key = "http://h/m.tar";
	size_t i;
	FILE *f;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(rollback_check(dir, key, 100, sha_a, false, why,
				     sizeof(why)) == 0);
		CHECK_EQ_U64(only_record(dir, rec, sizeof(rec)), 1);
		f = fopen(rec, "w");
		CHECK(f != NULL);
		if (f) {
			fputs(bad[i], f);
			fclose(f);
		}
		/* older, but the record says nothing: accepted, rewritten */
		CHECK(rollback_check(dir, key, 50, sha_b, false, why,
				     sizeof(why)) == 0);
		CHECK(rollback_check(dir, key, 49, sha_a, false, why,
				     sizeof(why)) == -EKEYREJECTED);
		unlink(rec);
	}
}

int main(void)
{
	const char *base = getenv("SFFS_TEST_TMP");
	char dir[PATH_MAX], rec[PATH_MAX];

	if (base)
		mkdir(base, 0755);
	snprintf(dir, sizeof(dir), "%s/test_rollback.%d", base ? base : "/tmp",
		 (int)getpid());
	CHECK(mkdir(dir, 0700) == 0);
	test_order(dir);
	/* one record a name, nothing temporary left behind */
	CHECK_EQ_U64(only_record(dir, rec, sizeof(rec)), 2);
	while (only_record(dir, rec, sizeof(rec)) && rec[0])
		unlink(rec);
	test_symlink(dir);
	test_malformed(dir);
	rmdir(dir);
	return check_done();
}
