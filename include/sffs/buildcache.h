/* SPDX-License-Identifier: MIT */
/*
 * buildcache.h - a Spack buildcache (layout v3, else v2) as a set of
 * packages, each a package tarball (a blob) whose install prefix sffs
 * mounts lazily like any artifact.
 *
 * Layout v3 (Spack >= 1.0):
 *   v3/layout.json
 *   v3/manifests/index/index.manifest.json     (unsigned) -> index blob
 *   v3/manifests/spec/<name>/<name>-<version>-<hash>.spec.manifest.json
 *                                              (clearsigned when signed)
 *   v3/manifests/key/<FPR>.key.manifest.json   -> key blob
 *   blobs/sha256/<first 2 hex>/<sha256>
 * Layout v2:
 *   build_cache/index.json
 *   build_cache/<arch>-<compiler>-<cver>-<name>-<ver>-<hash>.spec.json.sig
 *                                              (or .spec.json unsigned)
 *   build_cache/<arch>/<compiler>-<cver>/<name>-<ver>/<same>.spack
 *   build_cache/_pgp/<FPR>.pub
 *
 * The pure parts (bc_parse_*, bc_*_path, bc_package_name, bc_writable_dirs:
 * catalog/bcparse.c, JSON through json-c) do no I/O; every input is bounded and
 * malformed input returns -EINVAL with a reason, never a crash. No FUSE.
 */
#ifndef SFFS_BUILDCACHE_H
#define SFFS_BUILDCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BC_MAX_DOC (64u * 1024 * 1024) /* an index or manifest */
#define BC_MAX_SPECS 100000u
#define BC_MAX_BLOBS 16u /* data[] entries of one manifest */
#define BC_FIELD_MAX 128 /* name, version, arch, compiler fields */

/* ---- pure parsers ---- */

/* One data[] entry of a v3 manifest. Unknown keys are ignored. */
struct bc_blob {
	char media_type[BC_FIELD_MAX];
	char compression[16];	 /* "gzip", "none", ... ("" if absent) */
	char checksum[65];	 /* lower-case hex sha256 of the stored bytes */
	uint64_t content_length; /* stored bytes */
};

struct bc_manifest {
	size_t n;
	struct bc_blob data[BC_MAX_BLOBS];
};

#define BC_MEDIA_TARBALL "application/vnd.spack.install.v2.tar+gzip"
#define BC_MEDIA_SPEC "application/vnd.spack.spec.v5+json"
#define BC_MEDIA_INDEX "application/vnd.spack.db.v8+json"
#define BC_MEDIA_KEY "application/pgp-keys"

/*
 * A v3 manifest (index, spec or key manifest; for a signed spec manifest,
 * the text trust_verify_clearsigned handed out). Requires "version": 3
 * and a data array of objects each with mediaType, checksumAlgorithm
 * "sha256", a 64-hex checksum and a contentLength; 0 or -EINVAL (reason
 * in err).
 */
int bc_parse_manifest(const char *doc, size_t len, struct bc_manifest *out,
		      char *err, size_t errlen);
/* The entry of media type mt, or NULL. */
const struct bc_blob *bc_manifest_find(const struct bc_manifest *m,
				       const char *mt);

/* One install of a buildcache's database (v3 index blob: db v8; v2
 * index.json: db v6/v7). */
struct bc_spec {
	char name[BC_FIELD_MAX];
	char version[BC_FIELD_MAX];
	char hash[33];		     /* 32 base32 characters [a-z2-7] */
	char platform[BC_FIELD_MAX]; /* arch.platform, e.g. "linux" */
	char os[BC_FIELD_MAX];	     /* arch.platform_os, "ubuntu22.04" */
	char target[BC_FIELD_MAX];   /* arch.target (or its name) */
	/* Spack's {compiler.name}: spec.compiler (formats <= v4), else
	 * annotations.compiler "gcc@=10.2.1" (a spec Spack 1.0 converted),
	 * else the name of the direct dependency providing c, cxx or
	 * fortran (in that order; Spack >= 1.0), looked up among the
	 * database's installs, else "none" (v2 file names need it) */
	char compiler[BC_FIELD_MAX];
	char compiler_version[BC_FIELD_MAX]; /* "11.4.0" (a leading '=' of
					      * a concrete version dropped),
					      * or "none" */
};

