#!/usr/bin/env bash
# bench/buildcache.sh [FIXTURE_DIR] [RUNS]
#
# Issue "Spack buildcaches" targets, on a 50-package v3 buildcache made
# from the fixture (tests/lib/make-buildcache.py, signed ed25519), served
# by loopback nginx, page cache dropped and a fresh mount each run (RUNS,
# default 5; min / median / max):
#   1. cold listing: from starting sffs -o layout=buildcache,trust=FPR to
#      `ls MNT` done (every manifest fetched and verified; target < 1 s);
#      the same through tests/lib/delayproxy.py adding 20 ms per request,
#      and warm (page cache kept, so sffs and its libraries load from
#      memory);
#   2. opening one file of one package: the requests it makes and which
#      blobs they touch (target: that package's blob only).
# Needs root, nginx, gpg, python3, a built tree (SFFS_BUILD, default build/).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
[ -z "${1:-}" ] || export SFFS_FIXTURE_DIR=$1
runs=${2:-5}
source "$SFFS_SRC/tests/lib/common.sh"
source "$here/lib-bench.sh"
require_tool gpg gpgconf nginx python3

fx=$(fixture_dir)
www=$TEST_TMP/www
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
cleanup_push "gpgconf --homedir '$GNUPGHOME' --kill all"
gpg --batch --quiet --passphrase '' --quick-gen-key "bench <bench@test>" ed25519 sign 0 2>/dev/null
fpr=$(gpg --with-colons --list-keys bench@test 2>/dev/null | awk -F: '/^fpr/ { print $10; exit }')
python3 "$SFFS_SRC/tests/lib/make-buildcache.py" --fixture "$fx/extract" --out "$www/bc" \
	--layout v3 --packages 50 --sign-with "$fpr" --gnupghome "$GNUPGHOME" --list \
	>"$TEST_TMP/bc.tsv" 2>"$TEST_TMP/mk.log"
npk=$(wc -l <"$TEST_TMP/bc.tsv")
nginx_start "$www"
proxy_start "$NGINX_URL/" 20

stats() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{ v[NR] = $1 } END { printf "%s / %s / %s", v[1], v[int((NR + 1) / 2)], v[NR] }'
}

# list URL [warm]: one mount + ls, cold unless warm; prints "seconds entries"
list_once() {
	local mnt=$TEST_TMP/mnt t0 n
	[ -n "${2:-}" ] || drop_caches
	t0=$(now)
	sffs_mount "$1" "$mnt" -o allow_insecure,layout=buildcache,trust="$fpr",cache_dir=none,quiet 2>/dev/null
	n=$(ls "$mnt" | grep -vcxE 'index.json|modules')
	echo "$(elapsed "$t0" "$(now)") $n"
	sffs_unmount "$mnt"
}

declare -A secs
for ((i = 0; i < runs; i++)); do
	for via in direct proxy warm; do
		url=$NGINX_URL/bc/
		[ "$via" != proxy ] || url=${PROXY_URL}bc/
		read -r s n < <(list_once "$url" "$([ "$via" = warm ] && echo warm)")
		[ "$n" -eq "$npk" ] || fail "listed $n of $npk packages"
		secs[$via]+="$s "
	done
done
m=$(log_mark)
list_reqs=0
mnt=$TEST_TMP/mnt1
sffs_mount "$NGINX_URL/bc/" "$mnt" -o allow_insecure,layout=buildcache,trust="$fpr",cache_dir=none,quiet 2>/dev/null
log_settle
read -r _ list_reqs < <(log_since "$m")
IFS=$'\t' read -r dir blob _ < <(grep -m1 '^slurm-' "$TEST_TMP/bc.tsv")
m=$(log_mark)
file=$(cd "$mnt/$dir" && find . -type f -name 'libslurm*' | head -1)
cat "$mnt/$dir/$file" >/dev/null
log_settle
read -r open_bytes open_reqs < <(log_since "$m")
other=$(tail -n "+$((m + 1))" "$NGINX_LOG" | awk '{ print $4 }' | grep -c "/bc/blobs/" | tr -d ' ')
own=$(tail -n "+$((m + 1))" "$NGINX_LOG" | awk '{ print $4 }' | grep -c "/bc/$blob" | tr -d ' ')
sffs_unmount "$mnt"

echo
echo "v3 buildcache, $npk packages (signed manifests, ed25519), loopback nginx, $runs runs (min / median / max)"
echo
echo "| step | measured | target |"
echo "|---|---|---|"
echo "| cold listing (mount + ls), loopback | $(stats "${secs[direct]}") s; $list_reqs requests | < 1 s |"
echo "| cold listing, +20 ms per request (delayproxy) | $(stats "${secs[proxy]}") s | (report) |"
echo "| warm listing (page cache kept: binaries and libraries loaded) | $(stats "${secs[warm]}") s | (report) |"
echo "| open one file of one package ($dir/$file) | $open_reqs requests, $(mb "$open_bytes") MB; $own to its blob, $((other - own)) to other blobs | that package only |"
