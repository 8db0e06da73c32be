/* SPDX-License-Identifier: MIT */
/*
 * test_bcinfo.c - a package's .spack/binary_distribution (bc_parse_buildinfo)
 * and the relocation maps built from it (bc_buildinfo_maps): the line
 * tests/lib/make-buildcache.py writes (as Spack's flow style), block style,
 * prefix_to_hash, every refusal with its reason, truncation at every byte,
 * the limits, the maps' order against a fake lookup, and too_long. With
 * SFFS_FIXTURE_DIR (required), every package of v3 and v2 caches that
 * make-buildcache.py makes is read back: its file parsed, its binaries
 * found among the tarball's members, its maps built.
 */
#include "check.h"
#include "sffs/buildcache.h"
#include "sffs/relocate.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROOT "/opt/spack/__spack_path_placeholder__/__spack_path_placeholder__"
#define MH "meen53d5lwcmtg7zq7cmusacbztomox2"
#define MPREFIX ROOT "/linux-x86_64/munge-2.0.0-" MH

/* Verbatim: munge's .spack/binary_distribution from make-buildcache.py
 * --layout v3 (its buildinfo_yaml). */
static const char munge_line[] =
    "{sbang_install_path: /opt/spack/__spack_path_placeholder__/"
    "__spack_path_placeholder__/bin/sbang, buildpath: /opt/spack/"
    "__spack_path_placeholder__/__spack_path_placeholder__, spackprefix: "
    "/opt/spack-src, relative_prefix: linux-x86_64/munge-2.0.0-meen53d5lwcm"
    "tg7zq7cmusacbztomox2, relocate_textfiles: [], relocate_binaries: "
    "[lib/libmunge.so.2.0.0, bin/munge, bin/remunge, bin/unmunge], "
    "relocate_links: [], hardlinks_deduped: true, hash_to_prefix: {meen53d5"
    "lwcmtg7zq7cmusacbztomox2: /opt/spack/__spack_path_placeholder__/"
    "__spack_path_placeholder__/linux-x86_64/munge-2.0.0-meen53d5lwcmtg7zq7"
    "cmusacbztomox2}}\n";

#define HA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HC "cccccccccccccccccccccccccccccccc"

/* Block style as an older Spack or a hand may write it: prefix_to_hash
 * (HB given twice: its first place, its last prefix), nested unknown
 * keys, quoted scalars, comments. */
static const char block_doc[] = "# written by hand\n"
				"buildpath: /opt/spack/root\n"
				"relative_prefix: \"linux/x-1.0-" HA "\"\n"
				"relocate_textfiles:\n"
				"- share/x.sh\n"
				"- 'bin/with space'\n"
				"relocate_binaries:\n"
				"  - bin/x\n"
				"relocate_links: []\n"
				"extra:\n"
				"  nested: {a: [1, 2, {b: c}], d: null}\n"
				"  more: [[], {}]\n"
				"prefix_to_hash:\n"
				"  /opt/spack/root/linux/x-1.0-" HA ": " HA "\n"
				"  /opt/spack/root/linux/b-old: " HB "\n"
				"  /opt/spack/root/linux/c-2: " HC "\n"
				"  /opt/spack/root/linux/b-new: " HB "\n";

static bool has(const char *err, const char *want)
{
	if (strstr(err, want))
		return true;
	fprintf(stderr, "  reason \"%s\" lacks \"%s\"\n", err, want);
	return false;
}

static int parse(const char *doc, struct bc_buildinfo *bi, char *err,
		 size_t errlen)
{
	return bc_parse_buildinfo(doc, strlen(doc), bi, err, errlen);
}

static void test_flow(void)
{
	struct bc_buildinfo bi;
	char err[256];

	CHECK(parse(munge_line, &bi, err, sizeof(err)) == 0);
	CHECK(bi.buildpath && !strcmp(bi.buildpath, ROOT));
	CHECK(bi.relative_prefix &&
	      !strcmp(bi.relative_prefix, "linux-x86_64/munge-2.0.0-" MH));
	CHECK(bi.sbang_install_path &&
	      !strcmp(bi.sbang_install_path, ROOT "/bin/sbang"));
	CHECK(bi.spackprefix && !strcmp(bi.spackprefix, "/opt/spack-src"));
	CHECK(bi.has_lists);
	CHECK_EQ_U64(bi.nbinaries, 4);
	CHECK(bi.nbinaries == 4 &&
	      !strcmp(bi.binaries[0], "lib/libmunge.so.2.0.0") &&
	      !strcmp(bi.binaries[3], "bin/unmunge"));
	CHECK_EQ_U64(bi.ntextfiles, 0);
	CHECK_EQ_U64(bi.nlinks, 0);
	CHECK_EQ_U64(bi.ndeps, 1);
	CHECK(bi.ndeps == 1 && !strcmp(bi.deps[0].hash, MH) &&
	      !strcmp(bi.deps[0].prefix, MPREFIX));
	bc_buildinfo_free(&bi);
	CHECK(bi.buildpath == NULL && bi.ndeps == 0);
	bc_buildinfo_free(&bi); /* twice, and NULL, do nothing */
	bc_buildinfo_free(NULL);
}

