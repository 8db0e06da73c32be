/* SPDX-License-Identifier: MIT */
/*
 * bcparse.c - the pure parts of buildcache.h: Spack's v3 manifests, its
 * buildcache databases (db v6/v7 in a v2 index.json, db v8 in a v3 index
 * blob), v2 spec documents, and the paths Spack names things by.
 *
 * Every document goes through one strict json-c tokener with a depth
 * limit (parse_doc): no NUL byte, nothing but white space after the
 * value, at most BC_MAX_DOC bytes, valid UTF-8. Fields are then read
 * with type checks, and every string copied into a fixed field is
 * checked for length first: too long is an error, never cut. Unknown
 * keys are ignored everywhere, as Spack's own schemas allow.
 */
#include "sffs/buildcache.h"
#include "sffs/tree.h"

#include "bcjson_i.h"
#include "catalog_i.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Spack's documents nest about 6 deep (spec, nodes, node, arch, target,
 * parents); 32 leaves room for parameters without letting a hostile
 * document recurse far. */
#define BC_JSON_DEPTH 32
#define BC_HASH_LEN 32

void bc_err_clear(char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The tokener's verdict on the whole of doc[0..len). */
static int tokenize(struct json_tokener *tok, const char *doc, size_t len,
		    const char *what, struct json_object **out, char *err,
		    size_t errlen)
{
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	obj = json_tokener_parse_ex(tok, doc, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!obj && jerr == json_tokener_continue)
		return catalog_fail(err, errlen, "%s is truncated", what);
	if (!obj || jerr != json_tokener_success) {
		json_object_put(obj);
		return catalog_fail(err, errlen, "%s is not JSON: %s", what,
				    json_tokener_error_desc(jerr));
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (!is_ws(doc[end])) {
			json_object_put(obj);
			return catalog_fail(
			    err, errlen,
			    "%s has trailing bytes after offset %zu", what,
			    end);
		}
	*out = obj;
	return 0;
}

/* A NUL anywhere, or a single quote outside strings: json-c takes
 * single-quoted names even when strict, JSON (and Spack) does not. */
static int prescan(const char *doc, size_t len, const char *what, char *err,
		   size_t errlen)
{
	bool in_str = false;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = doc[i];

		if (c == '\0')
			return catalog_fail(err, errlen, "%s holds a NUL byte",
					    what);
		if (in_str) {
			if (c == '\\')
				i++; /* a NUL after it is caught by json-c */
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '\'') {
			return catalog_fail(
			    err, errlen,
			    "%s is not JSON: a single quote at offset "
			    "%zu",
			    what, i);
		}
	}
	return 0;
}

/* doc as a JSON object (put it), or -EINVAL/-ENOMEM with a reason. */
int bc_parse_doc(const char *doc, size_t len, const char *what,
		 struct json_object **out, char *err, size_t errlen)
{
	struct json_tokener *tok;
	int rc;

	*out = NULL;
	if (!doc || len == 0)
		return catalog_fail(err, errlen, "%s is empty", what);
	if (len > BC_MAX_DOC)
		return catalog_fail(err, errlen, "%s is larger than %u bytes",
				    what, BC_MAX_DOC);
	rc = prescan(doc, len, what, err, errlen);
	if (rc)
		return rc;
	tok = json_tokener_new_ex(BC_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
					JSON_TOKENER_VALIDATE_UTF8);
	rc = tokenize(tok, doc, len, what, out, err, errlen);
	json_tokener_free(tok);
	if (rc == 0 && !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		rc = catalog_fail(err, errlen, "%s is not a JSON object", what);
	}
	return rc;
}

/* The member key of obj if it has type t; NULL if absent. A member of
 * another type is an error (*rc). */
struct json_object *bc_member(struct json_object *obj, const char *key,
			      enum json_type t, int *rc, char *err,
			      size_t errlen)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	if (!json_object_is_type(v, t)) {
		*rc = catalog_fail(err, errlen, "\"%s\" is a %s, not a %s", key,
				   json_type_to_name(json_object_get_type(v)),
				   json_type_to_name(t));
		return NULL;
	}
	return v;
}

/* Like member, but absence is an error too. */
struct json_object *bc_need(struct json_object *obj, const char *key,
			    enum json_type t, char *err, size_t errlen)
{
	int rc = 0;
	struct json_object *v = bc_member(obj, key, t, &rc, err, errlen);

	if (!v && !rc)
		catalog_fail(err, errlen, "no \"%s\"", key);
	return v;
}

