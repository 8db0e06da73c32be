/* SPDX-License-Identifier: MIT */
/*
 * randread MNT REF THREADS READS SEED
 *
 * THREADS threads each read READS random ranges of random regular files
 * under MNT and compare them byte for byte with the same ranges of the
 * same files under REF (an independent extraction). Exits 1 on the first
 * difference or error, naming file, offset and length. Before each read
 * the file's pages are dropped from the page cache (POSIX_FADV_DONTNEED),
 * so every read reaches the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 200000
#define MAX_READ (1024 * 1024)

struct file {
	char *rel;
	off_t size;
};

static struct file *files;
static size_t nfiles;
static size_t ref_len;
static const char *mnt, *ref;
static unsigned reads;
static atomic_uint failures;
static atomic_ulong bytes_checked;

static int collect(const char *path, const struct stat *st, int type,
		   struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || !S_ISREG(st->st_mode) || nfiles >= MAX_FILES)
		return 0;
	files[nfiles].rel = strdup(path + ref_len);
	files[nfiles].size = st->st_size;
	nfiles++;
	return 0;
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int pread_all(const char *root, const char *rel, off_t off, size_t len,
		     char *buf, ssize_t *got)
{
	char path[8192];
	ssize_t n, total = 0;
	int fd;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	/* Drop the kernel's cached pages of the file first, so that the read
	 * really reaches the file system (the mount's daemon). */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	while ((size_t)total < len) {
		n = pread(fd, buf + total, len - (size_t)total, off + total);
		if (n < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	*got = total;
	return 0;
}

static void *worker(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
	char *a = malloc(MAX_READ), *b = malloc(MAX_READ);
	unsigned i;

	for (i = 0; i < reads && a && b && !atomic_load(&failures); i++) {
		struct file *f = &files[next_rand(&seed) % nfiles];
		off_t off = f->size ? (off_t)(next_rand(&seed) %
					      (uint64_t)(f->size + 1))
				    : 0;
		size_t len = 1 + next_rand(&seed) % MAX_READ;
		ssize_t ga = -1, gb = -1;
		int ra, rb;

		if (next_rand(&seed) % 4 == 0)
			len = 1 + len % 4096; /* many small reads too */
		ra = pread_all(mnt, f->rel, off, len, a, &ga);
		rb = pread_all(ref, f->rel, off, len, b, &gb);
		if (ra || rb || ga != gb || memcmp(a, b, (size_t)ga)) {
			fprintf(stderr,
				"MISMATCH %s off=%jd len=%zu: mount rc=%d "
				"got=%zd, ref rc=%d got=%zd\n",
				f->rel, (intmax_t)off, len, ra, ga, rb, gb);
			atomic_fetch_add(&failures, 1);
			break;
		}
		atomic_fetch_add(&bytes_checked, (unsigned long)ga);
	}
	free(a);
	free(b);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t tid[256];
	unsigned t, threads;
	uint64_t seed;

	if (argc != 6) {
		fprintf(stderr, "usage: randread MNT REF THREADS READS SEED\n");
		return 2;
	}
	mnt = argv[1];
	ref = argv[2];
	threads = (unsigned)atoi(argv[3]);
	reads = (unsigned)atoi(argv[4]);
	seed = strtoull(argv[5], NULL, 10);
	if (threads == 0 || threads > 256)
		return 2;
	ref_len = strlen(ref);
	files = calloc(MAX_FILES, sizeof(*files));
	if (!files || nftw(ref, collect, 64, FTW_PHYS) || nfiles == 0) {
		fprintf(stderr, "randread: no regular files under %s\n", ref);
		return 2;
	}
	for (t = 0; t < threads; t++)
		pthread_create(&tid[t], NULL, worker,
			       (void *)(uintptr_t)(seed + t));
	for (t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	printf("randread: %u threads x %u reads over %zu files, %lu bytes "
	       "compared, %u mismatches\n",
	       threads, reads, nfiles, atomic_load(&bytes_checked),
	       atomic_load(&failures));
	return atomic_load(&failures) ? 1 : 0;
}
