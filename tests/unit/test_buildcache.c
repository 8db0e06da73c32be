/* SPDX-License-Identifier: MIT */
/*
 * test_buildcache.c - the pure parts of buildcache.h: v3 manifests, the
 * databases of v2 and v3 caches, v2 spec documents (good, malformed,
 * truncated at every byte, oversized, wrong types, unknown keys), the
 * package names and every path builder. With SFFS_FIXTURE_DIR set (and
 * python3), it also makes unsigned v3 and v2 caches with
 * tests/lib/make-buildcache.py and reads them back the way the mount
 * would: index, manifests or spec files, and each tarball's sha256 and
 * length.
 */
#include "check.h"
#include "sffs/buildcache.h"
#include "sffs/tree.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define H1 "lssztiazyszookbpzulpfeqxfx5pfejq"
#define H2 "meen53d5lwcmtg7zq7cmusacbztomox2"
#define SHA_A "f915b869b623e847ed1a15e45b75555004b4b0e7d27a21e3160244a4a1cffbca"
#define SHA_B "c5bdab339b9964377be375ea087b32c8f94b7ea4dd20de540c2926b18a8a3177"

/* A spec manifest as Spack 1.0 writes it (indent 0, one key a line). */
static const char manifest_ok[] =
    "{\n\"version\":3,\n\"data\":[\n{\n\"contentLength\":69525,\n"
    "\"mediaType\":\"application/vnd.spack.install.v2.tar+gzip\",\n"
    "\"compression\":\"gzip\",\n\"checksumAlgorithm\":\"sha256\",\n"
    "\"checksum\":\"" SHA_A "\"\n},\n{\n\"contentLength\":288,\n"
    "\"mediaType\":\"application/vnd.spack.spec.v5+json\",\n"
    "\"compression\":\"gzip\",\n\"checksumAlgorithm\":\"sha256\",\n"
    "\"checksum\":\"" SHA_B "\"\n}\n]\n}";

static bool has(const char *err, const char *want)
{
	if (strstr(err, want))
		return true;
	fprintf(stderr, "  reason \"%s\" lacks \"%s\"\n", err, want);
	return false;
}

static void test_manifest_ok(void)
{
	struct bc_manifest m;
	const struct bc_blob *b;
	char err[256];

	CHECK(bc_parse_manifest(manifest_ok, strlen(manifest_ok), &m, err,
				sizeof(err)) == 0);
	CHECK_EQ_U64(m.n, 2);
	b = bc_manifest_find(&m, BC_MEDIA_TARBALL);
	CHECK(b && b == &m.data[0]);
	CHECK(b && !strcmp(b->checksum, SHA_A) && b->content_length == 69525 &&
	      !strcmp(b->compression, "gzip"));
	b = bc_manifest_find(&m, BC_MEDIA_SPEC);
	CHECK(b && !strcmp(b->checksum, SHA_B) && b->content_length == 288);
	CHECK(bc_manifest_find(&m, BC_MEDIA_INDEX) == NULL);
	CHECK(bc_manifest_find(NULL, BC_MEDIA_SPEC) == NULL);
	CHECK(bc_manifest_find(&m, NULL) == NULL);

	/* upper-case hex stored lower; unknown keys, a missing compression,
	 * zero length, an empty data array and trailing white space are
	 * fine */
	{
		static const char doc[] =
		    "{\"version\":3,\"extra\":{\"a\":[1,2]},\"data\":[{"
		    "\"mediaType\":\"application/pgp-keys\",\"x\":null,"
		    "\"checksumAlgorithm\":\"sha256\",\"contentLength\":0,"
		    "\"checksum\":\"F915B869B623E847ED1A15E45B75555004B4B0E7"
		    "D27A21E3160244A4A1CFFBCA\"}]} \n\t\r\n";

		CHECK(bc_parse_manifest(doc, strlen(doc), &m, err,
					sizeof(err)) == 0);
		CHECK(m.n == 1 && !strcmp(m.data[0].checksum, SHA_A) &&
		      m.data[0].content_length == 0 &&
		      m.data[0].compression[0] == '\0');
		CHECK(bc_manifest_find(&m, BC_MEDIA_KEY) == &m.data[0]);
	}
	CHECK(bc_parse_manifest("{\"version\":3,\"data\":[]}", 23, &m, err,
				sizeof(err)) == 0 &&
	      m.n == 0);
	CHECK(bc_parse_manifest(manifest_ok, strlen(manifest_ok), NULL, err,
				sizeof(err)) == -EINVAL);
	/* no err buffer at all */
	CHECK(bc_parse_manifest("[]", 2, &m, NULL, 0) == -EINVAL);
}

/* A manifest with one data[] entry made of these members. */
static char *one_blob(const char *members)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "{\"version\":3,\"data\":[{%s}]}", members);
	return buf;
}

#define GOOD_MT "\"mediaType\":\"" BC_MEDIA_TARBALL "\""
#define GOOD_ALG "\"checksumAlgorithm\":\"sha256\""
#define GOOD_SUM "\"checksum\":\"" SHA_A "\""
#define GOOD_LEN "\"contentLength\":5"

