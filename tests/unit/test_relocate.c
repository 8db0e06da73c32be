/* SPDX-License-Identifier: MIT */
/*
 * test_relocate - the relocation engine (archive/relocate.c): the bounded
 * ELF parser on hand-made files of both classes and byte orders, Spack's
 * rpath/interpreter and C-string rules, text files and symlinks, the
 * overlay of patches on any range, and random mutations of real and
 * hand-made ELF files (run it under ASan).
 *
 *   test_relocate          the checks
 *   test_relocate bench    reloc_apply's cost on a 100 MB sequential read
 *
 * The byte-for-byte comparison with an independent reference of Spack on
 * real binaries is tests/lib/check-relocate.sh.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "sffs/relocate.h"

#define ELF_SIZE 1024u
#define OFF_INTERP 256u
#define OFF_DYNSTR 512u
#define DYNSTR_SIZE 256u
#define OFF_DYN 768u
#define OFF_SHDR 896u
#define VBASE 0x10000u
#define RPATH_AT 11u /* in the dynstr, after "\0libc.so.6\0" */

struct wr {
	unsigned char *b;
	bool is64, le;
};

static void put(const struct wr *w, size_t off, uint64_t v, unsigned size)
{
	for (unsigned i = 0; i < size; i++) {
		unsigned shift = w->le ? 8 * i : 8 * (size - 1 - i);
		w->b[off + i] = (unsigned char)(v >> shift);
	}
}

static void put_word(const struct wr *w, size_t off, uint64_t v)
{
	put(w, off, v, w->is64 ? 8 : 4);
}

static void put_ehdr(const struct wr *w)
{
	memcpy(w->b, "\177ELF", 4);
	w->b[4] = w->is64 ? 2 : 1;
	w->b[5] = w->le ? 1 : 2;
	w->b[6] = 1;
	put(w, 16, 3, 2); /* ET_DYN */
	put(w, 18, 62, 2);
	put(w, 20, 1, 4);
	put_word(w, w->is64 ? 32 : 28, w->is64 ? 64 : 52); /* e_phoff */
	put_word(w, w->is64 ? 40 : 32, OFF_SHDR);	   /* e_shoff */
	put(w, w->is64 ? 56 : 44, 3, 2);		   /* e_phnum */
	put(w, w->is64 ? 60 : 48, 2, 2);		   /* e_shnum */
}

static void put_phdr(const struct wr *w, unsigned i, uint32_t type,
		     uint64_t off, uint64_t filesz)
{
	size_t p = (w->is64 ? 64 : 52) + i * (w->is64 ? 56 : 32);

	put(w, p, type, 4);
	put_word(w, p + (w->is64 ? 8 : 4), off);
	put_word(w, p + (w->is64 ? 16 : 8), VBASE + off);
	put_word(w, p + (w->is64 ? 32 : 16), filesz);
}

static void put_dyn(const struct wr *w, unsigned i, uint64_t tag, uint64_t val)
{
	size_t e = w->is64 ? 16 : 8;

	put_word(w, OFF_DYN + i * e, tag);
	put_word(w, OFF_DYN + i * e + e / 2, val);
}

/* A shared library with an interpreter, DT_NEEDED libc.so.6 and one
 * DT_RPATH (or DT_RUNPATH) string. */
static unsigned char *make_elf(bool is64, bool le, bool runpath,
			       const char *interp, const char *rpath)
{
	unsigned char *b = calloc(1, ELF_SIZE);
	struct wr w = {b, is64, le};
	size_t sh = is64 ? 64 : 40;

	put_ehdr(&w);
	put_phdr(&w, 0, 1, 0, ELF_SIZE);		    /* PT_LOAD */
	put_phdr(&w, 1, 3, OFF_INTERP, strlen(interp) + 1); /* INTERP */
	put_phdr(&w, 2, 2, OFF_DYN, 5 * (is64 ? 16 : 8));   /* DYNAMIC */
	strcpy((char *)b + OFF_INTERP, interp);
	memcpy(b + OFF_DYNSTR, "\0libc.so.6\0", 11);
	strcpy((char *)b + OFF_DYNSTR + RPATH_AT, rpath);
	put_dyn(&w, 0, 1, 1);		       /* NEEDED */
	put_dyn(&w, 1, 5, VBASE + OFF_DYNSTR); /* STRTAB */
	put_dyn(&w, 2, runpath ? 29 : 15, RPATH_AT);
	put_dyn(&w, 3, 14, 1); /* SONAME */
	put_dyn(&w, 4, 0, 0);
	put(&w, OFF_SHDR + sh + 4, 3, 4); /* SHT_STRTAB */
	put_word(&w, OFF_SHDR + sh + (is64 ? 24 : 16), OFF_DYNSTR);
	put_word(&w, OFF_SHDR + sh + (is64 ? 32 : 20), DYNSTR_SIZE);
	return b;
}

