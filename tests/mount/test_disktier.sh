#!/usr/bin/env bash
# The disk tier of verified blocks (-o cache_size): a mount fills it and
# serves GNU tar's extraction; a fresh daemon on the same directory serves
# the whole tree again from it, fetching (almost) nothing of the tarball; a
# damaged block file is never served (deleted, fetched again, counted); a
# daemon SIGKILLed while 8 readers fill the tier leaves nothing a fresh
# daemon serves wrong, and that daemon fetches less than the whole tarball
# again; in catalog mode the process's one store has the tier too. Page
# caches are dropped between phases and the daemon's counters show the
# reads reached it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

require_tool nginx curl getfattr python3 fusermount3
[ -x "${SFFS_INDEX:-}" ] || fail "sffs-index not found (set SFFS_INDEX)"
[ -x "$SFFS_BIN" ] || fail "sffs not found at $SFFS_BIN (set SFFS_BIN)"
[ -w /proc/sys/vm/drop_caches ] || fail "needs root (drop_caches)"

READERS=8
SLOW_RATE=512k # per connection on /slow/: the SIGKILL lands mid-fill

step fixture
fx=$(fixture_dir)
ref=$fx/extract
name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
mkdir -p "$www"
cp "$fx/$name" "$www/"
# A published index: no mount streams the tarball to index it, so every
# tarball byte nginx sends is a block the store asked for.
"$SFFS_INDEX" -q "$www/$name" -o "$www/$name.sfidx" || fail "sffs-index failed"
tarsize=$(stat -c %s "$www/$name")
NGINX_SERVER_EXTRA="location /slow/ { alias $www/; limit_rate $SLOW_RATE; }"
nginx_start "$www"
main_url=$NGINX_URL main_log=$NGINX_LOG main_name=$name

# tar_bytes: tarball bytes nginx sent so far, on any path (not the index).
tar_bytes() {
	awk -v n="$name" '{ k = split($4, p, "/") } p[k] == n { s += $2 }
		END { print s + 0 }' "$NGINX_LOG"
}
stats() {
	getfattr -n user.sffs.stats --only-values "$1"
}
# stat_get STATS KEY
stat_get() {
	tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'
}
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
block_files() {
	find "$1/blocks" -type f -name '*-*' ! -name '.tmp-*' | wc -l
}
compare() {
	bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$1" "$ref" ||
		fail "$1 differs from GNU tar's extraction"
}
# reached STATS: the daemon saw reads (not the page cache).
reached() {
	local r
	r=$(($(stat_get "$1" reads_cached) + $(stat_get "$1" reads_queued) +
		$(stat_get "$1" reads_sync)))
	[ "$r" -ge 100 ] || fail "only $r reads reached the daemon: $1"
}

cache=$TEST_TMP/cache
opts=(-o "cache_dir=$cache,cache_size=64M,cache_mem=2M")

step "cold: fill the disk tier"
mnt=$TEST_TMP/mnt-cold
b0=$(tar_bytes)
mount_fg "$NGINX_URL/$name" "$mnt" "$TEST_TMP/cold.log" "${opts[@]}"
compare "$mnt"
s=$(stats "$mnt")
reached "$s"
b1=$(tar_bytes)
log "cold: fetched $((b1 - b0)) of $tarsize tarball bytes; $(block_files "$cache") block files"
[ "$(stat_get "$s" disk)" = 1 ] || fail "no disk tier: $s"
[ "$(stat_get "$s" disk_writes)" -gt 0 ] || fail "nothing written to disk: $s"
[ "$(stat_get "$s" disk_written_bytes)" -ge $((tarsize * 9 / 10)) ] ||
	fail "less than the tarball written to disk: $s"
[ "$(block_files "$cache")" -gt 0 ] || fail "no block file in $cache/blocks"
[ -z "$(find "$cache/blocks" -perm /077)" ] || fail "block files not private"
sffs_unmount "$mnt"

