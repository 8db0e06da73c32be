/* SPDX-License-Identifier: MIT */
/*
 * test_sigcache.c - open/sigcache.c over local files, with keys and
 * signatures made at test time with GnuPG (tests/unit/trust-keys.sh):
 *   - sigs_whole_index: a signature over the whole file is accepted when
 *     the header the loader read is the signed file's; refused when the
 *     bytes were changed, when the header read differs (the server swapped
 *     bytes between two reads) and when the file is past the bound tied to
 *     the artifact's size;
 *   - sigcache_store / sigcache_check / sigcache_drop: a kept signature is
 *     0600 and vouches only for the key it names, while that key is
 *     trusted; none kept, one not private, one reached by a symlink or
 *     oversized is refused.
 */
#include "check.h"
#include "trust_keys.h"
#include "sigcache_i.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

/* dir/name, into a static slot (a few alive at once). */
static const char *at(const char *name)
{
	static char slots[4][PATH_MAX];
	static unsigned next;
	char *slot = slots[next++ % 4];

	snprintf(slot, PATH_MAX, "%s/%s", dir, name);
	return slot;
}

/* The bytes of dir/name (NUL-terminated beyond len); exits if absent. */
static char *slurp(const char *name, size_t *len)
{
	FILE *f = fopen(at(name), "rb");
	char *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END)) {
		fprintf(stderr, "cannot read %s\n", at(name));
		exit(2);
	}
	n = ftell(f);
	if (n < 0 || fseek(f, 0, SEEK_SET))
		exit(2);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		exit(2);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void fpr_of(const char *name, char out[TRUST_FPR_LEN + 1])
{
	char file[64], *s;
	size_t len;

	snprintf(file, sizeof(file), "fpr-%s", name);
	s = slurp(file, &len);
	s[strcspn(s, "\n")] = '\0';
	snprintf(out, TRUST_FPR_LEN + 1, "%s", s);
	free(s);
}

/* rsa and ed held; only named trusted (NULL: both). */
static struct trust *set_of(const char *only)
{
	static const char *const names[] = {"rsa", "ed", NULL};
	struct trust *t = trust_new();
	char file[64], err[256], fpr[TRUST_FPR_LEN + 1];
	const char *const *n;
	size_t len;
	char *k;

	for (n = names; *n; n++) {
		snprintf(file, sizeof(file), "pub-%s.gpg", *n);
		k = slurp(file, &len);
		CHECK(trust_add_keys(t, k, len, true, err, sizeof(err)) == 1);
		free(k);
	}
	if (only) {
		fpr_of(only, fpr);
		CHECK(trust_add_fpr(t, fpr) == 0);
	}
	return t;
}

/* sigs_whole_index over dir/file as the index, raw its header as read. */
static int whole(const struct trust *t, const char *file, const void *raw,
		 uint64_t artifact_size, const char *sig_file, char *why,
		 size_t whylen)
{
	struct open_cfg cfg;
	struct index_header h;
	struct trust_result res;
	size_t siglen;
	char *sig = slurp(sig_file, &siglen);
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	memset(&h, 0, sizeof(h));
	fetch_opts_default(&cfg.fo);
	cfg.trust = t;
	h.hlen = INDEX_HEADER_MAX;
	h.artifact_size = artifact_size;
	why[0] = '\0';
	rc = sigs_whole_index(&cfg, at(file), "SIG", raw, &h, sig, siglen, &res,
			      why, whylen);
	if (rc)
		printf("%s: %s\n", file, why);
	free(sig);
	return rc;
}

