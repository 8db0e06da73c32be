#!/usr/bin/env python3
"""Checks a repacked tarball against its .sfidx.

    check-repacked.py ARTIFACT INDEX MAX_SPAN

Walks the pieces of ARTIFACT (zstd frames by their headers and block
headers; gzip members by inflating each one), then reads the index's
header and POINTS section (as archive/index.c lays them out) and checks:
  - every zstd frame declares its content size and has a checksum;
  - the index has no windows and more than one point (for a tar stream
    longer than MAX_SPAN);
  - every seek point lies at a piece start (same compressed and
    uncompressed offsets);
  - no span holds more than MAX_SPAN uncompressed bytes.
Prints "pieces N points N max-span N" and exits 0, or names the failure
and exits 1. Needs the zstd command (to read the POINTS section).
"""
import struct
import subprocess
import sys
import zlib

ZSTD_MAGIC = 0xFD2FB528
# Per index major version (archive/index.c): where the section table
# starts, the POINTS and WINDOWS entries in it, and the size of a point
# record (coff and uoff first).
LAYOUT = {2: (168, 1, 3, 62), 3: (168, 1, 3, 62)}


def fail(msg):
    print("check-repacked: " + msg, file=sys.stderr)
    sys.exit(1)


def zstd_frame(b, pos):
    """(compressed length, content size) of the frame at pos."""
    if struct.unpack_from("<I", b, pos)[0] != ZSTD_MAGIC:
        fail("no zstd frame at compressed offset %d" % pos)
    fhd = b[pos + 4]
    fcs_code, single, has_sum, did = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
    if not has_sum:
        fail("the frame at %d has no checksum" % pos)
    if fcs_code == 0 and not single:
        fail("the frame at %d does not declare its content size" % pos)
    p = pos + 5 + (0 if single else 1) + (0, 1, 2, 4)[did]
    n = (1 if single else 0, 2, 4, 8)[fcs_code]
    fcs = int.from_bytes(b[p:p + n], "little") + (256 if n == 2 else 0)
    p += n
    while True:
        bh = int.from_bytes(b[p:p + 3], "little")
        last, btype, bsize = bh & 1, (bh >> 1) & 3, bh >> 3
        p += 3 + (1 if btype == 1 else bsize)
        if last:
            break
    return p + 4 - pos, fcs


def gzip_member(b, pos):
    """(compressed length, uncompressed length) of the member at pos."""
    d, mv, p, out = zlib.decompressobj(31), memoryview(b), pos, 0
    while not d.eof:
        if p >= len(b):
            fail("gzip member at %d is truncated" % pos)
        chunk = mv[p:p + 65536]
        out += len(d.decompress(chunk))
        p += len(chunk)
    return p - len(d.unused_data) - pos, out


def pieces(b):
    """[(coff, uoff)] of every piece start."""
    walk = zstd_frame if b[:4] == struct.pack("<I", ZSTD_MAGIC) else gzip_member
    res, pos, uoff = [], 0, 0
    while pos < len(b):
        res.append((pos, uoff))
        clen, ulen = walk(b, pos)
        pos, uoff = pos + clen, uoff + ulen
    return res, uoff


def points(idx):
    major = struct.unpack_from("<H", idx, 8)[0]
    if major not in LAYOUT:
        fail("index format %d.x is unknown to this script" % major)
    sec, pidx, widx, rec = LAYOUT[major]
    usize, npoints = struct.unpack_from("<Q", idx, 64)[0], struct.unpack_from("<Q", idx, 88)[0]
    off, ln = struct.unpack_from("<QQ", idx, sec + pidx * 56)
    wlen = struct.unpack_from("<QQ", idx, sec + widx * 56)[1]
    if wlen:
        fail("the index has %d bytes of windows" % wlen)
    raw = subprocess.run(["zstd", "-dc"], input=idx[off:off + ln], check=True,
                         stdout=subprocess.PIPE).stdout
    if len(raw) != rec * npoints:
        fail("POINTS holds %d bytes for %d points" % (len(raw), npoints))
    return [struct.unpack_from("<QQ", raw, rec * i) for i in range(npoints)], usize


def main():
    art = open(sys.argv[1], "rb").read()
    idx = open(sys.argv[2], "rb").read()
    max_span = int(sys.argv[3])
    starts, total = pieces(art)
    pts, usize = points(idx)
    if usize != total:
        fail("index says %d uncompressed bytes, the pieces hold %d" % (usize, total))
    if usize > max_span and len(pts) < 2:
        fail("%d points for %d bytes" % (len(pts), usize))
    known = set(starts)
    for p in pts:
        if p not in known:
            fail("seek point (coff %d, uoff %d) is not at a piece start" % p)
    ends = [p[1] for p in pts[1:]] + [usize]
    spans = [e - p[1] for p, e in zip(pts, ends)]
    if max(spans) > max_span:
        fail("a span of %d bytes (limit %d)" % (max(spans), max_span))
    print("pieces %d points %d max-span %d" % (len(starts), len(pts), max(spans)))


main()