static void test_block(void)
{
	struct bc_buildinfo bi;
	char err[256];

	CHECK(parse(block_doc, &bi, err, sizeof(err)) == 0);
	CHECK(bi.buildpath && !strcmp(bi.buildpath, "/opt/spack/root"));
	CHECK(bi.relative_prefix &&
	      !strcmp(bi.relative_prefix, "linux/x-1.0-" HA));
	CHECK(!bi.sbang_install_path && !bi.spackprefix);
	CHECK(bi.has_lists);
	CHECK(bi.ntextfiles == 2 && !strcmp(bi.textfiles[0], "share/x.sh") &&
	      !strcmp(bi.textfiles[1], "bin/with space"));
	CHECK(bi.nbinaries == 1 && !strcmp(bi.binaries[0], "bin/x"));
	CHECK(bi.nlinks == 0);
	/* prefix_to_hash inverted as Python's dict(): document order, HB
	 * keeps its first place and takes its last prefix */
	CHECK_EQ_U64(bi.ndeps, 3);
	CHECK(bi.ndeps == 3 && !strcmp(bi.deps[0].hash, HA) &&
	      !strcmp(bi.deps[0].prefix, "/opt/spack/root/linux/x-1.0-" HA) &&
	      !strcmp(bi.deps[1].hash, HB) &&
	      !strcmp(bi.deps[1].prefix, "/opt/spack/root/linux/b-new") &&
	      !strcmp(bi.deps[2].hash, HC) &&
	      !strcmp(bi.deps[2].prefix, "/opt/spack/root/linux/c-2"));
	bc_buildinfo_free(&bi);
}

static void test_choices(void)
{
	struct bc_buildinfo bi;
	char err[256];

	/* hash_to_prefix wins over prefix_to_hash, in either order, even
	 * when empty (Spack: "hash_to_prefix" in buildinfo) */
	CHECK(parse("{buildpath: /r, relative_prefix: p, prefix_to_hash: {/r/"
		    "b: " HB "}, hash_to_prefix: {" HA ": /r/a}}",
		    &bi, err, sizeof(err)) == 0);
	CHECK(bi.ndeps == 1 && !strcmp(bi.deps[0].hash, HA) &&
	      !strcmp(bi.deps[0].prefix, "/r/a"));
	bc_buildinfo_free(&bi);
	CHECK(parse("{buildpath: /r, relative_prefix: p, hash_to_prefix: {}, "
		    "prefix_to_hash: {/r/b: " HB "}}",
		    &bi, err, sizeof(err)) == 0);
	CHECK(bi.ndeps == 0 && bi.deps == NULL);
	bc_buildinfo_free(&bi);
	/* no relocate_* key, no dependencies: fine, has_lists false; an
	 * unknown relocate_ key is no list */
	CHECK(parse("buildpath: /r\nrelative_prefix: p\nrelocate_x: [/a]\n",
		    &bi, err, sizeof(err)) == 0);
	CHECK(!bi.has_lists && bi.ndeps == 0 && bi.nbinaries == 0);
	bc_buildinfo_free(&bi);
	CHECK(parse("{buildpath: /r, relative_prefix: p, relocate_links: "
		    "[lib/a.so]}",
		    &bi, err, sizeof(err)) == 0);
	CHECK(bi.has_lists && bi.nlinks == 1 &&
	      !strcmp(bi.links[0], "lib/a.so"));
	bc_buildinfo_free(&bi);
	/* an explicit document, its end marker, a "." component */
	CHECK(parse("---\nbuildpath: /r/./s\nrelative_prefix: ./p\n...\n", &bi,
		    err, sizeof(err)) == 0);
	CHECK(bi.buildpath && !strcmp(bi.buildpath, "/r/./s"));
	bc_buildinfo_free(&bi);
}

struct bad {
	const char *doc;
	const char *why;
};

#define BP "buildpath: /r, relative_prefix: p"

