#!/usr/bin/env bash
# bench/catalog.sh [FIXTURE_DIR] [--out FILE]
#
# The catalog mode (`sffs BASE/ MNT`) against its targets, on loopback
# nginx, seed layout, every artifact with a published index, page caches
# dropped and a fresh mount before each cold step:
#   1. cold `ls MNT/*/*/view/bin` over 2 versions x 2 toolchains (< 1 s),
#      with the requests and bytes nginx served for it;
#   2. first touch of one artifact: (a) `stat MNT/<v>/<tc>/view` (the
#      attach: its index arrived), (b) from then to `sinfo --version`
#      printing (b within 0.3 s);
#   3. memory over 20 artifacts (-o release_after=2): the daemon's VmRSS
#      idle before any attach, peak while they are attached, and after all
#      20 are released (within 10% of idle).
# FIXTURE_DIR: make-fixture.sh's OUTDIR (default: SFFS_FIXTURE_DIR, else
# the one tests/lib/common.sh builds under SFFS_BUILD). The catalog tree
# (make-catalog.sh) is kept in SFFS_BENCH_WORK (default
# ${TMPDIR:-/tmp}/sffs-bench-catalog). RUNS (default 5) mounts for steps 1
# and 2, MEM_RUNS (default 3) for step 3; the tables give min / median /
# max. Needs root (drop_caches, mounts), nginx, curl, getfattr, a built
# tree (SFFS_BUILD, default build/). Prints Markdown on stdout (and to
# --out FILE), the log of every run on stderr.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
export SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}

usage() {
	sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

fx=
out=
while [ $# -gt 0 ]; do
	case $1 in
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	-h | --help) usage ;;
	-*) usage ;;
	*) [ -z "$fx" ] || usage; fx=$1; shift ;;
	esac
done
[ -z "$fx" ] || export SFFS_FIXTURE_DIR=$fx

# shellcheck source=../tests/lib/common.sh
source "$SFFS_SRC/tests/lib/common.sh"
# shellcheck disable=SC2034 # common.sh logs with it
TEST_NAME=catalog-bench
# shellcheck source=lib-bench.sh
source "$here/lib-bench.sh"

RUNS=${RUNS:-5}
MEM_RUNS=${MEM_RUNS:-3}
VERSIONS=(24.11 25.11)
TOOLCHAINS=(jammy noble)
TOUCH=25.11/noble # step 2's artifact
MEM_N=20
MEM_TC=noble

[ "$(id -u)" -eq 0 ] || fail "run as root (drop_caches, FUSE mounts)"
require_tool nginx curl getfattr fusermount3
[ -x "$SFFS_BIN" ] || fail "sffs not found at $SFFS_BIN (set SFFS_BIN)"
[ -x "$SFFS_INDEX" ] || fail "sffs-index not found at $SFFS_INDEX (set SFFS_INDEX)"

# ---- the tree nginx serves (not timed) ------------------------------------

fx=$(fixture_dir)
cat=${SFFS_BENCH_WORK:-${TMPDIR:-/tmp}/sffs-bench-catalog}
step catalog
timeout 1800 "$SFFS_SRC/scripts/make-catalog.sh" "$fx" "$cat" "$SFFS_INDEX" >/dev/null ||
	fail "make-catalog.sh failed"
www=$TEST_TMP/www
mkdir -p "$www"
cp -al "$cat/seed/." "$www/" 2>/dev/null || cp -a "$cat/seed/." "$www/"
# make-catalog leaves one artifact without an index (for the tests):
# here every artifact has one.
for v in "${VERSIONS[@]}"; do
	for t in "${TOOLCHAINS[@]}"; do
		f=$www/$v/$t/slurm-$v-$t-software.tar.gz
		[ -f "$f.sfidx" ] || "$SFFS_INDEX" -q "$f" -o "$f.sfidx"
	done
