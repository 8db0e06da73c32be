#!/usr/bin/env bash
# bench/index.sh FIXTURE_DIR [SPAN [BLOCK]]
#
# The published-index numbers of issue 4, on one fixture (make-fixture.sh's
# OUTDIR; use --filler for a ~1.5 GB one):
#   - sffs-index throughput vs `gzip -dc | tar -t` on the same .tar.gz
#   - index size: eager part (header + members + points) and whole file
#   - mount-to-ready with the published index, cold, over loopback nginx
#   - cold `sinfo --version`: tarball bytes and requests, index bytes
#   - the same for a --repack'ed tarball, and its size cost
# Needs root (drops the page cache), a built tree (SFFS_BUILD, default
# build/), nginx. Prints a Markdown table. NO_REPACK=1 leaves out the
# repacked tarball (its repack takes minutes at 1.5 GB).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}
fx=$(cd "$1" && pwd)
span=${2:-}
block=${3:-}
source "$SFFS_SRC/tests/lib/common.sh"
source "$here/lib-bench.sh"

name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
mkdir -p "$www/plain" "$www/repacked"
ln -s "$fx/$name" "$www/plain/$name"
span_opt=()
[ -z "$span" ] || span_opt=(--span "$span")
[ -z "$block" ] || span_opt+=(--block "$block")

drop_caches
t0=$(now)
gzip -dc "$fx/$name" | tar -t >/dev/null
t_tar=$(elapsed "$t0" "$(now)")
drop_caches
t0=$(now)
"$SFFS_INDEX" -q "${span_opt[@]}" "$fx/$name" -o "$www/plain/$name.sfidx"
t_idx=$(elapsed "$t0" "$(now)")
if [ "${NO_REPACK:-0}" != 1 ]; then
	t0=$(now)
	"$SFFS_INDEX" --repack "$fx/$name" "$www/repacked/$name" 2>"$TEST_TMP/repack.log"
	t_repack=$(elapsed "$t0" "$(now)")
	"$SFFS_INDEX" -q "${span_opt[@]}" "$www/repacked/$name" -o "$www/repacked/$name.sfidx"
fi

# eager part = end of the BLOCKS section (format 2: table at 168, 56 bytes
# an entry: off, len)
eager() {
	python3 -c 'import struct,sys
h = open(sys.argv[1], "rb").read(4096)
off, ln = struct.unpack_from("<QQ", h, 168 + 2 * 56)
print(off + ln)' "$1"
}

nginx_start "$www"
conf=$TEST_TMP/slurm.conf

run_case() { # label dir
	local label=$1 d=$2 mnt=$TEST_TMP/mnt-$1 t0 t_ready t_sinfo b0 r0 b1 r1 i1 asize isize esize
	drop_caches
	b0=$(nginx_bytes_sent "/$d/$name")
	t0=$(now)
	sffs_mount "$NGINX_URL/$d/$name" "$mnt" -o cache_dir=none -o quiet
	t_ready=$(elapsed "$t0" "$(now)")
	printf 'ClusterName=b\nSlurmctldHost=localhost\nPluginDir=%s\n' "$mnt/view/lib/slurm" >"$conf"
	i1=$(nginx_bytes_sent "/$d/$name.sfidx")
	b0=$(($(nginx_bytes_sent "/$d/$name") - i1))
	r0=$(nginx_requests "/$d/")
	t0=$(now)
	env -i SLURM_CONF="$conf" "$mnt/view/bin/sinfo" --version >/dev/null
	t_sinfo=$(elapsed "$t0" "$(now)")
	b1=$(($(nginx_bytes_sent "/$d/$name") - $(nginx_bytes_sent "/$d/$name.sfidx") - b0))
	r1=$(($(nginx_requests "/$d/") - r0))
	asize=$(stat -L -c %s "$www/$d/$name")
	isize=$(stat -c %s "$www/$d/$name.sfidx")
	esize=$(eager "$www/$d/$name.sfidx")
	printf '| %s | %.1f MB | %s B (%.3f%%) | %s B (%.2f%%) | %s | %s | %.2f MB | %.2f MB | %s | %s |\n' \
		"$label" "$(echo "$asize / 1000000" | bc -l)" \
		"$esize" "$(echo "100 * $esize / $asize" | bc -l)" \
		"$isize" "$(echo "100 * $isize / $asize" | bc -l)" \
		"$t_ready" "$t_sinfo" "$(echo "$b0 / 1000000" | bc -l)" \
		"$(echo "$b1 / 1000000" | bc -l)" "$r1" \
		"$(($(nginx_bytes_sent "/$d/$name.sfidx") - i1))"
	sffs_unmount "$mnt"
}

echo
echo "fixture: $name ($(stat -c %s "$fx/$name") bytes)${span:+, span $span}${block:+, block $block}"
echo
echo "| tarball | size | eager part of index | whole index | mount-to-ready s | cold sinfo s | tarball MB at mount (edge check) | tarball MB for sinfo | requests for sinfo | index bytes for sinfo (windows) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
run_case plain plain
[ "${NO_REPACK:-0}" = 1 ] || run_case repacked repacked
echo
echo "sffs-index: ${t_idx} s; gzip -dc | tar -t: ${t_tar} s (sffs-index at $(echo "100 * $t_tar / $t_idx" | bc -l | cut -c1-5)% of its speed)"
[ "${NO_REPACK:-0}" = 1 ] ||
	echo "repack: ${t_repack} s; $(grep -o '([^)]*%' "$TEST_TMP/repack.log" | tr -d '(')"