static const struct bad bad_docs[] = {
    {"", "no document"},
    {"[a, b]", "not a mapping"},
    {"just text", "not a mapping"},
    {"a: 1\n---\nb: 2\n", "more than one document"},
    {"{relative_prefix: p}", "no buildpath"},
    {"{buildpath: /r}", "no relative_prefix"},
    {"{buildpath: r, relative_prefix: p}", "buildpath: not an absolute path"},
    {"{buildpath: /r/../s, relative_prefix: p}", "buildpath: a '..' comp"},
    {"{buildpath: /r/.., relative_prefix: p}", "buildpath: a '..' comp"},
    {"{buildpath: \"/r\\0s\", relative_prefix: p}", "buildpath: a NUL"},
    {"{buildpath: [/r], relative_prefix: p}", "buildpath: not a string"},
    {"{buildpath: {a: b}, relative_prefix: p}", "buildpath: not a string"},
    {"{buildpath: , relative_prefix: p}", "buildpath: empty"},
    {"{buildpath: /r, relative_prefix: /p}",
     "relative_prefix: not a relative path"},
    {"{buildpath: /r, relative_prefix: ''}", "relative_prefix: empty"},
    {"{buildpath: /r, relative_prefix: a/../b}", "relative_prefix: a '..'"},
    {"{buildpath: /r, relative_prefix: ..}", "relative_prefix: a '..'"},
    {"{" BP ", sbang_install_path: bin/sbang}",
     "sbang_install_path: not an absolute path"},
    {"{" BP ", sbang_install_path: [/a]}", "sbang_install_path: not a str"},
    {"{" BP ", spackprefix: spack}", "spackprefix: not an absolute path"},
    {"{" BP ", relocate_binaries: bin/x}", "relocate_binaries: not a list"},
    {"{" BP ", relocate_binaries: }", "relocate_binaries: not a list"},
    {"{" BP ", relocate_binaries: {a: b}}", "relocate_binaries: not a list"},
    {"{" BP ", relocate_binaries: [/bin/x]}",
     "relocate_binaries[0]: not a relative path"},
    {"{" BP ", relocate_textfiles: [a, ../b]}",
     "relocate_textfiles[1]: a '..' component"},
    {"{" BP ", relocate_links: [[a]]}", "relocate_links[0]: not a string"},
    {"{" BP ", relocate_links: [a, b, '']}", "relocate_links[2]: empty"},
    {"{" BP ", relocate_links: [\"a\\0\"]}", "relocate_links[0]: a NUL"},
    {"{" BP ", hash_to_prefix: [a]}", "hash_to_prefix: not a mapping"},
    {"{" BP ", hash_to_prefix: {" HA "x: /a}}",
     "hash_to_prefix: not 32 characters of [a-z2-7]"},
    {"{" BP ", hash_to_prefix: {AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA: /a}}",
     "hash_to_prefix: not 32 characters"},
    {"{" BP ", hash_to_prefix: {aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1: /a}}",
     "hash_to_prefix: not 32 characters"},
    {"{" BP ", hash_to_prefix: {" HA ": a}}",
     "hash_to_prefix: not an absolute path"},
    {"{" BP ", hash_to_prefix: {" HA ": /a/../b}}",
     "hash_to_prefix: a '..' component"},
    {"{" BP ", hash_to_prefix: {" HA ": [/a]}}",
     "hash_to_prefix: not a string"},
    {"{" BP ", hash_to_prefix: {" HA ": /a, " HA ": /b}}",
     "hash_to_prefix: duplicate key"},
    {"{" BP ", prefix_to_hash: {/a: " HA ", /a: " HB "}}",
     "prefix_to_hash: duplicate key"},
    {"{" BP ", prefix_to_hash: {/a: nothash}}",
     "prefix_to_hash: not 32 characters"},
    {"{" BP ", prefix_to_hash: {a: " HA "}}",
     "prefix_to_hash: not an absolute path"},
    {"{buildpath: /r, buildpath: /s, relative_prefix: p}",
     "buildpath: duplicate key"},
    {"{" BP ", foo: 1, foo: 2}", "foo: duplicate key"},
    {"{" BP ", hash_to_prefix: {}, hash_to_prefix: {}}",
     "hash_to_prefix: duplicate key"},
    {"buildpath: &a /r\nrelative_prefix: p\nx: *a\n",
     "anchors and aliases are refused"},
    {"x: &a [1, 2]\ny: [*a, *a]\nbuildpath: /r\nrelative_prefix: p\n",
     "anchors and aliases are refused"},
    {"x: &a {k: v}\nbuildpath: /r\nrelative_prefix: p\n",
     "anchors and aliases are refused"},
    {"{" BP ", x: *a}", "YAML"}, /* an undefined alias */
    {"{buildpath: /r, relative_prefix: p", "YAML"},
    {"{[a]: b, " BP "}", "a key that is not a string"},
    {"{{a: b}: c, " BP "}", "a key that is not a string"},
    {"{" BP ", x: \"\x01\"}", "YAML"},	   /* a control character */
    {"{" BP ", x: \"\xc3\x28\"}", "YAML"}, /* not UTF-8 */
};

