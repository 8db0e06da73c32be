/* SPDX-License-Identifier: MIT */
/* fuzz_seek_gz.c - gzip seek points and spans; see fuzz_seek_index.h. */
#define FUZZ_CODEC SEEK_GZIP
#include "fuzz_seek_index.h"
