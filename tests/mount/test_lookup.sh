#!/usr/bin/env bash
# Catalog mode: no FUSE request is held by an attach or pins an artifact.
#  - getxattr takes no lasting reference: `getfattr -d -m user.sffs` and
#    `getfattr -n user.sffs.url` on 40 files of an attached artifact, then
#    idle, and the artifact is released
#    (the catalog's counters on the mount root);
#  - while one artifact attaches slowly (no published index, its bytes
#    throttled by nginx so that the attach takes about 40 s), with
#    -o timeout=4: a lookup sent SIGINT ends at once (FUSE interrupt), one
#    whose process catches the signal it gets goes on waiting, 12
#    parallel lookups inside it each end with ETIMEDOUT within about the
#    deadline, `ls -l` and reads of another attached artifact keep
#    answering, and once the attach is done a lookup succeeds and the
#    artifact equals GNU tar's extraction.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

require_tool getfattr
TIMEOUT_S=4
SLOW_RATE=${SFFS_TEST_SLOW_RATE:-250k}

stats() {
	getfattr --absolute-names --only-values -n user.sffs.stats "$mnt"
}

stat_of() { # NAME: a counter from the mount root's user.sffs.stats
	stats | tr ' ' '\n' | sed -n "s/^$1=//p"
}

now_ms() {
	date +%s%3N
}

step catalog
cat=$SFFS_BUILD/catalog
"$SFFS_SRC/scripts/make-catalog.sh" "$(fixture_dir)" "$cat" "$SFFS_INDEX" >/dev/null
root=$TEST_TMP/www
mkdir -p "$root"
cp -a "$cat/seed/." "$root/"
# 24.11/jammy has no published index: its attach streams the whole
# tarball (10 MB), here at SLOW_RATE a connection: about 40 s as one
# stream, still 10 s over 4 connections, longer than the steps below
# need (the first lookup waits 1.5 s, then 12 wait about 4 s). The link
# is slow while the file slow-link exists: the tree is compared after the
# attach at full speed, since reads keep -o timeout=4 too.
touch "$root/slow-link"
NGINX_SERVER_EXTRA="location /24.11/jammy/ { if (-f \$document_root/slow-link) { set \$limit_rate $SLOW_RATE; } }" \
	nginx_start "$root"

step mount
mnt=$TEST_TMP/sf
mkdir -p "$mnt"
mount_fg "$NGINX_URL/" "$mnt" "$TEST_TMP/sffs.log" \
	-o versions=24.11:25.11,toolchains=noble:jammy \
	-o release_after=2,timeout=$TIMEOUT_S,cache_dir="$TEST_TMP/cache"
log "mounted: $(stats)"
[ "$(stat_of parallel_lookups)" = 1 ] ||
	fail "the kernel was not granted parallel lookups: $(stats)"

