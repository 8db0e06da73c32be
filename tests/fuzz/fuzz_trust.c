/* SPDX-License-Identifier: MIT */
/*
 * fuzz_trust.c - the OpenPGP verification (trust.h) on hostile bytes.
 *
 * Each input is used three ways: as a detached signature over a fixed
 * buffer, both at once and as a stream (the two must agree), checked
 * against a set holding one embedded ed25519 key; as a clearsigned
 * document (text only on TRUST_OK, NUL-terminated); and as key material
 * for an empty set (a count of primary keys, or a refusal with a reason).
 * The seeds (corpus/fuzz_trust/) were made once with gpg by that key:
 * signatures over the fixed buffer (binary, armoured, clearsigned), one
 * over other data, the key itself, and broken copies.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>

#include "sffs/trust.h"

static const char fixed[] = "sffs fuzz_trust fixed data\n";
static const char key_fpr[] = "FFEC16CF0C0A0806ECA4FB17768A0E99EFD6E05B";
/* gpg --export of key_fpr (ed25519, uid "sffs fuzz <fuzz@sffs.test>") */
static const unsigned char key[] = {
    0x98, 0x33, 0x04, 0x6b, 0x10, 0x2c, 0x8b, 0x16, 0x09, 0x2b, 0x06, 0x01,
    0x04, 0x01, 0xda, 0x47, 0x0f, 0x01, 0x01, 0x07, 0x40, 0xff, 0x29, 0x4b,
    0x0c, 0xbb, 0x1b, 0xb1, 0xce, 0xf9, 0x44, 0x53, 0x0b, 0x91, 0x29, 0x4b,
    0xf9, 0x64, 0xf7, 0xad, 0x5e, 0xe5, 0xc3, 0x43, 0x75, 0x44, 0x1d, 0x18,
    0x6f, 0xed, 0x7a, 0x43, 0x0f, 0xb4, 0x1a, 0x73, 0x66, 0x66, 0x73, 0x20,
    0x66, 0x75, 0x7a, 0x7a, 0x20, 0x3c, 0x66, 0x75, 0x7a, 0x7a, 0x40, 0x73,
    0x66, 0x66, 0x73, 0x2e, 0x74, 0x65, 0x73, 0x74, 0x3e, 0x88, 0x90, 0x04,
    0x13, 0x16, 0x08, 0x00, 0x38, 0x16, 0x21, 0x04, 0xff, 0xec, 0x16, 0xcf,
    0x0c, 0x0a, 0x08, 0x06, 0xec, 0xa4, 0xfb, 0x17, 0x76, 0x8a, 0x0e, 0x99,
    0xef, 0xd6, 0xe0, 0x5b, 0x05, 0x02, 0x6b, 0x10, 0x2c, 0x8b, 0x02, 0x1b,
    0x03, 0x05, 0x0b, 0x09, 0x08, 0x07, 0x02, 0x06, 0x15, 0x0a, 0x09, 0x08,
    0x0b, 0x02, 0x04, 0x16, 0x02, 0x03, 0x01, 0x02, 0x1e, 0x01, 0x02, 0x17,
    0x80, 0x00, 0x0a, 0x09, 0x10, 0x76, 0x8a, 0x0e, 0x99, 0xef, 0xd6, 0xe0,
    0x5b, 0x70, 0xf4, 0x01, 0x00, 0xd2, 0x3f, 0xf3, 0x60, 0xf9, 0x61, 0x10,
    0x24, 0xe8, 0xf5, 0x0b, 0x6c, 0x3e, 0xb7, 0x6c, 0xd2, 0x17, 0xda, 0x4f,
    0x82, 0xbf, 0xaa, 0x15, 0x26, 0x0d, 0x35, 0xe0, 0x54, 0x2d, 0xa9, 0x4c,
    0xe3, 0x01, 0x00, 0xaf, 0x79, 0x6d, 0x36, 0x67, 0xa3, 0x45, 0x26, 0xf7,
    0x8b, 0xa1, 0x4f, 0xc1, 0x17, 0x93, 0x1d, 0x3a, 0xaa, 0x34, 0x88, 0x4f,
    0x86, 0x71, 0xa6, 0xcd, 0xe7, 0x1f, 0x90, 0xf6, 0x83, 0xb3, 0x0f};

