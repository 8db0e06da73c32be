/* SPDX-License-Identifier: MIT */
/*
 * test_open.c - the open policy (open/open.c) over file:// copies of the
 * fixture and over tests/lib/faultserver.py on loopback: which way was
 * chosen (cache, published index, streaming pass), a cached index of
 * another artifact not used, a corrupt published index falling back to
 * the streaming pass, a denied index said with what to do, and errno
 * classes kept (a network errno stays one; integrity is not "missing").
 *
 * Needs the fixture ($SFFS_FIXTURE_DIR, scripts/make-fixture.sh): without
 * it the test fails. Scratch files go under $SFFS_TEST_TMP (or /tmp).
 */
#include "check.h"

#include "sffs/archive.h"
#include "sffs/fetch.h"
#include "sffs/open.h"
#include "sffs/tree.h"
#include "sffs/trust.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#define FIXTURE "slurm-22.05-bookworm-software"
#define PROBE_FILE "view/bin/sinfo"

struct env {
	char fx[PATH_MAX];     /* the fixture directory */
	char tmp[PATH_MAX];    /* scratch */
	char a[PATH_MAX + 16]; /* the .tar.gz copy */
	char b[PATH_MAX + 16]; /* the .tar.zst copy: another artifact */
	pid_t fault;
	int fault_port;
};

/* ---- helpers ------------------------------------------------------------ */

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;
	int rc = in && out ? 0 : -1;

	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = -1;
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		rc = -1;
	return rc;
}

/* n bytes of xorshift noise (no format's magic) into path. */
static int write_noise(const char *path, size_t n)
{
	FILE *fp = fopen(path, "wb");
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int rc = fp ? 0 : -1;

	for (size_t i = 0; fp && i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (fputc((int)(x >> 56), fp) == EOF)
			rc = -1;
	}
	if (fp && fclose(fp) != 0)
		rc = -1;
	return rc;
}

