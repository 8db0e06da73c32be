/* SPDX-License-Identifier: MIT */
/*
 * bcpaths.c - where a Spack buildcache keeps each file of a package (v2
 * and v3 layouts, as Spack names them), and the world-writable
 * directories of a package's or artifact's tree, which a read-only mount
 * cannot give their writers. Pure: no I/O.
 */
#include "sffs/buildcache.h"
#include "sffs/tree.h"

#include "catalog_i.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- names and paths ---- */

static int put(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf into buf; -ENAMETOOLONG when it does not fit. */
static int put(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!buf || len == 0)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int bc_package_name(const struct bc_spec *s, char *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	return put(buf, len, "%s-%s-%.7s", s->name, s->version, s->hash);
}

int bc_v3_spec_manifest_path(const struct bc_spec *s, char *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	return put(buf, len, "v3/manifests/spec/%s/%s-%s-%s.spec.manifest.json",
		   s->name, s->name, s->version, s->hash);
}

int bc_v3_blob_path(const char *sha256hex, char *buf, size_t len)
{
	char hex[BC_SHA256_LEN + 1];

	if (!sha256hex ||
	    bc_get_sha256(sha256hex, strlen(sha256hex), hex, "sha256", NULL, 0))
		return -EINVAL;
	return put(buf, len, "blobs/sha256/%.2s/%s", hex, hex);
}

/* An OpenPGP fingerprint as gpg prints it: hex, at most 64 digits. */
static bool fpr_ok(const char *fpr)
{
	size_t i, n;

	if (!fpr)
		return false;
	n = strlen(fpr);
	if (n == 0 || n > BC_FPR_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((fpr[i] >= '0' && fpr[i] <= '9') ||
		      (fpr[i] >= 'A' && fpr[i] <= 'F') ||
		      (fpr[i] >= 'a' && fpr[i] <= 'f')))
			return false;
	return true;
}

int bc_v3_key_manifest_path(const char *fpr, char *buf, size_t len)
{
	if (!fpr_ok(fpr))
		return -EINVAL;
	return put(buf, len, "v3/manifests/key/%s.key.manifest.json", fpr);
}

int bc_v2_spec_path(const struct bc_spec *s, bool sig, char *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	return put(buf, len, "build_cache/%s-%s-%s-%s-%s-%s-%s-%s%s",
		   s->platform, s->os, s->target, s->compiler,
		   s->compiler_version, s->name, s->version, s->hash,
		   sig ? ".spec.json.sig" : ".spec.json");
}

int bc_v2_tarball_path(const struct bc_spec *s, char *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	return put(buf, len,
		   "build_cache/%s-%s-%s/%s-%s/%s-%s/"
		   "%s-%s-%s-%s-%s-%s-%s-%s.spack",
		   s->platform, s->os, s->target, s->compiler,
		   s->compiler_version, s->name, s->version, s->platform, s->os,
		   s->target, s->compiler, s->compiler_version, s->name,
		   s->version, s->hash);
}

int bc_v2_key_path(const char *fpr, char *buf, size_t len)
{
	if (!fpr_ok(fpr))
		return -EINVAL;
	return put(buf, len, "build_cache/_pgp/%s.pub", fpr);
}

/* ---- world-writable directories ---- */

/* Whether node n lies at or under root (walking up the parents). */
static bool under(const struct tree *t, uint32_t n, uint32_t root)
{
	uint32_t hops = 0;

	while (n != root && n != 0 && hops++ < TREE_MAX_NODES)
		n = tree_node(t, n)->u.parent;
	return n == root;
}

/* The name of child in directory dir, or NULL. */
static const char *name_in(const struct tree *t, uint32_t dir, uint32_t child)
{
	const char *name;
	uint32_t node;

	for (size_t i = 0; !tree_dir_entry(t, dir, i, &name, &node); i++)
		if (node == child)
			return name;
	return NULL;
}

/* Appends n's path relative to root (known to be under it) to buf at
 * *off, then '\n'; cut at len. */
static void append_path(const struct tree *t, uint32_t n, uint32_t root,
			char *buf, size_t len, size_t *off)
{
	const char *names[BC_WRITABLE_DEPTH] = {0};
	size_t k = 0, w;
	uint32_t parent;
	bool cut = false;

	while (n != root) {
		parent = tree_node(t, n)->u.parent;
		if (k == BC_WRITABLE_DEPTH) {
			cut = true;
			break;
		}
		names[k] = name_in(t, parent, n);
		if (names[k])
			k++;
		n = parent;
	}
	w = (size_t)snprintf(buf + *off, len - *off, "%s%s", *off ? "\n" : "",
			     cut ? ".../"
			     : k ? ""
				 : ".");
	*off = *off + w < len ? *off + w : len - 1;
	while (k-- > 0) {
		w = (size_t)snprintf(buf + *off, len - *off, "%s%s", names[k],
				     k ? "/" : "");
		*off = *off + w < len ? *off + w : len - 1;
	}
}

size_t bc_writable_dirs(const struct tree *t, uint32_t root, char *buf,
			size_t len)
{
	uint32_t n = tree_count(t);
	size_t found = 0, off = 0;
	const struct tree_node *node;

	if (len)
		buf[0] = '\0';
	for (uint32_t i = 0; i < n; i++) {
		node = tree_node(t, i);
		if (!S_ISDIR(node->mode) || !(node->mode & S_IWOTH) ||
		    !under(t, i, root))
			continue;
		if (found < BC_WRITABLE_SHOWN && len > 1)
			append_path(t, i, root, buf, len, &off);
		found++;
	}
	return found;
}