static void test_refusals(void)
{
	struct bc_buildinfo bi;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
		int rc;

		memset(&bi, 0xa5, sizeof(bi));
		err[0] = '\0';
		rc = parse(bad_docs[i].doc, &bi, err, sizeof(err));
		if (rc != -EINVAL)
			fprintf(stderr, "  doc %zu (%s): rc %d\n", i,
				bad_docs[i].doc, rc);
		CHECK(rc == -EINVAL);
		CHECK(has(err, "binary_distribution: ") &&
		      has(err, bad_docs[i].why));
		CHECK(bi.buildpath == NULL && bi.deps == NULL &&
		      bi.binaries == NULL && bi.ndeps == 0 && !bi.has_lists);
	}
	/* no document at all */
	CHECK(bc_parse_buildinfo(NULL, 0, &bi, err, sizeof(err)) == -EINVAL &&
	      has(err, "no document"));
	/* err may be NULL or tiny */
	CHECK(parse("[a]", &bi, NULL, 0) == -EINVAL);
	CHECK(parse("[a]", &bi, err, 1) == -EINVAL && err[0] == '\0');
}

/* head, then s times times, then tail: malloc'd. */
static char *repeat(const char *s, size_t times, const char *head,
		    const char *tail)
{
	size_t n = strlen(s), h = strlen(head), t = strlen(tail), i;
	char *p = malloc(h + n * times + t + 1), *q = p;

	if (!p)
		abort();
	memcpy(q, head, h);
	q += h;
	for (i = 0; i < times; i++, q += n)
		memcpy(q, s, n);
	memcpy(q, tail, t + 1);
	return p;
}

static void test_depth(void)
{
	struct bc_buildinfo bi;
	char err[256];
	char *ok = repeat("[", BC_INFO_MAX_DEPTH, "{" BP ", x: ", "");
	char *deep = repeat("[", BC_INFO_MAX_DEPTH + 1, "{" BP ", x: ", "");
	char *p;

	p = repeat("]", BC_INFO_MAX_DEPTH, ok, "}");
	CHECK(parse(p, &bi, err, sizeof(err)) == 0);
	bc_buildinfo_free(&bi);
	free(p);
	p = repeat("]", BC_INFO_MAX_DEPTH + 1, deep, "}");
	CHECK(parse(p, &bi, err, sizeof(err)) == -EINVAL &&
	      has(err, "x: nested deeper than 64"));
	free(p);
	free(ok);
	free(deep);
}

static void test_limits(void)
{
	struct bc_buildinfo bi;
	char err[256], *p, *q;
	size_t i;

	/* the document */
	p = repeat(" ", BC_INFO_MAX - strlen(BP) - 2, "{" BP "}", "");
	CHECK(strlen(p) == BC_INFO_MAX);
	CHECK(parse(p, &bi, err, sizeof(err)) == 0);
	bc_buildinfo_free(&bi);
	free(p);
	p = repeat(" ", BC_INFO_MAX - strlen(BP) - 1, "{" BP "}", "");
	CHECK(parse(p, &bi, err, sizeof(err)) == -EINVAL &&
	      has(err, "1048577 bytes, more than 1048576"));
	free(p);

	/* a list: BC_INFO_MAX_FILES entries, then one more */
	p = repeat("a, ", BC_INFO_MAX_FILES - 1, "{" BP ", relocate_links: [",
		   "a]}");
	CHECK(parse(p, &bi, err, sizeof(err)) == 0);
	CHECK_EQ_U64(bi.nlinks, BC_INFO_MAX_FILES);
	bc_buildinfo_free(&bi);
	free(p);
	p = repeat("a, ", BC_INFO_MAX_FILES, "{" BP ", relocate_links: [",
		   "a]}");
	CHECK(parse(p, &bi, err, sizeof(err)) == -EINVAL &&
	      has(err, "relocate_links: more than 200000 entries"));
	free(p);

	/* dependencies: distinct hashes from a counter */
	for (i = 0; i < 2; i++) {
		size_t n = BC_INFO_MAX_DEPS + i, k, len = 0;
		size_t cap = 64 + n * 48;

		p = malloc(cap);
		if (!p)
			abort();
		len += (size_t)snprintf(p, cap, "{" BP ", hash_to_prefix: {");
		for (k = 0; k < n; k++) {
			char h[33];
			size_t j, v = k;

			for (j = 0; j < 32; j++, v /= 26)
				h[j] = (char)('a' + v % 26);
			h[32] = '\0';
			len += (size_t)snprintf(p + len, cap - len,
						"%s: /d%zu, ", h, k);
		}
		snprintf(p + len, cap - len, "}}");
		q = p;
		if (i == 0) {
			CHECK(parse(q, &bi, err, sizeof(err)) == 0);
			CHECK_EQ_U64(bi.ndeps, BC_INFO_MAX_DEPS);
			CHECK(bi.ndeps &&
			      !strcmp(bi.deps[bi.ndeps - 1].prefix, "/d9999"));
			bc_buildinfo_free(&bi);
		} else {
			CHECK(parse(q, &bi, err, sizeof(err)) == -EINVAL &&
			      has(err, "hash_to_prefix: more than 10000"));
		}
		free(p);
	}

	/* PATH_MAX */
	q = repeat("a", PATH_MAX - 1, "", "");
	p = malloc(2 * PATH_MAX);
	q[0] = '/';
	snprintf(p, 2 * PATH_MAX, "{buildpath: %s, relative_prefix: p}", q);
	CHECK(parse(p, &bi, err, sizeof(err)) == 0);
	bc_buildinfo_free(&bi);
	free(q);
	q = repeat("a", PATH_MAX, "", "");
	q[0] = '/';
	snprintf(p, 2 * PATH_MAX, "{buildpath: %s, relative_prefix: p}", q);
	CHECK(parse(p, &bi, err, sizeof(err)) == -EINVAL &&
	      has(err, "buildpath: PATH_MAX or longer"));
	free(q);
	free(p);
}

