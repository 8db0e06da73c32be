/* SPDX-License-Identifier: MIT */
/*
 * fuzz_bcinfo.c - a package's .spack/binary_distribution (libyaml) against
 * arbitrary bytes, then the relocation maps built from what was accepted,
 * with a fake mount that finds some dependencies and not others.
 *
 * Invariants: a refusal says why and leaves the output zeroed; an accepted
 * document has an absolute buildpath and a relative relative_prefix, every
 * path non-empty, shorter than PATH_MAX, without NUL or ".." component
 * (absolute prefixes, relative list entries), 32-character [a-z2-7] hashes
 * each once, counts within their limits. Maps: unique non-empty old
 * prefixes, at most dependencies + 2 (binaries) or + 4 (text) pairs,
 * buildpath -> new root among the binary pairs, too_long consistent, and
 * the engine takes them (reloc_link). Two runs agree.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include "sffs/buildcache.h"
#include "sffs/relocate.h"

static uint64_t mix(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
	return s ? mix(h, s, strlen(s) + 1) : mix(h, "-", 1);
}

static bool path_ok(const char *s, bool absolute)
{
	const char *p = s;
	size_t n = strlen(s);

	if (n == 0 || n >= PATH_MAX || (s[0] == '/') != absolute)
		return false;
	while (*p) {
		size_t c = strcspn(p, "/");

		if (c == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += c;
		p += *p == '/';
	}
	return true;
}

static bool hash_ok(const char *h)
{
	size_t i;

	for (i = 0; i < 32; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') ||
		      (h[i] >= '2' && h[i] <= '7')))
			return false;
	return h[32] == '\0';
}

static uint64_t check_list(uint64_t h, char **l, size_t n)
{
	size_t i;

	FUZZ_CHECK(n <= BC_INFO_MAX_FILES && (n == 0 || l));
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(path_ok(l[i], false));
		h = mix_str(h, l[i]);
	}
	return h;
}

static uint64_t check_info(const struct bc_buildinfo *bi)
{
	uint64_t h = 0;
	size_t i, j;

	FUZZ_CHECK(path_ok(bi->buildpath, true));
	FUZZ_CHECK(path_ok(bi->relative_prefix, false));
	FUZZ_CHECK(!bi->sbang_install_path ||
		   path_ok(bi->sbang_install_path, true));
	FUZZ_CHECK(!bi->spackprefix || path_ok(bi->spackprefix, true));
	FUZZ_CHECK(bi->ndeps <= BC_INFO_MAX_DEPS);
	for (i = 0; i < bi->ndeps; i++) {
		FUZZ_CHECK(hash_ok(bi->deps[i].hash));
		FUZZ_CHECK(path_ok(bi->deps[i].prefix, true));
		for (j = 0; j < i && bi->ndeps < 256; j++)
			FUZZ_CHECK(strcmp(bi->deps[i].hash, bi->deps[j].hash));
		h = mix_str(mix_str(h, bi->deps[i].hash), bi->deps[i].prefix);
	}
	FUZZ_CHECK(bi->has_lists ||
		   !(bi->nbinaries || bi->ntextfiles || bi->nlinks));
	h = check_list(h, bi->binaries, bi->nbinaries);
	h = check_list(h, bi->textfiles, bi->ntextfiles);
	h = check_list(h, bi->links, bi->nlinks);
	h = mix_str(mix_str(h, bi->buildpath), bi->relative_prefix);
	return mix_str(mix_str(h, bi->sbang_install_path), bi->spackprefix);
}

/* The fake mount: hashes starting a-m are there, others are not. */
static int lookup(void *arg, const char *hash, char *buf, size_t len)
{
	(void)arg;
	if (hash[0] > 'm')
		return -ENOENT;
	snprintf(buf, len, "/m/%.7s", hash);
	return 0;
}

static uint64_t check_map(uint64_t h, const struct reloc_map *m, size_t max)
{
	size_t i, j;

	FUZZ_CHECK(m->n <= max);
	for (i = 0; i < m->n; i++) {
		FUZZ_CHECK(m->pairs[i].old_prefix[0] != '\0');
		for (j = 0; j < i && m->n < 64; j++)
			FUZZ_CHECK(strcmp(m->pairs[i].old_prefix,
					  m->pairs[j].old_prefix));
		h = mix_str(mix_str(h, m->pairs[i].old_prefix),
			    m->pairs[i].new_prefix);
	}
	return h;
}

static uint64_t maps(const struct bc_buildinfo *bi)
{
	struct bc_reloc_maps m;
	const struct reloc_pair *tl;
	char err[256], *link = NULL;
	uint64_t h;
	size_t i;
	bool root = false;
	int rc = bc_buildinfo_maps(bi, "/m/pkg", "/m", lookup, NULL, &m, err,
				   sizeof(err));

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc) {
		FUZZ_CHECK(m.bin.n == 0 && m.text.pairs == NULL);
		return (uint64_t)rc;
	}
	h = check_map(0, &m.bin, bi->ndeps + 2);
	h = check_map(h, &m.text, bi->ndeps + 4);
	for (i = 0; i < m.bin.n; i++)
		root |= !strcmp(m.bin.pairs[i].old_prefix, bi->buildpath) &&
			!strcmp(m.bin.pairs[i].new_prefix, "/m");
	FUZZ_CHECK(root);
	tl = bc_reloc_maps_too_long(&m);
	FUZZ_CHECK(!tl || (tl >= m.bin.pairs && tl < m.bin.pairs + m.bin.n &&
			   strlen(tl->new_prefix) > strlen(tl->old_prefix)));
	FUZZ_CHECK(reloc_link(bi->buildpath, &m.bin, &link) == 0);
	h = mix_str(h, link);
	free(link);
	bc_reloc_maps_free(&m);
	return h;
}

static uint64_t run(const uint8_t *data, size_t size)
{
	struct bc_buildinfo bi;
	char err[256];
	uint64_t h;
	int rc =
	    bc_parse_buildinfo((const char *)data, size, &bi, err, sizeof(err));

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc) {
		FUZZ_CHECK(!bi.buildpath && !bi.deps && !bi.binaries &&
			   bi.ndeps == 0 && (*err || rc == -ENOMEM));
		return (uint64_t)rc;
	}
	h = check_info(&bi);
	h = mix(h, &(uint64_t){maps(&bi)}, 8);
	bc_buildinfo_free(&bi);
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FUZZ_CHECK(run(data, size) == run(data, size));
	return 0;
}
