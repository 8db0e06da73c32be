/* SPDX-License-Identifier: MIT */
/*
 * keycheck.c - whether the key that made a detached signature still
 * counts, without the data the signature was made over.
 *
 * The open policy keeps, beside an index it built from a verified
 * artifact, the signature that verified it; before reusing that index it
 * asks here again whether the signing key is still in the set, trusted,
 * not revoked and not expired, and whether the signature itself has
 * expired. It cannot re-hash the artifact (that is the point of keeping
 * an index), so this says nothing about the bytes: those are bound by the
 * index's own digests and by the cache directory being private.
 *
 * librnp parses a detached signature only through a verification, so the
 * signature is verified over one dummy byte: the hash never matches, but
 * librnp still names the key and the signature's times, and those are
 * what is judged here. (A librnp built with its console log on prints
 * "wrong lbits" for that mismatch, as for any bad signature.)
 */
#include "trust_i.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Copies an upper-case hex string from librnp into out (size cap). */
static void take_hex(char *out, size_t cap, char *s)
{
	if (s)
		snprintf(out, cap, "%s", s);
	rnp_buffer_destroy(s);
}

/* The state of key and of its primary (whose fingerprint goes to r). */
static enum trust_status key_and_primary(rnp_ffi_t ffi, rnp_key_handle_t key,
					 struct trust_result *r)
{
	rnp_key_handle_t primary = NULL;
	const char *what = NULL; /* the caller says it its own way */
	enum trust_status ks;
	bool is_primary = false;
	char *s = NULL;

	if (rnp_key_is_primary(key, &is_primary) ||
	    (is_primary ? rnp_key_get_fprint(key, &s)
			: rnp_key_get_primary_fprint(key, &s)))
		return TRUST_ERROR;
	take_hex(r->fpr, sizeof(r->fpr), s);
	if (rnp_locate_key(ffi, "fingerprint", r->fpr, &primary) || !primary)
		return TRUST_ERROR;
	ks = trust_key_state(primary, &what);
	if (ks == TRUST_OK)
		ks = trust_key_state(key, &what);
	rnp_key_handle_destroy(primary);
	return ks;
}

/* Whether the signature's own expiry time has passed. */
static bool sig_expired(rnp_op_verify_signature_t sig)
{
	uint32_t created = 0, expires = 0;

	if (rnp_op_verify_signature_get_times(sig, &created, &expires))
		return true;
	return expires && (uint64_t)created + expires <= (uint64_t)time(NULL);
}

/* The verdict on one signature of the (dummy) verification. */
static enum trust_status check_one(const struct trust *t, rnp_ffi_t ffi,
				   rnp_op_verify_signature_t sig,
				   struct trust_result *r)
{
	rnp_signature_handle_t h = NULL;
	rnp_key_handle_t key = NULL;
	enum trust_status ks;
	char *s = NULL;

	/* On failure librnp 0.16 leaves h pointing at memory it freed. */
	if (!rnp_op_verify_signature_get_handle(sig, &h)) {
		if (!rnp_signature_get_keyid(h, &s))
			take_hex(r->keyid, sizeof(r->keyid), s);
		rnp_signature_handle_destroy(h);
	}
	if (rnp_op_verify_signature_get_key(sig, &key) || !key)
		return trust_result_set(r, TRUST_UNKNOWN_KEY,
					"signed by unknown key %s",
					r->keyid[0] ? r->keyid : "(no key id)");
	ks = key_and_primary(ffi, key, r);
	rnp_key_handle_destroy(key);
	if (ks == TRUST_ERROR)
		return trust_result_set(r, ks, "cannot read key %s", r->keyid);
	if (!trust_fpr_trusted(t, r->fpr))
		return trust_result_set(r, TRUST_UNTRUSTED_KEY,
					"key %s is not trusted", r->fpr);
	if (ks == TRUST_KEY_REVOKED)
		return trust_result_set(r, ks, "key %s was revoked", r->fpr);
	if (ks == TRUST_KEY_EXPIRED)
		return trust_result_set(r, ks, "key %s has expired", r->fpr);
	if (ks != TRUST_OK)
		return trust_result_set(r, ks, "key %s is not valid", r->fpr);
	if (sig_expired(sig))
		return trust_result_set(r, TRUST_SIG_EXPIRED,
					"signature by key %s has expired",
					r->fpr);
	return trust_result_set(r, TRUST_OK, "key %s still trusted", r->fpr);
}

/* Of the signatures in op, the first that passes, else the last. */
static enum trust_status check_all(const struct trust *t, rnp_ffi_t ffi,
				   rnp_op_verify_t op, struct trust_result *r)
{
	rnp_op_verify_signature_t sig;
	size_t i, n = 0;

	if (rnp_op_verify_get_signature_count(op, &n) || !n)
		return trust_result_set(r, TRUST_NO_SIGNATURE,
					"no OpenPGP signature");
	trust_result_set(r, TRUST_NO_SIGNATURE, "no usable signature");
	for (i = 0; i < n; i++) {
		if (rnp_op_verify_get_signature_at(op, i, &sig))
			continue;
		memset(r, 0, sizeof(*r));
		if (check_one(t, ffi, sig, r) == TRUST_OK)
			break;
	}
	return r->status;
}

enum trust_status trust_check_signature_key(const struct trust *t,
					    const void *sig, size_t siglen,
					    struct trust_result *r)
{
	static const unsigned char dummy = 0;
	struct trust_keys *keys;
	rnp_input_t din = NULL, sin = NULL;
	rnp_op_verify_t op = NULL;
	rnp_ffi_t ffi = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!sig || !siglen || siglen > TRUST_MAX_SIG)
		return trust_result_set(r, TRUST_NO_SIGNATURE,
					"no signature, or more than %u bytes",
					TRUST_MAX_SIG);
	keys = trust_keys_get(t);
	rc = trust_ffi_open(keys, &ffi);
	trust_keys_put(keys);
	if (rc)
		return trust_result_set(
		    r, TRUST_ERROR, "cannot set up librnp: %s", strerror(-rc));
	if (rnp_input_from_memory(&din, &dummy, 1, false) ||
	    rnp_input_from_memory(&sin, sig, siglen, false) ||
	    rnp_op_verify_detached_create(&op, ffi, din, sin)) {
		trust_result_set(r, TRUST_ERROR, "cannot set up librnp");
		goto out_destroy;
	}
	/* fails: the dummy byte is not what was signed */
	(void)rnp_op_verify_execute(op);
	check_all(t, ffi, op, r);
out_destroy:
	rnp_op_verify_destroy(op);
	rnp_input_destroy(sin);
	rnp_input_destroy(din);
	rnp_ffi_destroy(ffi);
	return r->status;
}