/* XORs the byte at off of path with 0x55. */
static int flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR), rc = -1;
	unsigned char c;

	if (fd >= 0 && pread(fd, &c, 1, off) == 1) {
		c ^= 0x55;
		rc = pwrite(fd, &c, 1, off) == 1 ? 0 : -1;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The one *.sfidx in dir, into out; 0 or -1. */
static int find_index(const char *dir, char *out, size_t outlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	while (d && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n > 6 && !strcmp(de->d_name + n - 6, ".sfidx")) {
			snprintf(out, outlen, "%s/%s", dir, de->d_name);
			found++;
		}
	}
	if (d)
		closedir(d);
	return found == 1 ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void cleanup(int status, void *arg)
{
	struct env *e = arg;

	(void)status;
	if (e->fault > 0) {
		kill(e->fault, SIGTERM);
		waitpid(e->fault, NULL, 0);
	}
	if (e->tmp[0])
		nftw(e->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int start_fault(struct env *e)
{
	char script[PATH_MAX + 32], line[32] = "";
	const char *src = getenv("SFFS_SRC");
	int pfd[2];
	FILE *fp;

	snprintf(script, sizeof(script), "%s/tests/lib/faultserver.py",
		 src ? src : ".");
	if (pipe(pfd) < 0)
		return -1;
	e->fault = fork();
	if (e->fault == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], STDOUT_FILENO);
		execlp("python3", "python3", script, e->a, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	fp = fdopen(pfd[0], "r");
	if (!fp)
		return -1;
	if (!fgets(line, sizeof(line), fp))
		line[0] = '\0';
	fclose(fp);
	e->fault_port = atoi(line);
	return e->fault_port > 0 ? 0 : -1;
}

static int setup(struct env *e)
{
	const char *fx = getenv("SFFS_FIXTURE_DIR");
	const char *base = getenv("SFFS_TEST_TMP");
	char from[PATH_MAX + 64];

	if (!fx || !fx[0]) {
		fprintf(stderr, "SFFS_FIXTURE_DIR is not set: this test needs "
				"the fixture (scripts/make-fixture.sh)\n");
		return -1;
	}
	snprintf(e->fx, sizeof(e->fx), "%s", fx);
	mkdir(base ? base : "/tmp", 0755);
	snprintf(e->tmp, sizeof(e->tmp), "%s/test_open-XXXXXX",
		 base ? base : "/tmp");
	if (!mkdtemp(e->tmp)) {
		e->tmp[0] = '\0';
		return -1;
	}
	snprintf(e->a, sizeof(e->a), "%s/a.tar.gz", e->tmp);
	snprintf(e->b, sizeof(e->b), "%s/b.tar.zst", e->tmp);
	snprintf(from, sizeof(from), "%s/" FIXTURE ".tar.gz", fx);
	if (copy_file(from, e->a) < 0) {
		fprintf(stderr, "cannot copy the fixture %s\n", from);
		return -1;
	}
	snprintf(from, sizeof(from), "%s/" FIXTURE ".tar.zst", fx);
	return copy_file(from, e->b);
}

static void quick_cfg(struct open_cfg *cfg, const char *source,
		      const char *index, const char *cache_dir)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->source = source;
	cfg->index = index;
	cfg->cache_dir = cache_dir;
	cfg->quiet = true;
	fetch_opts_default(&cfg->fo);
	cfg->fo.retries = 2;
	cfg->fo.backoff_ms = 10;
	cfg->fo.backoff_max_ms = 50;
}

/* artifact_open with stderr going to a file whose text goes to *log. */
static int open_logged(struct env *e, const struct open_cfg *cfg,
		       struct opened *o, char **log)
{
	char path[PATH_MAX + 16];
	struct archive_opts ao;
	int saved = dup(STDERR_FILENO), fd, rc;
	FILE *fp;

	archive_opts_default(&ao);
	snprintf(path, sizeof(path), "%s/stderr.txt", e->tmp);
	fflush(stderr);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	rc = artifact_open(cfg, &ao, o);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	*log = calloc(1, 65536);
	fp = fopen(path, "r");
	if (fp && *log)
		(*log)[fread(*log, 1, 65535, fp)] = '\0';
	if (fp)
		fclose(fp);
	return rc;
}

/* Opens cfg, expects rc (and, when 0, the way `how`), and that
 * PROBE_FILE reads byte for byte as GNU tar extracted it. Returns the
 * log (free it). */
static char *expect_open(struct env *e, const struct open_cfg *cfg, int rc,
			 const char *how)
{
	char ref[PATH_MAX + 64], *log = NULL;
	static char want[1 << 20], got[1 << 20];
	struct opened o;
	uint32_t node;
	FILE *fp;
	size_t n;
	int got_rc = open_logged(e, cfg, &o, &log);

	CHECK(got_rc == rc);
	if (got_rc != rc || (rc == 0 && strcmp(o.how, how) != 0))
		fprintf(stderr,
			"  %s (index %s, cache %s): rc %d (want %d), "
			"how %s (want %s)\n%s",
			cfg->source, cfg->index ? cfg->index : "default",
			cfg->cache_dir ? cfg->cache_dir : "default", got_rc, rc,
			got_rc == 0 ? o.how : "-", how ? how : "-",
			log ? log : "");
	if (got_rc != 0 || rc != 0)
		goto out;
	CHECK(strcmp(o.how, how) == 0);
	snprintf(ref, sizeof(ref), "%s/extract/" PROBE_FILE, e->fx);
	fp = fopen(ref, "rb");
	n = fp ? fread(want, 1, sizeof(want), fp) : 0;
	if (fp)
		fclose(fp);
	CHECK(n > 0);
	CHECK(tree_resolve(archive_tree(o.ar), PROBE_FILE, &node) == 0);
	CHECK(archive_read(o.ar, node, 0, sizeof(got), got) == (ssize_t)n);
	CHECK(memcmp(want, got, n) == 0);
out:
	artifact_close(&o);
	return log;
}

static void expect(struct env *e, const struct open_cfg *cfg, int rc,
		   const char *how)
{
	free(expect_open(e, cfg, rc, how));
}

/* ---- tests: local copies ------------------------------------------------ */

/* The streaming pass keeps its index in the cache; the next open uses it;
 * the same index published beside the artifact is used without a cache;
 * a corrupt published one falls back to the streaming pass. */
static void test_ways(struct env *e)
{
	char cache[PATH_MAX + 16], idx[PATH_MAX + 64], pub[PATH_MAX + 32];
	struct open_cfg cfg;
	char *log;

	snprintf(cache, sizeof(cache), "%s/cache", e->tmp);
	quick_cfg(&cfg, e->a, NULL, cache);
	expect(e, &cfg, 0, "indexed");
	CHECK(find_index(cache, idx, sizeof(idx)) == 0);
	expect(e, &cfg, 0, "cache");

	snprintf(pub, sizeof(pub), "%s.sfidx", e->a);
	CHECK(copy_file(idx, pub) == 0);
	quick_cfg(&cfg, e->a, NULL, "none");
	expect(e, &cfg, 0, "published index");
	/* index=none: the published index is not even looked at */
	quick_cfg(&cfg, e->a, "none", "none");
	expect(e, &cfg, 0, "indexed");

	/* a flipped byte in the published index's header: refused, and the
	 * artifact is indexed instead */
	CHECK(flip_byte(pub, 100) == 0);
	quick_cfg(&cfg, e->a, NULL, "none");
	log = expect_open(e, &cfg, 0, "indexed");
	CHECK(log && strstr(log, "indexing the artifact instead"));
	free(log);
	CHECK(remove(pub) == 0);
}

/* A cached index under the artifact's cache name that describes another
 * artifact (here the .tar.gz's index at the .tar.zst's name) is not
 * used: the artifact is indexed again. */
static void test_stale_cache(struct env *e)
{
	char ca[PATH_MAX + 16], cb[PATH_MAX + 16];
	char ia[PATH_MAX + 64], ib[PATH_MAX + 64];
	struct open_cfg cfg;

	snprintf(ca, sizeof(ca), "%s/cache", e->tmp);
	snprintf(cb, sizeof(cb), "%s/cache-b", e->tmp);
	quick_cfg(&cfg, e->b, NULL, cb);
	expect(e, &cfg, 0, "indexed");
	CHECK(find_index(ca, ia, sizeof(ia)) == 0);
	CHECK(find_index(cb, ib, sizeof(ib)) == 0);
	CHECK(copy_file(ia, ib) == 0);
	expect(e, &cfg, 0, "indexed");
	/* and the streaming pass put its own index back */
	expect(e, &cfg, 0, "cache");
}

/* Integrity: a manifest's SHA-256 the artifact does not have is EBADMSG;
 * a corrupt tarball is refused by the streaming pass, with an errno
 * that is neither "missing" nor a network one. */
static void test_integrity(struct env *e)
{
	static const unsigned char zero[32];
	char bad[PATH_MAX + 16];
	struct open_cfg cfg;
	struct stat st;
	struct opened o;
	char *log = NULL;
	int rc;

	quick_cfg(&cfg, e->a, "none", "none");
	cfg.expect_sha256 = zero;
	expect(e, &cfg, -EBADMSG, NULL);

	snprintf(bad, sizeof(bad), "%s/bad.tar.gz", e->tmp);
	CHECK(copy_file(e->a, bad) == 0 && stat(bad, &st) == 0);
	CHECK(flip_byte(bad, st.st_size / 2) == 0);
	quick_cfg(&cfg, bad, "none", "none");
	rc = open_logged(e, &cfg, &o, &log);
	/* EIO today; EBADMSG once the archive layer says integrity */
	CHECK(rc == -EIO || rc == -EBADMSG);
	if (rc != -EIO && rc != -EBADMSG)
		fprintf(stderr, "  corrupt tarball: %d\n%s", rc, log);
	artifact_close(&o);
	free(log);

	/* not an archive at all: EIO ("not a usable archive"), whatever the
	 * archive layer calls it, never a network or "missing" errno */
	snprintf(bad, sizeof(bad), "%s/garbage.tar.gz", e->tmp);
	CHECK(write_noise(bad, 300000) == 0);
	quick_cfg(&cfg, bad, "none", "none");
	expect(e, &cfg, -EIO, NULL);
}

/* ---- tests: the budget of a pass nothing vouches for yet ------------------
 */

/* One ustar header of an empty file prefix/name into h[512]. */
static void ustar_empty(unsigned char h[512], const char *prefix,
			const char *name)
{
	unsigned sum = 0;
	int i;

	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	memcpy(h + 124, "00000000000", 12);
	memcpy(h + 136, "00000000000", 12);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	snprintf((char *)h + 345, 155, "%s", prefix);
	memset(h + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

/* n empty members with long names (100-character directories of 1000
 * members each, 99-character names), gzip'd at level 1: a few MB that
 * make a member tree of about 500 bytes a member. 0 or -1. */
static int write_many_members(const char *path, unsigned n)
{
	unsigned char h[512], zero[1024] = {0};
	char prefix[101], name[100];
	gzFile gz = gzopen(path, "wb1");
	unsigned i;
	int ok = gz != NULL;

	for (i = 0; ok && i < n; i++) {
		snprintf(prefix, sizeof(prefix), "%0100u", i / 1000);
		snprintf(name, sizeof(name), "%099u", i);
		ustar_empty(h, prefix, name);
		ok = gzwrite(gz, h, sizeof(h)) == (int)sizeof(h);
	}
	ok = ok && gzwrite(gz, zero, sizeof(zero)) == (int)sizeof(zero);
	if (gz && gzclose(gz) != Z_OK)
		ok = 0;
	return ok ? 0 : -1;
}

/* Under a digest to meet, a tar of 200,000 empty members with long names
 * (about 100 MB of member tree from a few MB) stops at its budget,
 * archive_unverified_mem(size), with a message; unverified (no digest,
 * no trust) the same bytes open. */
static void test_unverified_budget(struct env *e)
{
	static const unsigned char digest[32];
	char path[PATH_MAX + 16];
	struct open_cfg cfg;
	struct opened o;
	struct stat st;
	char *log = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/many.tar.gz", e->tmp);
	CHECK(write_many_members(path, 200000) == 0);
	CHECK(stat(path, &st) == 0);
	fprintf(
	    stderr, "many members: %lld bytes, budget %llu MiB\n",
	    (long long)st.st_size,
	    (unsigned long long)(archive_unverified_mem((uint64_t)st.st_size) >>
				 20));
	quick_cfg(&cfg, path, "none", "none");
	cfg.expect_sha256 = digest;
	rc = open_logged(e, &cfg, &o, &log);
	CHECK_EQ_U64(rc, -EIO);
	CHECK(log && strstr(log, "before the artifact is verified"));
	if (log && strstr(log, "before the artifact is verified"))
		fprintf(stderr, "  %s", strstr(log, "the streaming pass"));
	artifact_close(&o);
	free(log);

	quick_cfg(&cfg, path, "none", "none");
	rc = open_logged(e, &cfg, &o, &log);
	CHECK_EQ_U64(rc, 0);
	if (!rc) {
		char last[256];
		uint32_t node;

		snprintf(last, sizeof(last), "%0100u/%099u", 199u, 199999u);
		CHECK(tree_resolve(archive_tree(o.ar), last, &node) == 0);
	}
	artifact_close(&o);
	free(log);
}

/* ---- tests: over HTTP --------------------------------------------------- */

static void url(char *out, size_t len, struct env *e, const char *path)
{
	snprintf(out, len, "http://127.0.0.1:%d%s", e->fault_port, path);
}

static void test_http(struct env *e)
{
	char src[256], idx[256];
	struct open_cfg cfg;
	char *log;

	/* the published index is the tarball's bytes: not an index */
	url(src, sizeof(src), e, "/ok/a.tar.gz");
	quick_cfg(&cfg, src, NULL, "none");
	expect(e, &cfg, 0, "indexed");

	/* a denied index is said, with what to do, not taken as missing */
	url(idx, sizeof(idx), e, "/forbid/a.tar.gz.sfidx");
	quick_cfg(&cfg, src, idx, "none");
	log = expect_open(e, &cfg, 0, "indexed");
	CHECK(log && strstr(log, "access denied") &&
	      strstr(log, "-o index=none"));
	free(log);

	/* a 403 during the streaming pass is a throttle: retried */
	url(src, sizeof(src), e, "/deny/a.tar.gz");
	quick_cfg(&cfg, src, "none", "none");
	expect(e, &cfg, 0, "indexed");

	/* network errnos stay network errnos */
	url(src, sizeof(src), e, "/gone/a.tar.gz");
	quick_cfg(&cfg, src, "none", "none");
	expect(e, &cfg, -ENOENT, NULL);
	url(src, sizeof(src), e, "/down/a.tar.gz");
	quick_cfg(&cfg, src, "none", "none");
	log = expect_open(e, &cfg, -EIO, NULL);
	CHECK(log && strstr(log, "HTTP 503"));
	free(log);
	snprintf(src, sizeof(src), "http://127.0.0.1:1/a.tar.gz");
	quick_cfg(&cfg, src, "none", "none");
	cfg.fo.retries = 0;
	expect(e, &cfg, -ECONNREFUSED, NULL);
}

/* Under a trust set, a signature that is not one is a refusal
 * (EKEYREJECTED); a denied signature is not: EACCES, to try again. */
static void test_http_trust(struct env *e)
{
	struct trust *t = trust_new();
	struct open_cfg cfg;
	char src[256], *log;

	CHECK(t != NULL);
	if (!t)
		return;
	url(src, sizeof(src), e, "/ok/a.tar.gz");
	quick_cfg(&cfg, src, "none", "none");
	cfg.trust = t;
	expect(e, &cfg, -EKEYREJECTED, NULL);
	url(src, sizeof(src), e, "/noasc/a.tar.gz");
	quick_cfg(&cfg, src, "none", "none");
	cfg.trust = t;
	log = expect_open(e, &cfg, -EACCES, NULL);
	CHECK(log && strstr(log, "access denied"));
	free(log);
	trust_free(t);
}

/* Adoption is on once open: a new validator of the same size is served. */
static void test_adopt_on(struct env *e)
{
	struct timespec ts[2] = {{1600000000, 0}, {1600000000, 0}};
	struct archive_opts ao;
	struct fetch_stats st;
	struct open_cfg cfg;
	struct opened o;
	uint32_t node;
	char buf[4096];

	archive_opts_default(&ao);
	ao.blocks.seed_max = 0; /* the read must reach the file */
	quick_cfg(&cfg, e->a, "none", "none");
	CHECK(artifact_open(&cfg, &ao, &o) == 0);
	if (!o.ar)
		return;
	CHECK(utimensat(AT_FDCWD, e->a, ts, 0) == 0);
	CHECK(tree_resolve(archive_tree(o.ar), PROBE_FILE, &node) == 0);
	CHECK(archive_read(o.ar, node, 0, sizeof(buf), buf) ==
	      (ssize_t)sizeof(buf));
	fetch_get_stats(o.f, &st);
	CHECK_EQ_U64(st.adoptions, 1);
	artifact_close(&o);
}

int main(void)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e || on_exit(cleanup, e) != 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	CHECK(setup(e) == 0);
	CHECK(fetch_global_init() == 0);
	if (check_fail)
		return check_done();
	test_ways(e);
	test_stale_cache(e);
	test_integrity(e);
	test_unverified_budget(e);
	CHECK(start_fault(e) == 0);
	if (e->fault_port > 0) {
		test_http(e);
		test_http_trust(e);
	}
	test_adopt_on(e);
	fetch_global_cleanup();
	return check_done();
}
