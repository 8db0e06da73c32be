/* SPDX-License-Identifier: MIT */
/*
 * relocate.h - Spack's relocation of an installed package, as pure
 * functions over a buffer, so a lazy mount can serve relocated files.
 *
 * A Spack buildcache package was built at a padded prefix; `spack install`
 * rewrites it for the place it is installed. This module computes what
 * that rewrite does, byte for byte, without writing anything:
 *   binaries   - same size. Phase 1 (Spack's util/elf.py): the RPATH or
 *                RUNPATH string and PT_INTERP rewritten in place, the
 *                shortened string padded with NUL bytes. Phase 2 (Spack's
 *                relocate_text_bin): every old prefix inside a C string
 *                replaced, the new prefix padded to the old length with
 *                leading '/', or (when a short suffix would be aliased)
 *                shortened with a new NUL. The result is a patch list over
 *                the original bytes: a reader of any range overlays the
 *                patches that fall into it (reloc_apply).
 *   text files - any size (Spack's relocate_text): prefixes replaced where
 *                they start a path word; the new size is known once the
 *                whole file has been seen.
 *   symlinks   - absolute targets starting with an old prefix (Spack's
 *                relocate_links).
 *
 * Invariants:
 *  - A map is an ordered list of (old prefix, new prefix) pairs with
 *    unique, non-empty old prefixes. Order matters as in Spack: the first
 *    pair whose old prefix matches at a position wins. Spack orders them
 *    dependencies first, then the package's own prefix, then the old
 *    layout root (buildpath); the text map starts with the sbang path.
 *  - Binary phases never change a file's size; a replacement that would
 *    grow a string fails with -ENAMETOOLONG (Spack falls back to patchelf
 *    or gives up; a mount cannot move sections), and the caller shows the
 *    package unrelocated.
 *  - Patches are sorted by offset, never overlap, and each lies inside the
 *    file.
 *
 * Every function is pure and thread safe (no shared state); inputs are
 * never trusted: every offset read from an ELF file is bounds-checked.
 * Never includes FUSE headers; never does I/O.
 */
#ifndef SFFS_RELOCATE_H
#define SFFS_RELOCATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reloc_pair {
	const char *old_prefix; /* NUL-terminated, non-empty */
	const char *new_prefix; /* NUL-terminated */
};

struct reloc_map {
	const struct reloc_pair *pairs;
	size_t n;
};

/* What reloc_elf_parse found, as file offsets into the buffer. */
struct reloc_elf_info {
	bool is64, little_endian;
	bool has_interp;
	uint64_t interp_off; /* PT_INTERP p_offset */
	size_t interp_len;   /* string length before its NUL */
	bool has_rpath;
	bool is_runpath;    /* DT_RUNPATH rather than DT_RPATH */
	uint64_t rpath_off; /* file offset of the string */
	size_t rpath_len;   /* string length before its NUL */
};

/*
 * Parses an ELF executable or shared library (32/64-bit, either byte
 * order) the way Spack's util/elf.py does with interpreter and dynamic
 * section: PT_INTERP and the one DT_RPATH/DT_RUNPATH string, found through
 * DT_STRTAB, the PT_LOAD segments and the section header of that string
 * table. Returns 0, or -EINVAL for anything Spack would refuse to parse
 * (not ELF, not ET_EXEC/ET_DYN, truncated or overflowing tables, strings
 * without NUL, several RPATH/RUNPATH or DT_STRTAB entries).
 */
int reloc_elf_parse(const void *buf, size_t len, struct reloc_elf_info *info);

/* One patch: `len` bytes at `data` replace the file's bytes at `off`. */
struct reloc_patch {
	uint64_t off;
	uint32_t len;
	const unsigned char *data; /* points into the same allocation */
};

/*
 * Computes what `spack install` changes in a binary listed in
 * relocate_binaries: phase 1 (rpath and interpreter, only when
 * reloc_elf_parse succeeds: like Spack, a file that does not parse keeps
 * them) then phase 2 (C strings, on the bytes phase 1 left).
 * On success *out is one allocation (free it with reloc_patches_free) of
 * *n patches, NULL when nothing changes. Returns 0, -ENAMETOOLONG when a
 * string cannot be rewritten in place (err says which, as Spack's
 * CannotGrowString / CannotShrinkCString / ElfCStringUpdatesFailed), -EINVAL
 * for an invalid map (no pairs, an empty or NULL prefix), -ENOMEM. `err`
 * may be NULL. Works on a copy of the file (len bytes of memory).
 */
int reloc_elf_patches(const void *elf, size_t len, const struct reloc_map *map,
		      struct reloc_patch **out, size_t *n, char *err,
		      size_t errlen);

/*
 * The same, relocating elf itself (a scratch copy the caller owns, e.g. the
 * indexing pass's buffer of the member): saves reloc_elf_patches's copy of
 * the file, and leaves the relocated file behind (to hash it, say). On an
 * error elf may be partly relocated.
 */
int reloc_elf_patches_inplace(void *elf, size_t len,
			      const struct reloc_map *map,
			      struct reloc_patch **out, size_t *n, char *err,
			      size_t errlen);

/* Frees a patch list; NULL does nothing. */
void reloc_patches_free(struct reloc_patch *p);

/*
 * Overlays the patches that fall into [off, off+len) on buf, which holds
 * the file's original bytes of that range. p sorted as reloc_elf_patches
 * makes them; O(log n + patches in range).
 */
void reloc_apply(const struct reloc_patch *p, size_t n, uint64_t off, void *buf,
		 size_t len);

/*
 * The stored form of a patch list, for an index section: u32 count, then
 * count records of (u64 offset, u32 length), then every patch's bytes in
 * order; little-endian. At most RELOC_STORED_MAX bytes.
 */
#define RELOC_STORED_MAX ((size_t)16 << 20)

/* Encodes p into a malloc'd *out of *outlen bytes. Returns 0, -EFBIG past
 * RELOC_STORED_MAX, -ENOMEM. */
int reloc_patches_encode(const struct reloc_patch *p, size_t n, void **out,
			 size_t *outlen);

/*
 * Decodes a stored patch list (untrusted) for a file of file_size bytes:
 * records must be sorted, disjoint, non-empty and inside the file, and
 * the bytes must add up to exactly len. On success *out is one allocation
 * (reloc_patches_free), NULL when n is 0. Returns 0, -EINVAL, -ENOMEM.
 */
int reloc_patches_decode(const void *buf, size_t len, uint64_t file_size,
			 struct reloc_patch **out, size_t *n);

/* Largest text file reloc_text produces. */
#define RELOC_TEXT_MAX ((size_t)1 << 30)

/*
 * Relocates a text file as Spack's relocate_text does. On success *out is
 * a malloc'd buffer of *outlen bytes (the size getattr must answer), or
 * NULL with *outlen == len when nothing changes. Returns 0, -EINVAL for an
 * invalid map, -EFBIG past RELOC_TEXT_MAX, -ENOMEM.
 */
int reloc_text(const void *in, size_t len, const struct reloc_map *map,
	       void **out, size_t *outlen);

/*
 * Relocates a symlink target as Spack's relocate_links does: only an
 * absolute target that starts with an old prefix changes. On success *out
 * is a malloc'd NUL-terminated target, or NULL when it does not change.
 * Returns 0, -EINVAL for an invalid map, -ENOMEM.
 */
int reloc_link(const char *target, const struct reloc_map *map, char **out);

#endif