static void test_manifest_bad(void)
{
	static const struct {
		const char *doc, *want;
	} docs[] = {
	    {"", "empty"},
	    {"   ", "truncated"},
	    {"{\"version\":3,\"data\":[", "truncated"},
	    {"[]", "not a JSON object"},
	    {"\"x\"", "not a JSON object"},
	    {"{\"version\":3,\"data\":[]} x", "not JSON"},
	    {"{\"version\":3,\"data\":[]}{}", "not JSON"},
	    {"{\"version\":'3',\"data\":[]}", "not JSON"},
	    /* json-c takes single-quoted names even when strict */
	    {"{'version':3,'data':[]}", "single quote at offset 1"},
	    {"{\"version\":3,\"data\":[],\"a\\\"\":1,'b':2}", "offset 31"},
	    {"{\"version\":3,\"data\":[],}", "not JSON"},
	    {"{\"version\":3 /* c */,\"data\":[]}", "not JSON"},
	    {"{\"version\":2,\"data\":[]}", "version 2, not 3"},
	    {"{\"version\":4,\"data\":[]}", "not 3"},
	    {"{\"version\":\"3\",\"data\":[]}", "\"version\" is a string"},
	    {"{\"version\":3.0,\"data\":[]}", "\"version\" is a double"},
	    {"{\"data\":[]}", "no \"version\""},
	    {"{\"version\":3}", "no \"data\""},
	    {"{\"version\":3,\"data\":{}}", "\"data\" is a object"},
	    {"{\"version\":3,\"data\":[1]}", "not an object"},
	    {"{\"version\":3,\"data\":[null]}", "not an object"},
	};
	static const struct {
		const char *members, *want;
	} blobs[] = {
	    {GOOD_ALG "," GOOD_SUM "," GOOD_LEN, "no \"mediaType\""},
	    {GOOD_MT "," GOOD_SUM "," GOOD_LEN, "no \"checksumAlgorithm\""},
	    {GOOD_MT "," GOOD_ALG "," GOOD_LEN, "no \"checksum\""},
	    {GOOD_MT "," GOOD_ALG "," GOOD_SUM, "no \"contentLength\""},
	    {GOOD_MT ",\"checksumAlgorithm\":\"md5\"," GOOD_SUM "," GOOD_LEN,
	     "not sha256"},
	    {GOOD_MT
	     ",\"checksumAlgorithm\":\"sha256-long-long-name\"," GOOD_SUM
	     "," GOOD_LEN,
	     "longer than 15"},
	    {GOOD_MT "," GOOD_ALG ",\"checksum\":\"abc\"," GOOD_LEN,
	     "not 64 hex"},
	    {GOOD_MT "," GOOD_ALG ",\"checksum\":\"" SHA_A "0\"," GOOD_LEN,
	     "65 characters"},
	    {GOOD_MT "," GOOD_ALG
		     ",\"checksum\":\"g915b869b623e847ed1a15e45b75555004b4b0e7"
		     "d27a21e3160244a4a1cffbca\"," GOOD_LEN,
	     "not hex"},
	    {GOOD_MT "," GOOD_ALG ",\"checksum\":5," GOOD_LEN,
	     "\"checksum\" is a int"},
	    {GOOD_MT "," GOOD_ALG "," GOOD_SUM ",\"contentLength\":-1",
	     "out of range"},
	    {GOOD_MT "," GOOD_ALG "," GOOD_SUM
		     ",\"contentLength\":18446744073709551615",
	     "out of range"},
	    {GOOD_MT "," GOOD_ALG "," GOOD_SUM
		     ",\"contentLength\":99999999999999999999999",
	     ""},
	    {GOOD_MT "," GOOD_ALG "," GOOD_SUM ",\"contentLength\":5.5",
	     "is a double"},
	    {GOOD_MT "," GOOD_ALG "," GOOD_SUM ",\"contentLength\":\"5\"",
	     "is a string"},
	    {GOOD_MT "," GOOD_ALG "," GOOD_SUM ",\"contentLength\":true",
	     "is a boolean"},
	    {"\"mediaType\":null," GOOD_ALG "," GOOD_SUM "," GOOD_LEN,
	     "\"mediaType\" is a null"},
	    {"\"mediaType\":\"a\\u0000b\"," GOOD_ALG "," GOOD_SUM "," GOOD_LEN,
	     "holds a NUL"},
	    {GOOD_MT ",\"compression\":7," GOOD_ALG "," GOOD_SUM "," GOOD_LEN,
	     "\"compression\" is a int"},
	    {GOOD_MT ",\"compression\":\"0123456789abcdef\"," GOOD_ALG
		     "," GOOD_SUM "," GOOD_LEN,
	     "\"compression\" is longer than 15"},
	};
	struct bc_manifest m;
	char err[256], mt[BC_FIELD_MAX + 64], big[8192];
	size_t i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		memset(&m, 0xa5, sizeof(m));
		CHECK(bc_parse_manifest(docs[i].doc, strlen(docs[i].doc), &m,
					err, sizeof(err)) == -EINVAL);
		CHECK(has(err, docs[i].want));
		CHECK(m.n == 0);
	}
	for (i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++) {
		const char *d = one_blob(blobs[i].members);

		CHECK(bc_parse_manifest(d, strlen(d), &m, err, sizeof(err)) ==
		      -EINVAL);
		CHECK(*err && has(err, blobs[i].want));
		CHECK(m.n == 0);
	}
	/* NULL document, and NUL bytes inside */
	CHECK(bc_parse_manifest(NULL, 5, &m, err, sizeof(err)) == -EINVAL);
	CHECK(bc_parse_manifest("{\"version\":3,\"data\":[]}\0", 24, &m, err,
				sizeof(err)) == -EINVAL &&
	      has(err, "NUL"));
	/* invalid UTF-8 */
	CHECK(bc_parse_manifest("{\"version\":3,\"data\":[],\"x\":\"\xff\"}",
				31, &m, err, sizeof(err)) == -EINVAL);
	/* a media type of BC_FIELD_MAX bytes does not fit; one less does */
	memset(mt, 'm', BC_FIELD_MAX);
	mt[BC_FIELD_MAX] = '\0';
	snprintf(big, sizeof(big),
		 "{\"version\":3,\"data\":[{\"mediaType\":"
		 "\"%s\"," GOOD_ALG "," GOOD_SUM "," GOOD_LEN "}]}",
		 mt);
	CHECK(bc_parse_manifest(big, strlen(big), &m, err, sizeof(err)) ==
		  -EINVAL &&
	      has(err, "\"mediaType\" is longer than 127"));
	mt[BC_FIELD_MAX - 1] = '\0';
	snprintf(big, sizeof(big),
		 "{\"version\":3,\"data\":[{\"mediaType\":"
		 "\"%s\"," GOOD_ALG "," GOOD_SUM "," GOOD_LEN "}]}",
		 mt);
	CHECK(bc_parse_manifest(big, strlen(big), &m, err, sizeof(err)) == 0 &&
	      strlen(m.data[0].media_type) == BC_FIELD_MAX - 1);
}

/* BC_MAX_BLOBS entries are fine, one more is not; deep nesting is
 * refused; a document over BC_MAX_DOC is refused before it is read. */
static void test_manifest_limits(void)
{
	static const char entry[] =
	    "{" GOOD_MT "," GOOD_ALG "," GOOD_SUM "," GOOD_LEN "},";
	struct bc_manifest m;
	char err[256], *doc;
	size_t i, n, cap = 64 + (BC_MAX_BLOBS + 1) * sizeof(entry);

	doc = malloc(cap);
	CHECK(doc != NULL);
	if (!doc)
		return;
	for (n = BC_MAX_BLOBS; n <= BC_MAX_BLOBS + 1; n++) {
		strcpy(doc, "{\"version\":3,\"data\":[");
		for (i = 0; i < n; i++)
			strcat(doc, entry);
		doc[strlen(doc) - 1] = ']';
		strcat(doc, "}");
		CHECK(
		    bc_parse_manifest(doc, strlen(doc), &m, err, sizeof(err)) ==
		    (n == BC_MAX_BLOBS ? 0 : -EINVAL));
		if (n == BC_MAX_BLOBS)
			CHECK_EQ_U64(m.n, BC_MAX_BLOBS);
		else
			CHECK(has(err, "more than 16"));
	}
	free(doc);

	doc = malloc(4096);
	if (!doc)
		return;
	strcpy(doc, "{\"version\":3,\"data\":[],\"x\":");
	for (i = 0; i < 100; i++)
		strcat(doc, "[");
	for (i = 0; i < 100; i++)
		strcat(doc, "]");
	strcat(doc, "}");
	CHECK(bc_parse_manifest(doc, strlen(doc), &m, err, sizeof(err)) ==
		  -EINVAL &&
	      has(err, "not JSON"));
	free(doc);

	doc = malloc((size_t)BC_MAX_DOC + 1);
	CHECK(doc != NULL);
	if (!doc)
		return;
	memset(doc, ' ', (size_t)BC_MAX_DOC + 1);
	memcpy(doc, "{\"version\":3,\"data\":[]}", 23);
	CHECK(bc_parse_manifest(doc, BC_MAX_DOC, &m, err, sizeof(err)) == 0);
	CHECK(bc_parse_manifest(doc, (size_t)BC_MAX_DOC + 1, &m, err,
				sizeof(err)) == -EINVAL &&
	      has(err, "larger than"));
	free(doc);
}

/* Every proper prefix of a good document is refused, with a reason. */
static void test_truncated(void)
{
	struct bc_manifest m;
	char err[256];
	size_t len = strlen(manifest_ok), cut, refused = 0;

	for (cut = 0; cut < len; cut++) {
		char *p = malloc(cut ? cut : 1);

		if (!p)
			break;
		memcpy(p, manifest_ok, cut);
		if (bc_parse_manifest(p, cut, &m, err, sizeof(err)) ==
			-EINVAL &&
		    *err)
			refused++;
		free(p);
	}
	CHECK_EQ_U64(refused, len);
}

/* ---- databases ---- */

#define ARCH_STR                                                               \
	"\"arch\":{\"platform\":\"linux\",\"platform_os\":\"debian12\","       \
	"\"target\":\"x86_64\"}"
#define ARCH_OBJ                                                               \
	"\"arch\":{\"platform\":\"linux\",\"platform_os\":\"ubuntu22.04\","    \
	"\"target\":{\"name\":\"skylake\",\"vendor\":\"GenuineIntel\","        \
	"\"features\":[\"avx\"],\"generation\":0,\"parents\":[\"broadwell\"]}" \
	"}"

