/* SPDX-License-Identifier: MIT */
/*
 * catalog_i.h - the catalog's pure parts: URL templates, version order,
 * S3 ListObjectsV2 listings and generated modulefiles. No I/O, no FUSE;
 * each is unit tested (tests/unit/test_catalog.c) and the listing parser
 * is fuzzed (tests/fuzz/fuzz_s3list.c). catalog.c builds on them.
 */
#ifndef SFFS_CATALOG_I_H
#define SFFS_CATALOG_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The layouts -o layout= names (relative to the catalog base). */
#define CATALOG_SEED_TEMPLATE                                                  \
	"{version}/{toolchain}/slurm-{version}-{toolchain}-software.tar.gz"
#define CATALOG_FACTORY_TEMPLATE                                               \
	"{toolchain}/{version}/{arch}/"                                        \
	"slurm-{version}-{toolchain}-{arch}-software.tar.gz"

#include "sffs/catalog.h" /* CATALOG_NAME_MAX */

/* Values of a template's placeholders; "" means not bound yet. */
struct catalog_vars {
	char version[CATALOG_NAME_MAX + 1];
	char toolchain[CATALOG_NAME_MAX + 1];
	char arch[CATALOG_NAME_MAX + 1];
};

/*
 * A usable placeholder value: 1 to CATALOG_NAME_MAX bytes of
 * [A-Za-z0-9._+], not starting with '.' (so never "." or ".."), no '-'
 * and no '/' (that keeps "slurm-{version}-{toolchain}-..." unambiguous).
 */
bool catalog_name_ok(const char *s);

/* Writes the reason into err (if any room); always -EINVAL. The pure
 * parsers' one way to refuse. */
int catalog_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A version additionally starts with a digit ("25.11", "26.05rc1"). */
bool catalog_version_ok(const char *s);
/* A Spack DAG hash: n == 32 characters of its base32 alphabet (RFC 4648,
 * lower case: [a-z2-7]). bcparse.c. */
bool bc_hash_ok(const char *s, size_t n);

/*
 * Checks a template: relative (no leading '/'), no empty segment ("//"),
 * no "." or ".." segment, no '?' or '#', only the placeholders {version},
 * {toolchain} and {arch}, both {version} and {toolchain} present, the
 * last segment non-empty (it names the file), no two placeholders next to
 * each other ("{version}{arch}": they could not be told apart).
 * 0, or -EINVAL with a one-line reason in err.
 */
int catalog_template_check(const char *tmpl, char *err, size_t errlen);

/* The template with every placeholder replaced by its value in v (each
 * must be catalog_name_ok). malloc'd; NULL with errno EINVAL (a
 * placeholder whose value is unset or not ok) or ENOMEM. */
char *catalog_template_expand(const char *tmpl, const struct catalog_vars *v);

/*
 * Matches text (one path segment: no '/') against pattern (one template
 * segment, which may hold literals and placeholders). A placeholder
 * already bound in v must match its value exactly; an unbound one matches
 * the longest-to-shortest run of name characters that lets the rest match
 * (backtracking), and must be catalog_name_ok (a {version} also
 * catalog_version_ok). On a match binds the unbound placeholders in v and
 * returns 0; otherwise returns -ENOENT and leaves v as it was.
 */
int catalog_segment_match(const char *pattern, const char *text,
			  struct catalog_vars *v);

/* Splits a template into segments at '/': *n segments, seg[k] a malloc'd
 * copy (free with catalog_segments_free). 0 or -ENOMEM / -EINVAL (more
 * than max segments). */
int catalog_template_segments(const char *tmpl, char **seg, size_t max,
			      size_t *n);
void catalog_segments_free(char **seg, size_t n);

/*
 * Version order, not string order: the strings are compared as runs of
 * digits (by numeric value, leading zeros ignored, any length) and runs
 * of other characters (bytewise); "9.0" < "23.11" < "24.2" < "24.11",
 * "25.11" < "25.11.1", "26.05rc1" < "26.05" is NOT attempted (plain run
 * comparison: "26.05" < "26.05rc1"). <0, 0, >0 like strcmp; equal only
 * for equal strings.
 */
