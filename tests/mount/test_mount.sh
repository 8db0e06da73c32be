#!/usr/bin/env bash
# The mount serves exactly what GNU tar extracts, for gzip, multi-frame zstd
# and uncompressed tarballs over HTTP: every path, type, mode, size, link
# count, symlink target, mtime and SHA-256; 16 concurrent readers of random
# ranges get the right bytes; writes are refused; a cold small read fetches
# little; the root's xattrs describe the artifact.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

step fixture
fx=$(fixture_dir)
nginx_start "$fx"
ref=$fx/extract

check_variant() { # suffix
	local name=$FIXTURE_NAME.$1 mnt=$TEST_TMP/mnt-$1 before after small sz
	step "mount $1"
	sffs_mount "$NGINX_URL/$name" "$mnt" -o cache_mem=64M

	step "cold small read $1"
	# The smallest regular file over 1 KiB: one span plus the file at most.
	# (awk reads all its input: no SIGPIPE under pipefail, unlike head)
	small=$(cd "$ref" && find . -type f -size +1k -printf '%s %P\n' |
		sort -n | awk 'NR == 1 { sub(/^[0-9]+ /, ""); print }')
	sz=$(stat -c %s "$ref/$small")
	before=$(nginx_bytes_sent "$name")
	cmp "$mnt/$small" "$ref/$small" || fail "$small differs ($1)"
	after=$(nginx_bytes_sent "$name")
	log "$1: cold read of $small ($sz bytes) fetched $((after - before)) bytes"
	[ $((after - before)) -le $((2 * 1024 * 1024 + sz)) ] ||
		fail "cold read of a $sz-byte file fetched $((after - before)) bytes"

	step "compare $1"
	bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" ||
		fail "$name: mount differs from GNU tar's extraction"

	step "concurrent $1"
	# A fresh mount with a small chunk cache: the readers drop the page
	# cache before each read, and the daemon's counters prove they
	# reached it and made it decode.
	sffs_unmount "$mnt"
	sffs_mount "$NGINX_URL/$name" "$mnt" -o cache_mem=2M
	local s0 s1
	s0=$(getfattr -n user.sffs.stats --only-values "$mnt")
	"$SFFS_RANDREAD" "$mnt" "$ref" 16 200 "$RANDOM" ||
		fail "$name: concurrent random reads returned wrong bytes"
	s1=$(getfattr -n user.sffs.stats --only-values "$mnt")
	python3 - "$s0" "$s1" <<'PY' || fail "$name: the concurrent reads did not reach the daemon"
import sys
a, b = (dict(kv.split("=") for kv in s.split()) for s in sys.argv[1:3])
d = {k: int(b[k]) - int(a[k]) for k in b if k in a}
reads = d["reads_cached"] + d["reads_queued"] + d["reads_sync"]
print("daemon saw %d reads (%d queued), decoded %d spans, fetched %d blocks"
      % (reads, d["reads_queued"], d["spans_loaded"], d["blocks_fetched"]),
      file=sys.stderr)
sys.exit(0 if reads >= 16 * 200 // 2 and d["spans_loaded"] >= 50 else 1)
PY

	step "read-only $1"
	if touch "$mnt/view/newfile" 2>/dev/null || mkdir "$mnt/x" 2>/dev/null ||
		rm -f "$mnt/view/bin/sinfo" 2>/dev/null ||
		{ : >>"$mnt/view/bin/sinfo"; } 2>/dev/null; then
		fail "a write to the mount succeeded"
	fi
	grep -F " $mnt " /proc/self/mounts | grep -q 'ro,nosuid,nodev' ||
		fail "mount options lack ro,nosuid,nodev: $(grep -F " $mnt " /proc/self/mounts)"
	python3 - "$mnt" "$NGINX_URL/$name" <<'PY' || fail "xattrs on the mount root are wrong"
import os, sys
mnt, url = sys.argv[1], sys.argv[2]
names = os.listxattr(mnt)
assert "user.sffs.url" in names, names
assert os.getxattr(mnt, "user.sffs.url").decode() == url
stats = os.getxattr(mnt, "user.sffs.stats").decode()
assert "requests=" in stats and "spans_loaded=" in stats, stats
print("xattr stats:", stats.strip(), file=sys.stderr)
PY
	sffs_unmount "$mnt"
}

# SFFS_MOUNT_VARIANTS narrows the codecs (the TSan stage runs gzip only:
# under TSan each variant takes a minute and a half).
for v in ${SFFS_MOUNT_VARIANTS:-tar.gz tar.zst tar}; do
	check_variant "$v"
done
