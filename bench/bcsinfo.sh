#!/usr/bin/env bash
# bench/bcsinfo.sh FIXTURE_DIR [DELAY_MS] [RUNS]
#
# A cold `sinfo --version` from a Spack buildcache package (issue 18)
# beside the same from the artifact tarball, and beside fetching and
# unpacking the packages (what `spack install` from the cache does first;
# Spack itself cannot be installed here). The cache is made from the
# fixture's real binaries by tests/lib/make-buildcache.py --spack-rpath
# (v3, the factory's padded prefixes, every package a dependency of the
# others), so sinfo runs only once its RPATHs are relocated to the mount.
# Each run: page cache dropped, cache_dir=none, a new mount, then
# `env -i sinfo --version`. Routes: nginx on loopback, then DELAY_MS
# (default 20) added to every request by each of the two delaying
# proxies (tests/lib/delayproxy.py, tests/lib/slowlink.py). Prints, per
# route and way, the median wall time (mount start to sinfo's exit) of
# RUNS (default 3) and the bytes and requests nginx answered.
# Needs root (drop_caches), nginx, patchelf, a built tree (SFFS_BUILD).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
fx=$(cd "$1" && pwd)
delay=${2:-20}
runs=${3:-3}
source "$SFFS_SRC/tests/lib/common.sh"
source "$here/lib-bench.sh"
require_tool patchelf python3 curl

www=$TEST_TMP/www
mkdir -p "$www/t"
ln -s "$fx/$FIXTURE_NAME.tar.gz" "$www/t/$FIXTURE_NAME.tar.gz"
python3 "$SFFS_SRC/tests/lib/make-buildcache.py" --fixture "$fx/extract" \
	--out "$www/bc" --layout v3 --spack-rpath --list >"$TEST_TMP/list.tsv"
slurm=$(awk -F'\t' '$4 == "slurm" { print $1; exit }' "$TEST_TMP/list.tsv")
[ -n "$slurm" ] || fail "no slurm package in the cache"
npkg=$(wc -l <"$TEST_TMP/list.tsv")
blobs=$(du -cb "$www/bc/blobs" | tail -1 | cut -f1)
log "cache: $npkg packages, blobs $(mb "$blobs") MB; tarball $(mb "$(stat -L -c %s "$www/t/$FIXTURE_NAME.tar.gz")") MB"
nginx_start "$www"
conf=$TEST_TMP/slurm.conf

# one_run WAY BASE: a cold run; prints "SECONDS BYTES REQUESTS".
one_run() {
	local way=$1 base=$2 mnt=$TEST_TMP/mnt-$1 t0 t1 m0 view out
	drop_caches
	m0=$(log_mark)
	t0=$(now)
	case $way in
	tarball)
		sffs_mount "$base/t/$FIXTURE_NAME.tar.gz" "$mnt" -o cache_dir=none -o quiet
		view=$mnt/view
		;;
	buildcache)
		sffs_mount "$base/bc/" "$mnt" -o layout=buildcache,verify=off \
			-o cache_dir=none -o quiet
		view=$mnt/$slurm
		;;
	fetch-extract) # every blob fetched and unpacked, as an install would
		rm -rf "$mnt" && mkdir -p "$mnt"
		while IFS=$'\t' read -r dir blob _; do
			mkdir -p "$mnt/$dir"
			curl -sf "$base/bc/$blob" | tar -xzf - -C "$mnt/$dir"
		done <"$TEST_TMP/list.tsv"
		t1=$(now)
		log_settle
		echo "$(elapsed "$t0" "$t1") $(log_since "$m0")"
		return 0
		;;
	esac
	printf 'ClusterName=bench\nSlurmctldHost=localhost\nPluginDir=%s\n' \
		"$view/lib/slurm" >"$conf"
	out=$(timeout 120 env -i SLURM_CONF="$conf" "$view/bin/sinfo" --version 2>&1) ||
		fail "$way: sinfo --version failed: $out"
	[[ $out =~ ^slurm ]] || fail "$way: sinfo printed '$out'"
	t1=$(now)
	log_settle
	echo "$(elapsed "$t0" "$t1") $(log_since "$m0")"
	sffs_unmount "$mnt"
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "| route | way | wall s (median of $runs) | bytes | requests |"
echo "|---|---|---:|---:|---:|"
for route in loopback delayproxy slowlink; do
	case $route in
	loopback) base=$NGINX_URL ;;
	delayproxy)
		proxy_start "$NGINX_URL" "$delay"
		base=$PROXY_URL
		;;
	slowlink)
		slowlink_start "$NGINX_URL" "$delay"
		base=$PROXY_URL
		;;
	esac
	for way in tarball buildcache fetch-extract; do
		: >"$TEST_TMP/t"
		for ((k = 0; k < runs; k++)); do
			read -r s b n < <(one_run "$way" "$base")
			echo "$s" >>"$TEST_TMP/t"
		done
		name=$route
		[ "$route" = loopback ] || name="$route +${delay} ms"
		echo "| $name | $way | $(median <"$TEST_TMP/t") | $b | $n |"
	done
done