/* Copies JSON string v into dst[cap]: no NUL inside, shorter than cap. */
static int copy_str(char *dst, size_t cap, struct json_object *v,
		    const char *key, char *err, size_t errlen)
{
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);

	if (memchr(s, '\0', n))
		return catalog_fail(err, errlen, "\"%s\" holds a NUL", key);
	if (n >= cap)
		return catalog_fail(err, errlen,
				    "\"%s\" is longer than %zu bytes", key,
				    cap - 1);
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* The string member key of obj into dst[cap]; absent is an error. */
static int get_str(struct json_object *obj, const char *key, char *dst,
		   size_t cap, char *err, size_t errlen)
{
	struct json_object *v =
	    bc_need(obj, key, json_type_string, err, errlen);

	if (!v)
		return -EINVAL;
	return copy_str(dst, cap, v, key, err, errlen);
}

/* sha256 hex of either case into dst[65], lower case. */
int bc_get_sha256(const char *s, size_t n, char dst[BC_SHA256_LEN + 1],
		  const char *key, char *err, size_t errlen)
{
	size_t i;

	if (n != BC_SHA256_LEN)
		return catalog_fail(
		    err, errlen, "\"%s\" is %zu characters, not 64 hex digits",
		    key, n);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return catalog_fail(err, errlen, "\"%s\" is not hex",
					    key);
		dst[i] = c;
	}
	dst[n] = '\0';
	return 0;
}

/* ---- manifests ---- */

static int parse_blob(struct json_object *o, struct bc_blob *b, char *err,
		      size_t errlen)
{
	struct json_object *v;
	char alg[16];
	int64_t len;
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return catalog_fail(err, errlen,
				    "a data[] entry is not an object");
	rc = get_str(o, "mediaType", b->media_type, sizeof(b->media_type), err,
		     errlen);
	if (rc)
		return rc;
	/* Spack's schema requires compression; "" stands for absent. */
	v = bc_member(o, "compression", json_type_string, &rc, err, errlen);
	if (rc)
		return rc;
	if (v && copy_str(b->compression, sizeof(b->compression), v,
			  "compression", err, errlen))
		return -EINVAL;
	rc = get_str(o, "checksumAlgorithm", alg, sizeof(alg), err, errlen);
	if (rc)
		return rc;
	if (strcmp(alg, "sha256") != 0)
		return catalog_fail(
		    err, errlen, "checksumAlgorithm \"%s\" is not sha256", alg);
	v = bc_need(o, "checksum", json_type_string, err, errlen);
	if (!v)
		return -EINVAL;
	rc = bc_get_sha256(json_object_get_string(v),
			   (size_t)json_object_get_string_len(v), b->checksum,
			   "checksum", err, errlen);
	if (rc)
		return rc;
	v = bc_need(o, "contentLength", json_type_int, err, errlen);
	if (!v)
		return -EINVAL;
	/* json-c keeps integers past INT64_MAX as uint64 and clamps
	 * get_int64 to INT64_MAX: refuse that too, lengths are off_t. */
	len = json_object_get_int64(v);
	if (len < 0 || len == INT64_MAX)
		return catalog_fail(err, errlen,
				    "contentLength %s out of range",
				    json_object_get_string(v));
	b->content_length = (uint64_t)len;
	return 0;
}

static int check_version3(struct json_object *root, char *err, size_t errlen)
{
	struct json_object *v =
	    bc_need(root, "version", json_type_int, err, errlen);

	if (!v)
		return -EINVAL;
	if (json_object_get_int64(v) != 3)
		return catalog_fail(err, errlen, "manifest version %s, not 3",
				    json_object_get_string(v));
	return 0;
}

int bc_parse_manifest(const char *doc, size_t len, struct bc_manifest *out,
		      char *err, size_t errlen)
{
	struct json_object *root, *data;
	size_t i, n;
	int rc;

	bc_err_clear(err, errlen);
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	rc = bc_parse_doc(doc, len, "manifest", &root, err, errlen);
	if (rc)
		return rc;
	rc = check_version3(root, err, errlen);
	if (rc)
		goto out_put;
	data = bc_need(root, "data", json_type_array, err, errlen);
	if (!data) {
		rc = -EINVAL;
		goto out_put;
	}
	n = json_object_array_length(data);
	if (n > BC_MAX_BLOBS) {
		rc = catalog_fail(err, errlen,
				  "manifest has %zu blobs, more than %u", n,
				  BC_MAX_BLOBS);
		goto out_put;
	}
	for (i = 0; i < n && !rc; i++)
		rc = parse_blob(json_object_array_get_idx(data, i),
				&out->data[i], err, errlen);
	out->n = n;
out_put:
	json_object_put(root);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

const struct bc_blob *bc_manifest_find(const struct bc_manifest *m,
				       const char *mt)
{
	size_t i;

	if (!m || !mt)
		return NULL;
	for (i = 0; i < m->n && i < BC_MAX_BLOBS; i++)
		if (!strcmp(m->data[i].media_type, mt))
			return &m->data[i];
	return NULL;
}

/* ---- databases ---- */

/* A name, version or arch field: non-empty, no '/', not "." or "..". */
static int check_component(const char *s, const char *key, char *err,
			   size_t errlen)
{
	if (!*s)
		return catalog_fail(err, errlen, "empty \"%s\"", key);
	if (strchr(s, '/'))
		return catalog_fail(err, errlen, "\"%s\" holds a '/'", key);
	if (!strcmp(s, ".") || !strcmp(s, ".."))
		return catalog_fail(err, errlen, "\"%s\" is \"%s\"", key, s);
	return 0;
}

bool bc_hash_ok(const char *s, size_t n)
{
	size_t i;

	if (n != BC_HASH_LEN)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '2' && s[i] <= '7')))
			return false;
	return true;
}

