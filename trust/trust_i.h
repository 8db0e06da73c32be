/* SPDX-License-Identifier: MIT */
/*
 * trust_i.h - what trust.c (the set: keys, fingerprints, the trust rule),
 * verify.c (one librnp context per verification, the verdict) and
 * stream.c (a verification fed from a ring buffer in a thread) share.
 *
 * Invariants: key material is kept as the bytes it came in, in immutable
 * reference-counted snapshots; adding keys publishes a new snapshot under
 * the set's lock, so a verification takes a reference and imports from it
 * without holding the lock. librnp handles never outlive the verification
 * (and the thread) that made them.
 */
#ifndef SFFS_TRUST_I_H
#define SFFS_TRUST_I_H

#include "sffs/trust.h"

#include <pthread.h>
#include <rnp/rnp.h>
#include <stdatomic.h>

/* The key material at one moment: blob i is data[start(i), ends[i]). */
struct trust_keys {
	atomic_uint refs;
	size_t len;
	size_t n;
	size_t *ends;
	unsigned char *data;
};

struct trust_fprs {
	char (*v)[TRUST_FPR_LEN + 1];
	size_t n, cap;
};

struct trust {
	pthread_mutex_t lock;
	struct trust_keys *keys;  /* guarded by lock (the pointer) */
	struct trust_fprs named;  /* guarded by lock: trust_add_fpr* */
	struct trust_fprs opkeys; /* guarded by lock: operator primaries */
};

/* A reference to the current key material (never NULL after trust_new);
 * dropped with trust_keys_put. */
struct trust_keys *trust_keys_get(const struct trust *t);
void trust_keys_put(struct trust_keys *k);

/* Whether fpr (40 upper-case hex) is trusted; takes the lock. */
bool trust_fpr_trusted(const struct trust *t, const char *fpr);

/* A fresh librnp context with keys imported and its log silenced (unless
 * SFFS_TRUST_DEBUG is set). 0, or -ENOMEM / -EIO. */
int trust_ffi_open(struct trust_keys *keys, rnp_ffi_t *ffi);

/* The verdict over an executed verification (exec_rc: what
 * rnp_op_verify_execute returned). Fills *r, returns r->status. */
enum trust_status trust_judge(const struct trust *t, rnp_ffi_t ffi,
			      rnp_op_verify_t op, rnp_result_t exec_rc,
			      struct trust_result *r);

/* Sets r to status with a formatted detail; returns status. */
enum trust_status trust_result_set(struct trust_result *r,
				   enum trust_status status, const char *fmt,
				   ...) __attribute__((format(printf, 3, 4)));

/* Revoked, expired or without a valid self-signature, now (verify.c):
 * TRUST_OK, TRUST_KEY_REVOKED, TRUST_KEY_EXPIRED, TRUST_BAD_SIGNATURE
 * (then *what says why) or TRUST_ERROR. */
enum trust_status trust_key_state(rnp_key_handle_t key, const char **what);

#endif