done
# step 3: MEM_N versions, each a hard link to one artifact and its index
src=$www/$TOUCH/slurm-${TOUCH%/*}-${TOUCH#*/}-software.tar.gz
[ "${TOUCH#*/}" = "$MEM_TC" ] || fail "TOUCH's toolchain must be $MEM_TC"
MEM_VERSIONS=()
for ((i = 1; i <= MEM_N; i++)); do
	v=$(printf '30.%02d' "$i")
	MEM_VERSIONS+=("$v")
	mkdir -p "$www/$v/$MEM_TC"
	ln "$src" "$www/$v/$MEM_TC/slurm-$v-$MEM_TC-software.tar.gz"
	ln "$src.sfidx" "$www/$v/$MEM_TC/slurm-$v-$MEM_TC-software.tar.gz.sfidx"
done
nginx_start "$www"
conf=$TEST_TMP/slurm.conf

# ---- helpers ----------------------------------------------------------------

stat_of() { # MNT NAME: a counter from the catalog's user.sffs.stats
	getfattr --absolute-names --only-values -n user.sffs.stats "$1" |
		tr ' ' '\n' | sed -n "s/^$2=//p"
}

# stats3 VALUES...: "min / median / max" of numbers
stats3() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
		END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		      printf "%s / %s / %s", a[1], m, a[NR] }'
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
		END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

mib() { # KiB -> MiB, 1 decimal
	awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

# mount_catalog MNT OPTIONS...: a fresh mount of the base; sets PID.
mount_catalog() {
	local mnt=$1
	shift
	sffs_mount "$NGINX_URL/" "$mnt" -o cache_dir=none "$@"
	PID=$(sffs_pids "$(cd "$mnt" && pwd)")
	[ -n "$PID" ] || fail "no sffs daemon for $mnt"
}

# ---- 1. cold ls over four artifacts ----------------------------------------

LS_T=() LS_REQ=() LS_B=() LS_MREQ=()
vers=$(IFS=:; echo "${VERSIONS[*]}")
tcs=$(IFS=:; echo "${TOOLCHAINS[*]}")
for ((r = 1; r <= RUNS; r++)); do
	step "ls run $r"
	mnt=$TEST_TMP/ls$r
	m0=$(log_mark)
	mount_catalog "$mnt" -o "versions=$vers,toolchains=$tcs"
	log_settle
	drop_caches
	m1=$(log_mark)
	t0=$(now)
	ls "$mnt"/*/*/view/bin >"$TEST_TMP/ls.out"
	t1=$(now)
	dirs=$(grep -c ':$' "$TEST_TMP/ls.out")
	log_settle
	read -r b n <<<"$(log_since "$m1")"
	[ "$dirs" -ge 4 ] || fail "ls listed $dirs view/bin directories"
	[ "$(stat_of "$mnt" attaches)" = 4 ] || fail "ls attached $(stat_of "$mnt" attaches) artifacts"
	LS_T+=("$(elapsed "$t0" "$t1")") LS_REQ+=("$n") LS_B+=("$b")
	LS_MREQ+=("$((m1 - m0))")
	log "ls: ${LS_T[-1]} s, $dirs directories, $n requests, $b bytes (mount: $((m1 - m0)) requests)"
	sffs_unmount "$mnt"
done

# ---- 2. first touch of one artifact to sinfo --version ------------------------

TA=() TB=() TAB=() TA_REQ=() TA_B=() TB_REQ=() TB_B=()
for ((r = 1; r <= RUNS; r++)); do
	step "touch run $r"
	mnt=$TEST_TMP/touch$r
	mount_catalog "$mnt" -o "versions=$vers,toolchains=$tcs"
	mnt=$(cd "$mnt" && pwd)
	view=$mnt/$TOUCH/view
	write_slurm_conf "$conf" "$view"
	log_settle
	drop_caches
	m0=$(log_mark)
	t0=$(now)
	stat "$view" >/dev/null
	t1=$(now)
	m1=$(log_mark)
	run_sinfo "$view" "$conf"
	t2=$(now)
	log_settle
	# a request is logged when it ends: those of (a) are done when stat returns
	read -r ba na <<<"$(tail -n "+$((m0 + 1))" "$NGINX_LOG" | head -n "$((m1 - m0))" |
		awk '{ b += $2; n++ } END { printf "%d %d\n", b, n }')"
	read -r bb nb <<<"$(log_since "$m1")"
	TA+=("$(elapsed "$t0" "$t1")") TB+=("$(elapsed "$t1" "$t2")") TAB+=("$(elapsed "$t0" "$t2")")
	TA_REQ+=("$na") TA_B+=("$ba") TB_REQ+=("$nb") TB_B+=("$bb")
	log "touch: attach ${TA[-1]} s ($na requests, $ba B), sinfo ${TB[-1]} s ($nb requests, $bb B): $SINFO_OUT"
	sffs_unmount "$mnt"
