#!/usr/bin/env bash
# bench/relocate.sh FIXTURE_DIR [RUNS]
#
# What relocation costs the daemon (issue 18's target: <= 5% CPU on a
# sequential read of a relocated 100 MB library). A 100 MB shared library
# is made from the fixture's libslurmfull.so: a 100 MB section of random
# bytes with 300 C strings under the factory's padded build tree spread
# through it, and an RPATH there; it is served (gzip -1, nginx on
# loopback) in a view mounted twice, without and with -o relocate=OLD.
# For each mount: read 1 (page cache dropped; relocated: includes the
# one-time patch list, computed over the whole file), then RUNS reads
# more, each after a page-cache drop (the daemon's 64 MiB chunk cache
# cannot hold the file, so every read decodes again: the steady state).
# Prints the daemon's CPU time (utime + stime from /proc) and the wall
# time of each read, their medians, and the overhead of the relocated
# steady state. Needs root (drop_caches), patchelf, objcopy, a built tree
# (SFFS_BUILD, default build/).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
fx=$(cd "$1" && pwd)
runs=${2:-5}
source "$SFFS_SRC/tests/lib/common.sh"
source "$here/lib-bench.sh"
require_tool patchelf objcopy python3

pad_root() {
	local r=/opt/slurm/software
	while [ ${#r} -lt 128 ]; do r="$r/__spack_path_placeholder__"; done
	r=${r:0:128}
	echo "${r%/}"
}
OLD=$(pad_root)
src=$TEST_TMP/src
mkdir -p "$src/view/lib"
python3 - "$TEST_TMP/payload" "$OLD" <<'EOF'
import os, random, sys
out, old = sys.argv[1], sys.argv[2].encode()
size, n = 100 * 1000 * 1000, 300
random.seed(18)
data = bytearray(os.urandom(size))
for k in range(n):
    s = old + b"/view/share/slurm/file%03d.conf\0" % k
    at = (k + 1) * (size // (n + 1))
    data[at:at + len(s)] = s
open(out, "wb").write(data)
EOF
lib=$src/view/lib/libbig.so
objcopy --add-section .payload="$TEST_TMP/payload" \
	--set-section-flags .payload=noload,readonly \
	"$fx/extract/view/lib/libslurmfull.so" "$lib"
patchelf --force-rpath --set-rpath "$OLD/view/lib:$OLD/view/lib/slurm" "$lib"
size=$(stat -c %s "$lib")
www=$TEST_TMP/www
mkdir -p "$www"
tar -C "$src" -cf - . | gzip -1 >"$www/big.tar.gz"
nginx_start "$www"
log "libbig.so: $(mb "$size") MB, artifact $(mb "$(stat -c %s "$www/big.tar.gz")") MB"

# cpu_ticks PID: utime + stime of every thread, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

# one_read MNT PID: prints "CPU_SECONDS WALL_SECONDS" of one read of the
# library after a page-cache drop.
one_read() {
	local c0 c1 t0 t1
	drop_caches
	c0=$(cpu_ticks "$2")
	t0=$(now)
	dd if="$1/view/lib/libbig.so" of=/dev/null bs=1M status=none
	t1=$(now)
	c1=$(cpu_ticks "$2")
	echo "$(awk -v a="$c0" -v b="$c1" -v h="$hz" 'BEGIN { printf "%.3f", (b - a) / h }') $(elapsed "$t0" "$t1")"
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A CPU WALL FIRST
for mode in plain relocated; do
	mnt=$TEST_TMP/mnt-$mode
	opts=(-o cache_dir=none -o quiet)
	[ "$mode" = plain ] || opts+=(-o "relocate=$OLD")
	mount_fg "$NGINX_URL/big.tar.gz" "$mnt" "$TEST_TMP/$mode.log" "${opts[@]}"
	pid=$MOUNT_FG_PID
	FIRST[$mode]=$(one_read "$mnt" "$pid")
	: >"$TEST_TMP/$mode.cpu"
	: >"$TEST_TMP/$mode.wall"
	for ((k = 0; k < runs; k++)); do
		read -r c w < <(one_read "$mnt" "$pid")
		echo "$c" >>"$TEST_TMP/$mode.cpu"
		echo "$w" >>"$TEST_TMP/$mode.wall"
	done
	CPU[$mode]=$(median <"$TEST_TMP/$mode.cpu")
	WALL[$mode]=$(median <"$TEST_TMP/$mode.wall")
	if [ "$mode" = relocated ]; then
		cmp <(python3 "$SFFS_SRC/tests/lib/spack_relocate_ref.py" binary "$lib" /dev/stdout \
			--map "$OLD" "$(cd "$mnt" && pwd)") "$mnt/view/lib/libbig.so" ||
			fail "the relocated library differs from the reference"
		log "relocated library equals the reference; $(getfattr --only-values -n user.sffs.relocation "$mnt/view/lib/libbig.so")"
		log "$(getfattr --only-values -n user.sffs.relocation "$mnt")"
	fi
	log "$mode: first read ${FIRST[$mode]} (cpu s, wall s); steady cpu $(tr '\n' ' ' <"$TEST_TMP/$mode.cpu")s, wall $(tr '\n' ' ' <"$TEST_TMP/$mode.wall")s"
	sffs_unmount "$mnt"
done

echo
echo "| read of a $(mb "$size") MB library | daemon CPU s (median of $runs) | wall s | first read (cpu, wall) |"
echo "|---|---|---|---|"
for mode in plain relocated; do
	echo "| $mode | ${CPU[$mode]} | ${WALL[$mode]} | ${FIRST[$mode]} |"
done
awk -v a="${CPU[plain]}" -v b="${CPU[relocated]}" \
	'BEGIN { printf "\nsteady-state CPU overhead of relocation: %+.1f%%\n", (b - a) / a * 100 }'
