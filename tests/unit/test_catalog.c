/* SPDX-License-Identifier: MIT */
/*
 * test_catalog.c - the catalog's pure parts: placeholder names, template
 * rules, expansion, segment matching with backtracking, version order,
 * S3 ListObjectsV2 parsing (namespaces, entities, errors, hostile input),
 * listing URLs, and generated modulefiles, which are compiled with luac
 * and run under lua with stub Lmod functions to see that every value
 * comes out byte for byte.
 */
#include "check.h"
#include "lua_run.h"
#include "../../catalog/catalog_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_names(void)
{
	char longest[CATALOG_NAME_MAX + 2];

	CHECK(catalog_name_ok("noble"));
	CHECK(catalog_name_ok("rockylinux9"));
	CHECK(catalog_name_ok("x86_64"));
	CHECK(catalog_name_ok("gcc+cuda.12"));
	CHECK(catalog_name_ok("25.11"));
	CHECK(!catalog_name_ok(NULL));
	CHECK(!catalog_name_ok(""));
	CHECK(!catalog_name_ok("."));
	CHECK(!catalog_name_ok(".."));
	CHECK(!catalog_name_ok(".hidden"));
	CHECK(!catalog_name_ok("-"));
	CHECK(!catalog_name_ok("a-b"));
	CHECK(!catalog_name_ok("/"));
	CHECK(!catalog_name_ok("a/b"));
	CHECK(!catalog_name_ok("a b"));
	CHECK(!catalog_name_ok("a{b"));
	CHECK(!catalog_name_ok("\xc3\xbc"));
	memset(longest, 'a', CATALOG_NAME_MAX);
	longest[CATALOG_NAME_MAX] = '\0';
	CHECK(catalog_name_ok(longest));
	longest[CATALOG_NAME_MAX] = 'a';
	longest[CATALOG_NAME_MAX + 1] = '\0';
	CHECK(!catalog_name_ok(longest));

	CHECK(catalog_version_ok("25.11"));
	CHECK(catalog_version_ok("26.05rc1"));
	CHECK(catalog_version_ok("9"));
	CHECK(!catalog_version_ok("v25.11"));
	CHECK(!catalog_version_ok("noble"));
	CHECK(!catalog_version_ok(""));
	CHECK(!catalog_version_ok(".1"));
	CHECK(!catalog_version_ok("25-11"));
}

/* -EINVAL and a reason holding want. */
static void check_bad_template(const char *tmpl, const char *want)
{
	char err[256] = "";
	int rc = catalog_template_check(tmpl, err, sizeof(err));

	CHECK_EQ_U64(rc, -EINVAL);
	if (!strstr(err, want) || strchr(err, '\n'))
		fprintf(stderr, "template \"%s\": err \"%s\", wanted \"%s\"\n",
			tmpl ? tmpl : "(null)", err, want);
	CHECK(strstr(err, want) != NULL && !strchr(err, '\n'));
}

static void test_template_check(void)
{
	char err[256] = "", big[1100];

	CHECK_EQ_U64(
	    catalog_template_check(CATALOG_SEED_TEMPLATE, err, sizeof(err)), 0);
	CHECK_EQ_U64(
	    catalog_template_check(CATALOG_FACTORY_TEMPLATE, err, sizeof(err)),
	    0);
	CHECK_EQ_U64(catalog_template_check("{version}-{toolchain}.tar.gz", err,
					    sizeof(err)),
		     0);
	CHECK_EQ_U64(
	    catalog_template_check("a/{toolchain}/{version}/x.tgz", NULL, 0),
	    0);

	check_bad_template(NULL, "empty");
	check_bad_template("", "empty");
	check_bad_template("/{version}/{toolchain}/x", "relative");
	check_bad_template("{version}//{toolchain}/x", "empty segment");
	check_bad_template("{version}/./{toolchain}/x", "\".\" or \"..\"");
	check_bad_template("{version}/../{toolchain}/x", "\".\" or \"..\"");
	check_bad_template("{version}/{toolchain}/x?y=1", "'?' or '#'");
	check_bad_template("{version}/{toolchain}/x#frag", "'?' or '#'");
	check_bad_template("{version}/{toolchain}/{os}.tgz", "unknown");
	check_bad_template("{version}/{toolchain}/{Version}.tgz", "unknown");
	check_bad_template("{version}/{toolchain}/{arch", "unknown");
	check_bad_template("{version}/{toolchain}/arch}", "'}'");
	check_bad_template("{version}/x.tgz", "both {version} and");
	check_bad_template("{toolchain}/{arch}/x.tgz", "both {version} and");
	check_bad_template("{version}/{toolchain}/", "last segment");
	check_bad_template("{version}{arch}/{toolchain}/x", "next to each");
	check_bad_template("{toolchain}/s-{version}{arch}.tgz", "next to each");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "{version}/{toolchain}/", 22);
	check_bad_template(big, "longer than");
	/* A NULL or empty err buffer is fine. */
	CHECK_EQ_U64(catalog_template_check("", NULL, 0), -EINVAL);
}

