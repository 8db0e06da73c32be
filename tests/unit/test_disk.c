/* SPDX-License-Identifier: MIT */
/*
 * test_disk.c - the disk tier of verified blocks (disk.h) on its own and
 * under a block store: put/get/verify, damaged and torn files never
 * served, stale temporary files removed, eviction to the low-water mark by
 * mtime, the count rebuilt by a new object on the same directory, two
 * objects on one directory, and a store that finds its blocks on disk
 * after a "restart" instead of the network; on the test's directory and
 * again on a tmpfs (/dev/shm), as on a diskless node.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "check.h"
#include "sffs/blocks.h"
#include "sffs/disk.h"
#include "sffs/log.h"

#define BLK 4096u

static char dir[512];

static void sha(const void *p, size_t n, unsigned char out[32])
{
	EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t k = 0; k < n; k++)
		p[k] = (unsigned char)(seed * 131u + k * 7u + (k >> 8));
}

/* The file of block idx, as disk.h documents the layout. */
static void block_path(const char *d, const unsigned char id[32], uint64_t idx,
		       char *out, size_t len)
{
	int n = snprintf(out, len, "%s/blocks/%02x/", d,
			 (unsigned)((id[0] + idx) % 256));

	for (int k = 0; k < 32; k++)
		n += snprintf(out + n, len - (size_t)n, "%02x", id[k]);
	snprintf(out + n, len - (size_t)n, "-%llu", (unsigned long long)idx);
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = {{t, 0}, {t, 0}};

	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

static int put_block(struct disk *d, const unsigned char id[32], uint64_t i)
{
	unsigned char buf[BLK];

	fill(buf, BLK, (unsigned)i);
	return disk_put(d, id, i, buf, BLK);
}

/* 0 when block i is there and right. */
static int get_block(struct disk *d, const unsigned char id[32], uint64_t i)
{
	unsigned char want[BLK], got[BLK], dg[32];
	int rc;

	fill(want, BLK, (unsigned)i);
	sha(want, BLK, dg);
	rc = disk_get(d, id, i, got, BLK, dg);
	if (!rc && memcmp(want, got, BLK))
		return -EIO;
	return rc;
}

static void sub_dir(const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", dir, name);
	CHECK(mkdir(out, 0700) == 0);
}

static void test_put_get(void)
{
	unsigned char id[32] = {1, 2, 3}, dg[32], buf[BLK];
	char d1[600], path[1024];
	struct disk_stats st;
	struct disk *d;
	FILE *f;

	sub_dir("putget", d1, sizeof(d1));
	d = disk_new(d1, 1u << 20);
	CHECK(d != NULL);
	if (!d)
		return;
	CHECK(get_block(d, id, 0) == -ENOENT);
	CHECK(put_block(d, id, 0) == 0);
	CHECK(put_block(d, id, 1) == 0);
	CHECK(put_block(d, id, 2) == 0);
	CHECK(get_block(d, id, 0) == 0);
	CHECK(get_block(d, id, 2) == 0);
	/* a digest that is not the bytes': never served, and deleted */
	memset(dg, 0xaa, sizeof(dg));
	CHECK(disk_get(d, id, 1, buf, BLK, dg) == -EBADMSG);
	CHECK(get_block(d, id, 1) == -ENOENT);
	/* one byte changed on disk: deleted, a miss next time */
	block_path(d1, id, 2, path, sizeof(path));
	f = fopen(path, "r+");
	CHECK(f != NULL);
	if (f) {
		fseek(f, 100, SEEK_SET);
		fputc(0x55 ^ fgetc(f), f);
		fclose(f);
	}
	CHECK(get_block(d, id, 2) == -EBADMSG);
	CHECK(access(path, F_OK) != 0);
	CHECK(get_block(d, id, 2) == -ENOENT);
	/* a torn (short) block file is not served either */
	CHECK(put_block(d, id, 3) == 0);
	block_path(d1, id, 3, path, sizeof(path));
	CHECK(truncate(path, 1000) == 0);
	CHECK(get_block(d, id, 3) == -EBADMSG);
	disk_get_stats(d, &st);
	CHECK_EQ_U64(st.hits, 2);
	CHECK_EQ_U64(st.verify_fail, 3);
	CHECK_EQ_U64(st.writes, 4);
	CHECK_EQ_U64(st.quota, 1u << 20);
	disk_free(d);
	/* modes: the cache is private */
	snprintf(path, sizeof(path), "%s/blocks", d1);
	{
		struct stat sb;

		CHECK(stat(path, &sb) == 0 && (sb.st_mode & 077) == 0);
		block_path(d1, id, 0, path, sizeof(path));
		CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	}
}

static void test_tmp_and_restart(void)
{
	unsigned char id[32] = {9};
	char d1[600], path[1024], sub[700];
	struct disk_stats st;
	struct disk *d;
	int fd;

	sub_dir("tmp", d1, sizeof(d1));
	d = disk_new(d1, 1u << 20);
	CHECK(d && put_block(d, id, 0) == 0 && put_block(d, id, 1) == 0);
	disk_free(d);
	/* a writer killed mid-block left a temporary file of block 5's
	 * directory: a stale one and a fresh one (a live writer's) */
	block_path(d1, id, 5, path, sizeof(path));
	snprintf(sub, sizeof(sub), "%.*s", (int)(strrchr(path, '/') - path),
		 path);
	mkdir(sub, 0700);
	snprintf(path, sizeof(path), "%s/.tmp-99999-1", sub);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0 && write(fd, "torn", 4) == 4);
	close(fd);
	set_mtime(path, time(NULL) - 3600);
	snprintf(path, sizeof(path), "%s/.tmp-99999-2", sub);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0 && write(fd, "live", 4) == 4);
	close(fd);

	/* a restart: the count comes from the directory */
	d = disk_new(d1, 1u << 20);
	CHECK(d != NULL);
	if (!d)
		return;
	disk_get_stats(d, &st);
	CHECK_EQ_U64(st.used, 2 * BLK);
	CHECK(get_block(d, id, 5) == -ENOENT);
	CHECK(get_block(d, id, 1) == 0);
	snprintf(path, sizeof(path), "%s/.tmp-99999-1", sub);
	CHECK(access(path, F_OK) != 0);
	snprintf(path, sizeof(path), "%s/.tmp-99999-2", sub);
	CHECK(access(path, F_OK) == 0);
	disk_free(d);
}