static const char db_v8[] =
    "{\"database\":{\"version\":\"8\",\"installs\":{"
    "\"" H2 "\":{\"spec\":{\"name\":\"munge\",\"version\":\"0.5.15\"," ARCH_STR
    ",\"namespace\":\"builtin\",\"parameters\":{\"cflags\":[]},"
    "\"package_hash\":\"abc\",\"annotations\":{\"original_specfile_version"
    "\":5},\"hash\":\"" H2 "\"},\"ref_count\":1,\"in_buildcache\":true},"
    "\"" H1 "\":{\"spec\":{\"name\":\"slurm\",\"version\":\"25.05.1\"," ARCH_OBJ
    ",\"dependencies\":[{\"name\":\"munge\",\"hash\":\"" H2 "\","
    "\"parameters\":{\"deptypes\":[\"build\",\"link\"],\"virtuals\":[]}}],"
    "\"hash\":\"" H1 "\"},\"ref_count\":0,\"in_buildcache\":true},"
    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":{\"spec\":{\"name\":\"gcc\"},"
    "\"ref_count\":2,\"in_buildcache\":false}"
    "}}}";

/* v7 (Spack 0.22): compilers on the node; in_buildcache absent counts
 * as in; a concrete compiler version with '='. */
static const char db_v7[] =
    "{\"database\":{\"installs\":{"
    "\"" H1 "\":{\"spec\":{\"name\":\"slurm\",\"version\":\"23.11.1\"," ARCH_STR
    ",\"compiler\":{\"name\":\"gcc\",\"version\":\"=12.2.0\"},"
    "\"hash\":\"" H1 "\"},\"ref_count\":0},"
    "\"" H2 "\":{\"spec\":{\"name\":\"munge\",\"version\":\"0.5.15\"," ARCH_STR
    ",\"compiler\":{\"name\":\"gcc\",\"version\":\"11.4.0\"}},"
    "\"ref_count\":1,\"in_buildcache\":true}"
    "},\"version\":\"7\"}}";

static void test_db_ok(void)
{
	struct bc_spec *s = NULL;
	char err[256];
	size_t n = 99;

	CHECK(bc_parse_db(db_v8, strlen(db_v8), &s, &n, err, sizeof(err)) == 0);
	CHECK_EQ_U64(n, 2);
	if (n == 2 && s) {
		CHECK(!strcmp(s[0].name, "munge") &&
		      !strcmp(s[0].version, "0.5.15") &&
		      !strcmp(s[0].hash, H2) &&
		      !strcmp(s[0].target, "x86_64") &&
		      !strcmp(s[0].os, "debian12") &&
		      !strcmp(s[0].platform, "linux") &&
		      !strcmp(s[0].compiler, "none") &&
		      !strcmp(s[0].compiler_version, "none"));
		CHECK(!strcmp(s[1].name, "slurm") &&
		      !strcmp(s[1].target, "skylake") &&
		      !strcmp(s[1].os, "ubuntu22.04") &&
		      !strcmp(s[1].hash, H1));
	}
	free(s);
	s = NULL;
	CHECK(bc_parse_db(db_v7, strlen(db_v7), &s, &n, err, sizeof(err)) == 0);
	CHECK_EQ_U64(n, 2);
	if (n == 2 && s) {
		CHECK(!strcmp(s[0].name, "slurm") &&
		      !strcmp(s[0].compiler, "gcc") &&
		      !strcmp(s[0].compiler_version, "12.2.0"));
		CHECK(!strcmp(s[1].compiler_version, "11.4.0") &&
		      !strcmp(s[1].hash, H2));
	}
	free(s);
	/* an empty database, version 6, an integer version */
	s = NULL;
	{
		static const char d6[] =
		    "{\"database\":{\"version\":\"6\",\"installs\":{}}}";
		static const char d8[] =
		    "{\"database\":{\"version\":8,\"installs\":{}}}";

		CHECK(bc_parse_db(d6, strlen(d6), &s, &n, err, sizeof(err)) ==
			  0 &&
		      n == 0);
		free(s);
		s = NULL;
		CHECK(bc_parse_db(d8, strlen(d8), &s, &n, err, sizeof(err)) ==
			  0 &&
		      n == 0);
	}
	free(s);
}

/* A v8 database of one install whose spec members are these. */
static char *db_one(const char *key, const char *spec, const char *rest)
{
	static char buf[8192];

	snprintf(buf, sizeof(buf),
		 "{\"database\":{\"version\":\"8\",\"installs\":{\"%s\":"
		 "{\"spec\":{%s}%s}}}}",
		 key, spec, rest);
	return buf;
}

#define NV "\"name\":\"zlib\",\"version\":\"1.3\""

