/* SPDX-License-Identifier: MIT */
/*
 * bcspec.c - a package's own spec document (a v2 .spec.json.sig's signed
 * text, a v3 spec blob): it must hold the node the index listed (name,
 * version, hash) and, for v2, the tarball's checksum. Pure: no I/O.
 */
#include "sffs/buildcache.h"

#include "bcjson_i.h"
#include "catalog_i.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- v2 spec documents ---- */

static bool str_is(struct json_object *obj, const char *key, const char *want)
{
	struct json_object *v;

	return json_object_object_get_ex(obj, key, &v) &&
	       json_object_is_type(v, json_type_string) &&
	       !strcmp(json_object_get_string(v), want);
}

/* The string obj[key] for a message ("(none)" if it is not one); the
 * log escapes what it holds. */
static const char *str_shown(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "(none)";
	return json_object_get_string(v);
}

/* No node has expect's hash: the message names what was listed and the
 * spec's root (its first node), which is what it is the spec of. */
static int no_node(struct json_object *nodes, const struct bc_spec *expect,
		   char *err, size_t errlen)
{
	struct json_object *root = json_object_array_get_idx(nodes, 0);

	if (!root || !json_object_is_type(root, json_type_object))
		return catalog_fail(err, errlen,
				    "spec has no node with hash %.32s",
				    expect->hash);
	return catalog_fail(err, errlen,
			    "spec has no node with hash %.32s (\"%.64s\" "
			    "version \"%.64s\"): it is the spec of \"%.64s\" "
			    "version \"%.64s\" hash %.32s",
			    expect->hash, expect->name, expect->version,
			    str_shown(root, "name"), str_shown(root, "version"),
			    str_shown(root, "hash"));
}

/* The node of spec.nodes whose hash is expect->hash, checked against
 * expect's name and version. */
static int check_node(struct json_object *root, const struct bc_spec *expect,
		      char *err, size_t errlen)
{
	struct json_object *spec, *nodes, *node;
	size_t i, cnt;

	spec = bc_need(root, "spec", json_type_object, err, errlen);
	if (!spec)
		return -EINVAL;
	nodes = bc_need(spec, "nodes", json_type_array, err, errlen);
	if (!nodes)
		return -EINVAL;
	cnt = json_object_array_length(nodes);
	for (i = 0; i < cnt; i++) {
		node = json_object_array_get_idx(nodes, i);
		if (json_object_is_type(node, json_type_object) &&
		    str_is(node, "hash", expect->hash))
			break;
	}
	if (i == cnt)
		return no_node(nodes, expect, err, errlen);
	if (!str_is(node, "name", expect->name))
		return catalog_fail(err, errlen,
				    "node %.32s, named \"%.64s\", is not named "
				    "\"%.64s\"",
				    expect->hash, str_shown(node, "name"),
				    expect->name);
	if (!str_is(node, "version", expect->version))
		return catalog_fail(err, errlen,
				    "node %.32s, version \"%.64s\", is not "
				    "version \"%.64s\"",
				    expect->hash, str_shown(node, "version"),
				    expect->version);
	return 0;
}

/* buildcache_layout_version 1 (a gzip tar of the prefix) or 2 (the same
 * with its parent directories); 0 or absent was a tar holding a tarball,
 * which cannot be mounted as it is. */
static int check_layout(struct json_object *root, char *err, size_t errlen)
{
	struct json_object *v;
	int rc = 0;
	int64_t lv;

	v = bc_member(root, "buildcache_layout_version", json_type_int, &rc,
		      err, errlen);
	if (rc)
		return rc;
	lv = v ? json_object_get_int64(v) : 0;
	if (lv != 1 && lv != 2)
		return catalog_fail(
		    err, errlen, "buildcache_layout_version %lld is not 1 or 2",
		    (long long)lv);
	return 0;
}

static int get_checksum(struct json_object *root, struct bc_blob *tarball,
			char *err, size_t errlen)
{
	struct json_object *bcc, *h;

	bcc = bc_need(root, "binary_cache_checksum", json_type_object, err,
		      errlen);
	if (!bcc)
		return -EINVAL;
	if (!str_is(bcc, "hash_algorithm", "sha256"))
		return catalog_fail(
		    err, errlen,
		    "binary_cache_checksum.hash_algorithm is not "
		    "\"sha256\"");
	h = bc_need(bcc, "hash", json_type_string, err, errlen);
	if (!h)
		return -EINVAL;
	return bc_get_sha256(json_object_get_string(h),
			     (size_t)json_object_get_string_len(h),
			     tarball->checksum, "hash", err, errlen);
}

int bc_parse_v2_spec(const char *doc, size_t len, const struct bc_spec *expect,
		     struct bc_blob *tarball, char *err, size_t errlen)
{
	struct json_object *root;
	int rc;

	bc_err_clear(err, errlen);
	if (!expect || !tarball)
		return -EINVAL;
	memset(tarball, 0, sizeof(*tarball));
	rc = bc_parse_doc(doc, len, "spec document", &root, err, errlen);
	if (rc)
		return rc;
	rc = check_layout(root, err, errlen);
	if (!rc)
		rc = check_node(root, expect, err, errlen);
	if (!rc)
		rc = get_checksum(root, tarball, err, errlen);
	json_object_put(root);
	if (rc) {
		memset(tarball, 0, sizeof(*tarball));
		return rc;
	}
	snprintf(tarball->media_type, sizeof(tarball->media_type), "%s",
		 BC_MEDIA_TARBALL);
	snprintf(tarball->compression, sizeof(tarball->compression), "gzip");
	return 0;
}

int bc_parse_v3_spec(const char *doc, size_t len, const struct bc_spec *expect,
		     char *err, size_t errlen)
{
	struct json_object *root;
	int rc;

	bc_err_clear(err, errlen);
	if (!expect)
		return -EINVAL;
	rc = bc_parse_doc(doc, len, "spec document", &root, err, errlen);
	if (rc)
		return rc;
	rc = check_node(root, expect, err, errlen);
	json_object_put(root);
	return rc;
}