static void test_evict(void)
{
	unsigned char id[32] = {0x42};
	char d1[600], path[1024];
	struct disk_stats st;
	time_t now = time(NULL);
	struct disk *d;
	uint64_t i;

	sub_dir("evict", d1, sizeof(d1));
	/* 10 blocks; low water 9 */
	d = disk_new(d1, 10 * BLK);
	CHECK(d != NULL);
	if (!d)
		return;
	for (i = 0; i < 10; i++) {
		CHECK(put_block(d, id, i) == 0);
		block_path(d1, id, i, path, sizeof(path));
		set_mtime(path, now - 1000 + (time_t)i);
	}
	/* block 0 is read: a hit makes it recent again */
	CHECK(get_block(d, id, 0) == 0);
	CHECK(put_block(d, id, 10) == 0);
	disk_get_stats(d, &st);
	CHECK_EQ_U64(st.evictions, 2);
	CHECK_EQ_U64(st.used, 9 * BLK);
	CHECK(get_block(d, id, 0) == 0);
	CHECK(get_block(d, id, 1) == -ENOENT);
	CHECK(get_block(d, id, 2) == -ENOENT);
	CHECK(get_block(d, id, 3) == 0);
	CHECK(get_block(d, id, 10) == 0);
	disk_free(d);
	/* a smaller quota at the next start evicts at once */
	d = disk_new(d1, 5 * BLK);
	CHECK(d != NULL);
	if (!d)
		return;
	disk_get_stats(d, &st);
	CHECK(st.used <= 5 * BLK * DISK_LOW_WATER / 100);
	CHECK(get_block(d, id, 10) == 0);
	disk_free(d);
}

