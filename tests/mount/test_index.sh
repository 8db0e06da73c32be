#!/usr/bin/env bash
# Published index (.sfidx): sffs-index and the daemon write byte-identical
# indexes; a mount with a published index reads only the index's eager part
# and then a small part of the tarball to run sinfo; a remount from the
# local cache reads no tarball bytes; a tampered or truncated index is
# refused (and the daemon indexes the tarball itself); one flipped byte in
# the served tarball gives EIO for the files of that span only; a new
# ETag of the same bytes is adopted; an artifact replaced on the server
# is detected (its blocks fail their digests); a --repack'ed tarball is
# the same tar stream, extracts with tar -xzf, and indexes without windows.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

fx=$(fixture_dir)
ref=$fx/extract
name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
mkdir -p "$www/pub" "$www/plain" "$www/flip" "$www/bad" "$www/trunc" "$www/repacked" "$www/stale"
for d in pub plain flip bad trunc; do cp "$fx/$name" "$www/$d/"; done

step "sffs-index"
# --published 0: what the daemon records for an unverified artifact
"$SFFS_INDEX" -q "$fx/$name" -o "$www/pub/$name.sfidx" --published 0
SOURCE_DATE_EPOCH=0 "$SFFS_INDEX" -q "$fx/$name" -o "$TEST_TMP/again.sfidx"
cmp "$www/pub/$name.sfidx" "$TEST_TMP/again.sfidx" || fail "sffs-index is not deterministic"
isize=$(stat -c %s "$www/pub/$name.sfidx")
log "index: $isize bytes for a $(stat -c %s "$fx/$name")-byte tarball"
# A tampered copy (one byte flipped in the member table) and a truncated one.
cp "$www/pub/$name.sfidx" "$www/bad/$name.sfidx"
flip_byte "$www/bad/$name.sfidx" 600
head -c $((isize - 100)) "$www/pub/$name.sfidx" >"$www/trunc/$name.sfidx"
# The flipped tarball keeps the good index.
cp "$www/pub/$name.sfidx" "$www/flip/$name.sfidx"
tsize=$(stat -c %s "$fx/$name")
flip_byte "$www/flip/$name" $((tsize / 2))
step "repack"
"$SFFS_INDEX" --repack "$fx/$name" "$www/repacked/$name" 2>"$TEST_TMP/repack.log" ||
	fail "repack failed: $(cat "$TEST_TMP/repack.log")"
log "$(cat "$TEST_TMP/repack.log")"
gzip -dc "$www/repacked/$name" | cmp - "$fx/$FIXTURE_NAME.tar" ||
	fail "the repacked tarball holds another tar stream"
[ "$(gzip -dc "$www/repacked/$name" | tar -t | wc -l)" -eq "$(tar -tf "$fx/$FIXTURE_NAME.tar" | wc -l)" ] ||
	fail "tar lists the repacked tarball differently"
"$SFFS_INDEX" -q "$www/repacked/$name" -o "$www/repacked/$name.sfidx"
python3 - "$www/repacked/$name.sfidx" <<'PY' || fail "the repacked tarball's index has windows"
import struct, sys
h = open(sys.argv[1], "rb").read(4096)
off, ln = struct.unpack_from("<QQ", h, 168 + 3 * 56)  # WINDOWS section
sys.exit(0 if ln == 0 else 1)
PY
nginx_start "$www"