#define OLD "/opt/sw/__spack_path_placeholder__/__spack_path_placeholder__"
#define PKG OLD "/slurm-abc"
#define DEP OLD "/hwloc-def"

static const struct reloc_pair bc_pairs[] = {
    {DEP, "/sf/bc/hwloc-def"},
    {PKG, "/sf/bc/slurm-abc"},
    {OLD, "/sf/bc"},
};
static const struct reloc_map bc_map = {bc_pairs, 3};

/* The relocated file: the original with every patch applied. */
static unsigned char *relocated(const unsigned char *in, size_t len,
				const struct reloc_map *map, int *rc)
{
	struct reloc_patch *p;
	unsigned char *out = malloc(len);
	size_t n;

	memcpy(out, in, len);
	*rc = reloc_elf_patches(in, len, map, &p, &n, NULL, 0);
	if (*rc == 0)
		reloc_apply(p, n, 0, out, len);
	reloc_patches_free(p);
	return out;
}

static void test_parse(void)
{
	for (int c = 0; c < 4; c++) {
		bool is64 = c & 1, le = c & 2;
		unsigned char *b =
		    make_elf(is64, le, c == 3, "/lib/ld.so", "/a:/b");
		struct reloc_elf_info info;

		CHECK(reloc_elf_parse(b, ELF_SIZE, &info) == 0);
		CHECK(info.is64 == is64 && info.little_endian == le);
		CHECK(info.has_interp && info.interp_off == OFF_INTERP);
		CHECK_EQ_U64(info.interp_len, 10);
		CHECK(info.has_rpath && info.is_runpath == (c == 3));
		CHECK_EQ_U64(info.rpath_off, OFF_DYNSTR + RPATH_AT);
		CHECK_EQ_U64(info.rpath_len, 5);
		/* every truncation before the string table's header is
		 * refused */
		for (size_t cut = 0; cut < OFF_SHDR + (is64 ? 128 : 80);
		     cut += 7)
			CHECK(reloc_elf_parse(b, cut, &info) == -EINVAL);
		free(b);
	}
}

static void test_parse_refusals(void)
{
	unsigned char *b = make_elf(true, true, false, "/lib/ld.so", "/a");
	struct wr w = {b, true, true};
	struct reloc_elf_info info;

	put_dyn(&w, 3, 15, RPATH_AT); /* a second DT_RPATH */
	CHECK(reloc_elf_parse(b, ELF_SIZE, &info) == -EINVAL);
	put_dyn(&w, 3, 14, 1);
	put(&w, OFF_SHDR + 64 + 4, 2, 4); /* no SHT_STRTAB at DT_STRTAB */
	CHECK(reloc_elf_parse(b, ELF_SIZE, &info) == -EINVAL);
	put(&w, OFF_SHDR + 64 + 4, 3, 4);
	memset(b + OFF_DYNSTR, 'x', DYNSTR_SIZE); /* strings without NUL */
	CHECK(reloc_elf_parse(b, ELF_SIZE, &info) == -EINVAL);
	memcpy(b + OFF_DYNSTR, "\0libc.so.6\0/a\0", 14);
	put(&w, 16, 1, 2); /* ET_REL */
	CHECK(reloc_elf_parse(b, ELF_SIZE, &info) == -EINVAL);
	put(&w, 16, 3, 2);
	put(&w, 56, 0xffff, 2); /* e_phnum past the end */
	CHECK(reloc_elf_parse(b, ELF_SIZE, &info) == -EINVAL);
	put(&w, 56, 3, 2);
	CHECK(reloc_elf_parse(b, ELF_SIZE, &info) == 0);
	free(b);
}

