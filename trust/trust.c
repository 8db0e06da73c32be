/* SPDX-License-Identifier: MIT */
/*
 * trust.c - the trust set: key material, named fingerprints, operator
 * keys, and the rule that decides which fingerprints are trusted.
 *
 * Adding keys first imports them into a throwaway librnp context to learn
 * their primary fingerprints (and to refuse data holding none), then
 * publishes a new snapshot of the material with the new bytes appended.
 */
#include "trust_i.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct trust *unconst(const struct trust *t)
{
	/* The lock is the only part a reader changes. */
	return (struct trust *)t;
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

struct trust *trust_new(void)
{
	struct trust *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->keys = calloc(1, sizeof(*t->keys));
	if (!t->keys || pthread_mutex_init(&t->lock, NULL)) {
		free(t->keys);
		free(t);
		return NULL;
	}
	atomic_init(&t->keys->refs, 1);
	return t;
}

void trust_free(struct trust *t)
{
	if (!t)
		return;
	trust_keys_put(t->keys);
	free(t->named.v);
	free(t->opkeys.v);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

struct trust_keys *trust_keys_get(const struct trust *t)
{
	struct trust_keys *k;

	pthread_mutex_lock(&unconst(t)->lock);
	k = t->keys;
	atomic_fetch_add(&k->refs, 1);
	pthread_mutex_unlock(&unconst(t)->lock);
	return k;
}

void trust_keys_put(struct trust_keys *k)
{
	if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	free(k->ends);
	free(k->data);
	free(k);
}

/* 40 hex digits, spaces anywhere, into upper case. 0 or -EINVAL. */
static int parse_fpr(const char *s, size_t len, char out[TRUST_FPR_LEN + 1])
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ')
			continue;
		if (!isxdigit(c) || n == TRUST_FPR_LEN)
			return -EINVAL;
		out[n++] = (char)toupper(c);
	}
	if (n != TRUST_FPR_LEN)
		return -EINVAL;
	out[n] = '\0';
	return 0;
}

static bool fprs_has(const struct trust_fprs *l, const char *fpr)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], fpr))
			return true;
	return false;
}

/* Appends fpr unless already there. 0 or -ENOMEM. */
static int fprs_add(struct trust_fprs *l, const char *fpr)
{
	if (fprs_has(l, fpr))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		char(*v)[TRUST_FPR_LEN + 1] = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy(l->v[l->n++], fpr, TRUST_FPR_LEN + 1);
	return 0;
}

int trust_add_fpr(struct trust *t, const char *fpr)
{
	char f[TRUST_FPR_LEN + 1];
	int rc;

	if (!fpr || parse_fpr(fpr, strlen(fpr), f))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	rc = fprs_add(&t->named, f);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static bool blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ')
			return false;
	return true;
}

/* Calls fn (when t is set) on each non-blank entry of list; the first bad
 * entry stops it with -EINVAL. */
static int fpr_list_walk(struct trust *t, const char *list, char *err,
			 size_t errlen)
{
	const char *p = list, *end;
	char f[TRUST_FPR_LEN + 1];
	size_t n, entries = 0;
	int rc;

	for (;; p = end + 1) {
		end = p + strcspn(p, ":,");
		n = (size_t)(end - p);
		if (!blank(p, n)) {
			if (parse_fpr(p, n, f)) {
				errf(err, errlen,
				     "not a 40-hex-digit fingerprint: \"%.*s\"",
				     (int)(n > 64 ? 64 : n), p);
				return -EINVAL;
			}
			entries++;
			rc = t ? fprs_add(&t->named, f) : 0;
			if (rc)
				return rc;
		}
		if (!*end)
			break;
	}
	if (!entries) {
		errf(err, errlen, "no fingerprint in the list");
		return -EINVAL;
	}
	return 0;
}