/* Every prefix of a valid document, in a buffer of exactly its length
 * (ASan sees any overread): refused with a reason, or a valid parse. */
static void truncate_all(const char *doc, size_t *refused, size_t *parsed)
{
	size_t len = strlen(doc), cut;

	for (cut = 0; cut < len; cut++) {
		struct bc_buildinfo bi;
		char err[256] = "";
		char *p = malloc(cut ? cut : 1);
		int rc;

		if (!p)
			abort();
		memcpy(p, doc, cut);
		rc = bc_parse_buildinfo(p, cut, &bi, err, sizeof(err));
		CHECK(rc == 0 || (rc == -EINVAL && *err && !bi.buildpath));
		if (rc == 0) {
			CHECK(bi.buildpath && bi.buildpath[0] == '/' &&
			      bi.relative_prefix);
			(*parsed)++;
		} else {
			(*refused)++;
		}
		bc_buildinfo_free(&bi);
		free(p);
	}
}

static void test_truncated(void)
{
	size_t refused = 0, parsed = 0;

	/* flow style: nothing short of the closing brace is a document */
	truncate_all(munge_line, &refused, &parsed);
	CHECK_EQ_U64(refused, strlen(munge_line) - 1); /* all but "...}}" */
	CHECK_EQ_U64(parsed, 1);
	refused = parsed = 0;
	/* block style: a cut at the end of a line may still be valid */
	truncate_all(block_doc, &refused, &parsed);
	CHECK(refused > 0 && parsed > 0 &&
	      refused + parsed == strlen(block_doc));
}

/* ---- maps ---- */

/* The fake mount: HA and HC are there, HB is not, "eee..." fails. */
static int lookup(void *arg, const char *hash, char *buf, size_t len)
{
	int *calls = arg;

	(*calls)++;
	if (hash[0] == 'e')
		return -EIO;
	if (hash[0] == 'f') /* not a path */
		return snprintf(buf, len, "relative"), 0;
	if (hash[0] == 'b')
		return -ENOENT;
	snprintf(buf, len, "/mnt/bc/%c-dir", hash[0]);
	return 0;
}

static bool pair_is(const struct reloc_map *m, size_t i, const char *old_prefix,
		    const char *new_prefix)
{
	if (i < m->n && !strcmp(m->pairs[i].old_prefix, old_prefix) &&
	    !strcmp(m->pairs[i].new_prefix, new_prefix))
		return true;
	fprintf(stderr, "  pair %zu is (%s -> %s), want (%s -> %s)\n", i,
		i < m->n ? m->pairs[i].old_prefix : "-",
		i < m->n ? m->pairs[i].new_prefix : "-", old_prefix,
		new_prefix);
	return false;
}

#define OWN "/opt/sp/root/linux/pkg-1-" HC
/* the own entry among the dependencies (as make-buildcache.py writes it),
 * HA found, HB not, and HC's prefix given for "d...": the same old
 * prefix again */
static const char maps_doc[] =
    "{sbang_install_path: /opt/sp/root/bin/sbang, buildpath: /opt/sp/root, "
    "spackprefix: /opt/spack-src, relative_prefix: linux/pkg-1-" HC ", "
    "hash_to_prefix: {" HC ": " OWN ", " HA ": /opt/sp/root/linux/a-1, " HB
    ": /opt/sp/root/linux/b-1, dddddddddddddddddddddddddddddddd: "
    "/opt/sp/root/linux/a-1}}";

