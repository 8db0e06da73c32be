/* SPDX-License-Identifier: MIT */
/*
 * test_catalog_core.c - the catalog beyond its pure parsers, over a
 * local base built from the fixture (SFFS_FIXTURE_DIR): attach and
 * release on catalog threads, catalog_attach_wait's deadline and cancel,
 * the hiding rules of listings, and a buildcache listing of 10,000
 * packages made here (verify=off), with its CPU time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "check.h"
#include "sffs/buildcache.h"
#include "sffs/catalog.h"
#include "sffs/fetch.h"
#include "sffs/log.h"

#define TARBALL "slurm-22.05-bookworm-software.tar.gz"
/* catalog_i.h's S3_LIST_PAGES_MAX, which this test does not include */
#define S3_LIST_PAGES_MAX_T 64

static char root[4096], tarball[4096];

static void run(const char *cmd)
{
	int st = system(cmd); // NOLINT(cert-env33-c): a test helper

	if (st != 0)
		fprintf(stderr, "failed (%d): %s\n", st, cmd);
	CHECK(st == 0);
}

/* root/<version>/bookworm/slurm-<version>-bookworm-software.tar.gz, a
 * link to the fixture's tarball. */
static void publish(const char *version)
{
	char cmd[16384];

	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s/%s/bookworm' && ln -sf '%s' "
		 "'%s/%s/bookworm/slurm-%s-bookworm-software.tar.gz'",
		 root, version, tarball, root, version, version);
	run(cmd);
}

static void unpublish(const char *version)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s'", root, version);
	run(cmd);
}

static struct catalog *open_catalog(unsigned release_after_s)
{
	struct catalog_opts o;
	char err[512], base[4200];
	struct catalog *c;

	catalog_opts_default(&o);
	snprintf(base, sizeof(base), "file://%s/", root);
	o.base = base;
	o.versions = "22.05:23.02:24.05";
	o.toolchains = "bookworm";
	o.release_after_s = release_after_s;
	o.attach_retry_s = 1;
	o.oc.index = "none";	 /* every attach is a streaming pass */
	o.oc.cache_dir = "none"; /* so that it takes a while */
	c = catalog_new(&o, err, sizeof(err));
	if (!c)
		fprintf(stderr, "catalog_new: %s\n", err);
	CHECK(c != NULL);
	return c;
}

static uint64_t ms(uint64_t ns)
{
	return ns / 1000000u;
}

/* The attach runs on a catalog thread: a 1 ms deadline ends the wait,
 * the attach goes on, and the next caller finds it done. */
static void test_deadline(struct catalog *c)
{
	struct catalog_entry *e = catalog_find(c, "22.05", "bookworm", false);
	struct catalog_stats st;
	struct archive *ar = NULL;
	uint32_t epoch;
	uint64_t t0;
	int rc;

	CHECK(e != NULL);
	if (!e)
		return;
	t0 = fetch_now_ns();
	rc = catalog_attach_wait(c, e, fetch_now_ns() + 1000000u, NULL, &ar,
				 &epoch);
	printf("deadline 1 ms: rc %d after %" PRIu64 " ms\n", rc,
	       ms(fetch_now_ns() - t0));
	CHECK_EQ_U64(rc, -ETIMEDOUT);
	CHECK(fetch_now_ns() - t0 < 500000000u);
	/* the default deadline after a wait that timed out: 100 ms (the
	 * kernel queues lookups of one name behind each other) */
	t0 = fetch_now_ns();
	rc = catalog_attach(c, e, &ar, &epoch);
	printf("default deadline, overdue attach: rc %d after %" PRIu64 " ms\n",
	       rc, ms(fetch_now_ns() - t0));
	CHECK_EQ_U64(rc, -ETIMEDOUT);
	CHECK(fetch_now_ns() - t0 < 1000000000u);
	t0 = fetch_now_ns();
	rc = catalog_attach_wait(c, e, t0 + 60000000000ull, NULL, &ar, &epoch);
	printf("then: rc %d after %" PRIu64 " ms more\n", rc,
	       ms(fetch_now_ns() - t0));
	CHECK_EQ_U64(rc, 0);
	CHECK(ar != NULL);
	catalog_get_stats(c, &st);
	CHECK_EQ_U64(st.attaches, 1); /* the same attach, not a second */
	CHECK_EQ_U64(st.attached, 1);
	catalog_put(c, e);
}

