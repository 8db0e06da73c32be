#!/usr/bin/env bash
# bench/slicecache.sh [--fixture DIR] [--mounts N] [--slice SIZE] [--out FILE]
#
# Scale through an existing HTTP cache (issue "Survive the network"): N sffs
# daemons (default 32), started cold at once, each mounting the artifact
# through one nginx `slice` cache in front of the origin nginx, then each
# running the boot-time pattern `slurmd -V` and `sinfo --version` from its
# mount. Reported, for the tarball and for its index: what the mounts asked
# of the cache (requests, and the unique bytes and unique 128 KiB blocks of
# their ranges) and what the origin sent (bytes, requests), and origin
# requests per mount. Targets: origin bytes <= 1.01x the unique bytes,
# origin requests <= the unique blocks (tarball).
#
# The cache is the configuration README.md recommends (slice = sffs's block
# size, proxy_cache_lock on, the slice range in the cache key).
# Options: --fixture DIR (make-fixture.sh's OUTDIR; default
# SFFS_FIXTURE_DIR), --mounts N, --slice SIZE (nginx syntax, default 128k),
# --out FILE. Needs root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(cd "$here/.." && pwd)}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
export SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}
mounts=32 slice=128k out=
while [ $# -gt 0 ]; do
	case $1 in
	--fixture) export SFFS_FIXTURE_DIR=$2; shift 2 ;;
	--mounts) mounts=$2; shift 2 ;;
	--slice) slice=$2; shift 2 ;;
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
nginx_start "$www"
origin=$NGINX_URL origin_log=$NGINX_LOG

# the cache in front: slice = block size, one request per slice at once
cdir=$(mktemp -d "$TEST_TMP/cache.XXXXXX")
cport=$(free_port)
cat >"$cdir/nginx.conf" <<EOF2
user root;
daemon off;
worker_processes 1;
pid $cdir/nginx.pid;
error_log $cdir/error.log warn;
events { worker_connections 4096; }
http {
	log_format sffs '\$status \$body_bytes_sent \$request_method \$request_uri "\$http_range" \$upstream_cache_status';
	access_log $cdir/access.log sffs;
	proxy_temp_path $cdir/tmp;
	client_body_temp_path $cdir/body;
	proxy_cache_path $cdir/cache levels=1:2 keys_zone=sf:16m max_size=20g inactive=1d use_temp_path=off;
	upstream origin { server ${origin#http://}; keepalive 16; }
	server {
		listen 127.0.0.1:$cport;
		location / {
			slice $slice;
			proxy_cache sf;
			proxy_cache_key \$uri\$is_args\$args\$slice_range;
			proxy_set_header Range \$slice_range;
			proxy_cache_valid 200 206 1h;
			proxy_cache_lock on;
			proxy_cache_lock_timeout 60s;
			proxy_cache_lock_age 60s;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_pass http://origin;
		}
	}
}
EOF2
nginx -p "$cdir" -c "$cdir/nginx.conf" 2>"$cdir/stderr.log" &
cpid=$!
cleanup_push "kill_pid $cpid"
wait_until 10 s3_listening "$cport" || fail "the cache did not start: $(cat "$cdir/stderr.log")"
cache=http://127.0.0.1:$cport
log "origin $origin, slice cache $cache (slice $slice), $mounts mounts"

t0=$(now)
# wait for these only: nginx runs in the background too
pids=()
for ((i = 0; i < mounts; i++)); do
	mkdir -p "$TEST_TMP/m$i"
	sffs_mount "$cache/sf/$name" "$TEST_TMP/m$i" -o cache_dir=none,quiet 2>/dev/null &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a mount failed"; done
pids=()
for ((i = 0; i < mounts; i++)); do
	(
		conf=$TEST_TMP/slurm$i.conf
		write_slurm_conf "$conf" "$TEST_TMP/m$i/view"
		out=$(timeout 120 env -i SLURM_CONF="$conf" "$TEST_TMP/m$i/view/sbin/slurmd" -V 2>&1) ||
			fail "slurmd -V failed in m$i: $out"
		run_sinfo "$TEST_TMP/m$i/view" "$conf"
	) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "slurmd -V or sinfo failed"; done
t1=$(now)
log "all $mounts mounted and ran slurmd -V + sinfo --version in $(elapsed "$t0" "$t1") s"
for ((i = 0; i < mounts; i++)); do sffs_unmount "$TEST_TMP/m$i"; done
sleep 0.5

# asked FILE-REGEX: "requests unique_bytes unique_blocks" asked of the cache
asked() {
	awk -v re="$1" -v B=131072 -v size="$2" '
		$4 ~ re {
			n++
			r = $5; gsub(/"|bytes=/, "", r)
			split(r, ab, "-")
			if (r == "" || r == "-") { a = 0; b = size - 1 } else { a = ab[1] + 0; b = (ab[2] == "" ? size - 1 : ab[2] + 0) }
			for (k = int(a / B); k <= int(b / B); k++) blk[k] = 1
		}
		END {
			u = 0; nb = 0
			for (k in blk) { nb++; e = (k + 1) * B; if (e > size) e = size; u += e - k * B }
			printf "%d %d %d\n", n, u, nb
		}' "$cdir/access.log"
}
# sent FILE-REGEX: "bytes requests" the origin sent
sent() {
	awk -v re="$1" '$4 ~ re { b += $2; n++ } END { printf "%d %d\n", b, n }' "$origin_log"
}
tsize=$(stat -c %s "$www/sf/$name")
isize=$(stat -c %s "$www/sf/$name.sfidx")
read -r tq tu tb < <(asked "$name\$" "$tsize")
read -r iq iu ib < <(asked "sfidx\$" "$isize")
read -r tob ton < <(sent "$name\$")
read -r iob ion < <(sent "sfidx\$")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
report=$(
	echo "| $mounts mounts, cold at once, slurmd -V + sinfo --version, slice $slice | asked of the cache: requests | unique bytes | unique blocks | origin sent: bytes | requests | bytes / unique | origin requests per mount |"
	echo "|---|---|---|---|---|---|---|---|"
	echo "| tarball | $tq | $tu | $tb | $tob | $ton | $(ratio "$tob" "$tu") | $(ratio "$ton" "$mounts") |"
	echo "| index | $iq | $iu | $ib | $iob | $ion | $(ratio "$iob" "$iu") | $(ratio "$ion" "$mounts") |"
)
echo "$report"
[ -z "$out" ] || echo "$report" >"$out"
[ "$ton" -le "$tb" ] || log "MISSED: origin requests $ton > unique blocks $tb"