static void test_expand(void)
{
	struct catalog_vars v = {"25.11", "noble", ""};
	char *s;

	s = catalog_template_expand(CATALOG_SEED_TEMPLATE, &v);
	CHECK(s && !strcmp(s, "25.11/noble/slurm-25.11-noble-software.tar.gz"));
	free(s);

	errno = 0;
	s = catalog_template_expand(CATALOG_FACTORY_TEMPLATE, &v);
	CHECK(s == NULL && errno == EINVAL); /* {arch} unset */
	strcpy(v.arch, "amd64");
	s = catalog_template_expand(CATALOG_FACTORY_TEMPLATE, &v);
	CHECK(s && !strcmp(s, "noble/25.11/amd64/"
			      "slurm-25.11-noble-amd64-software.tar.gz"));
	free(s);

	strcpy(v.toolchain, "..");
	errno = 0;
	s = catalog_template_expand(CATALOG_SEED_TEMPLATE, &v);
	CHECK(s == NULL && errno == EINVAL);
	strcpy(v.toolchain, "a/b");
	errno = 0;
	s = catalog_template_expand(CATALOG_SEED_TEMPLATE, &v);
	CHECK(s == NULL && errno == EINVAL);
	strcpy(v.toolchain, "noble");
	errno = 0;
	s = catalog_template_expand("{version}/{os}", &v);
	CHECK(s == NULL && errno == EINVAL);
	errno = 0;
	CHECK(catalog_template_expand(NULL, &v) == NULL && errno == EINVAL);

	/* Every placeholder at its longest value. */
	memset(v.version, '1', CATALOG_NAME_MAX);
	v.version[CATALOG_NAME_MAX] = '\0';
	s = catalog_template_expand("{version}{version}{version}", &v);
	CHECK(s && strlen(s) == 3 * CATALOG_NAME_MAX);
	free(s);
}

static bool vars_eq(const struct catalog_vars *v, const char *version,
		    const char *toolchain, const char *arch)
{
	return !strcmp(v->version, version) &&
	       !strcmp(v->toolchain, toolchain) && !strcmp(v->arch, arch);
}

