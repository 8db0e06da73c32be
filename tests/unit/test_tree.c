/* SPDX-License-Identifier: MIT */
/*
 * test_tree.c - the member tree: implicit parents, GNU tar's duplicate and
 * hardlink semantics, lookup/readdir order, resolve, and memory per member
 * at 100k members.
 */
#include "check.h"
#include "sffs/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct warns {
	unsigned n;
	char last[512];
};

static void on_warn(void *arg, uint64_t off, const char *msg)
{
	struct warns *w = arg;

	(void)off;
	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", msg);
}

static int add(struct tree *t, const char *path, enum tar_type type,
	       uint32_t mode, int64_t mtime, uint64_t size, const char *link)
{
	struct tar_entry e = {.path = path,
			      .type = type,
			      .mode = mode,
			      .mtime = mtime,
			      .size = size,
			      .data_off = size * 512,
			      .data_len = size,
			      .link = link};

	return tree_add(t, &e);
}

static int add_file(struct tree *t, const char *path, uint64_t size)
{
	return add(t, path, TAR_REG, 0644, 100, size, NULL);
}

static int add_dir(struct tree *t, const char *path, uint32_t mode,
		   int64_t mtime)
{
	return add(t, path, TAR_DIR, mode, mtime, 0, NULL);
}

static int add_link(struct tree *t, const char *path, const char *target)
{
	return add(t, path, TAR_HARDLINK, 0644, 100, 0, target);
}

/* The node at path, or UINT32_MAX. */
static uint32_t at(const struct tree *t, const char *path)
{
	uint32_t n;

	return tree_resolve(t, path, &n) ? UINT32_MAX : n;
}

static const struct tree_node *node_at(const struct tree *t, const char *path)
{
	return tree_node(t, at(t, path));
}

static void test_implicit_parents(void)
{
	struct warns w = {0};
	struct tree *t = tree_new(on_warn, &w);
	const struct tree_node *n;
	uint32_t ab;

	CHECK_EQ_U64(add(t, "a/b/c/file", TAR_REG, 04755, 500, 3, NULL), 0);
	ab = at(t, "a/b");
	CHECK_EQ_U64(add_dir(t, "a/b", 0700, 900), 0);
	CHECK_EQ_U64(add_dir(t, "", 0750, 7), 0);
	CHECK_EQ_U64(tree_finish(t), 0);
	n = node_at(t, "a");
	CHECK(n && n->mode == (S_IFDIR | 0755) && n->mtime == 500);
	CHECK(n && n->u.parent == 0);
	n = node_at(t, "a/b");
	CHECK_EQ_U64(at(t, "a/b"), ab);
	CHECK(n && n->mode == (S_IFDIR | 0700) && n->mtime == 900);
	CHECK(n && n->u.parent == at(t, "a") && n->nlink == 3);
	n = node_at(t, "a/b/c/file");
	CHECK(n && n->mode == (S_IFREG | 04755) && n->size == 3 &&
	      n->data_off == 1536 && n->mtime == 500 && n->nlink == 1 &&
	      !n->u.sparse);
	n = tree_node(t, 0);
	CHECK(n && n->mode == (S_IFDIR | 0750) && n->mtime == 7);
	CHECK_EQ_U64(tree_count(t), 5);
	CHECK_EQ_U64(w.n, 0);
	tree_free(t);
}

static void test_duplicates(void)
{
	struct warns w = {0};
	struct tree *t = tree_new(on_warn, &w);
	uint32_t d, x1;

	add_file(t, "x", 1);
	x1 = at(t, "x");
	add_file(t, "x", 2); /* a later member replaces */
	CHECK(at(t, "x") != x1);
	add_dir(t, "d", 0755, 1);
	add_file(t, "d/in", 1);
	d = at(t, "d");
	add_dir(t, "d", 0711, 2); /* dir over dir: update */
	CHECK_EQ_U64(at(t, "d"), d);
	add_file(t, "d", 5); /* file over a non-empty dir: refused */
	CHECK_EQ_U64(w.n, 1);
	CHECK(strstr(w.last, "non-empty") != NULL);
	add_dir(t, "e", 0755, 1);
	add_file(t, "e", 6); /* file over an empty dir: replaces */
	add_file(t, "f", 7);
	add_dir(t, "f", 0700, 3); /* dir over file: replaces */
	add_file(t, "f/g", 1);
	CHECK_EQ_U64(w.n, 1);
	CHECK_EQ_U64(tree_finish(t), 0);
	CHECK_EQ_U64(node_at(t, "x")->size, 2);
	CHECK_EQ_U64(tree_node(t, x1)->nlink, 0);
	CHECK_EQ_U64(tree_dir_size(t, 0), 4);
	CHECK(node_at(t, "d")->mode == (S_IFDIR | 0711));
	CHECK(node_at(t, "d")->mtime == 2);
	CHECK(at(t, "d/in") != UINT32_MAX);
	CHECK(node_at(t, "e")->mode == (S_IFREG | 0644));
	CHECK_EQ_U64(node_at(t, "e")->size, 6);
	CHECK(node_at(t, "f")->mode == (S_IFDIR | 0700));
	CHECK(at(t, "f/g") != UINT32_MAX);
	tree_free(t);
}

