#!/usr/bin/env bash
# bench/failover.sh [--fixture DIR] [--runs N] [--delay MS] [--out FILE]
#
# Failover to a mirror during a cold read (issue "Survive the network"):
# two nginx origins serve the same paths, the first through
# tests/lib/delayproxy.py, the mirror through tests/lib/slowlink.py (two
# kinds of slow link, DELAY ms per request each). sffs mounts the first
# with -o mirrors=<the second>; the largest file of the fixture is read
# cold (page cache dropped) with cat, once undisturbed and once with the
# first origin's nginx killed 0.5 s into the read. Reported: the read's time
# in both cases and how long after the origin's death the read completed
# (target: within 15 s), medians of N runs.
#
# Options: --fixture DIR (make-fixture.sh's OUTDIR; default
# SFFS_FIXTURE_DIR), --runs N (default 3), --delay MS (default 50),
# --out FILE (also write the Markdown report there). Needs root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(cd "$here/.." && pwd)}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
export SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}
runs=3 delay=50 out=
while [ $# -gt 0 ]; do
	case $1 in
	--fixture) export SFFS_FIXTURE_DIR=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--delay) delay=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
# shellcheck source=../tests/lib/common.sh
source "$SFFS_SRC/tests/lib/common.sh"
# shellcheck source=lib-bench.sh
source "$here/lib-bench.sh"

fx=$(fixture_dir)
name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
mkdir -p "$www/sf"
ln "$fx/$name" "$www/sf/$name" 2>/dev/null || cp "$fx/$name" "$www/sf/$name"
"$SFFS_INDEX" -q "$www/sf/$name" -o "$www/sf/$name.sfidx"
big=$(cd "$fx/extract" && find . -type f -printf '%s %P\n' | sort -n | tail -1 | cut -d' ' -f2)
size=$(stat -c %s "$fx/extract/$big")
log "reading $big ($size bytes), $delay ms per request on both links"

nginx_start "$www"
mirror_log=$NGINX_LOG
slowlink_start "$NGINX_URL/sf/" "$delay"
mirror=$PROXY_URL

# one_read MODE: prints "SECONDS AFTER_DEATH" (AFTER_DEATH "-" undisturbed)
one_read() {
	local mode=$1 mnt t0 t1 tk= m0
	m0=$(wc -l <"$mirror_log")
	nginx_start "$www"
	local a_pid=$NGINX_PID
	proxy_start "$NGINX_URL/sf/" "$delay"
	mnt=$(mktemp -d "$TEST_TMP/mnt.XXXXXX")
	sffs_mount "$PROXY_URL$name" "$mnt" -o cache_dir=none,quiet,mirrors="$mirror",timeout=60 2>/dev/null
	drop_caches
	t0=$(now)
	cat "$mnt/$big" >/dev/null &
	local cat_pid=$!
	if [ "$mode" = kill ]; then
		sleep 0.5
		kill_pid "$a_pid"
		tk=$(now)
	fi
	wait "$cat_pid" || fail "the read failed ($mode)"
	t1=$(now)
	cmp "$mnt/$big" "$fx/extract/$big" || fail "bytes differ ($mode)"
	sffs_unmount "$mnt"
	kill_pid "$PROXY_PID"
	kill_pid "$a_pid" 2>/dev/null || true
	echo "$(elapsed "$t0" "$t1") ${tk:+$(elapsed "$tk" "$t1")} $(($(wc -l <"$mirror_log") - m0))"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
plain=() killed=() after=()
for ((i = 1; i <= runs; i++)); do
	read -r s m < <(one_read plain)
	plain+=("$s")
	[ "$m" = 0 ] || fail "the mirror was asked during an undisturbed read"
	read -r s a m < <(one_read kill)
	killed+=("$s")
	after+=("$a")
	[ "$m" -gt 0 ] || fail "the mirror served nothing after the origin died"
	log "run $i: undisturbed ${plain[-1]} s; killed: $s s, done $a s after the origin died ($m requests to the mirror)"
done
report=$(
	echo "| $big ($((size / 1000000)) MB), cold, $delay ms per request | median (s) | runs (s) |"
	echo "|---|---|---|"
	echo "| undisturbed | $(printf '%s\n' "${plain[@]}" | median) | ${plain[*]} |"
	echo "| first origin killed 0.5 s in | $(printf '%s\n' "${killed[@]}" | median) | ${killed[*]} |"
	echo "| ... completed after the origin's death | $(printf '%s\n' "${after[@]}" | median) | ${after[*]} |"
)
echo "$report"
[ -z "$out" ] || echo "$report" >"$out"
