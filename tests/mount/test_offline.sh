#!/usr/bin/env bash
# Offline: every server down, a node keeps serving what it has and a
# reboot still mounts (issue "Survive the network"). Under -o trust= with
# a throwaway key, a published index signed over its header, a disk tier:
#   - the first mount reads sinfo and slurmd (their blocks go to the disk
#     tier) and, on a thread of its own, copies the published index and its
#     signature into the cache;
#   - nginx stopped: the mounted daemon still serves what it read; an
#     uncached read fails with EIO within the read deadline (no hang); the
#     log says "offline";
#   - a fresh daemon (a reboot) mounts from the cached index with no server,
#     checked against the kept signature, and serves the cached files
#     byte-identical with nothing fetched;
#   - nginx back on the same port: reads recover by themselves ("online
#     again"), and the whole tree is identical to GNU tar's extraction.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool gpg gpgconf getfattr

fx=$(fixture_dir)
ref=$fx/extract
name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
cache=$TEST_TMP/cache

step "key, artifact and signed index"
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
cleanup_push "gpgconf --homedir '$GNUPGHOME' --kill all"
gpg --batch --quiet --passphrase '' --quick-gen-key "sffs offline <off@test>" ed25519 sign 0 2>/dev/null
KEY=$(gpg --with-colons --list-keys "off@test" | awk -F: '/^fpr/ { print $10; exit }')
[[ $KEY =~ ^[0-9A-F]{40}$ ]] || fail "no key made ($KEY)"
gpg --armor --export "$KEY" >"$TEST_TMP/key.asc"
mkdir -p "$www/sf"
cp "$fx/$name" "$www/sf/$name"
"$SFFS_INDEX" -q "$www/sf/$name" -o "$www/sf/$name.sfidx" --sign-with "$KEY" 2>/dev/null ||
	fail "sffs-index --sign-with failed"
nginx_start "$www"
ndir=$(dirname "$NGINX_LOG")
opts=allow_insecure,keyring=$TEST_TMP/key.asc,cache_dir=$cache,cache_size=64M,timeout=5,retries=1
url=$NGINX_URL/sf/$name
stat_of() { # MNT NAME
	getfattr --absolute-names --only-values -n user.sffs.stats "$1" |
		tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}

step "online: read two binaries, the index copied to the cache"
mnt=$TEST_TMP/m1
mount_fg "$url" "$mnt" "$TEST_TMP/m1.log" -o "$opts"
for f in view/bin/sinfo view/sbin/slurmd; do
	cmp "$mnt/$f" "$ref/$f" || fail "$f differs"
done
wait_until 30 grep -q "kept in .* for offline use" "$TEST_TMP/m1.log" ||
	fail "the index was not kept: $(tail -5 "$TEST_TMP/m1.log")"