static void test_hardlinks(void)
{
	struct warns w = {0};
	struct tree *t = tree_new(on_warn, &w);
	uint32_t f;

	add_file(t, "dir/f", 10);
	add_link(t, "g", "dir/f");
	add_link(t, "dir/h", "dir/f");
	f = at(t, "dir/f");
	CHECK_EQ_U64(at(t, "g"), f);
	CHECK_EQ_U64(at(t, "dir/h"), f);
	CHECK_EQ_U64(tree_node(t, f)->nlink, 3);
	add_link(t, "g", "dir/f"); /* again: nothing changes */
	CHECK_EQ_U64(tree_node(t, f)->nlink, 3);
	add_link(t, "missing", "no/such");
	CHECK_EQ_U64(w.n, 1);
	CHECK(strstr(w.last, "missing") != NULL);
	add_link(t, "todir", "dir");
	CHECK_EQ_U64(w.n, 2);
	add_file(t, "dir/f", 20); /* replaced: links keep the old node */
	CHECK_EQ_U64(tree_finish(t), 0);
	CHECK(at(t, "dir/f") != f);
	CHECK_EQ_U64(node_at(t, "dir/f")->size, 20);
	CHECK_EQ_U64(at(t, "g"), f);
	CHECK_EQ_U64(tree_node(t, f)->nlink, 2);
	CHECK_EQ_U64(tree_node(t, f)->size, 10);
	CHECK_EQ_U64(at(t, "missing"), UINT32_MAX);
	CHECK_EQ_U64(at(t, "todir"), UINT32_MAX);
	tree_free(t);
}

static void test_symlink_sparse_skips(void)
{
	static const struct tar_sparse seg[] = {{0, 4}, {100, 4}};
	struct tar_sparse copy[2];
	struct tar_entry e = {.path = "sp",
			      .type = TAR_REG,
			      .mode = 0600,
			      .size = 1000,
			      .data_off = 512,
			      .data_len = 8,
			      .sparse = copy,
			      .nsparse = 2};
	struct warns w = {0};
	struct tree *t = tree_new(on_warn, &w);
	const struct tree_node *n;
	char deep[3 * (TREE_MAX_DEPTH + 1)];
	size_t i;

	memcpy(copy, seg, sizeof(seg));
	CHECK_EQ_U64(tree_add(t, &e), 0);
	memset(copy, 0, sizeof(copy)); /* the tree must own its copy */
	CHECK_EQ_U64(add(t, "s", TAR_SYMLINK, 0777, 1, 0, "../x/y"), 0);
	add_file(t, "p", 1);
	add_file(t, "p/q", 1); /* through a non-directory */
	CHECK_EQ_U64(w.n, 1);
	add_file(t, "a//b", 1);
	add_file(t, "./c", 1);
	add_file(t, "d/..", 1);
	CHECK_EQ_U64(w.n, 4);
	CHECK_EQ_U64(add(t, "", TAR_REG, 0644, 1, 0, NULL), 0);
	CHECK_EQ_U64(w.n, 5);
	for (i = 0; i <= TREE_MAX_DEPTH; i++)
		memcpy(deep + 2 * i, "d/", 2);
	deep[2 * TREE_MAX_DEPTH + 1] = '\0';
	CHECK_EQ_U64(add_file(t, deep, 1), -E2BIG);
	CHECK_EQ_U64(tree_finish(t), 0);
	CHECK_EQ_U64(tree_add(t, &e), -EINVAL);
	n = node_at(t, "sp");
	CHECK(n && n->u.sparse && n->u.sparse->n == 2 &&
	      !memcmp(n->u.sparse->seg, seg, sizeof(seg)) && n->size == 1000);
	n = node_at(t, "s");
	CHECK(n && n->mode == (S_IFLNK | 0777) && n->size == 6 &&
	      !strcmp(n->u.symlink, "../x/y"));
	CHECK_EQ_U64(tree_dir_size(t, 0), 3);
	tree_free(t);
}