step "warm: a fresh daemon serves the tree from the disk tier"
drop_caches
mnt=$TEST_TMP/mnt-warm
b0=$(tar_bytes)
mount_fg "$NGINX_URL/$name" "$mnt" "$TEST_TMP/warm.log" "${opts[@]}"
compare "$mnt"
s=$(stats "$mnt")
reached "$s"
b1=$(tar_bytes)
log "warm: fetched $((b1 - b0)) tarball bytes, $(stat_get "$s" disk_bytes) from disk"
[ $((b1 - b0)) -le 65536 ] || fail "warm read fetched $((b1 - b0)) bytes: $s"
[ "$(stat_get "$s" disk_bytes)" -ge $((tarsize * 9 / 10)) ] ||
	fail "the disk tier served too little: $s"
[ "$(stat_get "$s" disk_verify_fail)" -eq 0 ] || fail "verification failures: $s"
sffs_unmount "$mnt"

step "damaged block file: never served"
bad=$(find "$cache/blocks" -type f -name '*-3' | head -n 1)
[ -n "$bad" ] || fail "no block 3 on disk"
python3 - "$bad" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000)
    b = f.read(1)
    f.seek(1000)
    f.write(bytes([b[0] ^ 0xff]))
PY
drop_caches
mnt=$TEST_TMP/mnt-bad
b0=$(tar_bytes)
mount_fg "$NGINX_URL/$name" "$mnt" "$TEST_TMP/bad.log" "${opts[@]}"
compare "$mnt"
s=$(stats "$mnt")
reached "$s"
b1=$(tar_bytes)
log "damaged: fetched $((b1 - b0)) tarball bytes"
[ "$(stat_get "$s" disk_verify_fail)" -ge 1 ] || fail "no disk verification failure: $s"
[ "$(stat_get "$s" disk_bad)" -ge 1 ] || fail "the artifact counted no bad block: $s"
[ $((b1 - b0)) -ge 4096 ] && [ $((b1 - b0)) -le $((tarsize / 4)) ] ||
	fail "damaged block: fetched $((b1 - b0)) bytes"
grep -q 'failed its SHA-256 check' "$TEST_TMP/bad.log" || fail "no log line"
sffs_unmount "$mnt"

step "SIGKILL while $READERS readers fill the disk tier"
kcache=$TEST_TMP/cache-kill
kopts=(-o "cache_dir=$kcache,cache_size=64M,cache_mem=2M")
mnt=$TEST_TMP/mnt-kill
mount_fg "$NGINX_URL/slow/$name" "$mnt" "$TEST_TMP/kill.log" "${kopts[@]}"
kpid=$MOUNT_FG_PID
(cd "$ref" && find . -type f | LC_ALL=C sort) >"$TEST_TMP/files"
rpids=()
for ((r = 0; r < READERS; r++)); do
	awk -v r=$r -v n=$READERS 'NR % n == r' "$TEST_TMP/files" |
		(cd "$mnt" && xargs -r cat >/dev/null 2>&1) &
	rpids+=($!)
done
wait_until 60 eval '[ "$(stat_get "$(stats "$mnt")" disk_writes)" -ge 12 ]' ||
	fail "the disk tier did not fill: $(stats "$mnt")"
s=$(stats "$mnt")
kill -KILL "$kpid"
wait "$kpid" 2>/dev/null || true
for p in "${rpids[@]}"; do wait "$p" 2>/dev/null || true; done
sffs_unmount "$mnt"
n=$(block_files "$kcache")
log "killed with $(stat_get "$s" disk_writes)+ blocks written; $n block files on disk"
[ "$n" -gt 0 ] || fail "nothing on disk after the kill"

step "a fresh daemon on the killed one's directory"
drop_caches
mnt=$TEST_TMP/mnt-after
b0=$(tar_bytes)
mount_fg "$NGINX_URL/$name" "$mnt" "$TEST_TMP/after.log" "${kopts[@]}"
compare "$mnt"
s=$(stats "$mnt")
reached "$s"
b1=$(tar_bytes)
log "after the kill: fetched $((b1 - b0)) of $tarsize tarball bytes," \
	"$(stat_get "$s" disk_bytes) from disk"
[ $((b1 - b0)) -lt "$tarsize" ] || fail "fetched the whole tarball again: $s"
[ "$(stat_get "$s" disk_bytes)" -gt 0 ] || fail "nothing came from disk: $s"
sffs_unmount "$mnt"