/* arch.target: a string ("x86_64_v3") or an object with a "name"
 * (a microarchitecture, as archspec writes it). */
static int parse_target(struct json_object *arch, struct bc_spec *s, char *err,
			size_t errlen)
{
	struct json_object *t;

	if (!json_object_object_get_ex(arch, "target", &t))
		return catalog_fail(err, errlen, "no \"target\" in arch");
	if (json_object_is_type(t, json_type_string))
		return copy_str(s->target, sizeof(s->target), t, "target", err,
				errlen);
	if (json_object_is_type(t, json_type_object))
		return get_str(t, "name", s->target, sizeof(s->target), err,
			       errlen);
	return catalog_fail(err, errlen,
			    "\"target\" is neither a string nor an object");
}

static int parse_arch(struct json_object *spec, struct bc_spec *s, char *err,
		      size_t errlen)
{
	struct json_object *arch =
	    bc_need(spec, "arch", json_type_object, err, errlen);
	int rc;

	if (!arch)
		return -EINVAL;
	rc = get_str(arch, "platform", s->platform, sizeof(s->platform), err,
		     errlen);
	if (!rc)
		rc = get_str(arch, "platform_os", s->os, sizeof(s->os), err,
			     errlen);
	if (!rc)
		rc = parse_target(arch, s, err, errlen);
	if (!rc)
		rc = check_component(s->platform, "platform", err, errlen);
	if (!rc)
		rc = check_component(s->os, "platform_os", err, errlen);
	if (!rc)
		rc = check_component(s->target, "target", err, errlen);
	return rc;
}

/* A concrete version may be written "=11.4.0"; Spack's
 * {compiler.version} in file names has no '='. */
static void drop_eq(char *v)
{
	if (v[0] == '=')
		memmove(v, v + 1, strlen(v));
}

static void set_compiler(struct bc_spec *s, const char *name, size_t nlen,
			 const char *ver)
{
	snprintf(s->compiler, sizeof(s->compiler), "%.*s", (int)nlen, name);
	snprintf(s->compiler_version, sizeof(s->compiler_version), "%s", ver);
	drop_eq(s->compiler_version);
}

/* spec.compiler {name, version}: spec formats up to v4 (Spack < 1.0). */
static int compiler_field(struct json_object *c, struct bc_spec *s, char *err,
			  size_t errlen)
{
	int rc;

	rc = get_str(c, "name", s->compiler, sizeof(s->compiler), err, errlen);
	if (!rc)
		rc = get_str(c, "version", s->compiler_version,
			     sizeof(s->compiler_version), err, errlen);
	if (!rc)
		drop_eq(s->compiler_version);
	return rc;
}

/* annotations.compiler "gcc@=10.2.1": what Spack 1.0 keeps of the
 * compiler of a spec it read in an older format (original_specfile_version
 * < 5). 1 if found, 0 if absent, or -EINVAL. */
static int compiler_annotation(struct json_object *spec, struct bc_spec *s,
			       char *err, size_t errlen)
{
	struct json_object *a, *c;
	const char *v, *at;
	int rc = 0;

	a = bc_member(spec, "annotations", json_type_object, &rc, err, errlen);
	if (!a)
		return rc;
	c = bc_member(a, "compiler", json_type_string, &rc, err, errlen);
	if (!c)
		return rc;
	v = json_object_get_string(c);
	at = strchr(v, '@');
	if (strlen(v) >= BC_FIELD_MAX)
		return catalog_fail(err, errlen,
				    "annotations.compiler is longer than %d "
				    "bytes",
				    BC_FIELD_MAX - 1);
	if (!at || at == v)
		return catalog_fail(err, errlen,
				    "annotations.compiler \"%.40s\" is not "
				    "name@version",
				    v);
	set_compiler(s, v, (size_t)(at - v), at + 1);
	return 1;
}