struct waiter {
	struct catalog *c;
	struct catalog_entry *e;
	atomic_bool cancel;
	int rc;
	uint64_t done_ns;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	struct archive *ar;
	uint32_t epoch;

	w->rc = catalog_attach_wait(w->c, w->e, fetch_now_ns() + 60000000000ull,
				    &w->cancel, &ar, &epoch);
	w->done_ns = fetch_now_ns();
	if (!w->rc)
		catalog_put(w->c, w->e);
	return NULL;
}

/* A cancelled wait ends at once with -EINTR: already cancelled, or
 * cancelled while the attach runs (catalog_wake). */
static void test_cancel(struct catalog *c)
{
	struct catalog_entry *e = catalog_find(c, "23.02", "bookworm", false);
	struct waiter w = {.c = c, .e = e};
	struct archive *ar;
	uint64_t t0;
	uint32_t epoch;
	pthread_t th;

	CHECK(e != NULL);
	if (!e)
		return;
	atomic_init(&w.cancel, true);
	CHECK_EQ_U64(catalog_attach_wait(c, e, 0, &w.cancel, &ar, &epoch),
		     -EINTR);
	atomic_store(&w.cancel, false);
	CHECK(pthread_create(&th, NULL, wait_thread, &w) == 0);
	usleep(20000); /* well inside the attach's streaming pass */
	t0 = fetch_now_ns();
	atomic_store(&w.cancel, true);
	catalog_wake(c);
	pthread_join(th, NULL);
	printf("cancelled: rc %d, %" PRIu64 " ms after the wake\n", w.rc,
	       ms(w.done_ns - t0));
	CHECK_EQ_U64(w.rc, -EINTR);
	CHECK(w.done_ns - t0 < 200000000u);
	/* the attach went on: a later wait finds it */
	CHECK_EQ_U64(catalog_attach_wait(c, e, 0, NULL, &ar, &epoch), 0);
	catalog_put(c, e);
}

/* Missing from one refresh: still shown; from two in a row: hidden. An
 * entry in use is never hidden. */
static void test_hiding(struct catalog *c)
{
	struct catalog_entry *used =
	    catalog_find(c, "22.05", "bookworm", false);
	struct catalog_entry *idle =
	    catalog_find(c, "24.05", "bookworm", false);
	struct archive *ar;
	uint32_t epoch;

	CHECK(used && idle);
	if (!used || !idle)
		return;
	CHECK_EQ_U64(catalog_attach(c, used, &ar, &epoch), 0);
	unpublish("22.05");
	unpublish("24.05");
	CHECK_EQ_U64(catalog_refresh(c), 0);
	CHECK(catalog_entry_present(idle)); /* one miss */
	CHECK(catalog_entry_present(used));
	CHECK_EQ_U64(catalog_refresh(c), 0);
	CHECK(!catalog_entry_present(idle)); /* two in a row */
	CHECK(catalog_entry_present(used));  /* in use */
	CHECK(catalog_version(c, "24.05", false) < 0);
	CHECK(catalog_version(c, "22.05", false) >= 0);
	publish("24.05");
	CHECK_EQ_U64(catalog_refresh(c), 0);
	CHECK(catalog_entry_present(idle));
	catalog_put(c, used);
	publish("22.05");
}

/* Unused for release_after_s: released, on a catalog thread. */
static void test_release(struct catalog *c)
{
	struct catalog_stats st;
	uint64_t t0 = fetch_now_ns();
	size_t n;

	sleep(2);
	n = catalog_idle(c, NULL, NULL);
	CHECK(n >= 2);
	do {
		usleep(20000);
		catalog_get_stats(c, &st);
	} while (st.attached && fetch_now_ns() - t0 < 10000000000ull);
	printf("released %zu, %" PRIu64 " releases\n", n, st.releases);
	CHECK_EQ_U64(st.attached, 0);
	CHECK(st.releases >= 2);
}

/* ---- a buildcache of n packages, made here (v3, unsigned) ---- */