int trust_add_fpr_list(struct trust *t, const char *list, char *err,
		       size_t errlen)
{
	int rc;

	if (!list) {
		errf(err, errlen, "no fingerprint list");
		return -EINVAL;
	}
	/* Check every entry first, so a bad list adds nothing. */
	rc = fpr_list_walk(NULL, list, err, errlen);
	if (rc)
		return rc;
	pthread_mutex_lock(&t->lock);
	rc = fpr_list_walk(t, list, err, errlen);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* The primary fingerprints holding public keys in ffi, into *out. Their
 * number, or -ENOMEM / -EIO. */
static int primaries(rnp_ffi_t ffi, struct trust_fprs *out)
{
	rnp_identifier_iterator_t it = NULL;
	rnp_key_handle_t key;
	const char *id;
	char f[TRUST_FPR_LEN + 1];
	bool primary, pub;
	int rc = 0;

	if (rnp_identifier_iterator_create(ffi, &it, "fingerprint"))
		return -EIO;
	while (!rc && !rnp_identifier_iterator_next(it, &id) && id) {
		key = NULL;
		if (rnp_locate_key(ffi, "fingerprint", id, &key) || !key)
			continue;
		if (!rnp_key_is_primary(key, &primary) && primary &&
		    !rnp_key_have_public(key, &pub) && pub &&
		    !parse_fpr(id, strlen(id), f))
			rc = fprs_add(out, f);
		rnp_key_handle_destroy(key);
	}
	rnp_identifier_iterator_destroy(it);
	return rc ? rc : (int)out->n;
}

/* The primary keys in data, found through a context of their own. */
static int learn_keys(const void *data, size_t len, struct trust_fprs *out,
		      char *err, size_t errlen)
{
	struct trust_keys one = {
	    .len = len, .n = 1, .ends = &len, .data = (unsigned char *)data};
	rnp_ffi_t ffi;
	int rc;

	rc = trust_ffi_open(&one, &ffi);
	if (rc == -EIO) {
		errf(err, errlen, "not OpenPGP public key data (or malformed)");
		return -EINVAL;
	}
	if (rc) {
		errf(err, errlen, "cannot set up librnp: %s", strerror(-rc));
		return rc;
	}
	rc = primaries(ffi, out);
	rnp_ffi_destroy(ffi);
	if (rc == 0) {
		errf(err, errlen, "no OpenPGP public key in the data");
		return -EINVAL;
	}
	if (rc < 0)
		errf(err, errlen, "cannot list the keys: %s", strerror(-rc));
	return rc;
}

/* t->keys with data appended, as a new snapshot. Called locked. */
static int publish(struct trust *t, const void *data, size_t len)
{
	struct trust_keys *old = t->keys, *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->len = old->len + len;
	k->n = old->n + 1;
	k->ends = malloc(k->n * sizeof(*k->ends));
	k->data = malloc(k->len);
	if (!k->ends || !k->data) {
		free(k->ends);
		free(k->data);
		free(k);
		return -ENOMEM;
	}
	if (old->n)
		memcpy(k->ends, old->ends, old->n * sizeof(*k->ends));
	k->ends[old->n] = k->len;
	if (old->len)
		memcpy(k->data, old->data, old->len);
	memcpy(k->data + old->len, data, len);
	atomic_init(&k->refs, 1);
	t->keys = k;
	trust_keys_put(old);
	return 0;
}

int trust_add_keys(struct trust *t, const void *data, size_t len, bool operator,
		   char * err, size_t errlen)
{
	struct trust_fprs found = {0};
	size_t i;
	int n, rc;

	if (!data || !len) {
		errf(err, errlen, "no key data");
		return -EINVAL;
	}
	if (len > TRUST_MAX_KEYS) {
		errf(err, errlen, "%zu bytes of keys, more than %u", len,
		     TRUST_MAX_KEYS);
		return -E2BIG;
	}
	n = learn_keys(data, len, &found, err, errlen);
	if (n < 0)
		goto out_free;
	pthread_mutex_lock(&t->lock);
	rc = 0;
	if (len > TRUST_MAX_KEYS - t->keys->len) {
		errf(err, errlen, "keys would exceed %u bytes in all",
		     TRUST_MAX_KEYS);
		rc = -E2BIG;
	}
	if (!rc)
		rc = publish(t, data, len);
	for (i = 0; !rc && operator&& i<found.n; i++)
		rc = fprs_add(&t->opkeys, found.v[i]);
	pthread_mutex_unlock(&t->lock);
	if (rc) {
		if (rc == -ENOMEM)
			errf(err, errlen, "out of memory");
		n = rc;
	}
out_free:
	free(found.v);
	return n;
}

/* The whole file into *buf, bounded by TRUST_MAX_KEYS. */
static int read_file(const char *path, unsigned char **buf, size_t *len,
		     char *err, size_t errlen)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		rc = -errno;
		errf(err, errlen, "%s: %s", path, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)TRUST_MAX_KEYS) {
		rc = S_ISREG(st.st_mode) ? -E2BIG : -EINVAL;
		errf(err, errlen, "%s: %s", path,
		     rc == -E2BIG ? "larger than the key bound"
				  : "not a regular file");
		goto out_close;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	*len = got;
out_close:
	if (fd >= 0)
		close(fd);
	return rc;
}

