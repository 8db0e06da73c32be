/* SPDX-License-Identifier: MIT */
/*
 * verify.c - one librnp context per verification, and the verdict.
 *
 * librnp decides whether each signature matches the data; the verdict
 * adds what it does not know: which primary fingerprints are trusted, and
 * whether the signing key is expired or revoked now. Of several failing
 * signatures the most informative one is reported (a bad signature by a
 * trusted key says more than a signature by a key nobody has).
 */
#include "trust_i.h"

#include <errno.h>
#include <fcntl.h>
#include <rnp/rnp_err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMPORT_FLAGS (RNP_LOAD_SAVE_PUBLIC_KEYS | RNP_LOAD_SAVE_PERMISSIVE)
#define CLEARSIGN_HEADER "-----BEGIN PGP SIGNED MESSAGE-----"

enum trust_status trust_result_set(struct trust_result *r,
				   enum trust_status status, const char *fmt,
				   ...)
{
	va_list ap;

	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	return status;
}

static void result_clear(struct trust_result *r)
{
	memset(r, 0, sizeof(*r));
}

/* librnp's own log goes to /dev/null unless SFFS_TRUST_DEBUG is set (the
 * context owns and closes the descriptor it is given). */
static int quiet(rnp_ffi_t ffi)
{
	int fd;

	if (getenv("SFFS_TRUST_DEBUG"))
		return 0;
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (rnp_ffi_set_log_fd(ffi, fd)) {
		close(fd);
		return -EIO;
	}
	return 0;
}

static int import_blob(rnp_ffi_t ffi, const unsigned char *p, size_t len)
{
	rnp_input_t in;
	rnp_result_t rc;

	if (rnp_input_from_memory(&in, p, len, false))
		return -ENOMEM;
	rc = rnp_import_keys(ffi, in, IMPORT_FLAGS, NULL);
	rnp_input_destroy(in);
	return rc ? -EIO : 0;
}

int trust_ffi_open(struct trust_keys *keys, rnp_ffi_t *ffi)
{
	size_t i, start = 0;
	int rc;

	*ffi = NULL;
	if (rnp_ffi_create(ffi, "GPG", "GPG"))
		return -ENOMEM;
	rc = quiet(*ffi);
	for (i = 0; !rc && i < keys->n; i++) {
		rc = import_blob(*ffi, keys->data + start,
				 keys->ends[i] - start);
		start = keys->ends[i];
	}
	if (rc) {
		rnp_ffi_destroy(*ffi);
		*ffi = NULL;
	}
	return rc;
}

/* Copies an upper-case hex string from librnp into out (size cap). */
static void copy_hex(char *out, size_t cap, char *s)
{
	if (s)
		snprintf(out, cap, "%s", s);
	rnp_buffer_destroy(s);
}

/* How informative a failure is; the best one is reported. */
static int rank(enum trust_status s)
{
	static const int ranks[] = {
	    [TRUST_OK] = 100,	      [TRUST_BAD_SIGNATURE] = 90,
	    [TRUST_KEY_REVOKED] = 85, [TRUST_KEY_EXPIRED] = 80,
	    [TRUST_SIG_EXPIRED] = 75, [TRUST_UNSUPPORTED] = 60,
	    [TRUST_ERROR] = 50,	      [TRUST_UNTRUSTED_KEY] = 40,
	    [TRUST_UNKNOWN_KEY] = 30, [TRUST_NO_SIGNATURE] = 10,
	};

	return ranks[s];
}

enum trust_status trust_key_state(rnp_key_handle_t key, const char **what)
{
	bool expired = false, revoked = false, valid = false;

	if (rnp_key_is_revoked(key, &revoked) ||
	    rnp_key_is_expired(key, &expired) || rnp_key_is_valid(key, &valid))
		return TRUST_ERROR;
	if (revoked)
		return TRUST_KEY_REVOKED;
	if (expired)
		return TRUST_KEY_EXPIRED;
	if (!valid) {
		*what = "is not valid (no valid self-signature)";
		return TRUST_BAD_SIGNATURE;
	}
	return TRUST_OK;
}

/* The primary key of key (itself when primary), as a new handle. */
static rnp_key_handle_t primary_of(rnp_ffi_t ffi, rnp_key_handle_t key,
				   char *fpr)
{
	rnp_key_handle_t p = NULL;
	char *s = NULL;
	bool primary = false;

	if (rnp_key_is_primary(key, &primary))
		return NULL;
	if (primary ? rnp_key_get_fprint(key, &s)
		    : rnp_key_get_primary_fprint(key, &s))
		return NULL;
	copy_hex(fpr, TRUST_FPR_LEN + 1, s);
	if (rnp_locate_key(ffi, "fingerprint", fpr, &p))
		return NULL;
	return p;
}

/* The verdict on a signature whose key is held (trusted or not). */
static enum trust_status judge_key(const struct trust *t, rnp_ffi_t ffi,
				   rnp_key_handle_t key, rnp_result_t st,
				   struct trust_result *r)
{
	rnp_key_handle_t primary = primary_of(ffi, key, r->fpr);
	const char *what = "";
	enum trust_status ks;

