#!/usr/bin/env bash
# bench/rss.sh FIXTURE_DIR [CACHE_MEM]
#
# Daemon memory after reading every file of a fixture (make-fixture.sh's
# OUTDIR) through a mount with a published index and -o cache_mem
# (default 64M): VmRSS and VmHWM of the daemon, and what its counters say
# it holds (decoded chunks, verified blocks, windows, tree and points).
# Needs root (drops the page cache), a built tree (SFFS_BUILD, default
# build/), nginx. Prints a Markdown row.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}
fx=$(cd "$1" && pwd)
cache_mem=${2:-64M}
source "$SFFS_SRC/tests/lib/common.sh"
source "$here/lib-bench.sh"

name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
mkdir -p "$www"
ln -s "$fx/$name" "$www/$name"
"$SFFS_INDEX" -q "$fx/$name" -o "$www/$name.sfidx"
nginx_start "$www"
mnt=$TEST_TMP/mnt
drop_caches
sffs_mount "$NGINX_URL/$name" "$mnt" -o cache_dir=none -o quiet -o "cache_mem=$cache_mem"
pid=$(sffs_pids "$mnt")
rss0=$(rss_kib "$pid")
t0=$(now)
files=$(cd "$mnt" && find . -type f | wc -l)
(cd "$mnt" && find . -type f -print0 | xargs -0 cat >/dev/null)
t_read=$(elapsed "$t0" "$(now)")
sleep 1
stats=$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.sffs.stats").decode())' "$mnt")
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
rss=$(rss_kib "$pid")
get() { tr ' ' '\n' <<<"$stats" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
echo
echo "fixture: $name ($(stat -L -c %s "$fx/$name") bytes), cache_mem=$cache_mem, $files files read in $t_read s"
echo
echo "| RSS at mount MB | RSS after MB | peak RSS MB | chunks MB | blocks MB | windows MB | tree+points MB | MB fetched |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '| %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n' \
	"$(echo "$rss0 / 1024" | bc -l)" "$(echo "$rss / 1024" | bc -l)" \
	"$(echo "$hwm / 1024" | bc -l)" \
	"$(echo "$(get cache_bytes) / 1048576" | bc -l)" \
	"$(echo "$(get block_mem) / 1048576" | bc -l)" \
	"$(echo "$(get window_mem) / 1048576" | bc -l)" \
	"$(echo "$(get index_mem) / 1048576" | bc -l)" \
	"$(echo "$(get bytes) / 1000000" | bc -l)"
[ -z "${RSS_HOLD:-}" ] || sleep "$RSS_HOLD"
sffs_unmount "$mnt"
