#!/usr/bin/env bash
# Benchmark: the ways of getting from a node that has nothing to a running
# `sinfo --version`, side by side in one run, against one nginx on loopback.
#
# usage: bench/run.sh [--filler SIZE | --fixture DIR] [--span SIZE[,SIZE...]]
#                     [--out FILE]
#
#   --filler SIZE   build (or reuse) a fixture with make-fixture.sh --filler
#                   SIZE under $SFFS_BENCH_FIXTURES (default
#                   ${TMPDIR:-/tmp}/sffs-bench-fixtures/filler-SIZE); default 0
#   --fixture DIR   use this make-fixture.sh OUTDIR as it is
#   --span LIST     one sffs row per seek-point spacing (passed as -o span=);
#                   default: one row with sffs's default spacing
#   --out FILE      where to write the Markdown (default
#                   bench/results-<.tar.gz size>.md)
#
# Environment: SFFS_BIN (default $SFFS_BUILD/sffs, SFFS_BUILD default
# <source>/build), SFFS_TEST_TMP (scratch parent), SFFS_KEEP_TMP=1.
# Needs root (drop_caches, mounts), nginx, curl, tar, gzip, zstd, mksquashfs,
# httpdirfs, squashfuse_ll, fusermount3. See bench/README.md.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(cd "$BENCH_DIR/.." && pwd)}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}

usage() {
	sed -n '4,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

FILLER=0
FIXTURE=
SPANS=
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--filler) [ $# -ge 2 ] || usage; FILLER=$2; shift 2 ;;
	--fixture) [ $# -ge 2 ] || usage; FIXTURE=$2; shift 2 ;;
	--span) [ $# -ge 2 ] || usage; SPANS=$2; shift 2 ;;
	--out) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done

# shellcheck source=../tests/lib/common.sh
source "$SFFS_SRC/tests/lib/common.sh"
# shellcheck disable=SC2034 # common.sh logs with it
TEST_NAME=bench
# shellcheck source=lib-bench.sh
source "$BENCH_DIR/lib-bench.sh"

# Cold-read sample: this many small files spread over the archive.
SMALL_FILES_N=8
SMALL_FILE_MAX=16384

[ "$(id -u)" -eq 0 ] || fail "run as root (drop_caches, FUSE mounts)"
for t in nginx curl tar gzip zstd mksquashfs httpdirfs squashfuse_ll fusermount3; do
	command -v "$t" >/dev/null || fail "$t not found (scripts/install-deps.sh)"
done
[ -x "$SFFS_BIN" ] || fail "sffs not found at $SFFS_BIN (set SFFS_BIN)"
SFFS_BIN=$(readlink -f "$SFFS_BIN")

prepare_fixture() {
	if [ -z "$FIXTURE" ]; then
		local root=${SFFS_BENCH_FIXTURES:-${TMPDIR:-/tmp}/sffs-bench-fixtures}
		FIXTURE=$root/filler-$FILLER
		timeout 3600 bash "$SFFS_SRC/scripts/make-fixture.sh" "$FIXTURE" \
			--filler "$FILLER" >&2 || fail "make-fixture.sh failed"
	fi
	FIXTURE=$(cd "$FIXTURE" && pwd)
	for f in "$FIXTURE_NAME.tar.gz" "$FIXTURE_NAME.tar.zst" extract; do
		[ -e "$FIXTURE/$f" ] || fail "no $f in fixture $FIXTURE"
	done
	GZ_SIZE=$(stat -c %s "$FIXTURE/$FIXTURE_NAME.tar.gz")
	ZST_SIZE=$(stat -c %s "$FIXTURE/$FIXTURE_NAME.tar.zst")
	TREE_BYTES=$(du -sb --apparent-size "$FIXTURE/extract" | cut -f1)
	LABEL=$(awk -v b="$GZ_SIZE" 'BEGIN { printf "%dMB", b / 1e6 + 0.5 }')
	OUT=${OUT:-$SFFS_SRC/bench/results-$LABEL.md}
}

# Small files (tar order) outside what sinfo reads, evenly spread.
pick_small_files() {
	local all n i
	all=$(cd "$FIXTURE/extract" &&
		find . -type f -size "-$((SMALL_FILE_MAX + 1))c" -size +0 |
		sed 's|^\./||' | LC_ALL=C sort |
			grep -Ev '^view/(bin|sbin)/|^view/lib/[^/]+$|^view/lib/slurm/')
	n=$(wc -l <<<"$all")
	[ "$n" -ge "$SMALL_FILES_N" ] || fail "only $n small files in the fixture"
	SMALL_FILES=()
	for ((i = 0; i < SMALL_FILES_N; i++)); do
		SMALL_FILES+=("$(sed -n "$((n * (2 * i + 1) / (2 * SMALL_FILES_N) + 1))p" <<<"$all")")
	done
}