/* Writes len bytes to dir/rel, making the directories on the way. */
static bool put_file(const char *dir, const char *rel, const char *data,
		     size_t len)
{
	char path[8192];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *p = path + strlen(dir) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	f = fopen(path, "wb");
	if (!f)
		return false;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok;
}

static void sha_hex(const void *p, size_t len, char out[65])
{
	unsigned char d[SHA256_DIGEST_LENGTH];

	SHA256(p, len, d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* 32 base32 characters from i: the package's DAG hash. */
static void hash_of(size_t i, char out[33])
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

	for (int k = 0; k < 32; k++)
		out[k] = b32[(i >> (5 * (k % 6))) % 32 ^ (k < 6 ? 0 : k % 32)];
	out[32] = '\0';
}

static char *manifest_of(const char *media, const char *sha, size_t len)
{
	char *m = NULL;

	if (asprintf(&m,
		     "{\"version\":3,\"data\":[{\"contentLength\":%zu,"
		     "\"mediaType\":\"%s\",\"compression\":\"%s\","
		     "\"checksumAlgorithm\":\"sha256\",\"checksum\":\"%s\"}]}",
		     len, media, strstr(media, "db") ? "none" : "gzip",
		     sha) < 0)
		return NULL;
	return m;
}

static bool make_bc(const char *dir, size_t n)
{
	size_t cap = n * 320 + 256, len = 0, i;
	char *db = malloc(cap), *m, rel[512], sha[65], h[33];
	struct bc_spec s;
	bool ok = db != NULL;

	len += (size_t)snprintf(
	    db, cap, "{\"database\":{\"version\":\"8\",\"installs\":{");
	for (i = 0; ok && i < n; i++) {
		hash_of(i, h);
		len += (size_t)snprintf(
		    db + len, cap - len,
		    "%s\"%s\":{\"spec\":{\"name\":\"pkg%zu\",\"version\":"
		    "\"1.0\",\"arch\":{\"platform\":\"linux\",\"platform_os\":"
		    "\"debian12\",\"target\":\"x86_64\"},\"hash\":\"%s\"},"
		    "\"ref_count\":0,\"in_buildcache\":true}",
		    i ? "," : "", h, i, h);
		memset(&s, 0, sizeof(s));
		snprintf(s.name, sizeof(s.name), "pkg%zu", i);
		snprintf(s.version, sizeof(s.version), "1.0");
		snprintf(s.hash, sizeof(s.hash), "%s", h);
		sha_hex(h, 32, sha); /* a blob that need not exist */
		m = manifest_of(BC_MEDIA_TARBALL, sha, 1000);
		ok = m && !bc_v3_spec_manifest_path(&s, rel, sizeof(rel)) &&
		     put_file(dir, rel, m, strlen(m));
		free(m);
	}
	len += (size_t)snprintf(db + len, cap - len, "}}}");
	ok = ok && len < cap;
	if (ok) {
		sha_hex(db, len, sha);
		m = manifest_of(BC_MEDIA_INDEX, sha, len);
		ok = m && !bc_v3_blob_path(sha, rel, sizeof(rel)) &&
		     put_file(dir, rel, db, len) &&
		     put_file(dir, "v3/manifests/index/index.manifest.json", m,
			      strlen(m)) &&
		     put_file(dir, "v3/layout.json", "{\"version\":3}", 13);
		free(m);
	}
	free(db);
	return ok;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* A layout=buildcache catalog of n packages, listed (verify=off): every
 * package an entry; wall and CPU time printed. */
static void list_bc(const char *tmp, size_t n, double *wall, double *cpu)
{
	char dir[4200], base[4300], cmd[8500], err[512];
	struct catalog_opts o;
	struct catalog *c;
	uint64_t t0;
	double c0;

	snprintf(dir, sizeof(dir), "%s/bc%zu", tmp, n);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	run(cmd);
	mkdir(dir, 0755);
	CHECK(make_bc(dir, n));
	catalog_opts_default(&o);
	snprintf(base, sizeof(base), "file://%s/", dir);
	o.base = base;
	o.layout = "buildcache";
	c = catalog_new(&o, err, sizeof(err));
	CHECK(c != NULL);
	if (!c)
		return;
	t0 = fetch_now_ns();
	c0 = cpu_s();
	CHECK_EQ_U64(catalog_refresh(c), 0);
	*wall = (double)(fetch_now_ns() - t0) / 1e9;
	*cpu = cpu_s() - c0;
	CHECK_EQ_U64(catalog_all(c, NULL, 0), n);
	CHECK(catalog_find(c, "pkg7-1.0-", "", false) == NULL);
	printf("buildcache of %zu packages listed in %.2f s wall, %.2f s "
	       "CPU\n",
	       n, *wall, *cpu);
	catalog_free(c);
	run(cmd);
}

static void test_bc_scale(void)
{
	const char *tmp = getenv("SFFS_TEST_TMP");
	double w1 = 0, c1 = 0, w10 = 0, c10 = 0;

	if (!tmp) {
		CHECK(!"SFFS_TEST_TMP is needed");
		return;
	}
	mkdir(tmp, 0755);
	list_bc(tmp, 1000, &w1, &c1);
	list_bc(tmp, 10000, &w10, &c10);
	printf("10,000 / 1,000 packages: %.1fx wall, %.1fx CPU\n",
	       w1 > 0 ? w10 / w1 : 0, c1 > 0 ? c10 / c1 : 0);
}

static void test_attach(void)
{
	const char *fix = getenv("SFFS_FIXTURE_DIR");
	const char *tmp = getenv("SFFS_TEST_TMP");
	struct catalog *c;

	if (!fix || !tmp) {
		CHECK(!"SFFS_FIXTURE_DIR and SFFS_TEST_TMP are needed");
		return;
	}
	snprintf(tarball, sizeof(tarball), "%s/" TARBALL, fix);
	CHECK(access(tarball, R_OK) == 0);
	mkdir(tmp, 0755);
	snprintf(root, sizeof(root), "%s/catalog-core", tmp);
	unpublish("");
	publish("22.05");
	publish("23.02");
	publish("24.05");
	c = open_catalog(1);
	if (!c)
		return;
	CHECK_EQ_U64(catalog_refresh(c), 0);
	CHECK_EQ_U64(catalog_versions(c, NULL, 0), 3);
	CHECK(catalog_latest(c) && !strcmp(catalog_latest(c), "24.05"));
	test_deadline(c);
	test_cancel(c);
	test_hiding(c);
	test_release(c);
	catalog_free(c);
}

/* ---- a hostile S3 listing: bounded pages, keys and tokens ---- */

/* A ListObjectsV2 endpoint on 127.0.0.1 whose every page is truncated:
 * MODE "loop" hands back the same token, "fresh" a new one each time,
 * "empty" an empty one, "keys" 10,000 keys a page. The first page of a listing
 * holds the one artifact of the seed template, 22.05/bookworm; the others
 * nothing (or the keys). */
static const char hostile_s3[] =
    "import http.server, sys, urllib.parse\n"
    "mode, n = sys.argv[2], [0]\n"
    "ns = 'http://s3.amazonaws.com/doc/2006-03-01/'\n"
    "first = {'': '<CommonPrefixes><Prefix>22.05/</Prefix></CommonPrefixes>',\n"
    "  '22.05/': '<CommonPrefixes><Prefix>22.05/bookworm/</Prefix>'\n"
    "            '</CommonPrefixes>',\n"
    "  '22.05/bookworm/': '<Contents><Key>22.05/bookworm/slurm-22.05-'\n"
    "            'bookworm-software.tar.gz</Key><Size>1</Size></Contents>'}\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def log_message(self, *a): pass\n"
    "    def do_GET(self):\n"
    "        q = "
    "urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)\n"
    "        p = q.get('prefix', [''])[0]\n"
    "        n[0] += 1\n"
    "        tok = 'same' if mode == 'loop' else 't%d' % n[0]\n"
    "        tok = '' if mode == 'empty' else tok\n"
    "        body = ''\n"
    "        if 'continuation-token' not in q:\n"
    "            body = first.get(p, '')\n"
    "        if mode == 'keys':\n"
    "            body = ''.join('<Contents><Key>k%d-%d</Key><Size>1</Size>'\n"
    "                           '</Contents>' % (n[0], i) for i in "
    "range(10000))\n"
    "        x = ('<?xml version=\"1.0\"?><ListBucketResult xmlns=\"%s\">'\n"
    "             '<IsTruncated>true</IsTruncated><NextContinuationToken>%s'\n"
    "             '</NextContinuationToken>%s</ListBucketResult>'\n"
    "             % (ns, tok, body)).encode()\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Length', str(len(x)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(x)\n"
    "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
    "open(sys.argv[1] + '.tmp', 'w').write(str(s.server_address[1]))\n"
    "import os; os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "s.serve_forever()\n";

/* Starts hostile_s3 in mode; its port, or 0. *pid for kill. */
static int hostile_start(const char *dir, const char *mode, long *pid)
{
	char path[4200], cmd[8600];
	FILE *f;
	int port = 0, i;

	snprintf(path, sizeof(path), "%s/hostile_s3.py", dir);
	f = fopen(path, "w");
	if (!f || fputs(hostile_s3, f) < 0) {
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "rm -f '%s/port'; python3 '%s' '%s/port' %s >/dev/null 2>&1 & "
		 "echo $! >'%s/pid'",
		 dir, path, dir, mode, dir);
	run(cmd);
	for (i = 0; i < 100 && !port; i++) {
		snprintf(path, sizeof(path), "%s/port", dir);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		if (!port)
			usleep(100000);
	}
	snprintf(path, sizeof(path), "%s/pid", dir);
	f = fopen(path, "r");
	*pid = 0;
	if (f) {
		if (fscanf(f, "%ld", pid) != 1)
			*pid = 0;
		fclose(f);
	}
	return port;
}

/* One refresh against mode: its rc, the requests and entries known. */
static int hostile_refresh(const char *dir, const char *mode,
			   struct catalog_stats *st)
{
	struct catalog_opts o;
	char err[512], endpoint[64];
	struct catalog *c;
	long pid;
	int port = hostile_start(dir, mode, &pid), rc = -1;

	memset(st, 0, sizeof(*st));
	CHECK(port > 0);
	if (port <= 0)
		goto out;
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
	catalog_opts_default(&o);
	o.base = "s3://bucket/";
	o.oc.fo.s3_endpoint = endpoint;
	o.oc.cache_dir = "none";
	c = catalog_new(&o, err, sizeof(err));
	if (!c)
		fprintf(stderr, "catalog_new: %s\n", err);
	CHECK(c != NULL);
	if (c) {
		rc = catalog_refresh(c);
		catalog_get_stats(c, st);
		catalog_free(c);
	}
out:
	if (pid > 0)
		kill((pid_t)pid, SIGTERM);
	return rc;
}

static void test_hostile_listing(void)
{
	const char *tmp = getenv("SFFS_TEST_TMP");
	struct catalog_stats st;
	char dir[4096];

	if (!tmp) {
		CHECK(!"SFFS_TEST_TMP is needed");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/hostile-s3", tmp);
	mkdir(tmp, 0755);
	mkdir(dir, 0755);
	/* a token handed back: each of the 3 listings stops at its 2nd
	 * page; the artifact on the first pages is kept */
	CHECK_EQ_U64(hostile_refresh(dir, "loop", &st), -E2BIG);
	CHECK_EQ_U64(st.list_requests, 3 * 2);
	CHECK_EQ_U64(st.known, 1);
	/* new tokens for ever: 64 pages a listing */
	CHECK_EQ_U64(hostile_refresh(dir, "fresh", &st), -E2BIG);
	CHECK_EQ_U64(st.list_requests, 3 * S3_LIST_PAGES_MAX_T);
	CHECK_EQ_U64(st.known, 1);
	/* truncated with an empty token: the parser refuses that page (a
	 * listing error, redone soon), the first request of the walk */
	CHECK_EQ_U64(hostile_refresh(dir, "empty", &st), -EINVAL);
	CHECK_EQ_U64(st.list_requests, 1);
	CHECK_EQ_U64(st.known, 0);
	/* 10,000 keys a page: the refresh stops at 100,000 */
	CHECK_EQ_U64(hostile_refresh(dir, "keys", &st), -E2BIG);
	CHECK_EQ_U64(st.list_requests, 11);
	CHECK_EQ_U64(st.known, 0);
	printf("hostile listings: loop, fresh tokens and 10,000 keys a page "
	       "stopped at their bounds\n");
}

int main(void)
{
	test_attach();
	test_bc_scale();
	test_hostile_listing();
	return check_done();
}
