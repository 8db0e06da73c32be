#!/usr/bin/env bash
# A stalled origin: the server keeps its connections open and sends
# nothing. The mount must stay usable: metadata and cached data still
# answer at once, every read that needs the network ends with EIO at its
# deadline (-o timeout=8) instead of holding a FUSE worker forever, and
# once the origin answers again the same files read correctly.
#
# The fixture's .tar.gz and its published index are served by nginx
# through tests/lib/delayproxy.py, whose stall mode holds every
# server->client byte.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

DEADLINE=8        # -o timeout=: every read's overall deadline, seconds
READERS=12        # blocked readers: more than libfuse's 10 worker threads
QUICK=5           # bound for what must not wait for the network, seconds
READER_BOUND=24   # bound for a blocked read to end: the kernel may retry once (2 deadlines + slack)
DELAY_MS=10       # per request, as on a WAN

for t in nginx curl python3 dd timeout fusermount3; do
	command -v "$t" >/dev/null || fail "$t not found (scripts/install-deps.sh)"
done
[ -x "${SFFS_INDEX:-}" ] || fail "sffs-index not found (set SFFS_INDEX)"
[ -x "$SFFS_BIN" ] || fail "sffs not found at $SFFS_BIN (set SFFS_BIN)"

fx=$(fixture_dir)
ref=$fx/extract
name=$FIXTURE_NAME.tar.gz
[ -f "$fx/$FIXTURE_NAME.tar" ] || fail "no $FIXTURE_NAME.tar in $fx"
www=$TEST_TMP/www
mkdir -p "$www"
cp "$fx/$name" "$www/"
"$SFFS_INDEX" -q "$www/$name" -o "$www/$name.sfidx" || fail "sffs-index failed"

# The cached file, and READERS other regular files that are not in its
# part of the tar stream (at least 2 MiB away, so no span and no decoded
# chunk of theirs is in memory after it was read), not under view/bin
# (listed while stalled, so it must not be looked up before), largest
# first, spread over different MiBs of the stream where possible.
CACHED=view/include/slurm/slurm.h
mapfile -t FILES < <(python3 - "$fx/$FIXTURE_NAME.tar" "$CACHED" "$READERS" <<'PY'
import sys, tarfile
tar, cached, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
regs = [m for m in tarfile.open(tar).getmembers() if m.isreg()]
c = [m for m in regs if m.name == cached]
if not c:
    sys.exit("%s is not in the fixture" % cached)
c = c[0]
lo, hi = c.offset_data - (2 << 20), c.offset_data + c.size + (2 << 20)
cand = [m for m in regs
        if m.size >= 64 << 10 and not m.name.startswith("view/bin/")
        and (m.offset_data + m.size < lo or m.offset_data > hi)]
cand.sort(key=lambda m: (-m.size, m.name))
pick, mibs = [], set()
for m in cand:  # one a MiB first, then the rest by size
    if m.offset_data >> 20 not in mibs:
        pick.append(m)
        mibs.add(m.offset_data >> 20)
for m in cand:
    if m not in pick:
        pick.append(m)
if len(pick) < n:
    sys.exit("only %d files to read" % len(pick))
for m in pick[:n]:
    print(m.name)
PY
) || fail "could not choose the files"
[ "${#FILES[@]}" -eq "$READERS" ] || fail "chose ${#FILES[@]} files, not $READERS"

nginx_start "$www"
proxy_start "$NGINX_URL" "$DELAY_MS"

mnt=$TEST_TMP/mnt
daemon_log=$TEST_TMP/sffs.log
mkdir -p "$mnt"
mnt=$(cd "$mnt" && pwd)
READER_PIDS=()   # the subshells
TIMEOUT_PIDS=()  # their `timeout dd` processes

# fuse_abort MNT: abort the FUSE connection of MNT (with fusectl mounted),
# which ends every request still waiting on the daemon.
fuse_abort() {
	local dev
	dev=$(awk -v d="$1" '$5 == d { split($3, a, ":"); m = a[2] } END { print m }' \
		/proc/self/mountinfo)
	if [ -n "$dev" ] && [ -w "/sys/fs/fuse/connections/$dev/abort" ]; then
		log "aborting the FUSE connection of $1"
		echo 1 >"/sys/fs/fuse/connections/$dev/abort" || true
	fi
}