/* Whether the dependency edge dep provides the virtual lang (its
 * parameters.virtuals lists it). */
static bool provides(struct json_object *dep, const char *lang)
{
	struct json_object *p, *virt, *x;
	size_t i, n;

	if (!json_object_object_get_ex(dep, "parameters", &p) ||
	    !json_object_object_get_ex(p, "virtuals", &virt) ||
	    !json_object_is_type(virt, json_type_array))
		return false;
	n = json_object_array_length(virt);
	for (i = 0; i < n; i++) {
		x = json_object_array_get_idx(virt, i);
		if (json_object_is_type(x, json_type_string) &&
		    !strcmp(json_object_get_string(x), lang))
			return true;
	}
	return false;
}

/* The hash of the first direct dependency providing c, else cxx, else
 * fortran: the node Spack >= 1.0 formats as {compiler}. NULL if none. */
static const char *compiler_dep(struct json_object *spec)
{
	static const char *const langs[] = {"c", "cxx", "fortran"};
	struct json_object *deps, *d, *h;
	size_t i, k, n;

	if (!json_object_object_get_ex(spec, "dependencies", &deps) ||
	    !json_object_is_type(deps, json_type_array))
		return NULL;
	n = json_object_array_length(deps);
	for (k = 0; k < sizeof(langs) / sizeof(langs[0]); k++)
		for (i = 0; i < n; i++) {
			d = json_object_array_get_idx(deps, i);
			if (!json_object_is_type(d, json_type_object) ||
			    !provides(d, langs[k]))
				continue;
			if (json_object_object_get_ex(d, "hash", &h) &&
			    json_object_is_type(h, json_type_string))
				return json_object_get_string(h);
		}
	return NULL;
}

/* The compiler node's name and version, looked up by hash among the
 * database's installs (Spack keeps build-only nodes there with
 * in_buildcache false). 1 if found, 0 if not, or -EINVAL. */
static int compiler_node(struct json_object *spec, struct json_object *installs,
			 struct bc_spec *s, char *err, size_t errlen)
{
	struct json_object *rec, *node;
	const char *h = compiler_dep(spec);
	int rc;

	if (!h || !installs || !json_object_object_get_ex(installs, h, &rec) ||
	    !json_object_is_type(rec, json_type_object) ||
	    !json_object_object_get_ex(rec, "spec", &node) ||
	    !json_object_is_type(node, json_type_object))
		return 0;
	rc = get_str(node, "name", s->compiler, sizeof(s->compiler), err,
		     errlen);
	if (!rc)
		rc = get_str(node, "version", s->compiler_version,
			     sizeof(s->compiler_version), err, errlen);
	if (rc)
		return rc;
	drop_eq(s->compiler_version);
	return 1;
}

/*
 * The {compiler.name}-{compiler.version} of Spack's v2 file names:
 * spec.compiler (formats up to v4); else annotations.compiler (a spec
 * Spack 1.0 converted from an older format); else the dependency that
 * provides c, cxx or fortran (Spack 1.0 records the compiler as a node);
 * else "none-none" (a package built with no compiler).
 */
static int parse_compiler(struct json_object *spec,
			  struct json_object *installs, struct bc_spec *s,
			  char *err, size_t errlen)
{
	struct json_object *c;
	int rc = 0;

	c = bc_member(spec, "compiler", json_type_object, &rc, err, errlen);
	if (rc)
		return rc;
	if (c)
		rc = compiler_field(c, s, err, errlen);
	else {
		rc = compiler_annotation(spec, s, err, errlen);
		if (!rc)
			rc = compiler_node(spec, installs, s, err, errlen);
		if (!rc)
			set_compiler(s, "none", 4, "none");
		if (rc > 0)
			rc = 0;
	}
	if (!rc)
		rc = check_component(s->compiler, "compiler.name", err, errlen);
	if (!rc)
		rc = check_component(s->compiler_version, "compiler.version",
				     err, errlen);
	return rc;
}

/* The hash: the installs key, equal to spec.hash when that is there. */
static int parse_hash(const char *key, struct json_object *spec,
		      struct bc_spec *s, char *err, size_t errlen)
{
	struct json_object *h;
	int rc = 0;

