#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""reloc-expect.py - what `spack install` would leave of each package of a
buildcache, for comparing with a relocating sffs mount.

    reloc-expect.py --mirror DIR --list LIST.tsv --root NEWROOT --out OUT
        [--norelocate]

LIST.tsv is make-buildcache.py's --list output (directory, tarball path in
DIR, install prefix, name, version, hash, target). For each package, its
tarball is extracted with Python's tarfile, its .spack/binary_distribution
read with PyYAML (nothing shared with the daemon's C parser), and OUT/<dir>
made: the package's prefix as Spack would install it at NEWROOT/<dir>.

The map is Spack's (docs/relocation.md), in this order:
  1. text only: sbang_install_path -> NEWROOT/bin/sbang;
  2. each hash_to_prefix entry (or older caches' prefix_to_hash,
     inverted) other than the package itself -> NEWROOT/<its dir>, if the
     hash is in LIST.tsv (else nothing);
  3. the package's old prefix (buildpath/relative_prefix) -> NEWROOT/<dir>;
  4. buildpath -> NEWROOT;
  5. text only: "#!/bin/bash <spackprefix>/bin/sbang" ->
     "#!/bin/sh NEWROOT/bin/sbang".
relocate_binaries are relocated as binaries, relocate_textfiles as text,
relocate_links' targets as links, all by tests/lib/spack_relocate_ref.py;
nothing else changes. NEWROOT is used as given: pass the real path.

A package is refused (OUT/<dir> is its unrelocated extraction, and
"refused <dir>" is printed on stdout) when its new prefix or a
dependency's is longer than the old one, or when the reference refuses any
of its files (Spack's CannotGrowString / CannotShrinkCString). Nothing is
ever half-relocated. --norelocate: every package is its extraction.

Fails loudly (exit 1) on any error; OUT/<dir> must not exist.
"""

import argparse
import os
import sys
import tarfile

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spack_relocate_ref as ref  # noqa: E402

MAX_MEMBER = 512 << 20  # no member of a test package is near this


def die(msg):
    print(f"reloc-expect: {msg}", file=sys.stderr)
    sys.exit(1)


def inside(rel):
    """rel is a relative path that stays inside the prefix."""
    parts = rel.split("/")
    return rel and not rel.startswith("/") and ".." not in parts


def extract(tarball, prefix, dest):
    """The members under prefix (without its leading /) into dest."""
    top = prefix.lstrip("/")
    os.makedirs(dest)
    found = False
    with tarfile.open(tarball, "r:gz") as tar:
        for m in tar:
            if m.name == top:
                found = True
                continue
            if not m.name.startswith(top + "/"):
                continue
            rel = m.name[len(top) + 1:].rstrip("/")
            if not inside(rel):
                die(f"{tarball}: member {m.name} leaves the prefix")
            path = os.path.join(dest, rel)
            if m.isdir():
                os.makedirs(path, exist_ok=True)
                os.chmod(path, m.mode & 0o7777)
            elif m.issym():
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.symlink(m.linkname, path)
            elif m.isreg():
                if m.size > MAX_MEMBER:
                    die(f"{tarball}: {m.name} is {m.size} bytes")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(tar.extractfile(m).read())
                os.chmod(path, m.mode & 0o7777)
            else:
                die(f"{tarball}: {m.name}: member type {m.type!r}")
    if not found:
        die(f"{tarball}: no directory {top}")


def buildinfo(dest):
    path = os.path.join(dest, ".spack", "binary_distribution")
    try:
        with open(path) as f:
            info = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        die(f"{path}: {e}")
    if not isinstance(info, dict):
        die(f"{path}: not a mapping")
    for key in ("buildpath", "relative_prefix"):
        if not isinstance(info.get(key), str):
            die(f"{path}: no {key}")
    return info


def old_prefixes(info):
    """{hash: old prefix}: hash_to_prefix, or prefix_to_hash inverted."""
    if isinstance(info.get("hash_to_prefix"), dict):
        return dict(info["hash_to_prefix"])
    if isinstance(info.get("prefix_to_hash"), dict):
        return {h: p for p, h in info["prefix_to_hash"].items()}
    return {}


def maps(info, own_hash, dirs, root, mydir):
    """(binary pairs, text pairs, prefix pairs) as bytes, in Spack's
    order; prefix pairs are the package's own and its dependencies'."""
    newroot = root.rstrip("/") or "/"
    prefixes = []
    for h, old in old_prefixes(info).items():
        if h != own_hash and h in dirs:
            prefixes.append((old, f"{newroot}/{dirs[h]}"))
    own = info["buildpath"] + "/" + info["relative_prefix"]
    prefixes.append((own, f"{newroot}/{mydir}"))
    binary = prefixes + [(info["buildpath"], newroot)]
    text = list(binary)
    if info.get("sbang_install_path"):
        text.insert(0, (info["sbang_install_path"], f"{newroot}/bin/sbang"))
    if info.get("spackprefix"):
        text.append((f"#!/bin/bash {info['spackprefix']}/bin/sbang",
                     f"#!/bin/sh {newroot}/bin/sbang"))

    def enc(pairs):
        return [(a.encode(), b.encode()) for a, b in pairs]

    return enc(binary), enc(text), enc(prefixes)


def listed(info, key, dest):
    items = info.get(key) or []
    if not isinstance(items, list):
        die(f"{dest}: {key} is not a list")
    for rel in items:
        if not isinstance(rel, str) or not inside(rel):
            die(f"{dest}: {key}: bad path {rel!r}")
    return items


def relocate(dest, info, pairs):
    """{relative path: new bytes or ('link', target)}, or the reason the
    package is refused (a string)."""
    binary, text, prefixes = pairs
    for old, new in prefixes:
        if len(new) > len(old):
            return f"{new.decode()} is longer than {old.decode()}"
    out = {}
    for kind, key, fn, mp in (("binary", "relocate_binaries", ref.binary,
                               binary),
                              ("text", "relocate_textfiles", ref.text, text)):
        for rel in listed(info, key, dest):
            path = os.path.join(dest, rel)
            if os.path.islink(path) or not os.path.isfile(path):
                die(f"{dest}: {key} names {rel}, not a file")
            with open(path, "rb") as f:
                data = f.read()
            try:
                out[rel] = fn(data, mp)
            except ref.Refused as e:
                return f"{rel}: {e}"
    for rel in listed(info, "relocate_links", dest):
        path = os.path.join(dest, rel)
        if not os.path.islink(path):
            die(f"{dest}: relocate_links names {rel}, not a symlink")
        out[rel] = ("link", ref.link(os.fsencode(os.readlink(path)), binary))
    return out


def write(dest, changes):
    for rel, new in changes.items():
        path = os.path.join(dest, rel)
        if isinstance(new, tuple):
            os.unlink(path)
            os.symlink(os.fsdecode(new[1]), path)
            continue
        mode = os.stat(path).st_mode & 0o7777
        with open(path, "wb") as f:
            f.write(new)
        os.chmod(path, mode)


def read_list(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 7:
                die(f"{path}:{n}: {len(fields)} columns, want 7")
            rows.append(fields)
    if not rows:
        die(f"{path}: no packages")
    return rows


def main():
    ap = argparse.ArgumentParser(
        description="packages as `spack install` would relocate them")
    ap.add_argument("--mirror", required=True)
    ap.add_argument("--list", required=True)
    ap.add_argument("--root", required=True, help="NEWROOT (a real path)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--norelocate", action="store_true")
    args = ap.parse_args()
    if not args.root.startswith("/"):
        die("--root must be absolute")
    rows = read_list(args.list)
    dirs = {r[5]: r[0] for r in rows}
    relocated = refused = 0
    for d, blob, prefix, _name, _ver, h, _target in (r[:7] for r in rows):
        dest = os.path.join(args.out, d)
        if os.path.lexists(dest):
            die(f"{dest} exists")
        extract(os.path.join(args.mirror, blob), prefix, dest)
        if args.norelocate:
            continue
        info = buildinfo(dest)
        result = relocate(dest, info, maps(info, h, dirs, args.root, d))
        if isinstance(result, str):
            print(f"refused {d}")
            print(f"reloc-expect: {d}: {result}", file=sys.stderr)
            refused += 1
            continue
        write(dest, result)
        relocated += 1
    print(f"reloc-expect: {len(rows)} packages in {args.out}: "
          f"{relocated} relocated to {args.root}, {refused} refused",
          file=sys.stderr)


if __name__ == "__main__":
    main()
