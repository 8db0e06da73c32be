/* SPDX-License-Identifier: MIT */
/*
 * fuzz_index.c - the .sfidx loader (index.h) on hostile files.
 *
 * The input is an index file. It goes into a memfd and is loaded the way
 * the daemon loads a published index: index_load through a fetch of the
 * file (header, one request for MEMBERS + POINTS, digest checks, zstd,
 * record parsing replayed into a tree). The artifact size given is the one
 * the header claims, so a well-formed file gets past that check. On
 * success the result is checked against index.h's promises (points sorted
 * and inside both streams, windows inside the file, every tree node
 * reachable and in range) and every window is loaded and digest-checked.
 * The parsers are also run on the raw input directly, so records reach
 * them even without valid digests around them.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sffs/index.h"
#include "sffs/log.h"

static void check_tree(const struct tree *t)
{
	uint32_t n = tree_count(t), i, child;
	const char *name;
	size_t k;

	FUZZ_CHECK(n >= 1 && S_ISDIR(tree_node(t, 0)->mode));
	for (i = 0; i < n; i++) {
		const struct tree_node *node = tree_node(t, i);

		FUZZ_CHECK(node != NULL);
		for (k = 0; !tree_dir_entry(t, i, k, &name, &child); k++) {
			uint32_t found;

			FUZZ_CHECK(child < n);
			FUZZ_CHECK(*name && !strchr(name, '/'));
			FUZZ_CHECK(tree_lookup(t, i, name, &found) == 0);
		}
	}
}

static void check_points(const struct seek_index *si,
			 const struct index_header *h)
{
	size_t i;

	FUZZ_CHECK(si->n >= 1 && si->pts[0].uoff == 0);
	for (i = 0; i < si->n; i++) {
		const struct seek_point *p = &si->pts[i];

		FUZZ_CHECK(p->coff <= h->artifact_size && p->bits <= 7);
		FUZZ_CHECK(!p->wlen ||
			   p->woff + p->wlen <= h->sec[INDEX_WINDOWS].len);
		FUZZ_CHECK(!i || (p->uoff > si->pts[i - 1].uoff &&
				  p->coff >= si->pts[i - 1].coff));
	}
}

static void load_windows(struct fetch *f, const struct index_header *h,
			 const struct seek_index *si)
{
	size_t i;

	for (i = 0; i < si->n; i++) {
		unsigned char *w = NULL;

		if (!si->pts[i].wlen)
			continue;
		if (index_load_window(f, h, &si->pts[i], &w) == 0)
			free(w);
	}
}

/* The record parsers straight on the input, no digests in the way. */
static void parse_raw(const uint8_t *data, size_t size)
{
	struct index_header h = { .npoints = size / 62,
				  .artifact_size = UINT64_MAX / 2,
				  .usize = UINT64_MAX / 2 };
	struct seek_index *si = NULL;
	struct tree *t = tree_new(NULL, NULL);

	h.sec[INDEX_WINDOWS].len = 1u << 20;
	if (t && index_parse_members(data, size, size / 8 + 1, t) == 0 &&
	    tree_finish(t) == 0)
		check_tree(t);
	tree_free(t);
	if (h.npoints && index_parse_points(data, h.npoints * 62, &h, &si) == 0)
		check_points(si, &h);
	seek_index_free(si);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct index_header h, claimed;
	struct seek_index *si = NULL;
	unsigned char *blocks = NULL;
	struct fetch *f = NULL;
	struct tree *t = NULL;
	char path[64], err[512];
	int fd;

	if (!init) {
		log_set_level(LOG_LVL_ERR);
		fetch_global_init();
		init = true;
	}
	parse_raw(data, size);
	fd = memfd_create("sfidx", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	f = fetch_open(path, NULL, err, sizeof(err));
	t = tree_new(NULL, NULL);
	if (!f || !t)
		goto out;
	memset(&claimed, 0, sizeof(claimed));
	if (index_parse_header(data, size, &claimed))
		claimed.artifact_size = 1;
	if (index_load(f, claimed.artifact_size, &h, t, &si, &blocks, NULL,
		       NULL, err, sizeof(err)) == 0 &&
	    tree_finish(t) == 0) {
		check_points(si, &h);
		check_tree(t);
		load_windows(f, &h, si);
	}
out:
	free(blocks);
	seek_index_free(si);
	tree_free(t);
	fetch_free(f);
	if (fd >= 0)
		close(fd);
	return 0;
}