int trust_add_keyring_file(struct trust *t, const char *path, char *err,
			   size_t errlen)
{
	unsigned char *buf = NULL;
	char why[192] = "";
	size_t len = 0;
	int rc;

	rc = read_file(path, &buf, &len, err, errlen);
	if (rc)
		goto out_free;
	rc = trust_add_keys(t, buf, len, true, why, sizeof(why));
	if (rc < 0)
		errf(err, errlen, "%s: %s", path, why);
out_free:
	free(buf);
	return rc;
}

/* The list that decides, called locked. */
static const struct trust_fprs *deciding(const struct trust *t)
{
	return t->named.n ? &t->named : &t->opkeys;
}

bool trust_fpr_trusted(const struct trust *t, const char *fpr)
{
	bool yes;

	pthread_mutex_lock(&unconst(t)->lock);
	yes = fprs_has(deciding(t), fpr);
	pthread_mutex_unlock(&unconst(t)->lock);
	return yes;
}

size_t trust_count(const struct trust *t)
{
	size_t n;

	pthread_mutex_lock(&unconst(t)->lock);
	n = deciding(t)->n;
	pthread_mutex_unlock(&unconst(t)->lock);
	return n;
}

bool trust_is_trusted(const struct trust *t, const char *fpr)
{
	return fpr && strlen(fpr) == TRUST_FPR_LEN && trust_fpr_trusted(t, fpr);
}

size_t trust_describe(const struct trust *t, char *buf, size_t len)
{
	const struct trust_fprs *l;
	size_t i, need = 0;

	if (buf && len)
		buf[0] = '\0';
	pthread_mutex_lock(&unconst(t)->lock);
	l = deciding(t);
	for (i = 0; i < l->n; i++) {
		if (buf && need + (i > 0) + TRUST_FPR_LEN < len)
			snprintf(buf + need, len - need, "%s%s", i ? ":" : "",
				 l->v[i]);
		need += (i > 0) + TRUST_FPR_LEN;
	}
	pthread_mutex_unlock(&unconst(t)->lock);
	return need;
}

const char *trust_status_str(enum trust_status s)
{
	static const char *const names[] = {
	    [TRUST_OK] = "good signature",
	    [TRUST_NO_SIGNATURE] = "no signature",
	    [TRUST_UNKNOWN_KEY] = "unknown key",
	    [TRUST_UNTRUSTED_KEY] = "untrusted key",
	    [TRUST_BAD_SIGNATURE] = "bad signature",
	    [TRUST_KEY_EXPIRED] = "key expired",
	    [TRUST_KEY_REVOKED] = "key revoked",
	    [TRUST_SIG_EXPIRED] = "signature expired",
	    [TRUST_UNSUPPORTED] = "unsupported signature",
	    [TRUST_ERROR] = "verification error",
	};

	if ((unsigned)s >= sizeof(names) / sizeof(names[0]))
		return "unknown status";
	return names[s];
}
