/* SPDX-License-Identifier: MIT */
/*
 * buildcache.c - a Spack buildcache listed and verified (buildcache.h):
 * the database from the index, each package's manifest (v3) or spec
 * document (v2), checked against the trust set, giving the tarball blob
 * and its SHA-256 that every later read chains to.
 */
#include "sffs/buildcache.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <uthash.h>
#include <zlib.h>

#include "sffs/fetch.h"
#include "sffs/log.h"
#include "sffs/trust.h"
#include "sffs/tree.h"

#include "catalog_i.h"

#define CLEARSIGN_BEGIN "-----BEGIN PGP SIGNED MESSAGE-----"
#define CLEARSIGN_SIG "\n-----BEGIN PGP SIGNATURE-----"
#define KEY_MAX (1u << 20)
/* Manifests fetched and verified at once: a WAN round trip each. */
#define BC_FETCHERS 8

struct bc_ctx {
	const char *base;
	const struct fetch_opts *fo;
	struct trust *trust;
	struct bc_listing *l;
	atomic_uint_fast64_t requests;
	/* the packages' manifests, shared out among BC_FETCHERS threads */
	const struct bc_spec *specs;
	size_t nspecs;
	atomic_size_t next;
	struct bc_package *slots; /* one per spec; url NULL: hidden */
	atomic_int nomem;
	atomic_int neterr; /* a manifest the network failed to bring */
	struct bc_keyset *seen;
};

struct bc_key_seen {
	char fpr[TRUST_FPR_LEN + 1];
	UT_hash_handle hh;
};

struct bc_keyset {
	pthread_mutex_t lock; /* guards set */
	struct bc_key_seen *set;
};

struct bc_keyset *bc_keyset_new(void)
{
	struct bc_keyset *k = calloc(1, sizeof(*k));

	if (k)
		pthread_mutex_init(&k->lock, NULL);
	return k;
}

void bc_keyset_free(struct bc_keyset *k)
{
	struct bc_key_seen *e, *tmp;

	if (!k)
		return;
	HASH_ITER(hh, k->set, e, tmp)
	{
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc): HASH_ITER's tmp
		HASH_DEL(k->set, e);
		free(e);
	}
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static bool keyset_has(struct bc_keyset *k, const char *fpr)
{
	struct bc_key_seen *e = NULL;

	if (!k)
		return false;
	pthread_mutex_lock(&k->lock);
	HASH_FIND_STR(k->set, fpr, e);
	pthread_mutex_unlock(&k->lock);
	return e != NULL;
}

static void keyset_add(struct bc_keyset *k, const char *fpr)
{
	struct bc_key_seen *e, *old = NULL;

	if (!k || strlen(fpr) > TRUST_FPR_LEN)
		return;
	e = calloc(1, sizeof(*e));
	if (!e)
		return; /* fetched again next time: no harm */
	snprintf(e->fpr, sizeof(e->fpr), "%s", fpr);
	pthread_mutex_lock(&k->lock);
	HASH_FIND_STR(k->set, fpr, old);
	if (!old)
		HASH_ADD_STR(k->set, fpr, e);
	pthread_mutex_unlock(&k->lock);
	if (old)
		free(e);
}

/* An error of the network or the server (5xx, reset, timeout, 403), not
 * of the package: it hides nothing. */
static bool net_err(int rc)
{
	return rc == -EIO || rc == -ETIMEDOUT || rc == -EHOSTUNREACH ||
	       rc == -ECONNREFUSED || rc == -ECONNRESET || rc == -EACCES ||
	       rc == -EAGAIN;
}