static void test_segment_match(void)
{
	static const char factory[] =
	    "slurm-{version}-{toolchain}-{arch}-software.tar.gz";
	struct catalog_vars v = {"", "", ""}, before;
	char name[CATALOG_NAME_MAX + 16];

	CHECK_EQ_U64(
	    catalog_segment_match(
		factory, "slurm-25.11-rockylinux9-amd64-software.tar.gz", &v),
	    0);
	CHECK(vars_eq(&v, "25.11", "rockylinux9", "amd64"));

	/* Bound placeholders must match exactly; a failed match leaves v
	 * as it was. */
	before = v;
	CHECK_EQ_U64(
	    catalog_segment_match(
		factory, "slurm-24.11-rockylinux9-amd64-software.tar.gz", &v),
	    -ENOENT);
	CHECK(!memcmp(&v, &before, sizeof(v)));
	CHECK_EQ_U64(
	    catalog_segment_match(
		factory, "slurm-25.11-rockylinux9-amd64-software.tar.gz", &v),
	    0);
	memset(&v, 0, sizeof(v));
	strcpy(v.toolchain, "noble");
	CHECK_EQ_U64(
	    catalog_segment_match(
		factory, "slurm-25.11-noble-arm64-software.tar.gz", &v),
	    0);
	CHECK(vars_eq(&v, "25.11", "noble", "arm64"));
	memset(&v, 0, sizeof(v));
	strcpy(v.toolchain, "noble");
	before = v;
	CHECK_EQ_U64(
	    catalog_segment_match(
		factory, "slurm-25.11-jammy-arm64-software.tar.gz", &v),
	    -ENOENT);
	CHECK(!memcmp(&v, &before, sizeof(v)));

	/* Nothing bound, no match: every field stays empty even though
	 * version and toolchain were bound on the way. */
	memset(&v, 0, sizeof(v));
	CHECK_EQ_U64(
	    catalog_segment_match("slurm-{version}-{toolchain}-software.tar.gz",
				  "slurm-25.11-noble-software.tar.xz", &v),
	    -ENOENT);
	CHECK(vars_eq(&v, "", "", ""));

	/* Backtracking: the longest run of name characters is too long. */
	memset(&v, 0, sizeof(v));
	CHECK_EQ_U64(
	    catalog_segment_match("{version}.tar.gz", "25.11.tar.gz", &v), 0);
	CHECK(vars_eq(&v, "25.11", "", ""));
	memset(&v, 0, sizeof(v));
	CHECK_EQ_U64(catalog_segment_match("{version}x{arch}", "1x2x3", &v), 0);
	CHECK(vars_eq(&v, "1x2", "", "3"));
	memset(&v, 0, sizeof(v));
	CHECK_EQ_U64(catalog_segment_match("{toolchain}.{version}.tgz",
					   "rocky.linux.9.5.tgz", &v),
		     0);
	CHECK(vars_eq(&v, "5", "rocky.linux.9", "")); /* the first is greedy */
	/* Adjacent placeholders (check refuses them, match copes). */
	memset(&v, 0, sizeof(v));
	CHECK_EQ_U64(catalog_segment_match("{toolchain}{version}", "abc12", &v),
		     0);
	CHECK(vars_eq(&v, "2", "abc1", ""));

	/* A version starts with a digit; no value starts with '.'. */
	memset(&v, 0, sizeof(v));
	CHECK_EQ_U64(
	    catalog_segment_match("slurm-{version}-x", "slurm-v1-x", &v),
	    -ENOENT);
	CHECK_EQ_U64(catalog_segment_match("{toolchain}", ".hidden", &v),
		     -ENOENT);
	CHECK_EQ_U64(catalog_segment_match("{toolchain}", "", &v), -ENOENT);
	CHECK_EQ_U64(catalog_segment_match("{toolchain}", "a-b", &v), -ENOENT);
	CHECK(vars_eq(&v, "", "", ""));
	/* The same placeholder twice must take the same value. */
	CHECK_EQ_U64(catalog_segment_match("{version}-{version}", "1-2", &v),
		     -ENOENT);
	CHECK_EQ_U64(
	    catalog_segment_match("{version}-{version}", "1.2-1.2", &v), 0);
	CHECK(vars_eq(&v, "1.2", "", ""));
	/* A value longer than CATALOG_NAME_MAX is not a name. */
	memset(&v, 0, sizeof(v));
	memset(name, '7', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK_EQ_U64(catalog_segment_match("{version}", name, &v), -ENOENT);
	name[CATALOG_NAME_MAX] = '\0';
	CHECK_EQ_U64(catalog_segment_match("{version}", name, &v), 0);
	/* Literal-only segments, '/' and bad patterns. */
	memset(&v, 0, sizeof(v));
	CHECK_EQ_U64(catalog_segment_match("view", "view", &v), 0);
	CHECK_EQ_U64(catalog_segment_match("view", "views", &v), -ENOENT);
	CHECK_EQ_U64(catalog_segment_match("{arch}", "a/b", &v), -ENOENT);
	CHECK_EQ_U64(catalog_segment_match("{arch}/x", "a", &v), -ENOENT);
	CHECK_EQ_U64(catalog_segment_match("{os}", "{os}", &v), -ENOENT);
	CHECK_EQ_U64(catalog_segment_match(NULL, "a", &v), -ENOENT);
	CHECK(vars_eq(&v, "", "", ""));
}

static void test_segments(void)
{
	char *seg[8];
	size_t n = 0;

	CHECK_EQ_U64(
	    catalog_template_segments(CATALOG_FACTORY_TEMPLATE, seg, 8, &n), 0);
	CHECK_EQ_U64(n, 4);
	if (n == 4) {
		CHECK(!strcmp(seg[0], "{toolchain}"));
		CHECK(!strcmp(seg[1], "{version}"));
		CHECK(!strcmp(seg[2], "{arch}"));
		CHECK(!strcmp(seg[3], "slurm-{version}-{toolchain}-{arch}-"
				      "software.tar.gz"));
	}
	catalog_segments_free(seg, n);
	CHECK_EQ_U64(catalog_template_segments("a", seg, 8, &n), 0);
	CHECK(n == 1 && !strcmp(seg[0], "a"));
	catalog_segments_free(seg, n);
	n = 99;
	CHECK_EQ_U64(
	    catalog_template_segments(CATALOG_FACTORY_TEMPLATE, seg, 3, &n),
	    -EINVAL);
	CHECK_EQ_U64(n, 99);
	CHECK_EQ_U64(catalog_template_segments(NULL, seg, 3, &n), -EINVAL);
	catalog_segments_free(NULL, 0);
}

static int sign(int c)
{
	return c < 0 ? -1 : c > 0;
}

static int qsort_cmp(const void *a, const void *b)
{
	return catalog_version_cmp(*(const char *const *)a,
				   *(const char *const *)b);
}

static void test_version_cmp(void)
{
	static const char *const order[] = {
	    "9.0",   "23.11",	"24.2",	 "24.11",
	    "25.11", "25.11.1", "26.05", "26.05rc1",
	};
	/* Mixed, to check the order is total and consistent. */
	static const char *const mix[] = {
	    "007",
	    "7",
	    "07",
	    "7.0",
	    "7a",
	    "7.a",
	    "a7",
	    "",
	    ".",
	    "-1",
	    "99999999999999999999999",
	    "100000000000000000000000",
	    "000000000000000000000000000000000001",
	    "2",
	    "25.11",
	    "25.011",
	    "25.11rc1",
	    "25.11-rc1",
	    "25.11~1",
	    "1:2",
	    "1/2",
	};
	const char *sorted[sizeof(mix) / sizeof(mix[0])];
	size_t n = sizeof(mix) / sizeof(mix[0]), i, j, k;
	int ab, bc, ac;

	for (i = 0; i + 1 < sizeof(order) / sizeof(order[0]); i++) {
		CHECK(catalog_version_cmp(order[i], order[i + 1]) < 0);
		CHECK(catalog_version_cmp(order[i + 1], order[i]) > 0);
		CHECK(catalog_version_cmp(order[i], order[i]) == 0);
	}
	/* Digit runs past 64 bits: by length once leading zeros go. */
	CHECK(catalog_version_cmp("99999999999999999999999",
				  "100000000000000000000000") < 0);
	CHECK(catalog_version_cmp("1.99999999999999999999999",
				  "1.000000000000000000000000000000000000009") >
	      0);
	CHECK(catalog_version_cmp("000000000000000000000000000000000001", "2") <
	      0);
	CHECK(catalog_version_cmp("18446744073709551616",
				  "18446744073709551615") > 0);
	/* Equal as versions, not as strings: deterministic, never 0. */
	ab = catalog_version_cmp("007", "7");
	CHECK(ab != 0);
	CHECK(ab == catalog_version_cmp("007", "7"));
	CHECK(sign(ab) == -sign(catalog_version_cmp("7", "007")));
	CHECK(catalog_version_cmp("1.007", "1.7") != 0);
	CHECK(catalog_version_cmp("1.007", "1.8") < 0);
	CHECK(catalog_version_cmp("", "") == 0);
	CHECK(catalog_version_cmp("", "1") < 0);

	/* Antisymmetric, 0 only for equal strings, transitive. */
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			ab = sign(catalog_version_cmp(mix[i], mix[j]));
			CHECK(ab == -sign(catalog_version_cmp(mix[j], mix[i])));
			CHECK((ab == 0) == (strcmp(mix[i], mix[j]) == 0));
			for (k = 0; k < n; k++) {
				bc = sign(catalog_version_cmp(mix[j], mix[k]));
				ac = sign(catalog_version_cmp(mix[i], mix[k]));
				if (ab < 0 && bc < 0 && ac >= 0)
					fprintf(stderr,
						"not transitive: %s %s "
						"%s\n",
						mix[i], mix[j], mix[k]);
				CHECK(!(ab < 0 && bc < 0) || ac < 0);
			}
		}
	memcpy(sorted, mix, sizeof(mix));
	qsort(sorted, n, sizeof(sorted[0]), qsort_cmp);
	for (i = 0; i + 1 < n; i++)
		CHECK(catalog_version_cmp(sorted[i], sorted[i + 1]) < 0);
}

static void test_node_arch(void)
{
	char buf[65], tiny[2];

	CHECK_EQ_U64(catalog_node_arch(buf, sizeof(buf)), 0);
	CHECK(buf[0] != '\0' && strcmp(buf, "x86_64") != 0 &&
	      strcmp(buf, "aarch64") != 0);
#if defined(__x86_64__)
	CHECK(!strcmp(buf, "amd64"));
#elif defined(__aarch64__)
	CHECK(!strcmp(buf, "arm64"));
#endif
	CHECK_EQ_U64(catalog_node_arch(tiny, sizeof(tiny)), -ERANGE);
	CHECK_EQ_U64(catalog_node_arch(NULL, 0), -EINVAL);
}