[ "$(stat -c %a "$cache")" = 700 ] || fail "cache dir mode $(stat -c %a "$cache")"
for f in "$cache"/*.sfidx "$cache"/*.sfidx.asc "$cache"/last-*; do
	[ "$(stat -c %a "$f")" = 600 ] || fail "$f has mode $(stat -c %a "$f")"
done
uncached=$(cd "$ref" && find view/lib -type f -size +100k | sort | tail -1)
[ -n "$uncached" ] || fail "no large file to leave uncached"

step "every server down: what was read is served, the rest fails fast"
kill_pid "$NGINX_PID"
echo 3 >/proc/sys/vm/drop_caches
cmp "$mnt/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs with the origin down"
t0=$(date +%s)
if timeout 60 cat "$mnt/$uncached" >/dev/null 2>"$TEST_TMP/eio.err"; then
	fail "an uncached read succeeded with no server"
fi
t1=$(date +%s)
[ $((t1 - t0)) -lt 30 ] || fail "the failed read took $((t1 - t0)) s (deadline 5 s)"
grep -q "Input/output error" "$TEST_TMP/eio.err" || fail "not EIO: $(cat "$TEST_TMP/eio.err")"
grep -q "offline: no server answers" "$TEST_TMP/m1.log" || fail "offline not logged"
log "uncached read failed in $((t1 - t0)) s: $(cat "$TEST_TMP/eio.err")"
sffs_unmount "$mnt"

step "a reboot with no server: mounted from the cached index"
mnt=$TEST_TMP/m2
echo 3 >/proc/sys/vm/drop_caches
mount_fg "$url" "$mnt" "$TEST_TMP/m2.log" -o "$opts"
grep -q "no server answers .*served from the index this node cached" "$TEST_TMP/m2.log" ||
	fail "not mounted offline: $(cat "$TEST_TMP/m2.log")"
grep -q "signed by $KEY" "$TEST_TMP/m2.log" || fail "the cached index was not verified: $(cat "$TEST_TMP/m2.log")"
for f in view/bin/sinfo view/sbin/slurmd; do
	cmp "$mnt/$f" "$ref/$f" || fail "$f differs offline"
done
[ "$(stat_of "$mnt" bytes)" = 0 ] || fail "bytes fetched offline: $(stat_of "$mnt" bytes)"
[ "$(stat_of "$mnt" disk_blocks)" -gt 0 ] || fail "nothing from the disk tier"
if timeout 60 cat "$mnt/$uncached" >/dev/null 2>&1; then
	fail "an uncached read succeeded offline"
fi

step "the server back: reads recover by themselves"
nginx -p "$ndir" -c "$ndir/nginx.conf" 2>>"$ndir/stderr.log" &
NGINX_PID=$!
cleanup_push "kill_pid $NGINX_PID"
wait_until 10 nginx_ready || fail "nginx did not come back"
# a block that just failed fails its next readers at once for up to
# 0.5 s (FAIL_HOLD_NS), so that a dead server is not asked once per reader
sleep 1
cmp "$mnt/$uncached" "$ref/$uncached" || fail "$uncached differs once the server is back"
grep -q "online again" "$TEST_TMP/m2.log" || fail "recovery not logged"
"$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" || fail "tree differs after recovery"
log "offline mount: $(grep -m1 'no server answers' "$TEST_TMP/m2.log")"
sffs_unmount "$mnt"

step "no cached index: a mount with no server fails, saying why"
kill_pid "$NGINX_PID"
mkdir -p "$TEST_TMP/m3"
if timeout 60 "$SFFS_BIN" -o "$opts" "$NGINX_URL/sf/other.tar.gz" "$TEST_TMP/m3" 2>"$TEST_TMP/m3.log"; then
	sffs_unmount "$TEST_TMP/m3"
	fail "mounted an artifact never seen, with no server"
fi
grep -q "cannot connect" "$TEST_TMP/m3.log" || fail "no reason: $(cat "$TEST_TMP/m3.log")"

step "a catalog (/sf) reboots with no server too"
cat_dir=$www/cat/25.11/noble
cname=slurm-25.11-noble-software.tar.gz
mkdir -p "$cat_dir"
cp "$fx/$name" "$cat_dir/$cname"
"$SFFS_INDEX" -q "$cat_dir/$cname" -o "$cat_dir/$cname.sfidx" --sign-with "$KEY" \
	--version 25.11 --toolchain noble 2>/dev/null || fail "sffs-index --sign-with failed (catalog)"
nginx -p "$ndir" -c "$ndir/nginx.conf" 2>>"$ndir/stderr.log" &
NGINX_PID=$!
cleanup_push "kill_pid $NGINX_PID"
wait_until 10 nginx_ready || fail "nginx did not come back"
copts=allow_insecure,keyring=$TEST_TMP/key.asc,cache_dir=$TEST_TMP/ccache,cache_size=64M,timeout=5,retries=1,versions=25.11,toolchains=noble
mnt=$TEST_TMP/c1
mount_fg "$NGINX_URL/cat/" "$mnt" "$TEST_TMP/c1.log" -o "$copts"
cmp "$mnt/25.11/noble/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "catalog: sinfo differs"
wait_until 30 grep -q "kept in .* for offline use" "$TEST_TMP/c1.log" ||
	fail "catalog: the index was not kept: $(tail -5 "$TEST_TMP/c1.log")"
sffs_unmount "$mnt"
kill_pid "$NGINX_PID"
echo 3 >/proc/sys/vm/drop_caches
mnt=$TEST_TMP/c2
mount_fg "$NGINX_URL/cat/" "$mnt" "$TEST_TMP/c2.log" -o "$copts"
cmp "$mnt/25.11/noble/view/bin/sinfo" "$ref/view/bin/sinfo" ||
	fail "catalog offline: sinfo differs or missing: $(tail -5 "$TEST_TMP/c2.log")"
grep -q "no server answers .*served from the index this node cached" "$TEST_TMP/c2.log" ||
	fail "catalog: not attached offline: $(cat "$TEST_TMP/c2.log")"
[ ! -e "$mnt/25.12" ] || fail "catalog offline: a name never seen appears"
log "catalog offline: $(grep -m1 'attached' "$TEST_TMP/c2.log")"
sffs_unmount "$mnt"
