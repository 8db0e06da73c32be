#!/usr/bin/env bash
# Safe on a shared node: a URL's secrets (userinfo, a presigned query) never
# reach what a non-root user reads: /proc/mounts, the xattrs, the daemon's
# log (also after a read fails with the origin stopped), /proc/PID/cmdline
# when SOURCE comes from a 0600 config file. A config file readable by
# others that holds such a URL is refused. A mount without trust says it is
# unverified.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool getfattr

fx=$(fixture_dir)
www=$TEST_TMP/www
mkdir -p "$www"
cp "$fx/$FIXTURE_NAME.tar.gz" "$www/"
nginx_start "$www"
mnt=$TEST_TMP/mnt
# nginx serves static files whatever the query and the credentials say
secret_url=$(sed "s|^http://|http://sffsuser:PWSECRET@|" <<<"$NGINX_URL")
secret_url="$secret_url/$FIXTURE_NAME.tar.gz?X-Amz-Credential=CREDSECRET&X-Amz-Signature=SIGSECRET"
secrets='PWSECRET|CREDSECRET|SIGSECRET'

no_secret() { # what file
	if grep -aqE "$secrets" "$2"; then
		grep -aE "$secrets" "$2" >&2
		fail "$1 shows a URL's secret"
	fi
}

step "presigned-style URL: mount"
daemon_log=$TEST_TMP/daemon.log
mount_fg "$secret_url" "$mnt" "$daemon_log" -o cache_dir="$TEST_TMP/cache" \
	-o retries=0,timeout=5,cache_mem=1M,readahead=0
grep -F " $mnt " /proc/mounts >"$TEST_TMP/mounts"
[ -s "$TEST_TMP/mounts" ] || fail "$mnt is not in /proc/mounts"
no_secret "/proc/mounts" "$TEST_TMP/mounts"
grep -qF "/$FIXTURE_NAME.tar.gz?..." "$TEST_TMP/mounts" ||
	fail "fsname is not the redacted URL: $(cat "$TEST_TMP/mounts")"

step "xattrs"
getfattr -d -m - "$mnt" "$mnt/view/sbin/slurmctld" >"$TEST_TMP/xattrs" 2>&1 ||
	fail "getfattr failed: $(cat "$TEST_TMP/xattrs")"
grep -q 'user.sffs.url=".*tar.gz?..."' "$TEST_TMP/xattrs" ||
	fail "user.sffs.url is not the redacted URL: $(cat "$TEST_TMP/xattrs")"
no_secret "getfattr -d" "$TEST_TMP/xattrs"

step "unverified warning"
grep -q 'warning: .*unverified' "$daemon_log" ||
	fail "no 'unverified' warning in the log of a mount without trust"

step "read, then a failed read with nginx stopped"
f=view/lib/libslurmfull.so
cmp "$mnt/$f" "$fx/extract/$f" || fail "$f differs from GNU tar's extraction"
kill_pid "$NGINX_PID"
f=view/sbin/slurmctld
if timeout 60 cat "$mnt/$f" >/dev/null 2>&1; then
	fail "reading $f succeeded with the origin stopped"
fi
wait_until 10 grep -q 'error: ' "$daemon_log" ||
	fail "no error logged for the failed read"
log "logged: $(grep 'error: ' "$daemon_log" | head -1 | cut -c1-160)"
grep -q "tar.gz?..." "$daemon_log" ||
	fail "the log never names the (redacted) URL"
no_secret "the daemon's log" "$daemon_log"
sffs_unmount "$mnt"
no_secret "the daemon's log after unmount" "$daemon_log"

step "source= in a 0600 config file"
nginx_start "$www"
secret_url=$(sed "s|^http://|http://sffsuser:PWSECRET@|" <<<"$NGINX_URL")
secret_url="$secret_url/$FIXTURE_NAME.tar.gz?X-Amz-Signature=SIGSECRET"
conf=$TEST_TMP/sffs.conf
printf 'source=%s\ncache_dir=%s\n' "$secret_url" "$TEST_TMP/cache" >"$conf"
chmod 600 "$conf"
"$SFFS_BIN" -f -o config="$conf" "$mnt" 2>"$TEST_TMP/conf.log" &
cleanup_push "sffs_unmount '$mnt'"
wait_until 60 is_mounted "$mnt" || {
	cat "$TEST_TMP/conf.log" >&2
	fail "no mount from the config file's source="
}
pid=$(sffs_pids "$mnt")
[ -n "$pid" ] || fail "no daemon serves $mnt"
tr '\0' ' ' <"/proc/$pid/cmdline" >"$TEST_TMP/cmdline"
no_secret "/proc/PID/cmdline" "$TEST_TMP/cmdline"
cmp "$mnt/$f" "$fx/extract/$f" || fail "$f differs (config source)"
sffs_unmount "$mnt"
no_secret "the config mount's log" "$TEST_TMP/conf.log"

step "the same object presigned again: its cached index is used"
mount_fg "${secret_url%%\?*}?X-Amz-Signature=ANOTHERSECRET" "$mnt" "$TEST_TMP/again.log" \
	-o cache_dir="$TEST_TMP/cache"
