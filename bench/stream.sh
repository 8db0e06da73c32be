#!/usr/bin/env bash
# Benchmark: a cold sequential read of one big file (256 MiB) out of a
# .tar.gz through a proxy that adds D ms to every request, against
# `curl URL | gzip -dc` through the same proxy.
#
# usage: bench/stream.sh [--quick] [--out FILE]
#
#   --quick      a 64 MiB file instead of 256 MiB (for development)
#   --out FILE   also write the table (Markdown) to FILE
#
# Environment: DELAYS (ms per request, default "0 20"), RUNS (runs of each
# way per delay, default 3; medians are reported), STREAM_PROXY (delayproxy,
# the default: tests/lib/delayproxy.py, asyncio; or slowlink:
# tests/lib/slowlink.py, threaded and blocking), SFFS_BENCH_WORK (where
# the tarball is built once and kept; default
# ${TMPDIR:-/tmp}/sffs-bench-stream), SFFS_BIN, SFFS_INDEX (default
# $SFFS_BUILD/sffs, $SFFS_BUILD/sffs-index; SFFS_BUILD default <source>/build),
# SFFS_TEST_TMP, SFFS_KEEP_TMP=1. Needs root (drop_caches, mounts), nginx,
# curl, gzip, tar, python3, fusermount3. See bench/README.md.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(cd "$BENCH_DIR/.." && pwd)}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}

usage() {
	sed -n '6,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

BIG_MIB=256
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) BIG_MIB=64; shift ;;
	--out) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
DELAYS=${DELAYS:-0 20}
RUNS=${RUNS:-3}
STREAM_PROXY=${STREAM_PROXY:-delayproxy}
case $STREAM_PROXY in
delayproxy | slowlink) ;;
*) echo "STREAM_PROXY must be delayproxy or slowlink, not '$STREAM_PROXY'" >&2; exit 2 ;;
esac

# shellcheck source=../tests/lib/common.sh
source "$SFFS_SRC/tests/lib/common.sh"
# shellcheck disable=SC2034 # common.sh logs with it
TEST_NAME=stream
# shellcheck source=lib-bench.sh
source "$BENCH_DIR/lib-bench.sh"

[ "$(id -u)" -eq 0 ] || fail "run as root (drop_caches, FUSE mounts)"
for t in nginx curl gzip tar python3 fusermount3 flock; do
	command -v "$t" >/dev/null || fail "$t not found (scripts/install-deps.sh)"
done
[ -x "$SFFS_BIN" ] || fail "sffs not found at $SFFS_BIN (set SFFS_BIN)"
[ -x "$SFFS_INDEX" ] || fail "sffs-index not found at $SFFS_INDEX (set SFFS_INDEX)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || fail "RUNS must be a positive integer, not '$RUNS'"
for d in $DELAYS; do
	[[ $d =~ ^[0-9]+$ ]] || fail "DELAYS must be whole milliseconds, not '$d'"
done
SFFS_BIN=$(readlink -f "$SFFS_BIN")

# The content of `big`: alternating 1 MiB pieces of pseudo-random bytes
# (fixed seed: incompressible, like binaries' compressed sections) and of
# text (the licence texts every Debian has, cycled: compresses about 3:1),
# so the gzip stream has both stored and Huffman-coded blocks. Then a few
# small files. Changing this text rebuilds the tarball (its hash is the
# cache stamp).
GEN_PY=$(
	cat <<'EOF'
import hashlib, os, random, sys

out, mib = sys.argv[1], int(sys.argv[2])
lic = "/usr/share/common-licenses"
names = sorted(n for n in os.listdir(lic) if os.path.isfile(os.path.join(lic, n)))
text = b"".join(open(os.path.join(lic, n), "rb").read() for n in names)
if len(text) < 1 << 16:
    sys.exit("too little text in " + lic)
rng = random.Random(20240601)
piece = 1 << 20
h = hashlib.sha256()
pos = 0
with open(os.path.join(out, "big"), "wb") as f:
    for i in range(mib):
        if i % 2 == 0:
            b = rng.randbytes(piece)
        else:
            b = bytearray()
            while len(b) < piece:
                take = min(piece - len(b), len(text) - pos)
                b += text[pos:pos + take]
                pos = (pos + take) % len(text)
            b = bytes(b)
        f.write(b)
        h.update(b)
os.makedirs(os.path.join(out, "etc"), exist_ok=True)
for i, n in enumerate(names[:4]):
    with open(os.path.join(out, "etc", "small-%d.txt" % i), "wb") as f:
        f.write(open(os.path.join(lic, n), "rb").read()[:4096 * (i + 1)])
with open(os.path.join(out, "README"), "w") as f:
    f.write("sffs bench/stream.sh tarball: big is %d MiB of mixed content\n" % mib)
print(h.hexdigest())
EOF
)