/*
 * The installs of a database document that are in the buildcache
 * (in_buildcache true, or absent), in the document's order: *specs
 * malloc'd (free it), *n of them (<= BC_MAX_SPECS). Each must have a
 * name, a version, an arch and a 32-character hash of Spack's base32
 * alphabet [a-z2-7] (the installs key, equal to spec.hash if that is
 * there; Spack's file-name regex allows [a-z0-9], but b32encode never
 * makes 0, 1, 8 or 9); name, version, the arch and compiler fields must
 * be non-empty and hold no '/' and no NUL, and must not be "." or "..".
 * database.version must be "6", "7" (v2 index.json) or "8" (v3).
 * 0 or -EINVAL (-ENOMEM).
 */
int bc_parse_db(const char *doc, size_t len, struct bc_spec **specs, size_t *n,
		char *err, size_t errlen);

/*
 * A v2 spec document (the signed text of .spec.json.sig, or .spec.json):
 * its binary_cache_checksum (hash_algorithm "sha256") into tarball
 * (checksum set, content_length 0: v2 does not say; media_type
 * BC_MEDIA_TARBALL, compression "gzip"), after checking that the spec's
 * node for expect->hash has expect's name and version, and that
 * buildcache_layout_version is 1 or 2 (Spack 0.20-0.22: a gzip tar of
 * the prefix; 0 or absent was a tar holding a tarball). 0 or -EINVAL.
 */
int bc_parse_v2_spec(const char *doc, size_t len, const struct bc_spec *expect,
		     struct bc_blob *tarball, char *err, size_t errlen);

/*
 * A v3 spec blob (the BC_MEDIA_SPEC entry of a spec manifest, decompressed;
 * a v5 spec document): its spec.nodes must hold a node whose hash is
 * expect->hash, with expect's name and version. A signed manifest vouches
 * for this blob's digest, not for the path it was found under: without
 * this check, whoever can write the mirror serves one signed package under
 * another's name. 0 or -EINVAL (err names what the spec says and what was
 * expected).
 */
int bc_parse_v3_spec(const char *doc, size_t len, const struct bc_spec *expect,
		     char *err, size_t errlen);
#define BC_MAX_SPEC (8u * 1024 * 1024) /* a spec blob, decompressed */

/* "<name>-<version>-<first 7 of hash>": the directory a package gets. */
int bc_package_name(const struct bc_spec *s, char *buf, size_t len);

/* Paths relative to the mirror root (no leading '/'); 0, or -ENAMETOOLONG
 * if buf is too small (buf then holds ""), -EINVAL for a sha256 that is
 * not 64 hex digits (either case; the path has lower case) or a
 * fingerprint that is not 1-64 hex digits. */
int bc_v3_spec_manifest_path(const struct bc_spec *s, char *buf, size_t len);
int bc_v3_blob_path(const char *sha256hex, char *buf, size_t len);
int bc_v3_key_manifest_path(const char *fpr, char *buf, size_t len);
/* v2: "<platform>-<os>-<target>-<compiler>-<cver>-<name>-<ver>-<hash>"
 * plus ".spec.json.sig" / ".spec.json" (signed true / false), and the
 * tarball "<platform>-<os>-<target>/<compiler>-<cver>/<name>-<ver>/
 * <same>.spack", both under "build_cache/". */
int bc_v2_spec_path(const struct bc_spec *s, bool sig, char *buf, size_t len);
int bc_v2_tarball_path(const struct bc_spec *s, char *buf, size_t len);
int bc_v2_key_path(const char *fpr, char *buf, size_t len);

/* ---- listing a buildcache (catalog/buildcache.c: fetches, verifies) ---- */

struct trust;
struct fetch_opts;

#define BC_DIR_MAX 64 /* a package directory's name (CATALOG_NAME_MAX) */

/* A package that passed: its signed manifest (or .spec.json.sig)
 * verified against a trusted key, unless verify is off. */
struct bc_package {
	char dir[BC_DIR_MAX + 1]; /* <name>-<version>-<hash7> */
	char *url;		  /* its tarball blob (malloc'd) */
	unsigned char sha256[32]; /* of the blob, as signed */
	char signer[41];	  /* fingerprint, or "" (verify off) */
	char hash[33];		  /* its full DAG hash */
	/* the spec's name and version, as listed (struct bc_spec) */
	char name[BC_FIELD_MAX];
	char version[BC_FIELD_MAX];
};

