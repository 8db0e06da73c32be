/* SPDX-License-Identifier: MIT */
/*
 * fuzz_tar.c - the tar reader and the member tree against arbitrary bytes.
 *
 * Each input is parsed twice: once in one piece (parser only) and once in
 * fuzzer-chosen pieces (see fuzz_seed) with every entry added to a tree.
 * Both runs must agree on every entry and on the outcome: the parser must
 * not depend on how its input is split. Every entry must keep the promises
 * of tar.h (normalised path without "..", bounded size, sparse map adding
 * up). The finished tree is then walked: every directory entry must be a
 * plain name (no "/", ".", ".." or "") that tree_lookup finds again, and
 * every node index must be in range.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "sffs/tar.h"
#include "sffs/tree.h"

struct run {
	struct tree *tree; /* NULL: parse only */
	uint64_t digest;   /* over every accepted entry, in order */
	size_t entries;
	int tree_rc;
};

static uint64_t mix(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

/* A normalised path: "" or components that are neither empty, "." nor "..",
 * joined by single slashes. */
static bool path_ok(const char *p)
{
	const char *c = p;

	if (!*p)
		return true;
	for (;;) {
		const char *end = strchr(c, '/');
		size_t len = end ? (size_t)(end - c) : strlen(c);

		if (len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!end)
			return true;
		c = end + 1;
	}
}

static void check_entry(const struct tar_entry *e)
{
	uint64_t sum = 0;
	size_t i;

	FUZZ_CHECK(e->path && path_ok(e->path));
	FUZZ_CHECK(e->mode <= 07777);
	FUZZ_CHECK(e->size <= TAR_MAX_SIZE);
	FUZZ_CHECK(e->data_off >= e->header_off + 512);
	FUZZ_CHECK(e->data_off % 512 == 0);
	if (e->type == TAR_SYMLINK || e->type == TAR_HARDLINK)
		FUZZ_CHECK(e->link != NULL);
	else
		FUZZ_CHECK(e->link == NULL);
	if (e->type == TAR_HARDLINK)
		FUZZ_CHECK(path_ok(e->link));
	if (!e->sparse) {
		FUZZ_CHECK(e->nsparse == 0);
		return;
	}
	FUZZ_CHECK(e->type == TAR_REG && e->nsparse <= TAR_MAX_SPARSE);
	for (i = 0; i < e->nsparse; i++) {
		FUZZ_CHECK(e->sparse[i].len <= TAR_MAX_SIZE);
		sum += e->sparse[i].len;
		FUZZ_CHECK(sum <= TAR_MAX_SIZE);
	}
	FUZZ_CHECK(sum == e->data_len);
}

static int on_entry(void *arg, const struct tar_entry *e)
{
	struct run *r = arg;
	uint64_t h = r->digest;

	check_entry(e);
	h = mix(h, e->path, strlen(e->path) + 1);
	if (e->link)
		h = mix(h, e->link, strlen(e->link) + 1);
	h = mix(h, &e->type, sizeof(e->type));
	h = mix(h, &e->mode, sizeof(e->mode));
	h = mix(h, &e->mtime, sizeof(e->mtime));
	h = mix(h, &e->size, sizeof(e->size));
	h = mix(h, &e->data_off, sizeof(e->data_off));
	h = mix(h, &e->data_len, sizeof(e->data_len));
	h = mix(h, &e->header_off, sizeof(e->header_off));
	if (e->nsparse)
		h = mix(h, e->sparse, e->nsparse * sizeof(e->sparse[0]));
	r->digest = h;
	r->entries++;
	if (r->tree) {
		int rc = tree_add(r->tree, e);

		FUZZ_CHECK(rc == 0 || rc == -ENOMEM || rc == -E2BIG);
		if (rc)
			r->tree_rc = rc;
		return rc;
	}
	return 0;
}

static void on_warn(void *arg, uint64_t off, const char *msg)
{
	(void)arg;
	(void)off;
	FUZZ_CHECK(msg && *msg);
}

static bool name_ok(const char *n)
{
	return *n && !strchr(n, '/') && strcmp(n, ".") != 0 &&
	       strcmp(n, "..") != 0;
}

static void walk_tree(const struct tree *t)
{
	uint32_t n = tree_count(t), i, found;
	const struct tree_node *root = tree_node(t, 0);

	FUZZ_CHECK(n >= 1 && root && S_ISDIR(root->mode));
	FUZZ_CHECK(tree_node(t, n) == NULL);
	for (i = 0; i < n; i++) {
		const struct tree_node *nd = tree_node(t, i);
		size_t k, size = tree_dir_size(t, i);
		const char *name, *prev = NULL;
		uint32_t child;

		FUZZ_CHECK(nd != NULL);
		FUZZ_CHECK(S_ISDIR(nd->mode) || S_ISREG(nd->mode) ||
			   S_ISLNK(nd->mode));
		if (!S_ISDIR(nd->mode)) {
			FUZZ_CHECK(size == 0);
			FUZZ_CHECK(tree_lookup(t, i, "x", &found) == -ENOTDIR);
			continue;
		}
		for (k = 0; k < size; k++) {
			FUZZ_CHECK(tree_dir_entry(t, i, k, &name, &child) == 0);
			FUZZ_CHECK(name_ok(name) && child < n && child != 0);
			FUZZ_CHECK(!prev || strcmp(prev, name) < 0);
			FUZZ_CHECK(tree_lookup(t, i, name, &found) == 0 &&
				   found == child);
			prev = name;
		}
		FUZZ_CHECK(tree_dir_entry(t, i, size, &name, &child) ==
			   -ENOENT);
	}
	FUZZ_CHECK(tree_resolve(t, "", &found) == 0 && found == 0);
}

static int parse(const uint8_t *data, size_t size, bool pieces, struct run *r,
		 char *err, size_t errlen)
{
	struct tar_parser *p = tar_parser_new(on_entry, on_warn, r);
	uint64_t seed = fuzz_seed(data, size);
	size_t off = 0;
	int rc = 0;

	if (!p)
		abort();
	while (off < size && rc == 0) {
		size_t n = pieces ? fuzz_piece(&seed, size - off) : size - off;

		rc = tar_parser_feed(p, data + off, n);
		off += n;
	}
	if (rc == 0)
		rc = tar_parser_finish(p);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EIO || rc == -E2BIG ||
		   rc == -ENOMEM);
	if (rc && !r->tree_rc)
		FUZZ_CHECK(*tar_parser_error(p) != '\0');
	FUZZ_CHECK(tar_parser_offset(p) <= size);
	snprintf(err, errlen, "%s", tar_parser_error(p));
	tar_parser_free(p);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole = {0}, split = {0};
	char err1[512], err2[512];
	int rc1, rc2;

	rc1 = parse(data, size, false, &whole, err1, sizeof(err1));
	split.tree = tree_new(on_warn, NULL);
	if (!split.tree)
		abort();
	rc2 = parse(data, size, true, &split, err2, sizeof(err2));
	if (!split.tree_rc) {
		FUZZ_CHECK(rc1 == rc2);
		FUZZ_CHECK(whole.entries == split.entries);
		FUZZ_CHECK(whole.digest == split.digest);
		FUZZ_CHECK(strcmp(err1, err2) == 0);
	}
	if (tree_finish(split.tree) == 0)
		walk_tree(split.tree);
	tree_free(split.tree);
	return 0;
}