static void test_db_bad(void)
{
	static const struct {
		const char *doc, *want;
	} docs[] = {
	    {"{}", "no \"database\""},
	    {"{\"database\":[]}", "\"database\" is a array"},
	    {"{\"database\":{\"installs\":{}}}", "no \"version\""},
	    {"{\"database\":{\"version\":\"5\",\"installs\":{}}}",
	     "\"5\" is not 6, 7 or 8"},
	    {"{\"database\":{\"version\":\"9\",\"installs\":{}}}", "not 6, 7"},
	    {"{\"database\":{\"version\":\"8.0\",\"installs\":{}}}", "not 6"},
	    {"{\"database\":{\"version\":8.0,\"installs\":{}}}", "a double"},
	    {"{\"database\":{\"version\":null,\"installs\":{}}}", "a null"},
	    {"{\"database\":{\"version\":\"8\"}}", "no \"installs\""},
	    {"{\"database\":{\"version\":\"8\",\"installs\":[]}}",
	     "\"installs\" is a array"},
	    {"{\"database\":{\"version\":\"8\",\"installs\":{\"" H1 "\":3}}}",
	     "not an object"},
	    {"{\"database\":{\"version\":\"8\",\"installs\":{\"" H1 "\":{}}}}",
	     "no \"spec\""},
	    {"{\"database\":{\"version\":\"8\",\"installs\":{\"" H1
	     "\":{\"spec\":{},\"in_buildcache\":1}}}}",
	     "\"in_buildcache\" is a int"},
	};
	static const struct {
		const char *key, *spec, *rest, *want;
	} specs[] = {
	    {H1, "\"version\":\"1\"," ARCH_STR, "", "no \"name\""},
	    {H1, "\"name\":\"zlib\"," ARCH_STR, "", "no \"version\""},
	    {H1, NV, "", "no \"arch\""},
	    {H1, NV ",\"arch\":\"linux-x-y\"", "", "\"arch\" is a string"},
	    {H1, NV ",\"arch\":{\"platform_os\":\"a\",\"target\":\"b\"}", "",
	     "no \"platform\""},
	    {H1, NV ",\"arch\":{\"platform\":\"a\",\"target\":\"b\"}", "",
	     "no \"platform_os\""},
	    {H1, NV ",\"arch\":{\"platform\":\"a\",\"platform_os\":\"b\"}", "",
	     "no \"target\""},
	    {H1,
	     NV ",\"arch\":{\"platform\":\"a\",\"platform_os\":\"b\","
		"\"target\":3}",
	     "", "neither a string nor an object"},
	    {H1,
	     NV ",\"arch\":{\"platform\":\"a\",\"platform_os\":\"b\","
		"\"target\":{\"vendor\":\"x\"}}",
	     "", "no \"name\""},
	    {H1,
	     NV ",\"arch\":{\"platform\":\"a/b\",\"platform_os\":\"b\","
		"\"target\":\"c\"}",
	     "", "\"platform\" holds a '/'"},
	    {H1,
	     NV ",\"arch\":{\"platform\":\"a\",\"platform_os\":\"..\","
		"\"target\":\"c\"}",
	     "", "\"platform_os\" is \"..\""},
	    {H1,
	     NV ",\"arch\":{\"platform\":\"a\",\"platform_os\":\"b\","
		"\"target\":\"\"}",
	     "", "empty \"target\""},
	    {H1, "\"name\":\"\",\"version\":\"1\"," ARCH_STR, "",
	     "empty \"name\""},
	    {H1, "\"name\":\".\",\"version\":\"1\"," ARCH_STR, "",
	     "\"name\" is \".\""},
	    {H1, "\"name\":\"a/b\",\"version\":\"1\"," ARCH_STR, "",
	     "\"name\" holds a '/'"},
	    {H1, "\"name\":\"a\",\"version\":\"../x\"," ARCH_STR, "",
	     "\"version\" holds a '/'"},
	    {H1, "\"name\":\"a\\u0000b\",\"version\":\"1\"," ARCH_STR, "",
	     "holds a NUL"},
	    {H1, "\"name\":7,\"version\":\"1\"," ARCH_STR, "",
	     "\"name\" is a int"},
	    {H1, "\"name\":\"a\",\"version\":[1]," ARCH_STR, "",
	     "\"version\" is a array"},
	    {H1, NV "," ARCH_STR ",\"hash\":\"" H2 "\"", "",
	     "has spec.hash " H2},
	    {H1, NV "," ARCH_STR ",\"hash\":5", "", "\"hash\" is a int"},
	    {"lssztiazyszookbpzulpfeqxfx5pfej", NV "," ARCH_STR, "",
	     "not a 32-character base32 hash"},
	    {"lssztiazyszookbpzulpfeqxfx5pfejqq", NV "," ARCH_STR, "",
	     "base32"},
	    {"lssztiazyszookbpzulpfeqxfx5pfej1", NV "," ARCH_STR, "", "base32"},
	    {"lssztiazyszookbpzulpfeqxfx5pfej8", NV "," ARCH_STR, "", "base32"},
	    {"Lssztiazyszookbpzulpfeqxfx5pfejq", NV "," ARCH_STR, "", "base32"},
	    {"", NV "," ARCH_STR, "", "base32"},
	    {H1, NV "," ARCH_STR ",\"compiler\":\"gcc@12\"", "",
	     "\"compiler\" is a string"},
	    {H1, NV "," ARCH_STR ",\"compiler\":{\"name\":\"gcc\"}", "",
	     "no \"version\""},
	    {H1, NV "," ARCH_STR ",\"compiler\":{\"version\":\"1\"}", "",
	     "no \"name\""},
	    {H1,
	     NV "," ARCH_STR
		",\"compiler\":{\"name\":\"gcc\",\"version\":\"=\"}",
	     "", "empty \"compiler.version\""},
	    {H1,
	     NV "," ARCH_STR
		",\"compiler\":{\"name\":\"g/cc\",\"version\":\"1\"}",
	     "", "\"compiler.name\" holds a '/'"},
	};
	struct bc_spec *s;
	char err[256], longname[BC_FIELD_MAX + 1], spec[1024];
	size_t i, n;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		s = (struct bc_spec *)1;
		n = 7;
		CHECK(bc_parse_db(docs[i].doc, strlen(docs[i].doc), &s, &n, err,
				  sizeof(err)) == -EINVAL);
		CHECK(has(err, docs[i].want));
		CHECK(s == NULL && n == 0);
	}
	for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		const char *d =
		    db_one(specs[i].key, specs[i].spec, specs[i].rest);

		s = NULL;
		n = 7;
		CHECK(bc_parse_db(d, strlen(d), &s, &n, err, sizeof(err)) ==
		      -EINVAL);
		CHECK(has(err, specs[i].want));
		CHECK(s == NULL && n == 0);
	}
	/* a name of BC_FIELD_MAX bytes is refused, never cut */
	memset(longname, 'n', BC_FIELD_MAX);
	longname[BC_FIELD_MAX] = '\0';
	snprintf(spec, sizeof(spec), "\"name\":\"%s\",\"version\":\"1\",%s",
		 longname, ARCH_STR);
	{
		const char *d = db_one(H1, spec, "");

		CHECK(bc_parse_db(d, strlen(d), &s, &n, err, sizeof(err)) ==
			  -EINVAL &&
		      has(err, "\"name\" is longer than 127"));
	}
	/* a bad install is refused even when skipped ones come first */
	{
		static const char d[] =
		    "{\"database\":{\"version\":\"8\",\"installs\":{"
		    "\"" H2 "\":{\"spec\":1,\"in_buildcache\":false},"
		    "\"" H1 "\":{\"spec\":{\"name\":\"x\"}}}}}";

		CHECK(bc_parse_db(d, strlen(d), &s, &n, err, sizeof(err)) ==
			  -EINVAL &&
		      has(err, "install " H1));
	}
	CHECK(bc_parse_db(db_v8, strlen(db_v8), NULL, &n, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(bc_parse_db(db_v8, strlen(db_v8), &s, NULL, err, sizeof(err)) ==
	      -EINVAL);
	/* truncated at every byte */
	{
		size_t len = strlen(db_v8), cut, refused = 0;

		for (cut = 0; cut < len; cut++) {
			s = NULL;
			if (bc_parse_db(db_v8, cut, &s, &n, err, sizeof(err)) ==
				-EINVAL &&
			    !s && *err)
				refused++;
		}
		CHECK_EQ_U64(refused, len);
	}
}

/* ---- v2 spec documents ---- */

static const char v2_spec[] =
    "{\n\"spec\":{\n\"_meta\":{\n\"version\":4\n},\n\"nodes\":[\n"
    "{\"name\":\"munge\",\"version\":\"0.5.15\"," ARCH_STR ",\"hash\":\"" H2
    "\"},\n"
    "{\"name\":\"slurm\",\"version\":\"23.11.1\"," ARCH_STR
    ",\"compiler\":{\"name\":\"gcc\",\"version\":\"12.2.0\"},"
    "\"dependencies\":[{\"name\":\"munge\",\"hash\":\"" H2 "\"}],"
    "\"hash\":\"" H1 "\"}\n]\n},\n\"buildcache_layout_version\":2,\n"
    "\"binary_cache_checksum\":{\n\"hash_algorithm\":\"sha256\",\n"
    "\"hash\":\"" SHA_A "\"\n}\n}";

static struct bc_spec spec_of(const char *name, const char *version,
			      const char *hash)
{
	struct bc_spec s;

	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "%s", name);
	snprintf(s.version, sizeof(s.version), "%s", version);
	snprintf(s.hash, sizeof(s.hash), "%s", hash);
	snprintf(s.platform, sizeof(s.platform), "linux");
	snprintf(s.os, sizeof(s.os), "debian12");
	snprintf(s.target, sizeof(s.target), "x86_64");
	snprintf(s.compiler, sizeof(s.compiler), "gcc");
	snprintf(s.compiler_version, sizeof(s.compiler_version), "12.2.0");
	return s;
}

static char *v2_doc(const char *layout, const char *bcc, const char *hash)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf),
		 "{\"spec\":{\"_meta\":{\"version\":4},\"nodes\":["
		 "{\"name\":\"slurm\",\"version\":\"23.11.1\",\"hash\":\"%s\"}"
		 "]}%s%s}",
		 hash, layout, bcc);
	return buf;
}

#define LAYOUT2 ",\"buildcache_layout_version\":2"
#define BCC_OK                                                                 \
	",\"binary_cache_checksum\":{\"hash_algorithm\":\"sha256\","           \
	"\"hash\":\"" SHA_A "\"}"