static void test_maps_order(void)
{
	struct bc_buildinfo bi;
	struct bc_reloc_maps m;
	char err[256];
	int calls = 0;

	CHECK(parse(maps_doc, &bi, err, sizeof(err)) == 0);
	CHECK(bc_buildinfo_maps(&bi, "/mnt/bc/pkg", "/mnt/bc", lookup, &calls,
				&m, err, sizeof(err)) == 0);
	CHECK_EQ_U64(calls, 3); /* own entry skipped, never looked up */
	/* binaries: dependencies, own, root; a-1 given twice keeps its
	 * place and takes the later directory */
	CHECK_EQ_U64(m.bin.n, 3);
	CHECK(pair_is(&m.bin, 0, "/opt/sp/root/linux/a-1", "/mnt/bc/d-dir"));
	CHECK(pair_is(&m.bin, 1, OWN, "/mnt/bc/pkg"));
	CHECK(pair_is(&m.bin, 2, "/opt/sp/root", "/mnt/bc"));
	/* text: sbang first, the old shebang line last */
	CHECK_EQ_U64(m.text.n, 5);
	CHECK(
	    pair_is(&m.text, 0, "/opt/sp/root/bin/sbang", "/mnt/bc/bin/sbang"));
	CHECK(pair_is(&m.text, 1, "/opt/sp/root/linux/a-1", "/mnt/bc/d-dir"));
	CHECK(pair_is(&m.text, 2, OWN, "/mnt/bc/pkg"));
	CHECK(pair_is(&m.text, 3, "/opt/sp/root", "/mnt/bc"));
	CHECK(pair_is(&m.text, 4, "#!/bin/bash /opt/spack-src/bin/sbang",
		      "#!/bin/sh /mnt/bc/bin/sbang"));
	CHECK(bc_reloc_maps_too_long(&m) == NULL);

	/* the maps work in the engine: a script of the package */
	{
		static const char in[] =
		    "#!/bin/bash /opt/spack-src/bin/sbang\n"
		    "exec " OWN "/bin/x -L/opt/sp/root/linux/b-1/lib "
		    "/opt/sp/root/linux/a-1/bin/y\n";
		static const char want[] =
		    "#!/bin/sh /mnt/bc/bin/sbang\n"
		    "exec /mnt/bc/pkg/bin/x -L/mnt/bc/linux/b-1/lib "
		    "/mnt/bc/d-dir/bin/y\n";
		void *out = NULL;
		size_t outlen = 0;

		CHECK(reloc_text(in, strlen(in), &m.text, &out, &outlen) == 0);
		CHECK(out && outlen == strlen(want) &&
		      !memcmp(out, want, outlen));
		free(out);
	}
	bc_reloc_maps_free(&m);
	CHECK(m.bin.n == 0 && m.text.pairs == NULL);
	bc_reloc_maps_free(&m);
	bc_reloc_maps_free(NULL);

	/* no lookup: own and root only (plus the sbang pairs for text) */
	CHECK(bc_buildinfo_maps(&bi, "/mnt/bc/pkg", "/mnt/bc", NULL, NULL, &m,
				err, sizeof(err)) == 0);
	CHECK(m.bin.n == 2 && pair_is(&m.bin, 0, OWN, "/mnt/bc/pkg"));
	CHECK_EQ_U64(m.text.n, 4);
	bc_reloc_maps_free(&m);
	bc_buildinfo_free(&bi);
}

