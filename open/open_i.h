/* SPDX-License-Identifier: MIT */
/*
 * open_i.h - what open.c uses of the other files of open/.
 */
#ifndef SFFS_OPEN_I_H
#define SFFS_OPEN_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The rollback check (rollback.c): for an artifact accepted under trust,
 * the newest signed time (a signature's creation time, or an index
 * header's publication time) seen under key (an artifact's name: its
 * URL as logs show it, without query, or the catalog's
 * version/toolchain/name) is kept in a private file of dir (0600, written
 * to a temporary name and renamed). An artifact whose time is older than
 * that record and whose SHA-256 is another is refused unless allow; the
 * same artifact, or one as new or newer, is accepted and a newer time
 * recorded. dir NULL (no cache) or when 0 (unknown) checks nothing (a
 * debug line says so). 0, or -EKEYREJECTED with both times (ISO 8601)
 * and what to do in why. A record that cannot be read or written is
 * logged and checks nothing: the artifact is verified already, the
 * record only adds "not older".
 */
int rollback_check(const char *dir, const char *key, uint64_t when,
		   const unsigned char sha256[32], bool allow, char *why,
		   size_t whylen);

#endif