	if (!bc_hash_ok(key, strlen(key)))
		return catalog_fail(
		    err, errlen,
		    "install key \"%.40s\" is not a 32-character "
		    "base32 hash",
		    key);
	h = bc_member(spec, "hash", json_type_string, &rc, err, errlen);
	if (rc)
		return rc;
	if (h && strcmp(json_object_get_string(h), key) != 0)
		return catalog_fail(err, errlen,
				    "install %s has spec.hash %.40s", key,
				    json_object_get_string(h));
	memcpy(s->hash, key, BC_HASH_LEN + 1);
	return 0;
}

static int parse_install(const char *key, struct json_object *rec,
			 struct json_object *installs, struct bc_spec *s,
			 char *err, size_t errlen)
{
	struct json_object *spec;
	int rc;

	memset(s, 0, sizeof(*s));
	spec = bc_need(rec, "spec", json_type_object, err, errlen);
	if (!spec)
		return -EINVAL;
	rc = parse_hash(key, spec, s, err, errlen);
	if (!rc)
		rc = get_str(spec, "name", s->name, sizeof(s->name), err,
			     errlen);
	if (!rc)
		rc = check_component(s->name, "name", err, errlen);
	if (!rc)
		rc = get_str(spec, "version", s->version, sizeof(s->version),
			     err, errlen);
	if (!rc)
		rc = check_component(s->version, "version", err, errlen);
	if (!rc)
		rc = parse_arch(spec, s, err, errlen);
	if (!rc)
		rc = parse_compiler(spec, installs, s, err, errlen);
	return rc;
}

/* database.version: "6" or "7" (v2 caches), "8" (v3). Spack writes a
 * string; an integer is taken too, as Spack's Version() would. */
static int check_db_version(struct json_object *db, char *err, size_t errlen)
{
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(db, "version", &v))
		return catalog_fail(err, errlen, "database has no \"version\"");
	if (!json_object_is_type(v, json_type_string) &&
	    !json_object_is_type(v, json_type_int))
		return catalog_fail(err, errlen, "database version is a %s",
				    json_type_to_name(json_object_get_type(v)));
	s = json_object_get_string(v);
	if (strcmp(s, "6") != 0 && strcmp(s, "7") != 0 && strcmp(s, "8") != 0)
		return catalog_fail(
		    err, errlen, "database version \"%.16s\" is not 6, 7 or 8",
		    s);
	return 0;
}

/* false when the record says in_buildcache: false; an error (*rc) when
 * that is not a boolean. */
static bool in_buildcache(struct json_object *rec, int *rc, char *err,
			  size_t errlen)
{
	struct json_object *v;

	v = bc_member(rec, "in_buildcache", json_type_boolean, rc, err, errlen);
	return !v || json_object_get_boolean(v);
}

static int parse_installs(struct json_object *installs, struct bc_spec *out,
			  size_t *n, char *err, size_t errlen)
{
	char why[256];
	int rc = 0;

	json_object_object_foreach(installs, key, rec)
	{
		if (!json_object_is_type(rec, json_type_object))
			return catalog_fail(
			    err, errlen, "install %.40s is not an object", key);
		if (!in_buildcache(rec, &rc, why, sizeof(why)) && !rc)
			continue;
		if (!rc)
			rc = parse_install(key, rec, installs, &out[*n], why,
					   sizeof(why));
		if (rc)
			return catalog_fail(err, errlen, "install %.40s: %s",
					    key, why);
		(*n)++;
	}
	return 0;
}

int bc_parse_db(const char *doc, size_t len, struct bc_spec **specs, size_t *n,
		char *err, size_t errlen)
{
	struct json_object *root, *db, *installs;
	struct bc_spec *out = NULL;
	size_t count, got = 0;
	int rc;

	bc_err_clear(err, errlen);
	if (!specs || !n)
		return -EINVAL;
	*specs = NULL;
	*n = 0;
	rc = bc_parse_doc(doc, len, "database", &root, err, errlen);
	if (rc)
		return rc;
	rc = -EINVAL;
	db = bc_need(root, "database", json_type_object, err, errlen);
	if (!db || check_db_version(db, err, errlen))
		goto out_put;
	installs = bc_need(db, "installs", json_type_object, err, errlen);
	if (!installs)
		goto out_put;
	count = (size_t)json_object_object_length(installs);
	if (count > BC_MAX_SPECS) {
		catalog_fail(err, errlen,
			     "database has %zu installs, more than %u", count,
			     BC_MAX_SPECS);
		goto out_put;
	}
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out) {
		rc = -ENOMEM;
		goto out_put;
	}
	rc = parse_installs(installs, out, &got, err, errlen);
	if (rc)
		goto out_free;
	*specs = out;
	*n = got;
	json_object_put(root);
	return 0;
out_free:
	free(out);
out_put:
	json_object_put(root);
	return rc;
}
