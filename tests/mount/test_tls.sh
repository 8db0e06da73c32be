#!/usr/bin/env bash
# The mount over TLS and HTTP/2, with a throwaway CA: -o cafile= gives a
# mount equal to GNU tar's extraction (compare-tree, 16 concurrent random
# readers) whose requests nginx logged as HTTP/2.0; without a CA the mount
# is refused with a certificate message; CURL_CA_BUNDLE works instead of
# the option; a missing cafile is refused before mounting.
# Needs openssl, nginx and curl: without them it fails, never skips.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

require_tool openssl nginx curl
step fixture
fx=$(fixture_dir)
ref=$fx/extract
name=$FIXTURE_NAME.tar.gz
NGINX_TLS=1 nginx_start "$fx"
url=$NGINX_URL/$name
# Nothing from the caller's environment may choose the CA for us.
unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR

refused() { # what regex [sffs options...]
	local what=$1 re=$2 mnt=$TEST_TMP/mnt-refused out rc=0
	shift 2
	step "$what"
	mkdir -p "$mnt"
	out=$(timeout 120 "$SFFS_BIN" -o retries=1 \
		-o cache_dir=none "$@" "$url" "$mnt" 2>&1) || rc=$?
	if is_mounted "$mnt"; then
		fusermount3 -u "$mnt"
		fail "$what: sffs mounted $url"
	fi
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$what: sffs exited $rc"
	grep -qE "$re" <<<"$out" || fail "$what: message '$out' does not match /$re/"
	log "$what -> exit $rc: $(tail -1 <<<"$out")"
}

refused "no CA: refused" "TLS certificate problem with 127\.0\.0\.1:[0-9]+"
refused "missing cafile: refused" \
	"cannot use CA file $TEST_TMP/nope\.pem: No such file or directory" \
	-o cafile="$TEST_TMP/nope.pem"

step "mount with -o cafile"
mnt=$TEST_TMP/mnt
sffs_mount "$url" "$mnt" -o cafile="$NGINX_CAFILE" -o cache_mem=64M

step "compare"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" ||
	fail "mount over TLS differs from GNU tar's extraction"

step "concurrent"
"$SFFS_RANDREAD" "$mnt" "$ref" 16 200 "$RANDOM" ||
	fail "concurrent random reads over TLS returned wrong bytes"
sffs_unmount "$mnt"

step "HTTP/2"
# nginx logs a request when it ends; the daemon has exited by now.
# Every request for the artifact or its index ($4 is the URI) must have
# been HTTP/2 (the last field), and there must have been some.
read -r n h2 < <(awk -v s="/$name" 'index($4, s) == 1 { n++; if ($NF == "HTTP/2.0") h2++ }
	END { print n + 0, h2 + 0 }' "$NGINX_LOG")
log "$n requests from the daemon, $h2 of them HTTP/2.0"
[ "$n" -ge 1 ] || fail "nginx logged no request for $name"
[ "$n" -eq "$h2" ] || fail "only $h2 of $n requests were HTTP/2.0: $(awk '{ print $NF }' "$NGINX_LOG" | sort | uniq -c)"

step "CURL_CA_BUNDLE instead of -o cafile"
mnt=$TEST_TMP/mnt-env
# The index the first mount built is in the cache, so this one is quick.
CURL_CA_BUNDLE=$NGINX_CAFILE sffs_mount "$url" "$mnt"
cmp "$mnt/view/bin/sinfo" "$ref/view/bin/sinfo" ||
	fail "sinfo differs (CURL_CA_BUNDLE mount)"
sffs_unmount "$mnt"