static void test_v2_spec(void)
{
	static const struct {
		const char *layout, *bcc, *hash, *want;
	} bad[] = {
	    {"", BCC_OK, H1, "buildcache_layout_version 0 is not 1 or 2"},
	    {",\"buildcache_layout_version\":3", BCC_OK, H1, "3 is not 1 or 2"},
	    {",\"buildcache_layout_version\":\"2\"", BCC_OK, H1, "a string"},
	    {LAYOUT2, "", H1, "no \"binary_cache_checksum\""},
	    {LAYOUT2, ",\"binary_cache_checksum\":\"x\"", H1, "a string"},
	    {LAYOUT2,
	     ",\"binary_cache_checksum\":{\"hash_algorithm\":\"md5\","
	     "\"hash\":\"" SHA_A "\"}",
	     H1, "hash_algorithm is not"},
	    {LAYOUT2, ",\"binary_cache_checksum\":{\"hash\":\"" SHA_A "\"}", H1,
	     "hash_algorithm is not"},
	    {LAYOUT2,
	     ",\"binary_cache_checksum\":{\"hash_algorithm\":\"sha256\"}", H1,
	     "no \"hash\""},
	    {LAYOUT2,
	     ",\"binary_cache_checksum\":{\"hash_algorithm\":\"sha256\","
	     "\"hash\":\"abcd\"}",
	     H1, "not 64 hex"},
	    {LAYOUT2, BCC_OK, H2, "no node with hash " H1},
	};
	struct bc_spec slurm = spec_of("slurm", "23.11.1", H1);
	struct bc_spec munge = spec_of("munge", "0.5.15", H2);
	struct bc_spec other;
	struct bc_blob b;
	char err[256];
	size_t i;

	CHECK(bc_parse_v2_spec(v2_spec, strlen(v2_spec), &slurm, &b, err,
			       sizeof(err)) == 0);
	CHECK(!strcmp(b.checksum, SHA_A) && b.content_length == 0 &&
	      !strcmp(b.media_type, BC_MEDIA_TARBALL) &&
	      !strcmp(b.compression, "gzip"));
	CHECK(bc_parse_v2_spec(v2_spec, strlen(v2_spec), &munge, &b, err,
			       sizeof(err)) == 0);
	{
		const char *d =
		    v2_doc(",\"buildcache_layout_version\":1", BCC_OK, H1);

		CHECK(bc_parse_v2_spec(d, strlen(d), &slurm, &b, err,
				       sizeof(err)) == 0);
	}
	other = spec_of("slurm", "23.11.2", H1);
	CHECK(bc_parse_v2_spec(v2_spec, strlen(v2_spec), &other, &b, err,
			       sizeof(err)) == -EINVAL &&
	      has(err, "is not version \"23.11.2\""));
	other = spec_of("slurmx", "23.11.1", H1);
	CHECK(bc_parse_v2_spec(v2_spec, strlen(v2_spec), &other, &b, err,
			       sizeof(err)) == -EINVAL &&
	      has(err, "is not named \"slurmx\""));
	CHECK(b.checksum[0] == '\0');
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *d = v2_doc(bad[i].layout, bad[i].bcc, bad[i].hash);

		CHECK(bc_parse_v2_spec(d, strlen(d), &slurm, &b, err,
				       sizeof(err)) == -EINVAL);
		CHECK(has(err, bad[i].want));
		CHECK(b.checksum[0] == '\0');
	}
	CHECK(bc_parse_v2_spec("{\"spec\":{}}", 11, &slurm, &b, err,
			       sizeof(err)) == -EINVAL);
	CHECK(bc_parse_v2_spec("{\"spec\":{\"nodes\":{}}" LAYOUT2 "}", 51,
			       &slurm, &b, err, sizeof(err)) == -EINVAL);
	CHECK(bc_parse_v2_spec("{\"buildcache_layout_version\":2}", 31, &slurm,
			       &b, err, sizeof(err)) == -EINVAL &&
	      has(err, "no \"spec\""));
	CHECK(bc_parse_v2_spec(v2_spec, strlen(v2_spec), NULL, &b, err,
			       sizeof(err)) == -EINVAL);
	CHECK(bc_parse_v2_spec(v2_spec, strlen(v2_spec), &slurm, NULL, err,
			       sizeof(err)) == -EINVAL);
	{
		size_t len = strlen(v2_spec), cut, refused = 0;

		for (cut = 0; cut < len; cut++)
			if (bc_parse_v2_spec(v2_spec, cut, &slurm, &b, err,
					     sizeof(err)) == -EINVAL &&
			    *err)
				refused++;
		CHECK_EQ_U64(refused, len);
	}
}

/* ---- names and paths ---- */

/* ---- v3 spec blobs: the package they name ---- */