int catalog_version_cmp(const char *a, const char *b);

/* The factory's name for this node's CPU (uname -m): x86_64 -> amd64,
 * aarch64 -> arm64, anything else as uname gives it. 0, or -errno. */
int catalog_node_arch(char *buf, size_t len);

/* ---- S3 ListObjectsV2 -------------------------------------------------- */

/* Bounds on one listing response (S3 gives at most 1000 entries). */
#define S3_LIST_MAX_BYTES (8u << 20)
#define S3_LIST_MAX_ENTRIES 10000
#define S3_KEY_MAX 1024

struct s3_object {
	char *key;
	uint64_t size;
	char *etag; /* as sent, quotes included; may be "" */
};

struct s3_listing {
	struct s3_object *objects; /* <Contents> */
	size_t nobjects;
	char **prefixes; /* <CommonPrefixes><Prefix> */
	size_t nprefixes;
	bool truncated;	  /* <IsTruncated>true */
	char *next_token; /* <NextContinuationToken>, or NULL */
};

/*
 * Parses one ListObjectsV2 response body (expat; namespace
 * http://s3.amazonaws.com/doc/2006-03-01/ or none). Refuses, with -EINVAL
 * and a reason in err: not XML, a root other than ListBucketResult (an
 * <Error> document gives its Code and Message), more than
 * S3_LIST_MAX_ENTRIES entries, a key or prefix longer than S3_KEY_MAX or
 * holding a NUL, a bad Size, IsTruncated true without a token. 0 and
 * *out filled (free with s3_listing_free), or -EINVAL / -ENOMEM.
 */
int s3_list_parse(const char *xml, size_t len, struct s3_listing *out,
		  char *err, size_t errlen);
void s3_listing_free(struct s3_listing *l);

/*
 * The URL of one listing request: bucket_url (e.g.
 * "https://bucket.s3.amazonaws.com" or "http://127.0.0.1:9000/bucket",
 * no trailing '/') + "?list-type=2&prefix=P&delimiter=D" (+
 * "&continuation-token=T" when token is not NULL; + "&max-keys=N" when
 * max_keys > 0), every value percent-encoded (RFC 3986 unreserved kept).
 * delimiter may be NULL (none). malloc'd, or NULL with errno ENOMEM.
 */
char *s3_list_url(const char *bucket_url, const char *prefix,
		  const char *delimiter, const char *token, unsigned max_keys);

/* ---- bounds on a listing of many pages -------------------------------- */

/*
 * A listing is as big as its server says: a hostile or broken one could
 * answer page after page (each up to S3_LIST_MAX_ENTRIES entries), or hand
 * back a continuation token it gave before, for ever. One listing (all
 * pages of one prefix) reads at most S3_LIST_PAGES_MAX pages and follows
 * no token twice; one refresh (all its listings) takes at most
 * S3_REFRESH_KEYS_MAX keys and common prefixes. S3 gives 1000 entries a
 * page, so a real listing stops at 64,000 keys of one prefix; a Slurm
 * Factory bucket holds a few hundred.
 */
#define S3_LIST_PAGES_MAX 64
#define S3_REFRESH_KEYS_MAX 100000
/* Pages of one refresh, all listings: a listing per version and the
 * root's make a few dozen; a server naming the same prefix on every page
 * would otherwise have it listed again each time. */
#define S3_REFRESH_PAGES_MAX 1024

struct s3_pager {
	unsigned pages; /* pages taken by this listing */
	size_t ntokens;
	char *tokens[S3_LIST_PAGES_MAX]; /* tokens this listing followed */
	size_t *keys;			 /* entries of the whole refresh */
	bool spent;			 /* *keys reached the bound */
	char why[128];			 /* why it stopped (-E2BIG) */
};

/* A pager for one listing; *keys counts the entries of the refresh it
 * belongs to (the caller's, shared by the refresh's listings, 0 when the
 * refresh starts). */