	if (!primary)
		return trust_result_set(r, TRUST_ERROR,
					"cannot find the primary key of %s",
					r->keyid);
	ks = trust_key_state(primary, &what);
	if (ks == TRUST_OK)
		ks = trust_key_state(key, &what);
	rnp_key_handle_destroy(primary);
	if (!trust_fpr_trusted(t, r->fpr))
		return trust_result_set(r, TRUST_UNTRUSTED_KEY,
					"key %s is not trusted", r->fpr);
	if (ks == TRUST_KEY_REVOKED)
		return trust_result_set(r, ks, "key %s was revoked", r->fpr);
	if (ks == TRUST_KEY_EXPIRED)
		return trust_result_set(r, ks, "key %s has expired", r->fpr);
	if (ks != TRUST_OK)
		return trust_result_set(r, ks, "key %s %s", r->fpr, what);
	switch (st) {
	case RNP_SUCCESS:
		return trust_result_set(r, TRUST_OK, "good signature by key %s",
					r->fpr);
	case RNP_ERROR_SIGNATURE_INVALID:
		return trust_result_set(r, TRUST_BAD_SIGNATURE,
					"bad signature by key %s", r->fpr);
	case RNP_ERROR_SIGNATURE_EXPIRED:
		return trust_result_set(r, TRUST_SIG_EXPIRED,
					"signature by key %s has expired",
					r->fpr);
	case RNP_ERROR_SIGNATURE_UNKNOWN:
	case RNP_ERROR_NOT_SUPPORTED:
		return trust_result_set(r, TRUST_UNSUPPORTED,
					"signature by key %s: %s", r->fpr,
					rnp_result_to_string(st));
	default:
		return trust_result_set(r, TRUST_ERROR,
					"signature by key %s: %s", r->fpr,
					rnp_result_to_string(st));
	}
}

/* The verdict on one signature of the verification. */
static enum trust_status judge_one(const struct trust *t, rnp_ffi_t ffi,
				   rnp_op_verify_signature_t sig,
				   struct trust_result *r)
{
	rnp_signature_handle_t h = NULL;
	rnp_key_handle_t key = NULL;
	rnp_result_t st = rnp_op_verify_signature_get_status(sig);
	uint32_t created = 0, expires = 0;
	char *s = NULL;
	enum trust_status ret;

	/* On failure librnp 0.16 leaves h pointing at memory it freed. */
	if (!rnp_op_verify_signature_get_handle(sig, &h)) {
		if (!rnp_signature_get_keyid(h, &s))
			copy_hex(r->keyid, sizeof(r->keyid), s);
		rnp_signature_handle_destroy(h);
	}
	/* when it was made, for the rollback check: 0 if librnp says not */
	if (!rnp_op_verify_signature_get_times(sig, &created, &expires))
		r->sig_time = created;
	if (rnp_op_verify_signature_get_key(sig, &key) || !key) {
		if (st == RNP_ERROR_SIGNATURE_UNKNOWN ||
		    st == RNP_ERROR_NOT_SUPPORTED)
			return trust_result_set(r, TRUST_UNSUPPORTED,
						"signature by key %s: %s",
						r->keyid[0] ? r->keyid : "?",
						rnp_result_to_string(st));
		return trust_result_set(r, TRUST_UNKNOWN_KEY,
					"signed by unknown key %s",
					r->keyid[0] ? r->keyid : "(no key id)");
	}
	ret = judge_key(t, ffi, key, st, r);
	rnp_key_handle_destroy(key);
	return ret;
}

enum trust_status trust_judge(const struct trust *t, rnp_ffi_t ffi,
			      rnp_op_verify_t op, rnp_result_t exec_rc,
			      struct trust_result *r)
{
	struct trust_result one;
	rnp_op_verify_signature_t sig;
	size_t i, n = 0;

	result_clear(r);
	if (rnp_op_verify_get_signature_count(op, &n) || !n)
		return trust_result_set(r, TRUST_NO_SIGNATURE,
					"no OpenPGP signature (%s)",
					rnp_result_to_string(exec_rc));
	trust_result_set(r, TRUST_NO_SIGNATURE, "no usable signature");
	for (i = 0; i < n; i++) {
		result_clear(&one);
		if (rnp_op_verify_get_signature_at(op, i, &sig))
			continue;
		judge_one(t, ffi, sig, &one);
		if (rank(one.status) > rank(r->status))
			*r = one;
		if (r->status == TRUST_OK)
			break;
	}
	/* A good signature over data librnp could not read to the end (a
	 * write or read error) does not count. */
	if (r->status == TRUST_OK && exec_rc != RNP_SUCCESS)
		trust_result_set(r, TRUST_ERROR, "verification failed: %s",
				 rnp_result_to_string(exec_rc));
	return r->status;
}