static void test_maps_variants(void)
{
	struct bc_buildinfo bi;
	struct bc_reloc_maps m;
	char err[256];
	int calls = 0;

	/* a buildpath ending in '/' joins as os.path.join; no sbang, no
	 * spackprefix: the text map is the binary one */
	CHECK(parse("{buildpath: /r/, relative_prefix: p}", &bi, err,
		    sizeof(err)) == 0);
	CHECK(bc_buildinfo_maps(&bi, "/n/p", "/n", lookup, &calls, &m, err,
				sizeof(err)) == 0);
	CHECK(m.bin.n == 2 && pair_is(&m.bin, 0, "/r/p", "/n/p") &&
	      pair_is(&m.bin, 1, "/r/", "/n"));
	CHECK(m.text.n == 2 && pair_is(&m.text, 0, "/r/p", "/n/p"));
	/* identity pairs stay; too_long: the own prefix grows */
	bc_reloc_maps_free(&m);
	CHECK(bc_buildinfo_maps(&bi, "/r/p", "/r/", NULL, NULL, &m, err,
				sizeof(err)) == 0);
	CHECK(m.bin.n == 2 && pair_is(&m.bin, 0, "/r/p", "/r/p") &&
	      bc_reloc_maps_too_long(&m) == NULL);
	bc_reloc_maps_free(&m);
	CHECK(bc_buildinfo_maps(&bi, "/r/pp", "/r", NULL, NULL, &m, err,
				sizeof(err)) == 0);
	CHECK(bc_reloc_maps_too_long(&m) == &m.bin.pairs[0]);
	bc_reloc_maps_free(&m);
	/* the root grows, the own prefix does not */
	CHECK(bc_buildinfo_maps(&bi, "/p", "/root", NULL, NULL, &m, err,
				sizeof(err)) == 0);
	CHECK(bc_reloc_maps_too_long(&m) == &m.bin.pairs[1]);
	bc_reloc_maps_free(&m);
	CHECK(bc_reloc_maps_too_long(NULL) == NULL);

	/* bad new paths */
	CHECK(bc_buildinfo_maps(&bi, "n/p", "/n", NULL, NULL, &m, err,
				sizeof(err)) == -EINVAL &&
	      has(err, "new prefix is not an absolute path") &&
	      m.bin.pairs == NULL);
	CHECK(bc_buildinfo_maps(&bi, "/n/p", "/n/../x", NULL, NULL, &m, err,
				sizeof(err)) == -EINVAL &&
	      has(err, "new root"));
	CHECK(bc_buildinfo_maps(&bi, "/n/p", NULL, NULL, NULL, &m, err,
				sizeof(err)) == -EINVAL);
	bc_buildinfo_free(&bi);

	/* lookup answers: an error is passed on, a relative path refused */
	CHECK(parse("{buildpath: /r, relative_prefix: p, hash_to_prefix: "
		    "{eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee: /r/e}}",
		    &bi, err, sizeof(err)) == 0);
	CHECK(bc_buildinfo_maps(&bi, "/n/p", "/n", lookup, &calls, &m, err,
				sizeof(err)) == -EIO &&
	      has(err, "looking up eeee") && m.bin.n == 0);
	bc_buildinfo_free(&bi);
	CHECK(parse("{buildpath: /r, relative_prefix: p, hash_to_prefix: "
		    "{ffffffffffffffffffffffffffffffff: /r/f}}",
		    &bi, err, sizeof(err)) == 0);
	CHECK(bc_buildinfo_maps(&bi, "/n/p", "/n", lookup, &calls, &m, err,
				sizeof(err)) == -EINVAL &&
	      has(err, "gave no absolute path"));
	bc_buildinfo_free(&bi);

	/* a dependency directory longer than its old prefix */
	CHECK(parse("{buildpath: /r, relative_prefix: p, hash_to_prefix: "
		    "{" HA ": /r/a}}",
		    &bi, err, sizeof(err)) == 0);
	CHECK(bc_buildinfo_maps(&bi, "/n", "/n", lookup, &calls, &m, err,
				sizeof(err)) == 0);
	CHECK(pair_is(&m.bin, 0, "/r/a", "/mnt/bc/a-dir") &&
	      bc_reloc_maps_too_long(&m) == &m.bin.pairs[0]);
	bc_reloc_maps_free(&m);
	bc_buildinfo_free(&bi);

	/* buildpath + relative_prefix reaching PATH_MAX */
	{
		char *rel = repeat("a", PATH_MAX - 3, "", "");
		size_t n = strlen(rel) + 64;
		char *doc = malloc(n);

		snprintf(doc, n, "{buildpath: /r, relative_prefix: %s}", rel);
		CHECK(parse(doc, &bi, err, sizeof(err)) == 0);
		CHECK(bc_buildinfo_maps(&bi, "/n", "/n", NULL, NULL, &m, err,
					sizeof(err)) == -EINVAL &&
		      has(err, "PATH_MAX or longer"));
		bc_buildinfo_free(&bi);
		free(doc);
		free(rel);
	}
}

/* ---- the files make-buildcache.py writes, read back ---- */