/* ---- S3 listings ------------------------------------------------------- */

static const char aws_listing[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult "
    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>slurm-factory</Name><Prefix>25.11/</Prefix>"
    "<KeyCount>3</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter>"
    "<IsTruncated>true</IsTruncated>"
    "<ContinuationToken>old</ContinuationToken>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/"
    "wm36Hy4vbOwM=</NextContinuationToken>\n"
    "  <Contents>\n"
    "    <Key>25.11/noble/slurm-25.11-noble-software.tar.gz</Key>\n"
    "    <LastModified>2025-11-20T10:00:00.000Z</LastModified>\n"
    "    <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e-312&quot;</ETag>\n"
    "    <ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm>\n"
    "    <Size>2147483648123</Size>\n"
    "    <Owner><ID>abc</ID><DisplayName>me</DisplayName></Owner>\n"
    "    <StorageClass>STANDARD</StorageClass>\n"
    "  </Contents>\n"
    "  <Contents><Key>25.11/a&amp;b</Key><Size>0</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>\n"
    "  <CommonPrefixes><Prefix>25.11/jammy/</Prefix></CommonPrefixes>\n"
    "  <CommonPrefixes><Prefix>25.11/r&#233;el/</Prefix>"
    "</CommonPrefixes>\n"
    "</ListBucketResult>\n";

static int parse(const char *xml, struct s3_listing *l, char *err,
		 size_t errlen)
{
	return s3_list_parse(xml, strlen(xml), l, err, errlen);
}

static void test_s3_parse_ok(void)
{
	struct s3_listing l;
	char err[256] = "x";

	CHECK_EQ_U64(parse(aws_listing, &l, err, sizeof(err)), 0);
	CHECK(err[0] == '\0');
	CHECK_EQ_U64(l.nobjects, 2);
	CHECK_EQ_U64(l.nprefixes, 2);
	CHECK(l.truncated);
	CHECK(l.next_token &&
	      !strcmp(l.next_token,
		      "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="));
	if (l.nobjects == 2) {
		CHECK(!strcmp(l.objects[0].key,
			      "25.11/noble/slurm-25.11-noble-software.tar.gz"));
		CHECK_EQ_U64(l.objects[0].size, 2147483648123ull);
		CHECK(!strcmp(l.objects[0].etag,
			      "\"d41d8cd98f00b204e9800998ecf8427e-312\""));
		/* Text split by expat at the entity, joined again. */
		CHECK(!strcmp(l.objects[1].key, "25.11/a&b"));
		CHECK_EQ_U64(l.objects[1].size, 0);
		CHECK(l.objects[1].etag && !strcmp(l.objects[1].etag, ""));
	}
	if (l.nprefixes == 2) {
		CHECK(!strcmp(l.prefixes[0], "25.11/jammy/"));
		CHECK(!strcmp(l.prefixes[1], "25.11/r\xc3\xa9"
					     "el/"));
	}
	s3_listing_free(&l);
	CHECK(l.objects == NULL && l.nobjects == 0 && l.next_token == NULL);
	s3_listing_free(&l);
	s3_listing_free(NULL);

	/* No namespace (MinIO and friends may omit it), not truncated. */
	CHECK_EQ_U64(parse("<ListBucketResult><IsTruncated>false</IsTruncated>"
			   "<Contents><Key>k</Key><Size>18446744073709551615"
			   "</Size><ETag>\"e\"</ETag></Contents>"
			   "</ListBucketResult>",
			   &l, err, sizeof(err)),
		     0);
	CHECK(l.nobjects == 1 && l.objects[0].size == UINT64_MAX);
	CHECK(!l.truncated && l.next_token == NULL);
	s3_listing_free(&l);

	/* Empty listing; a prefixed namespace; elements of another
	 * namespace ignored. */
	CHECK_EQ_U64(parse("<s3:ListBucketResult xmlns:s3=\"http://s3."
			   "amazonaws.com/doc/2006-03-01/\" xmlns:o=\"urn:o\">"
			   "<o:Contents><o:Key>x</o:Key></o:Contents>"
			   "<s3:KeyCount>0</s3:KeyCount></s3:ListBucketResult>",
			   &l, err, sizeof(err)),
		     0);
	CHECK(l.nobjects == 0 && l.nprefixes == 0 && !l.truncated);
	s3_listing_free(&l);
}

/* The document is refused with -EINVAL, *l left empty, err holding want. */
static void check_refused(const char *xml, size_t len, const char *want)
{
	struct s3_listing l;
	char err[512] = "";
	int rc = s3_list_parse(xml, len, &l, err, sizeof(err));

	CHECK_EQ_U64(rc, -EINVAL);
	CHECK(l.objects == NULL && l.prefixes == NULL && l.next_token == NULL &&
	      l.nobjects == 0 && l.nprefixes == 0);
	if (!strstr(err, want))
		fprintf(stderr, "err \"%s\", wanted \"%s\"\n", err, want);
	CHECK(strstr(err, want) != NULL);
	CHECK(strchr(err, '\n') == NULL);
}

static void refused(const char *xml, const char *want)
{
	check_refused(xml, strlen(xml), want);
}

/* A listing of one object whose Key is n bytes of 'k'. */
static char *listing_with_key(size_t n)
{
	static const char head[] = "<ListBucketResult><Contents><Key>",
			  tail[] = "</Key><Size>1</Size></Contents>"
				   "</ListBucketResult>";
	char *s = malloc(sizeof(head) + n + sizeof(tail));

	if (!s)
		abort();
	memcpy(s, head, sizeof(head) - 1);
	memset(s + sizeof(head) - 1, 'k', n);
	memcpy(s + sizeof(head) - 1 + n, tail, sizeof(tail));
	return s;
}

static void test_s3_parse_refused(void)
{
	struct s3_listing l;
	char *s, err[512];
	size_t i, n, len;

	refused("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error><Code>NoSuchBucket</Code><Message>The specified "
		"bucket does not exist</Message><BucketName>x</BucketName>"
		"<RequestId>4442587FB7D0A2F9</RequestId></Error>",
		"S3 error NoSuchBucket: The specified bucket does not exist");
	refused("<Error xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Code>AccessDenied</Code><Message>Access\nDenied</Message>"
		"</Error>",
		"S3 error AccessDenied: Access Denied");
	/* Billion laughs, and an external entity. */
	refused(
	    "<?xml version=\"1.0\"?>\n"
	    "<!DOCTYPE lolz [\n"
	    " <!ENTITY lol \"lol\">\n"
	    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
	    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
	    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
	    "]>\n"
	    "<ListBucketResult><Contents><Key>&lol4;</Key><Size>1</Size>"
	    "</Contents></ListBucketResult>",
	    "DOCTYPE");
	refused("<!DOCTYPE x SYSTEM \"file:///etc/passwd\">"
		"<ListBucketResult><Name>&x;</Name></ListBucketResult>",
		"DOCTYPE");
	/* Truncated anywhere, not XML, another root. */
	len = strlen(aws_listing);
	for (i = 1; i + 1 < len; i += 37)
		check_refused(aws_listing, i, "");
	check_refused(aws_listing, len - 2, "not XML");
	refused("<ListBucketResult><Contents><Key>a</Key>", "not XML");
	refused("{\"json\": true}", "not XML");
	refused("<ListAllMyBucketsResult/>", "ListAllMyBucketsResult");
	refused("<ListBucketResult xmlns=\"urn:x\"/>", "namespace");
	check_refused(aws_listing, 0, "empty");
	check_refused(NULL, 10, "empty");
	/* Keys and prefixes: at most S3_KEY_MAX bytes, never a NUL. */
	s = listing_with_key(S3_KEY_MAX);
	CHECK_EQ_U64(parse(s, &l, err, sizeof(err)), 0);
	CHECK(l.nobjects == 1 && strlen(l.objects[0].key) == S3_KEY_MAX);
	s3_listing_free(&l);
	free(s);
	s = listing_with_key(S3_KEY_MAX + 1);
	refused(s, "<Key> longer than 1024");
	free(s);
	s = listing_with_key(1 << 20);
	refused(s, "<Key> longer than 1024");
	free(s);
	refused("<ListBucketResult><Contents><Key>a&#0;b</Key><Size>1</Size>"
		"</Contents></ListBucketResult>",
		"not XML");
	refused("<ListBucketResult><Contents><Key>a<b/></Key><Size>1</Size>"
		"</Contents></ListBucketResult>",
		"<b> inside <Key>");
	refused("<ListBucketResult><Contents><Key></Key><Size>1</Size>"
		"</Contents></ListBucketResult>",
		"empty <Key>");
	refused("<ListBucketResult><Contents><Size>1</Size>"
		"</Contents></ListBucketResult>",
		"without <Key>");
	refused("<ListBucketResult><Contents><Key>a</Key><Key>b</Key><Size>1"
		"</Size></Contents></ListBucketResult>",
		"two <Key>");
	refused("<ListBucketResult><CommonPrefixes></CommonPrefixes>"
		"</ListBucketResult>",
		"without <Prefix>");
	/* Size: a decimal uint64. */
	refused("<ListBucketResult><Contents><Key>a</Key></Contents>"
		"</ListBucketResult>",
		"without <Size>");
	refused("<ListBucketResult><Contents><Key>a</Key><Size>"
		"18446744073709551616</Size></Contents></ListBucketResult>",
		"bad <Size>");
	refused("<ListBucketResult><Contents><Key>a</Key><Size>"
		"99999999999999999999</Size></Contents></ListBucketResult>",
		"bad <Size>");
	refused("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
		"</Contents></ListBucketResult>",
		"bad <Size>");
	refused("<ListBucketResult><Contents><Key>a</Key><Size> 1</Size>"
		"</Contents></ListBucketResult>",
		"bad <Size>");
	refused("<ListBucketResult><Contents><Key>a</Key><Size></Size>"
		"</Contents></ListBucketResult>",
		"bad <Size>");
	refused("<ListBucketResult><Contents><Key>a</Key><Size>1"
		"000000000000000000000000000000000</Size></Contents>"
		"</ListBucketResult>",
		"<Size> longer");
	/* Truncated needs a token. */
	refused("<ListBucketResult><IsTruncated>true</IsTruncated>"
		"</ListBucketResult>",
		"without a NextContinuationToken");
	refused("<ListBucketResult><IsTruncated>true</IsTruncated>"
		"<NextContinuationToken></NextContinuationToken>"
		"</ListBucketResult>",
		"without a NextContinuationToken");
	refused("<ListBucketResult><IsTruncated>yes</IsTruncated>"
		"</ListBucketResult>",
		"bad <IsTruncated>");
	/* Too many entries. */
	n = S3_LIST_MAX_ENTRIES + 1;
	s = malloc(64 + n * 64);
	if (!s)
		abort();
	len = (size_t)sprintf(s, "<ListBucketResult>");
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(s + len,
				       "<CommonPrefixes><Prefix>p%zu/</Prefix>"
				       "</CommonPrefixes>",
				       i);
	strcpy(s + len, "</ListBucketResult>");
	refused(s, "more than 10000 entries");
	/* ... and exactly the limit is fine. */
	strcpy(strstr(s, "<CommonPrefixes><Prefix>p10000/"),
	       "</ListBucketResult>");
	CHECK_EQ_U64(parse(s, &l, err, sizeof(err)), 0);
	CHECK_EQ_U64(l.nprefixes, S3_LIST_MAX_ENTRIES);
	s3_listing_free(&l);
	free(s);
	/* Too big: refused before it is read. */
	len = S3_LIST_MAX_BYTES + 1;
	s = malloc(len);
	if (!s)
		abort();
	memset(s, ' ', len);
	memcpy(s, "<ListBucketResult>", 18);
	check_refused(s, len, "larger than");
	free(s);
	/* Deep nesting. */
	s = malloc(64 * 40);
	if (!s)
		abort();
	strcpy(s, "<ListBucketResult>");
	for (i = 0; i < 40; i++)
		strcat(s, "<a>");
	refused(s, "deeper than");
	free(s);
	/* A NULL err is fine. */
	CHECK_EQ_U64(s3_list_parse("<x/>", 4, &l, NULL, 0), -EINVAL);
	CHECK_EQ_U64(s3_list_parse("<x", 2, &l, NULL, 0), -EINVAL);
	CHECK_EQ_U64(s3_list_parse("<x/>", 4, NULL, NULL, 0), -EINVAL);
}

static void check_url(const char *prefix, const char *delim, const char *tok,
		      unsigned max_keys, const char *want)
{
	char *u = s3_list_url("https://b.s3.amazonaws.com", prefix, delim, tok,
			      max_keys);

	if (!u || strcmp(u, want))
		fprintf(stderr, "url \"%s\", wanted \"%s\"\n", u ? u : "NULL",
			want);
	CHECK(u && !strcmp(u, want));
	free(u);
}

static void test_s3_list_url(void)
{
	check_url("a b/\xc3\xbc", "/", NULL, 0,
		  "https://b.s3.amazonaws.com?list-type=2&prefix=a%20b%2F%C3%BC"
		  "&delimiter=%2F");
	check_url("", NULL, NULL, 0,
		  "https://b.s3.amazonaws.com?list-type=2&prefix=");
	check_url(NULL, NULL, NULL, 0,
		  "https://b.s3.amazonaws.com?list-type=2&prefix=");
	check_url("25.11/", "/", "1ue+Gc/x=", 1000,
		  "https://b.s3.amazonaws.com?list-type=2&prefix=25.11%2F"
		  "&delimiter=%2F&continuation-token=1ue%2BGc%2Fx%3D"
		  "&max-keys=1000");
	check_url("AZaz09-._~!*'();:@&=+$,?#[]%", NULL, NULL, 4294967295u,
		  "https://b.s3.amazonaws.com?list-type=2&prefix=AZaz09-._~"
		  "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%3F%23%5B%5D%25"
		  "&max-keys=4294967295");
	check_url("\x01\x7f\xff", "", "", 0,
		  "https://b.s3.amazonaws.com?list-type=2&prefix=%01%7F%FF"
		  "&delimiter=&continuation-token=");
	errno = 0;
	CHECK(s3_list_url(NULL, "", NULL, NULL, 0) == NULL && errno == EINVAL);
}

/* ---- modulefiles ------------------------------------------------------- */

/* Stub Lmod functions; runs the modulefile arg[1] in mode arg[2] with
 * every directory present (arg[3] "all") or none, then prints what it
 * set. */
static const char lua_driver[] =
    "local env, info = {}, {}\n"
    "local lmode, dirs = arg[2], arg[3]\n"
    "function whatis(s) info[#info + 1] = 'whatis=' .. s end\n"
    "function help(s) info[#info + 1] = 'help=' .. s end\n"
    "function conflict(s) info[#info + 1] = 'conflict=' .. s end\n"
    "function mode() return lmode end\n"
    "function pathJoin(a, b) return a .. '/' .. b end\n"
    "function isDir(d) return dirs == 'all' end\n"
    "function prepend_path(k, v)\n"
    "  env[k] = env[k] and (v .. ':' .. env[k]) or v\n"
    "end\n"
    "function setenv(k, v) env[k] = v end\n"
    "dofile(arg[1])\n"
    "for _, k in ipairs({'SLURM_ROOT', 'SLURM_INSTALL_PREFIX', 'PATH',\n"
    "                    'LD_LIBRARY_PATH', 'MANPATH'}) do\n"
    "  io.write(k, '=', env[k] or '(unset)', '\\n')\n"
    "end\n"
    "for _, s in ipairs(info) do io.write(s, '\\n') end\n";

struct lua_env {
	char dir[4096];
	char mod[4200], driver[4200];
	const char *lua, *luac;
};

static void append(char **s, const char *a, const char *b, const char *c)
{
	size_t old = *s ? strlen(*s) : 0;
	size_t n = strlen(a) + strlen(b) + strlen(c);
	char *p = realloc(*s, old + n + 1);

	if (!p)
		abort();
	p[old] = '\0';
	strcat(strcat(strcat(p, a), b), c);
	*s = p;
}

/* What the driver prints for a module of these values. */
static char *expected(const char *version, const char *toolchain,
		      const char *arch, const char *root, const char *url,
		      bool dirs)
{
	char *s = NULL, *pre = NULL;
	char *help = NULL;

	append(&pre, root, "/view", "");
	append(&s, "SLURM_ROOT=", pre, "\n");
	append(&s, "SLURM_INSTALL_PREFIX=", pre, "\n");
	if (dirs) {
		append(&s, "PATH=", pre, "/bin:");
		append(&s, pre, "/sbin\n", "");
		append(&s, "LD_LIBRARY_PATH=", pre, "/lib:");
		append(&s, pre, "/lib64:", pre);
		append(&s, "/lib/slurm\n", "", "");
		append(&s, "MANPATH=", pre, "/share/man\n");
	} else {
		append(&s, "PATH=(unset)\nLD_LIBRARY_PATH=(unset)\n",
		       "MANPATH=(unset)\n", "");
	}
	append(&s, "whatis=Name: slurm\n", "whatis=Version: ", version);
	append(&s, "\nwhatis=Toolchain: ", toolchain, "\n");
	if (arch)
		append(&s, "whatis=Arch: ", arch, "\n");
	append(&s, "whatis=Source: ", url, "\n");
	/* help's text is checked by the caller; here just its start. */
	append(&help, "help=Slurm ", version, "");
	append(&s, help, "", "");
	free(help);
	free(pre);
	return s;
}

/* Runs the module through the driver and compares everything up to the
 * help text, that the help text holds root and url byte for byte, and
 * that conflict("slurm") ran. */
static void check_lua_run(const struct lua_env *e, const char *mode, bool dirs,
			  const char *version, const char *toolchain,
			  const char *arch, const char *root, const char *url)
{
	static char out[262144];
	char cmd[16384], *want, *at = NULL;
	bool ok;

	snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' '%s' %s", e->lua, e->driver,
		 e->mod, mode, dirs ? "all" : "none");
	ok = run(cmd, out, sizeof(out));
	CHECK(ok);
	want = expected(version, toolchain, arch, root, url,
			dirs || !strcmp(mode, "spider"));
	append(&at, "\nat ", root, "\nfrom ");
	append(&at, url, "\n\n", "");
	ok = !strncmp(out, want, strlen(want)) && strstr(out, at) &&
	     strstr(out, "\nconflict=slurm\n");
	if (!ok)
		fprintf(stderr,
			"lua printed:\n%s\nwanted it to start with:\n%s\n", out,
			want);
	CHECK(ok);
	free(want);
	free(at);
}