static void test_v3_spec(void)
{
	struct bc_spec slurm = spec_of("slurm", "23.11.1", H1);
	struct bc_spec munge = spec_of("munge", "0.5.15", H2);
	struct bc_spec other;
	const char *d = v2_spec; /* spec.nodes as in a v5 spec */
	size_t len = strlen(v2_spec);
	char err[256];

	CHECK(bc_parse_v3_spec(d, len, &slurm, err, sizeof(err)) == 0);
	CHECK(bc_parse_v3_spec(d, len, &munge, err, sizeof(err)) == 0);
	/* the hash listed, another name: both named in the message */
	other = spec_of("slurmx", "23.11.1", H1);
	CHECK(bc_parse_v3_spec(d, len, &other, err, sizeof(err)) == -EINVAL);
	CHECK(has(err, "named \"slurm\", is not named \"slurmx\""));
	CHECK(has(err, H1));
	other = spec_of("slurm", "23.11.2", H1);
	CHECK(bc_parse_v3_spec(d, len, &other, err, sizeof(err)) == -EINVAL);
	CHECK(has(err, "version \"23.11.1\", is not version \"23.11.2\""));
	/* munge's name and version, but slurm's hash: not munge's node */
	other = spec_of("munge", "0.5.15", H1);
	CHECK(bc_parse_v3_spec(d, len, &other, err, sizeof(err)) == -EINVAL);
	CHECK(has(err, "named \"slurm\", is not named \"munge\""));
	/* a spec that does not hold the hash listed */
	other = spec_of("slurm", "23.11.1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	CHECK(bc_parse_v3_spec(d, len, &other, err, sizeof(err)) == -EINVAL);
	CHECK(has(err, "no node with hash aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
		       "(\"slurm\" version \"23.11.1\"): it is the spec of "
		       "\"munge\" version \"0.5.15\" hash " H2));
	/* a node whose name is not a string */
	d = "{\"spec\":{\"nodes\":[{\"name\":7,\"version\":\"1\","
	    "\"hash\":\"" H1 "\"}]}}";
	other = spec_of("slurm", "1", H1);
	CHECK(bc_parse_v3_spec(d, strlen(d), &other, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(has(err, "named \"(none)\""));
	CHECK(bc_parse_v3_spec("{}", 2, &slurm, err, sizeof(err)) == -EINVAL);
	CHECK(bc_parse_v3_spec("", 0, &slurm, err, sizeof(err)) == -EINVAL);
	CHECK(bc_parse_v3_spec(v2_spec, len, NULL, err, sizeof(err)) ==
	      -EINVAL);
}

static void test_paths(void)
{
	struct bc_spec s = spec_of("slurm", "23.11.1", H1);
	struct bc_spec none = spec_of("munge", "0.5.15", H2);
	char buf[512];
	size_t need;

	snprintf(none.compiler, sizeof(none.compiler), "none");
	snprintf(none.compiler_version, sizeof(none.compiler_version), "none");

	CHECK(bc_package_name(&s, buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "slurm-23.11.1-lssztia"));
	CHECK(bc_package_name(&none, buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "munge-0.5.15-meen53d"));
	CHECK(bc_package_name(&s, buf, 21) == -ENAMETOOLONG && buf[0] == '\0');
	CHECK(bc_package_name(&s, buf, 22) == 0);
	CHECK(bc_package_name(&s, NULL, 0) == -ENAMETOOLONG);
	CHECK(bc_package_name(NULL, buf, sizeof(buf)) == -EINVAL);

	CHECK(bc_v3_spec_manifest_path(&s, buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "v3/manifests/spec/slurm/slurm-23.11.1-" H1
			   ".spec.manifest.json"));
	need = strlen(buf) + 1;
	CHECK(bc_v3_spec_manifest_path(&s, buf, need) == 0);
	CHECK(bc_v3_spec_manifest_path(&s, buf, need - 1) == -ENAMETOOLONG);

	CHECK(bc_v3_blob_path(SHA_A, buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "blobs/sha256/f9/" SHA_A));
	CHECK(bc_v3_blob_path("F915B869B623E847ED1A15E45B75555004B4B0E7D27A21"
			      "E3160244A4A1CFFBCA",
			      buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "blobs/sha256/f9/" SHA_A));
	CHECK(bc_v3_blob_path(SHA_A, buf, 80) == -ENAMETOOLONG);
	CHECK(bc_v3_blob_path(SHA_A, buf, 81) == 0);
	CHECK(bc_v3_blob_path("f915", buf, sizeof(buf)) == -EINVAL);
	CHECK(bc_v3_blob_path("../../../../etc/passwd/xxxxxxxxxxxxxxxxxxxxxxx"
			      "xxxxxxxxxxxxxxxxxx",
			      buf, sizeof(buf)) == -EINVAL);
	CHECK(bc_v3_blob_path(NULL, buf, sizeof(buf)) == -EINVAL);

	CHECK(
	    bc_v3_key_manifest_path("D73BFAA80884CB2624E79C082C0B9B43BABFAED6",
				    buf, sizeof(buf)) == 0 &&
	    !strcmp(buf, "v3/manifests/key/D73BFAA80884CB2624E79C082C0B9B43"
			 "BABFAED6.key.manifest.json"));
	CHECK(bc_v3_key_manifest_path("../x", buf, sizeof(buf)) == -EINVAL);
	CHECK(bc_v3_key_manifest_path("", buf, sizeof(buf)) == -EINVAL);
	CHECK(bc_v3_key_manifest_path("AB", buf, 10) == -ENAMETOOLONG);

	CHECK(bc_v2_spec_path(&s, true, buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "build_cache/linux-debian12-x86_64-gcc-12.2.0-slurm-"
			   "23.11.1-" H1 ".spec.json.sig"));
	CHECK(bc_v2_spec_path(&s, false, buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "build_cache/linux-debian12-x86_64-gcc-12.2.0-slurm-"
			   "23.11.1-" H1 ".spec.json"));
	CHECK(bc_v2_spec_path(&none, false, buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "build_cache/linux-debian12-x86_64-none-none-munge-"
			   "0.5.15-" H2 ".spec.json"));
	CHECK(bc_v2_tarball_path(&s, buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "build_cache/linux-debian12-x86_64/gcc-12.2.0/"
			   "slurm-23.11.1/linux-debian12-x86_64-gcc-12.2.0-"
			   "slurm-23.11.1-" H1 ".spack"));
	need = strlen(buf) + 1;
	CHECK(bc_v2_tarball_path(&s, buf, need) == 0);
	CHECK(bc_v2_tarball_path(&s, buf, need - 1) == -ENAMETOOLONG);
	CHECK(bc_v2_spec_path(&s, true, buf, 20) == -ENAMETOOLONG);
	CHECK(bc_v2_key_path("D73BFAA80884CB2624E79C082C0B9B43BABFAED6", buf,
			     sizeof(buf)) == 0 &&
	      !strcmp(buf, "build_cache/_pgp/D73BFAA80884CB2624E79C082C0B9B43"
			   "BABFAED6.pub"));
	CHECK(bc_v2_key_path("D73B/", buf, sizeof(buf)) == -EINVAL);
	CHECK(bc_v2_tarball_path(NULL, buf, sizeof(buf)) == -EINVAL);
	CHECK(bc_v2_spec_path(NULL, true, buf, sizeof(buf)) == -EINVAL);
	CHECK(bc_v3_spec_manifest_path(NULL, buf, sizeof(buf)) == -EINVAL);
}

/* ---- caches made by tests/lib/make-buildcache.py ---- */

static char *slurp(const char *dir, const char *rel, size_t *len)
{
	char path[4096];
	FILE *f;
	char *buf = NULL;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		if (buf) {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

/* The file dir/rel has sha256 want (and want_len bytes, unless 0). */
static bool file_matches(const char *dir, const char *rel, const char *want,
			 uint64_t want_len)
{
	unsigned char md[32];
	char hex[65];
	size_t len = 0;
	unsigned i;
	char *data = slurp(dir, rel, &len);
	bool ok;

	if (!data) {
		fprintf(stderr, "  cannot read %s/%s\n", dir, rel);
		return false;
	}
	ok = EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) == 1;
	free(data);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return ok && !strcmp(hex, want) && (!want_len || want_len == len);
}

static bool make_cache(const char *fixture, const char *out, const char *layout)
{
	char cmd[8192];
	int st;

	snprintf(cmd, sizeof(cmd),
		 "rm -rf '%s' && python3 '%s/tests/lib/make-buildcache.py' "
		 "--fixture '%s' --out '%s' --layout %s --packages 12 "
		 "--arch-twice >/dev/null",
		 out, getenv("SFFS_SRC"), fixture, out, layout);
	st = system(cmd); // NOLINT(cert-env33-c): a test helper
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The gzip'd file dir/rel decompressed (gzip -dc), or NULL. */
static char *slurp_gunzip(const char *dir, const char *rel, size_t *len)
{
	char cmd[5200], *buf = malloc(BC_MAX_SPEC + 1);
	FILE *p;

	snprintf(cmd, sizeof(cmd), "gzip -dc '%s/%s'", dir, rel);
	p = buf ? popen(cmd, "r") : NULL;
	if (!p) {
		free(buf);
		return NULL;
	}
	*len = fread(buf, 1, BC_MAX_SPEC, p);
	if (pclose(p) != 0) {
		free(buf);
		return NULL;
	}
	buf[*len] = '\0';
	return buf;
}

/* The spec blob of manifest m names package s, and only s: another
 * package of the database (next) is refused. */
static bool spec_names(const char *dir, const struct bc_manifest *m,
		       const struct bc_spec *s, const struct bc_spec *next)
{
	const struct bc_blob *b = bc_manifest_find(m, BC_MEDIA_SPEC);
	char rel[1024], err[256];
	size_t len = 0;
	char *doc;
	bool ok;

	if (!b || strcmp(b->compression, "gzip") ||
	    bc_v3_blob_path(b->checksum, rel, sizeof(rel)))
		return false;
	doc = slurp_gunzip(dir, rel, &len);
	ok = doc && bc_parse_v3_spec(doc, len, s, err, sizeof(err)) == 0;
	if (doc && !ok)
		fprintf(stderr, "  %s: %s\n", rel, err);
	ok =
	    ok && bc_parse_v3_spec(doc, len, next, err, sizeof(err)) == -EINVAL;
	free(doc);
	return ok;
}

static void check_v3_cache(const char *dir)
{
	struct bc_manifest m;
	const struct bc_blob *b;
	struct bc_spec *s = NULL;
	char err[256], rel[1024];
	size_t len = 0, n = 0, i, ok = 0;
	char *doc = slurp(dir, "v3/manifests/index/index.manifest.json", &len);

	CHECK(doc && bc_parse_manifest(doc, len, &m, err, sizeof(err)) == 0);
	free(doc);
	b = bc_manifest_find(&m, BC_MEDIA_INDEX);
	CHECK(b && !strcmp(b->compression, "none"));
	if (!b)
		return;
	CHECK(bc_v3_blob_path(b->checksum, rel, sizeof(rel)) == 0);
	CHECK(file_matches(dir, rel, b->checksum, b->content_length));
	doc = slurp(dir, rel, &len);
	CHECK(doc && bc_parse_db(doc, len, &s, &n, err, sizeof(err)) == 0);
	free(doc);
	CHECK_EQ_U64(n, 13);
	for (i = 0; i < n; i++) {
		CHECK(!strcmp(s[i].compiler, "none"));
		if (bc_v3_spec_manifest_path(&s[i], rel, sizeof(rel)))
			continue;
		doc = slurp(dir, rel, &len);
		if (!doc ||
		    bc_parse_manifest(doc, len, &m, err, sizeof(err)) != 0) {
			free(doc);
			continue;
		}
		free(doc);
		b = bc_manifest_find(&m, BC_MEDIA_TARBALL);
		if (b && !bc_v3_blob_path(b->checksum, rel, sizeof(rel)) &&
		    file_matches(dir, rel, b->checksum, b->content_length) &&
		    spec_names(dir, &m, &s[i], &s[(i + 1) % n]))
			ok++;
	}
	CHECK_EQ_U64(ok, 13);
	/* the package built twice: same name, another target and hash */
	CHECK(n == 13 && !strcmp(s[0].name, s[12].name) &&
	      strcmp(s[0].hash, s[12].hash) != 0 &&
	      !strcmp(s[12].target, "x86_64_v3"));
	free(s);
}

static void check_v2_cache(const char *dir)
{
	struct bc_spec *s = NULL;
	struct bc_blob tb;
	char err[256], rel[1024];
	size_t len = 0, n = 0, i, ok = 0;
	char *doc = slurp(dir, "build_cache/index.json", &len);
	char *hash;

	CHECK(doc && bc_parse_db(doc, len, &s, &n, err, sizeof(err)) == 0);
	hash = slurp(dir, "build_cache/index.json.hash", &len);
	CHECK(hash && file_matches(dir, "build_cache/index.json", hash, 0));
	free(hash);
	free(doc);
	CHECK_EQ_U64(n, 13);
	for (i = 0; i < n; i++) {
		CHECK(!strcmp(s[i].compiler, "gcc"));
		if (bc_v2_spec_path(&s[i], false, rel, sizeof(rel)))
			continue;
		doc = slurp(dir, rel, &len);
		if (!doc || bc_parse_v2_spec(doc, len, &s[i], &tb, err,
					     sizeof(err)) != 0) {
			fprintf(stderr, "  %s: %s\n", rel, err);
			free(doc);
			continue;
		}
		free(doc);
		if (!bc_v2_tarball_path(&s[i], rel, sizeof(rel)) &&
		    file_matches(dir, rel, tb.checksum, 0))
			ok++;
	}
	CHECK_EQ_U64(ok, 13);
	free(s);
}

/* Whether line is one of the lines of the file dir/rel. */
static bool listed(const char *dir, const char *rel, const char *line)
{
	size_t len = 0, n = strlen(line);
	char *doc = slurp(dir, rel, &len);
	const char *p = doc;
	bool found = false;

	while (p && !found && (p = strstr(p, line)) != NULL) {
		found = (p == doc || p[-1] == '\n') &&
			(p[n] == '\n' || p[n] == '\0');
		p += n;
	}
	free(doc);
	return found;
}

/*
 * The real mirror Spack 1.0 wrote (Spack's test data, copied under
 * tests/data/spack-mirrors): every spec file and tarball name derived
 * from its index is a file of that mirror. 4 of its 6 packages name
 * their compiler as a dependency (or an annotation), not in a compiler
 * field.
 */
static void test_real_v2_mirror(void)
{
	static const char *const want[][3] = {
	    {"libelf", "core2", "gcc-10.2.1"},
	    {"compiler-wrapper", "m1", "none-none"},
	    {"gcc-runtime", "m1", "none-none"},
	    {"libelf", "m1", "gcc-10.2.1"},
	    {"libdwarf", "m1", "gcc-10.2.1"},
	    {"libdwarf", "core2", "gcc-10.2.1"},
	};
	char dir[4096], rel[1024], cc[2 * BC_FIELD_MAX + 2], err[256];
	struct bc_spec *s = NULL;
	size_t len = 0, n = 0, i, found = 0;
	char *doc;

	if (!getenv("SFFS_SRC")) {
		CHECK(!"SFFS_SRC unset");
		return;
	}
	snprintf(dir, sizeof(dir),
		 "%s/tests/data/spack-mirrors/v2_layout/unsigned",
		 getenv("SFFS_SRC"));
	doc = slurp(dir, "build_cache/index.json", &len);
	CHECK(doc && bc_parse_db(doc, len, &s, &n, err, sizeof(err)) == 0);
	free(doc);
	/* gcc itself is a build-only external node, not in the cache */
	CHECK_EQ_U64(n, 6);
	for (i = 0; i < n && i < 6; i++) {
		snprintf(cc, sizeof(cc), "%s-%s", s[i].compiler,
			 s[i].compiler_version);
		CHECK(!strcmp(s[i].name, want[i][0]) &&
		      !strcmp(s[i].target, want[i][1]) &&
		      !strcmp(cc, want[i][2]));
		if (!bc_v2_spec_path(&s[i], false, rel, sizeof(rel)) &&
		    listed(dir, "FILES", rel) &&
		    !bc_v2_tarball_path(&s[i], rel, sizeof(rel)) &&
		    listed(dir, "FILES", rel))
			found++;
		else
			fprintf(stderr, "  not in the real mirror: %s\n", rel);
	}
	CHECK_EQ_U64(found, 6);
	free(s);
	s = NULL;

	/* the signed copy: its .spec.json.sig files, as Spack signed them */
	snprintf(dir, sizeof(dir),
		 "%s/tests/data/spack-mirrors/v2_layout/signed",
		 getenv("SFFS_SRC"));
	doc = slurp(dir, "build_cache/index.json", &len);
	CHECK(doc && bc_parse_db(doc, len, &s, &n, err, sizeof(err)) == 0);
	free(doc);
	CHECK_EQ_U64(n, 6);
	for (i = 0, found = 0; i < n; i++) {
		struct stat st;
		char path[8192];

		if (bc_v2_spec_path(&s[i], true, rel, sizeof(rel)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, rel);
		if (stat(path, &st) == 0)
			found++;
		else
			fprintf(stderr, "  not in the signed mirror: %s\n",
				rel);
	}
	CHECK_EQ_U64(found, 6);
	free(s);
}

/* Spack 1.0's {compiler}: the dependency providing c, else cxx, else
 * fortran, found among the installs; an annotation of a converted spec;
 * else none-none. */
static void test_compiler_dep(void)
{
#define DB(x) "{\"database\":{\"version\":\"8\",\"installs\":{" x "}}}"
#define NODE(h, name, ver, extra)                                              \
	"\"" h "\":{\"spec\":{\"name\":\"" name "\",\"version\":\"" ver        \
	"\",\"arch\":{\"platform\":\"linux\",\"platform_os\":\"d12\","         \
	"\"target\":\"x86_64\"}" extra ",\"hash\":\"" h "\"}"
#define DEP(h, virt)                                                           \
	"{\"name\":\"x\",\"hash\":\"" h "\",\"parameters\":{\"deptypes\":"     \
	"[\"build\"],\"virtuals\":[" virt "]}}"
#define H3 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3"
#define H4 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4"
	static const struct {
		const char *doc, *cc, *err;
	} cases[] = {
	    /* fortran listed first, c wins */
	    {DB(NODE(
		 H1, "app", "1",
		 ",\"dependencies\":[" DEP(H3, "\"fortran\"") "," DEP(
		     H4, "\"c\"") "]") "}," NODE(H3, "nvhpc", "=24.1",
						 "") ",\"in_buildcache\":false}"
						     "," NODE(H4, "llvm",
							      "18.1.8",
							      "") ",\"in_"
								  "buildcache\""
								  ":false}"),
	     "llvm-18.1.8", NULL},
	    /* only fortran */
	    {DB(NODE(
		 H1, "app", "1",
		 ",\"dependencies\":[" DEP(
		     H3, "\"fortran\"") "]") "}," NODE(H3, "gcc", "13.2.0",
						       "") ",\"in_buildcache\":"
							   "false}"),
	     "gcc-13.2.0", NULL},
	    /* the compiler node missing from the index */
	    {DB(NODE(H1, "app", "1",
		     ",\"dependencies\":[" DEP(H3, "\"c\"") "]") "}"),
	     "none-none", NULL},
	    /* a build dependency that provides nothing is no compiler */
	    {DB(NODE(
		 H1, "app", "1",
		 ",\"dependencies\":[" DEP(
		     H3, "") "]") "}," NODE(H3, "gcc", "13.2.0",
					    "") ",\"in_buildcache\":false}"),
	     "none-none", NULL},
	    {DB(NODE(H1, "app", "1",
		     ",\"annotations\":{\"compiler\":\"gcc@=12.2.0\"}") "}"),
	     "gcc-12.2.0", NULL},
	    {DB(NODE(H1, "app", "1",
		     ",\"annotations\":{\"compiler\":\"gcc\"}") "}"),
	     NULL, "not name@version"},
	    {DB(NODE(H1, "app", "1",
		     ",\"annotations\":{\"compiler\":\"@1\"}") "}"),
	     NULL, "not name@version"},
	    {DB(NODE(H1, "app", "1",
		     ",\"annotations\":{\"compiler\":\"gcc@=\"}") "}"),
	     NULL, "empty \"compiler.version\""},
	    {DB(NODE(
		 H1, "app", "1",
		 ",\"dependencies\":[" DEP(
		     H3,
		     "\"c\"") "]") "}," NODE(H3, "g/cc", "1",
					     "") ",\"in_buildcache\":false}"),
	     NULL, "\"compiler.name\" holds a '/'"},
	};
	char err[256], cc[2 * BC_FIELD_MAX + 2];
	struct bc_spec *s = NULL;
	size_t n = 0, i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = bc_parse_db(cases[i].doc, strlen(cases[i].doc), &s, &n,
				 err, sizeof(err));
		if (cases[i].err) {
			CHECK(rc == -EINVAL && has(err, cases[i].err));
			if (rc != -EINVAL || !has(err, cases[i].err))
				fprintf(stderr, "  case %zu: %d %s\n", i, rc,
					err);
			continue;
		}
		CHECK(rc == 0 && n == 1);
		if (rc == 0 && n == 1) {
			snprintf(cc, sizeof(cc), "%s-%s", s[0].compiler,
				 s[0].compiler_version);
			CHECK(!strcmp(cc, cases[i].cc));
			if (strcmp(cc, cases[i].cc))
				fprintf(stderr, "  case %zu: %s\n", i, cc);
		}
		free(s);
		s = NULL;
	}
#undef DB
#undef NODE
#undef DEP
#undef H3
#undef H4
}

static int add_entry(struct tree *t, const char *path, enum tar_type type,
		     uint32_t mode)
{
	struct tar_entry e = {.path = path, .type = type, .mode = mode};

	return tree_add(t, &e);
}

/* A tree shaped like a Slurm Factory view with Pyxis' world-writable
 * share/enroot/enroot-data, and a package tarball with one. */
static void test_writable_dirs(void)
{
	struct tree *t = tree_new(NULL, NULL);
	char buf[1024], small[12];
	uint32_t prefix;
	size_t n;

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(add_entry(t, "view", TAR_DIR, 0755) == 0);
	CHECK(add_entry(t, "view/share/enroot/enroot-data", TAR_DIR, 0777) ==
	      0);
	CHECK(add_entry(t, "view/share/enroot/enroot-data/f", TAR_REG, 0666) ==
	      0);
	CHECK(add_entry(t, "view/tmp", TAR_DIR, 01777) == 0);
	CHECK(add_entry(t, "view/lib", TAR_DIR, 0775) == 0);
	CHECK(add_entry(t, "opt/p/.spack/binary_distribution", TAR_REG, 0644) ==
	      0);
	CHECK(add_entry(t, "opt/p/var", TAR_DIR, 0757) == 0);
	CHECK(tree_finish(t) == 0);

	n = bc_writable_dirs(t, 0, buf, sizeof(buf));
	CHECK_EQ_U64(n, 3);
	CHECK(!strcmp(buf, "view/share/enroot/enroot-data\nview/tmp\n"
			   "opt/p/var") ||
	      (strstr(buf, "view/share/enroot/enroot-data") &&
	       strstr(buf, "view/tmp") && strstr(buf, "opt/p/var")));
	/* a package: only what is under its prefix, relative to it */
	CHECK(tree_resolve(t, "opt/p", &prefix) == 0);
	n = bc_writable_dirs(t, prefix, buf, sizeof(buf));
	CHECK(n == 1 && !strcmp(buf, "var"));
	/* the root itself; a buffer too small is cut, the count stays */
	CHECK(tree_resolve(t, "view/tmp", &prefix) == 0);
	CHECK(bc_writable_dirs(t, prefix, buf, sizeof(buf)) == 1 &&
	      !strcmp(buf, "."));
	CHECK(bc_writable_dirs(t, 0, small, sizeof(small)) == 3 &&
	      strlen(small) == sizeof(small) - 1);
	CHECK(bc_writable_dirs(t, 0, small, 0) == 3);
	tree_free(t);

	/* none: "" */
	t = tree_new(NULL, NULL);
	CHECK(t && add_entry(t, "a/b", TAR_DIR, 0755) == 0 &&
	      tree_finish(t) == 0);
	if (t)
		CHECK(bc_writable_dirs(t, 0, buf, sizeof(buf)) == 0 &&
		      buf[0] == '\0');
	tree_free(t);
}

static void test_generated(void)
{
	const char *fix = getenv("SFFS_FIXTURE_DIR");
	const char *tmp = getenv("SFFS_TEST_TMP");
	char extract[4096], out[4096];
	struct stat st;

	/* a missing fixture fails the test: a skipped check proves nothing */
	if (!fix || !tmp || !getenv("SFFS_SRC")) {
		fprintf(stderr, "generated caches: SFFS_FIXTURE_DIR, "
				"SFFS_TEST_TMP or SFFS_SRC unset\n");
		CHECK(!"the generated caches need the fixture");
		return;
	}
	snprintf(extract, sizeof(extract), "%s/extract", fix);
	if (stat(extract, &st) != 0 || access("/usr/bin/python3", X_OK) != 0) {
		fprintf(stderr, "generated caches: no %s or no python3\n",
			extract);
		CHECK(!"the generated caches need the fixture and python3");
		return;
	}
	mkdir(tmp, 0755);
	snprintf(out, sizeof(out), "%s/bc-v3", tmp);
	CHECK(make_cache(extract, out, "v3"));
	check_v3_cache(out);
	snprintf(out, sizeof(out), "%s/bc-v2", tmp);
	CHECK(make_cache(extract, out, "v2"));
	check_v2_cache(out);
}

int main(void)
{
	test_manifest_ok();
	test_manifest_bad();
	test_manifest_limits();
	test_truncated();
	test_db_ok();
	test_db_bad();
	test_v2_spec();
	test_v3_spec();
	test_paths();
	test_real_v2_mirror();
	test_compiler_dep();
	test_writable_dirs();
	test_generated();
	return check_done();
}
