/* SPDX-License-Identifier: MIT */
/*
 * fuzz_bcparse.c - the buildcache parsers (json-c) against arbitrary
 * bytes: each input as a v3 manifest, a database and a v2 spec document
 * (expecting the first install the input itself gives as a database, else
 * slurm 22.05 as make-buildcache.py makes it for v2).
 *
 * Invariants: a refusal says why and leaves the output empty; an accepted
 * manifest has at most BC_MAX_BLOBS entries with 64 lower-case hex
 * checksums; each accepted install has a 32-character [a-z2-7] hash and
 * non-empty names without '/' that are not "." or "..", and every path
 * built from it fits a PATH_MAX buffer and starts where Spack's does. Two
 * runs agree.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>

#include "sffs/buildcache.h"

static bool bounded(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static bool component_ok(const char *s, size_t cap)
{
	return bounded(s, cap) && *s && !strchr(s, '/') && strcmp(s, ".") &&
	       strcmp(s, "..");
}

static bool hex_ok(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

static uint64_t mix(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t manifest(const uint8_t *data, size_t size)
{
	struct bc_manifest m;
	char err[256], path[4096];
	size_t i;
	int rc = bc_parse_manifest((const char *)data, size, &m, err,
				   sizeof(err));

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc) {
		FUZZ_CHECK(m.n == 0 && (*err || rc == -ENOMEM));
		return (uint64_t)rc;
	}
	FUZZ_CHECK(m.n <= BC_MAX_BLOBS);
	for (i = 0; i < m.n; i++) {
		const struct bc_blob *b = &m.data[i];

		FUZZ_CHECK(bounded(b->media_type, sizeof(b->media_type)));
		FUZZ_CHECK(bounded(b->compression, sizeof(b->compression)));
		FUZZ_CHECK(hex_ok(b->checksum));
		FUZZ_CHECK(b->content_length < INT64_MAX);
		FUZZ_CHECK(bc_manifest_find(&m, b->media_type) <= b);
		FUZZ_CHECK(bc_v3_blob_path(b->checksum, path, sizeof(path)) ==
			   0);
		FUZZ_CHECK(!strncmp(path, "blobs/sha256/", 13) &&
			   !strncmp(path + 13, b->checksum, 2));
	}
	return mix(0, &m, sizeof(m));
}

static void check_spec(const struct bc_spec *s)
{
	char path[4096];
	size_t i;

	FUZZ_CHECK(strlen(s->hash) == 32);
	for (i = 0; i < 32; i++)
		FUZZ_CHECK((s->hash[i] >= 'a' && s->hash[i] <= 'z') ||
			   (s->hash[i] >= '2' && s->hash[i] <= '7'));
	FUZZ_CHECK(component_ok(s->name, sizeof(s->name)));
	FUZZ_CHECK(component_ok(s->version, sizeof(s->version)));
	FUZZ_CHECK(component_ok(s->platform, sizeof(s->platform)));
	FUZZ_CHECK(component_ok(s->os, sizeof(s->os)));
	FUZZ_CHECK(component_ok(s->target, sizeof(s->target)));
	FUZZ_CHECK(component_ok(s->compiler, sizeof(s->compiler)));
	FUZZ_CHECK(component_ok(s->compiler_version,
				sizeof(s->compiler_version)));
	FUZZ_CHECK(bc_package_name(s, path, sizeof(path)) == 0);
	FUZZ_CHECK(!strchr(path, '/'));
	FUZZ_CHECK(bc_v3_spec_manifest_path(s, path, sizeof(path)) == 0);
	FUZZ_CHECK(!strncmp(path, "v3/manifests/spec/", 18));
	FUZZ_CHECK(bc_v2_spec_path(s, true, path, sizeof(path)) == 0);
	FUZZ_CHECK(!strncmp(path, "build_cache/", 12) &&
		   !strchr(path + 12, '/'));
	FUZZ_CHECK(bc_v2_tarball_path(s, path, sizeof(path)) == 0);
	FUZZ_CHECK(bc_v2_tarball_path(s, path, 8) == -ENAMETOOLONG &&
		   path[0] == '\0');
}

static uint64_t database(const uint8_t *data, size_t size,
			 struct bc_spec *first)
{
	struct bc_spec *specs = NULL;
	char err[256];
	size_t n = 0, i;
	uint64_t h;
	int rc = bc_parse_db((const char *)data, size, &specs, &n, err,
			     sizeof(err));

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc) {
		FUZZ_CHECK(!specs && n == 0 && (*err || rc == -ENOMEM));
		return (uint64_t)rc;
	}
	FUZZ_CHECK(specs != NULL && n <= BC_MAX_SPECS);
	h = n;
	for (i = 0; i < n; i++) {
		check_spec(&specs[i]);
		h = mix(h, &specs[i], sizeof(specs[i]));
	}
	if (n && first)
		*first = specs[0];
	free(specs);
	return h;
}

static uint64_t v2_spec(const uint8_t *data, size_t size,
			const struct bc_spec *expect)
{
	struct bc_blob b;
	char err[256];
	int rc = bc_parse_v2_spec((const char *)data, size, expect, &b, err,
				  sizeof(err));

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc) {
		FUZZ_CHECK(b.checksum[0] == '\0' && (*err || rc == -ENOMEM));
		return (uint64_t)rc;
	}
	FUZZ_CHECK(hex_ok(b.checksum) && b.content_length == 0);
	FUZZ_CHECK(!strcmp(b.media_type, BC_MEDIA_TARBALL));
	return mix(0, b.checksum, sizeof(b.checksum));
}

static uint64_t run(const uint8_t *data, size_t size)
{
	struct bc_spec expect;
	uint64_t h;

	memset(&expect, 0, sizeof(expect));
	snprintf(expect.name, sizeof(expect.name), "slurm");
	snprintf(expect.version, sizeof(expect.version), "22.05");
	snprintf(expect.hash, sizeof(expect.hash),
		 "24eanq3dxohi4ls5jozyar2vcixjdgqy");
	h = manifest(data, size);
	h = mix(h, &(uint64_t){database(data, size, &expect)}, 8);
	return mix(h, &(uint64_t){v2_spec(data, size, &expect)}, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FUZZ_CHECK(run(data, size) == run(data, size));
	return 0;
}