static void check_module(const struct lua_env *e, const char *version,
			 const char *toolchain, const char *arch,
			 const char *root, const char *url)
{
	char *m = catalog_modulefile(version, toolchain, arch, root, url);
	char cmd[16384], out[4096];

	CHECK(m != NULL);
	if (!m)
		return;
	CHECK(write_file(e->mod, m));
	snprintf(cmd, sizeof(cmd), "'%s' -p '%s' 2>&1", e->luac, e->mod);
	if (!run(cmd, out, sizeof(out))) {
		fprintf(stderr, "luac -p: %s\nin:\n%s\n", out, m);
		CHECK(false);
	}
	check_lua_run(e, "load", true, version, toolchain, arch, root, url);
	check_lua_run(e, "unload", true, version, toolchain, arch, root, url);
	check_lua_run(e, "load", false, version, toolchain, arch, root, url);
	check_lua_run(e, "spider", false, version, toolchain, arch, root, url);
	free(m);
}

static void test_modulefile_text(void)
{
	static const char *const lines[] = {
	    "whatis(\"Name: slurm\")\n",
	    "whatis(\"Version: 25.11\")\n",
	    "whatis(\"Toolchain: noble\")\n",
	    "whatis(\"Source: https://cdn.example/slurm-25.11-noble-"
	    "software.tar.gz\")\n",
	    "\nhelp(\"",
	    "\nconflict(\"slurm\")\n",
	    "\nlocal prefix = \"/sf/25.11/noble/view\"\n",
	    "\nlocal function present(d)\n",
	    "if mode() == \"spider\" then\n",
	    "return isDir(pathJoin(prefix, d))\n",
	    "if present(\"bin\") then\n"
	    "\tprepend_path(\"PATH\", pathJoin(prefix, \"bin\"))\nend\n",
	    "if present(\"sbin\") then\n"
	    "\tprepend_path(\"PATH\", pathJoin(prefix, \"sbin\"))\nend\n",
	    "prepend_path(\"LD_LIBRARY_PATH\", pathJoin(prefix, "
	    "\"lib/slurm\"))\n",
	    "prepend_path(\"LD_LIBRARY_PATH\", pathJoin(prefix, "
	    "\"lib64\"))\n",
	    "prepend_path(\"LD_LIBRARY_PATH\", pathJoin(prefix, \"lib\"))\n",
	    "prepend_path(\"MANPATH\", pathJoin(prefix, \"share/man\"))\n",
	    "\nsetenv(\"SLURM_INSTALL_PREFIX\", prefix)\n",
	    "\nsetenv(\"SLURM_ROOT\", prefix)\n",
	};
	char *m = catalog_modulefile(
	    "25.11", "noble", NULL, "/sf/25.11/noble",
	    "https://cdn.example/slurm-25.11-noble-software.tar.gz");
	size_t i;

	CHECK(m != NULL);
	for (i = 0; m && i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (!strstr(m, lines[i]))
			fprintf(stderr, "modulefile lacks \"%s\"\n", lines[i]);
		CHECK(strstr(m, lines[i]) != NULL);
	}
	CHECK(m && !strstr(m, "Arch:"));
	/* sbin is prepended first, so bin ends up first in PATH. */
	CHECK(m && strstr(m, "\"sbin\"))") < strstr(m, "\"bin\"))"));
	free(m);
	m = catalog_modulefile("25.11", "noble", "amd64", "/sf", "u");
	CHECK(m && strstr(m, "whatis(\"Arch: amd64\")\n"));
	free(m);

	errno = 0;
	CHECK(catalog_modulefile(NULL, "n", NULL, "/r", "u") == NULL &&
	      errno == EINVAL);
	errno = 0;
	CHECK(catalog_modulefile("1", "n", NULL, "relative", "u") == NULL &&
	      errno == EINVAL);
	errno = 0;
	CHECK(catalog_modulefile("1", "n", NULL, "/r", NULL) == NULL &&
	      errno == EINVAL);
}