static void test_lookup_order(void)
{
	static const char *in[] = {"b", "a", "c", "B", "aa", "a-", "~"};
	static const char *sorted[] = {"B", "a", "a-", "aa", "b", "c", "~"};
	struct tree *t = tree_new(NULL, NULL);
	const char *name;
	uint32_t n, node, file;
	size_t i;

	for (i = 0; i < 7; i++) {
		char p[16];

		snprintf(p, sizeof(p), "dir/%s", in[i]);
		add_file(t, p, i);
	}
	add_dir(t, "dir/a/sub", 0755, 1);
	CHECK_EQ_U64(tree_finish(t), 0);
	n = at(t, "dir");
	CHECK_EQ_U64(tree_dir_size(t, n), 7);
	for (i = 0; i < 7; i++) {
		CHECK(tree_dir_entry(t, n, i, &name, &node) == 0 &&
		      !strcmp(name, sorted[i]));
		CHECK(tree_lookup(t, n, sorted[i], &file) == 0 && file == node);
	}
	CHECK_EQ_U64(tree_dir_entry(t, n, 7, &name, &node), -ENOENT);
	CHECK_EQ_U64(tree_lookup(t, n, "zz", &node), -ENOENT);
	CHECK_EQ_U64(tree_lookup(t, n, "a-x", &node), -ENOENT);
	CHECK_EQ_U64(tree_lookup(t, n, "", &node), -ENOENT);
	file = at(t, "dir/b");
	CHECK_EQ_U64(tree_lookup(t, file, "x", &node), -ENOTDIR);
	CHECK_EQ_U64(tree_lookup(t, 1u << 30, "x", &node), -ENOENT);
	CHECK_EQ_U64(tree_dir_size(t, file), 0);
	CHECK_EQ_U64(tree_dir_entry(t, file, 0, &name, &node), -ENOENT);
	CHECK(tree_node(t, tree_count(t)) == NULL);
	CHECK_EQ_U64(tree_resolve(t, "", &node), 0);
	CHECK_EQ_U64(node, 0);
	CHECK_EQ_U64(tree_resolve(t, "dir/a/sub", &node), -ENOTDIR);
	CHECK_EQ_U64(tree_resolve(t, "dir/b/x", &node), -ENOTDIR);
	CHECK_EQ_U64(tree_resolve(t, "dir/nope", &node), -ENOENT);
	CHECK_EQ_U64(tree_resolve(t, "dir/aa", &node), 0);
	CHECK(tree_node(t, node)->size == 4);
	CHECK_EQ_U64(tree_node(t, 0)->nlink, 3);
	tree_free(t);
	tree_free(NULL);
}

/* 100k members shaped like a software tree: bytes per member. */
static void test_memory(void)
{
	struct tree *t = tree_new(NULL, NULL);
	size_t i, build, done;
	char p[256];
	int rc = 0;

	for (i = 0; i < 100000 && rc == 0; i++) {
		snprintf(
		    p, sizeof(p),
		    "view/lib/python3.12/site-packages/pkg%03zu/mod_%05zu.py",
		    i / 1000, i);
		rc = add_file(t, p, i);
	}
	CHECK_EQ_U64(rc, 0);
	build = tree_mem_usage(t);
	CHECK_EQ_U64(tree_finish(t), 0);
	done = tree_mem_usage(t);
	printf("100k members: %zu bytes/member while building, %zu after "
	       "tree_finish (%u nodes)\n",
	       build / 100000, done / 100000, tree_count(t));
	CHECK(done / 100000 < 200);
	CHECK(done < build);
	CHECK_EQ_U64(tree_node(t, at(t, "view/lib/python3.12/site-packages/"
					"pkg042/mod_42123.py"))
			 ->size,
		     42123);
	tree_free(t);
}

static void write_file(const char *dir, const char *name, const char *s)
{
	char p[8400];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f || fputs(s, f) < 0 || fclose(f))
		abort();
}

static int tree_cb(void *arg, const struct tar_entry *e)
{
	return tree_add(arg, e);
}

/* GNU tar archive with an appended newer copy and a hardlink, fed through
 * the parser into a tree: the later copy wins, hardlinks share a node. */