/* The output of cmd (at most max bytes; more is a failure), or NULL. */
static char *run_out(const char *cmd, size_t max, size_t *len)
{
	char *buf = malloc(max + 1);
	FILE *p = popen(cmd, "r"); // NOLINT(cert-env33-c): a test helper
	size_t n = 0, r = 1;
	int st;

	if (!buf || !p) {
		free(buf);
		if (p)
			pclose(p);
		return NULL;
	}
	while (r && n <= max) {
		r = fread(buf + n, 1, max + 1 - n, p);
		n += r;
	}
	st = pclose(p);
	if (n > max || st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Every relocate_binaries entry is a member under the package's prefix. */
static bool members_listed(const char *tarball, const char *prefix,
			   const struct bc_buildinfo *bi)
{
	char cmd[8192], want[8192];
	size_t len, i;
	char *names;
	bool ok = true;

	snprintf(cmd, sizeof(cmd), "tar -tzf '%s'", tarball);
	names = run_out(cmd, 64u << 20, &len);
	if (!names)
		return false;
	for (i = 0; i < bi->nbinaries && ok; i++) {
		snprintf(want, sizeof(want), "\n%s/%s\n", prefix + 1,
			 bi->binaries[i]);
		ok = strstr(names, want) != NULL;
		if (!ok)
			fprintf(stderr, "  %s: no member %s", tarball,
				want + 1);
	}
	free(names);
	return ok;
}

/* One line of --list: dir, tarball, prefix, name, version, hash. */
static void check_package(const char *cache, char *line)
{
	char *f[7], *save = NULL, tarball[4096], cmd[8192], own[4096];
	char newp[256];
	struct bc_buildinfo bi;
	struct bc_reloc_maps m;
	char err[256], *doc;
	size_t len = 0, i;

	for (i = 0; i < 7; i++)
		f[i] = strtok_r(i ? NULL : line, "\t", &save);
	if (!f[5]) {
		CHECK(!"a --list line has six fields");
		return;
	}
	snprintf(tarball, sizeof(tarball), "%s/%s", cache, f[1]);
	snprintf(cmd, sizeof(cmd),
		 "tar -xzOf '%s' --wildcards '*/.spack/binary_distribution'",
		 tarball);
	doc = run_out(cmd, BC_INFO_MAX, &len);
	CHECK(doc != NULL);
	if (!doc)
		return;
	CHECK(bc_parse_buildinfo(doc, len, &bi, err, sizeof(err)) == 0);
	free(doc);
	snprintf(own, sizeof(own), "%s/%s", bi.buildpath ? bi.buildpath : "",
		 bi.relative_prefix ? bi.relative_prefix : "");
	CHECK(!strcmp(own, f[2]));
	CHECK(bi.has_lists && bi.nbinaries > 0);
	CHECK(bi.ndeps == 1 && !strcmp(bi.deps[0].hash, f[5]) &&
	      !strcmp(bi.deps[0].prefix, f[2]));
	CHECK(members_listed(tarball, f[2], &bi));
	/* in a mount at /sf/bc: own and root, nothing too long */
	snprintf(newp, sizeof(newp), "/sf/bc/%s", f[0]);
	CHECK(bc_buildinfo_maps(&bi, newp, "/sf/bc", NULL, NULL, &m, err,
				sizeof(err)) == 0);
	CHECK(m.bin.n == 2 && pair_is(&m.bin, 0, f[2], newp) && m.text.n == 4 &&
	      !bc_reloc_maps_too_long(&m));
	bc_reloc_maps_free(&m);
	bc_buildinfo_free(&bi);
}

static void check_cache(const char *extract, const char *out,
			const char *layout)
{
	char cmd[8192], *list, *line, *save = NULL;
	size_t len = 0, n = 0;

	snprintf(cmd, sizeof(cmd),
		 "rm -rf '%s' && python3 '%s/tests/lib/make-buildcache.py' "
		 "--fixture '%s' --out '%s' --layout %s --packages 12 --list "
		 "2>/dev/null",
		 out, getenv("SFFS_SRC"), extract, out, layout);
	list = run_out(cmd, 1u << 20, &len);
	CHECK(list != NULL);
	if (!list)
		return;
	for (line = strtok_r(list, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), n++) {
		char copy[8192];

		snprintf(copy, sizeof(copy), "%s", line);
		check_package(out, copy);
	}
	CHECK_EQ_U64(n, 12);
	free(list);
}

static void test_generated(void)
{
	const char *fix = getenv("SFFS_FIXTURE_DIR");
	const char *tmp = getenv("SFFS_TEST_TMP");
	char extract[4096], out[4096];
	struct stat st;

	/* a missing fixture fails the test: a skipped check proves nothing */
	if (!fix || !tmp || !getenv("SFFS_SRC")) {
		CHECK(!"SFFS_FIXTURE_DIR, SFFS_TEST_TMP and SFFS_SRC are set");
		return;
	}
	snprintf(extract, sizeof(extract), "%s/extract", fix);
	if (stat(extract, &st) != 0 || access("/usr/bin/python3", X_OK)) {
		CHECK(!"the generated caches need the fixture and python3");
		return;
	}
	mkdir(tmp, 0755);
	snprintf(out, sizeof(out), "%s/bcinfo-v3", tmp);
	check_cache(extract, out, "v3");
	snprintf(out, sizeof(out), "%s/bcinfo-v2", tmp);
	check_cache(extract, out, "v2");
}

int main(void)
{
	test_flow();
	test_block();
	test_choices();
	test_refusals();
	test_depth();
	test_limits();
	test_truncated();
	test_maps_order();
	test_maps_variants();
	test_generated();
	return check_done();
}