static void test_modulefile_lua(void)
{
	static const char *const roots[] = {
	    "/sf/25.11/noble",
	    "/x]]..os.exit(3)..[[",
	    "/x]=]]==]]===]\"'\\\\\" os.exit(4) --",
	    "/nl\n]] os.exit(5) --[[\r\n\r\t\x01\x7f",
	    "/\xc3\xbc\xff\x80/dir with spaces/[==[x]==]",
	    "/a\\",
	    "/ends]",
	    "/ends]=",
	    "/012\\0123",
	};
	static const char *const urls[] = {
	    "https://cdn.example/slurm-25.11-noble-software.tar.gz",
	    "https://h/\")os.exit(6)--",
	    "s3://b/k?X-Amz-Signature=a%2Fb&x=]]\n]=]",
	};
	struct lua_env e;
	char cmd[8300];
	size_t i;

	if (!lua_setup("test_catalog", &e.lua, &e.luac, e.dir, sizeof(e.dir))) {
		CHECK(!"lua, luac and a directory to run them in");
		return;
	}
	snprintf(e.mod, sizeof(e.mod), "%s/slurm.lua", e.dir);
	snprintf(e.driver, sizeof(e.driver), "%s/driver.lua", e.dir);
	CHECK(write_file(e.driver, lua_driver));

	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		check_module(&e, "25.11", "noble", i % 2 ? "amd64" : NULL,
			     roots[i], urls[i % 3]);
	/* Values the catalog would never pass still cannot break out. */
	check_module(&e, "1\"]]", "t\n--", "a\\", "/r", "u");

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e.dir);
	CHECK(system(cmd) == 0);
}

