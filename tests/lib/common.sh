# Shared by every mount test: source it first.
#
# Environment (CTest sets the first three):
#   SFFS_BIN            the sffs daemon
#   SFFS_BUILD          the build directory (fixture goes to $SFFS_BUILD/fixture)
#   SFFS_SRC            the source tree
#   SFFS_FIXTURE_DIR    use this prebuilt fixture (make-fixture.sh's OUTDIR)
#   SFFS_TEST_TMP       parent of the per-test scratch directory
#   SFFS_KEEP_TMP=1     keep the scratch directory
#   SFFS_TEST_NO_MOUNT=1  development only: sffs_mount copies the fixture's
#                       extraction instead of mounting (no daemon needed)
#   SFFS_TEST_FAIL_AT=NAME  make `step NAME` fail (to test the cleanup)
#
# Everything a test starts is registered with cleanup_push and undone in
# reverse order on exit, whether the test passes, fails or is interrupted.

set -euo pipefail

SFFS_SRC=${SFFS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SFFS_BUILD=${SFFS_BUILD:-${TMPDIR:-/tmp}/sffs-build}
SFFS_BIN=${SFFS_BIN:-$SFFS_BUILD/sffs}
FIXTURE_NAME=slurm-22.05-bookworm-software
TEST_NAME=$(basename "${0%.sh}")

CLEANUP_STACK=()

log() {
	echo "[$TEST_NAME] $*" >&2
}

fail() {
	echo "[$TEST_NAME] FAIL: $*" >&2
	exit 1
}

# step NAME: log the step; fail it on purpose when SFFS_TEST_FAIL_AT=NAME.
step() {
	log "== $1"
	if [ "${SFFS_TEST_FAIL_AT:-}" = "$1" ]; then
		fail "failing at step '$1' on purpose (SFFS_TEST_FAIL_AT)"
	fi
}

cleanup_push() {
	CLEANUP_STACK+=("$1")
}

cleanup_run() {
	local rc=$? i
	set +e
	trap - EXIT INT TERM HUP
	for ((i = ${#CLEANUP_STACK[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUP_STACK[i]}" || log "cleanup failed: ${CLEANUP_STACK[i]}"
	done
	CLEANUP_STACK=()
	if [ "$rc" -eq 0 ]; then
		log "PASS"
	else
		log "exit status $rc"
	fi
	exit "$rc"
}

trap cleanup_run EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 10; i++)); do
		if "$@"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Kill a pid we started: TERM, up to 5 s, then KILL.
kill_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# Remove the scratch directory unless something is still mounted in it.
tmpdir_remove() {
	local dir=$1
	if [ "${SFFS_KEEP_TMP:-0}" = 1 ]; then
		log "keeping $dir"
		return 0
	fi
	if awk -v d="$dir/" 'index($2 "/", d) == 1 { found = 1 } END { exit !found }' \
		/proc/self/mounts; then
		log "not removing $dir: something is still mounted there"
		return 1
	fi
	rm -rf --one-file-system "$dir"
}

# tmpdir: create the per-test scratch directory TEST_TMP (once).
tmpdir() {
	if [ -z "${TEST_TMP:-}" ]; then
		local parent=${SFFS_TEST_TMP:-${TMPDIR:-/tmp}}
		mkdir -p "$parent"
		TEST_TMP=$(mktemp -d "$parent/$TEST_NAME.XXXXXX")
		chmod 0755 "$TEST_TMP"
		cleanup_push "tmpdir_remove '$TEST_TMP'"
	fi
	echo "$TEST_TMP"
}
tmpdir >/dev/null

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# fixture_dir: print the fixture directory, building it if needed.
fixture_dir() {
	local dir=${SFFS_FIXTURE_DIR:-$SFFS_BUILD/fixture}
	if [ -z "${SFFS_FIXTURE_DIR:-}" ]; then
		bash "$SFFS_SRC/scripts/make-fixture.sh" "$dir" >&2 ||
			fail "make-fixture.sh failed"
	fi
	if [ ! -f "$dir/$FIXTURE_NAME.tar.gz" ] || [ ! -d "$dir/extract" ]; then
		fail "no fixture in $dir"
	fi
	echo "$dir"
}

# require_tool NAME...: fail (never skip) when a tool a test needs is missing.
require_tool() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 ||
			fail "$t is needed but not installed (scripts/install-deps.sh)"
	done
}

# tls_ca: make a throwaway CA and a server certificate it signed, for IP
# 127.0.0.1 and DNS localhost, in $TEST_TMP/tls (once). Sets TLS_CA (the
# CA certificate), TLS_CERT and TLS_KEY (the server's).
tls_ca() {
	local d=$TEST_TMP/tls ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
	TLS_CA=$d/ca.pem TLS_CERT=$d/server.pem TLS_KEY=$d/server.key
	[ ! -f "$TLS_CERT" ] || return 0
	require_tool openssl
	mkdir -p "$d"
	openssl req -x509 "${ec[@]}" -nodes -days 2 -subj "/CN=sffs test CA" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$d/ca.key" -out "$TLS_CA" 2>"$d/openssl.log" &&
		openssl req "${ec[@]}" -nodes -subj /CN=localhost \
			-keyout "$TLS_KEY" -out "$d/server.csr" 2>>"$d/openssl.log" &&
		printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
			'basicConstraints=critical,CA:FALSE' \
			'keyUsage=critical,digitalSignature' \
			'extendedKeyUsage=serverAuth' >"$d/server.ext" &&
		openssl x509 -req -in "$d/server.csr" -CA "$TLS_CA" \
			-CAkey "$d/ca.key" -CAcreateserial -days 2 \
			-extfile "$d/server.ext" -out "$TLS_CERT" 2>>"$d/openssl.log" ||
		fail "openssl could not make the test CA: $(cat "$d/openssl.log")"
	log "test CA in $TLS_CA"
}

nginx_ready() {
	curl -s -o /dev/null --max-time 2 ${NGINX_CAFILE:+--cacert "$NGINX_CAFILE"} \
		"$NGINX_URL/__sffs_ready"
}

# nginx_start DIR: serve DIR on 127.0.0.1:<free port> with the real nginx
# (with directory listings when NGINX_AUTOINDEX=on: httpdirfs needs them;
# over TLS and HTTP/2 when NGINX_TLS=1, with a certificate from tls_ca).
# Sets NGINX_URL (http:// or https://), NGINX_CAFILE (TLS only: the CA to
# trust), NGINX_LOG (one line per request: "status bytes_sent method
# request_uri range request_time protocol"; fields only ever get added at
# the end), NGINX_PID. NGINX_SERVER_EXTRA: more directives for the server
# block (e.g. a location with limit_rate, to make one artifact slow).
nginx_start() {
	local root=$1 dir port user= listen tls=
	require_tool nginx curl
	root=$(cd "$root" && pwd)
	dir=$(mktemp -d "$TEST_TMP/nginx.XXXXXX")
	port=$(free_port)
	[ "$(id -u)" -ne 0 ] || user="user root;"
	listen="127.0.0.1:$port"
	NGINX_URL=http://127.0.0.1:$port
	NGINX_CAFILE=
	if [ "${NGINX_TLS:-0}" = 1 ]; then
		tls_ca
		listen="$listen ssl http2"
		tls="ssl_certificate $TLS_CERT; ssl_certificate_key $TLS_KEY;"
		NGINX_URL=https://127.0.0.1:$port
		NGINX_CAFILE=$TLS_CA
	fi
	cat >"$dir/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
	default_type application/octet-stream;
	types { }
	sendfile on;
	autoindex ${NGINX_AUTOINDEX:-off};
	keepalive_requests 100000;
	client_body_temp_path $dir/body;
	proxy_temp_path $dir/proxy;
	fastcgi_temp_path $dir/fastcgi;
	uwsgi_temp_path $dir/uwsgi;
	scgi_temp_path $dir/scgi;
	log_format sffs '\$status \$body_bytes_sent \$request_method \$request_uri "\$http_range" \$request_time \$server_protocol';
	access_log $dir/access.log sffs;
	server {
		listen $listen;
		$tls
		root $root;
		location = /__sffs_ready { access_log off; return 204; }
		${NGINX_SERVER_EXTRA:-}
	}
}
EOF
	NGINX_LOG=$dir/access.log
	nginx -p "$dir" -c "$dir/nginx.conf" 2>"$dir/stderr.log" &
	NGINX_PID=$!
	cleanup_push "kill_pid $NGINX_PID"
	if ! wait_until 10 nginx_ready; then
		cat "$dir/stderr.log" "$dir/error.log" >&2 2>/dev/null || true
		fail "nginx did not start on port $port"
	fi
	log "nginx serving $root at $NGINX_URL"
}