done

# ---- 3. memory over MEM_N artifacts -------------------------------------------

M_IDLE=() M_PEAK=() M_AFTER=() M_RATIO=() M_WAIT=() M_AIDLE=() M_AAFTER=()
M_AFTER2=() M_RATIO2=()
mvers=$(IFS=:; echo "${MEM_VERSIONS[*]}")
anon_kib() { # PID: RssAnon in KiB (the daemon's own pages, no shared code)
	awk '$1 == "RssAnon:" { print $2 }' "/proc/$1/status"
}
# mem_cycle MNT ROUND: read a file from each of the MEM_N artifacts in
# turn (each attaches), raise PEAK, wait until all are released
# (releases = ROUND * MEM_N); sets WAITED.
mem_cycle() {
	local mnt=$1 round=$2 v k t0
	for v in "${MEM_VERSIONS[@]}"; do
		cat "$mnt/$v/$MEM_TC/view/bin/sinfo" >/dev/null
		k=$(rss_kib "$PID")
		[ "$k" -le "$peak" ] || peak=$k
	done
	log "round $round: $(stat_of "$mnt" attached) attached at once after reading all $MEM_N; RSS $(mib "$(rss_kib "$PID")") MiB"
	t0=$(now)
	# shellcheck disable=SC2016 # expanded by eval, at each poll
	wait_until 120 eval '[ "$(stat_of "$mnt" attached)" = 0 ] && [ "$(stat_of "$mnt" releases)" = "$((round * MEM_N))" ]' ||
		fail "not all released: $(getfattr --absolute-names --only-values -n user.sffs.stats "$mnt")"
	WAITED=$(elapsed "$t0" "$(now)")
	sleep 1
}
pct() { # A B: 100 * (A - B) / B, signed, 1 decimal
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", 100 * (a - b) / b }'
}
for ((r = 1; r <= MEM_RUNS; r++)); do
	step "memory run $r"
	mnt=$TEST_TMP/mem$r
	drop_caches
	mount_catalog "$mnt" -o "versions=$mvers,toolchains=$MEM_TC,release_after=2"
	mnt=$(cd "$mnt" && pwd)
	ls "$mnt" "$mnt/${MEM_VERSIONS[0]}" >/dev/null
	[ "$(stat_of "$mnt" known)" = "$MEM_N" ] || fail "known: $(stat_of "$mnt" known)"
	[ "$(stat_of "$mnt" attaches)" = 0 ] || fail "listing attached"
	sleep 1
	idle=$(rss_kib "$PID") aidle=$(anon_kib "$PID")
	peak=$idle
	mem_cycle "$mnt" 1
	M_WAIT+=("$WAITED")
	after=$(rss_kib "$PID") aafter=$(anon_kib "$PID")
	# a second round: does what stays after a release grow with use?
	mem_cycle "$mnt" 2
	after2=$(rss_kib "$PID")
	hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$PID/status")
	[ "$hwm" -le "$peak" ] || peak=$hwm
	M_IDLE+=("$(mib "$idle")") M_PEAK+=("$(mib "$peak")") M_AFTER+=("$(mib "$after")")
	M_AIDLE+=("$(mib "$aidle")") M_AAFTER+=("$(mib "$aafter")")
	M_RATIO+=("$(pct "$after" "$idle")")
	M_AFTER2+=("$(mib "$after2")") M_RATIO2+=("$(pct "$after2" "$after")")
	log "memory: idle $(mib "$idle") MiB (anon $(mib "$aidle")), peak $(mib "$peak") MiB, after release $(mib "$after") MiB (anon $(mib "$aafter"); ${M_RATIO[-1]}% of idle), released in ${M_WAIT[-1]} s; after a second round $(mib "$after2") MiB (${M_RATIO2[-1]}%): $(getfattr --absolute-names --only-values -n user.sffs.stats "$mnt")"
	log "memory: $(grep -E '^(VmRSS|RssAnon|RssFile|Threads)' "/proc/$PID/status" | tr -s ' \t' ' ' | tr '\n' ' ')"
	sffs_unmount "$mnt"