void s3_pager_init(struct s3_pager *p, size_t *keys);
/*
 * Each page parsed, before its entries are used: 0 (use them; counted), or
 * -E2BIG (the refresh's S3_REFRESH_KEYS_MAX would be passed: the page is
 * not used and the listing stops; p->why says so).
 */
int s3_pager_take(struct s3_pager *p, const struct s3_listing *l);
/*
 * After a page's entries are used: 1 (fetch the next page, with
 * l->next_token), 0 (the listing is complete), -E2BIG (stop: this was the
 * S3_LIST_PAGES_MAX-th page, the token was followed before in this
 * listing - a loop - or the page is truncated without a token; p->why
 * says which), -ENOMEM.
 */
int s3_pager_next(struct s3_pager *p, const struct s3_listing *l);
/* Frees the tokens kept; s3_pager_free(NULL) does nothing. */
void s3_pager_free(struct s3_pager *p);

/* ---- generated modulefiles -------------------------------------------- */

/*
 * The Lmod modulefile (Lua) for one artifact whose tarball root is
 * mounted at root (absolute, e.g. "/sf/25.11/noble"): the Slurm prefix is
 * root + "/view". whatis (Name, Version, Toolchain, Arch when not NULL,
 * Source: url), help, conflict("slurm"), PATH gets bin and sbin,
 * LD_LIBRARY_PATH lib, lib64 and lib/slurm and MANPATH share/man each only
 * where present (isDir, evaluated at load and unload, never while Lmod
 * only lists modules: mode() "spider"), SLURM_INSTALL_PREFIX and
 * SLURM_ROOT set to the prefix. Every string is written as a Lua long
 * bracket or escaped literal, so no path or URL can break out of it.
 * malloc'd NUL-terminated text, or NULL with errno ENOMEM.
 */
char *catalog_modulefile(const char *version, const char *toolchain,
			 const char *arch, const char *root, const char *url);

/*
 * The Lmod modulefile (Lua) for one Spack buildcache package mounted at
 * prefix (absolute: the package's directory as the mount shows it).
 * whatis (Name, Version, Hash, Source: url), help, then, each only where
 * present (as catalog_modulefile's): PATH gets bin and sbin, MANPATH
 * share/man, PKG_CONFIG_PATH lib/pkgconfig and lib64/pkgconfig, and with
 * libpath (a mount that does not relocate: the binaries' RPATHs still
 * name their build prefixes) LD_LIBRARY_PATH lib and lib64; always
 * CMAKE_PREFIX_PATH the prefix and <NAME>_ROOT (catalog_module_env) set
 * to it. Values are quoted as in catalog_modulefile. name, version, hash
 * and url are required; each argument at most 64 KiB. malloc'd
 * NUL-terminated text, or NULL with errno EINVAL (a missing, too long or
 * relative argument, an empty name) or ENOMEM.
 */
char *catalog_bc_modulefile(const char *name, const char *version,
			    const char *hash, const char *prefix,
			    const char *url, bool libpath);
/*
 * The variable a package's modulefile sets to its prefix: name in upper
 * case, every byte but [A-Z0-9] as '_', "_ROOT" appended, a leading '_'
 * when it would start with a digit ("py-numpy" -> "PY_NUMPY_ROOT"). 0, or
 * -ENAMETOOLONG (buf then "") or -EINVAL (name NULL or "").
 */
int catalog_module_env(const char *name, char *buf, size_t len);

/* ---- buildcache documents (bcparse.c, bcspec.c, bcpaths.c) ---- */

#define BC_SHA256_LEN 64 /* hex digits */
#define BC_FPR_MAX 64	 /* a v5 OpenPGP fingerprint; v4 has 40 */

/* The n characters at s as a lower-case SHA-256 hex string in dst; 0, or
 * -EINVAL with the field named key in err. */
int bc_get_sha256(const char *s, size_t n, char dst[BC_SHA256_LEN + 1],
		  const char *key, char *err, size_t errlen);

#endif
