/* SPDX-License-Identifier: MIT */
/*
 * check.h - the smallest test harness that says what failed.
 *
 * CHECK(cond) records a failure with file:line and goes on; CHECK_EQ_U64
 * shows both values. check_done() prints "N passed, N failed" and returns
 * the exit status for main().
 */
#ifndef SFFS_CHECK_H
#define SFFS_CHECK_H

#include <inttypes.h>
#include <stdio.h>

static unsigned check_pass, check_fail;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (cond) {                                                    \
			check_pass++;                                          \
		} else {                                                       \
			check_fail++;                                          \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                     \
	do {                                                                   \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);               \
		if (a_ == b_) {                                                \
			check_pass++;                                          \
		} else {                                                       \
			check_fail++;                                          \
			fprintf(stderr,                                        \
				"%s:%d: %s == %s failed: %" PRIu64             \
				" != %" PRIu64 "\n",                           \
				__FILE__, __LINE__, #a, #b, a_, b_);           \
		}                                                              \
	} while (0)

static inline int check_done(void)
{
	printf("%u passed, %u failed\n", check_pass, check_fail);
	return check_fail ? 1 : 0;
}

#endif