# faultserver_start FILE: serve FILE with tests/lib/faultserver.py (its
# header lists the misbehaviours, chosen by the first path component) on a
# free port. Sets FAULT_URL and FAULT_PID.
faultserver_start() {
	local out
	out=$(mktemp "$TEST_TMP/faultserver.XXXXXX")
	python3 "$SFFS_SRC/tests/lib/faultserver.py" "$1" >"$out" &
	FAULT_PID=$!
	cleanup_push "kill_pid $FAULT_PID"
	wait_until 10 test -s "$out" || fail "faultserver.py did not start"
	FAULT_URL=http://127.0.0.1:$(head -1 "$out")
	log "faultserver serving $1 at $FAULT_URL"
}

# nginx_bytes_sent [URI-SUBSTRING]: body bytes sent so far.
nginx_bytes_sent() {
	awk -v s="${1:-}" 'index($4, s) { n += $2 } END { print n + 0 }' "$NGINX_LOG"
}

# nginx_requests [URI-SUBSTRING]: requests answered so far.
nginx_requests() {
	awk -v s="${1:-}" 'index($4, s) { n++ } END { print n + 0 }' "$NGINX_LOG"
}

# proxy_start TARGET_URL DELAY_MS: start tests/lib/delayproxy.py on
# 127.0.0.1 in front of TARGET_URL's host and port, adding DELAY_MS to every
# client->server chunk (every request). Sets PROXY_URL (TARGET_URL with
# 127.0.0.1:<proxy port> as its host: same scheme and path), PROXY_CONTROL
# (its control file, see proxy_mode), PROXY_LOG and PROXY_PID; stopped on
# exit. PROXY_MAX_SECONDS (default 3600) bounds its life.
proxy_start() {
	local url=$1 delay=$2 scheme rest hostport path port dir
	command -v python3 >/dev/null || fail "python3 not found (the proxy needs it)"
	case $url in
	http://* | https://*) ;;
	*) fail "proxy_start: not an http(s) URL: $url" ;;
	esac
	scheme=${url%%://*}
	rest=${url#*://}
	hostport=${rest%%/*}
	path=${rest:${#hostport}}
	case $hostport in
	*:*) ;;
	*) if [ "$scheme" = https ]; then hostport=$hostport:443; else hostport=$hostport:80; fi ;;
	esac
	dir=$(mktemp -d "$TEST_TMP/proxy.XXXXXX")
	PROXY_CONTROL=$dir/control
	PROXY_LOG=$dir/proxy.log
	echo ok >"$PROXY_CONTROL"
	python3 "$SFFS_SRC/tests/lib/delayproxy.py" --target "$hostport" \
		--delay-ms "$delay" --control "$PROXY_CONTROL" \
		--max-seconds "${PROXY_MAX_SECONDS:-3600}" >"$dir/port" 2>"$PROXY_LOG" &
	PROXY_PID=$!
	cleanup_push "kill_pid $PROXY_PID"
	if ! wait_until 10 test -s "$dir/port"; then
		cat "$PROXY_LOG" >&2 || true
		fail "delayproxy did not start"
	fi
	port=$(head -n 1 "$dir/port")
	PROXY_URL=$scheme://127.0.0.1:$port$path
	PROXY_MODE=ok
	log "delayproxy: $PROXY_URL -> $hostport, +${delay} ms per request"
}

# proxy_mode ok|stall|reset: switch the proxy's mode and wait until it has
# taken it (it logs every change).
proxy_mode() {
	local mode=$1
	case $mode in
	ok | stall | reset) ;;
	*) fail "proxy_mode: unknown mode '$mode'" ;;
	esac
	[ -n "${PROXY_CONTROL:-}" ] || fail "proxy_mode: no proxy_start"
	[ "$mode" != "${PROXY_MODE:-ok}" ] || return 0
	echo "$mode" >"$PROXY_CONTROL.tmp"
	mv -f "$PROXY_CONTROL.tmp" "$PROXY_CONTROL"
	wait_until 5 eval "grep -E '^delayproxy: mode ' '$PROXY_LOG' | tail -n 1 | grep -q -- '-> $mode '" ||
		fail "the proxy did not switch to '$mode': $(tail -n 5 "$PROXY_LOG")"
	PROXY_MODE=$mode
	log "proxy mode $mode"
}

# Pids of sffs daemons serving MNT (found by executable and command line).
sffs_pids() {
	local mnt=$1 p exe bin
	bin=$(readlink -f "$SFFS_BIN" 2>/dev/null) || return 0
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		[ "$exe" = "$bin" ] || continue
		if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF "$mnt"; then
			echo "${p#/proc/}"
		fi
	done
}

is_mounted() {
	awk -v d="$1" '$2 == d { found = 1 } END { exit !found }' /proc/self/mounts
}

# sffs_unmount MNT: unmount (lazily if busy) and make sure the daemon exits.
sffs_unmount() {
	local mnt=$1 pid
	if is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" ||
			log "could not unmount $mnt"
	fi
	for pid in $(sffs_pids "$mnt"); do
		if ! wait_until 5 eval "! kill -0 $pid 2>/dev/null"; then
			log "sffs pid $pid still running after unmount; killing it"
			kill_pid "$pid"
		fi
	done
}

# mount_fg URL MNT LOG [OPTIONS...]: sffs -f in the background, its stderr
# (the daemon's log) in LOG; returns once MNT is mounted, unmounted on exit.
mount_fg() {
	local url=$1 mnt=$2 logf=$3
	shift 3
	mkdir -p "$mnt"
	"$SFFS_BIN" -f "$@" "$url" "$mnt" 2>"$logf" &
	MOUNT_FG_PID=$! # the daemon (for its /proc entries)
	cleanup_push "sffs_unmount '$mnt'"
	wait_until 60 is_mounted "$mnt" || { cat "$logf" >&2; fail "no mount at $mnt"; }
}

# sffs_mount URL MNT [OPTIONS...]: mount URL at MNT; returns once it's ready.
sffs_mount() {
	local url=$1 mnt=$2
	shift 2
	mkdir -p "$mnt"
	mnt=$(cd "$mnt" && pwd)
	if [ "${SFFS_TEST_NO_MOUNT:-0}" = 1 ]; then
		log "SFFS_TEST_NO_MOUNT=1: copying the fixture's extraction to $mnt"
		cp -a "$(fixture_dir)/extract/." "$mnt/"
		return 0
	fi
	[ -x "$SFFS_BIN" ] || fail "sffs binary not found: $SFFS_BIN"
	cleanup_push "sffs_unmount '$mnt'"
	# Keep built indexes in the test's own directory, not the system's.
	case " $* " in
	*cache_dir=*) ;;
	*) set -- -o "cache_dir=$TEST_TMP/index-cache" "$@" ;;
	esac
	timeout 600 "$SFFS_BIN" "$@" "$url" "$mnt" ||
		fail "sffs $* $url $mnt failed (status $?)"
	is_mounted "$mnt" || fail "sffs returned but $mnt is not mounted"
	log "mounted $url at $mnt"
}

# s3_listening PORT: something accepts connections on 127.0.0.1:PORT (a
# bare connect: no request, so nothing in the server's log).
s3_listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# s3_start ROOT BUCKET [PAGE_SIZE]: serve the files under ROOT as bucket
# BUCKET with tests/lib/s3server.py (path style: object KEY is
# ROOT/KEY; ListObjectsV2 pages of at most PAGE_SIZE entries when given) on
# 127.0.0.1:<free port>. Sets S3_URL (http://127.0.0.1:PORT, without the
# bucket), S3_BUCKET_URL ($S3_URL/BUCKET), S3_LOG (one line per request:
# "METHOD PATH?QUERY STATUS RANGE BYTES_SENT", RANGE "-" when none) and
# S3_PID; stopped on exit.
s3_start() {
	local root=$1 bucket=$2 page=${3:-} dir port i
	require_tool python3
	[ -d "$root" ] || fail "s3_start: no directory $root"
	root=$(cd "$root" && pwd)
	dir=$(mktemp -d "$TEST_TMP/s3.XXXXXX")
	S3_LOG=$dir/requests.log
	: >"$S3_LOG"
	# A free port can be taken before the server binds it: try a few.
	for i in 1 2 3; do
		port=$(free_port)
		S3_URL=http://127.0.0.1:$port
		S3_BUCKET_URL=$S3_URL/$bucket
		python3 "$SFFS_SRC/tests/lib/s3server.py" --root "$root" \
			--bucket "$bucket" --port "$port" --log "$S3_LOG" \
			${page:+--page-size "$page"} >"$dir/stdout" 2>"$dir/stderr" &
		S3_PID=$!
		cleanup_push "kill_pid $S3_PID"
		if wait_until 10 eval "s3_listening $port || ! kill -0 $S3_PID 2>/dev/null" &&
			kill -0 "$S3_PID" 2>/dev/null; then
			log "s3server serving $root as $S3_BUCKET_URL${page:+ (pages of $page)}"
			return 0
		fi
		kill_pid "$S3_PID"
	done
	cat "$dir/stderr" >&2 || true
	fail "s3server.py did not start"
}

# s3_requests PATTERN: how many logged requests match the grep -E PATTERN
# (e.g. s3_requests '^GET /bkt/seed/25\.11/noble/[^ ?]*\.tar\.gz 206 ').
s3_requests() {
	[ -n "${S3_LOG:-}" ] || fail "s3_requests: no s3_start"
	grep -c -E -e "$1" "$S3_LOG" || true
}

# squid_start: Debian's Squid as a forward proxy on 127.0.0.1:<free port>,
# caching nothing (every request goes through to the origin), logging each
# request. Sets SQUID_URL (http://127.0.0.1:PORT), SQUID_LOG (its
# access.log: "time elapsed client CODE/status bytes METHOD URL ...") and
# SQUID_PID; stopped on exit.
squid_start() {
	local dir port
	require_tool squid curl
	dir=$(mktemp -d "$TEST_TMP/squid.XXXXXX")
	port=$(free_port)
	cat >"$dir/squid.conf" <<SQ
http_port 127.0.0.1:$port
pid_filename $dir/squid.pid
access_log stdio:$dir/access.log
cache_log $dir/cache.log
cache_store_log none
netdb_filename none
coredump_dir $dir
cache deny all
http_access allow all
shutdown_lifetime 1 seconds
SQ
	# as root Squid drops to its own user, which writes the logs
	[ "$(id -u)" -ne 0 ] || chown -R proxy "$dir" 2>/dev/null || true
	SQUID_URL=http://127.0.0.1:$port
	SQUID_LOG=$dir/access.log
	squid -N -f "$dir/squid.conf" >"$dir/stderr.log" 2>&1 &
	SQUID_PID=$!
	cleanup_push "kill_pid $SQUID_PID"
	if ! wait_until 20 s3_listening "$port"; then
		cat "$dir/stderr.log" "$dir/cache.log" >&2 2>/dev/null || true
		fail "squid did not start on port $port"
	fi
	log "squid forward proxy at $SQUID_URL"
}

# flip_byte FILE OFFSET: inverts the byte at OFFSET (never a no-op, as
# writing a fixed value over an unknown byte may be).
flip_byte() {
	python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)
    if len(b) != 1: sys.exit("offset past the end")
    f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))' "$1" "$2"
}