static int get(struct bc_ctx *x, const char *rel, size_t max, char **body,
	       size_t *len, char *err, size_t errlen)
{
	char *url;
	int rc;

	if (asprintf(&url, "%s%s", x->base, rel) < 0)
		return -ENOMEM;
	atomic_fetch_add(&x->requests, 1);
	rc = fetch_document(url, x->fo, 0, max, body, len, err, errlen);
	free(url);
	return rc;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 64 hex digits (the parsers checked them) into 32 bytes. */
static int hex_to_bin(const char *hex, unsigned char out[32])
{
	for (int i = 0; i < 32; i++) {
		int hi = hex_digit(hex[2 * i]), lo;

		lo = hi < 0 ? -1 : hex_digit(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static bool digest_is(const void *p, size_t len, const char *hex)
{
	unsigned char md[32], want[32];

	return !hex_to_bin(hex, want) &&
	       EVP_Digest(p, len, md, NULL, EVP_sha256(), NULL) &&
	       !memcmp(md, want, 32);
}

/*
 * The text of a manifest: verified under trust (a failure says why in
 * r), read unchecked without it. *text malloc'd; 0, or -EKEYREJECTED
 * (not verified), -EINVAL (a clearsigned document that cannot be read).
 */
static int manifest_text(struct bc_ctx *x, const char *doc, size_t len,
			 char **text, size_t *tlen, struct trust_result *r)
{
	bool sig = len >= strlen(CLEARSIGN_BEGIN) &&
		   !strncmp(doc, CLEARSIGN_BEGIN, strlen(CLEARSIGN_BEGIN));
	const char *p, *end;
	char *out, *w;

	memset(r, 0, sizeof(*r));
	*text = NULL;
	if (x->trust) {
		if (!sig) {
			snprintf(r->detail, sizeof(r->detail),
				 "it is not signed");
			return -EKEYREJECTED;
		}
		return trust_verify_clearsigned(x->trust, doc, len, text, tlen,
						r) == TRUST_OK
			   ? 0
			   : -EKEYREJECTED;
	}
	if (!sig) {
		*text = strndup(doc, len);
		*tlen = len;
		return *text ? 0 : -ENOMEM;
	}
	/* verify=off: the text between the armour headers' blank line and
	 * the signature, dash-escaping undone (RFC 4880 7.1) */
	p = strstr(doc, "\n\n");
	end = strstr(doc, CLEARSIGN_SIG);
	if (!p || !end || end < p + 1)
		return -EINVAL;
	out = w = malloc((size_t)(end - p) + 1);
	if (!out)
		return -ENOMEM;
	for (p += 2; p < end;) {
		if (p[0] == '-' && p[1] == ' ')
			p += 2;
		while (p < end && *p != '\n')
			*w++ = *p++;
		if (p < end)
			*w++ = *p++;
	}
	*w = '\0';
	*text = out;
	*tlen = (size_t)(w - out);
	return 0;
}

/* Keys the cache offers for the trusted fingerprints (used only because
 * their fingerprints are trusted). Best effort: a missing key shows up
 * as "unknown key" on the manifests it signed. */
static void offered_keys(struct bc_ctx *x)
{
	char fprs[4096], rel[256], err[256], *body = NULL, *blob = NULL;
	struct bc_manifest m;
	const struct bc_blob *b;
	size_t len, blen;
	char *fpr, *save = NULL;

	if (!x->trust)
		return;
	trust_describe(x->trust, fprs, sizeof(fprs));
	for (fpr = strtok_r(fprs, ":", &save); fpr;
	     fpr = strtok_r(NULL, ":", &save)) {
		body = blob = NULL;
		if (keyset_has(x->seen, fpr))
			continue; /* its offered key is in the set already */
		if (x->l->layout == 3) {
			if (bc_v3_key_manifest_path(fpr, rel, sizeof(rel)) ||
			    get(x, rel, BC_MAX_DOC, &body, &len, err,
				sizeof(err)) ||
			    bc_parse_manifest(body, len, &m, err, sizeof(err)))
				goto next;
			b = bc_manifest_find(&m, BC_MEDIA_KEY);
			if (!b ||
			    bc_v3_blob_path(b->checksum, rel, sizeof(rel)) ||
			    get(x, rel, KEY_MAX, &blob, &blen, err,
				sizeof(err)) ||
			    !digest_is(blob, blen, b->checksum))
				goto next;
		} else if (bc_v2_key_path(fpr, rel, sizeof(rel)) ||
			   get(x, rel, KEY_MAX, &blob, &blen, err,
			       sizeof(err))) {
			goto next;
		}
		if (trust_add_keys(x->trust, blob, blen, false, err,
				   sizeof(err)) < 0)
			log_warn("%s: the key offered for %s: %s", x->base, fpr,
				 err);
		else {
			log_debug("%s: key %s from the cache", x->base, fpr);
			keyset_add(x->seen, fpr);
		}
	next:
		free(body);
		free(blob);
	}
}

/* The database: v3 through its (unsigned) index manifest, whose blob
 * must have the digest the manifest names; v2 build_cache/index.json. */
static int load_db(struct bc_ctx *x, struct bc_spec **specs, size_t *n)
{
	char err[512], rel[256], *doc = NULL, *blob = NULL;
	struct bc_manifest m;
	const struct bc_blob *b;
	size_t len, blen;
	int rc;

	if (x->l->layout == 2) {
		rc = get(x, "build_cache/index.json", BC_MAX_DOC, &doc, &len,
			 err, sizeof(err));
		if (!rc)
			rc = bc_parse_db(doc, len, specs, n, err, sizeof(err));
		if (rc)
			log_err("%sbuild_cache/index.json: %s", x->base, err);
		if (!rc) {
			x->l->index = doc;
			x->l->index_len = len;
			doc = NULL;
		}
		free(doc);
		return rc;
	}
	rc = get(x, "v3/manifests/index/index.manifest.json", BC_MAX_DOC, &doc,
		 &len, err, sizeof(err));
	if (!rc)
		rc = bc_parse_manifest(doc, len, &m, err, sizeof(err));
	b = rc ? NULL : bc_manifest_find(&m, BC_MEDIA_INDEX);
	if (!rc && !b) {
		snprintf(err, sizeof(err), "no %s entry", BC_MEDIA_INDEX);
		rc = -EINVAL;
	}
	if (!rc && bc_v3_blob_path(b->checksum, rel, sizeof(rel)))
		rc = -EINVAL;
	if (!rc)
		rc = get(x, rel, BC_MAX_DOC, &blob, &blen, err, sizeof(err));
	if (!rc && !digest_is(blob, blen, b->checksum)) {
		snprintf(err, sizeof(err),
			 "the index blob %s does not have "
			 "the SHA-256 its manifest names",
			 rel);
		rc = -EINVAL;
	}
	if (!rc)
		rc = bc_parse_db(blob, blen, specs, n, err, sizeof(err));
	if (rc)
		log_err("%sv3/manifests/index/index.manifest.json: %s", x->base,
			err);
	if (!rc) {
		x->l->index = blob;
		x->l->index_len = blen;
		blob = NULL;
	}
	free(doc);
	free(blob);
	return rc;
}

/* Room for more output: the buffer doubled, up to max + 1 bytes. */
static int grow_out(z_stream *zs, char **buf, size_t *cap, size_t max)
{
	size_t used = *cap - zs->avail_out, ncap;
	char *p;

	if (*cap >= max + 1)
		return -EINVAL; /* full: larger than max */
	ncap = *cap * 2 < max + 1 ? *cap * 2 : max + 1;
	p = realloc(*buf, ncap);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = ncap;
	zs->next_out = (unsigned char *)p + used;
	zs->avail_out = (unsigned)(ncap - used);
	return 0;
}

/* The gzip member in (one, whole) inflated into *out (malloc'd, NUL
 * added), at most max bytes (< 4 GiB); the buffer grows from 64 KiB as
 * needed. 0, or -EINVAL (not gzip, truncated, trailing bytes, larger than
 * max), -ENOMEM. */
static int gunzip_max(const char *in, size_t inlen, size_t max, char **out,
		      size_t *outlen)
{
	z_stream zs = {0};
	size_t cap = 65536 < max + 1 ? 65536 : max + 1;
	char *buf = malloc(cap);
	int zrc, rc = 0;
	bool bad;

	*out = NULL;
	if (!buf || inlen > UINT_MAX ||
	    inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		free(buf);
		return buf && inlen > UINT_MAX ? -EINVAL : -ENOMEM;
	}
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (unsigned)inlen;
	zs.next_out = (unsigned char *)buf;
	zs.avail_out = (unsigned)cap;
	while (!rc) {
		zrc = inflate(&zs, Z_NO_FLUSH);
		if (zrc == Z_STREAM_END)
			break;
		/* not gzip, corrupt, or the input ended inside the stream */
		bad = (zrc != Z_OK && zrc != Z_BUF_ERROR) ||
		      (zs.avail_out != 0 &&
		       (zs.avail_in == 0 || zrc == Z_BUF_ERROR));
		if (zrc == Z_MEM_ERROR)
			rc = -ENOMEM;
		else if (bad)
			rc = -EINVAL;
		else if (zs.avail_out == 0)
			rc = grow_out(&zs, &buf, &cap, max);
	}
	*outlen = zs.total_out;
	inflateEnd(&zs);
	if (!rc && (zs.avail_in || *outlen > max))
		rc = -EINVAL; /* trailing bytes */
	if (rc) {
		free(buf);
		return rc;
	}
	if (*outlen == cap && grow_out(&zs, &buf, &cap, max)) {
		free(buf);
		return -EINVAL;
	}
	buf[*outlen] = '\0';
	*out = buf;
	return 0;
}

/*
 * A v3 package's spec blob, which the verified manifest names by digest:
 * fetched, checked, decompressed and read (bc_parse_v3_spec), so that the
 * signed package is the one listed as s, not another signed one copied to
 * its path. Under trust only: without it nothing binds a manifest to
 * anything, and the check would cost a request per package. 0, or the
 * fetch's -errno, or -EINVAL with err.
 */
static int check_v3_spec(struct bc_ctx *x, const struct bc_manifest *m,
			 const struct bc_spec *s, char *err, size_t errlen)
{
	const struct bc_blob *b = bc_manifest_find(m, BC_MEDIA_SPEC);
	char rel[256], *body = NULL, *doc = NULL;
	size_t len, dlen = 0;
	int rc;

	if (!b)
		return catalog_fail(err, errlen, "no %s entry", BC_MEDIA_SPEC);
	rc = bc_v3_blob_path(b->checksum, rel, sizeof(rel));
	if (!rc)
		rc = get(x, rel, BC_MAX_SPEC, &body, &len, err, errlen);
	if (rc)
		return rc;
	if (!digest_is(body, len, b->checksum)) {
		rc = catalog_fail(err, errlen,
				  "spec blob %.16s...: not the SHA-256 its "
				  "manifest names",
				  b->checksum);
	} else if (!strcmp(b->compression, "gzip")) {
		rc = gunzip_max(body, len, BC_MAX_SPEC, &doc, &dlen);
		if (rc == -EINVAL)
			catalog_fail(err, errlen,
				     "spec blob: not gzip, or larger than %u "
				     "bytes",
				     BC_MAX_SPEC);
	} else if (!strcmp(b->compression, "none") || !b->compression[0]) {
		doc = body;
		dlen = len;
		body = NULL;
	} else {
		rc = catalog_fail(err, errlen, "spec blob: compression \"%s\"",
				  b->compression);
	}
	if (!rc)
		rc = bc_parse_v3_spec(doc, dlen, s, err, errlen);
	free(doc);
	free(body);
	return rc;
}

/* One package: its manifest fetched, verified, read into p. 0, or
 * -errno (hidden; logged). Runs in any fetcher thread. */
static int read_package(struct bc_ctx *x, const struct bc_spec *s,
			struct bc_package *p)
{
	char rel[1024], err[512], dir[BC_DIR_MAX + 1], *doc = NULL;
	char *text = NULL, *url = NULL;
	struct trust_result r;
	struct bc_manifest m;
	struct bc_blob tb;
	const struct bc_blob *b = NULL;
	size_t len, tlen;
	int rc;

	if (bc_package_name(s, dir, sizeof(dir))) {
		log_warn("%s: package %s-%s: name too long, not shown", x->base,
			 s->name, s->version);
		return -ENAMETOOLONG;
	}
	rc = x->l->layout == 3
		 ? bc_v3_spec_manifest_path(s, rel, sizeof(rel))
		 : bc_v2_spec_path(s, x->trust != NULL, rel, sizeof(rel));
	if (!rc)
		rc = get(x, rel, BC_MAX_DOC, &doc, &len, err, sizeof(err));
	if (rc == -ENOENT && x->l->layout == 2 && !x->trust &&
	    !bc_v2_spec_path(s, true, rel, sizeof(rel)))
		rc = get(x, rel, BC_MAX_DOC, &doc, &len, err, sizeof(err));
	if (rc) {
		log_warn("%s: package %s hidden: %s%s: %s", x->base, dir,
			 x->base, rel, err);
		goto out;
	}
	rc = manifest_text(x, doc, len, &text, &tlen, &r);
	if (rc == -EKEYREJECTED) {
		log_warn("%s: package %s hidden: %s%s: %s", x->base, dir,
			 x->base, rel, r.detail);
		goto out;
	}
	if (!rc && x->l->layout == 3) {
		rc = bc_parse_manifest(text, tlen, &m, err, sizeof(err));
		b = rc ? NULL : bc_manifest_find(&m, BC_MEDIA_TARBALL);
		if (!rc && !b) {
			snprintf(err, sizeof(err), "no %s entry",
				 BC_MEDIA_TARBALL);
			rc = -EINVAL;
		}
		if (!rc && x->trust)
			rc = check_v3_spec(x, &m, s, err, sizeof(err));
		if (!rc)
			rc = bc_v3_blob_path(b->checksum, rel, sizeof(rel));
	} else if (!rc) {
		rc = bc_parse_v2_spec(text, tlen, s, &tb, err, sizeof(err));
		b = &tb;
		if (!rc)
			rc = bc_v2_tarball_path(s, rel, sizeof(rel));
	} else {
		snprintf(err, sizeof(err), "unreadable clearsigned document");
	}
	if (rc) {
		log_warn("%s: package %s hidden: its manifest: %s", x->base,
			 dir, err);
		goto out;
	}
	if (asprintf(&url, "%s%s", x->base, rel) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	snprintf(p->hash, sizeof(p->hash), "%s", s->hash);
	snprintf(p->name, sizeof(p->name), "%s", s->name);
	snprintf(p->version, sizeof(p->version), "%s", s->version);
	p->url = url;
	hex_to_bin(b->checksum, p->sha256);
	snprintf(p->signer, sizeof(p->signer), "%s", r.fpr);
out:
	free(text);
	free(doc);
	return rc;
}

static void *fetcher(void *arg)
{
	struct bc_ctx *x = arg;
	size_t i;
	int rc;

	pthread_setname_np(pthread_self(), "sffs-manifest");

	while ((i = atomic_fetch_add(&x->next, 1)) < x->nspecs) {
		rc = read_package(x, &x->specs[i], &x->slots[i]);
		if (rc == -ENOMEM)
			atomic_store(&x->nomem, 1);
		else if (net_err(rc))
			atomic_store(&x->neterr, 1);
	}
	return NULL;
}

/* Every package's manifest, BC_FETCHERS at a time; the packages that
 * passed go to out in the database's order. */
static int read_packages(struct bc_ctx *x, const struct bc_spec *specs,
			 size_t n)
{
	pthread_t th[BC_FETCHERS];
	size_t i, k, started = 0;

	x->specs = specs;
	x->nspecs = n;
	x->slots = calloc(n ? n : 1, sizeof(*x->slots));
	if (!x->slots)
		return -ENOMEM;
	for (i = 0; i < BC_FETCHERS && i < n; i++)
		if (!pthread_create(&th[i], NULL, fetcher, x))
			started++;
	if (!started)
		fetcher(x); /* no thread to be had: this one does it all */
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (i = k = 0; i < n; i++) {
		if (x->slots[i].url)
			x->slots[k++] = x->slots[i];
		else
			x->l->hidden++;
	}
	x->l->incomplete = atomic_load(&x->neterr) != 0;
	x->l->pkgs = x->slots;
	x->l->n = k;
	return atomic_load(&x->nomem) ? -ENOMEM : 0;
}

static int cmp_dir(const void *a, const void *b)
{
	const struct bc_package *x = *(const struct bc_package *const *)a;
	const struct bc_package *y = *(const struct bc_package *const *)b;
	int r = strcmp(x->dir, y->dir);

	/* equal names keep the database's order: the first one wins */
	return r ? r : (x < y ? -1 : x > y);
}

/* One name, one package: a clash (same name, version and first 7 of two
 * hashes) keeps the first. Sorted, so O(n log n) for 100,000 specs. */
static int warn_clashes(const char *base, const struct bc_listing *l)
{
	const struct bc_package **v;
	size_t i;

	if (l->n < 2)
		return 0;
	/* an array of pointers */
	// NOLINTNEXTLINE(bugprone-sizeof-expression)
	v = malloc(l->n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < l->n; i++)
		v[i] = &l->pkgs[i];
	// NOLINTNEXTLINE(bugprone-sizeof-expression)
	qsort(v, l->n, sizeof(*v), cmp_dir);
	for (i = 1; i < l->n; i++)
		if (!strcmp(v[i - 1]->dir, v[i]->dir))
			log_warn("%s: two packages named %s: the second is "
				 "not shown",
				 base, v[i]->dir);
	free(v);
	return 0;
}

int bc_list(const char *base, const struct fetch_opts *fo, struct trust *trust,
	    struct bc_listing *out)
{
	return bc_list_seen(base, fo, trust, NULL, out);
}

int bc_list_seen(const char *base, const struct fetch_opts *fo,
		 struct trust *trust, struct bc_keyset *seen,
		 struct bc_listing *out)
{
	struct bc_ctx x = {
	    .base = base, .fo = fo, .trust = trust, .l = out, .seen = seen};
	struct bc_spec *specs = NULL;
	char err[512], *body = NULL;
	size_t n = 0, len;
	int rc;

	memset(out, 0, sizeof(*out));
	atomic_init(&x.requests, 0);
	atomic_init(&x.next, 0);
	atomic_init(&x.nomem, 0);
	atomic_init(&x.neterr, 0);
	rc = get(&x, "v3/layout.json", 65536, &body, &len, err, sizeof(err));
	free(body);
	out->layout = rc == 0 ? 3 : 2;
	if (rc && rc != -ENOENT && rc != -EACCES) {
		log_err("%sv3/layout.json: %s", base, err);
		return rc;
	}
	offered_keys(&x);
	rc = load_db(&x, &specs, &n);
	if (!rc)
		rc = read_packages(&x, specs, n);
	out->requests = atomic_load(&x.requests);
	if (rc)
		goto fail;
	rc = warn_clashes(base, out);
	if (rc)
		goto fail;
	free(specs);
	return 0;
fail:
	free(specs);
	bc_listing_free(out);
	return rc;
}

void bc_listing_free(struct bc_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->pkgs[i].url);
	free(l->pkgs);
	free(l->index);
	memset(l, 0, sizeof(*l));
}

/* Breadth first, so the shortest prefix wins. */
int bc_find_prefix(const struct tree *t, uint32_t *node)
{
	uint32_t n = tree_count(t), *queue, head = 0, tail = 0, d, spack, bd;
	const char *name;
	uint32_t child;
	int rc = -ENOENT;

	queue = malloc((n ? n : 1) * sizeof(*queue));
	if (!queue)
		return -ENOMEM;
	queue[tail++] = 0;
	while (head < tail && rc) {
		d = queue[head++];
		if (!tree_lookup(t, d, ".spack", &spack) &&
		    S_ISDIR(tree_node(t, spack)->mode) &&
		    !tree_lookup(t, spack, "binary_distribution", &bd)) {
			*node = d;
			rc = 0;
			break;
		}
		for (size_t i = 0; !tree_dir_entry(t, d, i, &name, &child); i++)
			if (S_ISDIR(tree_node(t, child)->mode) && tail < n)
				queue[tail++] = child;
	}
	free(queue);
	return rc;
}

size_t bc_warn_writable(const struct tree *t, uint32_t root, const char *where)
{
	char paths[BC_WRITABLE_SHOWN * 256];
	size_t n = bc_writable_dirs(t, root, paths, sizeof(paths));

	for (char *p = paths; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (n)
		log_warn("%s: %zu world-writable director%s, read-only in the "
			 "mount: %s%s; to write there, bind-mount a tmpfs over "
			 "each (sffs(8), WRITABLE DIRECTORIES)",
			 where, n, n == 1 ? "y" : "ies", paths,
			 n > BC_WRITABLE_SHOWN ? " ..." : "");
	return n;
}