step "catalog mode: the process's one store uses the disk tier"
catdir=$SFFS_BUILD/catalog
"$SFFS_SRC/scripts/make-catalog.sh" "$fx" "$catdir" "$SFFS_INDEX" >/dev/null
croot=$TEST_TMP/www-cat
mkdir -p "$croot"
cp -a "$catdir/seed/." "$croot/"
nginx_start "$croot" # a second nginx: NGINX_URL and NGINX_LOG are its own
name=slurm-25.11-noble-software.tar.gz
cref=$catdir/extract/seed-25.11-noble
ccache=$TEST_TMP/cache-cat
copts=(-o "versions=25.11,toolchains=noble,cache_dir=$ccache,cache_size=64M,cache_mem=2M")
for phase in cold warm; do
	drop_caches
	mnt=$TEST_TMP/cat-$phase
	b0=$(tar_bytes)
	mount_fg "$NGINX_URL/" "$mnt" "$TEST_TMP/cat-$phase.log" "${copts[@]}"
	bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt/25.11/noble" "$cref" ||
		fail "catalog $phase: 25.11/noble differs from GNU tar's extraction"
	s=$(stats "$mnt")
	b1=$(tar_bytes)
	log "catalog $phase: fetched $((b1 - b0)) tarball bytes; root: $s"
	[ "$(stat_get "$s" disk)" = 1 ] || fail "catalog: no disk tier: $s"
	if [ $phase = cold ]; then
		[ "$(stat_get "$s" disk_writes)" -gt 0 ] || fail "catalog: nothing written: $s"
	else
		[ "$(stat_get "$s" disk_hits)" -gt 0 ] || fail "catalog: no disk hit: $s"
		[ $((b1 - b0)) -le 65536 ] || fail "catalog warm: fetched $((b1 - b0)) bytes"
	fi
	sffs_unmount "$mnt"
done

step "a faulty link on the read path: resets and stalls while the tier fills"
NGINX_URL=$main_url NGINX_LOG=$main_log name=$main_name # the catalog step set its own
proxy_start "$NGINX_URL/" 5
fcache=$TEST_TMP/cache-fault
fopts=(-o "cache_dir=$fcache,cache_size=64M,cache_mem=2M,timeout=3,retries=2")
mnt=$TEST_TMP/mnt-fault
mount_fg "$PROXY_URL$name" "$mnt" "$TEST_TMP/fault.log" "${fopts[@]}"
rpids=()
for ((r = 0; r < 4; r++)); do
	awk -v r=$r 'NR % 4 == r' "$TEST_TMP/files" |
		(cd "$mnt" && xargs -r cat >/dev/null 2>&1) &
	rpids+=($!)
done
sleep 0.3
proxy_mode reset
sleep 1
proxy_mode stall
sleep 2
proxy_mode ok
for p in "${rpids[@]}"; do wait "$p" 2>/dev/null || true; done
drop_caches
compare "$mnt" # whatever failed during the faults is read again now
s=$(stats "$mnt")
log "faults: $(stat_get "$s" read_errors) reads failed during them, $(stat_get "$s" disk_writes) blocks written"
wait_until 30 grep -q "kept in .* for offline use" "$TEST_TMP/fault.log" ||
	fail "the published index was not kept: $(tail -3 "$TEST_TMP/fault.log")"
sffs_unmount "$mnt"

step "a fresh daemon through a link that only resets: served from the disk tier"
proxy_mode reset
drop_caches
mnt=$TEST_TMP/mnt-reset
b0=$(tar_bytes)
mount_fg "$PROXY_URL$name" "$mnt" "$TEST_TMP/reset.log" "${fopts[@]}"
grep -q "no server answers" "$TEST_TMP/reset.log" || fail "not mounted offline: $(cat "$TEST_TMP/reset.log")"
compare "$mnt"
s=$(stats "$mnt")
reached "$s"
[ "$(tar_bytes)" = "$b0" ] || fail "tarball bytes went out through a resetting link"
[ "$(stat_get "$s" disk_verify_fail)" = 0 ] || fail "a disk block failed its digest: $s"
log "through resets: whole tree from the disk tier, $(stat_get "$s" disk_bytes) bytes"
sffs_unmount "$mnt"
proxy_mode ok
