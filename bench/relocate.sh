#!/usr/bin/env bash
# bench/relocate.sh FIXTURE_DIR [RUNS]
#
# What relocation costs the daemon (issue 18's target: <= 5% CPU on a
# sequential read of a relocated 100 MB library). A 100 MB shared library
# is made from the fixture's libslurmfull.so: a 100 MB section of its
# real libraries' bytes (compressing as a library does) with 300 C strings under the factory's padded build tree spread
# through it, and an RPATH there; it is served (gzip -6, nginx on
# loopback) in a view mounted twice, without and with -o relocate=OLD.
# For each mount: read 1 (page cache dropped; relocated: includes the
# one-time patch list, computed over the whole file), then RUNS reads
# more of each, interleaved, each after a page-cache drop (the daemon's 64 MiB chunk cache
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

# shellcheck source=tests/lib/spack-root.sh
source "$SFFS_SRC/tests/lib/spack-root.sh"
OLD=$(spack_padded_root)
src=$TEST_TMP/src
mkdir -p "$src/view/lib"
# The payload: the fixture's real libraries over and over (so it
# compresses as a library does, about 3:1), 300 prefixed strings in it.
python3 - "$TEST_TMP/payload" "$OLD" "$fx/extract/view/lib" <<'EOF'
import os, sys
out, old, libdir = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
size, n = 100 * 1000 * 1000, 300
real = b"".join(open(os.path.join(libdir, f), "rb").read()
                for f in sorted(os.listdir(libdir))
                if os.path.isfile(os.path.join(libdir, f))
                and not os.path.islink(os.path.join(libdir, f)))
data = bytearray((real * (size // len(real) + 1))[:size])
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
tar -C "$src" -cf - . | gzip -6 >"$www/big.tar.gz"
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

declare -A CPU WALL FIRST PID MNT
for mode in plain relocated; do
	MNT[$mode]=$TEST_TMP/mnt-$mode
	opts=(-o cache_dir=none -o quiet)
	[ "$mode" = plain ] || opts+=(-o "relocate=$OLD")
	mount_fg "$NGINX_URL/big.tar.gz" "${MNT[$mode]}" "$TEST_TMP/$mode.log" "${opts[@]}"
	PID[$mode]=$MOUNT_FG_PID
	FIRST[$mode]=$(one_read "${MNT[$mode]}" "${PID[$mode]}")
	: >"$TEST_TMP/$mode.cpu"
	: >"$TEST_TMP/$mode.wall"
done
# interleaved, so that the machine's drift falls on both alike
for ((k = 0; k < runs; k++)); do
	for mode in plain relocated; do
		read -r c w < <(one_read "${MNT[$mode]}" "${PID[$mode]}")
		echo "$c" >>"$TEST_TMP/$mode.cpu"
		echo "$w" >>"$TEST_TMP/$mode.wall"
	done
done
for mode in plain relocated; do
	CPU[$mode]=$(median <"$TEST_TMP/$mode.cpu")
	WALL[$mode]=$(median <"$TEST_TMP/$mode.wall")
	log "$mode: first read ${FIRST[$mode]} (cpu s, wall s); steady cpu $(tr '\n' ' ' <"$TEST_TMP/$mode.cpu")s, wall $(tr '\n' ' ' <"$TEST_TMP/$mode.wall")s"
done
mnt=${MNT[relocated]}
cmp <(python3 "$SFFS_SRC/tests/lib/spack_relocate_ref.py" binary "$lib" /dev/stdout \
	--map "$OLD" "$(cd "$mnt" && pwd)") "$mnt/view/lib/libbig.so" ||
	fail "the relocated library differs from the reference"
log "relocated library equals the reference; $(getfattr --only-values -n user.sffs.relocation "$mnt/view/lib/libbig.so")"
log "$(getfattr --only-values -n user.sffs.relocation "$mnt")"
sffs_unmount "${MNT[plain]}"
sffs_unmount "$mnt"

echo
echo "| read of a $(mb "$size") MB library | daemon CPU s (median of $runs) | wall s | first read (cpu, wall) |"
echo "|---|---|---|---|"
for mode in plain relocated; do
	echo "| $mode | ${CPU[$mode]} | ${WALL[$mode]} | ${FIRST[$mode]} |"
done
awk -v a="${CPU[plain]}" -v b="${CPU[relocated]}" \
	'BEGIN { printf "\nsteady-state CPU overhead of relocation: %+.1f%%\n", (b - a) / a * 100 }'

# ---- a tarball view: cold sinfo --version, with a published index ----
# The fixture's tarball as published (its ELF files use $ORIGIN RPATHs)
# beside the same tree whose ELF files point into the padded build tree,
# mounted with -o relocate=OLD: what relocating costs a cold start (each
# ELF file sinfo maps is read whole once, to compute its patch list).
SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}
view=$TEST_TMP/view
rm -rf "$view" && cp -a "$fx/extract" "$view"
while IFS= read -r f; do
	head -c 4 "$f" | grep -q ELF || continue
	chmod u+w "$f"
	patchelf --force-rpath --set-rpath "$OLD/view/lib:$OLD/view/lib/slurm" "$f"
done < <(find "$view/view" -type f | sort)
tar -C "$view" -czf "$www/padded.tar.gz" .
ln -sf "$fx/$FIXTURE_NAME.tar.gz" "$www/plain.tar.gz"
for a in plain padded; do
	"$SFFS_INDEX" -q "$www/$a.tar.gz" -o "$www/$a.tar.gz.sfidx"
done
conf=$TEST_TMP/slurm.conf
echo
echo "| cold sinfo --version (published index, cache_dir=none) | mount s | sinfo s | bytes | requests |"
echo "|---|---:|---:|---:|---:|"
for mode in plain relocated; do
	a=plain opts=()
	[ "$mode" = plain ] || { a=padded; opts=(-o "relocate=$OLD"); }
	mnt=$TEST_TMP/v-$mode
	drop_caches
	m0=$(log_mark)
	t0=$(now)
	sffs_mount "$NGINX_URL/$a.tar.gz" "$mnt" -o cache_dir=none -o quiet "${opts[@]}"
	t1=$(now)
	write_slurm_conf "$conf" "$mnt/view"
	run_sinfo "$mnt/view" "$conf"
	t2=$(now)
	log_settle
	read -r b n < <(log_since "$m0")
	echo "| $mode ($a.tar.gz) | $(elapsed "$t0" "$t1") | $(elapsed "$t1" "$t2") | $b | $n |"
	[ "$mode" = plain ] || log "$(getfattr --only-values -n user.sffs.relocation "$mnt")"
	sffs_unmount "$mnt"
done