/* ---- the bounds of a listing of many pages (s3_pager) ---- */

/* A page of n entries, truncated with token (NULL: the last page). */
static struct s3_listing page_of(size_t n, const char *token)
{
	struct s3_listing l = {.nobjects = n};

	l.truncated = token != NULL;
	l.next_token = (char *)token;
	return l;
}

static void test_pager_pages(void)
{
	struct s3_pager pg;
	struct s3_listing l;
	char tok[32];
	size_t keys = 0;
	unsigned i;
	int rc = 1;

	/* three pages, then the end: every entry counted */
	s3_pager_init(&pg, &keys);
	l = page_of(1000, "a");
	CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
	CHECK_EQ_U64(s3_pager_next(&pg, &l), 1);
	l = page_of(1000, "b");
	CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
	CHECK_EQ_U64(s3_pager_next(&pg, &l), 1);
	l = page_of(7, NULL);
	CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
	CHECK_EQ_U64(s3_pager_next(&pg, &l), 0);
	CHECK_EQ_U64(keys, 2007);
	CHECK(pg.why[0] == '\0' && !pg.spent);
	s3_pager_free(&pg);
	s3_pager_free(NULL);

	/* fresh tokens for ever: stopped at the page limit, not before */
	s3_pager_init(&pg, &keys);
	for (i = 1; i <= S3_LIST_PAGES_MAX + 1 && rc == 1; i++) {
		snprintf(tok, sizeof(tok), "t%u", i);
		l = page_of(0, tok);
		CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
		rc = s3_pager_next(&pg, &l);
	}
	CHECK_EQ_U64(rc, -E2BIG);
	CHECK_EQ_U64(i - 1, S3_LIST_PAGES_MAX);
	CHECK(strstr(pg.why, "page limit") && strstr(pg.why, "64 pages"));
	CHECK(!pg.spent);
	s3_pager_free(&pg);
}

