#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An independent reference of what `spack install` does to the files of a
buildcache package, written for sffs's tests from Spack's behaviour (its
relocate.py, relocate_text.py and util/elf.py), not from its code.

Spack cannot be installed where the tests run; this script stands in for
it. It works on whole files with Python's own regular expressions, so it
shares nothing with the C engine (archive/relocate.c) it checks.

  spack_relocate_ref.py binary IN OUT --map OLD NEW [--map OLD NEW ...]
  spack_relocate_ref.py text   IN OUT --map OLD NEW ...
  spack_relocate_ref.py link   TARGET --map OLD NEW ...   (prints the target)
  spack_relocate_ref.py batch  JOBS    (one job a line: KIND, IN, OUT, then
                                        OLD NEW pairs, tab-separated; prints
                                        each job's exit status, one a line)

Maps are ordered: the first pair whose old prefix matches wins. Exit
status 3 (and a line on stderr) when Spack would refuse: a string would
have to grow.
"""

import re
import struct
import sys

SAFETY = 7  # bytes of a C string's end that a linker may share


class Refused(Exception):
    pass


class NotElf(Exception):
    pass


def _unpack(fmt, data, off):
    size = struct.calcsize(fmt)
    if off < 0 or off + size > len(data):
        raise NotElf("short read")
    return struct.unpack_from(fmt, data, off)


def _cstring(table, start):
    end = table.find(b"\0", start)
    if start < 0 or end < 0:
        raise NotElf("unterminated string")
    return table[start:end]


def _read(data, off, size):
    if off < 0 or size < 0 or off + size > len(data):
        raise NotElf("short read")
    return data[off:off + size]


def elf_strings(data):
    """Returns {'interp': (offset, bytes) or None, 'rpath': (offset, bytes)
    or None}; raises NotElf where Spack's parser gives up."""
    if len(data) < 16 or data[:4] != b"\x7fELF":
        raise NotElf("magic")
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        raise NotElf("class or data")
    wide = data[4] == 2
    bo = "<" if data[5] == 1 else ">"
    w = "Q" if wide else "L"
    hdr = _unpack(bo + "HHL" + w * 3 + "LHHHHHH", data, 16)
    e_type, phoff, shoff, phnum, shnum = hdr[0], hdr[4], hdr[5], hdr[9], hdr[11]
    if e_type not in (2, 3):
        raise NotElf("type")

    loads, interp_ph, dyn_ph = [], None, None
    phfmt = bo + ("LLQQQQQQ" if wide else "LLLLLLLL")
    phsz = struct.calcsize(phfmt)
    _read(data, phoff, phsz * phnum)
    for i in range(phnum):
        f = _unpack(phfmt, data, phoff + i * phsz)
        if wide:
            ptype, off, vaddr, filesz = f[0], f[2], f[3], f[5]
        else:
            ptype, off, vaddr, filesz = f[0], f[1], f[2], f[4]
        if filesz == 0:
            continue
        if ptype == 1:
            loads.append((vaddr, i, off))
        elif ptype == 3:
            interp_ph = (off, filesz)
        elif ptype == 2:
            dyn_ph = (off, filesz)
    loads.sort(key=lambda t: t[0])

    out = {"interp": None, "rpath": None}
    if interp_ph:
        blob = _read(data, interp_ph[0], interp_ph[1])
        out["interp"] = (interp_ph[0], _cstring(blob, 0))
    if not dyn_ph or not loads:
        return out

    dfmt = bo + ("qQ" if wide else "lL")
    dsz = struct.calcsize(dfmt)
    rp, strtab, needed, soname = [], [], [], []
    for i in range(dyn_ph[1] // dsz):
        tag, val = _unpack(dfmt, data, dyn_ph[0] + i * dsz)
        if tag == 0:
            break
        if tag in (15, 29):
            rp.append(val)
        elif tag == 5:
            strtab.append(val)
        elif tag == 1:
            needed.append(val)
        elif tag == 14:
            soname.append(val)
    if len(rp) > 1 or len(strtab) != 1:
        raise NotElf("dynamic section")
    if not (rp or needed or soname):
        return out

    # the last loaded segment starting at or below the address (Python's
    # index -1, the last one, when none does)
    below = [t for t in loads if t[0] <= strtab[0]]
    vaddr, _, off = below[-1] if below else loads[-1]
    st_off = off - vaddr + strtab[0]
    if st_off < 0:
        raise NotElf("negative offset")
    shfmt = bo + ("LLQQQQLLQQ" if wide else "LLLLLLLLLL")
    shsz = struct.calcsize(shfmt)
    size = None
    for i in range(shnum):
        sh = _unpack(shfmt, data, shoff + i * shsz)
        if sh[1] == 3 and sh[4] == st_off:
            size = sh[5]
            break
    if size is None:
        raise NotElf("no string table")
    table = _read(data, st_off, size)
    for v in needed + soname:
        _cstring(table, v)
    if rp:
        out["rpath"] = (st_off + rp[0], _cstring(table, rp[0]))
    return out


def _alternation(keys):
    return b"|".join(re.escape(k) for k in keys)


def _swap_front(regex, mapping, s):
    m = regex.match(s)
    return mapping[m.group()] + s[m.end():] if m else None


def binary(data, pairs):
    data = bytearray(data)
    mapping = dict(pairs)
    front = re.compile(_alternation(mapping))
    try:
        found = elf_strings(bytes(data))
    except NotElf:
        found = {"interp": None, "rpath": None}

    edits = []
    if found["rpath"]:
        off, old = found["rpath"]
        parts = [p for p in old.split(b":") if p]
        new = [_swap_front(front, mapping, p) for p in parts]
        if any(n is not None for n in new):
            value = b":".join(n if n is not None else p for n, p in zip(new, parts))
            edits.append(("rpath", off, old, value))
    if found["interp"]:
        off, old = found["interp"]
        value = _swap_front(front, mapping, old)
        if value is not None:
            edits.append(("interpreter", off, old, value))
    for what, off, old, value in edits:
        if len(value) > len(old):
            raise Refused("the new %s is longer than the old one" % what)
    for what, off, old, value in edits:
        data[off:off + len(old)] = value + b"\0" * (len(old) - len(value))

    moved = {k: v for k, v in pairs if k != v}
    if not moved:
        return bytes(data)
    pattern = re.compile(b"(" + _alternation(moved) + b")([^\\0]{0,%d}\\0)?" % SAFETY)
    view = bytes(data)
    for m in pattern.finditer(view):
        old = m.group(1)
        new = moved[old]
        shrink = len(old) - len(new)
        if shrink < 0:
            raise Refused("cannot replace %r with %r: the new prefix is longer" % (old, new))
        tail = m.group(2)
        keep = SAFETY - (len(tail) - 1) if tail is not None else 0
        if tail is None or keep <= 0 or old[-keep:] == new[-keep:]:
            data[m.start():m.start() + len(old)] = b"/" * shrink + new
        elif shrink > SAFETY:
            repl = new + tail
            data[m.start():m.start() + len(repl)] = repl
        else:
            raise Refused("cannot replace %r with %r in a C string" % (old, new))
    return bytes(data)


def text(data, pairs):
    moved = {k: v for k, v in pairs if k != v}
    if not moved:
        return data
    word = b"\\w\\-_"
    pattern = re.compile(
        b"(?<![" + word + b"/])([" + word + b"]*?)(" + _alternation(moved) + b")([" + word + b"/]*)"
    )
    return pattern.sub(lambda m: m.group(1) + moved[m.group(2)] + m.group(3), data)


def link(target, pairs):
    mapping = dict(pairs)
    if not target.startswith(b"/"):
        return target
    new = _swap_front(re.compile(_alternation(mapping)), mapping, target)
    return target if new is None else new


def run(kind, src, dst, pairs):
    with open(src, "rb") as f:
        data = f.read()
    try:
        out = binary(data, pairs) if kind == "binary" else text(data, pairs)
    except Refused as e:
        print("refused: %s: %s" % (src, e), file=sys.stderr)
        return 3
    with open(dst, "wb") as f:
        f.write(out)
    return 0


def batch(path):
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            fields = line.split(b"\t")
            pairs = list(zip(fields[3::2], fields[4::2]))
            print(run(fields[0].decode(), fields[1], fields[2], pairs))
    return 0


def main(argv):
    args, pairs = [], []
    i = 1
    while i < len(argv):
        if argv[i] == "--map":
            pairs.append((argv[i + 1].encode(), argv[i + 2].encode()))
            i += 3
        else:
            args.append(argv[i])
            i += 1
    if args[0] == "batch":
        return batch(args[1])
    if args[0] == "link":
        sys.stdout.buffer.write(link(args[1].encode(), pairs) + b"\n")
        return 0
    return run(args[0], args[1], args[2], pairs)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
