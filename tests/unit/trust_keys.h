/* SPDX-License-Identifier: MIT */
/*
 * trust_keys.h - the GnuPG keys and signatures the OpenPGP unit tests use,
 * made at test time by tests/unit/trust-keys.sh (which kills its agent)
 * in $SFFS_TEST_TMP/<name>, its output in <name>.log.
 */
#ifndef SFFS_TRUST_KEYS_H
#define SFFS_TRUST_KEYS_H

#include <stdio.h>
#include <stdlib.h>

/* Makes the keys into dir (set to $SFFS_TEST_TMP/name); mib: MiB of the
 * zeros the bench signs. 0, or -1 after saying why. */
static inline int trust_keys_make(char *dir, size_t dirlen, const char *name,
				  const char *mib)
{
	const char *src = getenv("SFFS_SRC"), *tmp = getenv("SFFS_TEST_TMP");
	char cmd[2048];

	snprintf(dir, dirlen, "%s/%s", tmp ? tmp : "/tmp", name);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s' && bash '%s/tests/unit/trust-keys.sh' '%s' %s "
		 ">'%s.log' 2>&1",
		 dir, src ? src : ".", dir, mib, dir);
	if (system(cmd)) { // NOLINT(cert-env33-c): a test's fixed script
		fprintf(stderr, "%s failed; see %s.log\n", cmd, dir);
		return -1;
	}
	return 0;
}

#endif