static void test_rpath_interp(void)
{
	for (int c = 0; c < 4; c++) {
		unsigned char *b =
		    make_elf(c & 1, c & 2, c == 1, DEP "/lib/ld.so",
			     PKG "/lib::" DEP "/lib:/usr/lib:");
		unsigned char *r;
		const char *want = "/sf/bc/slurm-abc/lib:/sf/bc/hwloc-def/"
				   "lib:/usr/lib";
		size_t old = strlen(PKG "/lib::" DEP "/lib:/usr/lib:");
		int rc;

		r = relocated(b, ELF_SIZE, &bc_map, &rc);
		CHECK(rc == 0);
		CHECK(strcmp((char *)r + OFF_DYNSTR + RPATH_AT, want) == 0);
		/* the shortened string is padded with NUL up to its old end */
		for (size_t i = strlen(want); i <= old; i++)
			CHECK(r[OFF_DYNSTR + RPATH_AT + i] == 0);
		CHECK(strcmp((char *)r + OFF_INTERP,
			     "/sf/bc/hwloc-def/lib/ld.so") == 0);
		CHECK(memcmp(r, b, OFF_INTERP) == 0);
		/* in place: the buffer becomes the relocated file */
		{
			struct reloc_patch *p;
			size_t n;

			CHECK(reloc_elf_patches_inplace(b, ELF_SIZE, &bc_map,
							&p, &n, NULL, 0) == 0);
			CHECK(n == 2 && memcmp(b, r, ELF_SIZE) == 0);
			reloc_patches_free(p);
		}
		free(r);
		free(b);
	}
}

static void test_rpath_grows(void)
{
	static const struct reloc_pair p[] = {{"/o", "/a/longer/one"}};
	struct reloc_map m = {p, 1};
	unsigned char *b = make_elf(true, true, false, "/lib/ld.so", "/o/lib");
	struct reloc_patch *out;
	char err[128] = "";
	size_t n;

	CHECK(reloc_elf_patches(b, ELF_SIZE, &m, &out, &n, err, sizeof(err)) ==
	      -ENAMETOOLONG);
	CHECK(out == NULL && n == 0);
	CHECK(strstr(err, "rpath") != NULL);
	free(b);
}

/* Phase 2 on a buffer that is not ELF: only C strings change. */
static int cstr_case(const char *in, size_t len, const struct reloc_map *m,
		     const char *want)
{
	unsigned char *r;
	int rc;

	r = relocated((const unsigned char *)in, len, m, &rc);
	if (rc == 0 && want && memcmp(r, want, len) != 0) {
		fprintf(stderr, "got: ");
		fwrite(r, 1, len, stderr);
		fprintf(stderr, "\n");
		rc = -1000;
	}
	free(r);
	return rc;
}

static void test_cstrings(void)
{
	static const struct reloc_pair p[] = {
	    {"/old/prefix/aaaa", "/nix/aaaa"},
	    {"/old/prefix", "/np"},
	    {"/same", "/same"},
	};
	struct reloc_map m = {p, 3};
	/* long suffix: pad with leading '/' */
	static const char a[] = "x/old/prefix/lib/libfoo.so\0y";
	static const char aw[] = "x/////////np/lib/libfoo.so\0y";
	/* NUL right after: tails "/prefix" and "/np" differ, shrink 8 > 7,
	 * so the string is cut short; then a common tail: padded */
	static const char b[] = "z/old/prefix\0/old/prefix/aaaa\0";
	static const char bw[] = "z/np\0/prefix\0////////nix/aaaa\0";
	/* the first pair wins where both match */
	static const char c[] = "/old/prefix/aaaa/bin/tool-name\0";
	static const char cw[] = "////////nix/aaaa/bin/tool-name\0";

	CHECK(cstr_case(a, sizeof(a), &m, aw) == 0);
	CHECK(cstr_case(b, sizeof(b), &m, bw) == 0);
	CHECK(cstr_case(c, sizeof(c), &m, cw) == 0);
	/* identity pairs change nothing */
	CHECK(cstr_case("/same/x\0", 8, &m, "/same/x\0") == 0);
}