# stop_readers: TERM every reader (timeout passes it on to dd; a FUSE wait
# ends on a fatal signal), KILL after 5 s, abort the connection if any is
# still there.
stop_readers() {
	local p alive i
	for p in "${TIMEOUT_PIDS[@]}" "${READER_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for ((i = 0; i < 50; i++)); do
		alive=0
		for p in "${TIMEOUT_PIDS[@]}" "${READER_PIDS[@]}"; do
			! kill -0 "$p" 2>/dev/null || alive=1
		done
		[ "$alive" -eq 1 ] || break
		sleep 0.1
	done
	if [ "$alive" -eq 1 ]; then
		for p in "${TIMEOUT_PIDS[@]}" "${READER_PIDS[@]}"; do
			kill -KILL "$p" 2>/dev/null || true
		done
		fuse_abort "$mnt"
	fi
	for p in "${READER_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}

# unmount_hard: unmount even with reads hanging: readers stopped first,
# then a lazy unmount if busy, then the daemon killed (sffs_unmount).
unmount_hard() {
	stop_readers
	if is_mounted "$mnt" && ! timeout 10 fusermount3 -u "$mnt" 2>/dev/null; then
		timeout 10 fusermount3 -uz "$mnt" || fuse_abort "$mnt"
	fi
	sffs_unmount "$mnt"
}

step "mount through the proxy"
# Foreground daemon in the background, so its log is kept.
"$SFFS_BIN" -f -o cache_dir=none -o "timeout=$DEADLINE" -o cache_mem=16M \
	"$PROXY_URL/$name" "$mnt" 2>"$daemon_log" &
daemon=$!
cleanup_push "kill_pid $daemon"
cleanup_push "unmount_hard"
wait_until 60 eval "is_mounted '$mnt' || ! kill -0 $daemon 2>/dev/null" || true
if ! is_mounted "$mnt"; then
	st=0
	kill -0 "$daemon" 2>/dev/null || wait "$daemon" || st=$?
	if grep -q "unknown option.*timeout=" "$daemon_log"; then
		fail "sffs does not know -o timeout=SECONDS (the per-read deadline this test needs; status $st): $(cat "$daemon_log")"
	fi
	fail "sffs did not mount (status $st): $(cat "$daemon_log")"
fi
grep -q "(published index)" "$daemon_log" || fail "published index unused: $(cat "$daemon_log")"
log "mounted $PROXY_URL/$name (+$DELAY_MS ms per request), -o timeout=$DEADLINE,cache_mem=16M"

step "read the file to cache"
t0=$EPOCHREALTIME
timeout 60 cmp "$mnt/$CACHED" "$ref/$CACHED" || fail "$CACHED differs (or timed out)"
log "time: $CACHED ($(stat -c %s "$ref/$CACHED") B) read in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }') s"

step "stall"
proxy_mode stall
t_stall=$EPOCHREALTIME

# reader I FILE: read FILE; write "STATUS SECONDS" to reader-I.status.
reader() {
	local i=$1 f=$2 t0 rc=0 p
	t0=$EPOCHREALTIME
	timeout -k 5 "$READER_BOUND" dd if="$mnt/$f" of=/dev/null bs=1M status=none \
		2>"$TEST_TMP/reader-$i.err" &
	p=$!
	echo "$p" >"$TEST_TMP/reader-$i.pid"
	wait "$p" || rc=$?
	echo "$rc $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')" \
		>"$TEST_TMP/reader-$i.status"
}
for ((i = 0; i < READERS; i++)); do
	reader "$i" "${FILES[i]}" &
	READER_PIDS+=("$!")
done
for ((i = 0; i < READERS; i++)); do
	wait_until 5 test -s "$TEST_TMP/reader-$i.pid" || fail "reader $i did not start"
	TIMEOUT_PIDS+=("$(cat "$TEST_TMP/reader-$i.pid")")
done
log "$READERS readers started: ${FILES[*]}"
# Let every reader reach the daemon and block on the stalled origin.
sleep 1
waiting=0
for ((i = 0; i < READERS; i++)); do
	[ -s "$TEST_TMP/reader-$i.status" ] || waiting=$((waiting + 1))
done
log "$waiting of $READERS readers waiting for the origin"

step "metadata while stalled"
t0=$EPOCHREALTIME
out=$(timeout -k 2 "$QUICK" ls -l "$mnt/view/bin") ||
	fail "ls -l view/bin did not answer within $QUICK s while $READERS reads wait for a stalled origin"
log "time: ls -l view/bin answered in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }') s"
grep -q " sinfo$" <<<"$out" || fail "ls -l view/bin does not list sinfo: $out"

step "cached data while stalled"
# Drop the kernel's pages of the file, so the read reaches the daemon.
t0=$EPOCHREALTIME
timeout -k 2 "$QUICK" python3 - "$mnt/$CACHED" "$ref/$CACHED" <<'PY' ||
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
data = b""
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    data += b
os.close(fd)
sys.exit(0 if data == open(sys.argv[2], "rb").read() else "wrong bytes")
PY
	fail "re-reading the cached $CACHED did not answer correctly within $QUICK s while the origin is stalled"
log "time: cached $CACHED re-read in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }') s"

step "blocked reads end with EIO"
bad=()
for ((i = 0; i < READERS; i++)); do
	wait "${READER_PIDS[i]}" 2>/dev/null || true
	read -r rc secs <"$TEST_TMP/reader-$i.status" || { rc=x secs=x; }
	err=$(cat "$TEST_TMP/reader-$i.err" 2>/dev/null || true)
	log "time: reader $i (${FILES[i]}): status $rc after $secs s${err:+: $err}"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		bad+=("${FILES[i]}: still blocked after $READER_BOUND s")
	elif [ "$rc" = 0 ]; then
		bad+=("${FILES[i]}: read without an error from a stalled origin")
	elif ! grep -q "Input/output error" <<<"$err"; then
		bad+=("${FILES[i]}: status $rc, not EIO: $err")
	fi
done
READER_PIDS=() TIMEOUT_PIDS=()
log "all readers ended $(awk -v a="$t_stall" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }') s after the stall began"
[ "${#bad[@]}" -eq 0 ] || fail "$(printf '%s; ' "${bad[@]}")"

step "origin back"
proxy_mode ok
# A failed block answers with its error for 1 s (so the kernel's at-once
# retry of a failed readahead does not wait a second deadline); after
# that every read tries the origin again.
sleep 1.2
for f in "$CACHED" "${FILES[@]}"; do
	t0=$EPOCHREALTIME
	timeout -k 2 60 cmp "$mnt/$f" "$ref/$f" || fail "$f differs (or timed out) after the origin came back"
	log "time: $f read correctly in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }') s"
done
log "daemon log: $(tail -n 20 "$daemon_log")"
