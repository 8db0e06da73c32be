/* SPDX-License-Identifier: MIT */
/*
 * test_relview.c - an archive's files served relocated (archive/relview.c)
 * at library level, no mount: a package made here (a real ELF file, this
 * test's own executable, with prefixed C strings appended; a text file; a
 * symlink; a binary the engine must refuse; a file not listed), opened
 * from memory, and every read compared with the engine's result computed
 * on the whole file: full reads, thousands of random ranges, 8 threads at
 * once on a fresh archive (the computation's waiters), nowait, sizes of
 * text files, link targets, the xattr line, and -o relocate='s parser.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "memtar.h"
#include "sffs/archive.h"
#include "sffs/log.h"
#include "sffs/relocate.h"

/* short enough that OLD "/lib/libpkg.so" fits a ustar link name */
#define OLD                                                                    \
	"/opt/spack/__spack_path_placeholder__/"                               \
	"pkg-1.0-abcdefghijklmnopqrstuvwxyz234567"
#define NEW "/sf/pkg-1.0-abcdefg"
#define SHORT_NEW "/a/much/longer/new/prefix/than/the/old/one"

/* "/q9z", made at run time: as a literal it would be in this test's own
 * binary, which the test relocates, and refused there. */
static char short_old[8];
static struct reloc_pair pairs[] = {{OLD, NEW}, {short_old, SHORT_NEW}};
static const struct reloc_map map = {pairs, 2};

struct blob {
	unsigned char *p;
	size_t n;
};

struct pkg {
	struct blob tool, refused, text, other;
	struct blob want_tool, want_text;
	unsigned char *gz;
	size_t gzlen;
	struct memtar_src src;
	struct fetch *f;
	struct archive *ar;
	uint32_t root, ntool, nrefused, ntext, nother, nlink;
};

static struct blob slurp_self(void)
{
	struct blob b = {0};
	FILE *f = fopen("/proc/self/exe", "rb");
	long n;

	if (!f)
		return b;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b.p = malloc((size_t)n + 4096);
	if (b.p && fread(b.p, 1, (size_t)n, f) == (size_t)n)
		b.n = (size_t)n;
	fclose(f);
	return b;
}

