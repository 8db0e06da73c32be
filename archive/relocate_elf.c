/* SPDX-License-Identifier: MIT */
/*
 * relocate_elf.c - the bounded ELF parser behind relocation: PT_INTERP and
 * the DT_RPATH/DT_RUNPATH string, found as Spack's util/elf.py finds them
 * (so a file Spack refuses, this refuses too), but with every offset
 * checked against the buffer before it is used.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sffs/relocate.h"

enum {
	ET_EXEC = 2,
	ET_DYN = 3,
	PT_LOAD = 1,
	PT_DYNAMIC = 2,
	PT_INTERP = 3,
	DT_NULL = 0,
	DT_NEEDED = 1,
	DT_STRTAB = 5,
	DT_SONAME = 14,
	DT_RPATH = 15,
	DT_RUNPATH = 29,
	SHT_STRTAB = 3,
};

struct elf {
	const unsigned char *b;
	size_t len;
	bool is64, le;
	uint64_t phoff, shoff;
	uint32_t phnum, shnum;
	size_t nload;	    /* PT_LOAD segments with a file size */
	uint64_t *load_off; /* phnum entries, sorted by vaddr */
	uint64_t *load_vaddr;
	uint64_t interp_filesz;
	bool has_dyn;
	uint64_t dyn_off, dyn_filesz;
};

static bool in_buf(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

static uint64_t rd(const struct elf *e, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++) {
		unsigned shift = e->le ? 8 * i : 8 * (size - 1 - i);
		v |= (uint64_t)e->b[off + i] << shift;
	}
	return v;
}

/* A word of the class's size: 8 bytes in ELF64, 4 in ELF32. */
static uint64_t rdw(const struct elf *e, uint64_t off)
{
	return rd(e, off, e->is64 ? 8 : 4);
}

static int parse_header(struct elf *e)
{
	size_t hdr;
	uint16_t type;

	if (e->len < 16 || memcmp(e->b, "\177ELF", 4) != 0)
		return -EINVAL;
	if (e->b[4] != 1 && e->b[4] != 2)
		return -EINVAL;
	if (e->b[5] != 1 && e->b[5] != 2)
		return -EINVAL;
	e->is64 = e->b[4] == 2;
	e->le = e->b[5] == 1;
	/* e_ident (16) + the header's fixed fields (48 or 36 bytes) */
	hdr = e->is64 ? 64 : 52;
	if (e->len < hdr)
		return -EINVAL;
	type = (uint16_t)rd(e, 16, 2);
	if (type != ET_EXEC && type != ET_DYN)
		return -EINVAL;
	e->phoff = rdw(e, e->is64 ? 32 : 28);
	e->shoff = rdw(e, e->is64 ? 40 : 32);
	/* elf.py reads tables with its own entry sizes, not e_*entsize */
	e->phnum = (uint32_t)rd(e, e->is64 ? 56 : 44, 2);
	e->shnum = (uint32_t)rd(e, e->is64 ? 60 : 48, 2);
	return 0;
}

/* Keeps PT_LOAD (offset, vaddr) sorted by vaddr; a stable insertion so
 * equal vaddrs keep file order, as Python's sort does. */
static void add_load(struct elf *e, uint64_t off, uint64_t vaddr)
{
	size_t i = e->nload;

	while (i > 0 && e->load_vaddr[i - 1] > vaddr) {
		e->load_off[i] = e->load_off[i - 1];
		e->load_vaddr[i] = e->load_vaddr[i - 1];
		i--;
	}
	e->load_off[i] = off;
	e->load_vaddr[i] = vaddr;
	e->nload++;
}

/* The C string at off within [lo, lo+size): its length, or -EINVAL when
 * no NUL ends it inside. */
static int64_t cstr_len(const struct elf *e, uint64_t lo, uint64_t size,
			uint64_t off)
{
	const unsigned char *nul;

	if (off >= size)
		return -EINVAL;
	nul = memchr(e->b + lo + off, 0, size - off);
	if (!nul)
		return -EINVAL;
	return nul - (e->b + lo + off);
}

