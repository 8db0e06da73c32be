#!/usr/bin/env bash
# bench/cold.sh FIXTURE_DIR [INDEX_DIR]
#
# Where the bytes of a cold `sinfo --version` go, with a published index
# (the issue's cold-path target: <= 1.9 MB in all, index + tarball). One
# nginx on loopback, page cache dropped, cache_dir=none. Prints every
# request of the mount and of sinfo (status, bytes, Range, and what it
# read: index header, eager part, windows, edge check, tarball blocks),
# then the totals. INDEX_DIR holds a prebuilt .sfidx of the fixture's
# .tar.gz (else sffs-index writes one, ~20 s a GB).
# Needs root (drops the page cache), a built tree (SFFS_BUILD, default
# build/), nginx.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}
fx=$(cd "$1" && pwd)
source "$SFFS_SRC/tests/lib/common.sh"
source "$here/lib-bench.sh"

name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
mkdir -p "$www/p"
ln -s "$fx/$name" "$www/p/$name"
if [ -n "${2:-}" ]; then
	ln -s "$(cd "$2" && pwd)/$name.sfidx" "$www/p/$name.sfidx"
else
	"$SFFS_INDEX" -q "$fx/$name" -o "$www/p/$name.sfidx"
fi
nginx_start "$www"
conf=$TEST_TMP/slurm.conf
mnt=$TEST_TMP/mnt

drop_caches
m0=$(log_mark)
sffs_mount "$NGINX_URL/p/$name" "$mnt" -o cache_dir=none -o quiet
log_settle
m1=$(log_mark)
write_slurm_conf "$conf" "$mnt/view"
run_sinfo "$mnt/view" "$conf"
log_settle
m2=$(log_mark)
echo "sinfo printed: $SINFO_OUT"
echo
echo "| phase | status | bytes | uri | range |"
echo "|---|---:|---:|---|---|"
tail -n "+$((m0 + 1))" "$NGINX_LOG" | head -n "$((m2 - m0))" |
	awk -v m="$((m1 - m0))" '{ ph = NR <= m ? "mount" : "sinfo";
		u = $4; sub(/.*\//, "", u);
		printf "| %s | %s | %d | %s | %s |\n", ph, $1, $2, u, $5 }'
echo
tail -n "+$((m0 + 1))" "$NGINX_LOG" | head -n "$((m2 - m0))" |
	awk '{ n++; b += $2; if ($4 ~ /sfidx$/) { ib += $2; in_++ } }
		END { printf "total: %d B in %d requests (index %d B in %d, tarball %d B in %d)\n",
			b, n, ib, in_, b - ib, n - in_ }'
sffs_unmount "$mnt"
