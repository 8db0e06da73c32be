#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the hostile archives of tests/mount/test_hostile.sh into OUTDIR.

usage: make-hostile.py [--big] [--only NAME...] OUTDIR

Python 3 standard library only. Headers are built byte by byte, because
tarfile refuses to write most of what is tested here (bad checksums, '..'
names, huge or negative sizes, NULs in pax values, millions of sparse
segments). The zstd frame is built by hand too (raw blocks and a content
checksum, XXH64 below), so no zstd module is needed.

--big also writes the large cases (1,000,000 empty files, a gzip bomb, a
100 MB GNU long name); they take a minute and about 10 MB of disk, and are
generated at test time, never stored in the repository.

Every archive's expected outcome lives in the table of test_hostile.sh;
here each writer only says in a comment what it holds.
"""
import gzip
import os
import struct
import sys
import zlib

BLK = 512
MTIME = 1700000000


# ---- tar blocks ---------------------------------------------------------

def octal(n, width):
    """A NUL-terminated octal field of width bytes."""
    return b"%0*o\0" % (width - 1, n)


def b256(n, width):
    """GNU base-256: 0x80, then a big-endian magnitude."""
    body = n.to_bytes(width, "big")
    assert body[0] == 0, "number too large for the field"
    return b"\x80" + body[1:]


def chksum(block):
    return sum(block[:148]) + 8 * 32 + sum(block[156:])


def header(name, size=0, typ=b"0", mode=0o644, link=b"", prefix=b"",
           size_field=None, mtime=MTIME, bad_sum=False, extra=None):
    """One ustar header block. Names are bytes or str; size_field, if
    given, replaces the 12-byte size field verbatim. extra maps offsets to
    bytes written over the block before the checksum."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(link, str):
        link = link.encode()
    assert len(name) <= 100 and len(link) <= 100 and len(prefix) <= 155
    b = bytearray(BLK)
    b[0:len(name)] = name
    b[100:108] = octal(mode, 8)
    b[108:116] = octal(0, 8)
    b[116:124] = octal(0, 8)
    b[124:136] = size_field if size_field is not None else octal(size, 12)
    b[136:148] = octal(mtime, 12)
    b[156:157] = typ
    b[157:157 + len(link)] = link
    b[257:265] = b"ustar\x0000"
    b[265:269] = b"root"
    b[297:301] = b"root"
    b[345:345 + len(prefix)] = prefix
    for off, val in (extra or {}).items():
        b[off:off + len(val)] = val
    s = chksum(b) + (1 if bad_sum else 0)
    b[148:156] = b"%06o\0 " % s
    return bytes(b)


def pad(data):
    return data + bytes(-len(data) % BLK)


def member(name, data=b"", **kw):
    if isinstance(data, str):
        data = data.encode()
    return header(name, size=len(data), **kw) + pad(data)


def pax_record(key, value):
    """'LEN key=value\\n' where LEN counts the whole record."""
    if isinstance(key, str):
        key = key.encode()
    if isinstance(value, str):
        value = value.encode()
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def pax(records, typ=b"x", name="PaxHeaders/x"):
    """A pax extended header member: records is a list of (key, value) or
    raw bytes."""
    data = b"".join(r if isinstance(r, bytes) else pax_record(*r)
                    for r in records)
    return member(name, data, typ=typ)


END = bytes(2 * BLK)


def write(outdir, name, data):
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)


def write_gz(outdir, name, data, level=6):
    write(outdir, name, gzip.compress(data, compresslevel=level, mtime=0))


# ---- zstd by hand -------------------------------------------------------

P1, P2, P3 = 11400714785074694791, 14029467366897019727, 1609587929392839161
P4, P5 = 9650029242287828579, 2870177450012600261
M64 = (1 << 64) - 1


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def xxh_round(acc, lane):
    return (rotl((acc + lane * P2) & M64, 31) * P1) & M64