grep -q "ready in .* (cache" "$TEST_TMP/again.log" ||
	fail "a presigned URL signed again missed the cache: $(cat "$TEST_TMP/again.log")"
cmp "$mnt/$f" "$fx/extract/$f" || fail "$f differs (presigned again)"
sffs_unmount "$mnt"
grep -q ANOTHERSECRET "$TEST_TMP/again.log" && fail "the new signature is in the log"

step "source= with a secret in a config file others can read"
chmod 644 "$conf"
rc=0
out=$(timeout 60 "$SFFS_BIN" -f -o config="$conf" "$mnt" 2>&1) || rc=$?
is_mounted "$mnt" && fail "mounted from a world-readable config with a secret"
[ "$rc" -ne 0 ] || fail "sffs exited 0"
grep -q "readable by others" <<<"$out" || fail "message: $out"
no_secret "the refusal" <(printf '%s\n' "$out")
log "refused: $out"

# ---- a private, checked index cache ---------------------------------------
plain_url=$NGINX_URL/$FIXTURE_NAME.tar.gz
cache=$TEST_TMP/pcache/sffs
mount_cached() { # log
	mount_fg "$plain_url" "$mnt" "$1" -o cache_dir="$cache"
	cmp "$mnt/$f" "$fx/extract/$f" || fail "$f differs ($1)"
	sffs_unmount "$mnt"
}
how_opened() { # log: "cache", "indexed", ...
	sed -n 's/.* ready in [0-9.]* s (\([a-z ]*\).*/\1/p' "$1" | head -1
}

step "cache: made 0700, its index 0600"
umask 022
mount_cached "$TEST_TMP/c1.log"
[ "$(stat -c %a "$cache")" = 700 ] || fail "cache dir mode $(stat -c %a "$cache")"
[ "$(stat -c %a "$TEST_TMP/pcache")" = 700 ] || fail "its parent, made by sffs, is $(stat -c %a "$TEST_TMP/pcache")"
idx=$(ls "$cache"/*.sfidx) || fail "no index kept in $cache"
[ "$(stat -c %a "$idx")" = 600 ] || fail "cached index mode $(stat -c %a "$idx")"
mount_cached "$TEST_TMP/c2.log"
[ "$(how_opened "$TEST_TMP/c2.log")" = cache ] ||
	fail "the second mount did not use the cache: $(how_opened "$TEST_TMP/c2.log")"

step "cache: our directory readable by others is made 0700"
chmod 755 "$cache"
mount_cached "$TEST_TMP/c3.log"
[ "$(stat -c %a "$cache")" = 700 ] || fail "cache dir left $(stat -c %a "$cache")"

step "cache: a planted symlink is not followed"
mv "$idx" "$TEST_TMP/elsewhere.sfidx"
ln -s "$TEST_TMP/elsewhere.sfidx" "$idx"
mount_cached "$TEST_TMP/c4.log"
grep -q "warning: cached index .*symlink.*not used" "$TEST_TMP/c4.log" ||
	fail "no warning about the symlink: $(cat "$TEST_TMP/c4.log")"
[ "$(how_opened "$TEST_TMP/c4.log")" = indexed ] ||
	fail "a symlinked index was used: $(how_opened "$TEST_TMP/c4.log")"

step "cache: a group-writable directory is not used"
rm -rf "$cache"
mkdir -m 775 "$cache"
chmod 775 "$cache" # whatever the umask
mount_cached "$TEST_TMP/c5.log"
grep -q "warning: cache .* mode 0775: another user could plant" "$TEST_TMP/c5.log" ||
	fail "no warning about the group-writable cache: $(cat "$TEST_TMP/c5.log")"
[ -z "$(ls -A "$cache")" ] || fail "sffs wrote into a group-writable cache: $(ls -A "$cache")"
[ "$(how_opened "$TEST_TMP/c5.log")" = indexed ] || fail "not indexed by streaming"

step "oom_score_adj"
# raising needs no privilege, so the option itself is checked with 300
mount_fg "$plain_url" "$mnt" "$TEST_TMP/oom.log" -o cache_dir=none,oom_score_adj=300
pid=$(sffs_pids "$mnt")
[ "$(cat "/proc/$pid/oom_score_adj")" = 300 ] || fail "oom_score_adj $(cat "/proc/$pid/oom_score_adj")"
sffs_unmount "$mnt"
if [ "$(id -u)" = 0 ]; then
	# lowering needs CAP_SYS_RESOURCE, which a container may lack: then
	# the log says so
	mount_fg "$plain_url" "$mnt" "$TEST_TMP/oom2.log" -o cache_dir=none
	pid=$(sffs_pids "$mnt")
	adj=$(cat "/proc/$pid/oom_score_adj")
	[ "$adj" = -900 ] || grep -q "cannot set oom_score_adj to -900" "$TEST_TMP/oom2.log" ||
		fail "root's default oom_score_adj is $adj and no warning says why"
	log "root's default: oom_score_adj $adj"
	sffs_unmount "$mnt"
fi
rc=0
out=$("$SFFS_BIN" -o oom_score_adj=-2000 "$plain_url" "$mnt" 2>&1) || rc=$?
[ "$rc" -ne 0 ] && grep -q "bad oom_score_adj" <<<"$out" || fail "oom_score_adj=-2000: $out"
