#!/usr/bin/env bash
# Catalog mode over nginx, seed layout: one mount for 2 versions x 2
# toolchains (one artifact without a published index).
#  - listing (ls, ls -l, latest, modules) fetches no artifact byte: the
#    nginx log shows HEAD probes only;
#  - touching one artifact fetches only it; every artifact's tree equals
#    GNU tar's extraction, byte for byte;
#  - a version published after the mount appears on lookup (probe); an
#    unknown name is answered from the negative cache;
#  - a corrupt artifact fails its attach with EIO and a log line, and the
#    others keep working;
#  - Lmod: module avail lists every generated module without attaching
#    anything; load and switch change which mounted sinfo runs;
#  - idle artifacts are released (the daemon's counters) and come back;
#    attach/release cycles under concurrent lookups;
#  - a single-node cluster runs from MNT/<version>/<toolchain>/view.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$SFFS_SRC/tests/lib/slurm-cluster.sh"

[ "$(id -u)" -eq 0 ] || fail "must run as root (Slurm daemons as SlurmUser=root)"
require_tool getfattr lua5.3

stat_of() { # MNT NAME: a counter from user.sffs.stats
	getfattr --absolute-names --only-values -n user.sffs.stats "$1" |
		tr ' ' '\n' | sed -n "s/^$2=//p"
}

# tarball requests (GET) in the nginx log, optionally of one artifact
tar_gets() {
	grep -cE " GET /[^ ]*${1:-}[^ ]*\.tar\.gz(\.sfidx)? " "$NGINX_LOG" || true
}

step catalog
cat=$SFFS_BUILD/catalog
"$SFFS_SRC/scripts/make-catalog.sh" "$(fixture_dir)" "$cat" "$SFFS_INDEX" >/dev/null
root=$TEST_TMP/www
mkdir -p "$root"
cp -a "$cat/seed/." "$root/"
# a corrupt artifact: gzip of garbage, with the name the template wants
mkdir -p "$root/23.11/noble"
head -c 300000 /dev/urandom | gzip -n >"$root/23.11/noble/slurm-23.11-noble-software.tar.gz"
nginx_start "$root"

step mount
mnt=$TEST_TMP/sf
sffs_mount "$NGINX_URL/" "$mnt" -o versions=23.11:24.11:25.11,toolchains=noble:jammy \
	-o release_after=3,negative_ttl=2,cache_dir="$TEST_TMP/cache"
log "mounted: $(getfattr --absolute-names --only-values -n user.sffs.stats "$mnt")"
# one HEAD per configured (version, toolchain) at mount, found or not
[ "$(grep -c ' HEAD ' "$NGINX_LOG")" = 6 ] ||
	fail "the mount probed $(grep -c ' HEAD ' "$NGINX_LOG") times for 6 artifacts: $(grep ' HEAD ' "$NGINX_LOG")"

step listing
[ "$(ls "$mnt" | tr '\n' ' ')" = "23.11 24.11 25.11 latest modules " ] ||
	fail "ls MNT: $(ls "$mnt" | tr '\n' ' ')"
[ "$(ls "$mnt/25.11" | tr '\n' ' ')" = "jammy noble " ] ||
	fail "ls MNT/25.11: $(ls "$mnt/25.11" | tr '\n' ' ')"
