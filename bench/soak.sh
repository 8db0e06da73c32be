#!/usr/bin/env bash
# bench/soak.sh [--fixture DIR] [--seconds S] [--readers N] [--disk SIZE] [--out FILE]
#
# RSS of a daemon over a long read soak with the disk tier (issue "Survive
# the network"): the artifact mounted with its published index, -o
# cache_size=SIZE (default 2G) in a fresh cache directory, N readers
# (default 16: tests/lib/randread.c, each read compared byte for byte with
# the extraction, the file's pages dropped before each read so every read
# reaches the daemon) for S seconds (default 600). Every 30 s: the daemon's
# VmRSS, its threads, and the tiers' counters (memory hits, disk hits,
# network blocks, disk use). Target: RSS flat. Needs root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(cd "$here/.." && pwd)}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
export SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}
RANDREAD=${SFFS_RANDREAD:-$SFFS_BUILD/tests/sffs_randread}
seconds=600 readers=16 disk=2G out=
while [ $# -gt 0 ]; do
	case $1 in
	--fixture) export SFFS_FIXTURE_DIR=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--readers) readers=$2; shift 2 ;;
	--disk) disk=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
# shellcheck source=../tests/lib/common.sh
source "$SFFS_SRC/tests/lib/common.sh"
# shellcheck source=lib-bench.sh
source "$here/lib-bench.sh"
[ -x "$RANDREAD" ] || RANDREAD=$(find "$SFFS_BUILD" -name sffs_randread -type f | head -1)
[ -x "$RANDREAD" ] || fail "sffs_randread not built"

fx=$(fixture_dir)
name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
mkdir -p "$www"
ln -s "$fx/$name" "$www/$name"
"$SFFS_INDEX" -q "$fx/$name" -o "$www/$name.sfidx"
nginx_start "$www"
mnt=$TEST_TMP/mnt
mount_fg "$NGINX_URL/$name" "$mnt" "$TEST_TMP/daemon.log" -o cache_dir="$TEST_TMP/cache",cache_size="$disk"
pid=$MOUNT_FG_PID
stat_of() { getfattr --absolute-names --only-values -n user.sffs.stats "$mnt" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# readers in rounds of 2000 reads each until the time is up
end=$(($(date +%s) + seconds))
pids=()
for ((r = 0; r < readers; r++)); do
	(
		seed=$r
		while [ "$(date +%s)" -lt "$end" ]; do
			"$RANDREAD" "$mnt" "$fx/extract" 1 2000 "$seed" >/dev/null || exit 1
			seed=$((seed + readers))
		done
	) &
	pids+=($!)
done
report="| t (s) | VmRSS (MiB) | threads | block_hits | disk_blocks | blocks_fetched | disk_used (MiB) |
|---:|---:|---:|---:|---:|---:|---:|"
t0=$(date +%s)
while :; do
	t=$(($(date +%s) - t0))
	rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
	thr=$(awk '/^Threads/ { print $2 }' "/proc/$pid/status")
	row="| $t | $rss | $thr | $(stat_of block_hits) | $(stat_of disk_blocks) | $(stat_of blocks_fetched) | $(awk -v b="$(stat_of disk_used)" 'BEGIN { printf "%.1f", b / 1048576 }') |"
	report+=$'\n'"$row"
	log "$row"
	[ "$(date +%s)" -lt "$end" ] || break
	sleep 30
done
for p in "${pids[@]}"; do
	wait "$p" || fail "a reader failed (bytes differ or a read error); the daemon said: $(grep -E 'error|warning' "$TEST_TMP/daemon.log" | tail -20)"
done
hwm=$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
report+=$'\n\n'"VmHWM at the end: $hwm MiB; $readers readers for $seconds s, every read compared byte for byte."
echo "$report"
[ -z "$out" ] || echo "$report" >"$out"