static int parse_phdrs(struct elf *e, struct reloc_elf_info *info)
{
	uint64_t phsize = e->is64 ? 56 : 32;

	if (!in_buf(e->len, e->phoff, phsize * e->phnum))
		return -EINVAL;
	e->load_off = calloc(e->phnum + 1, sizeof(uint64_t));
	e->load_vaddr = calloc(e->phnum + 1, sizeof(uint64_t));
	if (!e->load_off || !e->load_vaddr)
		return -ENOMEM;
	for (uint32_t i = 0; i < e->phnum; i++) {
		uint64_t p = e->phoff + i * phsize;
		uint32_t type = (uint32_t)rd(e, p, 4);
		uint64_t off = rdw(e, p + (e->is64 ? 8 : 4));
		uint64_t vaddr = rdw(e, p + (e->is64 ? 16 : 8));
		uint64_t filesz = rdw(e, p + (e->is64 ? 32 : 16));

		if (filesz == 0)
			continue;
		if (type == PT_LOAD)
			add_load(e, off, vaddr);
		if (type == PT_INTERP) {
			info->has_interp = true;
			info->interp_off = off;
			e->interp_filesz = filesz;
		}
		if (type == PT_DYNAMIC) {
			e->has_dyn = true;
			e->dyn_off = off;
			e->dyn_filesz = filesz;
		}
	}
	return 0;
}

static int parse_interp(struct elf *e, struct reloc_elf_info *info)
{
	uint64_t filesz = e->interp_filesz;
	int64_t n;

	if (!in_buf(e->len, info->interp_off, filesz))
		return -EINVAL;
	n = cstr_len(e, info->interp_off, filesz, 0);
	if (n < 0)
		return -EINVAL;
	info->interp_len = (size_t)n;
	return 0;
}

/* Like elf.py: the last PT_LOAD whose vaddr <= v; below the first one,
 * Python's index -1 picks the last segment. A negative result (Python
 * would fail to seek) or one past 2^64 is refused. */
static int vaddr_to_off(const struct elf *e, uint64_t v, uint64_t *off)
{
	size_t i = e->nload;
	uint64_t base, d;

	while (i > 0 && e->load_vaddr[i - 1] > v)
		i--;
	i = i ? i - 1 : e->nload - 1;
	base = e->load_off[i];
	if (v >= e->load_vaddr[i]) {
		d = v - e->load_vaddr[i];
		if (base > UINT64_MAX - d)
			return -EINVAL;
		*off = base + d;
	} else {
		d = e->load_vaddr[i] - v;
		if (d > base)
			return -EINVAL;
		*off = base - d;
	}
	return 0;
}

/* The size of the SHT_STRTAB section at file offset off, reading section
 * headers in order as elf.py does (a short read before the match fails). */
static int strtab_size(const struct elf *e, uint64_t off, uint64_t *size)
{
	uint64_t shsize = e->is64 ? 64 : 40;

	for (uint32_t i = 0; i < e->shnum; i++) {
		uint64_t s = e->shoff + i * shsize;

		if (e->shoff > e->len || !in_buf(e->len, s, shsize))
			return -EINVAL;
		if ((uint32_t)rd(e, s + 4, 4) != SHT_STRTAB)
			continue;
		if (rdw(e, s + (e->is64 ? 24 : 16)) != off)
			continue;
		*size = rdw(e, s + (e->is64 ? 32 : 20));
		return in_buf(e->len, off, *size) ? 0 : -EINVAL;
	}
	return -EINVAL;
}

struct dyn_scan {
	unsigned nrpath, nrunpath, nstrtab;
	bool has_needed, has_soname;
	uint64_t rpath_val, strtab_vaddr, soname_val;
	uint64_t nent; /* entries before DT_NULL (or all) */
};