static void test_whole(void)
{
	struct trust *t = set_of(NULL);
	char why[512], *data;
	size_t len;
	int fd;

	data = slurp("data.bin", &len);
	CHECK(len > INDEX_HEADER_MAX);
	CHECK_EQ_U64(
	    whole(t, "data.bin", data, 0, "data.rsa.asc", why, sizeof(why)), 0);
	/* bytes changed after signing */
	CHECK_EQ_U64(
	    whole(t, "data.bad", data, 0, "data.rsa.asc", why, sizeof(why)),
	    -EKEYREJECTED);
	CHECK(strstr(why, "over the whole index") != NULL);
	/* the loader was given another header than the signed file's */
	data[7] ^= 1;
	CHECK_EQ_U64(
	    whole(t, "data.bin", data, 0, "data.rsa.asc", why, sizeof(why)),
	    -EKEYREJECTED);
	CHECK(strstr(why, "changed between two reads") != NULL);
	data[7] ^= 1;
	/* past 64 MiB + artifact/8: not fetched */
	fd = open(at("big.bin"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && !ftruncate(fd, (off_t)SIGS_WHOLE_BASE + 4096));
	close(fd);
	CHECK_EQ_U64(
	    whole(t, "big.bin", data, 0, "data.rsa.asc", why, sizeof(why)),
	    -EKEYREJECTED);
	CHECK(strstr(why, "at most") != NULL);
	/* a larger artifact allows it: then only the signature fails */
	CHECK_EQ_U64(whole(t, "big.bin", data, UINT64_C(1) << 20,
			   "data.rsa.asc", why, sizeof(why)),
		     -EKEYREJECTED);
	CHECK(strstr(why, "over the whole index") != NULL);
	unlink(at("big.bin"));
	free(data);
	trust_free(t);
}

static int check_kept(const struct trust *t, const char *cpath,
		      const char *signer, char *why, size_t whylen)
{
	char fpr[TRUST_FPR_LEN + 1];
	int rc;

	fpr_of(signer, fpr);
	why[0] = '\0';
	rc = sigcache_check(t, cpath, fpr, why, whylen);
	if (rc)
		printf("kept: %s\n", why);
	return rc;
}

static void test_kept(void)
{
	struct trust *t = set_of(NULL), *only_ed = set_of("ed");
	char cpath[PATH_MAX], kept[PATH_MAX + 8], why[512], *sig;
	struct stat st;
	size_t len;
	int fd;

	snprintf(cpath, sizeof(cpath), "%s", at("x.sfidx"));
	snprintf(kept, sizeof(kept), "%s.asc", cpath);
	unlink(kept);
	CHECK_EQ_U64(check_kept(t, cpath, "rsa", why, sizeof(why)),
		     -EKEYREJECTED);
	CHECK(strstr(why, "no signature kept") != NULL);
	sig = slurp("data.rsa.asc", &len);
	umask(022);
	CHECK_EQ_U64(sigcache_store(cpath, sig, len), 0);
	CHECK(!lstat(kept, &st) && S_ISREG(st.st_mode) &&
	      (st.st_mode & 0777) == 0600);
	CHECK_EQ_U64(check_kept(t, cpath, "rsa", why, sizeof(why)), 0);
	/* the record names another key */
	CHECK_EQ_U64(check_kept(t, cpath, "ed", why, sizeof(why)),
		     -EKEYREJECTED);
	CHECK(strstr(why, "record names key") != NULL);
	/* the key is held but not trusted now */
	CHECK_EQ_U64(check_kept(only_ed, cpath, "rsa", why, sizeof(why)),
		     -EKEYREJECTED);
	CHECK(strstr(why, "not trusted") != NULL);
	/* writable by the group */
	CHECK(!chmod(kept, 0620));
	CHECK_EQ_U64(check_kept(t, cpath, "rsa", why, sizeof(why)),
		     -EKEYREJECTED);
	CHECK(strstr(why, "not a private file") != NULL);
	/* a symlink to a good one is not followed; storing replaces it */
	CHECK(!chmod(kept, 0600) && !rename(kept, at("real.asc")));
	CHECK(!symlink(at("real.asc"), kept));
	CHECK_EQ_U64(check_kept(t, cpath, "rsa", why, sizeof(why)),
		     -EKEYREJECTED);
	CHECK(strstr(why, "symlink") != NULL);
	CHECK_EQ_U64(sigcache_store(cpath, sig, len), 0);
	CHECK(!lstat(kept, &st) && S_ISREG(st.st_mode));
	CHECK_EQ_U64(check_kept(t, cpath, "rsa", why, sizeof(why)), 0);
	/* oversized */
	fd = open(kept, O_WRONLY | O_TRUNC | O_NOFOLLOW);
	CHECK(fd >= 0 && !ftruncate(fd, TRUST_MAX_SIG + 1));
	close(fd);
	CHECK_EQ_U64(check_kept(t, cpath, "rsa", why, sizeof(why)),
		     -EKEYREJECTED);
	CHECK(strstr(why, "bytes") != NULL);
	/* dropped */
	sigcache_drop(cpath);
	CHECK(lstat(kept, &st) && errno == ENOENT);
	sigcache_drop(cpath); /* none: quiet */
	unlink(at("real.asc"));
	free(sig);
	trust_free(only_ed);
	trust_free(t);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (trust_keys_make(dir, sizeof(dir), "sigcache", "1") ||
	    fetch_global_init())
		return 1;
	test_whole();
	test_kept();
	fetch_global_cleanup();
	return check_done();
}
