#!/usr/bin/env bash
# bench/memory.sh [MEMBERS]
#
# Daemon memory per archive member: builds a .tar.gz of MEMBERS (default
# 100000) small files spread over directories, mounts it (cache_mem=0, so
# only the index counts), and reports VmRSS after indexing and after a full
# `find`, against the same for a 1-member archive. Needs root (FUSE).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
members=${1:-100000}
source "$SFFS_SRC/tests/lib/common.sh"

src=$TEST_TMP/src
mkdir -p "$src/one"
echo x >"$src/one/f"
python3 - "$src/many" "$members" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
for i in range(n):
    d = os.path.join(root, "view", "share", "d%04d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d)
    with open(os.path.join(d, "file-%06d.txt" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randrange(0, 2048)))
PY
tar -C "$src/one" -czf "$TEST_TMP/one.tar.gz" .
tar -C "$src/many" -czf "$TEST_TMP/many.tar.gz" .

rss() { # mountpoint -> kB
	local pid
	pid=$(sffs_pids "$1" | head -1)
	awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"
}

measure() { # name
	local mnt=$TEST_TMP/mnt-$1 a b stats
	sffs_mount "$TEST_TMP/$1.tar.gz" "$mnt" -o cache_mem=0 -o cache_dir=none -o quiet
	a=$(rss "$mnt")
	find "$mnt" >/dev/null
	b=$(rss "$mnt")
	stats=$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.sffs.stats").decode())' "$mnt")
	echo "$1 $a $b $(grep -o 'index_mem=[0-9]*' <<<"$stats" | cut -d= -f2) $(grep -o 'members=[0-9]*' <<<"$stats" | cut -d= -f2)"
	sffs_unmount "$mnt"
}

read -r _ base_a base_b _ _ < <(measure one)
read -r _ a b imem inodes < <(measure many)
echo
echo "| archive | inodes | index memory (self-reported) | RSS after mount | RSS after find | (RSS - 1-member RSS) / inode |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| $members files, $(stat -c %s "$TEST_TMP/many.tar.gz") B .tar.gz | $inodes | $imem B ($((imem / inodes)) B/inode) | $a kB | $b kB | $(((b - base_b) * 1024 / inodes)) B |"
echo "| 1 file | | | $base_a kB | $base_b kB | |"