struct bc_listing {
	int layout; /* 3 or 2 */
	struct bc_package *pkgs;
	size_t n;
	size_t hidden; /* packages that did not verify */
	/* a manifest the network failed to bring (5xx, reset, timeout,
	 * 403): that package is missing from pkgs but not refused, so a
	 * caller hides nothing on this listing and lists again soon */
	bool incomplete;
	char *index; /* the database document */
	size_t index_len;
	uint64_t requests;
};

/*
 * Lists the buildcache at base (a mirror root ending in '/'): layout v3
 * where base/v3/layout.json exists, else v2. With trust, keys the cache
 * offers for trusted fingerprints are added (as offered keys), and a
 * package is listed only if its manifest verifies; each one hidden is
 * logged with why. Without trust (verify=off) unsigned and signed
 * manifests are read unchecked. 0 and *out filled (free with
 * bc_listing_free), or -errno (no buildcache there, the index is
 * unusable: logged).
 */
int bc_list(const char *base, const struct fetch_opts *fo, struct trust *trust,
	    struct bc_listing *out);
void bc_listing_free(struct bc_listing *l);

/* The fingerprints whose offered keys a trust set holds already, so that
 * they are fetched and added once, not at every listing (one per catalog;
 * thread safe). bc_keyset_free(NULL) does nothing. */
struct bc_keyset;
struct bc_keyset *bc_keyset_new(void);
void bc_keyset_free(struct bc_keyset *k);
/* bc_list, skipping the offered keys of fingerprints in seen and adding
 * there those it adds to trust (seen NULL: as bc_list). */
int bc_list_seen(const char *base, const struct fetch_opts *fo,
		 struct trust *trust, struct bc_keyset *seen,
		 struct bc_listing *out);

/* The install prefix inside a package tarball's tree: the shortest
 * directory holding .spack/binary_distribution. 0 and *node, or
 * -ENOENT. */
struct tree;
int bc_find_prefix(const struct tree *t, uint32_t *node);

/*
 * World-writable directories (any mode with S_IWOTH, sticky or not) of
 * tree t at or under node root (0: the whole tree; a package: its
 * prefix). A Slurm Factory view ships some (Pyxis' share/enroot/
 * enroot-data) that programs expect to write into; the mount is
 * read-only. The first BC_WRITABLE_SHOWN paths (relative to root, "."
 * for root itself; a path deeper than BC_WRITABLE_DEPTH components is
 * cut at the root end as ".../") go to buf, '\n'-separated (buf "" if
 * none; cut at len). Returns how many there are in all. One pass over
 * the nodes and, per path shown, over its ancestors' entries; no
 * allocation. Thread safe on a finished tree.
 */
#define BC_WRITABLE_SHOWN 8u
#define BC_WRITABLE_DEPTH 64u
size_t bc_writable_dirs(const struct tree *t, uint32_t root, char *buf,
			size_t len);

/*
 * bc_writable_dirs, logged: none, nothing; else one warning "<where>:
 * N world-writable directories, read-only in the mount: <paths>; to
 * write there, bind-mount a tmpfs over each (sffs(8))". where names the
 * artifact as the mount shows it (e.g. "MNT/25.11/noble"). Returns the
 * count. The caller logs once per artifact, not per attach.
 */
size_t bc_warn_writable(const struct tree *t, uint32_t root, const char *where);

/* ---- a package's .spack/binary_distribution (catalog/bcinfo.c) ---- */

/*
 * Spack writes it with syaml.dump(get_buildinfo_dict(), flow style); older
 * caches and hand-made ones may use block style. Parsed with libyaml's
 * event API (never its document loader), so nothing grows without bound.
 */
#define BC_INFO_MAX (1u << 20)	  /* the file, bytes */
#define BC_INFO_MAX_FILES 200000u /* entries of each relocate_* list */
#define BC_INFO_MAX_DEPS 10000u	  /* hash_to_prefix entries */
#define BC_INFO_MAX_DEPTH 64u	  /* nesting of an ignored key's value */

#include "sffs/relocate.h"

struct bc_dep {
	char hash[33]; /* 32 characters of [a-z2-7] */
	char *prefix;  /* its old (build time) prefix, absolute */
};

