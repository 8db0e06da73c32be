/* SPDX-License-Identifier: MIT */
/*
 * test_keycheck.c - trust_check_signature_key: whether the key of a kept
 * signature still counts, without its data. Keys and signatures made at
 * test time with GnuPG (tests/unit/trust-keys.sh): a signature by a held,
 * trusted key passes (a subkey's names its primary), whatever data is at
 * hand; an unknown, untrusted, expired or revoked key does not, nor does
 * something that is not a signature.
 */
#include "check.h"
#include "trust_keys.h"
#include "sffs/trust.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char dir[512];

/* The bytes of dir/name (NUL-terminated beyond len); exits if absent. */
static char *slurp(const char *name, size_t *len)
{
	char path[700];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END)) {
		fprintf(stderr, "cannot read %s\n", path);
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

/* A set of the named keys (NULL-terminated), each an operator key; with
 * only, just that fingerprint is trusted. */
static struct trust *set_of(const char *const *names, const char *only)
{
	struct trust *t = trust_new();
	char file[64], err[256], fpr[TRUST_FPR_LEN + 1];
	size_t len;
	char *k;

	for (; *names; names++) {
		snprintf(file, sizeof(file), "pub-%s.gpg", *names);
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

/* sig_file checked in t: want, and the signer's fingerprint when known. */
static void expect(const struct trust *t, const char *sig_file,
		   enum trust_status want, const char *signer)
{
	struct trust_result r;
	char fpr[TRUST_FPR_LEN + 1];
	size_t len;
	char *s = slurp(sig_file, &len);

	trust_check_signature_key(t, s, len, &r);
	if (r.status != want)
		fprintf(stderr, "%s: got %s (%s), wanted %s\n", sig_file,
			trust_status_str(r.status), r.detail,
			trust_status_str(want));
	CHECK_EQ_U64(r.status, want);
	CHECK(r.detail[0] && !strchr(r.detail, '\n'));
	if (signer) {
		fpr_of(signer, fpr);
		CHECK(!strcmp(r.fpr, fpr));
	}
	free(s);
}

static void test_keys(void)
{
	static const char *const all[] = {"rsa", "ed",	"sub",
					  "exp", "rev", NULL};
	struct trust *t = set_of(all, NULL), *only_ed;
	struct trust_result r;

	expect(t, "data.rsa.asc", TRUST_OK, "rsa");
	expect(t, "data.rsa.sig", TRUST_OK, "rsa");
	expect(t, "data.ed.asc", TRUST_OK, "ed");
	/* made by a subkey: the primary is named */
	expect(t, "data.sub.sig", TRUST_OK, "sub");
	expect(t, "data.other.asc", TRUST_UNKNOWN_KEY, NULL);
	expect(t, "data.exp.asc", TRUST_KEY_EXPIRED, "exp");
	expect(t, "data.rev.asc", TRUST_KEY_REVOKED, "rev");
	/* not a signature at all */
	expect(t, "doc.txt", TRUST_NO_SIGNATURE, NULL);
	CHECK_EQ_U64(trust_check_signature_key(t, NULL, 0, &r),
		     TRUST_NO_SIGNATURE);
	trust_free(t);

	/* held, but only ed is trusted now */
	only_ed = set_of(all, "ed");
	expect(only_ed, "data.rsa.asc", TRUST_UNTRUSTED_KEY, "rsa");
	expect(only_ed, "data.ed.sig", TRUST_OK, "ed");
	trust_free(only_ed);
}

static void test_oversized(void)
{
	static const char *const rsa[] = {"rsa", NULL};
	struct trust *t = set_of(rsa, NULL);
	struct trust_result r;
	char *big = calloc(1, TRUST_MAX_SIG + 1);

	CHECK(big != NULL);
	CHECK_EQ_U64(trust_check_signature_key(t, big, TRUST_MAX_SIG + 1, &r),
		     TRUST_NO_SIGNATURE);
	free(big);
	trust_free(t);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (trust_keys_make(dir, sizeof(dir), "keycheck", "1"))
		return 1;
	test_keys();
	test_oversized();
	return check_done();
}