static void test_two_objects(void)
{
	unsigned char id[32] = {0x77};
	char d1[600];
	struct disk_stats st;
	struct disk *a, *b, *c;
	uint64_t i;

	sub_dir("two", d1, sizeof(d1));
	a = disk_new(d1, 20 * BLK);
	b = disk_new(d1, 20 * BLK);
	CHECK(a && b);
	if (!a || !b)
		goto out;
	for (i = 0; i < 40; i++)
		CHECK(put_block(i % 2 ? b : a, id, i) == 0);
	/* each sees what the other wrote */
	CHECK(get_block(a, id, 39) == 0);
	CHECK(get_block(b, id, 38) == 0);
	/* together they kept to the quota plus each one's 10% */
	c = disk_new(d1, 1u << 30);
	CHECK(c != NULL);
	if (c) {
		disk_get_stats(c, &st);
		CHECK(st.used <= 24 * BLK);
		CHECK(st.used >= 16 * BLK);
		disk_free(c);
	}
out:
	disk_free(a);
	disk_free(b);
}

/* ---- under a block store ---- */

#define NBLK 37u
#define SRC_LEN (NBLK * BLK - 1000)

struct src {
	unsigned char *data;
	atomic_uint calls;
	atomic_ulong bytes;
};

static int src_range(void *arg, uint64_t off, size_t len, void *buf,
		     unsigned flags)
{
	struct src *s = arg;

	(void)flags;
	atomic_fetch_add(&s->calls, 1);
	atomic_fetch_add(&s->bytes, len);
	if (off > SRC_LEN || len > SRC_LEN - off)
		return -EIO;
	memcpy(buf, s->data + off, len);
	return 0;
}

static const struct fetch_source_ops src_ops = {.range = src_range};

/* The path of block idx's file, whatever the identity (there is one). */
static int find_block(const char *d, uint64_t idx, char *out, size_t len)
{
	char sub[700], suffix[32];
	struct dirent *de;
	DIR *dp;

	snprintf(suffix, sizeof(suffix), "-%llu", (unsigned long long)idx);
	for (unsigned k = 0; k < 256; k++) {
		snprintf(sub, sizeof(sub), "%s/blocks/%02x", d, k);
		dp = opendir(sub);
		while (dp && (de = readdir(dp))) {
			size_t n = strlen(de->d_name), m = strlen(suffix);

			if (n > m && !strcmp(de->d_name + n - m, suffix) &&
			    de->d_name[0] != '.') {
				snprintf(out, len, "%s/%s", sub, de->d_name);
				closedir(dp);
				return 0;
			}
		}
		if (dp)
			closedir(dp);
	}
	return -ENOENT;
}

/* Reads every block through a fresh store on disk d and checks them. */
static void read_all(struct src *s, struct disk *d, unsigned char *dg,
		     struct blocks_stats *out)
{
	struct blocks_opts o;
	struct blockstore *store;
	struct fetch *f;
	struct blocks *bs;

	blocks_opts_default(&o);
	o.disk = d;
	o.max_fetches = 2;
	store = blockstore_new(&o);
	f = fetch_open_source("mem://disk", SRC_LEN, "v1", &src_ops, s);
	bs = store && f ? blocks_new(store, f, BLK, dg, NULL) : NULL;
	CHECK(bs != NULL);
	if (bs) {
		blocks_want(bs, 0, NBLK - 1, 0);
		for (uint64_t i = 0; i < NBLK; i++) {
			const struct block *b;
			int rc = blocks_get(bs, i, 0, NULL, &b);

			CHECK(rc == 0);
			if (rc)
				continue;
			CHECK(!memcmp(b->data, s->data + i * BLK, b->len));
			blocks_release(bs, b);
		}
		blocks_get_stats(bs, out);
	}
	blocks_free(bs);
	fetch_free(f);
	blockstore_free(store);
}