struct bc_buildinfo {
	char *buildpath;	  /* old layout root (required) */
	char *relative_prefix;	  /* required */
	char *sbang_install_path; /* NULL if absent */
	char *spackprefix;	  /* NULL if absent */
	struct bc_dep *deps;	  /* document order */
	size_t ndeps;
	char **binaries; /* relocate_binaries, relative to the prefix */
	size_t nbinaries;
	char **textfiles; /* relocate_textfiles */
	size_t ntextfiles;
	char **links; /* relocate_links */
	size_t nlinks;
	bool has_lists; /* any relocate_* key present */
};

/*
 * Parses a .spack/binary_distribution document (untrusted, len bytes, no
 * NUL needed). One top-level mapping; unknown keys are skipped whole
 * (nesting up to BC_INFO_MAX_DEPTH). buildpath, sbang_install_path,
 * spackprefix and every dependency prefix must be absolute;
 * relative_prefix and every relocate_* entry relative and not empty;
 * all of them scalars without NUL and without a ".." component, shorter
 * than PATH_MAX. Hashes are 32 characters of [a-z2-7]. Dependencies come
 * from hash_to_prefix, else from prefix_to_hash inverted (a hash given
 * twice keeps its first place and its last prefix, as Python's dict).
 * Refused: duplicate keys (top level, and in hash_to_prefix or
 * prefix_to_hash), anchors and aliases, more than one document, a
 * document longer than BC_INFO_MAX, lists longer than BC_INFO_MAX_FILES,
 * more than BC_INFO_MAX_DEPS dependencies.
 * Returns 0 with *out filled (free with bc_buildinfo_free), or -EINVAL
 * with a reason naming the key in err, or -ENOMEM; on an error *out is
 * empty (zeroed). Pure and thread safe.
 */
int bc_parse_buildinfo(const char *doc, size_t len, struct bc_buildinfo *out,
		       char *err, size_t errlen);
/* Frees what b holds and zeroes it; NULL or a zeroed b does nothing. */
void bc_buildinfo_free(struct bc_buildinfo *b);

/* Where a dependency (by its full hash) is in the mount: 0 and its
 * directory (absolute) in buf, or -ENOENT (then only the layout root
 * covers its prefix, as in Spack). Any other negative errno fails
 * bc_buildinfo_maps with it. */
typedef int (*bc_dep_lookup_fn)(void *arg, const char *hash, char *buf,
				size_t len);

struct bc_reloc_maps {
	struct reloc_map bin, text; /* pairs point into the struct's own
				     * storage */
	/* private: the pairs' arrays; every string is malloc'd */
	struct reloc_pair *bin_pairs_, *text_pairs_;
};

/*
 * The maps relocate_package builds, in its order:
 *   text only: sbang_install_path -> new_root + "/bin/sbang";
 *   each dependency lookup finds, in document order: old prefix -> its
 *     directory (the entry whose prefix is the package's own old prefix
 *     is skipped: it is no dependency);
 *   buildpath + "/" + relative_prefix -> new_prefix;
 *   buildpath -> new_root;
 *   text only: "#!/bin/bash " + spackprefix + "/bin/sbang" ->
 *     "#!/bin/sh " + new_root + "/bin/sbang" (Spack's sbang_shebang_line;
 *     only when spackprefix is given).
 * An old prefix given again keeps its first place and takes the later
 * new prefix (Spack's OrderedDict). Identity pairs stay (the engine drops
 * them). lookup may be NULL (no dependency found). new_prefix and
 * new_root must be absolute. Returns 0 with *out filled (free with
 * bc_reloc_maps_free; it does not point into bi), -EINVAL (reason in
 * err: a bad new path, an own prefix of PATH_MAX or more, a lookup
 * answer that is not an absolute NUL-terminated path), -ENOMEM, or
 * lookup's error. *out is zeroed on an error.
 */
int bc_buildinfo_maps(const struct bc_buildinfo *bi, const char *new_prefix,
		      const char *new_root, bc_dep_lookup_fn lookup, void *arg,
		      struct bc_reloc_maps *out, char *err, size_t errlen);
/* Frees the maps and zeroes m; NULL or a zeroed m does nothing. */
void bc_reloc_maps_free(struct bc_reloc_maps *m);
/* The first pair of m->bin whose new prefix is longer than its old one
 * (a binary cannot hold it: the package cannot be relocated), or NULL. */
const struct reloc_pair *bc_reloc_maps_too_long(const struct bc_reloc_maps *m);

#endif
