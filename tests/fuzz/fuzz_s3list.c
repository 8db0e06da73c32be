/* SPDX-License-Identifier: MIT */
/*
 * fuzz_s3list.c - the S3 ListObjectsV2 parser against arbitrary bytes.
 *
 * Each input is parsed twice; both runs must agree. A refusal must say why
 * and leave the listing empty. An accepted listing must keep the promises
 * of catalog_i.h: bounded entry count, non-empty keys and prefixes of at
 * most S3_KEY_MAX bytes without a NUL, an ETag always there, a token
 * whenever IsTruncated is true. Each key's last segment is then matched
 * against the factory's file name pattern: a match must bind usable names
 * and expand back to the same text; and each key goes through
 * s3_list_url, whose query must hold only unreserved bytes and %XX.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>

#include "../../catalog/catalog_i.h"

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
	return mix(h, s, strlen(s) + 1);
}

static bool is_unreserved(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static bool is_hex_upper(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* The value after "&prefix=" up to the next '&' is encoded. */
static void check_url(const char *key, const char *token)
{
	char *u = s3_list_url("http://127.0.0.1:9000/b", key, "/", token, 1000);
	const char *v;

	FUZZ_CHECK(u != NULL);
	v = strstr(u, "&prefix=");
	FUZZ_CHECK(v != NULL);
	for (v += strlen("&prefix="); *v && *v != '&'; v++) {
		if (*v == '%') {
			FUZZ_CHECK(is_hex_upper(v[1]) && is_hex_upper(v[2]));
			v += 2;
		} else {
			FUZZ_CHECK(is_unreserved(*v));
		}
	}
	FUZZ_CHECK(strncmp(v, "&delimiter=%2F&", 15) == 0);
	free(u);
}

static void check_match(const char *key)
{
	static const char pattern[] =
	    "slurm-{version}-{toolchain}-{arch}-software.tar.gz";
	const char *name = strrchr(key, '/');
	struct catalog_vars v = {"", "", ""};
	char *back;

	name = name ? name + 1 : key;
	if (catalog_segment_match(pattern, name, &v) != 0) {
		FUZZ_CHECK(!v.version[0] && !v.toolchain[0] && !v.arch[0]);
		return;
	}
	FUZZ_CHECK(catalog_version_ok(v.version));
	FUZZ_CHECK(catalog_name_ok(v.toolchain) && catalog_name_ok(v.arch));
	back = catalog_template_expand(pattern, &v);
	FUZZ_CHECK(back && strcmp(back, name) == 0);
	free(back);
}

static uint64_t check_listing(const struct s3_listing *l)
{
	uint64_t h = 0;
	size_t i;

	FUZZ_CHECK(l->nobjects + l->nprefixes <= S3_LIST_MAX_ENTRIES);
	FUZZ_CHECK(!l->truncated || l->next_token);
	if (l->next_token)
		FUZZ_CHECK(*l->next_token && strlen(l->next_token) <= 1024);
	for (i = 0; i < l->nobjects; i++) {
		const struct s3_object *o = &l->objects[i];

		FUZZ_CHECK(o->key && *o->key && strlen(o->key) <= S3_KEY_MAX);
		FUZZ_CHECK(o->etag != NULL);
		h = mix_str(h, o->key);
		h = mix_str(h, o->etag);
		h = mix(h, &o->size, sizeof(o->size));
		check_match(o->key);
		check_url(o->key, l->next_token);
	}
	for (i = 0; i < l->nprefixes; i++) {
		FUZZ_CHECK(l->prefixes[i] && *l->prefixes[i] &&
			   strlen(l->prefixes[i]) <= S3_KEY_MAX);
		h = mix_str(h, l->prefixes[i]);
	}
	h = mix(h, &l->truncated, sizeof(l->truncated));
	if (l->next_token)
		h = mix_str(h, l->next_token);
	return h;
}

static int parse(const uint8_t *data, size_t size, uint64_t *digest, char *err,
		 size_t errlen)
{
	struct s3_listing l;
	int rc = s3_list_parse((const char *)data, size, &l, err, errlen);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc) {
		FUZZ_CHECK(*err != '\0' || rc == -ENOMEM);
		FUZZ_CHECK(!l.objects && !l.prefixes && !l.next_token &&
			   !l.nobjects && !l.nprefixes && !l.truncated);
		*digest = 0;
		return rc;
	}
	*digest = check_listing(&l);
	s3_listing_free(&l);
	FUZZ_CHECK(!l.objects && !l.nobjects);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err1[512], err2[512];
	uint64_t d1, d2;
	int rc1, rc2;

	rc1 = parse(data, size, &d1, err1, sizeof(err1));
	rc2 = parse(data, size, &d2, err2, sizeof(err2));
	FUZZ_CHECK(rc1 == rc2 && d1 == d2);
	FUZZ_CHECK(rc1 == -ENOMEM || strcmp(err1, err2) == 0);
	return 0;
}
