/* SPDX-License-Identifier: MIT */
/*
 * tar_i.h - what the tar reader's two files share: the parser's state
 * (tar.c: the block state machine, headers, feeding) and the helpers of
 * tar_ext.c (numeric fields, names, sparse maps, pax records). Private.
 */
#ifndef SFFS_TAR_I_H
#define SFFS_TAR_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sffs/tar.h"

#define BLK 512

/* Header field offsets and lengths (POSIX ustar and old GNU layouts). */
enum {
	H_NAME = 0,
	H_MODE = 100,
	H_SIZE = 124,
	H_MTIME = 136,
	H_CHKSUM = 148,
	H_TYPE = 156,
	H_LINK = 157,
	H_MAGIC = 257,
	H_PREFIX = 345,
	H_GNU_SPARSE = 386, /* 4 x (offset[12], numbytes[12]) */
	H_GNU_ISEXT = 482,
	H_GNU_REALSIZE = 483,
	X_ISEXT = 504, /* sparse extension block: 21 pairs, then isextended */
};

enum tar_state {
	ST_HEADER,     /* gathering a header block */
	ST_EXT,	       /* gathering an x/g/L/K payload */
	ST_SPARSE_EXT, /* gathering an old GNU sparse extension block */
	ST_MAP,	       /* gathering a block of a pax 1.0 sparse map */
	ST_SKIP,       /* counting member data and padding */
	ST_ZERO2,      /* after one zero block: is the next one zero too? */
	ST_END,	       /* past the end-of-archive marker */
	ST_ERROR,
};

enum name_state { NB_NONE, NB_SET, NB_LONG, NB_NUL };

/* A name from an extended header, bounded by TAR_MAX_NAME. */
struct name_buf {
	char s[TAR_MAX_NAME + 1];
	size_t len;
	enum name_state st;
};

/* What a pax local header says about the next member. */
struct pax_attrs {
	struct name_buf path, link, sparse_name;
	bool has_size, has_mtime, has_realsize, has_off, sparse_v0;
	uint64_t size, realsize, pend_off;
	int64_t mtime;
	int sparse_major, sparse_minor; /* -1 if absent */
};

struct tar_parser {
	tar_entry_cb entry_cb;
	tar_warn_cb warn_cb;
	void *arg;

	enum tar_state st;
	uint64_t off; /* bytes consumed */
	unsigned char blk[BLK];
	size_t blk_have;

	char *ext; /* extended-header payload, at most TAR_MAX_PAX */
	size_t ext_cap, ext_len, ext_have;
	char ext_type;
	uint64_t skip; /* ST_SKIP: bytes still to count */

	/* State gathered for the next member. */
	bool pending;
	uint64_t member_off;
	struct name_buf longname, longlink;
	struct pax_attrs x;
	bool g_has_mtime;
	int64_t g_mtime;

	/* The member being built. */
	struct tar_entry e;
	uint64_t stored; /* bytes of data area (before padding) */
	bool sparse;
	uint64_t realsize;
	struct tar_sparse *sp;
	size_t nsp, sp_cap;
	size_t map_idx, map_count; /* pax 1.0 map: numbers read / expected */
	uint64_t map_num, map_bytes;
	unsigned map_digits;
	struct name_buf hlink;	    /* link name from the header block */
	const struct name_buf *lnk; /* the link name that applies */
	const char *name_why;	    /* why the chosen name is unusable */
	char why[128];		    /* formatted reasons point here */
	const char *cur;	    /* member name for messages */
	bool skip_ext;		    /* ST_SKIP is extended-header padding */
	size_t rawlen;
	char raw[TAR_MAX_NAME + 1];  /* raw member name */
	char path[TAR_MAX_NAME + 1]; /* normalised */
	char link[TAR_MAX_NAME + 1];

	bool seen_header; /* a header with a valid checksum came by */
	int err;
	char errmsg[TAR_MAX_NAME + 256];
	char warnmsg[TAR_MAX_NAME + 256];
};

/* Records the error (message from fmt) and stops the parser; returns err. */
int tar_fail(struct tar_parser *p, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- tar_ext.c ---- */

/* A numeric header field: octal padded with spaces/NULs, or base-256. An
 * empty field reads as 0 (as libarchive does). */
int tar_parse_num(const unsigned char *f, size_t n, int64_t *out);

/* A name from a header or pax record, kept if it fits (else marked too
 * long or holding a NUL); an empty value unsets it. */
void tar_name_set(struct name_buf *nb, const char *s, size_t len);

/* Drops empty, "." components and leading "/"; NULL or why it is bad (a
 * ".." component, or one longer than NAME_MAX that no lookup could reach).
 * dst holds at least len + 1 bytes. */
const char *tar_normalise(const char *src, size_t len, char *dst);

/* One more sparse segment, within TAR_MAX_SPARSE. */
int tar_sparse_add(struct tar_parser *p, uint64_t off, uint64_t len);

/* Drops empty segments and checks order, bounds and the stored total. */
int tar_sparse_check(struct tar_parser *p, uint64_t avail, uint64_t *sum);

/* Old GNU sparse pairs (offset[12], numbytes[12]); stops at an empty one. */
int tar_sparse_old(struct tar_parser *p, const unsigned char *f, size_t n);

/* Parses "LEN key=value\n" records; LEN counts the whole record. */
int tar_pax_parse(struct tar_parser *p, char *buf, size_t len, bool global);

#endif
