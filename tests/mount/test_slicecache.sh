#!/usr/bin/env bash
# Hundreds of nodes behind one HTTP cache: 32 sffs daemons started cold at
# once behind one nginx `slice` cache (slice = the block size, the
# configuration README.md recommends), each running slurmd -V and sinfo
# --version from its mount (bench/slicecache.sh does the work and prints
# its table). The origin must send at most 1.01x the unique bytes the
# mounts asked for and no more requests than unique blocks; here, with
# proxy_cache_lock, exactly one request per unique block.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool nginx getfattr

fx=$(fixture_dir)
out=$TEST_TMP/slicecache.md
SFFS_FIXTURE_DIR=$fx bash "$SFFS_SRC/bench/slicecache.sh" --fixture "$fx" --mounts 32 --out "$out" ||
	fail "bench/slicecache.sh failed"
cat "$out" >&2
# | tarball | asked | unique bytes | unique blocks | origin bytes | origin requests | ratio | per mount |
read -r ub blocks ob oreq < <(awk -F'|' '$2 ~ /tarball/ { print $4 + 0, $5 + 0, $6 + 0, $7 + 0 }' "$out")
[ "${blocks:-0}" -gt 0 ] || fail "no blocks asked: $(cat "$out")"
[ "$oreq" -le "$blocks" ] || fail "origin requests $oreq > unique blocks $blocks"
awk -v o="$ob" -v u="$ub" 'BEGIN { exit !(o <= 1.01 * u) }' || fail "origin bytes $ob > 1.01 x unique $ub"
log "origin: $ob bytes in $oreq requests for $ub unique bytes in $blocks blocks"
