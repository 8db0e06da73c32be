#!/usr/bin/env bash
# Before mounting, sffs says clearly what is wrong and exits non-zero:
# nothing listening, 404, a server that ignores Range, not a tar, corrupt or
# truncated gzip, a corrupt zstd frame, a bad mount point. It never leaves a
# mount behind. An unknown or malformed option is named before any request
# (the nginx log stays as it was).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

fx=$(fixture_dir)
www=$TEST_TMP/www
mkdir -p "$www"
gz=$fx/$FIXTURE_NAME.tar.gz
size=$(stat -c %s "$gz")
head -c $((size / 2)) "$gz" >"$www/truncated.tar.gz"
cp "$gz" "$www/flipped.tar.gz"
# Flip one byte in the middle of the deflate stream.
flip_byte "$www/flipped.tar.gz" $((size / 2))
head -c 100000 /dev/urandom >"$www/random.bin"
gzip -c "$fx/extract/data/slurm_assets/slurm_install.sh" >"$www/notatar.tar.gz"
zst=$fx/$FIXTURE_NAME.tar.zst
zsize=$(stat -c %s "$zst")
cp "$zst" "$www/flipped.tar.zst"
flip_byte "$www/flipped.tar.zst" $((zsize / 2))
nginx_start "$www"
faultserver_start "$gz"
closed_port=$(free_port)

expect_refusal() { # what url regex [sffs options...]
	local what=$1 url=$2 re=$3 mnt=$TEST_TMP/mnt out rc=0
	shift 3
	step "$what"
	mkdir -p "$mnt"
	out=$(timeout 120 "$SFFS_BIN" -o retries=1 "$@" "$url" "$mnt" 2>&1) || rc=$?
	if is_mounted "$mnt"; then
		fusermount3 -u "$mnt"
		fail "$what: sffs mounted $url"
	fi
	[ "$rc" -ne 0 ] || fail "$what: sffs exited 0"
	[ "$rc" -ne 124 ] || fail "$what: sffs hung"
	grep -qE "$re" <<<"$out" || fail "$what: message '$out' does not match /$re/"
	log "$what -> exit $rc: $(tail -1 <<<"$out")"
}

expect_refusal "nothing listening" "http://127.0.0.1:$closed_port/x.tar.gz" "connect"
expect_refusal "404" "$NGINX_URL/missing.tar.gz" "404"
expect_refusal "server ignores Range" "$FAULT_URL/norange/x.tar.gz" \
	"ignores Range requests \(answered 200 to a range request\)"
expect_refusal "not a tar" "$NGINX_URL/random.bin" "not a tar archive"
expect_refusal "gzip of a non-tar" "$NGINX_URL/notatar.tar.gz" "not a tar archive"
expect_refusal "truncated gzip" "$NGINX_URL/truncated.tar.gz" "truncated"
expect_refusal "corrupt gzip" "$NGINX_URL/flipped.tar.gz" "gzip.*offset [0-9]+"
expect_refusal "corrupt zstd" "$NGINX_URL/flipped.tar.zst" "zstd.*offset [0-9]+"
expect_refusal "missing local file" "$TEST_TMP/nope.tar.gz" "No such file|not found|cannot open"
expect_refusal "bad option" "$NGINX_URL/notatar.tar.gz" "cache_mem" -o cache_mem=lots
# Bad options are refused before any request: nothing reaches nginx.
expect_no_request() { # what url regex [sffs options...]
	local before after
	before=$(nginx_requests)
	expect_refusal "$@"
	sleep 0.2 # nginx logs a request once it is answered
	after=$(nginx_requests)
	[ "$after" = "$before" ] ||
		fail "$1: $((after - before)) requests reached nginx: $(tail -n $((after - before)) "$NGINX_LOG")"
}
expect_no_request "unknown option" "$NGINX_URL/flipped.tar.gz" \
	"unknown option.*no_such_option=2G" -o no_such_option=2G
expect_no_request "unknown option, catalog" "$NGINX_URL/" \
	"unknown option.*no_such_option=2G" -o versions=1.0,toolchains=x -o no_such_option=2G
expect_no_request "malformed size" "$NGINX_URL/flipped.tar.gz" \
	"bad readahead value 'lots'" -o readahead=lots
expect_no_request "malformed number" "$NGINX_URL/flipped.tar.gz" \
	"invalid parameter.*timeout=soon" -o timeout=soon
expect_no_request "malformed seconds, catalog" "$NGINX_URL/" \
	"bad release_after value 'soon'" -o versions=1.0,toolchains=x -o release_after=soon
expect_no_request "malformed verify" "$NGINX_URL/flipped.tar.gz" \
	"bad verify value 'maybe'" -o verify=maybe

step "bad mount point"
out=$("$SFFS_BIN" -o cache_dir=none "$NGINX_URL/$FIXTURE_NAME.tar.gz" "$TEST_TMP/no/such/dir" 2>&1) &&
	fail "mounting on a missing directory succeeded"
log "missing mount point -> $out"