static int scan_dynamic(const struct elf *e, struct dyn_scan *d)
{
	uint64_t entsize = e->is64 ? 16 : 8, count = e->dyn_filesz / entsize;

	for (uint64_t i = 0; i < count; i++) {
		uint64_t p = e->dyn_off + i * entsize;
		uint64_t tag, val;

		if (!in_buf(e->len, p, entsize))
			return -EINVAL;
		tag = rdw(e, p);
		val = rdw(e, p + entsize / 2);
		if (tag == DT_NULL)
			break;
		d->nent = i + 1;
		if (tag == DT_RPATH || tag == DT_RUNPATH) {
			d->nrpath += tag == DT_RPATH;
			d->nrunpath += tag == DT_RUNPATH;
			d->rpath_val = val;
		} else if (tag == DT_STRTAB) {
			d->nstrtab++;
			d->strtab_vaddr = val;
		} else if (tag == DT_NEEDED) {
			d->has_needed = true;
		} else if (tag == DT_SONAME) {
			d->has_soname = true;
			d->soname_val = val;
		}
	}
	if (d->nrpath + d->nrunpath > 1 || d->nstrtab != 1)
		return -EINVAL;
	return 0;
}

/* elf.py parses every string it looked up: NEEDED, SONAME, the rpath. */
static int check_strings(const struct elf *e, const struct dyn_scan *d,
			 uint64_t st, uint64_t stsize,
			 struct reloc_elf_info *info)
{
	uint64_t entsize = e->is64 ? 16 : 8;
	int64_t n;

	/* the entries were bounds-checked by scan_dynamic */
	for (uint64_t i = 0; d->has_needed && i < d->nent; i++) {
		uint64_t p = e->dyn_off + i * entsize;

		if (rdw(e, p) == DT_NEEDED &&
		    cstr_len(e, st, stsize, rdw(e, p + entsize / 2)) < 0)
			return -EINVAL;
	}
	if (d->has_soname && cstr_len(e, st, stsize, d->soname_val) < 0)
		return -EINVAL;
	if (!info->has_rpath)
		return 0;
	n = cstr_len(e, st, stsize, d->rpath_val);
	if (n < 0)
		return -EINVAL;
	info->rpath_off = st + d->rpath_val;
	info->rpath_len = (size_t)n;
	return 0;
}

static int parse_dynamic(struct elf *e, struct reloc_elf_info *info)
{
	struct dyn_scan *d;
	uint64_t st, stsize;
	int rc;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	rc = scan_dynamic(e, d);
	if (rc < 0)
		goto out_free;
	info->has_rpath = d->nrpath + d->nrunpath == 1;
	info->is_runpath = d->nrunpath == 1;
	if (!info->has_rpath && !d->has_soname && !d->has_needed)
		goto out_free;
	rc = vaddr_to_off(e, d->strtab_vaddr, &st);
	if (rc == 0)
		rc = strtab_size(e, st, &stsize);
	if (rc == 0)
		rc = check_strings(e, d, st, stsize, info);
out_free:
	free(d);
	return rc;
}

int reloc_elf_parse(const void *buf, size_t len, struct reloc_elf_info *info)
{
	struct elf e;
	int rc;

	memset(info, 0, sizeof(*info));
	memset(&e, 0, sizeof(e));
	e.b = buf;
	e.len = len;
	rc = parse_header(&e);
	if (rc < 0)
		return rc;
	info->is64 = e.is64;
	info->little_endian = e.le;
	rc = parse_phdrs(&e, info);
	if (rc == 0 && info->has_interp)
		rc = parse_interp(&e, info);
	if (rc == 0 && e.has_dyn && e.nload > 0)
		rc = parse_dynamic(&e, info);
	free(e.load_off);
	free(e.load_vaddr);
	if (rc < 0) {
		memset(info, 0, sizeof(*info));
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	return 0;
}