static void test_pager_loops(void)
{
	struct s3_pager pg;
	struct s3_listing l;
	size_t keys = 0;

	/* a token handed back two pages later: a loop */
	s3_pager_init(&pg, &keys);
	l = page_of(3, "x");
	CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
	CHECK_EQ_U64(s3_pager_next(&pg, &l), 1);
	l = page_of(3, "y");
	CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
	CHECK_EQ_U64(s3_pager_next(&pg, &l), 1);
	l = page_of(3, "x");
	CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
	CHECK_EQ_U64(s3_pager_next(&pg, &l), -E2BIG);
	CHECK(strstr(pg.why, "loop") != NULL);
	s3_pager_free(&pg);

	/* the same token in another listing of the refresh is no loop */
	s3_pager_init(&pg, &keys);
	l = page_of(3, "x");
	CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
	CHECK_EQ_U64(s3_pager_next(&pg, &l), 1);
	s3_pager_free(&pg);

	/* truncated without a token (or an empty one) */
	s3_pager_init(&pg, &keys);
	l = page_of(1, "");
	CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
	CHECK_EQ_U64(s3_pager_next(&pg, &l), -E2BIG);
	CHECK(strstr(pg.why, "without a continuation token") != NULL);
	l.next_token = NULL;
	CHECK_EQ_U64(s3_pager_next(&pg, &l), -E2BIG);
	s3_pager_free(&pg);
	CHECK_EQ_U64(keys, 13);
}

static void test_pager_keys(void)
{
	struct s3_pager pg;
	struct s3_listing l;
	size_t keys = S3_REFRESH_KEYS_MAX - 10;

	/* the refresh's last 10 keys fit; the page past them is not used */
	s3_pager_init(&pg, &keys);
	l = page_of(10, "a");
	CHECK_EQ_U64(s3_pager_take(&pg, &l), 0);
	CHECK_EQ_U64(s3_pager_next(&pg, &l), 1);
	CHECK_EQ_U64(keys, S3_REFRESH_KEYS_MAX);
	l = page_of(1, NULL);
	CHECK_EQ_U64(s3_pager_take(&pg, &l), -E2BIG);
	CHECK(pg.spent && strstr(pg.why, "100000 keys"));
	CHECK_EQ_U64(keys, S3_REFRESH_KEYS_MAX);
	s3_pager_free(&pg);

	/* a page of entries beyond what size_t arithmetic could add */
	keys = 5;
	s3_pager_init(&pg, &keys);
	l = page_of(SIZE_MAX - 2, NULL);
	CHECK_EQ_U64(s3_pager_take(&pg, &l), -E2BIG);
	CHECK_EQ_U64(keys, 5);
	s3_pager_free(&pg);
}

int main(void)
{
	test_names();
	test_template_check();
	test_expand();
	test_segment_match();
	test_segments();
	test_version_cmp();
	test_node_arch();
	test_s3_parse_ok();
	test_s3_parse_refused();
	test_s3_list_url();
	test_pager_pages();
	test_pager_loops();
	test_pager_keys();
	test_modulefile_text();
	test_modulefile_lua();
	return check_done();
}