static void test_cstring_refusals(void)
{
	static const struct reloc_pair grow[] = {{"/short", "/much/longer"}};
	static const struct reloc_pair shrink[] = {{"/old/abcdef", "/o/xyz"}};
	static const struct reloc_pair tail[] = {{"/old/abcdef", "/o/abcdef"}};
	static const struct reloc_pair by7[] = {{"/old/abcdefgh", "/o/xyz"}};
	static const struct reloc_pair by8[] = {{"/old/abcdefghi", "/o/xyz"}};
	struct reloc_map g = {grow, 1}, s = {shrink, 1}, t = {tail, 1};
	struct reloc_map s7 = {by7, 1}, s8 = {by8, 1};

	CHECK(cstr_case("a/short/x\0", 10, &g, NULL) == -ENAMETOOLONG);
	/* shrink by 5, tails differ, NUL within the window: cannot */
	CHECK(cstr_case("/old/abcdef/b\0", 14, &s, NULL) == -ENAMETOOLONG);
	/* same shrink, the common tail is long enough: padded */
	CHECK(cstr_case("/old/abcdef\0", 12, &t, "///o/abcdef\0") == 0);
	/* no NUL within 8 bytes: padded whatever the tails */
	CHECK(cstr_case("/old/abcdef/12345678", 20, &s,
			"//////o/xyz/12345678") == 0);
	/* the window is 7 bytes and a NUL: a 6-byte suffix is guarded, a
	 * 7-byte one is not */
	CHECK(cstr_case("/old/abcdef123456\0", 18, &s, NULL) == -ENAMETOOLONG);
	CHECK(cstr_case("/old/abcdef1234567\0", 19, &s,
			"//////o/xyz1234567\0") == 0);
	/* cutting short needs more than 7 bytes to spare */
	CHECK(cstr_case("/old/abcdefgh\0", 14, &s7, NULL) == -ENAMETOOLONG);
	CHECK(cstr_case("/old/abcdefghi\0", 15, &s8, "/o/xyz\0cdefghi\0") == 0);
	/* no old prefix: nothing */
	CHECK(cstr_case("nothing here", 12, &g, "nothing here") == 0);
}

static void test_bad_maps(void)
{
	static const struct reloc_pair empty[] = {{"", "/x"}};
	struct reloc_map e = {empty, 1}, none = {NULL, 0};
	struct reloc_patch *p;
	void *out;
	size_t n;

	CHECK(reloc_elf_patches("abc", 3, &e, &p, &n, NULL, 0) == -EINVAL);
	CHECK(reloc_elf_patches("abc", 3, &none, &p, &n, NULL, 0) == -EINVAL);
	CHECK(reloc_text("abc", 3, &e, &out, &n) == -EINVAL);
}

static int text_case(const char *in, const struct reloc_map *m,
		     const char *want)
{
	void *out;
	size_t outlen;
	int rc = reloc_text(in, strlen(in), m, &out, &outlen);

	if (rc == 0 && !out)
		rc = strcmp(in, want) == 0 ? 0 : -1000;
	else if (rc == 0 &&
		 (outlen != strlen(want) || memcmp(out, want, outlen) != 0)) {
		fprintf(stderr, "got: %.*s\n", (int)outlen, (char *)out);
		rc = -1000;
	}
	free(out);
	return rc;
}

static void test_text(void)
{
	static const struct reloc_pair p[] = {
	    {"/sbang/bin/sbang", "/new/sbang"},
	    {"/old/dep", "/d"},
	    {"/old", "/a/much/longer/root"},
	};
	struct reloc_map m = {p, 3};

	CHECK(text_case("#!/bin/sh /sbang/bin/sbang\n", &m,
			"#!/bin/sh /new/sbang\n") == 0);
	CHECK(text_case("prefix=/old/dep/lib -L/old/x", &m,
			"prefix=/d/lib -L/a/much/longer/root/x") == 0);
	/* a word before the prefix is kept; a '/' before it is not a
	 * start */
	CHECK(text_case("abc/old/x /a/old/y", &m,
			"abc/a/much/longer/root/x /a/old/y") == 0);
	/* the rest of the path word is consumed: no second match in it */
	CHECK(text_case("/old/dep/old/dep:/old", &m,
			"/d/old/dep:/a/much/longer/root") == 0);
	CHECK(text_case("nothing to do", &m, "nothing to do") == 0);
	CHECK(text_case("/old", &m, "/a/much/longer/root") == 0);
}

