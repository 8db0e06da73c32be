#!/usr/bin/env bash
# sffs-index --repack of a zstd tarball that cannot seek (one frame, as
# `zstd` writes by default): the output is a multi-frame .tar.zst holding
# the same tar stream, every frame with its content size and a checksum;
# `tar --zstd -xf` extracts it unchanged; its index has seek points at
# frame starts only and spans of at most about REPACK_CHUNK; it mounts
# through nginx equal to GNU tar's extraction, and a cold small read
# fetches one span instead of the whole artifact. Also: the input's
# framing does not change the output, and --to converts between codecs.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

for t in zstd tar gzip nginx python3 cmp; do
	command -v "$t" >/dev/null || fail "$t is missing"
done
fx=$(fixture_dir)
ref=$fx/extract
tarf=$fx/$FIXTURE_NAME.tar
name=$FIXTURE_NAME.tar.zst
www=$TEST_TMP/www
check=$SFFS_SRC/tests/lib/check-repacked.py
# REPACK_CHUNK, plus a quarter of the default 1 MiB spacing (the indexer
# groups frames until a span holds that much), plus room for headers.
max_span=$((1048576 + 262144 + 8192))
mkdir -p "$www/single" "$www/repacked"

# npoints FILE.sfidx: the number of seek points (docs/index-format.md).
npoints() {
	python3 -c 'import struct, sys
print(struct.unpack_from("<Q", open(sys.argv[1], "rb").read(96), 88)[0])' "$1"
}

step "single-frame input"
zstd -q -3 -c "$tarf" >"$www/single/$name"
frames=$(zstd -lv "$www/single/$name" 2>/dev/null | awk '/^# Zstandard Frames:/ { print $4 }')
[ "$frames" = 1 ] || fail "zstd -3 wrote $frames frames, not one"
"$SFFS_INDEX" -q "$www/single/$name" -o "$www/single/$name.sfidx"
before=$(npoints "$www/single/$name.sfidx")
log "single frame: $(stat -c %s "$www/single/$name") bytes, $before seek point(s)"

step "repack"
out=$www/repacked/$name
t0=$(date +%s%N)
"$SFFS_INDEX" --repack "$www/single/$name" "$out" 2>"$TEST_TMP/repack.log" ||
	fail "repack failed: $(cat "$TEST_TMP/repack.log")"
t1=$(date +%s%N)
log "$(cat "$TEST_TMP/repack.log")"
log "repack took $(((t1 - t0) / 1000000)) ms"
grep -q "zstd frames" "$TEST_TMP/repack.log" || fail "the output is not zstd"

step "same tar stream"
zstd -q -t "$out" || fail "zstd -t rejects the repacked tarball"
zstd -dc "$out" | cmp - <(zstd -dc "$www/single/$name") ||
	fail "the repacked tarball holds another tar stream"
"$SFFS_INDEX" --repack "$www/single/$name" "$TEST_TMP/again.tar.zst" 2>/dev/null
cmp "$out" "$TEST_TMP/again.tar.zst" || fail "the repack is not deterministic"
# The fixture's own .tar.zst has other frames around the same tar stream.
"$SFFS_INDEX" --repack "$fx/$name" "$TEST_TMP/from-multi.tar.zst" 2>/dev/null
cmp "$out" "$TEST_TMP/from-multi.tar.zst" || fail "the input's framing changed the output"

step "tar --zstd -xf"
mkdir "$TEST_TMP/x"
tar --zstd -xf "$out" -C "$TEST_TMP/x" || fail "tar --zstd -xf failed"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$TEST_TMP/x" "$ref" ||
	fail "tar extracts the repacked tarball differently"
rm -rf "$TEST_TMP/x"

step "index: points at frame starts"
"$SFFS_INDEX" -q "$out" -o "$out.sfidx"
res=$(python3 "$check" "$out" "$out.sfidx" "$max_span") || fail "bad repacked index"
after=$(npoints "$out.sfidx")
log "repacked: $res; seek points $before -> $after"
[ "$after" -gt "$before" ] || fail "no more seek points after the repack"

step "--to gzip and --to zstd"
"$SFFS_INDEX" --repack --to gzip "$www/single/$name" "$TEST_TMP/conv.tar.gz" 2>/dev/null
gzip -dc "$TEST_TMP/conv.tar.gz" | cmp - "$tarf" || fail "--to gzip: another tar stream"
"$SFFS_INDEX" --repack "$fx/$FIXTURE_NAME.tar.gz" "$TEST_TMP/gz.tar.gz" 2>/dev/null
cmp "$TEST_TMP/conv.tar.gz" "$TEST_TMP/gz.tar.gz" || fail "--to gzip differs from a gzip repack"
"$SFFS_INDEX" -q "$TEST_TMP/conv.tar.gz" -o "$TEST_TMP/conv.sfidx"
python3 "$check" "$TEST_TMP/conv.tar.gz" "$TEST_TMP/conv.sfidx" "$max_span" >/dev/null ||
	fail "bad index of the --to gzip output"
"$SFFS_INDEX" --repack --to zstd "$TEST_TMP/conv.tar.gz" "$TEST_TMP/back.tar.zst" 2>/dev/null
cmp "$out" "$TEST_TMP/back.tar.zst" || fail "--to zstd differs from a zstd repack"
if "$SFFS_INDEX" --repack --level 23 "$out" "$TEST_TMP/bad.tar.zst" 2>"$TEST_TMP/bad.log"; then
	fail "zstd level 23 accepted"
fi
grep -q "level 23 is not in 1-" "$TEST_TMP/bad.log" || fail "no reason: $(cat "$TEST_TMP/bad.log")"
[ ! -e "$TEST_TMP/bad.tar.zst" ] || fail "a refused repack left its output"

nginx_start "$www"


# A small regular file late in the tar stream: a cold read of it needs
# its span only.
small=$(tar -tvf "$tarf" | awk '$1 ~ /^-/ && $3 > 1000 && $3 < 65536 { f = $6 } END { print f }')
[ -n "$small" ] || fail "no small file in the fixture"
small=${small#./}

step "mount the repacked tarball"
mount_fg "$NGINX_URL/repacked/$name" "$TEST_TMP/m" "$TEST_TMP/m.log" -o cache_dir=none
grep -q "(published index)" "$TEST_TMP/m.log" || fail "index unused: $(cat "$TEST_TMP/m.log")"
b0=$(nginx_bytes_sent "/repacked/$name")
cmp "$TEST_TMP/m/$small" "$ref/$small" || fail "$small differs"
cold=$(($(nginx_bytes_sent "/repacked/$name") - b0))
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$TEST_TMP/m" "$ref" || fail "repacked mount differs"
sffs_unmount "$TEST_TMP/m"

step "mount the single frame"
mount_fg "$NGINX_URL/single/$name" "$TEST_TMP/s" "$TEST_TMP/s.log" -o cache_dir=none
b0=$(nginx_bytes_sent "/single/$name")
cmp "$TEST_TMP/s/$small" "$ref/$small" || fail "$small differs (single frame)"
cold1=$(($(nginx_bytes_sent "/single/$name") - b0))
sffs_unmount "$TEST_TMP/s"
log "cold read of $small: $cold bytes repacked, $cold1 bytes single-frame"
[ "$cold" -lt "$max_span" ] || fail "a cold small read fetched $cold bytes"
[ "$cold" -lt "$cold1" ] || fail "the repack did not make a cold read cheaper"
