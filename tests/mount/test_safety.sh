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

step "source= with a secret in a config file others can read"
chmod 644 "$conf"
rc=0
out=$(timeout 60 "$SFFS_BIN" -f -o config="$conf" "$mnt" 2>&1) || rc=$?
is_mounted "$mnt" && fail "mounted from a world-readable config with a secret"
[ "$rc" -ne 0 ] || fail "sffs exited 0"
grep -q "readable by others" <<<"$out" || fail "message: $out"
no_secret "the refusal" <(printf '%s\n' "$out")
log "refused: $out"