static void test_from_gnu_tar(void)
{
	const char *base = getenv("SFFS_TEST_TMP");
	char tmp[4096], src[4200], cmd[16384], ar[4200], buf[65536];
	struct warns w = {0};
	struct tree *t = tree_new(on_warn, &w);
	struct tar_parser *p = tar_parser_new(tree_cb, NULL, t);
	const struct tree_node *n;
	uint64_t off = 0;
	size_t k;
	FILE *f;
	int rc = 0;

	if (!base || !*base)
		base = "/tmp";
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", base);
	CHECK(system(cmd) == 0);
	snprintf(tmp, sizeof(tmp), "%s/test_tree.XXXXXX", base);
	CHECK(mkdtemp(tmp) != NULL);
	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(ar, sizeof(ar), "%s/a.tar", tmp);
	CHECK(mkdir(src, 0755) == 0);
	write_file(src, "a", "old content\n");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && ln a b && tar --format=gnu -cf '%s' . && "
		 "rm b && echo new > a && tar -rf '%s' ./a",
		 src, ar, ar);
	CHECK(system(cmd) == 0);
	f = fopen(ar, "rb");
	CHECK(f != NULL);
	while (f && rc == 0 && (k = fread(buf, 1, sizeof(buf), f)) > 0)
		rc = tar_parser_feed(p, buf, k);
	if (f)
		fclose(f);
	CHECK_EQ_U64(rc, 0);
	CHECK_EQ_U64(tar_parser_finish(p), 0);
	CHECK_EQ_U64(tree_finish(t), 0);
	n = node_at(t, "a");
	CHECK(n && n->size == 4);
	if (n)
		off = n->data_off;
	n = node_at(t, "b");
	CHECK(n && n->size == 12 && n->nlink == 1 && n != node_at(t, "a"));
	f = fopen(ar, "rb");
	CHECK(f && fseek(f, (long)off, SEEK_SET) == 0 &&
	      fread(buf, 1, 4, f) == 4 && !memcmp(buf, "new\n", 4));
	if (f)
		fclose(f);
	CHECK_EQ_U64(tree_dir_size(t, 0), 2);
	CHECK_EQ_U64(w.n, 0);
	tar_parser_free(p);
	tree_free(t);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	CHECK(system(cmd) == 0);
}

/* Past the node limit, and past the memory limit (big sparse maps and
 * long symlink targets are what nodes alone do not bound), tree_add warns
 * with the limit and returns -E2BIG; what was added before stays. */
static void test_limits(void)
{
	static struct tar_sparse seg[TAR_MAX_SPARSE];
	struct tar_entry e = {.type = TAR_REG, .mode = 0644, .size = 1 << 20};
	struct warns w = {0};
	struct tree *t = tree_new(on_warn, &w);
	char name[32], target[TAR_MAX_NAME + 1];
	int rc = 0;
	size_t i;

	tree_set_limits(t, 10, 0);
	for (i = 0; i < 9 && !rc; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		rc = add_file(t, name, 1);
	}
	CHECK_EQ_U64(rc, 0);
	CHECK_EQ_U64(add_file(t, "one/too/many", 1), -E2BIG);
	CHECK(strstr(w.last, "more than 10 files and directories; the "
			     "limit is 10") != NULL);
	CHECK_EQ_U64(tree_finish(t), 0);
	CHECK_EQ_U64(tree_dir_size(t, 0), 9); /* root + 9 files = 10 */
	tree_free(t);

	w.n = 0;
	t = tree_new(on_warn, &w);
	tree_set_limits(t, 0, 8u << 20);
	for (i = 0; i < TAR_MAX_SPARSE; i++)
		seg[i] = (struct tar_sparse){.off = 16 * i, .len = 1};
	e.sparse = seg;
	e.nsparse = TAR_MAX_SPARSE; /* 1 MiB of map per member */
	e.path = name;
	for (i = 0, rc = 0; i < 100 && !rc; i++) {
		snprintf(name, sizeof(name), "sparse%zu", i);
		rc = tree_add(t, &e);
	}
	CHECK_EQ_U64(rc, -E2BIG);
	CHECK(i >= 6 && i <= 9);
	CHECK(strstr(w.last, "the limit is 8 MiB") != NULL);
	CHECK(tree_mem_usage(t) < (9u << 20));
	tree_free(t);

	t = tree_new(on_warn, &w);
	tree_set_limits(t, 0, 8u << 20);
	memset(target, 't', TAR_MAX_NAME);
	target[TAR_MAX_NAME] = '\0';
	for (i = 0, rc = 0; i < 10000 && !rc; i++) {
		snprintf(name, sizeof(name), "l%zu", i);
		rc = add(t, name, TAR_SYMLINK, 0777, 1, 0, target);
	}
	CHECK_EQ_U64(rc, -E2BIG);
	CHECK(i > 1000 && i < 2100);
	CHECK(tree_mem_usage(t) < (9u << 20));
	tree_free(t);
}

int main(void)
{
	test_from_gnu_tar();
	test_implicit_parents();
	test_duplicates();
	test_hardlinks();
	test_symlink_sparse_skips();
	test_lookup_order();
	test_memory();
	test_limits();
	return check_done();
}
