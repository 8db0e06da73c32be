#!/usr/bin/env bash
# bench/disktier.sh [FIXTURE_DIR] [VARIANT]
# bench/disktier.sh --synthetic SIZE
#
# Warm reads from the disk tier (-o cache_size): the largest regular file
# of the fixture is read once through a mount (filling the tier), then the
# daemon is replaced by a fresh one on the same cache directory, the page
# cache is dropped and the file is read again: every block comes from the
# disk tier (checked against its SHA-256), none from nginx. Beside it, a
# plain `cat` of the same file in the fixture's extraction, page cache
# dropped too. VARIANT is tar (default: no decoding, the tier's own
# speed), tar.gz or tar.zst. FIXTURE_DIR defaults to SFFS_FIXTURE_DIR; a
# larger one comes from scripts/make-fixture.sh DIR --filler SIZE, or
# --synthetic SIZE makes a tar of one file of SIZE random bytes.
# Needs root (drops the page cache), a built tree (SFFS_BUILD, default
# build/), nginx.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}
source "$SFFS_SRC/tests/lib/common.sh"
source "$here/lib-bench.sh"
if [ "${1:-}" = --synthetic ]; then
	# one file of SIZE random bytes in an uncompressed tar: cheap to make
	fx=$TEST_TMP/fixture
	mkdir -p "$fx/extract"
	head -c "${2:?--synthetic SIZE}" /dev/urandom >"$fx/extract/big.bin"
	tar -C "$fx/extract" -cf "$fx/$FIXTURE_NAME.tar" big.bin
	variant=tar
else
	fx=$(cd "${1:-${SFFS_FIXTURE_DIR:?give FIXTURE_DIR}}" && pwd)
	variant=${2:-tar}
fi

[ "$(id -u)" -eq 0 ] || fail "needs root (drops the page cache)"
name=$FIXTURE_NAME.$variant
www=$TEST_TMP/www
mkdir -p "$www"
ln -s "$fx/$name" "$www/$name"
"$SFFS_INDEX" -q "$fx/$name" -o "$www/$name.sfidx"
nginx_start "$www"
big=$(cd "$fx/extract" && find . -type f -printf '%s %P\n' | sort -n |
	awk 'END { sub(/^[0-9]+ /, ""); print }')
size=$(stat -c %s "$fx/extract/$big")
# SFFS_BENCH_CACHE: the cache directory (default under TEST_TMP; a tmpfs
# such as /dev/shm/x measures the tier without the disk)
opts=(-o "cache_dir=${SFFS_BENCH_CACHE:-$TEST_TMP/cache},cache_size=8G,quiet")

# timed_cat FILE: seconds to read FILE, page cache dropped first.
timed_cat() {
	local t0 t1
	drop_caches
	t0=$(now)
	cat "$1" >/dev/null
	t1=$(now)
	elapsed "$t0" "$t1"
}
rate() { # bytes seconds
	awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'
}

mnt=$TEST_TMP/mnt-cold
sffs_mount "$NGINX_URL/$name" "$mnt" "${opts[@]}"
cold=$(timed_cat "$mnt/$big")
sffs_unmount "$mnt"

mnt=$TEST_TMP/mnt-warm
sffs_mount "$NGINX_URL/$name" "$mnt" "${opts[@]}"
log_settle
m0=$(log_mark)
warm=$(timed_cat "$mnt/$big")
log_settle
read -r wbytes _ <<<"$(log_since "$m0")"
stats=$(getfattr -n user.sffs.stats --only-values "$mnt")
sffs_unmount "$mnt"
local_s=$(timed_cat "$fx/extract/$big")

echo "| read of $big ($size bytes, $variant) | seconds | MB/s |"
echo "|---|---:|---:|"
echo "| sffs, cold (nginx on loopback) | $cold | $(rate "$size" "$cold") |"
echo "| sffs, warm from the disk tier ($wbytes bytes from nginx) | $warm | $(rate "$size" "$warm") |"
echo "| cat of the local extraction | $local_s | $(rate "$size" "$local_s") |"
echo
echo "warm daemon: $(tr ' ' '\n' <<<"$stats" | grep -E '^(disk_|block_bytes|blocks_fetched)' | tr '\n' ' ')"