[ "$(readlink "$mnt/latest")" = 25.11 ] || fail "latest -> $(readlink "$mnt/latest")"
[ -d "$mnt/latest/noble" ] || fail "latest/noble is not a directory"
ls -l "$mnt" "$mnt"/*/ "$mnt/modules/slurm" >/dev/null
[ "$(ls "$mnt/modules/slurm" | wc -l)" = 5 ] ||
	fail "modules: $(ls "$mnt/modules/slurm" | tr '\n' ' ')"
[ "$(tar_gets)" = 0 ] || fail "listing fetched artifact bytes: $(grep GET "$NGINX_LOG")"
[ "$(stat_of "$mnt" attaches)" = 0 ] || fail "listing attached an artifact"
log "listing: $(grep -c ' HEAD ' "$NGINX_LOG") HEAD probes, no GET of any artifact"

step touch-one
env -i "$mnt/25.11/noble/view/bin/sinfo" --version >/dev/null 2>&1 || true
grep -qx 25.11-noble "$mnt/25.11/noble/view/share/sffs-fixture/ARTIFACT" ||
	fail "25.11/noble's marker: $(cat "$mnt/25.11/noble/view/share/sffs-fixture/ARTIFACT")"
others=$(grep -E ' GET /' "$NGINX_LOG" | grep -cv ' GET /25\.11/noble/' || true)
[ "$others" = 0 ] || fail "touching 25.11/noble fetched others: $(grep ' GET /' "$NGINX_LOG" | grep -v /25.11/noble/)"
[ "$(grep -cE ' GET /25\.11/noble/[^ ]*\.sfidx ' "$NGINX_LOG" || true)" -ge 1 ] ||
	fail "the published index of 25.11/noble was not fetched"
[ "$(stat_of "$mnt" attaches)" = 1 ] || fail "attaches after touching one: $(stat_of "$mnt" attaches)"
log "touched one: $(tar_gets 25.11/noble) requests of 25.11/noble, none of the others"

step trees
for a in 25.11/noble 25.11/jammy 24.11/noble 24.11/jammy; do
	"$SFFS_SRC/tests/lib/compare-tree.sh" "$cat/extract/seed-${a/\//-}" "$mnt/$a" ||
		fail "$a differs from GNU tar's extraction"
	grep -qx "${a/\//-}" "$mnt/$a/view/share/sffs-fixture/ARTIFACT" || fail "$a: wrong marker"
done
[ -f "$TEST_TMP/cache"/*.sfidx ] 2>/dev/null || ls "$TEST_TMP/cache"/*.sfidx >/dev/null ||
	fail "24.11/jammy's built index was not kept in the cache dir"
log "4 artifacts equal GNU tar's extractions"

step corrupt
if ls "$mnt/23.11/noble/view" 2>"$TEST_TMP/err"; then
	fail "the corrupt artifact attached"
fi
grep -q "Input/output error" "$TEST_TMP/err" || fail "corrupt artifact: $(cat "$TEST_TMP/err")"
[ "$(stat_of "$mnt" attach_failures)" -ge 1 ] || fail "no attach failure counted"
cmp "$mnt/25.11/noble/view/bin/sinfo" "$cat/extract/seed-25.11-noble/view/bin/sinfo" ||
	fail "25.11/noble broke after another artifact failed"

step new-version
before=$(grep -c ' HEAD ' "$NGINX_LOG")
ls "$mnt/26.05" 2>/dev/null && fail "26.05 exists before it is published"
ls "$mnt/26.05" 2>/dev/null && fail "26.05 exists before it is published"
after=$(grep -c ' HEAD ' "$NGINX_LOG")
# the second lookup is answered by the kernel's or the catalog's negative entry
[ $((after - before)) -le 2 ] || fail "a missing version probed $((after - before)) times"
mkdir -p "$root/26.05/noble"
cp "$cat/seed/25.11/noble/slurm-25.11-noble-software.tar.gz" \
	"$root/26.05/noble/slurm-26.05-noble-software.tar.gz"
sleep 6 # negative entries (kernel 5 s, catalog negative_ttl 2 s) expire
[ -x "$mnt/26.05/noble/view/bin/sinfo" ] || fail "a newly published 26.05 did not appear"
# the kernel's cached link target is dropped within a few seconds
wait_until 10 eval '[ "$(readlink "$mnt/latest")" = 26.05 ]' ||
	fail "latest -> $(readlink "$mnt/latest") after 26.05"
ls "$mnt/modules/slurm/26.05-noble.lua" >/dev/null || fail "no module for 26.05"

step lmod
lmod_init=
for f in /usr/share/lmod/lmod/init/bash /usr/share/lmod/init/bash; do
	[ -f "$f" ] && lmod_init=$f && break
done
[ -n "$lmod_init" ] || fail "Lmod's bash init not found (install lmod)"
client_conf=$TEST_TMP/client/slurm.conf
mkdir -p "$(dirname "$client_conf")"
printf 'ClusterName=sffs\nSlurmctldHost=localhost\n' >"$client_conf"
sleep 4 # release what the steps above attached
wait_until 20 eval '[ "$(stat_of "$mnt" attached)" = 0 ]' ||
	fail "artifacts still attached: $(stat_of "$mnt" attached)"
attaches=$(stat_of "$mnt" attaches)
out=$(
	set +eu
	export SLURM_CONF=$client_conf LMOD_IGNORE_CACHE=1
	source "$lmod_init"
	module use "$mnt/modules" || exit 11
	echo "avail=$(module -t avail slurm 2>&1 | grep '^slurm/' | tr '\n' ' ')"
	echo "attaches_after_avail=$(stat_of "$mnt" attaches)"
	module load slurm/25.11-noble || exit 12
	echo "which1=$(command -v sinfo)"
	echo "root1=$SLURM_ROOT"
	printf 'ClusterName=sffs\nSlurmctldHost=localhost\nPluginDir=%s/lib/slurm\n' \
		"$SLURM_ROOT" >"$client_conf"
	echo "version1=$(timeout 30 sinfo --version 2>&1)"
	module switch slurm/24.11-jammy || exit 13
	echo "which2=$(command -v sinfo)"
	echo "root2=$SLURM_INSTALL_PREFIX"
	echo "ld2=$LD_LIBRARY_PATH"
	module unload slurm || exit 14
	echo "after_unload=$(command -v sinfo || echo none)"
) || fail "module command failed (status $?): $out"
log "lmod: $(echo "$out" | tr '\n' ' ')"
want="slurm/23.11-noble slurm/24.11-jammy slurm/24.11-noble slurm/25.11-jammy slurm/25.11-noble slurm/26.05-noble "
grep -qxF "avail=$want" <<<"$out" || fail "module avail: $out"
grep -qxF "attaches_after_avail=$attaches" <<<"$out" || fail "module avail attached artifacts: $out"
grep -qxF "which1=$mnt/25.11/noble/view/bin/sinfo" <<<"$out" || fail "load: $out"
grep -qxF "root1=$mnt/25.11/noble/view" <<<"$out" || fail "SLURM_ROOT: $out"
grep -qE '^version1=slurm(-wlm)? 22\.05' <<<"$out" || fail "sinfo --version: $out"
grep -qxF "which2=$mnt/24.11/jammy/view/bin/sinfo" <<<"$out" || fail "switch: $out"
grep -qxF "root2=$mnt/24.11/jammy/view" <<<"$out" || fail "SLURM_INSTALL_PREFIX: $out"
grep -q "^ld2=.*$mnt/24.11/jammy/view/lib/slurm" <<<"$out" || fail "LD_LIBRARY_PATH: $out"
grep -q "25.11/noble" <<<"$(grep '^ld2=' <<<"$out")" && fail "switch left 25.11 on LD_LIBRARY_PATH: $out"
grep -qx "after_unload=none" <<<"$out" || fail "unload: $out"

step release
wait_until 20 eval '[ "$(stat_of "$mnt" attached)" = 0 ]' ||
	fail "idle artifacts were not released: $(getfattr --absolute-names --only-values -n user.sffs.stats "$mnt")"
rel=$(stat_of "$mnt" releases)
[ "$rel" -ge 5 ] || fail "releases: $rel"
cmp "$mnt/24.11/jammy/view/lib/slurm/auth_munge.so" \
	"$cat/extract/seed-24.11-jammy/view/lib/slurm/auth_munge.so" ||
	fail "a released artifact came back with other bytes"
log "released $rel times; attached again on use"

step cycles
# 6 workers look up and read in 3 artifacts while the daemon releases them
# every 3 s: every read must give the right bytes.
end=$((SECONDS + 12))
workers=()
for w in 1 2 3 4 5 6; do
	(
		while [ $SECONDS -lt $end ]; do
			for a in 25.11/noble 25.11/jammy 24.11/noble; do
				m=$(cat "$mnt/$a/view/share/sffs-fixture/ARTIFACT") || exit 1
				[ "$m" = "${a/\//-}" ] || exit 2
				ls "$mnt/$a/view/bin" >/dev/null || exit 3
			done
			sleep "0.$((RANDOM % 9))"
			[ $((RANDOM % 3)) = 0 ] && sleep 4
		done
		exit 0
	) &
	workers+=($!)
done
st=0
for job in "${workers[@]}"; do
	wait "$job" || st=$?
done
[ "$st" = 0 ] || fail "a concurrent reader failed (status $st)"
wait_until 20 eval '[ "$(stat_of "$mnt" attached)" = 0 ]' ||
	fail "not released after the cycles"
log "cycles: $(getfattr --absolute-names --only-values -n user.sffs.stats "$mnt")"

step slow-attach
# A second mount through a proxy that stalls: lookups inside an artifact
# whose attach cannot progress end at the read deadline (-o timeout=4),
# the rest of the mount keeps answering, and the attach goes on for the
# next lookup once the origin answers again.
proxy_start "$NGINX_URL/" 0
smnt=$TEST_TMP/sf-slow
sffs_mount "$PROXY_URL" "$smnt" -o versions=24.11:25.11,toolchains=noble:jammy \
	-o timeout=4,cache_dir=none,index=none
[ "$(cat "$smnt/24.11/jammy/view/share/sffs-fixture/ARTIFACT")" = 24.11-jammy ] ||
	fail "slow-attach: 24.11/jammy before the stall"
proxy_mode stall
t0=$(date +%s%N)
lookups=()
for i in $(seq 12); do
	(
		s=$(date +%s%N)
		stat "$smnt/25.11/noble/view/bin/sinfo" >/dev/null 2>&1 && exit 9
		echo $((($(date +%s%N) - s) / 1000000)) >"$TEST_TMP/lookup.$i"
	) &
	lookups+=($!)
done
sleep 1
s=$(date +%s%N)
timeout 2 ls -l "$smnt" "$smnt/24.11" >/dev/null || fail "slow-attach: ls -l of the mount did not answer"
timeout 2 ls "$smnt/24.11/jammy/view/bin" >/dev/null || fail "slow-attach: another artifact did not answer"
timeout 2 cat "$smnt/24.11/jammy/view/share/sffs-fixture/ARTIFACT" >/dev/null ||
	fail "slow-attach: a read of another artifact did not answer"
other=$((($(date +%s%N) - s) / 1000000))
for p in "${lookups[@]}"; do
	wait "$p" || fail "slow-attach: a lookup into a stalled attach succeeded (status $?)"
done
worst=$(cat "$TEST_TMP"/lookup.* | sort -n | tail -1)
[ "$worst" -le 7000 ] || fail "slow-attach: a lookup waited $worst ms (timeout=4)"
proxy_mode ok
wait_until 60 eval '[ "$(cat "$smnt/25.11/noble/view/share/sffs-fixture/ARTIFACT" 2>/dev/null)" = 25.11-noble ]' ||
	fail "slow-attach: no attach after the stall: $(getfattr --absolute-names --only-values -n user.sffs.stats "$smnt")"
log "slow-attach: 12 lookups ended within $worst ms, the other artifact answered in $other ms, attached after the stall"
sffs_unmount "$smnt"

step cluster
cluster_start "$mnt/25.11/jammy" "$TEST_TMP/work" ||
	fail "cluster did not start from MNT/25.11/jammy/view"
cluster_check || fail "srun/sbatch from the catalog mount failed"
cluster_stop
log "single-node cluster ran from $mnt/25.11/jammy/view"