static struct trust *keyed(void)
{
	static struct trust *t;
	char err[256];

	if (!t) {
		t = trust_new();
		FUZZ_CHECK(t != NULL);
		FUZZ_CHECK(trust_add_keys(t, key, sizeof(key), true, err,
					  sizeof(err)) == 1);
		FUZZ_CHECK(trust_is_trusted(t, key_fpr));
	}
	return t;
}

static void check_result(const struct trust_result *r)
{
	FUZZ_CHECK(r->status >= TRUST_OK && r->status <= TRUST_ERROR);
	FUZZ_CHECK(memchr(r->fpr, '\0', sizeof(r->fpr)) != NULL);
	FUZZ_CHECK(memchr(r->keyid, '\0', sizeof(r->keyid)) != NULL);
	FUZZ_CHECK(memchr(r->detail, '\0', sizeof(r->detail)) != NULL);
	FUZZ_CHECK(r->detail[0] != '\0');
	FUZZ_CHECK(r->fpr[0] == '\0' || strlen(r->fpr) == TRUST_FPR_LEN);
	if (r->status == TRUST_OK)
		FUZZ_CHECK(!strcmp(r->fpr, key_fpr));
}

static void detached(const uint8_t *data, size_t size)
{
	struct trust_result r, rs;
	struct trust_stream *s;
	uint64_t seed = fuzz_seed(data, size);
	size_t off, n, len = sizeof(fixed) - 1;

	trust_verify_detached(keyed(), fixed, len, data, size, &r);
	check_result(&r);
	s = trust_stream_new(keyed(), data, size, &rs);
	if (!s) {
		FUZZ_CHECK(rs.status == r.status);
		return;
	}
	for (off = 0; off < len; off += n) {
		n = fuzz_piece(&seed, len - off);
		if (trust_stream_feed(s, fixed + off, n))
			break;
	}
	trust_stream_finish(s, &rs);
	check_result(&rs);
	FUZZ_CHECK(rs.status == r.status);
	FUZZ_CHECK(!strcmp(rs.fpr, r.fpr) && !strcmp(rs.keyid, r.keyid));
}

static void clearsigned(const uint8_t *data, size_t size)
{
	struct trust_result r;
	size_t textlen = 1;
	char *text = NULL;

	trust_verify_clearsigned(keyed(), data, size, &text, &textlen, &r);
	check_result(&r);
	if (r.status == TRUST_OK) {
		FUZZ_CHECK(text != NULL && text[textlen] == '\0');
		FUZZ_CHECK(textlen <= size);
	} else {
		FUZZ_CHECK(text == NULL && textlen == 0);
	}
	free(text);
}

static void keys(const uint8_t *data, size_t size)
{
	struct trust *t = trust_new();
	char err[256] = "", desc[256];
	int rc;

	FUZZ_CHECK(t != NULL);
	rc = trust_add_keys(t, data, size, true, err, sizeof(err));
	FUZZ_CHECK(rc > 0 || rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM);
	if (rc > 0) {
		FUZZ_CHECK(trust_count(t) >= 1 && trust_count(t) <= (size_t)rc);
		FUZZ_CHECK(trust_describe(t, desc, sizeof(desc)) ==
			   trust_count(t) * (TRUST_FPR_LEN + 1) - 1);
	} else {
		FUZZ_CHECK(err[0] != '\0' && trust_count(t) == 0);
	}
	trust_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	detached(data, size);
	clearsigned(data, size);
	keys(data, size);
	return 0;
}