step xattr-release
a=25.11/noble
ref=$cat/extract/seed-${a/\//-}
cmp "$mnt/$a/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "$a: sinfo differs"
[ "$(stat_of attached)" = 1 ] || fail "attached after one read: $(stats)"
files=$(cd "$mnt/$a" && find . -type f | sort | sed -n '1,40p')
[ "$(wc -l <<<"$files")" = 40 ] || fail "fewer than 40 files in $a"
n=0
while read -r f; do
	# -d lists first (nothing for a file); -n asks for a name directly,
	# as cp -a and rsync -X do for names they know
	getfattr -d -m user.sffs "$mnt/$a/$f" >/dev/null 2>&1 || true
	getfattr -n user.sffs.url "$mnt/$a/$f" >/dev/null 2>&1 &&
		fail "$a/$f has a user.sffs.url"
	n=$((n + 1))
done <<<"$files"
# the artifact's root answers, the files have none
getfattr -d -m user.sffs "$mnt/$a" 2>/dev/null | grep -q '^user.sffs.url=' ||
	fail "the artifact root has no user.sffs.url"
log "getfattr on $n files and the root of $a"
rel=$(stat_of releases)
wait_until 20 eval '[ "$(stat_of attached)" = 0 ]' ||
	fail "getfattr pinned $a: still attached 20 s after: $(stats)"
[ "$(stat_of releases)" -gt "$rel" ] || fail "no release counted: $(stats)"
log "released after getfattr: $(stats)"

step other-attached
other=25.11/jammy
oref=$cat/extract/seed-${other/\//-}
cmp "$mnt/$other/view/bin/sinfo" "$oref/view/bin/sinfo" ||
	fail "$other: sinfo differs"
# keep it in use (release_after=2) while the slow attach goes on
(
	cd "$mnt/$other/view" || exit 1
	end=$((SECONDS + 120))
	while [ $SECONDS -lt $end ]; do
		cat share/sffs-fixture/ARTIFACT >/dev/null 2>&1
		sleep 0.5
	done
) &
keeper=$!
cleanup_push "kill_pid $keeper"

step interrupt
slow=24.11/jammy
sref=$cat/extract/seed-${slow/\//-}
[ -d "$sref/view" ] || fail "no extraction of $slow"
t0=$(now_ms)
# interrupt_lookup NAME WAIT WHAT: looks NAME up in $slow, sends the
# lookup SIGINT after WAIT seconds, and fails unless it ended within 2 s
# of the signal. A background job of a script ignores SIGINT: the lookup
# gets its default back.
interrupt_lookup() {
	local intr sig ms
	env --default-signal=INT stat "$mnt/$slow/$1" >/dev/null 2>&1 &
	intr=$!
	sleep "$2"
	kill -0 "$intr" 2>/dev/null || fail "$3 into $slow did not wait"
	sig=$(now_ms)
	kill -INT "$intr"
	wait_until 10 eval "! kill -0 $intr 2>/dev/null" || true
	ms=$(($(now_ms) - sig))
	kill -0 "$intr" 2>/dev/null && kill -KILL "$intr"
	log "SIGINT to $3: it ended $ms ms after the signal"
	[ "$ms" -le 2000 ] || fail "$3 ended $ms ms after SIGINT"
}
# the first lookup starts the attach
interrupt_lookup view 1.5 "the first lookup"
grep -q "lookup was interrupted" "$TEST_TMP/sffs.log" ||
	fail "no log line for the interrupted lookup"

step slow-lookups
# 12 different names (lookups of one name would wait on each other in the
# kernel's dcache). sffs grants the kernel parallel directory operations
# (fs/session.c; libfuse 3.14 alone does not), so all 12 reach the daemon
# at once and each waits at most the deadline.
names="view modules data missing1 missing2 missing3 missing4 missing5 missing6 missing7 missing8 missing9"
pids=()
i=0
for nm in $names; do
	(
		s=$(now_ms)
		if out=$(stat "$mnt/$slow/$nm" 2>&1); then
			echo "ok $(($(now_ms) - s))" >"$TEST_TMP/lookup.$i"
		else
			echo "err $(($(now_ms) - s)) $out" >"$TEST_TMP/lookup.$i"
		fi
	) &
	pids+=($!)
	i=$((i + 1))
done
sleep 0.5
# a 13th lookup, started behind the 12, still ends at once on SIGINT:
# without parallel lookups it would wait in the kernel for those ahead
interrupt_lookup missing13 0.5 "a 13th lookup behind 12"
# A signal the process catches (a shell's SIGCHLD, here USR1 trapped by
# bash) is not a reason to fail its lookup with EINTR: the kernel sends
# an interrupt for it too, and the lookup must go on waiting (to its
# deadline here, the attach being slower, or until the 12 give up, which
# cuts the later waits short). Made while the 12 wait, so that its own
# wait changes nothing for them. EINTR would end it at 0.5 s.
before=$(grep -c "lookup was interrupted" "$TEST_TMP/sffs.log")
bash -c 'trap ": caught" USR1; s=$(date +%s%3N); [ -e "$1" ]; echo $(($(date +%s%3N) - s)) >"$2"' \
	_ "$mnt/$slow/modules" "$TEST_TMP/caught.ms" &
cpid=$!
sleep 0.5
kill -USR1 "$cpid"
wait "$cpid" || true
ms=$(cat "$TEST_TMP/caught.ms")
log "a lookup whose process caught USR1 after 0.5 s ended after $ms ms"
[ "$ms" -ge 1500 ] || fail "the caught signal ended the lookup after $ms ms"
[ "$(grep -c "lookup was interrupted" "$TEST_TMP/sffs.log")" = "$before" ] ||
	fail "a caught signal was taken for an interrupt"

step other-answers
# the other artifact answers while the lookups wait
for k in 1 2 3; do
	s=$(now_ms)
	ls -l "$mnt/$other/view/bin" >/dev/null || fail "ls -l $other failed during the attach"
	cmp "$mnt/$other/view/share/sffs-fixture/ARTIFACT" \
		"$oref/view/share/sffs-fixture/ARTIFACT" ||
		fail "$other's marker differs during the attach"
	cmp "$mnt/$other/view/bin/scontrol" "$oref/view/bin/scontrol" ||
		fail "$other's scontrol differs during the attach"
	e=$(($(now_ms) - s))
	log "ls -l and reads of $other: $e ms"
	[ "$e" -le 2000 ] || fail "$other took $e ms to answer during the attach"
	sleep 1
done

step lookups-end
for p in "${pids[@]}"; do
	wait "$p" || true
done
i=0
worst=0
for nm in $names; do
	r=$(cat "$TEST_TMP/lookup.$i")
	ms=$(awk '{ print $2 }' <<<"$r")
	log "lookup of $slow/$nm: $r"
	[ "$ms" -gt "$worst" ] && worst=$ms
	[ "${r%% *}" = err ] || fail "lookup of $nm did not time out ($r): the attach held it"
	grep -q "timed out" <<<"$r" || fail "lookup of $nm: not ETIMEDOUT: $r"
	i=$((i + 1))
done
[ "$worst" -le $(((TIMEOUT_S + 3) * 1000)) ] ||
	fail "a lookup took $worst ms with -o timeout=$TIMEOUT_S"
log "12 lookups ended, the slowest after $worst ms"

step attach-goes-on
wait_until 120 stat "$mnt/$slow/view" >/dev/null 2>&1 ||
	fail "$slow never attached: $(stats)"
log "$slow attached $((($(now_ms) - t0) / 1000)) s after the first lookup: $(stats)"
rm -f "$root/slow-link"
# one engine for the process: as many fetcher threads with two artifacts
# attached as max_fetches (4), none of an artifact's own
nfetch=$(grep -cx sffs-fetch /proc/"$MOUNT_FG_PID"/task/*/comm | awk -F: '{ n += $2 } END { print n }')
log "threads: $(cat /proc/"$MOUNT_FG_PID"/task/*/comm | sort | uniq -c | tr -s ' \n' ' ')"
[ "$nfetch" = 4 ] || fail "$nfetch fetcher threads with two artifacts attached (max_fetches 4)"
"$SFFS_SRC/tests/lib/compare-tree.sh" "$sref" "$mnt/$slow" ||
	fail "$slow differs from GNU tar's extraction"
grep -q "gave up" "$TEST_TMP/sffs.log" || fail "no log line for the lookups that gave up"
