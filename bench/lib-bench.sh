# Helpers for bench/run.sh: sourced after tests/lib/common.sh, whose
# cleanup stack, wait_until, kill_pid, free_port and tmpdir they use.
# Results go back in globals (SINFO_OUT, FIND_SECS, FIND_ENTRIES).
# shellcheck disable=SC2034

# now: wall-clock seconds with microseconds.
now() {
	echo "$EPOCHREALTIME"
}

# elapsed T0 T1: T1 - T0 in seconds, 3 decimals.
elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'
}

# Drop the page, dentry and inode caches (root only) so the next step is
# cold for the server's files, the local disk and the FUSE kernel caches.
drop_caches() {
	sync
	if [ "$(id -u)" -eq 0 ]; then
		echo 3 >/proc/sys/vm/drop_caches
	fi
}

# log_mark: the number of requests logged so far (a mark for log_since).
log_mark() {
	if [ -f "$NGINX_LOG" ]; then
		wc -l <"$NGINX_LOG"
	else
		echo 0
	fi
}

# log_since MARK: "BYTES REQUESTS" answered since MARK.
log_since() {
	tail -n "+$(($1 + 1))" "$NGINX_LOG" |
		awk '{ b += $2; n++ } END { printf "%d %d\n", b, n }'
}

# log_settle: wait until nginx has logged every finished request (a
# request is logged when it ends; a client that hangs up mid-body is
# noticed a moment later).
log_settle() {
	local a b i
	for ((i = 0; i < 20; i++)); do
		a=$(log_mark)
		sleep 0.1
		b=$(log_mark)
		[ "$a" != "$b" ] || return 0
	done
}

# mount_pids EXE MNT: pids of processes named EXE with MNT on their
# command line (FUSE daemons that put themselves in the background).
mount_pids() {
	local exe=$1 mnt=$2 p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = "$exe" ] || continue
		if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF "$mnt"; then
			echo "${p#/proc/}"
		fi
	done
}

# fuse_unmount EXE MNT: unmount a FUSE mount (lazily if busy) and make
# sure its daemon (named EXE) exits.
fuse_unmount() {
	local exe=$1 mnt=$2 pid pids
	pids=$(mount_pids "$exe" "$mnt")
	if is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" ||
			umount -l "$mnt" || log "could not unmount $mnt"
	fi
	for pid in $pids; do
		if ! wait_until 5 eval "! kill -0 $pid 2>/dev/null"; then
			log "$exe pid $pid still running after unmount; killing it"
			kill_pid "$pid"
		fi
	done
}

# rss_kib PID: VmRSS of PID in KiB.
rss_kib() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"
}

# write_slurm_conf FILE VIEW: the client config Slurm 22.05 reads even for
# --version (its compiled-in PluginDir is Debian's).
write_slurm_conf() {
	printf 'ClusterName=bench\nSlurmctldHost=localhost\nPluginDir=%s\n' \
		"$2/lib/slurm" >"$1"
}

# run_sinfo VIEW CONF: sinfo --version from VIEW with an empty environment;
# fails unless it printed a Slurm version.
run_sinfo() {
	local out
	out=$(timeout 60 env -i SLURM_CONF="$2" "$1/bin/sinfo" --version 2>&1) ||
		fail "sinfo --version from $1 failed: $out"
	[[ $out =~ ^slurm(-wlm)?\ [0-9] ]] || fail "sinfo --version printed '$out'"
	SINFO_OUT=$out
}

# time_find DIR: `find DIR` with its output counted, not kept; sets
# FIND_SECS and FIND_ENTRIES (the number of entries it listed).
time_find() {
	local t0 t1
	t0=$(now)
	FIND_ENTRIES=$(timeout 600 find "$1" | wc -l) || fail "find $1 failed"
	t1=$(now)
	FIND_SECS=$(elapsed "$t0" "$t1")
}

# mb BYTES: megabytes (10^6), 2 decimals.
mb() {
	awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e6 }'
}

# rate BYTES SECONDS: MB/s.
rate() {
	awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1e6 / s; else print "-" }'
}

# slowlink_start TARGET_URL DELAY_MS [RATE]: tests/lib/slowlink.py (a
# threaded blocking proxy, the second kind beside delayproxy.py) in front
# of TARGET_URL's host and port, DELAY_MS added to every request, each
# connection's answers paced to RATE bytes/s (default 0: unlimited; 16M =
# 16 MiB/s). Sets the same PROXY_URL and PROXY_PID as proxy_start (no
# control file: it has no stall or reset mode); stopped on exit.
slowlink_start() {
	local url=$1 delay=$2 rate=${3:-0} rest hostport port dir
	case $url in
	http://*) ;;
	*) fail "slowlink_start: not an http URL: $url" ;;
	esac
	rest=${url#http://}
	hostport=${rest%%/*}
	dir=$(mktemp -d "$TEST_TMP/slowlink.XXXXXX")
	PROXY_LOG=$dir/proxy.log
	python3 "$SFFS_SRC/tests/lib/slowlink.py" --target "$hostport" \
		--delay-ms "$delay" --rate "$rate" \
		--max-seconds "${PROXY_MAX_SECONDS:-3600}" >"$dir/port" 2>"$PROXY_LOG" &
	PROXY_PID=$!
	cleanup_push "kill_pid $PROXY_PID"
	if ! wait_until 10 test -s "$dir/port"; then
		cat "$PROXY_LOG" >&2 || true
		fail "slowlink did not start"
	fi
	port=$(head -n 1 "$dir/port")
	PROXY_URL=http://127.0.0.1:$port${rest:${#hostport}}
	log "slowlink: $PROXY_URL -> $hostport, +${delay} ms per request, answers at ${rate} B/s per connection (0: unlimited)"
}