static void test_store(void)
{
	unsigned char *dg = malloc(NBLK * 32);
	struct src s = {.data = malloc(SRC_LEN)};
	struct blocks_stats st;
	struct blockstore_stats ss;
	char d1[600], path[1024];
	struct disk *d;
	FILE *f;

	sub_dir("store", d1, sizeof(d1));
	d = disk_new(d1, 1u << 20);
	CHECK(d && dg && s.data);
	if (!d || !dg || !s.data)
		goto out;
	fill(s.data, SRC_LEN, 7);
	for (unsigned i = 0; i < NBLK; i++)
		sha(s.data + i * BLK, i + 1 < NBLK ? BLK : SRC_LEN - i * BLK,
		    dg + i * 32);
	read_all(&s, d, dg, &st);
	CHECK_EQ_U64(st.fetched, NBLK);
	CHECK_EQ_U64(st.disk_hits, 0);
	CHECK_EQ_U64(atomic_load(&s.bytes), SRC_LEN);
	/* a "restart": everything from disk, nothing from the network */
	atomic_store(&s.calls, 0);
	read_all(&s, d, dg, &st);
	CHECK_EQ_U64(atomic_load(&s.calls), 0);
	CHECK_EQ_U64(st.disk_hits, NBLK);
	CHECK_EQ_U64(st.disk_bytes, SRC_LEN);
	CHECK_EQ_U64(st.fetched, 0);
	CHECK_EQ_U64(st.requests, 0);
	/* one block file damaged: that block alone comes from the network */
	CHECK(find_block(d1, 5, path, sizeof(path)) == 0);
	f = fopen(path, "r+");
	CHECK(f != NULL);
	if (f) {
		fputc('X', f);
		fclose(f);
	}
	atomic_store(&s.calls, 0);
	atomic_store(&s.bytes, 0);
	read_all(&s, d, dg, &st);
	CHECK_EQ_U64(st.disk_bad, 1);
	CHECK_EQ_U64(st.disk_hits, NBLK - 1);
	CHECK_EQ_U64(st.fetched, 1);
	CHECK_EQ_U64(atomic_load(&s.calls), 1);
	CHECK_EQ_U64(atomic_load(&s.bytes), BLK);
	/* and it is on disk, good, again */
	atomic_store(&s.calls, 0);
	read_all(&s, d, dg, &st);
	CHECK_EQ_U64(atomic_load(&s.calls), 0);
	CHECK_EQ_U64(st.disk_hits, NBLK);
	{
		struct blockstore *tmp;
		struct blocks_opts o;
		struct disk *d2 = disk_new(d1, 1u << 20);

		/* counted from the directory: every block once */
		blocks_opts_default(&o);
		o.disk = d2;
		tmp = blockstore_new(&o);
		CHECK(tmp && d2);
		if (tmp && d2) {
			blockstore_get_stats(tmp, &ss);
			CHECK(ss.has_disk);
			CHECK_EQ_U64(ss.disk.used, SRC_LEN);
		}
		blockstore_free(tmp);
		disk_free(d2);
	}
out:
	disk_free(d);
	free(s.data);
	free(dg);
}

static void remove_dir(void)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	const char *tmp = getenv("SFFS_TEST_TMP");

	snprintf(dir, sizeof(dir), "%s/test_disk.XXXXXX", tmp ? tmp : "/tmp");
	if (tmp)
		mkdir(tmp, 0700);
	CHECK(mkdtemp(dir) != NULL);
	CHECK(disk_new(dir, 0) == NULL && errno == EINVAL);
	test_put_get();
	test_tmp_and_restart();
	test_evict();
	test_two_objects();
	test_store();
	remove_dir();
	/* tmpfs, as on a diskless node: the same again */
	snprintf(dir, sizeof(dir), "/dev/shm/test_disk.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	{
		struct statfs sf;

		CHECK(statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC);
	}
	test_put_get();
	test_tmp_and_restart();
	test_evict();
	test_store();
	remove_dir();
	return check_done();
}
