/* SPDX-License-Identifier: MIT */
/*
 * reloc_tool - runs the relocation engine (archive/relocate.c) on a file,
 * for tests that compare it with tests/lib/spack_relocate_ref.py.
 *
 *   reloc_tool binary IN OUT --map OLD NEW [--map OLD NEW ...]
 *   reloc_tool text   IN OUT --map OLD NEW ...
 *   reloc_tool link   TARGET --map OLD NEW ...   (prints the target)
 *
 * A binary is written the way a mount would serve it: the original bytes
 * read in ranges of varying sizes, each overlaid with reloc_apply. Exit
 * status 3 when the engine refuses (-ENAMETOOLONG), 1 on other errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sffs/relocate.h"

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)size + 1);
		if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)size;
	}
	fclose(f);
	return buf;
}

static int write_all(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(buf, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Serves the file range by range, as a FUSE read would. */
static int do_binary(const unsigned char *in, size_t len, const char *outp,
		     const struct reloc_map *map)
{
	struct reloc_patch *p;
	unsigned char *out;
	char err[512] = "";
	size_t n, off = 0;
	unsigned seed = 12345;
	int rc = reloc_elf_patches(in, len, map, &p, &n, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "refused: %s (%s)\n", err, strerror(-rc));
		return rc == -ENAMETOOLONG ? 3 : 1;
	}
	out = malloc(len + 1);
	if (!out)
		return 1;
	while (off < len) {
		size_t chunk = 1 + (seed = seed * 1103515245u + 12345u) % 65536;

		if (chunk > len - off)
			chunk = len - off;
		memcpy(out + off, in + off, chunk);
		reloc_apply(p, n, off, out + off, chunk);
		off += chunk;
	}
	fprintf(stderr, "%zu patches\n", n);
	rc = write_all(outp, out, len) == 0 ? 0 : 1;
	free(out);
	reloc_patches_free(p);
	return rc;
}

static int do_text(const unsigned char *in, size_t len, const char *outp,
		   const struct reloc_map *map)
{
	void *out;
	size_t outlen;
	int rc = reloc_text(in, len, map, &out, &outlen);

	if (rc < 0) {
		fprintf(stderr, "reloc_text: %s\n", strerror(-rc));
		return 1;
	}
	rc = write_all(outp, out ? out : in, outlen) == 0 ? 0 : 1;
	free(out);
	return rc;
}

static int do_link(const char *target, const struct reloc_map *map)
{
	char *out;
	int rc = reloc_link(target, map, &out);

	if (rc < 0)
		return 1;
	printf("%s\n", out ? out : target);
	free(out);
	return 0;
}

int main(int argc, char **argv)
{
	struct reloc_pair pairs[256];
	struct reloc_map map = {pairs, 0};
	const char *pos[3] = {NULL, NULL, NULL};
	unsigned char *in;
	size_t npos = 0, len = 0;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--map") == 0 && i + 2 < argc &&
		    map.n < 256) {
			pairs[map.n].old_prefix = argv[i + 1];
			pairs[map.n++].new_prefix = argv[i + 2];
			i += 2;
		} else if (npos < 3) {
			pos[npos++] = argv[i];
		}
	}
	if (npos >= 2 && strcmp(pos[0], "link") == 0)
		return do_link(pos[1], &map);
	if (npos != 3) {
		fprintf(
		    stderr,
		    "usage: reloc_tool binary|text IN OUT --map OLD NEW ...\n");
		return 2;
	}
	in = slurp(pos[1], &len);
	if (!in) {
		perror(pos[1]);
		return 1;
	}
	rc = strcmp(pos[0], "text") == 0 ? do_text(in, len, pos[2], &map)
					 : do_binary(in, len, pos[2], &map);
	free(in);
	return rc;
}