done

# ---- the table ------------------------------------------------------------------

verdict() { # VALUE LIMIT [UNIT]: "met" if VALUE < LIMIT, else by how much
	awk -v v="$1" -v l="$2" -v u="${3:-}" 'BEGIN { print (v < l) ? "met" : sprintf("missed by %.3g%s", v - l, u) }'
}
{
	echo
	echo "catalog mode, seed layout, loopback nginx, $(stat -c %s "$src") B artifact ($FIXTURE_NAME), published indexes, cache_dir=none; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| step | measured (min / median / max) | target | |"
	echo "|---|---|---|---|"
	echo "| 1. cold \`ls MNT/*/*/view/bin\`, ${#VERSIONS[@]}x${#TOOLCHAINS[@]} artifacts, $RUNS runs | $(stats3 "${LS_T[@]}") s; $(stats3 "${LS_REQ[@]}") requests; $(stats3 "${LS_B[@]}") B | < 1 s | $(verdict "$(median "${LS_T[@]}")" 1 " s") |"
	echo "| 1. the mount before it (HEAD probes) | $(stats3 "${LS_MREQ[@]}") requests | | |"
	echo "| 2a. first touch: \`stat MNT/$TOUCH/view\` (attach), $RUNS runs | $(stats3 "${TA[@]}") s; $(stats3 "${TA_REQ[@]}") requests; $(stats3 "${TA_B[@]}") B | | |"
	echo "| 2b. then \`sinfo --version\` | $(stats3 "${TB[@]}") s; $(stats3 "${TB_REQ[@]}") requests; $(stats3 "${TB_B[@]}") B | ≤ 0.3 s | $(verdict "$(median "${TB[@]}")" 0.3 " s") |"
	echo "| 2. a + b | $(stats3 "${TAB[@]}") s | | |"
	echo "| 3. RSS idle, $MEM_N artifacts known, none attached, $MEM_RUNS runs | $(stats3 "${M_IDLE[@]}") MiB (anonymous: $(stats3 "${M_AIDLE[@]}")) | | |"
	echo "| 3. peak RSS while attaching all $MEM_N in turn | $(stats3 "${M_PEAK[@]}") MiB | (report) | |"
	echo "| 3. RSS after all $MEM_N released | $(stats3 "${M_AFTER[@]}") MiB (anonymous: $(stats3 "${M_AAFTER[@]}")), $(stats3 "${M_RATIO[@]}")% against idle | within 10% | $(verdict "$(median "${M_RATIO[@]}")" 10 " points") |"
	echo "| 3. RSS after a second round of $MEM_N attaches and releases | $(stats3 "${M_AFTER2[@]}") MiB, $(stats3 "${M_RATIO2[@]}")% against the first round | | |"
	echo "| 3. time from the last read to all released (release_after=2) | $(stats3 "${M_WAIT[@]}") s | | |"
} | tee ${out:+"$out"}
