/* SPDX-License-Identifier: MIT */
/*
 * trust.h - OpenPGP signatures checked against configured keys.
 *
 * A trust set holds public keys (armoured or binary, as gpg exports them)
 * and the fingerprints that are trusted. Keys come from the operator's
 * keyring (trusted, unless fingerprints were named: then only those are)
 * or are offered by a server (used only when their fingerprint is
 * trusted). It verifies a detached signature over a buffer or over a
 * byte stream fed piece by piece, and a clearsigned document, and says
 * who signed or precisely why not.
 *
 * A signature is accepted when at least one of its signatures is valid,
 * made by a key (or a subkey of a key) whose primary fingerprint is
 * trusted, and that key is neither expired nor revoked now.
 *
 * Built on librnp; every verification gets its own librnp context, so a
 * set may be used from many threads at once once set up (trust_add_*
 * take an internal lock and may run concurrently with verifications).
 * No FUSE, no HTTP.
 */
#ifndef SFFS_TRUST_H
#define SFFS_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRUST_FPR_LEN 40 /* hex digits of a v4 fingerprint */
/* Bounds on what a verification reads into memory. */
#define TRUST_MAX_SIG (64u * 1024)        /* a detached signature */
#define TRUST_MAX_KEYS (16u * 1024 * 1024) /* key material in a set */
#define TRUST_MAX_DOC (64u * 1024 * 1024) /* a clearsigned document */

enum trust_status {
	TRUST_OK = 0,
	TRUST_NO_SIGNATURE,  /* no OpenPGP signature in the input */
	TRUST_UNKNOWN_KEY,   /* signed by a key the set does not hold */
	TRUST_UNTRUSTED_KEY, /* signed by a held key whose fingerprint is
				not trusted */
	TRUST_BAD_SIGNATURE, /* the data or the signature was changed */
	TRUST_KEY_EXPIRED,   /* the signing key has expired */
	TRUST_KEY_REVOKED,   /* the signing key was revoked */
	TRUST_SIG_EXPIRED,   /* the signature itself has expired */
	TRUST_UNSUPPORTED,   /* an algorithm or version librnp refuses */
	TRUST_ERROR,         /* out of memory, or a librnp failure */
};

struct trust_result {
	enum trust_status status;
	/* The signer's primary key fingerprint, upper-case hex, when the
	 * key is held (also on failure); "" otherwise. */
	char fpr[TRUST_FPR_LEN + 1];
	/* The key id the signature names, upper-case hex, or "". */
	char keyid[17];
	/* One line for the log: what failed, with the key id or
	 * fingerprint ("bad signature by key 0123…", "key ABCD… is not
	 * trusted"). */
	char detail[256];
	/* The signature's creation time (seconds since the epoch, as its
	 * signer's clock said), or 0 when unknown. */
	uint64_t sig_time;
};

struct trust;

/* An empty set. NULL on ENOMEM. */
struct trust *trust_new(void);
void trust_free(struct trust *t);

/* Trusts the key whose primary fingerprint is fpr (40 hex digits, any
 * case, spaces allowed between groups as gpg prints them). 0 or
 * -EINVAL. */
int trust_add_fpr(struct trust *t, const char *fpr);
/* Parses a list of fingerprints separated by ':' or ','. 0 or -EINVAL
 * with the offending entry named in err. */
int trust_add_fpr_list(struct trust *t, const char *list, char *err,
		       size_t errlen);

/*
 * Adds the public keys in data (armoured or binary; several keys may
 * follow one another). With operator true the keys come from the
 * operator and each primary key is trusted unless fingerprints were
 * given with trust_add_fpr (then those decide); with operator false
 * they were offered by a server and are used only if trusted by
 * fingerprint. Secret keys are ignored. Returns the number of primary
 * keys added (>= 1), or -EINVAL (no key in data, or malformed: reason in
 * err), -E2BIG (beyond TRUST_MAX_KEYS), -ENOMEM.
 */
int trust_add_keys(struct trust *t, const void *data, size_t len,
		   bool operator, char *err, size_t errlen);
/* trust_add_keys(operator=true) of a file's content. */
int trust_add_keyring_file(struct trust *t, const char *path, char *err,
			   size_t errlen);

/* Number of trusted fingerprints (named, or from operator keys). */
size_t trust_count(const struct trust *t);
/* Whether fpr (40 hex, upper-case) is trusted. */
bool trust_is_trusted(const struct trust *t, const char *fpr);
/* Writes the trusted fingerprints, ':'-separated, into buf (for logs and
 * xattrs). Returns the length it needed (like snprintf). */
size_t trust_describe(const struct trust *t, char *buf, size_t len);

/*
 * Verifies a detached signature (armoured or binary, at most
 * TRUST_MAX_SIG bytes) over data. Fills *r; returns r->status.
 */
enum trust_status trust_verify_detached(const struct trust *t,
					const void *data, size_t len,
					const void *sig, size_t siglen,
					struct trust_result *r);

/*
 * The same over a stream: trust_stream_new starts the verification (a
 * thread of its own consumes what trust_stream_feed hands it, so the
 * feeder keeps its pace), trust_stream_finish waits for the result and
 * frees the stream. trust_stream_feed returns 0, or -errno if the
 * verification can no longer succeed (the stream is then only drained).
 * trust_stream_abort frees a stream whose data will not be complete.
 * NULL from trust_stream_new on ENOMEM or an oversized signature (r
 * says which).
 */
struct trust_stream;
struct trust_stream *trust_stream_new(const struct trust *t, const void *sig,
				      size_t siglen, struct trust_result *r);
int trust_stream_feed(struct trust_stream *s, const void *data, size_t len);
enum trust_status trust_stream_finish(struct trust_stream *s,
				      struct trust_result *r);
void trust_stream_abort(struct trust_stream *s);

/*
 * Verifies a clearsigned document (-----BEGIN PGP SIGNED MESSAGE-----,
 * at most TRUST_MAX_DOC bytes). On TRUST_OK only, *text (malloc'd,
 * NUL-terminated) and *textlen get the signed text with the dash
 * escaping undone; on any failure *text is NULL - the text of a bad
 * signature is never handed out.
 */
enum trust_status trust_verify_clearsigned(const struct trust *t,
					   const void *doc, size_t len,
					   char **text, size_t *textlen,
					   struct trust_result *r);

/* "bad signature", "unknown key", ... */
const char *trust_status_str(enum trust_status s);

/*
 * Whether the key that made the detached signature sig (armoured or
 * binary, at most TRUST_MAX_SIG bytes) still counts, without the data it
 * was made over: its key is held, its primary fingerprint trusted, the
 * key and its primary neither revoked nor expired now, and the signature
 * not expired. It does NOT check the signature against any data (it
 * cannot re-hash what was signed): it is for a signature that verified
 * some bytes earlier, kept beside what was derived from them. Fills *r
 * (r->fpr: the signer's primary fingerprint when the key is held);
 * returns r->status. Thread safety as trust_verify_detached.
 */
enum trust_status trust_check_signature_key(const struct trust *t,
					    const void *sig, size_t siglen,
					    struct trust_result *r);

#endif