static void append(struct blob *b, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static struct blob dup_blob(const struct blob *b)
{
	struct blob d = {malloc(b->n + 4096), b->n};

	if (d.p)
		memcpy(d.p, b->p, b->n);
	return d;
}

static void make_contents(struct pkg *p)
{
	static const char text[] =
	    "prefix=" OLD "\nlibdir=" OLD "/lib\n# " OLD "\nx-" OLD "/no\n";
	char line[64], err[256];
	int rc;
	struct reloc_patch *pt = NULL;
	size_t np = 0;
	void *out = NULL;
	size_t outlen = 0;

	p->tool = slurp_self();
	append(&p->tool, OLD "/etc/pkg.conf");
	append(&p->tool, OLD);
	append(&p->tool, OLD "/lib");
	p->refused = dup_blob(&p->tool);
	p->refused.n -= strlen(OLD "/lib") + 1;
	snprintf(line, sizeof(line), "%s/x", short_old);
	append(&p->refused, line);
	p->other = dup_blob(&p->tool);
	p->want_tool = dup_blob(&p->tool);
	rc = reloc_elf_patches(p->tool.p, p->tool.n, &map, &pt, &np, err,
			       sizeof(err));
	if (rc)
		fprintf(stderr, "reloc_elf_patches: %s\n", err);
	CHECK(p->want_tool.p && !rc);
	CHECK(np >= 3);
	reloc_apply(pt, np, 0, p->want_tool.p, p->want_tool.n);
	reloc_patches_free(pt);
	p->text.n = strlen(text);
	p->text.p = malloc(p->text.n);
	memcpy(p->text.p, text, p->text.n);
	CHECK(!reloc_text(p->text.p, p->text.n, &map, &out, &outlen) && out);
	p->want_text.p = out;
	p->want_text.n = outlen;
}

static int pkg_open(struct pkg *p)
{
	struct archive_opts o;
	char err[256];

	archive_opts_default(&o);
	o.cache_mem = 1u << 20; /* smaller than the binary: decoded again */
	o.spacing = 128 * 1024;
	o.block_size = 64 * 1024;
	p->f = fetch_open_source("mem://pkg.tar.gz", p->gzlen, "v1",
				 memtar_ops(), &p->src);
	p->ar = p->f ? archive_open(p->f, &o, err, sizeof(err)) : NULL;
	if (!p->ar) {
		fprintf(stderr, "archive_open: %s\n", err);
		return -1;
	}
	if (tree_resolve(archive_tree(p->ar), "pkg", &p->root) ||
	    tree_resolve(archive_tree(p->ar), "pkg/bin/tool", &p->ntool) ||
	    tree_resolve(archive_tree(p->ar), "pkg/bin/refused",
			 &p->nrefused) ||
	    tree_resolve(archive_tree(p->ar), "pkg/share/pkg.pc", &p->ntext) ||
	    tree_resolve(archive_tree(p->ar), "pkg/bin/other", &p->nother) ||
	    tree_resolve(archive_tree(p->ar), "pkg/lib/link", &p->nlink))
		return -1;
	archive_set_root(p->ar, p->root);
	return 0;
}

static int pkg_relocate(struct pkg *p)
{
	static const char *const bins[] = {"bin/tool", "./bin/refused",
					   "bin/missing", "share"};
	static const char *const texts[] = {"share/pkg.pc"};
	static const char *const links[] = {"lib/link", "bin/tool"};
	struct archive_reloc_opts o = {.bin = &map,
				       .text = &map,
				       .binaries = bins,
				       .nbinaries = 4,
				       .textfiles = texts,
				       .ntextfiles = 1,
				       .links = links,
				       .nlinks = 2,
				       .what = "test package"};
	char err[256];

	return archive_relocate(p->ar, &o, err, sizeof(err));
}

static void pkg_close(struct pkg *p)
{
	archive_free(p->ar);
	fetch_free(p->f);
	p->ar = NULL;
	p->f = NULL;
}

static int pkg_new(struct pkg *p)
{
	struct memtar t = {0};

	memset(p, 0, sizeof(*p));
	make_contents(p);
	memtar_add(&t, "pkg", '5', 0755, NULL, 0, NULL);
	memtar_add(&t, "pkg/bin", '5', 0755, NULL, 0, NULL);
	memtar_add(&t, "pkg/bin/tool", '0', 0755, p->tool.p, p->tool.n, NULL);
	memtar_add(&t, "pkg/bin/refused", '0', 0755, p->refused.p, p->refused.n,
		   NULL);
	memtar_add(&t, "pkg/bin/other", '0', 0755, p->other.p, p->other.n,
		   NULL);
	memtar_add(&t, "pkg/share/pkg.pc", '0', 0644, p->text.p, p->text.n,
		   NULL);
	memtar_add(&t, "pkg/lib/link", '2', 0777, NULL, 0,
		   OLD "/lib/libpkg.so");
	p->gz = memtar_gzip(&t, &p->gzlen);
	free(t.p);
	p->src.data = p->gz;
	p->src.len = p->gzlen;
	return p->gz ? pkg_open(p) : -1;
}

static void pkg_free(struct pkg *p)
{
	pkg_close(p);
	free(p->tool.p);
	free(p->refused.p);
	free(p->text.p);
	free(p->other.p);
	free(p->want_tool.p);
	free(p->want_text.p);
	free(p->gz);
}

static bool range_ok(struct archive *ar, uint32_t node, const struct blob *b,
		     uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	ssize_t n = archive_read(ar, node, off, len, buf);
	size_t want = off >= b->n ? 0 : len < b->n - off ? len : b->n - off;
	bool ok = n == (ssize_t)want && !memcmp(buf, b->p + off, want);

	free(buf);
	return ok;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	return *x;
}

static void test_served(struct pkg *p)
{
	char line[512];
	uint64_t size = 0, x = 18;
	unsigned bad = 0;
	int k;

	CHECK(archive_reloc_describe(p->ar, p->ntool, line, sizeof(line)) ==
	      -ENODATA);
	CHECK(!pkg_relocate(p));
	CHECK(pkg_relocate(p) == -EALREADY);
	CHECK(archive_reloc_describe(p->ar, p->ntool, line, sizeof(line)) > 0 &&
	      !strcmp(line, "not yet read"));
	CHECK(!archive_node_size(p->ar, p->ntext, &size));
	CHECK_EQ_U64(size, p->want_text.n);
	CHECK(!archive_node_size(p->ar, p->ntool, &size));
	CHECK_EQ_U64(size, p->tool.n);
	CHECK(!strcmp(archive_link_target(p->ar, p->nlink),
		      NEW "/lib/libpkg.so"));
	CHECK(!archive_node_size(p->ar, p->nlink, &size));
	CHECK_EQ_U64(size, strlen(NEW "/lib/libpkg.so"));
	CHECK(range_ok(p->ar, p->ntool, &p->want_tool, 0, p->tool.n + 10));
	CHECK(range_ok(p->ar, p->ntext, &p->want_text, 0, 4096));
	CHECK(range_ok(p->ar, p->nother, &p->other, 0, p->other.n));
	CHECK(range_ok(p->ar, p->nrefused, &p->refused, 0, p->refused.n));
	for (k = 0; k < 3000; k++) {
		uint64_t off = rnd(&x) % (p->tool.n + 100);
		size_t len = (size_t)(rnd(&x) % 70000);

		bad += !range_ok(p->ar, p->ntool, &p->want_tool, off, len);
		off = rnd(&x) % (p->want_text.n + 4);
		bad += !range_ok(p->ar, p->ntext, &p->want_text, off, len % 64);
	}
	CHECK_EQ_U64(bad, 0);
	CHECK(archive_reloc_describe(p->ar, p->ntool, line, sizeof(line)) > 0 &&
	      !strncmp(line, "binary: ", 8));
	CHECK(archive_reloc_describe(p->ar, p->nrefused, line, sizeof(line)) >
		  0 &&
	      !strncmp(line, "refused: ", 9));
	CHECK(archive_reloc_describe(p->ar, p->nother, line, sizeof(line)) >
		  0 &&
	      !strcmp(line, "unchanged"));
	CHECK(archive_reloc_describe(p->ar, p->ntext, line, sizeof(line)) > 0 &&
	      !strncmp(line, "text: ", 6));
	CHECK(
	    archive_reloc_describe(p->ar, p->root, line, sizeof(line)) > 0 &&
	    !strncmp(line, "relocated: 2 binaries, 1 text files, 1 links", 44));
}

struct reader {
	struct pkg *p;
	unsigned seed, bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t x = r->seed * 2654435761u + 1;
	int k;

	for (k = 0; k < 200; k++) {
		uint64_t off = rnd(&x) % r->p->tool.n;
		size_t len = (size_t)(rnd(&x) % 200000);

		if (k % 3 == 0)
			r->bad += !range_ok(r->p->ar, r->p->ntext,
					    &r->p->want_text, off % 64, len);
		else
			r->bad += !range_ok(r->p->ar, r->p->ntool,
					    &r->p->want_tool, off, len);
	}
	return NULL;
}

static void test_threads(struct pkg *p)
{
	struct reader rs[8];
	pthread_t th[8];
	struct archive_req rq = {.nowait = true};
	unsigned char buf[64];
	unsigned bad = 0;
	int k;

	pkg_close(p);
	CHECK(!pkg_open(p));
	CHECK(!pkg_relocate(p));
	/* not computed yet: a worker that may not wait is told so */
	CHECK(archive_read_req(p->ar, p->ntool, 0, sizeof(buf), buf, &rq) ==
	      -EAGAIN);
	for (k = 0; k < 8; k++) {
		rs[k].p = p;
		rs[k].seed = (unsigned)k + 1;
		rs[k].bad = 0;
		CHECK(!pthread_create(&th[k], NULL, reader_main, &rs[k]));
	}
	for (k = 0; k < 8; k++) {
		pthread_join(th[k], NULL);
		bad += rs[k].bad;
	}
	CHECK_EQ_U64(bad, 0);
}

static void test_tree_spec(struct pkg *p)
{
	char err[256], line[512];
	char many[16 * 8 + 64] = "";
	int k;

	pkg_close(p);
	CHECK(!pkg_open(p));
	CHECK(archive_relocate_tree(p->ar, "relative/path", "/sf", "t", err,
				    sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "absolute") != NULL);
	CHECK(archive_relocate_tree(p->ar, "/a=/abs", "/sf", "t", err,
				    sizeof(err)) == -EINVAL);
	CHECK(archive_relocate_tree(p->ar, ":::", "/sf", "t", err,
				    sizeof(err)) == -EINVAL);
	for (k = 0; k < 17; k++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "/p%02d:", k);
	CHECK(archive_relocate_tree(p->ar, many, "/sf", "t", err,
				    sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "more than 16") != NULL);
	/* OLD maps to the root: the package's own prefix becomes /sf/... */
	CHECK(!archive_relocate_tree(p->ar, OLD "=pkg-1.0-abcdefg", "/sf", "t",
				     err, sizeof(err)));
	CHECK(range_ok(p->ar, p->ntool, &p->want_tool, 0, p->tool.n));
	CHECK(range_ok(p->ar, p->ntext, &p->text, 0, p->text.n));
	/* looked at, found not ELF: served as archived from then on */
	CHECK(archive_reloc_describe(p->ar, p->ntext, line, sizeof(line)) > 0 &&
	      !strcmp(line, "unchanged"));
	CHECK(archive_reloc_describe(p->ar, p->root, line, sizeof(line)) > 0 &&
	      !strncmp(line, "relocated: every ELF file", 25));
	/* a symlink is not ELF work: its target is left alone */
	CHECK(!strcmp(archive_link_target(p->ar, p->nlink),
		      OLD "/lib/libpkg.so"));
}

static void test_refused_whole(struct pkg *p)
{
	char line[512];

	pkg_close(p);
	CHECK(!pkg_open(p));
	archive_reloc_refused(p->ar, "new prefix /x is longer than the old /y");
	CHECK(range_ok(p->ar, p->ntool, &p->tool, 0, p->tool.n));
	CHECK(archive_reloc_describe(p->ar, p->ntool, line, sizeof(line)) > 0 &&
	      !strncmp(line, "refused: new prefix", 19));
	CHECK(pkg_relocate(p) == -EALREADY);
}

int main(void)
{
	struct pkg p;

	log_set_level(LOG_LVL_ERR);
	{
		volatile char q = 'q'; /* not folded into a "/q9z" literal */

		short_old[0] = '/';
		short_old[1] = q;
		short_old[2] = '9';
		short_old[3] = 'z';
	}
	if (pkg_new(&p)) {
		CHECK(!"the package could not be made");
		return check_done();
	}
	test_served(&p);
	test_threads(&p);
	test_tree_spec(&p);
	test_refused_whole(&p);
	pkg_free(&p);
	return check_done();
}
