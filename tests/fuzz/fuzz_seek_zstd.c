/* SPDX-License-Identifier: MIT */
/* fuzz_seek_zstd.c - zstd seek points and spans; see fuzz_seek_index.h. */
#define FUZZ_CODEC SEEK_ZSTD
#include "fuzz_seek_index.h"
