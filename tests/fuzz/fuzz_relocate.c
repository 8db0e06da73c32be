/* SPDX-License-Identifier: MIT */
/*
 * fuzz_relocate.c - the relocation engine (archive/relocate.c) against
 * arbitrary bytes.
 *
 * Each input is three things. First, an ELF file: whatever reloc_elf_parse
 * reports must lie inside the input. reloc_elf_patches must give sorted,
 * disjoint patches inside the file, and overlaying them must produce the
 * same bytes reloc_elf_patches_inplace leaves. The list must survive
 * reloc_patches_encode and reloc_patches_decode unchanged. Second, a stored
 * patch list: whatever decodes must lie inside the file. Third, a text
 * file: reloc_text's output length must match what it returns.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>

#include "sffs/relocate.h"

#define OLD "/opt/sw/__spack_path_placeholder__/__spack_path_placeholder__"

static const struct reloc_pair pairs[] = {
	{OLD "/hwloc-def", "/sf/bc/hwloc-def"},
	{OLD "/slurm-abc", "/sf/bc/slurm-abc"},
	{OLD, "/sf/bc"},
	{"/usr/lib", "/u/l"},
};
static const struct reloc_map map = {pairs, 4};

static void check_list(const struct reloc_patch *p, size_t n, size_t len)
{
	uint64_t end = 0;

	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(p[i].len > 0 && p[i].off >= end);
		FUZZ_CHECK(p[i].off + p[i].len <= len);
		end = p[i].off + p[i].len;
	}
}

static void round_trip(const struct reloc_patch *p, size_t n, size_t len)
{
	struct reloc_patch *q;
	size_t m, elen;
	void *enc;

	if (reloc_patches_encode(p, n, &enc, &elen) != 0)
		return;
	FUZZ_CHECK(reloc_patches_decode(enc, elen, len, &q, &m) == 0);
	FUZZ_CHECK(m == n);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(q[i].off == p[i].off && q[i].len == p[i].len &&
			   memcmp(q[i].data, p[i].data, p[i].len) == 0);
	reloc_patches_free(q);
	free(enc);
}

static void as_elf(const uint8_t *data, size_t size)
{
	struct reloc_elf_info info;
	struct reloc_patch *p, *q;
	unsigned char *a, *b;
	size_t n, m;
	int rc, rc2;

	if (reloc_elf_parse(data, size, &info) == 0) {
		FUZZ_CHECK(!info.has_rpath ||
			   info.rpath_off + info.rpath_len < size);
		FUZZ_CHECK(!info.has_interp ||
			   info.interp_off + info.interp_len < size);
	}
	a = malloc(size ? size : 1);
	b = malloc(size ? size : 1);
	FUZZ_CHECK(a && b);
	memcpy(a, data, size);
	memcpy(b, data, size);
	rc = reloc_elf_patches(data, size, &map, &p, &n, NULL, 0);
	rc2 = reloc_elf_patches_inplace(b, size, &map, &q, &m, NULL, 0);
	FUZZ_CHECK(rc == rc2);
	if (rc == 0) {
		check_list(p, n, size);
		reloc_apply(p, n, 0, a, size);
		FUZZ_CHECK(memcmp(a, b, size) == 0);
		round_trip(p, n, size);
	}
	reloc_patches_free(p);
	reloc_patches_free(q);
	free(a);
	free(b);
}

static void as_stored(const uint8_t *data, size_t size)
{
	struct reloc_patch *p;
	size_t n;

	if (reloc_patches_decode(data, size, 1 << 20, &p, &n) == 0)
		check_list(p, n, 1 << 20);
	reloc_patches_free(p);
}

static void as_text(const uint8_t *data, size_t size)
{
	void *out;
	size_t outlen;

	if (reloc_text(data, size, &map, &out, &outlen) == 0 && !out)
		FUZZ_CHECK(outlen == size);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_elf(data, size);
	as_stored(data, size);
	as_text(data, size);
	return 0;
}