# Serve the tarballs and the squashfs image (built now, not timed).
prepare_server() {
	WWW=$TEST_TMP/www
	mkdir -p "$WWW/sqfs"
	ln -s "$FIXTURE/$FIXTURE_NAME.tar.gz" "$FIXTURE/$FIXTURE_NAME.tar.zst" "$WWW/"
	step mksquashfs
	timeout 3600 mksquashfs "$FIXTURE/extract" "$WWW/sqfs/$FIXTURE_NAME.sqfs" \
		-comp gzip -b 128K -no-xattrs -noappend -quiet -no-progress >&2 ||
		fail "mksquashfs failed"
	SQFS_SIZE=$(stat -c %s "$WWW/sqfs/$FIXTURE_NAME.sqfs")
	NGINX_AUTOINDEX=on nginx_start "$WWW"
	GZ_URL=$NGINX_URL/$FIXTURE_NAME.tar.gz
}

ROWS=()        # main table rows
SFFS_ROWS=()   # sffs-specific rows
FIND_COUNTS=() # "way=entries"
SINFO_VERSION=

# add_row WAY SECS BYTES REQS FIND_COLD FIND_HOT
add_row() {
	ROWS+=("| $1 | $2 | $(mb "$3") | $4 | $5 | $6 |")
	FIND_COUNTS+=("$1: $FIND_ENTRIES")
	SINFO_VERSION=$SINFO_OUT
}

# index_secs ERRFILE: the indexing time sffs reported, or "-".
index_secs() {
	sed -n 's/.*ready in \([0-9.]*\) s (indexed).*/\1/p' "$1" | tail -n 1 | grep . || echo -
}

# index_mem ERRFILE: the index memory sffs reported, or "-".
index_mem() {
	sed -n 's/.*index memory \([0-9.]* [KMG]*i*B\).*/\1/p' "$1" | tail -n 1 | grep . || echo -
}