/* A context with t's keys for one verification. */
static enum trust_status open_for(const struct trust *t, rnp_ffi_t *ffi,
				  struct trust_result *r)
{
	struct trust_keys *keys = trust_keys_get(t);
	int rc = trust_ffi_open(keys, ffi);

	trust_keys_put(keys);
	if (rc)
		return trust_result_set(
		    r, TRUST_ERROR, "cannot set up librnp: %s", strerror(-rc));
	return TRUST_OK;
}

static bool read_nothing(void *ctx, void *buf, size_t len, size_t *read)
{
	(void)ctx;
	(void)buf;
	(void)len;
	*read = 0;
	return true;
}

/* An input over data; librnp refuses a memory input of no bytes, so
 * empty data is a reader at EOF. */
static rnp_result_t input_of(rnp_input_t *in, const void *data, size_t len)
{
	if (!len)
		return rnp_input_from_callback(in, read_nothing, NULL, NULL);
	return rnp_input_from_memory(in, data, len, false);
}

enum trust_status trust_verify_detached(const struct trust *t, const void *data,
					size_t len, const void *sig,
					size_t siglen, struct trust_result *r)
{
	rnp_input_t din = NULL, sin = NULL;
	rnp_op_verify_t op = NULL;
	rnp_ffi_t ffi = NULL;
	rnp_result_t rc;

	result_clear(r);
	if (!sig || !siglen)
		return trust_result_set(r, TRUST_NO_SIGNATURE,
					"empty signature");
	if (siglen > TRUST_MAX_SIG)
		return trust_result_set(r, TRUST_NO_SIGNATURE,
					"signature of %zu bytes, more than %u",
					siglen, TRUST_MAX_SIG);
	if (open_for(t, &ffi, r))
		return r->status;
	if (input_of(&din, data, len) ||
	    rnp_input_from_memory(&sin, sig, siglen, false) ||
	    rnp_op_verify_detached_create(&op, ffi, din, sin)) {
		trust_result_set(r, TRUST_ERROR, "cannot set up librnp");
		goto out_destroy;
	}
	rc = rnp_op_verify_execute(op);
	trust_judge(t, ffi, op, rc, r);
out_destroy:
	rnp_op_verify_destroy(op);
	rnp_input_destroy(sin);
	rnp_input_destroy(din);
	rnp_ffi_destroy(ffi);
	return r->status;
}

/* Whether doc starts (after blank space) with the clearsign header. */
static bool is_clearsigned(const char *doc, size_t len)
{
	size_t i = 0, hl = strlen(CLEARSIGN_HEADER);

	while (i < len && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\r' ||
			   doc[i] == '\n'))
		i++;
	return len - i >= hl && !memcmp(doc + i, CLEARSIGN_HEADER, hl);
}

/* The verified text out of librnp's output, NUL-terminated. */
static enum trust_status take_text(rnp_output_t out, char **text,
				   size_t *textlen, struct trust_result *r)
{
	uint8_t *buf = NULL;
	size_t n = 0;

	if (rnp_output_memory_get_buf(out, &buf, &n, false))
		return trust_result_set(r, TRUST_ERROR,
					"cannot read the signed text");
	*text = malloc(n + 1);
	if (!*text)
		return trust_result_set(r, TRUST_ERROR, "out of memory");
	if (n)
		memcpy(*text, buf, n);
	(*text)[n] = '\0';
	*textlen = n;
	return TRUST_OK;
}

enum trust_status trust_verify_clearsigned(const struct trust *t,
					   const void *doc, size_t len,
					   char **text, size_t *textlen,
					   struct trust_result *r)
{
	rnp_input_t in = NULL;
	rnp_output_t out = NULL;
	rnp_op_verify_t op = NULL;
	rnp_ffi_t ffi = NULL;
	rnp_result_t rc;

	result_clear(r);
	*text = NULL;
	*textlen = 0;
	if (len > TRUST_MAX_DOC)
		return trust_result_set(r, TRUST_NO_SIGNATURE,
					"document of %zu bytes, more than %u",
					len, TRUST_MAX_DOC);
	if (!doc || !is_clearsigned(doc, len))
		return trust_result_set(r, TRUST_NO_SIGNATURE,
					"not a clearsigned document");
	if (open_for(t, &ffi, r))
		return r->status;
	if (rnp_input_from_memory(&in, doc, len, false) ||
	    rnp_output_to_memory(&out, TRUST_MAX_DOC) ||
	    rnp_op_verify_create(&op, ffi, in, out)) {
		trust_result_set(r, TRUST_ERROR, "cannot set up librnp");
		goto out_destroy;
	}
	rc = rnp_op_verify_execute(op);
	/* The text of a failed verification stays in out, never handed on. */
	if (trust_judge(t, ffi, op, rc, r) == TRUST_OK)
		take_text(out, text, textlen, r);
out_destroy:
	rnp_op_verify_destroy(op);
	rnp_output_destroy(out);
	rnp_input_destroy(in);
	rnp_ffi_destroy(ffi);
	return r->status;
}