step "daemon writes the same index"
cache=$TEST_TMP/cache
sffs_mount "$NGINX_URL/plain/$name" "$TEST_TMP/m1" -o cache_dir="$cache"
sffs_unmount "$TEST_TMP/m1"
cached=$(ls "$cache"/*.sfidx)
cmp "$cached" "$www/pub/$name.sfidx" || fail "daemon's index differs from sffs-index's"

step "remount from the cache"
before=$(nginx_bytes_sent "/plain/$name")
mount_fg "$NGINX_URL/plain/$name" "$TEST_TMP/m2" "$TEST_TMP/m2.log" -o cache_dir="$cache"
grep -q "(cache)" "$TEST_TMP/m2.log" || fail "remount did not use the cache: $(cat "$TEST_TMP/m2.log")"
# The identity check reads the first and last 4 KiB, nothing else.
edge=$((2 * 4096 + 1))
[ $(($(nginx_bytes_sent "/plain/$name") - before)) -le $edge ] ||
	fail "remount from the cache read more of the tarball than its edges"
cmp "$TEST_TMP/m2/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs (cache mount)"
sffs_unmount "$TEST_TMP/m2"

step "published index"
mnt=$TEST_TMP/m3
mount_fg "$NGINX_URL/pub/$name" "$mnt" "$TEST_TMP/m3.log" -o cache_dir=none
grep -q "(published index)" "$TEST_TMP/m3.log" || fail "published index unused: $(cat "$TEST_TMP/m3.log")"
[ "$(nginx_requests "/pub/$name.sfidx")" -ge 2 ] || fail "the index was not fetched"
at_mount=$(($(nginx_bytes_sent "/pub/$name") - $(nginx_bytes_sent "/pub/$name.sfidx")))
[ "$at_mount" -le "$edge" ] ||
	fail "mounting with a published index read $at_mount tarball bytes"
log "mount with a published index: $at_mount tarball bytes (probe and edges)"
conf=$TEST_TMP/slurm.conf
printf 'ClusterName=t\nSlurmctldHost=localhost\nPluginDir=%s\n' "$mnt/view/lib/slurm" >"$conf"
out=$(env -i SLURM_CONF="$conf" timeout 30 "$mnt/view/bin/sinfo" --version) ||
	fail "sinfo --version failed"
tar_bytes=$(($(nginx_bytes_sent "/pub/$name") - $(nginx_bytes_sent "/pub/$name.sfidx")))
log "sinfo --version ($out) with a published index: $tar_bytes tarball bytes, $(nginx_requests "/pub/") requests in all"
[ "$tar_bytes" -lt $((tsize / 2)) ] || fail "sinfo read $tar_bytes of $tsize tarball bytes"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" || fail "published-index mount differs"
sffs_unmount "$mnt"

step "published index beside a presigned URL"
# .sfidx goes on the path, the query string stays (nginx ignores it)
q="X-Amz-Signature=ab%2Fcd&X-Amz-Expires=60"
mount_fg "$NGINX_URL/pub/$name?$q" "$TEST_TMP/m-q" "$TEST_TMP/mq.log" -o cache_dir=none
grep -q "(published index)" "$TEST_TMP/mq.log" || fail "published index unused: $(cat "$TEST_TMP/mq.log")"
[ "$(nginx_requests "/pub/$name.sfidx?$q")" -ge 2 ] || fail "the index was not fetched as $name.sfidx?$q"
cmp "$TEST_TMP/m-q/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs (presigned URL)"
sffs_unmount "$TEST_TMP/m-q"

for bad in bad trunc; do
	step "refuse $bad index"
	mount_fg "$NGINX_URL/$bad/$name" "$TEST_TMP/m-$bad" "$TEST_TMP/$bad.log" -o cache_dir=none
	grep -q "refused" "$TEST_TMP/$bad.log" || fail "$bad index not refused: $(cat "$TEST_TMP/$bad.log")"
	grep -q "(indexed)" "$TEST_TMP/$bad.log" || fail "no fallback after a $bad index"
	log "$bad: $(grep refused "$TEST_TMP/$bad.log")"
	cmp "$TEST_TMP/m-$bad/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs after fallback"
	sffs_unmount "$TEST_TMP/m-$bad"
done

step "repacked tarball with its index"
mount_fg "$NGINX_URL/repacked/$name" "$TEST_TMP/m7" "$TEST_TMP/m7.log" -o cache_dir=none
grep -q "(published index)" "$TEST_TMP/m7.log" || fail "repacked index unused: $(cat "$TEST_TMP/m7.log")"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$TEST_TMP/m7" "$ref" || fail "repacked mount differs"
sffs_unmount "$TEST_TMP/m7"

step "one flipped byte"
mnt=$TEST_TMP/m4
mount_fg "$NGINX_URL/flip/$name" "$mnt" "$TEST_TMP/m4.log" -o cache_dir=none
eio=0 good=0
while IFS= read -r -d '' f; do
	if cat "$mnt/$f" >"$TEST_TMP/out" 2>"$TEST_TMP/err"; then
		cmp -s "$TEST_TMP/out" "$ref/$f" || fail "$f: wrong bytes served from a corrupt tarball"
		good=$((good + 1))
	else
		grep -q "Input/output error" "$TEST_TMP/err" || fail "$f: $(cat "$TEST_TMP/err")"
		eio=$((eio + 1))
	fi
done < <(cd "$ref" && find . -type f -print0)
log "flipped byte: $eio files gave EIO, $good files correct"
[ "$eio" -ge 1 ] || fail "no file gave EIO"
[ "$good" -ge 1 ] || fail "no file was served"
grep -q "failed its SHA-256 check again" "$TEST_TMP/m4.log" || fail "no verification message"
grep -q "read of .* failed" "$TEST_TMP/m4.log" || fail "the log does not name the file"
log "log: $(grep -m1 'SHA-256 check again' "$TEST_TMP/m4.log")"
sffs_unmount "$mnt"

step "same-size index of another build"
# Two builds of one tarball that differ in one byte of one file, the same
# size: the index of the first must not serve the second (the gzip
# trailer's CRC puts the difference in the last 4 KiB).
python3 - "$ref" "$www/stale" <<'PY' || fail "could not make two same-size builds"
import io, os, random, sys, tarfile, zlib
ref, out = sys.argv[1], sys.argv[2]
# A small tarball (quick to compress many times) of several blocks: the
# fixture's modules and etc, and 700 KB of seeded words.
rnd = random.Random(7)
words = open(os.path.join(ref, "view/bin/sinfo"), "rb").read()[:4096].split()
text = b" ".join(rnd.choice(words) for _ in range(120000))[:700000]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    for d in ("modules", "view/etc"):
        t.add(os.path.join(ref, d), arcname=d)
    ti = tarfile.TarInfo("view/share/words.txt")
    ti.size, ti.mtime, ti.mode = len(text), 1700000000, 0o644
    t.addfile(ti, io.BytesIO(text))
data = buf.getvalue()
pos0 = data.index(text[:64]) + 300000
# Stored deflate blocks: the size does not depend on the content.
def gz(b):
    c = zlib.compressobj(0, zlib.DEFLATED, 31)
    return c.compress(bytes(b)) + c.flush()
a = gz(data)
b = bytearray(data)
b[pos0] ^= 0x20
bz = gz(b)
assert len(bz) == len(a) and bz != a
open(out + "/a.tar.gz", "wb").write(a)
open(out + "/b.tar", "wb").write(b)
open(out + "/b.tar.gz", "wb").write(bz)
PY
"$SFFS_INDEX" -q "$www/stale/a.tar.gz" -o "$www/stale/b.tar.gz.sfidx"
mkdir "$TEST_TMP/ref-b"
tar -xf "$www/stale/b.tar" -C "$TEST_TMP/ref-b"
mount_fg "$NGINX_URL/stale/b.tar.gz" "$TEST_TMP/m8" "$TEST_TMP/m8.log" -o cache_dir=none
grep -q "another artifact of the same size" "$TEST_TMP/m8.log" ||
	fail "a same-size index of another build was not refused: $(cat "$TEST_TMP/m8.log")"
grep -q "(indexed)" "$TEST_TMP/m8.log" || fail "no fallback after a stale index"
log "stale: $(grep -m1 'another artifact' "$TEST_TMP/m8.log")"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$TEST_TMP/m8" "$TEST_TMP/ref-b" ||
	fail "the mount does not equal the served build"
sffs_unmount "$TEST_TMP/m8"

step "same bytes, new ETag"
# A CDN re-upload or a mirror's own validator: the block digests prove
# every byte, so the new ETag is logged once and adopted, and reads go on.
mnt=$TEST_TMP/m9
mount_fg "$NGINX_URL/pub/$name" "$mnt" "$TEST_TMP/m9.log" -o cache_dir=none
cmp "$mnt/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs before the new ETag"
touch -d '@1750000000' "$www/pub/$name"
cmp "$mnt/view/sbin/slurmctld" "$ref/view/sbin/slurmctld" ||
	fail "a new ETag of the same bytes failed a read: $(cat "$TEST_TMP/m9.log")"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" || fail "the mount differs after a new ETag"
[ "$(grep -c "blocks are verified by digest, adopted" "$TEST_TMP/m9.log")" -eq 1 ] ||
	fail "the new ETag was not logged once as adopted: $(cat "$TEST_TMP/m9.log")"
log "new ETag: $(grep -m1 'adopted' "$TEST_TMP/m9.log")"
sffs_unmount "$mnt"

step "block pages and a 2.1 index"
# The header's page digests cover BLOCKS page by page and the binding
# names the file (checked here apart from the C code); the same index rewritten as format 2.1 wrote it
# (MEMBERS with absolute offsets and whole paths, no pages, sections moved
# up, digests redone) still mounts and reads the same tree.
mkdir -p "$www/old"
cp "$fx/$name" "$www/old/"
python3 - "$www/pub/$name.sfidx" "$www/old/$name.sfidx" <<'PY' || fail "block pages wrong or 2.1 rewrite failed"
import hashlib, struct, subprocess, sys
b = open(sys.argv[1], "rb").read()
major, minor, hlen = struct.unpack_from("<HHI", b, 8)
nmem, npts, nblocks = struct.unpack_from("<QQQ", b, 80)
sec = [list(struct.unpack_from("<QQQ", b, 168 + 56 * k)) for k in range(4)]
boff, blen = sec[2][0], sec[2][1]
idl = struct.unpack_from("<H", b, 392)[0]
at = 394 + idl
at += 2 + struct.unpack_from("<H", b, at)[0]
bpage = struct.unpack_from("<I", b, at)[0]
np = -(-nblocks // bpage)
assert (major, minor) == (3, 1) and blen == 32 * nblocks and np <= 64, (major, minor, np)
assert bpage >= 128 and bpage & (bpage - 1) == 0
for i in range(np):
    page = b[boff + 32 * bpage * i:boff + min(32 * bpage * (i + 1), blen)]
    assert hashlib.sha256(page).digest() == b[at + 4 + 32 * i:at + 36 + 32 * i], i
# 3.1's binding after the pages: name, version, toolchain, time
bat = at + 4 + 32 * np
bind = []
for _ in range(3):
    n = struct.unpack_from("<H", b, bat)[0]
    bind.append(b[bat + 2:bat + 2 + n]); bat += 2 + n
assert bind == [sys.argv[1].rsplit("/", 1)[1][:-len(".sfidx")].encode(), b"", b""], bind
assert struct.unpack_from("<Q", b, bat)[0] == 0  # --published 0
assert hlen == bat + 8 + 32
zd = lambda x: subprocess.run(["zstd", "-qdc"], input=x, capture_output=True, check=True).stdout
zc = lambda x: subprocess.run(["zstd", "-q19c"], input=x, capture_output=True, check=True).stdout
raw = zd(b[sec[0][0]:sec[0][0] + sec[0][1]])
assert len(raw) == sec[0][2]
pos = 0
def rv():
    global pos
    v = s = 0
    while True:
        c = raw[pos]; pos += 1; v |= (c & 0x7f) << s; s += 7
        if c < 0x80: return v
def wv(v):
    o = bytearray()
    while True:
        o.append((v & 0x7f) | (0x80 if v > 0x7f else 0)); v >>= 7
        if not v: return bytes(o)
unzz = lambda v: (v >> 1) ^ -(v & 1)
out, path, hoff = bytearray(), b"", 0
for _ in range(nmem):
    t = raw[pos]; pos += 1
    mode, mt, size = rv(), rv(), rv()
    hoff += unzz(rv()); doff = hoff + unzz(rv()); dlen = rv()
    k, n = rv(), rv()
    path = path[:k] + raw[pos:pos + n]; pos += n
    ll = rv(); link = raw[pos:pos + max(ll - 1, 0)]; pos += max(ll - 1, 0)
    ns = rv(); sp = [rv() for _ in range(2 * ns)]
    out += bytes([t]) + b"".join(wv(v) for v in (mode, mt, size, doff, dlen, hoff, len(path)))
    out += path + wv(ll) + link + wv(ns) + b"".join(wv(v) for v in sp)
assert pos == len(raw)
mz = zc(bytes(out))
nlen = 394 + idl + 32
rest = [b[s0:s0 + s1] for s0, s1, _ in sec[1:]]
h = bytearray(b[:394 + idl])
struct.pack_into("<HHI", h, 8, 2, 1, nlen)
sec[0][1:3] = [len(mz), len(out)]
off = nlen
for k, body in enumerate([mz] + rest):
    sec[k][0] = off
    struct.pack_into("<QQQ", h, 168 + 56 * k, *sec[k])
    h[168 + 56 * k + 24:168 + 56 * k + 56] = hashlib.sha256(body).digest()
    off += len(body)
h += hashlib.sha256(bytes(h)).digest()
open(sys.argv[2], "wb").write(bytes(h) + mz + b"".join(rest))
print("pages: %d of %d digests; MEMBERS %d B (3.0), %d B (2.1)" %
      (np, bpage, struct.unpack_from("<Q", b, 168 + 8)[0], len(mz)))
PY
mount_fg "$NGINX_URL/old/$name" "$TEST_TMP/m10" "$TEST_TMP/m10.log" -o cache_dir=none
grep -q "(published index)" "$TEST_TMP/m10.log" || fail "2.1 index unused: $(cat "$TEST_TMP/m10.log")"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$TEST_TMP/m10" "$ref" || fail "2.1-index mount differs"
sffs_unmount "$TEST_TMP/m10"

step "artifact replaced"
mnt=$TEST_TMP/m5
mount_fg "$NGINX_URL/pub/$name" "$mnt" "$TEST_TMP/m5.log" -o cache_dir=none
# Same size, new content and mtime: a new ETag.
cp "$fx/$FIXTURE_NAME.tar.zst" "$www/pub/new"
truncate -s "$tsize" "$www/pub/new"
touch -d '@1800000000' "$www/pub/new"
mv "$www/pub/new" "$www/pub/$name"
if cat "$mnt/view/sbin/slurmctld" >/dev/null 2>&1; then
	fail "read a replaced artifact without an error"
fi
# same size: the new ETag is adopted, and the new bytes fail their digests
grep -q "adopted" "$TEST_TMP/m5.log" || fail "no change message: $(cat "$TEST_TMP/m5.log")"
grep -q "do not match their SHA-256" "$TEST_TMP/m5.log" ||
	fail "the replaced bytes were not refused by digest: $(cat "$TEST_TMP/m5.log")"
sffs_unmount "$mnt"
# A published index for another size is refused at mount.
truncate -s $((tsize + 1)) "$www/pub/$name"
mount_fg "$NGINX_URL/pub/$name" "$TEST_TMP/m6" "$TEST_TMP/m6.log" -o cache_dir=none 2>/dev/null || true
grep -q "index is for an artifact of" "$TEST_TMP/m6.log" || fail "size mismatch not detected: $(cat "$TEST_TMP/m6.log")"