def xxh64(data, seed=0):
    """XXH64, the hash of zstd's content checksum (low 32 bits)."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed,
             (seed - P1) & M64]
        while i + 32 <= n:
            for k in range(4):
                v[k] = xxh_round(v[k], struct.unpack_from("<Q", data,
                                                          i + 8 * k)[0])
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) +
             rotl(v[3], 18)) & M64
        for k in range(4):
            h = ((h ^ xxh_round(0, v[k])) * P1 + P4) & M64
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h ^= xxh_round(0, struct.unpack_from("<Q", data, i)[0])
        h = (rotl(h, 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h ^= (struct.unpack_from("<I", data, i)[0] * P1) & M64
        h = (rotl(h, 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M64
        h = (rotl(h, 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    return h ^ (h >> 32)


def zstd_frame(data, checksum=None, window_log=None):
    """One zstd frame of raw blocks with a content checksum (the right one
    unless checksum is given). With window_log, the frame declares that
    window and no content size, so a decoder must be ready for all of it."""
    out = bytearray(b"\x28\xb5\x2f\xfd")
    if window_log is None:
        out.append(0xE4)  # 8-byte content size, single segment, checksum
        out += struct.pack("<Q", len(data))
    else:
        out.append(0x04)  # no content size, a window descriptor, checksum
        out.append((window_log - 10) << 3)
    pos = 0
    while True:
        chunk = data[pos:pos + (128 << 10)]
        pos += len(chunk)
        last = pos >= len(data)
        out += struct.pack("<I", (len(chunk) << 3) | int(last))[:3]
        out += chunk
        if last:
            break
    if checksum is None:
        checksum = xxh64(data) & 0xFFFFFFFF
    out += struct.pack("<I", checksum)
    return bytes(out)


# ---- the cases ----------------------------------------------------------

GOOD = member("good.txt", "safe\n")


def c_dotdot(o):
    # '..' anywhere in a name or a hardlink target: skipped with a warning.
    write(o, "dotdot.tar",
          member("../evil", "x") + member("a/../../evil2", "x") +
          member("..", typ=b"5") + pax([("path", "x/../../evil3")]) +
          member("placeholder", "x") + GOOD +
          header("hl", typ=b"1", link="../good.txt") + END)


def c_absolute(o):
    # Absolute names are served relative to the mount point.
    write(o, "absolute.tar",
          member("/etc/passwd", "not the real passwd\n") +
          member("//abs2", "2") + member("/./abs3", "3") +
          pax([("path", "/abs4")]) + member("ph", "4") + END)


def c_nul(o):
    # NUL bytes inside pax path and linkpath values.
    write(o, "nul.tar",
          pax([("path", b"a\0b")]) + member("ph1", "x") +
          pax([("linkpath", b"good.txt\0/etc/passwd")]) +
          header("sl", typ=b"2") + GOOD + END)


def c_pax_path(o):
    # 1,000,000-byte path (header fits the 1 MiB pax cap): skipped;
    # 2,000,000-byte path: the header itself is over the cap: refused.
    write(o, "pax-path-1mb.tar",
          pax([("path", "a" * 1000000)]) + member("ph", "x") + GOOD + END)
    write(o, "pax-path-2mb.tar",
          pax([("path", "a" * 2000000)]) + member("ph", "x") + GOOD + END)


def c_pax_size(o):
    write(o, "pax-size-2p62.tar",
          GOOD + pax([("size", str(1 << 62))]) + member("big") + END)
    write(o, "pax-size-neg.tar",
          GOOD + pax([("size", "-1")]) + member("neg") + END)


def c_b256(o):
    # A valid base-256 size, a huge one (2^62 + 1) and a negative one.
    ok = header("b256.txt", size_field=b256(5, 12)) + pad(b"hello")
    write(o, "b256-ok.tar", ok + END)
    write(o, "b256-huge.tar",
          ok + header("huge", size_field=b256((1 << 62) + 1, 12)) + END)
    write(o, "b256-neg.tar",
          ok + header("neg", size_field=b"\xff" * 12) + END)


def c_checksum(o):
    write(o, "bad-sum-first.tar",
          header("first", size=1, bad_sum=True) + pad(b"x") + GOOD + END)
    write(o, "bad-sum-later.tar",
          GOOD + member("second", "y") +
          header("third", size=1, bad_sum=True) + pad(b"z") + END)


def c_truncated(o):
    whole = GOOD + member("data.bin", os.urandom(5000)) + GOOD + END
    mid_header = whole[:BLK * 2 + 200]        # inside data.bin's header
    mid_data = whole[:BLK * 3 + 1000]          # inside data.bin's data
    for name, data in (("trunc-header", mid_header),
                       ("trunc-data", mid_data)):
        write(o, name + ".tar", data)
        write_gz(o, name + ".tar.gz", data)   # a complete gzip of it


def c_overlap(o):
    # A size far larger than the archive: 10 MB claimed, 100 bytes there.
    write(o, "overlap-end.tar",
          GOOD + header("big", size=10 << 20) + b"x" * 100)


def c_gzip(o):
    tar = GOOD + member("more.txt", os.urandom(100000).hex()) + END
    gz = gzip.compress(tar, mtime=0)
    crc = struct.unpack_from("<I", gz, len(gz) - 8)[0]
    write(o, "gz-bad-crc.tar.gz",
          gz[:-8] + struct.pack("<I", crc ^ 1) + gz[-4:])
    write(o, "gz-trailing-garbage.tar.gz", gz + b"this is not gzip\n" * 4)
    write(o, "gz-trailing-zeros.tar.gz", gz + bytes(1000))
    write(o, "gz-truncated.tar.gz", gz[:len(gz) // 2])
    # Two members (as pigz -i or cat a.gz b.gz): a valid gzip.
    half = len(tar) // 2
    write(o, "gz-multi.tar.gz", gzip.compress(tar[:half], mtime=0) +
          gzip.compress(tar[half:], mtime=0))


def c_zstd(o):
    tar = GOOD + member("more.txt", os.urandom(300000)) + END
    good = zstd_frame(tar)
    write(o, "zstd-ok.tar.zst", good)
    write(o, "zstd-bad-checksum.tar.zst",
          zstd_frame(tar, (xxh64(tar) & 0xFFFFFFFF) ^ 0x5A5A5A5A))
    # A frame that asks for a 2 GiB window (libzstd's limit is 128 MiB).
    write(o, "zstd-window-2g.tar.zst", zstd_frame(tar, window_log=31))


def c_links(o):
    write(o, "hardlink-missing.tar",
          GOOD + header("hl", typ=b"1", link="nope") +
          header("hl2", typ=b"1", link="good.txt") + END)
    # A symlink named '.' (and './'): it would replace the root.
    write(o, "symlink-dot.tar",
          header(".", typ=b"2", link="/etc") +
          header("./", typ=b"2", link="/") + GOOD + END)
    # Symlinks out of the mount are served verbatim; a member through a
    # symlink is skipped (the tree never follows links).
    write(o, "symlink-out.tar",
          header("up", typ=b"2", link="../../etc/passwd") +
          header("abs", typ=b"2", link="/etc/shadow") +
          header("etc", typ=b"2", link="/etc") +
          member("etc/passwd", "through a symlink\n") + GOOD + END)


def c_dir_file(o):
    write(o, "dir-then-file.tar",
          member("d/", typ=b"5", mode=0o755) + member("d/x", "x") +
          member("d", "now a file") +                      # refused
          member("e/", typ=b"5", mode=0o755) + member("e", "e file") +
          member("f", "f file") + member("f/", typ=b"5", mode=0o755) +
          member("g", "g file") + member("g/y", "y") + END)


def deep_path(depth, leaf="f"):
    return "/".join(["a"] * depth + [leaf])


def c_deep(o):
    # The deepest path that fits TAR_MAX_NAME (4096): 2047 'a/' + 'f'
    # (4095 bytes); two bytes more (4097); and 100,000 components.
    ok = deep_path(2047)
    assert len(ok) == 4095
    over = deep_path(2047, "fff")
    assert len(over) == 4097
    write(o, "deep.tar",
          pax([("path", ok)]) + member("ph1", "deep\n") +
          pax([("path", over)]) + member("ph2", "over\n") +
          pax([("path", deep_path(100000))]) + member("ph3", "100k\n") +
          GOOD + END)


def c_component(o):
    # A 255-byte component is kept; 256 bytes (NAME_MAX + 1) is skipped,
    # in a name and in a hardlink target.
    write(o, "long-component.tar",
          pax([("path", "d/" + "c" * 255)]) + member("ph1", "255\n") +
          pax([("path", "d/" + "e" * 256)]) + member("ph2", "256\n") +
          pax([("linkpath", "f" * 256)]) + header("hl", typ=b"1") +
          GOOD + END)


def c_modes(o):
    write(o, "modes.tar",
          member("suid", "#!/bin/sh\n", mode=0o4755) +
          member("sgid", "x", mode=0o2755) +
          member("all", "x", mode=0o7777) +
          member("sticky/", typ=b"5", mode=0o1777) +
          member("sgiddir/", typ=b"5", mode=0o2775) + END)


def c_devices(o):
    dev = {329: octal(1, 8), 337: octal(3, 8)}
    write(o, "devices.tar",
          header("null", typ=b"3", mode=0o666, extra=dev) +
          header("sda", typ=b"4", mode=0o660, extra=dev) +
          header("fifo", typ=b"6", mode=0o644) + GOOD + END)


def c_pax_bad(o):
    # A record whose length is 20 digits long; a pax header of 2^40 bytes.
    rec = b"99999999999999999999 path=x\n"
    write(o, "pax-huge-reclen.tar",
          member("PaxHeaders/x", rec, typ=b"x") + member("ph") + END)
    write(o, "pax-huge-header.tar",
          GOOD + header("PaxHeaders/y", size_field=b256(1 << 40, 12),
                        typ=b"x") +
          bytes(4096) + END)


def c_sparse(o):
    # pax 1.0: a map announcing 10^6 segments (the map is all there).
    nseg = 1000000
    mp = b"%d\n" % nseg + b"".join(b"%d\n1\n" % (2 * i)
                                   for i in range(nseg))
    data = pad(mp) + bytes(nseg)
    write_gz(o, "sparse-1e6.tar.gz",
             pax([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                  ("GNU.sparse.name", "sparse"),
                  ("GNU.sparse.realsize", str(2 * nseg))]) +
             member("GNUSparseFile.0/sparse", data) + END)
    # Old GNU 'S': 4 pairs in the header, then extension blocks of 21
    # pairs each, 70,000 pairs in all.
    pairs = [(2 * i, 1) for i in range(70000)]
    hdr_pairs = b"".join(octal(a, 12) + octal(b, 12) for a, b in pairs[:4])
    hdr = header("oldsparse", size=len(pairs), typ=b"S",
                 extra={386: hdr_pairs, 482: b"\x01",
                        483: octal(2 * len(pairs), 12)})
    ext = b""
    rest = pairs[4:]
    for i in range(0, len(rest), 21):
        chunk = rest[i:i + 21]
        blk = bytearray(BLK)
        blk[0:24 * len(chunk)] = b"".join(octal(a, 12) + octal(b, 12)
                                          for a, b in chunk)
        blk[504] = 1 if i + 21 < len(rest) else 0
        ext += bytes(blk)
    write(o, "sparse-old-70k.tar", hdr + ext + pad(bytes(len(pairs))) + END)


# ---- the big ones (--big) -----------------------------------------------

def c_million(o, dirs=1000, per_dir=1000):
    """1,000,000 empty files in 1000 directories, gzip-compressed."""
    tmpl = bytearray(header("d000/f000000"))
    with gzip.GzipFile(os.path.join(o, "million.tar.gz"), "wb",
                       compresslevel=6, mtime=0) as f:
        buf = []
        for d in range(dirs):
            for i in range(per_dir):
                b = bytearray(tmpl)
                name = b"d%03d/f%06d" % (d, d * per_dir + i)
                b[0:len(name)] = name
                b[148:156] = b"        "
                b[148:156] = b"%06o\0 " % sum(b)
                buf.append(b)
            f.write(b"".join(buf))
            buf = []
        f.write(END)


def c_bomb(o, size=1 << 30):
    """1 GiB of zeros in one member, about 1 MB of gzip."""
    path = os.path.join(o, "bomb.tar.gz")
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(16 << 20)
    with open(path, "wb") as f:
        f.write(z.compress(member("small.txt", "small\n") +
                           header("zeros", size=size)))
        for _ in range(size // len(zeros)):
            f.write(z.compress(zeros))
        f.write(z.compress(GOOD + END))
        f.write(z.flush())


def c_longname(o, size=100 << 20):
    """A GNU ././@LongLink of 100 MB (the name is all there)."""
    path = os.path.join(o, "longname-100mb.tar.gz")
    with gzip.GzipFile(path, "wb", compresslevel=6, mtime=0) as f:
        f.write(header("././@LongLink", size=size, typ=b"L"))
        chunk = b"a" * (1 << 20)
        for _ in range(size // len(chunk)):
            f.write(chunk)
        f.write(member("ph", "x") + GOOD + END)


SMALL = [c_dotdot, c_absolute, c_nul, c_pax_path, c_pax_size, c_b256,
         c_checksum, c_truncated, c_overlap, c_gzip, c_zstd, c_links,
         c_dir_file, c_deep, c_component, c_modes, c_devices, c_pax_bad,
         c_sparse]
BIG = [c_million, c_bomb, c_longname]


def main(argv):
    big = "--big" in argv
    argv = [a for a in argv if a != "--big"]
    only = None
    if argv and argv[0] == "--only":
        only = set(argv[1:-1])
        argv = argv[-1:]
    if len(argv) != 1:
        sys.exit(__doc__)
    outdir = argv[0]
    os.makedirs(outdir, exist_ok=True)
    for fn in SMALL + (BIG if big or only else []):
        if only is None or fn.__name__[2:] in only:
            fn(outdir)


if __name__ == "__main__":
    main(sys.argv[1:])