# sffs_small_reads MNT: cold reads of SMALL_FILES; sets SMALL_MEAN,
# SMALL_MAX (bytes the server sent per read that fetched anything),
# SMALL_REQS (mean requests per such read) and SMALL_HITS (reads served
# from sffs's memory cache, nothing fetched).
sffs_small_reads() {
	local mnt=$1 f m r b n total=0 max=0 reqs=0 fetched=0
	for f in "${SMALL_FILES[@]}"; do
		drop_caches
		m=$(log_mark)
		timeout 60 cmp "$mnt/$f" "$FIXTURE/extract/$f" ||
			fail "$f differs from GNU tar's extraction"
		log_settle
		r=$(log_since "$m")
		b=${r% *}
		n=${r#* }
		total=$((total + b))
		reqs=$((reqs + n))
		[ "$n" -eq 0 ] || fetched=$((fetched + 1))
		[ "$b" -le "$max" ] || max=$b
		log "cold read of $f ($(stat -c %s "$mnt/$f") B): $b B in $n requests"
	done
	SMALL_HITS=$((${#SMALL_FILES[@]} - fetched))
	SMALL_MEAN=$((total / (fetched > 0 ? fetched : 1)))
	SMALL_MAX=$max
	SMALL_REQS=$(awk -v r="$reqs" -v n="$fetched" 'BEGIN { printf "%.1f", r / (n ? n : 1) }')
}

# bench_sffs SPAN: cold mount of the .tar.gz, sinfo, find, small reads.
# The mount's pid and RSS are read between mount and sinfo, off the clock.
bench_sffs() {
	local span=$1 name mnt conf err opts=() m0 m1 t0 t1 t2 t3 pid rss rss_end
	local idx_wall secs mount_r sinfo_r cold hot
	name="sffs${span:+ span=$span}"
	step "$name"
	mnt=$TEST_TMP/sffs-${span:-default}
	conf=$TEST_TMP/sffs-${span:-default}.conf
	err=$TEST_TMP/sffs-${span:-default}.log
	mkdir -p "$mnt"
	write_slurm_conf "$conf" "$mnt/view"
	# Cold: no index cache, no published index - one streaming pass.
	opts=(-o cache_dir=none -o index=none)
	[ -z "$span" ] || opts+=(-o "span=$span")
	cleanup_push "sffs_unmount '$mnt'"
	drop_caches
	m0=$(log_mark)
	t0=$(now)
	timeout 900 "$SFFS_BIN" "${opts[@]}" "$GZ_URL" "$mnt" >"$err" 2>&1 ||
		fail "sffs ${opts[*]} failed: $(cat "$err")"
	t1=$(now)
	log_settle
	m1=$(log_mark)
	pid=$(sffs_pids "$mnt")
	[ -n "$pid" ] || fail "no sffs daemon for $mnt"
	rss=$(rss_kib "$pid")
	t2=$(now)
	run_sinfo "$mnt/view" "$conf"
	t3=$(now)
	log_settle
	mount_r=$(log_since "$m0")
	sinfo_r=$(log_since "$m1")
	idx_wall=$(elapsed "$t0" "$t1")
	secs=$(awk -v a="$idx_wall" -v b="$(elapsed "$t2" "$t3")" 'BEGIN { printf "%.3f", a + b }')
	drop_caches
	time_find "$mnt"
	cold=$FIND_SECS
	time_find "$mnt"
	hot=$FIND_SECS
	add_row "$name" "$secs" "${mount_r% *}" "${mount_r#* }" "$cold" "$hot"
	sffs_small_reads "$mnt"
	rss_end=$(rss_kib "$pid")
	SFFS_ROWS+=("| ${span:-default} | $idx_wall | $(index_secs "$err") | $(rate "$GZ_SIZE" "$idx_wall") | $(index_mem "$err") | $(mb $((rss * 1024))) | $(mb $((rss_end * 1024))) | $(elapsed "$t2" "$t3") | $(mb "${sinfo_r% *}") | ${sinfo_r#* } | $SMALL_MEAN | $SMALL_MAX | $SMALL_REQS | $SMALL_HITS |")
	log "$name: $(cat "$err")"
	sffs_unmount "$mnt"
}

# finish_way LABEL T0 MARK DIR: sinfo has printed; record the seconds since
# T0 and the traffic since MARK, then time find over DIR cold and hot.
finish_way() {
	local label=$1 t0=$2 m0=$3 dir=$4 secs r cold
	secs=$(elapsed "$t0" "$(now)")
	log_settle
	r=$(log_since "$m0")
	drop_caches
	time_find "$dir"
	cold=$FIND_SECS
	time_find "$dir"
	add_row "$label" "$secs" "${r% *}" "${r#* }" "$cold" "$FIND_SECS"
}

# The seed's documented way: download, tar -xzf, run.
bench_seed() {
	local dir=$TEST_TMP/seed conf m0 t0
	step seed
	mkdir -p "$dir/x"
	conf=$dir/slurm.conf
	write_slurm_conf "$conf" "$dir/x/view"
	drop_caches
	m0=$(log_mark)
	t0=$(now)
	timeout 1800 curl -sSf -o "$dir/$FIXTURE_NAME.tar.gz" "$GZ_URL" ||
		fail "curl download failed"
	timeout 1800 tar -xzf "$dir/$FIXTURE_NAME.tar.gz" -C "$dir/x" ||
		fail "tar -xzf failed"
	run_sinfo "$dir/x/view" "$conf"
	finish_way "download + tar -xzf" "$t0" "$m0" "$dir/x"
	rm -rf "$dir"
}

# What HPC sites use: a squashfs image over HTTP, httpdirfs (no cache) and
# squashfuse_ll on top.
bench_squashfs() {
	local hmnt=$TEST_TMP/httpdirfs smnt=$TEST_TMP/squashfs conf m0 t0
	step squashfs
	mkdir -p "$hmnt" "$smnt"
	conf=$TEST_TMP/squashfs.conf
	write_slurm_conf "$conf" "$smnt/view"
	cleanup_push "fuse_unmount httpdirfs '$hmnt'"
	cleanup_push "fuse_unmount squashfuse_ll '$smnt'"
	drop_caches
	m0=$(log_mark)
	t0=$(now)
	# --no-range-check: httpdirfs 1.2.5 wrongly decides that nginx cannot
	# serve ranges (httpdirfs issue #188); nginx can.
	timeout 120 httpdirfs --no-range-check "$NGINX_URL/sqfs/" "$hmnt" >"$TEST_TMP/httpdirfs.log" 2>&1 ||
		fail "httpdirfs failed: $(cat "$TEST_TMP/httpdirfs.log")"
	timeout 120 squashfuse_ll "$hmnt/$FIXTURE_NAME.sqfs" "$smnt" ||
		fail "squashfuse_ll failed"
	run_sinfo "$smnt/view" "$conf"
	finish_way "squashfs: httpdirfs + squashfuse_ll" "$t0" "$m0" "$smnt"
	fuse_unmount squashfuse_ll "$smnt"
	fuse_unmount httpdirfs "$hmnt"
}

# Indexing throughput against a plain streaming decompression, with the
# server's file in the page cache: "| input | way | s | MB/s |" rows.
THRU_ROWS=()
bench_throughput() {
	local fmt url size dec t0 t1 s mnt err ref
	for fmt in gz zst; do
		step "throughput $fmt"
		url=$NGINX_URL/$FIXTURE_NAME.tar.$fmt
		size=$(stat -c %s "$FIXTURE/$FIXTURE_NAME.tar.$fmt")
		dec="gzip -dc"
		[ "$fmt" = gz ] || dec="zstd -dc"
		cat "$FIXTURE/$FIXTURE_NAME.tar.$fmt" >/dev/null
		t0=$(now)
		timeout 1800 bash -o pipefail -c "curl -sSf '$url' | $dec >/dev/null" ||
			fail "curl | $dec failed"
		t1=$(now)
		ref=$(elapsed "$t0" "$t1")
		THRU_ROWS+=("| .tar.$fmt | curl \| $dec | $ref | $(rate "$size" "$ref") | 100% |")
		mnt=$TEST_TMP/thru-$fmt
		err=$TEST_TMP/thru-$fmt.log
		mkdir -p "$mnt"
		cleanup_push "sffs_unmount '$mnt'"
		t0=$(now)
		timeout 900 "$SFFS_BIN" -o cache_dir=none -o index=none "$url" "$mnt" >"$err" 2>&1 ||
			fail "sffs $url failed: $(cat "$err")"
		t1=$(now)
		s=$(elapsed "$t0" "$t1")
		sffs_unmount "$mnt"
		THRU_ROWS+=("| .tar.$fmt | sffs mount (index) | $s | $(rate "$size" "$s") | $(awk -v a="$ref" -v b="$s" 'BEGIN { printf "%.0f%%", 100 * a / b }') |")
		log "sffs $fmt: $(cat "$err")"
	done
}

report() {
	local sizes=
	[ ! -f "$FIXTURE/fixture.sizes" ] ||
		sizes=$(awk '{ n = $1; $1 = ""; printf "%s%s%s", (NR > 1 ? ", " : ""), n, $0 }' "$FIXTURE/fixture.sizes")
	cat <<EOF
# sffs benchmark: $LABEL fixture

Fixture: \`$FIXTURE_NAME.tar.gz\` $(mb "$GZ_SIZE") MB, \`.tar.zst\` $(mb "$ZST_SIZE") MB,
tree $(mb "$TREE_BYTES") MB, squashfs image $(mb "$SQFS_SIZE") MB (gzip, 128K blocks).
${sizes:+Sizes: $sizes.}
Host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1e6 }' /proc/meminfo) RAM,
Linux $(uname -r), nginx on 127.0.0.1. Measured $(date -u +%Y-%m-%d) by bench/run.sh.
Load average (1 min) at start $LOAD_START, at end $(cut -d' ' -f1 /proc/loadavg): other
work on the host adds noise; these are single runs.
\`sinfo --version\` printed: \`$SINFO_VERSION\`.

## From nothing to \`sinfo --version\` (page cache dropped before each way)

| way | s to sinfo --version | MB sent | requests | find cold s | find hot s |
|---|---:|---:|---:|---:|---:|
$(printf '%s\n' "${ROWS[@]}")

Entries listed by find: $(printf '%s; ' "${FIND_COUNTS[@]}" | sed 's/; $//').

## sffs details (.tar.gz)

| span | mount s | indexed in s (sffs) | index MB/s | index memory (sffs) | RSS after index MB | RSS at end MB | cold sinfo s | cold sinfo MB | cold sinfo requests | small read B (mean) | small read B (max) | requests per small read | small reads from cache |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${SFFS_ROWS[@]}")

Small reads: $SMALL_FILES_N files of at most $SMALL_FILE_MAX bytes spread over the
archive, each read with \`cmp\` after dropping the page cache; mean, max and
requests count the reads that fetched anything, the last column those that
sffs answered from its memory cache.

## Indexing throughput (server's file in the page cache)

| input | way | s | MB/s compressed | speed vs curl |
|---|---|---:|---:|---:|
$(printf '%s\n' "${THRU_ROWS[@]}")
EOF
}

main() {
	LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
	step fixture
	prepare_fixture
	log "fixture $FIXTURE: .tar.gz $GZ_SIZE bytes"
	pick_small_files
	prepare_server
	local s
	if [ -z "$SPANS" ]; then
		bench_sffs ""
	else
		for s in ${SPANS//,/ }; do
			bench_sffs "$s"
		done
	fi
	bench_seed
	bench_squashfs
	bench_throughput
	local unique
	unique=$(printf '%s\n' "${FIND_COUNTS[@]}" | sed 's/.*: //' | sort -u | wc -l)
	[ "$unique" -eq 1 ] || log "WARNING: find listed different entry counts: ${FIND_COUNTS[*]}"
	report | tee "$OUT"
	log "wrote $OUT"
}

main