# build_tarball: WORK/big.tar.gz (one gzip member, gzip -6 -n), its
# published index WORK/big.tar.gz.sfidx and the staged tree WORK/tree
# (the reference for cmp). Built once; kept while the stamp matches.
build_tarball() {
	local root=${SFFS_BENCH_WORK:-${TMPDIR:-/tmp}/sffs-bench-stream} want t0
	WORK=$root/${BIG_MIB}M
	mkdir -p "$WORK"
	WORK=$(cd "$WORK" && pwd)
	exec 9>"$WORK/.lock"
	timeout 1800 flock 9 || fail "could not lock $WORK"
	want="gen=$(printf '%s' "$GEN_PY" | sha256sum | cut -d' ' -f1) mib=$BIG_MIB"
	want="$want sffs-index=$(sha256sum "$SFFS_INDEX" | cut -d' ' -f1)"
	if [ -f "$WORK/stamp" ] && [ "$(cat "$WORK/stamp")" = "$want" ] &&
		[ -f "$WORK/big.tar.gz" ] && [ -f "$WORK/big.tar.gz.sfidx" ] && [ -f "$WORK/tree/big" ] && [ -s "$WORK/tar.size" ]; then
		log "tarball up to date in $WORK"
	else
		step "build tarball"
		rm -rf "$WORK/tree" "$WORK"/big.tar* "$WORK/stamp"
		mkdir -p "$WORK/tree"
		t0=$(now)
		timeout 1800 python3 -c "$GEN_PY" "$WORK/tree" "$BIG_MIB" >"$WORK/big.sha256" ||
			fail "generating the content failed"
		log "stage generate: $(elapsed "$t0" "$(now)") s"
		t0=$(now)
		timeout 3600 tar --sort=name --mtime=@1700000000 --owner=0 --group=0 \
			--numeric-owner --format=posix --pax-option=delete=atime,delete=ctime \
			-C "$WORK/tree" -cf - README big etc |
			timeout 3600 gzip -6 -n >"$WORK/big.tar.gz.tmp" || fail "tar | gzip failed"
		mv "$WORK/big.tar.gz.tmp" "$WORK/big.tar.gz"
		log "stage tar | gzip -6 -n: $(elapsed "$t0" "$(now)") s"
		t0=$(now)
		timeout 1800 "$SFFS_INDEX" -q "$WORK/big.tar.gz" -o "$WORK/big.tar.gz.sfidx" ||
			fail "sffs-index failed"
		log "stage sffs-index: $(elapsed "$t0" "$(now)") s"
		timeout 600 gzip -dc "$WORK/big.tar.gz" | wc -c >"$WORK/tar.size"
		echo "$want" >"$WORK/stamp"
	fi
	exec 9>&-
	BIG_SIZE=$(stat -c %s "$WORK/tree/big")
	GZ_SIZE=$(stat -c %s "$WORK/big.tar.gz")
	TAR_SIZE=$(cat "$WORK/tar.size")
	log "big: $BIG_SIZE bytes; big.tar.gz: $GZ_SIZE bytes ($TAR_SIZE of tar);" \
		"index $(stat -c %s "$WORK/big.tar.gz.sfidx") bytes"
}

# cold_server: drop every cache, then read the served tarball once, so
# both ways start with the server's file in memory and nothing on the
# client side.
cold_server() {
	drop_caches
	cat "$WORK/big.tar.gz" >/dev/null
}

# stat_field STATS NAME: NAME=VALUE from user.sffs.stats.
stat_field() {
	sed -n "s/.*\\b$2=\\([0-9]*\\).*/\\1/p" <<<"$1"
}

root_stats() {
	timeout 10 python3 -c 'import os, sys
sys.stdout.write(os.getxattr(sys.argv[1], "user.sffs.stats").decode())' "$1" ||
		fail "reading user.sffs.stats of $1 failed"
}

