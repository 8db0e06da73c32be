#!/usr/bin/env bash
# bench/trust.sh FIXTURE_DIR [RUNS]
#
# What OpenPGP verification costs (issue "Signed end to end"), on one
# fixture (make-fixture.sh's OUTDIR; --filler 1500M for the 1.5 GB one),
# over loopback nginx, page cache dropped before every cold step, RUNS
# times each (default 3; min / median / max printed):
#   1. cold `sinfo --version` with a published index: unsigned (no trust)
#      vs signed (-o trust=, INDEX.asc over the header) - MB sent and
#      requests, mount and sinfo seconds;
#   2. the streaming pass (no index): sffs without trust, sffs checking
#      the tarball's .asc as it indexes, and `curl URL | gzip -dc`.
# The key is a throwaway RSA-4096 key, as the factory's. Needs root, nginx,
# gpg, curl, gzip, a built tree (SFFS_BUILD, default build/).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SFFS_SRC=${SFFS_SRC:-$(dirname "$here")}
export SFFS_BUILD=${SFFS_BUILD:-$SFFS_SRC/build}
export SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
SFFS_INDEX=${SFFS_INDEX:-$SFFS_BUILD/sffs-index}
fx=$(cd "$1" && pwd)
runs=${2:-3}
source "$SFFS_SRC/tests/lib/common.sh"
source "$here/lib-bench.sh"
require_tool gpg gpgconf nginx curl gzip

name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
size=$(stat -c %s "$fx/$name")
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
cleanup_push "gpgconf --homedir '$GNUPGHOME' --kill all"
gpg --batch --quiet --passphrase '' --quick-gen-key "sffs bench <bench@test>" rsa4096 sign 0 2>/dev/null
fpr=$(gpg --with-colons --list-keys bench@test | awk -F: '/^fpr/ { print $10; exit }')
gpg --export "$fpr" >"$TEST_TMP/key.gpg"

mkdir -p "$www/plain" "$www/signed" "$www/stream"
for d in plain signed stream; do ln -s "$fx/$name" "$www/$d/$name"; done
"$SFFS_INDEX" -q "$fx/$name" -o "$www/plain/$name.sfidx"
cp "$www/plain/$name.sfidx" "$www/signed/"
"$SFFS_INDEX" --header "$www/signed/$name.sfidx" |
	gpg --batch --armor --detach-sign -u "$fpr" -o "$www/signed/$name.sfidx.asc"
gpg --batch --armor --detach-sign -u "$fpr" -o "$www/stream/$name.asc" "$fx/$name"
nginx_start "$www"
conf=$TEST_TMP/slurm.conf
trust=(-o "allow_insecure,trust=$fpr,keyring=$TEST_TMP/key.gpg")

# stats "v1 v2 ...": min / median / max
stats() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{ v[NR] = $1 } END { printf "%s / %s / %s", v[1], v[int((NR + 1) / 2)], v[NR] }'
}

# cold_sinfo DIR [opts]: one run; prints "mount_s sinfo_s bytes requests"
cold_sinfo() {
	local d=$1 mnt=$TEST_TMP/mnt-$1 t0 t1 t2 m
	shift
	drop_caches
	m=$(log_mark)
	t0=$(now)
	sffs_mount "$NGINX_URL/$d/$name" "$mnt" -o cache_dir=none,quiet "$@" 2>/dev/null
	t1=$(now)
	write_slurm_conf "$conf" "$mnt/view"
	run_sinfo "$mnt/view" "$conf"
	t2=$(now)
	log_settle
	echo "$(elapsed "$t0" "$t1") $(elapsed "$t1" "$t2") $(log_since "$m")"
	sffs_unmount "$mnt"
}

# stream_pass DIR [opts]: seconds to mount with no index (one pass)
stream_pass() {
	local d=$1 mnt=$TEST_TMP/mnt-s-$1 t0
	shift
	drop_caches
	t0=$(now)
	sffs_mount "$NGINX_URL/$d/$name" "$mnt" -o cache_dir=none,index=none,quiet "$@" 2>/dev/null
	elapsed "$t0" "$(now)"
	sffs_unmount "$mnt"
}

curl_gzip() {
	local t0
	drop_caches
	t0=$(now)
	curl -sf "$NGINX_URL/plain/$name" | gzip -dc >/dev/null
	elapsed "$t0" "$(now)"
}

declare -A mount_s sinfo_s bytes reqs
for ((i = 0; i < runs; i++)); do
	for c in plain signed; do
		opts=()
		[ "$c" = plain ] || opts=("${trust[@]}")
		read -r a b n r < <(cold_sinfo "$c" "${opts[@]}")
		mount_s[$c]+="$a " sinfo_s[$c]+="$b " bytes[$c]+="$n " reqs[$c]+="$r "
	done
done
echo
echo "fixture: $name ($size bytes), key RSA-4096, $runs runs each (min / median / max)"
echo
echo "| cold sinfo --version, published index | mount s | sinfo s | MB sent | requests |"
echo "|---|---:|---:|---:|---:|"
for c in plain signed; do
	mbs=""
	for n in ${bytes[$c]}; do mbs+="$(mb "$n") "; done
	printf '| %s | %s | %s | %s | %s |\n' \
		"$([ "$c" = plain ] && echo "unsigned (no trust)" || echo "signed index (-o allow_insecure,trust=)")" \
		"$(stats "${mount_s[$c]}")" "$(stats "${sinfo_s[$c]}")" "$(stats "$mbs")" "$(stats "${reqs[$c]}")"
done

declare -A pass
for ((i = 0; i < runs; i++)); do
	pass[curl]+="$(curl_gzip) "
	pass[plain]+="$(stream_pass plain) "
	pass[verify]+="$(stream_pass stream "${trust[@]}") "
done
echo
echo "| streaming pass (no index) | s | MB/s (median) | vs curl \| gzip -dc |"
echo "|---|---:|---:|---:|"
med_curl=$(stats "${pass[curl]}" | awk -F' / ' '{ print $2 }')
for c in curl plain verify; do
	med=$(stats "${pass[$c]}" | awk -F' / ' '{ print $2 }')
	printf '| %s | %s | %s | %s%% |\n' \
		"$(case $c in curl) echo 'curl \| gzip -dc' ;; plain) echo 'sffs, no trust' ;; *) echo 'sffs, checking the .asc' ;; esac)" \
		"$(stats "${pass[$c]}")" "$(rate "$size" "$med")" \
		"$(awk -v a="$med_curl" -v b="$med" 'BEGIN { printf "%.0f", 100 * a / b }')"
done
