/* SPDX-License-Identifier: MIT */
/*
 * test_trust.c - OpenPGP verification against keys and signatures made
 * at test time with GnuPG (tests/unit/trust-keys.sh): good signatures by
 * RSA, ed25519 and subkeys (buffer, stream, clearsigned), and each way to
 * fail (changed data or text, unknown, untrusted, expired and revoked
 * keys, no signature, oversized input); fingerprint parsing; streams fed
 * in odd pieces, aborted, and timed; many verifications at once.
 */
#include "check.h"
#include "trust_keys.h"
#include "sffs/trust.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[512];

/* The bytes of dir/name (NUL-terminated beyond len); aborts if absent. */
static char *slurp(const char *name, size_t *len)
{
	char path[700];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		exit(2);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* fpr-NAME or keyid-NAME without its newline, into a static slot. */
static const char *line_of(const char *prefix, const char *name)
{
	static char slots[16][64];
	static unsigned next;
	char file[64], *s;
	size_t len;
	char *slot = slots[next++ % 16];

	snprintf(file, sizeof(file), "%s-%s", prefix, name);
	s = slurp(file, &len);
	s[strcspn(s, "\n")] = '\0';
	snprintf(slot, 64, "%s", s);
	free(s);
	return slot;
}

static const char *fpr(const char *name)
{
	return line_of("fpr", name);
}

static const char *keyid(const char *name)
{
	return line_of("keyid", name);
}

/* Adds pub-NAME.asc (or .gpg) to t; returns trust_add_keys's result. */
static int add(struct trust *t, const char *name, const char *ext, bool op)
{
	char file[64], err[256] = "";
	size_t len;
	char *k;
	int rc;

	snprintf(file, sizeof(file), "pub-%s.%s", name, ext);
	k = slurp(file, &len);
	rc = trust_add_keys(t, k, len, op, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "add %s: %d %s\n", file, rc, err);
	free(k);
	return rc;
}

/* A set holding the named operator keys (NULL-terminated). */
static struct trust *set_of(const char *const *names)
{
	struct trust *t = trust_new();

	for (; *names; names++)
		CHECK_EQ_U64(add(t, *names, "asc", true), 1);
	return t;
}

static const char *const all_ops[] = {"rsa", "ed", "sub", "exp", "rev", NULL};

static void show(const char *what, const struct trust_result *r,
		 enum trust_status want)
{
	if (r->status != want)
		fprintf(stderr, "%s: got %s (%s), wanted %s\n", what,
			trust_status_str(r->status), r->detail,
			trust_status_str(want));
}

/* want, and the fingerprint / key id when given; detail always one line
 * naming the key. */
static void check_result(const char *what, const struct trust_result *r,
			 enum trust_status want, const char *want_fpr,
			 const char *want_keyid)
{
	show(what, r, want);
	CHECK_EQ_U64(r->status, want);
	if (want_fpr) {
		CHECK(!strcmp(r->fpr, want_fpr));
		CHECK(strstr(r->detail, want_fpr) != NULL);
	}
	if (want_keyid)
		CHECK(!strcmp(r->keyid, want_keyid));
	CHECK(r->detail[0] && !strchr(r->detail, '\n'));
}

static void expect_detached(const struct trust *t, const char *data_file,
			    const char *sig_file, enum trust_status want,
			    const char *want_fpr, const char *want_keyid)
{
	struct trust_result r;
	size_t dlen, slen;
	char *d = slurp(data_file, &dlen), *s = slurp(sig_file, &slen);
	char what[128];

	snprintf(what, sizeof(what), "%s over %s", sig_file, data_file);
	trust_verify_detached(t, d, dlen, s, slen, &r);
	check_result(what, &r, want, want_fpr, want_keyid);
	free(d);
	free(s);
}

static void test_fpr(void)
{
#define FA "FDEA9066B1B64A8C2C2D9A3BE6C5B3A3D5B1C0A1"
#define FB "0123456789ABCDEF0123456789ABCDEF01234567"
	static const char fa[] = FA, fb[] = FB;
	static const char *const bad[] = {
	    "",
	    "E6C5B3A3D5B1C0A1",
	    "FDEA9066B1B64A8C2C2D9A3BE6C5B3A3D5B1C0A",
	    "FDEA9066B1B64A8C2C2D9A3BE6C5B3A3D5B1C0A1A",
	    /* 72 hex digits: too long for a v4 fingerprint */
	    ("FDEA9066B1B64A8C2C2D9A3BE6C5B3A3D5B1C0A1"
	     "FDEA9066B1B64A8C2C2D9A3BE6C5B3A3"),
	    "0xFDEA9066B1B64A8C2C2D9A3BE6C5B3A3D5B1C0",
	    "GDEA9066B1B64A8C2C2D9A3BE6C5B3A3D5B1C0A1",
	    "FDEA9066B1B64A8C-2C2D9A3BE6C5B3A3D5B1C0A1",
	    "FDEA9066B1B64A8C\t2C2D9A3BE6C5B3A3D5B1C0A1",
	};
	struct trust *t = trust_new();
	char err[256] = "", buf[128];
	size_t i;

	CHECK(t != NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_U64(trust_add_fpr(t, bad[i]), -EINVAL);
	CHECK_EQ_U64(trust_add_fpr(t, NULL), -EINVAL);
	CHECK_EQ_U64(trust_count(t), 0);
	CHECK_EQ_U64(trust_describe(t, buf, sizeof(buf)), 0);
	CHECK(!strcmp(buf, ""));

	/* gpg's spacing, and lower case */
	CHECK_EQ_U64(trust_add_fpr(t, "FDEA 9066 B1B6 4A8C 2C2D  9A3B E6C5 "
				      "B3A3 D5B1 C0A1"),
		     0);
	CHECK(trust_is_trusted(t, fa));
	CHECK_EQ_U64(
	    trust_add_fpr(t, "fdea9066b1b64a8c2c2d9a3be6c5b3a3d5b1c0a1"), 0);
	CHECK_EQ_U64(trust_count(t), 1);
	CHECK(!trust_is_trusted(t, "fdea9066b1b64a8c2c2d9a3be6c5b3a3d5b1c0a1"));
	CHECK(!trust_is_trusted(t, fb));
	CHECK(!trust_is_trusted(t, NULL));
	CHECK(!trust_is_trusted(t, "FDEA"));

	/* a list: ':' or ',', blanks around entries; a bad entry adds
	 * nothing and is named */
	CHECK_EQ_U64(trust_add_fpr_list(t,
					"0123456789abcdef0123456789abcdef"
					"01234567,nothex",
					err, sizeof(err)),
		     -EINVAL);
	CHECK(strstr(err, "nothex") != NULL);
	CHECK_EQ_U64(trust_count(t), 1);
	CHECK_EQ_U64(trust_add_fpr_list(t, "", err, sizeof(err)), -EINVAL);
	CHECK_EQ_U64(trust_add_fpr_list(t, " : ,", err, sizeof(err)), -EINVAL);
	CHECK_EQ_U64(
	    trust_add_fpr_list(t, "E6C5B3A3D5B1C0A1", err, sizeof(err)),
	    -EINVAL);
	CHECK(strstr(err, "E6C5B3A3D5B1C0A1") != NULL);
	CHECK_EQ_U64(trust_add_fpr_list(t, NULL, err, sizeof(err)), -EINVAL);
	CHECK_EQ_U64(
	    trust_add_fpr_list(
		t,
		" FDEA 9066 B1B6 4A8C 2C2D  9A3B E6C5 B3A3 D5B1 C0A1 : "
		"0123456789abcdef0123456789abcdef01234567",
		err, sizeof(err)),
	    0);
	CHECK_EQ_U64(trust_count(t), 2);
	CHECK(trust_is_trusted(t, fb));

	/* describe: ':'-separated, the needed length like snprintf */
	CHECK_EQ_U64(trust_describe(t, buf, sizeof(buf)), 81);
	CHECK(!strcmp(buf, "FDEA9066B1B64A8C2C2D9A3BE6C5B3A3D5B1C0A1:"
			   "0123456789ABCDEF0123456789ABCDEF01234567"));
	CHECK_EQ_U64(trust_describe(t, buf, 50), 81);
	CHECK(strlen(buf) < 50);
	CHECK_EQ_U64(trust_describe(t, NULL, 0), 81);
	CHECK_EQ_U64(trust_add_fpr_list(t, FA ":" FB, err, sizeof(err)), 0);
	CHECK_EQ_U64(trust_count(t), 2);
	trust_free(t);
	trust_free(NULL);
}

static void test_add_keys(void)
{
	struct trust *t = trust_new();
	char err[256] = "", path[700], *a, *b, *two, *big;
	size_t alen, blen;
	int rc;

	CHECK_EQ_U64(add(t, "rsa", "asc", true), 1);
	CHECK_EQ_U64(add(t, "ed", "gpg", true), 1);
	CHECK_EQ_U64(add(t, "sub", "gpg", true), 1); /* a subkey: one primary */
	CHECK_EQ_U64(trust_count(t), 3);
	CHECK(trust_is_trusted(t, fpr("rsa")) &&
	      trust_is_trusted(t, fpr("ed")));
	CHECK(trust_is_trusted(t, fpr("sub")));
	/* offered by a server: held, not trusted */
	CHECK_EQ_U64(add(t, "other", "asc", false), 1);
	CHECK_EQ_U64(trust_count(t), 3);
	CHECK(!trust_is_trusted(t, fpr("other")));
	/* the same key again counts once */
	CHECK_EQ_U64(add(t, "rsa", "gpg", true), 1);
	CHECK_EQ_U64(trust_count(t), 3);
	trust_free(t);

	/* several keys one after the other, armoured and binary */
	t = trust_new();
	a = slurp("pub-rsa.asc", &alen);
	b = slurp("pub-ed.asc", &blen);
	two = malloc(alen + blen);
	memcpy(two, a, alen);
	memcpy(two + alen, b, blen);
	CHECK_EQ_U64(
	    trust_add_keys(t, two, alen + blen, true, err, sizeof(err)), 2);
	free(a);
	free(b);
	free(two);
	a = slurp("pub-rsa.gpg", &alen);
	b = slurp("pub-ed.gpg", &blen);
	two = malloc(alen + blen);
	memcpy(two, a, alen);
	memcpy(two + alen, b, blen);
	CHECK_EQ_U64(
	    trust_add_keys(t, two, alen + blen, true, err, sizeof(err)), 2);
	CHECK_EQ_U64(trust_count(t), 2);

	/* no key: garbage, nothing, a signature */
	err[0] = '\0';
	CHECK_EQ_U64(trust_add_keys(t, "hello", 5, true, err, sizeof(err)),
		     -EINVAL);
	CHECK(err[0] != '\0');
	CHECK_EQ_U64(trust_add_keys(t, "", 0, true, err, sizeof(err)), -EINVAL);
	CHECK_EQ_U64(trust_add_keys(t, NULL, 0, true, err, sizeof(err)),
		     -EINVAL);
	free(a);
	a = slurp("data.ed.asc", &alen);
	err[0] = '\0';
	CHECK_EQ_U64(trust_add_keys(t, a, alen, true, err, sizeof(err)),
		     -EINVAL);
	CHECK(err[0] != '\0');
	free(a);
	a = slurp("data.ed.sig", &alen);
	CHECK_EQ_U64(trust_add_keys(t, a, alen, true, err, sizeof(err)),
		     -EINVAL);
	free(a);
	/* a cut key */
	CHECK_EQ_U64(trust_add_keys(t, b, 20, true, err, sizeof(err)), -EINVAL);
	free(b);
	free(two);

	/* beyond the bound, at once and in all */
	big = calloc(1, TRUST_MAX_KEYS + 1);
	CHECK_EQ_U64(
	    trust_add_keys(t, big, TRUST_MAX_KEYS + 1, true, err, sizeof(err)),
	    -E2BIG);
	CHECK(strstr(err, "more than") != NULL);
	free(big);
	CHECK_EQ_U64(trust_count(t), 2);
	trust_free(t);

	/* a keyring file */
	t = trust_new();
	snprintf(path, sizeof(path), "%s/pub-sub.asc", dir);
	CHECK_EQ_U64(trust_add_keyring_file(t, path, err, sizeof(err)), 1);
	CHECK(trust_is_trusted(t, fpr("sub")));
	snprintf(path, sizeof(path), "%s/nonexistent", dir);
	rc = trust_add_keyring_file(t, path, err, sizeof(err));
	CHECK_EQ_U64(rc, -ENOENT);
	CHECK(strstr(err, "nonexistent") != NULL);
	snprintf(path, sizeof(path), "%s/doc.txt", dir);
	CHECK_EQ_U64(trust_add_keyring_file(t, path, err, sizeof(err)),
		     -EINVAL);
	CHECK(strstr(err, "doc.txt") != NULL);
	CHECK_EQ_U64(trust_add_keyring_file(t, dir, err, sizeof(err)), -EINVAL);
	CHECK_EQ_U64(trust_count(t), 1);
	trust_free(t);
}

static void test_detached(void)
{
	struct trust *t = set_of(all_ops);
	struct trust_result r;
	size_t dlen, alen, blen;
	char *d, *a, *b, *two;

	/* good: RSA armoured and binary, ed25519, a subkey for its
	 * primary */
	expect_detached(t, "data.bin", "data.rsa.asc", TRUST_OK, fpr("rsa"),
			keyid("rsa"));
	expect_detached(t, "data.bin", "data.rsa.sig", TRUST_OK, fpr("rsa"),
			NULL);
	expect_detached(t, "data.bin", "data.ed.asc", TRUST_OK, fpr("ed"),
			keyid("ed"));
	expect_detached(t, "data.bin", "data.ed.sig", TRUST_OK, fpr("ed"),
			NULL);
	expect_detached(t, "data.bin", "data.sub.sig", TRUST_OK, fpr("sub"),
			NULL);
	/* changed data */
	expect_detached(t, "data.bad", "data.rsa.asc", TRUST_BAD_SIGNATURE,
			fpr("rsa"), keyid("rsa"));
	expect_detached(t, "data.bad", "data.ed.sig", TRUST_BAD_SIGNATURE,
			fpr("ed"), NULL);
	expect_detached(t, "data.bad", "data.sub.asc", TRUST_BAD_SIGNATURE,
			fpr("sub"), NULL);
	/* a key the set does not hold */
	expect_detached(t, "data.bin", "data.other.sig", TRUST_UNKNOWN_KEY,
			NULL, keyid("other"));
	/* expired in 2021, signed while valid; revoked after signing */
	expect_detached(t, "data.bin", "data.exp.sig", TRUST_KEY_EXPIRED,
			fpr("exp"), keyid("exp"));
	expect_detached(t, "data.bin", "data.rev.asc", TRUST_KEY_REVOKED,
			fpr("rev"), keyid("rev"));
	/* no signature: garbage, nothing, a public key block, the data */
	d = slurp("data.bin", &dlen);
	trust_verify_detached(t, d, dlen, "garbage", 7, &r);
	check_result("garbage", &r, TRUST_NO_SIGNATURE, NULL, NULL);
	trust_verify_detached(t, d, dlen, "", 0, &r);
	check_result("empty", &r, TRUST_NO_SIGNATURE, NULL, NULL);
	trust_verify_detached(t, d, dlen, NULL, 0, &r);
	check_result("NULL", &r, TRUST_NO_SIGNATURE, NULL, NULL);
	a = slurp("pub-ed.asc", &alen);
	trust_verify_detached(t, d, dlen, a, alen, &r);
	check_result("key as signature", &r, TRUST_NO_SIGNATURE, NULL, NULL);
	free(a);
	a = slurp("pub-ed.gpg", &alen);
	trust_verify_detached(t, d, dlen, a, alen, &r);
	check_result("binary key as signature", &r, TRUST_NO_SIGNATURE, NULL,
		     NULL);
	free(a);
	a = malloc(TRUST_MAX_SIG);
	memset(a, 'x', TRUST_MAX_SIG);
	trust_verify_detached(t, d, dlen, a, TRUST_MAX_SIG, &r);
	check_result("text as signature", &r, TRUST_NO_SIGNATURE, NULL, NULL);
	free(a);
	/* oversized */
	trust_verify_detached(t, d, 10, d, TRUST_MAX_SIG + 1, &r);
	check_result("oversized", &r, TRUST_NO_SIGNATURE, NULL, NULL);
	/* empty data, signed over something else */
	a = slurp("data.ed.sig", &alen);
	trust_verify_detached(t, NULL, 0, a, alen, &r);
	check_result("empty data", &r, TRUST_BAD_SIGNATURE, fpr("ed"), NULL);

	/* two signatures: one good is enough; of two failures the bad
	 * signature by a trusted key is told, not the unknown key */
	b = slurp("data.other.sig", &blen);
	two = malloc(alen + blen);
	memcpy(two, b, blen);
	memcpy(two + blen, a, alen);
	trust_verify_detached(t, d, dlen, two, alen + blen, &r);
	check_result("unknown + good", &r, TRUST_OK, fpr("ed"), NULL);
	free(d);
	d = slurp("data.bad", &dlen);
	trust_verify_detached(t, d, dlen, two, alen + blen, &r);
	check_result("unknown + bad", &r, TRUST_BAD_SIGNATURE, fpr("ed"), NULL);
	free(d);
	free(a);
	free(b);
	free(two);
	trust_free(t);
}

static void test_untrusted(void)
{
	struct trust *t = trust_new();
	char err[256];

	/* offered by a server and not named: held but not trusted */
	CHECK_EQ_U64(add(t, "other", "gpg", false), 1);
	expect_detached(t, "data.bin", "data.other.sig", TRUST_UNTRUSTED_KEY,
			fpr("other"), keyid("other"));
	CHECK_EQ_U64(trust_count(t), 0);
	/* named: now trusted */
	CHECK_EQ_U64(trust_add_fpr(t, fpr("other")), 0);
	expect_detached(t, "data.bin", "data.other.sig", TRUST_OK, fpr("other"),
			NULL);
	/* an operator key not in the named list is not trusted */
	CHECK_EQ_U64(add(t, "rsa", "asc", true), 1);
	expect_detached(t, "data.bin", "data.rsa.asc", TRUST_UNTRUSTED_KEY,
			fpr("rsa"), NULL);
	CHECK(!trust_is_trusted(t, fpr("rsa")));
	CHECK_EQ_U64(trust_count(t), 1);
	/* a named fingerprint with the key not held: unknown key */
	CHECK_EQ_U64(trust_add_fpr_list(t, fpr("ed"), err, sizeof(err)), 0);
	expect_detached(t, "data.bin", "data.ed.sig", TRUST_UNKNOWN_KEY, NULL,
			keyid("ed"));
	/* bad signature by an untrusted key: untrusted is the answer */
	expect_detached(t, "data.bad", "data.rsa.sig", TRUST_UNTRUSTED_KEY,
			fpr("rsa"), NULL);
	trust_free(t);

	/* an empty set trusts nobody */
	t = trust_new();
	expect_detached(t, "data.bin", "data.ed.sig", TRUST_UNKNOWN_KEY, NULL,
			keyid("ed"));
	trust_free(t);
}

static void expect_clearsigned(const struct trust *t, const char *file,
			       enum trust_status want, const char *want_fpr)
{
	struct trust_result r;
	size_t len, textlen = 99, wantlen;
	char *doc = slurp(file, &len), *text = (char *)"x";
	char *want_text = slurp("doc.txt", &wantlen);

	trust_verify_clearsigned(t, doc, len, &text, &textlen, &r);
	check_result(file, &r, want, want_fpr, NULL);
	if (want == TRUST_OK) {
		/* the text as it was signed: escaping undone */
		CHECK(text != NULL);
		if (text && strcmp(text, want_text))
			fprintf(stderr, "%s: text \"%s\"\n", file, text);
		CHECK(text && !strcmp(text, want_text));
		CHECK_EQ_U64(textlen, wantlen);
	} else {
		CHECK(text == NULL);
		CHECK_EQ_U64(textlen, 0);
	}
	free(text);
	free(doc);
	free(want_text);
}

static void test_clearsigned(void)
{
	struct trust *t = set_of(all_ops);
	struct trust_result r;
	size_t textlen;
	char *text, *big;

	expect_clearsigned(t, "doc.rsa.asc", TRUST_OK, fpr("rsa"));
	expect_clearsigned(t, "doc.ed.asc", TRUST_OK, fpr("ed"));
	expect_clearsigned(t, "doc.sub.asc", TRUST_OK, fpr("sub"));
	expect_clearsigned(t, "doc.bad.asc", TRUST_BAD_SIGNATURE, fpr("rsa"));
	expect_clearsigned(t, "doc.other.asc", TRUST_UNKNOWN_KEY, NULL);
	expect_clearsigned(t, "doc.exp.asc", TRUST_KEY_EXPIRED, fpr("exp"));
	expect_clearsigned(t, "doc.rev.asc", TRUST_KEY_REVOKED, fpr("rev"));
	/* not clearsigned: a detached signature, a key, text, nothing */
	expect_clearsigned(t, "data.ed.asc", TRUST_NO_SIGNATURE, NULL);
	expect_clearsigned(t, "pub-ed.asc", TRUST_NO_SIGNATURE, NULL);
	expect_clearsigned(t, "doc.txt", TRUST_NO_SIGNATURE, NULL);
	trust_verify_clearsigned(t, "", 0, &text, &textlen, &r);
	CHECK_EQ_U64(r.status, TRUST_NO_SIGNATURE);
	CHECK(text == NULL);
	trust_verify_clearsigned(t, "-----BEGIN PGP SIGNED MESSAGE-----\n", 35,
				 &text, &textlen, &r);
	CHECK_EQ_U64(r.status, TRUST_NO_SIGNATURE);
	CHECK(text == NULL);
	/* oversized */
	big = calloc(1, TRUST_MAX_DOC + 1);
	memcpy(big, "-----BEGIN PGP SIGNED MESSAGE-----\n", 35);
	trust_verify_clearsigned(t, big, TRUST_MAX_DOC + 1, &text, &textlen,
				 &r);
	CHECK_EQ_U64(r.status, TRUST_NO_SIGNATURE);
	CHECK(text == NULL);
	free(big);
	trust_free(t);
}

/* Feeds file in pieces of piece bytes; the stream's verdict. */
static enum trust_status stream_file(const struct trust *t, const char *file,
				     const char *sig_file, size_t piece,
				     struct trust_result *r)
{
	struct trust_stream *s;
	size_t len, slen, off, n;
	char *d = slurp(file, &len), *sig = slurp(sig_file, &slen);
	int rc = 0;

	s = trust_stream_new(t, sig, slen, r);
	CHECK(s != NULL);
	free(sig);
	if (!s) {
		free(d);
		return r->status;
	}
	for (off = 0; off < len && !rc; off += n) {
		n = len - off < piece ? len - off : piece;
		rc = trust_stream_feed(s, d + off, n);
	}
	free(d);
	return trust_stream_finish(s, r);
}

static void expect_stream(const struct trust *t, const char *file,
			  const char *sig_file, size_t piece,
			  enum trust_status want, const char *want_fpr)
{
	struct trust_result r;
	char what[128];

	snprintf(what, sizeof(what), "stream %s over %s, pieces of %zu",
		 sig_file, file, piece);
	stream_file(t, file, sig_file, piece, &r);
	check_result(what, &r, want, want_fpr, NULL);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_stream(void)
{
	static const size_t pieces[] = {1, 7, 4096, 1u << 20};
	struct trust *t = set_of(all_ops);
	struct trust_stream *s;
	struct trust_result r;
	size_t i, slen;
	char *sig, *junk;
	int rc = 0;

	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		expect_stream(t, "data.bin", "data.rsa.asc", pieces[i],
			      TRUST_OK, fpr("rsa"));
		expect_stream(t, "data.bin", "data.ed.sig", pieces[i], TRUST_OK,
			      fpr("ed"));
		expect_stream(t, "data.bad", "data.ed.sig", pieces[i],
			      TRUST_BAD_SIGNATURE, fpr("ed"));
	}
	expect_stream(t, "data.bin", "data.sub.sig", 1000, TRUST_OK,
		      fpr("sub"));
	expect_stream(t, "data.bin", "data.other.asc", 65536, TRUST_UNKNOWN_KEY,
		      NULL);
	expect_stream(t, "data.bin", "data.exp.sig", 65536, TRUST_KEY_EXPIRED,
		      fpr("exp"));
	expect_stream(t, "data.bin", "data.rev.sig", 65536, TRUST_KEY_REVOKED,
		      fpr("rev"));
	/* a stream with no data */
	sig = slurp("data.ed.sig", &slen);
	s = trust_stream_new(t, sig, slen, &r);
	CHECK(s != NULL);
	CHECK_EQ_U64(trust_stream_finish(s, &r), TRUST_BAD_SIGNATURE);

	/* not a signature: the verifier stops early, feeding fails soon
	 * and fast, and the result says why */
	s = trust_stream_new(t, "garbage", 7, &r);
	CHECK(s != NULL);
	junk = calloc(1, 1u << 20);
	for (i = 0; i < 1024 && !rc; i++)
		rc = trust_stream_feed(s, junk, 1u << 20);
	CHECK_EQ_U64(rc, -EBADMSG);
	CHECK(i < 16);
	for (i = 0; i < 1024; i++)
		CHECK(trust_stream_feed(s, junk, 1u << 20) == -EBADMSG);
	CHECK_EQ_U64(trust_stream_finish(s, &r), TRUST_NO_SIGNATURE);
	CHECK(r.detail[0] != '\0');

	/* aborted midway (6 MiB fed, more than the ring holds), and right
	 * away */
	s = trust_stream_new(t, sig, slen, &r);
	CHECK(s != NULL);
	for (i = 0; i < 6; i++)
		CHECK_EQ_U64(trust_stream_feed(s, junk, 1u << 20), 0);
	trust_stream_abort(s);
	s = trust_stream_new(t, sig, slen, &r);
	CHECK(s != NULL);
	trust_stream_abort(s);
	trust_stream_abort(NULL);

	/* oversized or no signature: no stream, r says why */
	CHECK(trust_stream_new(t, junk, TRUST_MAX_SIG + 1, &r) == NULL);
	CHECK_EQ_U64(r.status, TRUST_NO_SIGNATURE);
	CHECK(trust_stream_new(t, sig, 0, &r) == NULL);
	CHECK_EQ_U64(r.status, TRUST_NO_SIGNATURE);
	free(sig);
	free(junk);
	trust_free(t);
}

/* zero.ed.sig over zero.mib MiB of zeros fed in 1 MiB pieces: MB/s. */
static void test_stream_rate(void)
{
	static const char *const ed[] = {"ed", NULL};
	struct trust *t = set_of(ed);
	struct trust_stream *s;
	struct trust_result r;
	size_t slen, mlen, i, mib;
	char *sig = slurp("zero.ed.sig", &slen), *m = slurp("zero.mib", &mlen);
	char *zero = calloc(1, 1u << 20);
	double t0, secs;

	mib = strtoul(m, NULL, 10);
	t0 = now();
	s = trust_stream_new(t, sig, slen, &r);
	CHECK(s != NULL);
	for (i = 0; s && i < mib; i++)
		CHECK_EQ_U64(trust_stream_feed(s, zero, 1u << 20), 0);
	if (s)
		trust_stream_finish(s, &r);
	secs = now() - t0;
	check_result("zeros", &r, TRUST_OK, fpr("ed"), NULL);
	printf("stream: %zu MiB in 1 MiB pieces in %.2f s: %.0f MB/s\n", mib,
	       secs, (double)mib * 1048576 / 1e6 / secs);
	free(zero);
	free(sig);
	free(m);
	trust_free(t);
}

struct worker {
	const struct trust *t;
	unsigned id;
	atomic_uint *failures;
};

static void expect_quiet(struct worker *w, bool ok)
{
	if (!ok)
		atomic_fetch_add(w->failures, 1);
}

/* 20 verifications of each kind, good and bad, on a shared set. */
static void *worker(void *arg)
{
	struct worker *w = arg;
	struct trust_result r;
	size_t dlen, blen, slen, clen, textlen;
	char *d = slurp("data.bin", &dlen), *bad = slurp("data.bad", &blen);
	char *sig = slurp("data.ed.sig", &slen),
	     *doc = slurp("doc.rsa.asc", &clen);
	char *text;
	struct trust_stream *s;
	unsigned i;

	for (i = 0; i < 20; i++) {
		switch ((i + w->id) % 4) {
		case 0:
			trust_verify_detached(w->t, d, dlen, sig, slen, &r);
			expect_quiet(w, r.status == TRUST_OK);
			break;
		case 1:
			trust_verify_detached(w->t, bad, blen, sig, slen, &r);
			expect_quiet(w, r.status == TRUST_BAD_SIGNATURE);
			break;
		case 2:
			trust_verify_clearsigned(w->t, doc, clen, &text,
						 &textlen, &r);
			expect_quiet(w, r.status == TRUST_OK && text);
			free(text);
			break;
		default:
			s = trust_stream_new(w->t, sig, slen, &r);
			expect_quiet(w, s != NULL);
			if (!s)
				break;
			expect_quiet(w, !trust_stream_feed(s, d, dlen));
			trust_stream_finish(s, &r);
			expect_quiet(w, r.status == TRUST_OK);
		}
	}
	free(d);
	free(bad);
	free(sig);
	free(doc);
	return NULL;
}

static void test_threads(void)
{
	static const char *const names[] = {"rsa", "ed", NULL};
	struct trust *t = set_of(names);
	struct worker w[8];
	pthread_t th[8];
	atomic_uint failures;
	unsigned i;

	atomic_init(&failures, 0);
	for (i = 0; i < 8; i++) {
		w[i] = (struct worker){t, i, &failures};
		CHECK_EQ_U64(pthread_create(&th[i], NULL, worker, &w[i]), 0);
	}
	/* keys added while they verify: held, never trusted */
	for (i = 0; i < 10; i++)
		CHECK_EQ_U64(add(t, "other", i % 2 ? "gpg" : "asc", false), 1);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_U64(atomic_load(&failures), 0);
	CHECK_EQ_U64(trust_count(t), 2);
	trust_free(t);
}

/* The keys (SFFS_TRUST_BENCH_MIB: MiB of the bench's zeros, default 64). */
static int make_keys(void)
{
	const char *mib = getenv("SFFS_TRUST_BENCH_MIB");

	return trust_keys_make(dir, sizeof(dir), "trust", mib ? mib : "64");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (make_keys())
		return 1;
	test_fpr();
	test_add_keys();
	test_detached();
	test_untrusted();
	test_clearsigned();
	test_stream();
	test_stream_rate();
	test_threads();
	return check_done();
}