# median VALUES...: the median (the lower middle one for an even count).
median() {
	printf '%s\n' "$@" | LC_ALL=C sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# run_curl DELAY RUN: one `curl | gzip -dc`; appends its MB/s to CURL_RATES.
run_curl() {
	local t0 t1 s m r
	cold_server
	m=$(log_mark)
	t0=$(now)
	timeout 1800 curl -sSf "$PROXY_URL/big.tar.gz" | timeout 1800 gzip -dc >/dev/null ||
		fail "curl | gzip -dc through the proxy failed"
	t1=$(now)
	s=$(elapsed "$t0" "$t1")
	log_settle
	r=$(log_since "$m")
	CURL_RATES+=("$(rate "$TAR_SIZE" "$s")")
	log "delay $1 ms run $2: curl | gzip -dc $s s, $(rate "$TAR_SIZE" "$s") MB/s (nginx: $(mb "${r% *}") MB, ${r#* } requests)"
}

# run_sffs DELAY RUN: mount through the proxy, one cold sequential read of
# big, stats and peak RSS, unmount; appends to the SFFS_* arrays.
run_sffs() {
	local mnt=$TEST_TMP/mnt t0 t1 s m r pid st0 st1 req bytes hwm
	t0=$(now)
	sffs_mount "$PROXY_URL/big.tar.gz" "$mnt" -o cache_dir=none
	mnt=$(cd "$mnt" && pwd)
	log "delay $1 ms run $2: mount $(elapsed "$t0" "$(now)") s"
	pid=$(sffs_pids "$mnt")
	[ -n "$pid" ] || fail "no sffs daemon for $mnt"
	st0=$(root_stats "$mnt")
	cold_server
	m=$(log_mark)
	t0=$(now)
	timeout 1800 dd if="$mnt/big" of=/dev/null bs=1M status=none ||
		fail "reading big from the mount failed"
	t1=$(now)
	s=$(elapsed "$t0" "$t1")
	st1=$(root_stats "$mnt")
	hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
	log_settle
	r=$(log_since "$m")
	req=$(($(stat_field "$st1" requests) - $(stat_field "$st0" requests)))
	bytes=$(($(stat_field "$st1" bytes) - $(stat_field "$st0" bytes)))
	SFFS_RATES+=("$(rate "$BIG_SIZE" "$s")")
	SFFS_REQS+=("$req")
	SFFS_MB+=("$(mb "$bytes")")
	NGINX_REQS+=("${r#* }")
	SFFS_HWM+=("$(mb $((hwm * 1024)))")
	log "delay $1 ms run $2: sffs read $s s, $(rate "$BIG_SIZE" "$s") MB/s, $req requests," \
		"$(mb "$bytes") MB (nginx: $(mb "${r% *}") MB, ${r#* } requests), VmHWM $((hwm / 1024)) MiB"
	if [ "$2" -eq 1 ]; then
		t0=$(now)
		timeout 600 cmp "$mnt/big" "$WORK/tree/big" || fail "big read through sffs differs"
		log "delay $1 ms: big is equal to the original (cmp $(elapsed "$t0" "$(now)") s, not timed)"
	fi
	sffs_unmount "$mnt"
}

ROWS=()
bench_delay() {
	local d=$1 i t0 cr sr
	step "delay $d ms"
	t0=$(now)
	if [ "$STREAM_PROXY" = slowlink ]; then
		slowlink_start "$NGINX_URL" "$d"
	else
		proxy_start "$NGINX_URL" "$d"
	fi
	CURL_RATES=() SFFS_RATES=() SFFS_REQS=() SFFS_MB=() SFFS_HWM=() NGINX_REQS=()
	for ((i = 1; i <= RUNS; i++)); do
		run_curl "$d" "$i"
		run_sffs "$d" "$i"
	done
	kill_pid "$PROXY_PID"
	cr=$(median "${CURL_RATES[@]}")
	sr=$(median "${SFFS_RATES[@]}")
	ROWS+=("| $d | $cr | $sr | $(awk -v a="$sr" -v b="$cr" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') | $(median "${SFFS_REQS[@]}") | $(median "${SFFS_MB[@]}") | $(median "${NGINX_REQS[@]}") | $(median "${SFFS_HWM[@]}") |")
	log "stage delay $d ms: $(elapsed "$t0" "$(now)") s (curl MB/s: ${CURL_RATES[*]}; sffs MB/s: ${SFFS_RATES[*]})"
}

report() {
	cat <<EOF
# sffs cold sequential read through a delaying proxy

\`big\`: $(mb "$BIG_SIZE") MB of alternating 1 MiB pieces of random bytes and text,
in a single-member \`.tar.gz\` (gzip -6 -n) of $(mb "$GZ_SIZE") MB ($(mb "$TAR_SIZE") MB of tar),
with a published index. nginx on 127.0.0.1 behind tests/lib/$STREAM_PROXY.py,
which holds every client->server chunk (so every request) for the delay.
Medians of $RUNS runs. Host: $(nproc) cores, Linux $(uname -r); load average
(1 min) at start $LOAD_START, at end $(cut -d' ' -f1 /proc/loadavg). Measured
$(date -u +%Y-%m-%d) by bench/stream.sh.

| delay ms | curl \| gzip -dc MB/s | sffs MB/s | ratio | sffs requests | sffs MB fetched | requests at nginx | daemon peak RSS MB |
|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${ROWS[@]}")

MB/s: uncompressed MB (10^6) per second (the tar stream for curl, \`big\`
for sffs); ratio: sffs / curl. sffs requests and MB: the tarball requests
and bytes the daemon counted during the read (\`user.sffs.stats\` after the
read minus after the mount). Requests at nginx: every request nginx
answered during the read, the index's lazily loaded parts (windows)
included. Peak RSS: the daemon's VmHWM after the read.
EOF
}

main() {
	local t0
	LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
	t0=$(now)
	build_tarball
	log "stage tarball: $(elapsed "$t0" "$(now)") s"
	mkdir -p "$TEST_TMP/www"
	ln -s "$WORK/big.tar.gz" "$WORK/big.tar.gz.sfidx" "$TEST_TMP/www/"
	nginx_start "$TEST_TMP/www"
	local d
	for d in $DELAYS; do
		bench_delay "$d"
	done
	if [ -n "$OUT" ]; then
		report | tee "$OUT"
		log "wrote $OUT"
	else
		report
	fi
}

main