static void test_links(void)
{
	char *out;

	CHECK(reloc_link(PKG "/lib/libx.so.1", &bc_map, &out) == 0);
	CHECK(out && strcmp(out, "/sf/bc/slurm-abc/lib/libx.so.1") == 0);
	free(out);
	CHECK(reloc_link("libx.so.1", &bc_map, &out) == 0 && !out);
	CHECK(reloc_link("/usr/lib/x", &bc_map, &out) == 0 && !out);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Patches laid out as reloc_elf_patches makes them: sorted, disjoint. */
static struct reloc_patch *fake_patches(size_t n, uint64_t size, uint64_t *s,
					unsigned char **pool)
{
	struct reloc_patch *p = calloc(n, sizeof(*p));
	uint64_t gap = size / n;

	*pool = malloc(n * 64);
	for (size_t i = 0; i < n; i++) {
		p[i].off = i * gap + rnd(s) % (gap - 64);
		p[i].len = 1 + (uint32_t)(rnd(s) % 64);
		p[i].data = *pool + i * 64;
		memset(*pool + i * 64, (int)(i & 0xff) | 1, 64);
	}
	return p;
}

static void test_apply_ranges(void)
{
	uint64_t s = 88172645463325252ull, size = 1 << 20;
	unsigned char *pool, *full = calloc(1, size), *part = malloc(size);
	struct reloc_patch *p = fake_patches(300, size, &s, &pool);
	unsigned bad = 0;

	reloc_apply(p, 300, 0, full, size);
	for (int i = 0; i < 3000; i++) {
		uint64_t off = rnd(&s) % size, len = rnd(&s) % 9000;

		if (len > size - off)
			len = size - off;
		memset(part, 0, len);
		reloc_apply(p, 300, off, part, len);
		bad += memcmp(part, full + off, len) != 0;
	}
	CHECK(bad == 0);
	free(p);
	free(pool);
	free(full);
	free(part);
}

/* Encode, decode: the same patches; every truncation, a count past the
 * data, an overlap or a patch past the file is refused. */
static void test_stored(void)
{
	unsigned char *b =
	    make_elf(true, true, false, DEP "/lib/ld.so", PKG "/lib");
	struct reloc_patch *p, *q;
	size_t n, m, len;
	void *enc;
	unsigned char *e;
	uint64_t s = 1;

	CHECK(reloc_elf_patches(b, ELF_SIZE, &bc_map, &p, &n, NULL, 0) == 0);
	CHECK(n == 2);
	CHECK(reloc_patches_encode(p, n, &enc, &len) == 0);
	e = enc;
	CHECK(reloc_patches_decode(e, len, ELF_SIZE, &q, &m) == 0);
	CHECK(m == n);
	for (size_t i = 0; i < n && m == n; i++)
		CHECK(q[i].off == p[i].off && q[i].len == p[i].len &&
		      memcmp(q[i].data, p[i].data, p[i].len) == 0);
	reloc_patches_free(q);
	for (size_t cut = 0; cut < len; cut++) {
		unsigned char *t = malloc(cut ? cut : 1);

		memcpy(t, e, cut);
		CHECK(reloc_patches_decode(t, cut, ELF_SIZE, &q, &m) ==
		      -EINVAL);
		free(t);
	}
	/* the second patch moved onto the first, then past the file */
	memcpy(e + 16, e + 4, 8);
	CHECK(reloc_patches_decode(e, len, ELF_SIZE, &q, &m) == -EINVAL);
	CHECK(reloc_patches_encode(p, n, &enc, &len) == 0);
	free(e);
	e = enc;
	CHECK(reloc_patches_decode(e, len, p[1].off + p[1].len - 1, &q, &m) ==
	      -EINVAL);
	/* random damage: refused or decoded, never outside the file */
	for (int r = 0; r < 5000; r++) {
		unsigned char *t = malloc(len);
		int rc;

		memcpy(t, e, len);
		t[rnd(&s) % len] = (unsigned char)rnd(&s);
		rc = reloc_patches_decode(t, len, ELF_SIZE, &q, &m);
		for (size_t i = 0; rc == 0 && i < m; i++)
			CHECK(q[i].off + q[i].len <= ELF_SIZE);
		reloc_patches_free(q);
		free(t);
	}
	CHECK(reloc_patches_decode("\0\0\0\0", 4, 0, &q, &m) == 0 && !q);
	free(e);
	reloc_patches_free(p);
	free(b);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc(*len + 1);
	if (b && fread(b, 1, *len, f) != *len) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

/* Mutations near the tables a parser follows, and truncations: nothing
 * may crash or read outside the buffer (ASan watches), and every answer
 * stays inside the buffer. */
static void fuzz_one(const unsigned char *orig, size_t len, unsigned rounds,
		     uint64_t *s)
{
	unsigned char *b = malloc(len);
	unsigned bad = 0;

	for (unsigned r = 0; r < rounds; r++) {
		size_t blen = rnd(s) % 4 ? len : rnd(s) % (len + 1);
		struct reloc_elf_info info;
		struct reloc_patch *p;
		unsigned char *t;
		size_t n;
		int rc;

		memcpy(b, orig, len);
		for (unsigned k = 1 + rnd(s) % 8; k > 0; k--) {
			size_t at = rnd(s) % 4
					? rnd(s) % (len < 1024 ? len : 1024)
					: rnd(s) % len;
			b[at] = (unsigned char)rnd(s);
		}
		/* an exact-size copy, so ASan sees any read past blen */
		t = malloc(blen ? blen : 1);
		memcpy(t, b, blen);
		rc = reloc_elf_parse(t, blen, &info);
		if (rc == 0 && info.has_rpath)
			bad += info.rpath_off + info.rpath_len >= blen;
		if (rc == 0 && info.has_interp)
			bad += info.interp_off + info.interp_len >= blen;
		rc = reloc_elf_patches(t, blen, &bc_map, &p, &n, NULL, 0);
		for (size_t i = 0; rc == 0 && i < n; i++)
			bad += p[i].off + p[i].len > blen;
		free(t);
		reloc_patches_free(p);
	}
	CHECK(bad == 0);
	free(b);
}

static void test_fuzz(const char *self)
{
	uint64_t s = 0x9e3779b97f4a7c15ull;
	size_t len;
	unsigned char *exe = slurp(self, &len);

	for (int c = 0; c < 4; c++) {
		unsigned char *b = make_elf(c & 1, c & 2, false, DEP "/ld.so",
					    PKG "/lib:" OLD "/x");
		fuzz_one(b, ELF_SIZE, 5000, &s);
		free(b);
	}
	CHECK(exe != NULL);
	if (exe) {
		struct reloc_elf_info info;

		CHECK(reloc_elf_parse(exe, len, &info) == 0);
		fuzz_one(exe, len, 1000, &s);
	}
	free(exe);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The one-time cost: the patch list of a 100 MB file (not ELF: phase 2
 * only) holding 300 C strings under the old prefixes, amid random bytes
 * with many '/'. */
static void bench_patch_list(unsigned char *b, uint64_t size)
{
	uint64_t s = 7;
	struct reloc_patch *p;
	size_t n;
	double t0;
	int rc;

	for (uint64_t i = 0; i < size; i++)
		b[i] = (unsigned char)(rnd(&s) % 8 ? rnd(&s) : '/');
	for (int i = 0; i < 300; i++) {
		const char *str = i % 2 ? PKG "/lib/libslurm.so" : DEP "/share";

		memcpy(b + (size / 300) * i, str, strlen(str) + 1);
	}
	t0 = now();
	rc = reloc_elf_patches(b, size, &bc_map, &p, &n, NULL, 0);
	printf("patch list of a 100 MB file: %.0f ms, %zu patches (rc %d)\n",
	       (now() - t0) * 1e3, n, rc);
	reloc_patches_free(p);
}

/* A 100 MB file read sequentially in 128 KiB requests, each a memcpy out
 * of the (decoded) block, with and without the overlay of 300 patches. */
static int bench(void)
{
	uint64_t s = 42, size = 100u << 20, chunk = 128u << 10;
	unsigned char *pool, *src = malloc(size), *dst = malloc(chunk);
	struct reloc_patch *p = fake_patches(300, size, &s, &pool);
	double best[3] = {1e9, 1e9, 1e9};

	memset(src, 0x5a, size);
	for (int rep = 0; rep < 10; rep++) {
		for (int with = 0; with < 3; with++) {
			double t0 = now();

			for (uint64_t off = 0; off < size; off += chunk) {
				if (with < 2)
					memcpy(dst, src + off, chunk);
				if (with)
					reloc_apply(p, 300, off, dst, chunk);
			}
			if (now() - t0 < best[with])
				best[with] = now() - t0;
		}
	}
	printf("100 MB in 128 KiB reads: memcpy %.2f ms, memcpy+reloc_apply "
	       "%.2f ms, overhead %.2f%%\n",
	       best[0] * 1e3, best[1] * 1e3,
	       100 * (best[1] - best[0]) / best[0]);
	printf("reloc_apply alone: %.3f ms (%.2f%% of the memcpy path)\n",
	       best[2] * 1e3, 100 * best[2] / best[0]);
	bench_patch_list(src, size);
	free(p);
	free(pool);
	free(src);
	free(dst);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "bench") == 0)
		return bench();
	test_parse();
	test_parse_refusals();
	test_rpath_interp();
	test_rpath_grows();
	test_cstrings();
	test_cstring_refusals();
	test_bad_maps();
	test_text();
	test_links();
	test_apply_ranges();
	test_stored();
	test_fuzz(argv[0]);
	return check_done();
}
