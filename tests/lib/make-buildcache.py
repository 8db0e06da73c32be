#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make-buildcache.py - a Spack buildcache made from the fixture's real files.

    make-buildcache.py --fixture EXTRACT_DIR --out DIR --layout v3|v2
        [--sign-with FPR [--gnupghome DIR]] [--packages N] [--arch-twice]
        [--tamper-manifest NAME] [--flip-blob NAME]
        [--sign-with-untrusted FPR [--untrusted-name NAME]]
        [--writable-dir REL] [--spack-rpath] [--list]
    make-buildcache.py --fixture EXTRACT_DIR --out DIR --layout v3|v2
        --from-spack MIRROR [--sign-with FPR [--gnupghome DIR]] [--list]

Lays out DIR exactly as Spack 1.0 (--layout v3) or Spack 0.22 (--layout
v2) writes a mirror, from EXTRACT_DIR/view/{lib,bin}: each library (its
real file and the symlinks to it) is a package; "slurm" is libslurm* with
lib/slurm/ and the Slurm commands, "munge" libmunge* with munge, remunge
and unmunge. --packages N (default: every package the fixture gives) goes
past that by making further versions of the libraries; --arch-twice also
builds the first package for a second target (x86_64_v3, written as an
archspec object), under another hash.

Each package tarball is what Spack's _do_create_tarball writes: a gzip
(level 6, mtime 0, no name) tar (Python's tarfile, PAX) of the install
prefix without its leading '/', parent directories first, each directory
before its contents, files before subdirectories, names sorted, uid/gid 0,
mtime 0, modes 0755/0644, and .spack/binary_distribution (flow-style YAML)
last. The prefix is
  /opt/spack/__spack_path_placeholder__/__spack_path_placeholder__/
      linux-x86_64/<name>-<version>-<hash>                       (v3)
      linux-debian12-x86_64/gcc-12.2.0/<name>-<version>-<hash>   (v2)
Hashes are 32 characters of Spack's base32 alphabet, derived from the
package's name, version and target (deterministic, not real DAG hashes).

v3: v3/layout.json, blobs/sha256/xx/<sha256>, spec manifests (clearsigned
with --sign-with, else plain), the db v8 index behind
v3/manifests/index/index.manifest.json, and with a key the key manifest
v3/manifests/key/<FPR>.key.manifest.json and keys.manifest.json.
v2: build_cache/index.json (+ index.json.hash), <...>.spec.json.sig (or
.spec.json), the .spack tarballs, _pgp/<FPR>.pub and _pgp/index.json.

Broken variants for the tests:
  --tamper-manifest NAME   after signing, change the signed text of NAME's
                           spec manifest (v3) or spec file (v2): its
                           tarball checksum's first digit; the signature
                           stays, so it no longer verifies
  --flip-blob NAME         flip one byte in the middle of NAME's tarball
  --sign-with-untrusted FPR  sign one package (--untrusted-name, default
                           the last) with this other key
NAME is a package name; with several versions, the first one built.

--writable-dir REL adds a world-writable (0777) directory REL to every
package's prefix, as the factory's Pyxis plugin ships
share/enroot/enroot-data.

--spack-rpath makes packages as the factory's Spack builds them, to be
relocated: the install root is Spack's padded root (/opt/slurm/software
padded with /__spack_path_placeholder__ to padded_length 128, cut at 128),
every other package of the cache is a dependency of each package (in
hash_to_prefix only: the spec nodes list no dependencies, so the specs
stay a DAG), and
  - every ELF file gets (patchelf --force-rpath --set-rpath) an RPATH of
    its own prefix's lib, then every other package's lib (those after
    it in --list order, then those before); the interpreter stays the system's; "slurm" also gets
    libslurmfull.so, which sinfo needs;
  - C strings appended to each ELF file: its own prefix with a long
    suffix, the bare prefix, the next package's prefix (its own when it
    is alone) with a short suffix, the layout root with a suffix;
  - text files lib/pkgconfig/<name>.pc (prefix= lines, a dependency's
    path) and bin/<name>-config (first line `#!/bin/bash
    <spackprefix>/bin/sbang`, then sbang_install_path), listed in
    relocate_textfiles;
  - the symlink lib/lib<name>-abs.so -> <prefix>/lib/<its first library>,
    listed in relocate_links;
  - binary_distribution lists relocate_binaries (the ELF files),
    relocate_textfiles, relocate_links and hash_to_prefix (the package,
    then its dependencies).

--list prints, per package: its directory name (<name>-<version>-<hash7>,
as bc_package_name makes it), the path of its tarball in DIR, its install
prefix, its name, version, hash and target, tab-separated, so a test can
compare a mounted package with `tar -xzf` of its tarball.

--from-spack MIRROR lays out a real mirror Spack 1.0 wrote (a copy under
tests/data/spack-mirrors: its verbatim index.json and FILES, the list of
its files): with --layout v2 under exactly the names of FILES (found by
each package's hash, not derived here), with --layout v3 as Spack 1.0's
v3 layout of the same database; each tarball holds one of the fixture's
libraries (the real ones are binary, not copied) at a prefix under the
tarball's <arch>/<compiler> directories, each spec file the package's
nodes from the index (the package first, then its dependencies, as
Spack's to_dict does), the index is the real one verbatim.

No network; fails loudly (exit 1) on any error.
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

PLACEHOLDER_ROOT = (
    "/opt/spack/__spack_path_placeholder__/__spack_path_placeholder__"
)
PLATFORM, OS, TARGET = "linux", "debian12", "x86_64"
TARGET2 = {
    "name": "x86_64_v3",
    "vendor": "generic",
    "features": ["avx", "avx2", "bmi1", "bmi2", "cx16", "f16c", "fma",
                 "lahf_lm", "movbe", "mmx", "popcnt", "sse", "sse2",
                 "sse4_1", "sse4_2", "ssse3", "xsave"],
    "generation": 0,
    "parents": ["x86_64_v2"],
}
COMPILER = {"name": "gcc", "version": "12.2.0"}
WRITABLE_DIR = ""  # --writable-dir: a world-writable directory in each
SPACK_PREFIX = "/opt/spack-src"  # where "Spack itself" lived at build time
ROOT = PLACEHOLDER_ROOT  # the install root (--spack-rpath: the padded one)


def padded_root(root="/opt/slurm/software", length=128):
    """Spack's padded install root: placeholders up to length, cut there
    (the factory's padded_length: 128)."""
    while len(root) < length:
        root += "/__spack_path_placeholder__"
    return root[:length].rstrip("/")

MT_TARBALL = "application/vnd.spack.install.v2.tar+gzip"
MT_SPEC = "application/vnd.spack.spec.v5+json"
MT_INDEX = "application/vnd.spack.db.v8+json"
MT_KEY = "application/pgp-keys"
MT_KEY_INDEX = "application/vnd.spack.keyindex.v1+json"

# Spack package names for the fixture's libraries (else the file's stem).
NAMES = {
    "audit": "audit-userspace", "bz2": "bzip2", "dbus-1": "dbus",
    "gpg-error": "libgpg-error", "gcrypt": "libgcrypt", "cap": "libcap",
    "cap-ng": "libcap-ng", "lua5.1": "lua", "lzma": "xz",
    "numa": "numactl", "pam": "linux-pam", "pam_misc": "linux-pam-misc",
    "tinfo": "ncurses", "yaml-0": "libyaml", "z": "zlib", "zstd": "zstd",
    "json-c": "json-c", "hwloc": "hwloc", "lz4": "lz4",
    "readline": "readline", "systemd": "systemd", "udev": "libudev",
}


def die(msg):
    print(f"make-buildcache: {msg}", file=sys.stderr)
    sys.exit(1)


def b32hash(text):
    digest = hashlib.sha1(text.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:32]


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def compact(obj):
    """spack.util.spack_json.dump: no indent, no spaces."""
    return json.dumps(obj, separators=(",", ":"))


def manifest_text(obj):
    """Manifests and v2 spec files: one key per line, no indent."""
    return json.dumps(obj, indent=0, separators=(",", ":"))


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=6, mtime=0,
                       fileobj=out) as f:
        f.write(data)
    return out.getvalue()


# ---- the packages the fixture gives ----

class Source:
    """A package as found in the fixture: (relative path, real path)
    pairs, a name and a version."""

    def __init__(self, name, version, files):
        self.name, self.version, self.files = name, version, files


def lib_groups(libdir):
    """{stem: (version, [file names])}: each real libX.so.V and the
    symlinks in libdir pointing at it."""
    groups = {}
    for entry in sorted(os.listdir(libdir)):
        path = os.path.join(libdir, entry)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        m = re.match(r"^lib(.+?)\.so\.([0-9][0-9.]*)$", entry)
        if not m:
            continue
        links = [e for e in sorted(os.listdir(libdir))
                 if os.path.islink(os.path.join(libdir, e))
                 and os.readlink(os.path.join(libdir, e)) == entry]
        groups[m.group(1)] = (m.group(2), [entry] + links)
    return groups


def fixture_sources(extract):
    view = os.path.join(extract, "view")
    libdir, bindir = os.path.join(view, "lib"), os.path.join(view, "bin")
    if not os.path.isdir(libdir) or not os.path.isdir(bindir):
        die(f"{extract}: no view/lib and view/bin")
    groups = lib_groups(libdir)
    bins = sorted(os.listdir(bindir))
    sources = []

    def lib_files(stem):
        return [(f"lib/{f}", os.path.join(libdir, f))
                for f in groups.pop(stem)[1]]

    if "slurm" in groups:
        files = lib_files("slurm")
        extra = os.path.join(libdir, "libslurm.so")
        if os.path.lexists(extra):
            files.append(("lib/libslurm.so", extra))
        plug = os.path.join(libdir, "slurm")
        if os.path.isdir(plug):
            files += [(f"lib/slurm/{f}", os.path.join(plug, f))
                      for f in sorted(os.listdir(plug))]
        files += [(f"bin/{b}", os.path.join(bindir, b)) for b in bins
                  if b.startswith("s")]
        sources.append(Source("slurm", "22.05", files))
    if "munge" in groups:
        version = groups["munge"][0]
        files = lib_files("munge")
        files += [(f"bin/{b}", os.path.join(bindir, b)) for b in bins
                  if b in ("munge", "remunge", "unmunge")]
        sources.append(Source("munge", version, files))
    for stem in sorted(groups):
        version = groups[stem][0]
        sources.append(Source(NAMES.get(stem, stem), version,
                              lib_files(stem)))
    return sources


def bump(version, k):
    """The k-th further version of version: its last number plus k."""
    parts = version.split(".")
    if parts[-1].isdigit():
        parts[-1] = str(int(parts[-1]) + k)
        return ".".join(parts)
    return f"{version}.{k}"


class Package:
    def __init__(self, src, version, target, layout):
        self.src, self.name, self.version = src, src.name, version
        self.target = target  # a string or an archspec object
        tname = target if isinstance(target, str) else target["name"]
        self.target_name = tname
        self.hash = b32hash(f"{self.name}@{version} {tname} {layout}")
        self.package_hash = b32hash(f"package.py of {self.name}")
        if layout == "v3":
            rel = f"{PLATFORM}-{tname}/{self.name}-{version}-{self.hash}"
        else:
            rel = (f"{PLATFORM}-{OS}-{tname}/{COMPILER['name']}-"
                   f"{COMPILER['version']}/{self.name}-{version}-{self.hash}")
        self.relative_prefix = rel
        self.prefix = f"{ROOT}/{rel}"
        self.files = src.files  # (relative path, real path) pairs
        self.reloc = None  # --spack-rpath: what binary_distribution lists
        self.tarball = b""
        self.blob_path = ""  # relative to the mirror root

    @property
    def dirname(self):
        return f"{self.name}-{self.version}-{self.hash[:7]}"

    def node(self, layout):
        """The spec node (node_dict_with_hashes) of format v4 (Spack
        0.22, with a compiler) or v5 (Spack 1.0, compilers are
        dependencies: no compiler key)."""
        node = {
            "name": self.name,
            "version": self.version,
            "arch": {"platform": PLATFORM, "platform_os": OS,
                     "target": self.target},
        }
        if layout == "v2":
            node["compiler"] = dict(COMPILER)
        node["namespace"] = "builtin"
        node["parameters"] = {
            "build_system": "generic", "cflags": [], "cppflags": [],
            "cxxflags": [], "fflags": [], "ldflags": [], "ldlibs": [],
        }
        node["package_hash"] = self.package_hash
        if layout == "v3":
            node["annotations"] = {"original_specfile_version": 5}
        node["hash"] = self.hash
        return node

    def spec_dict(self, layout):
        return {"spec": {"_meta": {"version": 5 if layout == "v3" else 4},
                         "nodes": [self.node(layout)]}}


def make_packages(sources, n, arch_twice, layout):
    if not sources:
        die("the fixture gives no packages")
    pkgs, k = [], 0
    count = n if n else len(sources)
    while len(pkgs) < count:
        for src in sources:
            if len(pkgs) == count:
                break
            version = src.version if k == 0 else bump(src.version, k)
            pkgs.append(Package(src, version, TARGET, layout))
        k += 1
    if arch_twice:
        first = pkgs[0]
        pkgs.append(Package(first.src, first.version, TARGET2, layout))
    return pkgs


# ---- --spack-rpath: packages as Spack builds them, to be relocated ----

def is_elf(path):
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def run_patchelf(args):
    res = subprocess.run(["patchelf"] + args, capture_output=True,
                         check=False)
    if res.returncode != 0:
        die(f"patchelf {' '.join(args)}: "
            f"{res.stderr.decode(errors='replace')}")


def stage_file(stage, rel, data, mode):
    path = os.path.join(stage, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def spack_elf(stage, rel, real, rpath, strings):
    """A copy of real with rpath as its RPATH and strings appended as C
    strings (as compilers embed prefixes)."""
    path = os.path.join(stage, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(real, path)
    os.chmod(path, 0o755 if os.lstat(real).st_mode & 0o100 else 0o644)
    run_patchelf(["--force-rpath", "--set-rpath", rpath, path])
    with open(path, "ab") as f:
        for s in strings:
            f.write(s.encode("utf-8") + b"\0")
    return path


def pc_text(pkg, dep):
    p, d = pkg.prefix, dep.prefix
    return (f"prefix={p}\n"
            "exec_prefix=${prefix}\n"
            "libdir=${exec_prefix}/lib\n"
            f"includedir={p}/include\n"
            f"dep_libdir={d}/lib\n\n"
            f"Name: {pkg.name}\n"
            f"Description: {pkg.name} built by Spack (sffs test data)\n"
            f"Version: {pkg.version}\n"
            f"Libs: -L{p}/lib -Wl,-rpath,{p}/lib -L{d}/lib "
            f"-Wl,-rpath,{d}/lib\n"
            f"Cflags: -I{p}/include\n"
            f"# built in {ROOT}/.spack-db with {SPACK_PREFIX}\n")


def config_text(pkg):
    return (f"#!/bin/bash {SPACK_PREFIX}/bin/sbang\n"
            "#!/bin/bash\n"
            f"# sbang is {ROOT}/bin/sbang\n"
            f"prefix={pkg.prefix}\n"
            'echo "$prefix"\n')


def spackify(pkg, deps, stage, extra):
    """Stages pkg's files in stage as Spack's build leaves them (see
    --spack-rpath) and records what binary_distribution lists."""
    files = list(pkg.files) + extra
    dep = deps[0] if deps else pkg
    rpath = ":".join([f"{pkg.prefix}/lib"] + [f"{d.prefix}/lib" for d in deps])
    strings = [f"{pkg.prefix}/share/{pkg.name}/{pkg.name}.conf", pkg.prefix,
               f"{dep.prefix}/lib", f"{ROOT}/.spack-db"]
    out, binaries, firstlib = [], [], None
    for rel, real in files:
        if is_elf(real):
            real = spack_elf(stage, rel, real, rpath, strings)
            binaries.append(rel)
            if firstlib is None and re.match(r"^lib/[^/]+$", rel):
                firstlib = rel
        out.append((rel, real))
    if firstlib is None:
        die(f"--spack-rpath: {pkg.name} has no library for its symlink")
    pc, cfg = f"lib/pkgconfig/{pkg.name}.pc", f"bin/{pkg.name}-config"
    out.append((pc, stage_file(stage, pc, pc_text(pkg, dep).encode(), 0o644)))
    out.append((cfg, stage_file(stage, cfg, config_text(pkg).encode(), 0o755)))
    link = f"lib/lib{pkg.name}-abs.so"
    os.symlink(f"{pkg.prefix}/{firstlib}", os.path.join(stage, link))
    out.append((link, os.path.join(stage, link)))
    pkg.files = out
    pkg.reloc = {"binaries": binaries, "textfiles": [pc, cfg],
                 "links": [link], "deps": deps}


def spackify_all(pkgs, stage_root, extract):
    """Every other package is a dependency of each package."""
    full = os.path.join(extract, "view/lib/libslurmfull.so")
    for i, pkg in enumerate(pkgs):
        deps = pkgs[i + 1:] + pkgs[:i]
        extra = []
        if pkg.name == "slurm" and os.path.isfile(full) and not any(
                rel == "lib/libslurmfull.so" for rel, _ in pkg.files):
            extra.append(("lib/libslurmfull.so", full))
        spackify(pkg, deps, os.path.join(stage_root, str(i)), extra)


# ---- tarballs ----

def tar_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def tar_entry(tar, name, real):
    info = tarfile.TarInfo(name)
    if os.path.islink(real):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(real)
        info.mode = 0o755
        tar.addfile(info)
        return
    with open(real, "rb") as f:
        data = f.read()
    info.type = tarfile.REGTYPE
    info.mode = 0o755 if os.lstat(real).st_mode & 0o100 else 0o644
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def tree_of(pkg, layout):
    """{directory (relative to the prefix, "" the prefix): {entry name:
    real path, or None for a subdirectory}}: the prefix as installed,
    without .spack/binary_distribution (added last, as Spack does)."""
    tree = {"": {}}
    entries = list(pkg.files) + [(".spack/spec.json", None)]
    for rel, real in entries:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent, child = "/".join(parts[:i - 1]), parts[i - 1]
            tree.setdefault(parent, {})[child] = None
            tree.setdefault("/".join(parts[:i]), {})
        tree["/".join(parts[:-1])][parts[-1]] = real if real else ":spec"
    return tree


def buildinfo_yaml(pkg):
    """get_buildinfo_dict, dumped in YAML flow style."""
    reloc = pkg.reloc or {
        "binaries": [rel for rel, real in pkg.files
                     if not os.path.islink(real)],
        "textfiles": [], "links": [], "deps": []}
    hashes = [f"{pkg.hash}: {pkg.prefix}"]
    hashes += [f"{d.hash}: {d.prefix}" for d in reloc["deps"]]

    def lst(items):
        return "[" + ", ".join(items) + "]"

    return ("{sbang_install_path: " + ROOT + "/bin/sbang, "
            "buildpath: " + ROOT + ", "
            "spackprefix: " + SPACK_PREFIX + ", "
            "relative_prefix: " + pkg.relative_prefix + ", "
            "relocate_textfiles: " + lst(reloc["textfiles"]) + ", "
            "relocate_binaries: " + lst(reloc["binaries"]) + ", "
            "relocate_links: " + lst(reloc["links"]) + ", "
            "hardlinks_deduped: true, "
            "hash_to_prefix: {" + ", ".join(hashes) + "}}\n")


def make_tarball(pkg, layout):
    tree = tree_of(pkg, layout)
    spec_json = compact(pkg.spec_dict(layout)).encode("utf-8")
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=6, mtime=0,
                       fileobj=raw) as gzf:
        with tarfile.TarFile(name=None, mode="w", fileobj=gzf) as tar:
            top = pkg.prefix.lstrip("/")
            parts = top.split("/")
            for i in range(1, len(parts)):
                tar_dir(tar, "/".join(parts[:i]))
            stack = [""]
            while stack:
                d = stack.pop()
                tar_dir(tar, f"{top}/{d}" if d else top)
                subdirs = []
                for entry in sorted(tree[d]):
                    rel = f"{d}/{entry}" if d else entry
                    real = tree[d][entry]
                    if real is None:
                        subdirs.append(rel)
                    elif real == ":spec":
                        info = tarfile.TarInfo(f"{top}/{rel}")
                        info.size, info.mode = len(spec_json), 0o644
                        tar.addfile(info, io.BytesIO(spec_json))
                    else:
                        tar_entry(tar, f"{top}/{rel}", real)
                stack.extend(reversed(subdirs))
            if WRITABLE_DIR:  # as Pyxis' share/enroot/enroot-data
                info = tarfile.TarInfo(f"{top}/{WRITABLE_DIR}")
                info.type, info.mode = tarfile.DIRTYPE, 0o777
                tar.addfile(info)
            bi = buildinfo_yaml(pkg).encode("utf-8")
            info = tarfile.TarInfo(f"{top}/.spack/binary_distribution")
            info.size, info.mode = len(bi), 0o644
            tar.addfile(info, io.BytesIO(bi))
    pkg.tarball = raw.getvalue()


# ---- writing the mirror ----

def write(out, rel, data):
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return path


def blob_rel(sha):
    return f"blobs/sha256/{sha[:2]}/{sha}"


def put_blob(out, data):
    sha = sha256_bytes(data)
    write(out, blob_rel(sha), data)
    return sha


def record(data_len, mt, compression, sha):
    return {"contentLength": data_len, "mediaType": mt,
            "compression": compression, "checksumAlgorithm": "sha256",
            "checksum": sha}


class Gpg:
    def __init__(self, home):
        self.home = home

    def run(self, *args, data=None):
        cmd = ["gpg", "--batch", "--yes", "--quiet"]
        if self.home:
            cmd += ["--homedir", self.home]
        res = subprocess.run(cmd + list(args), input=data,
                             capture_output=True, check=False)
        if res.returncode != 0:
            die(f"gpg {' '.join(args)}: {res.stderr.decode(errors='replace')}")
        return res.stdout

    def clearsign(self, fpr, text):
        return self.run("--local-user", fpr, "--armor", "--clearsign",
                        data=text.encode("utf-8")).decode("utf-8")

    def export(self, fpr):
        key = self.run("--armor", "--export", fpr)
        if not key:
            die(f"gpg has no public key {fpr}")
        return key


def sign_for(pkg, args, untrusted):
    if args.sign_with_untrusted and pkg is untrusted:
        return args.sign_with_untrusted
    return args.sign_with


def tamper(signed, old_sha):
    """The signed text with old_sha's first digit changed."""
    i = signed.find(old_sha)
    if i < 0:
        die("tamper: the checksum is not in the signed text")
    c = "1" if signed[i] != "1" else "2"
    return signed[:i] + c + signed[i + 1:]


def finish_text(pkg, text, args, gpg, untrusted, sha):
    fpr = sign_for(pkg, args, untrusted)
    if fpr:
        text = gpg.clearsign(fpr, text)
    if args.tamper_manifest == pkg.name and pkg is first_named(
            args.pkgs, pkg.name):
        text = tamper(text, sha)
    return text


def first_named(pkgs, name):
    for p in pkgs:
        if p.name == name:
            return p
    return None


def flip(data):
    mid = len(data) // 2
    return data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]


def v3_blobs(out, pkg):
    """pkg's tarball and spec blobs written under blobs/; returns the
    tarball's sha256 and the (unsigned) spec manifest naming both."""
    make_tarball(pkg, "v3")
    tsha = put_blob(out, pkg.tarball)
    pkg.blob_path = blob_rel(tsha)
    sd = pkg.spec_dict("v3")
    sd["buildcache_layout_version"] = 2
    spec_blob = gz(compact(sd).encode("utf-8"))
    ssha = put_blob(out, spec_blob)
    return tsha, {"version": 3, "data": [
        record(len(pkg.tarball), MT_TARBALL, "gzip", tsha),
        record(len(spec_blob), MT_SPEC, "gzip", ssha)]}


def write_v3(out, pkgs, args, gpg, untrusted):
    write(out, "v3/layout.json", json.dumps({"signing": "gpg"}))
    db = {}
    for pkg in pkgs:
        tsha, man = v3_blobs(out, pkg)
        text = finish_text(pkg, manifest_text(man), args, gpg, untrusted,
                           tsha)
        write(out, f"v3/manifests/spec/{pkg.name}/{pkg.name}-"
              f"{pkg.version}-{pkg.hash}.spec.manifest.json", text)
        if args.flip_blob == pkg.name and pkg is first_named(pkgs, pkg.name):
            write(out, pkg.blob_path, flip(pkg.tarball))
        db[pkg.hash] = {"spec": pkg.node("v3"), "ref_count": 0,
                        "in_buildcache": True}
    index = compact({"database": {"version": "8", "installs": db}})
    isha = put_blob(out, index.encode("utf-8"))
    write(out, "v3/manifests/index/index.manifest.json", manifest_text(
        {"version": 3, "data": [record(len(index.encode("utf-8")),
                                       MT_INDEX, "none", isha)]}))
    for fpr in signing_keys(args):
        key = gpg.export(fpr)
        ksha = put_blob(out, key)
        write(out, f"v3/manifests/key/{fpr}.key.manifest.json",
              manifest_text({"version": 3, "data": [
                  record(len(key), MT_KEY, "none", ksha)]}))
    keys = signing_keys(args)
    if keys:
        kidx = compact({"keys": {f: {} for f in sorted(keys)}}).encode()
        kisha = put_blob(out, kidx)
        write(out, "v3/manifests/key/keys.manifest.json", manifest_text(
            {"version": 3, "data": [record(len(kidx), MT_KEY_INDEX, "none",
                                           kisha)]}))


def v2_name(pkg):
    return (f"{PLATFORM}-{OS}-{pkg.target_name}-{COMPILER['name']}-"
            f"{COMPILER['version']}-{pkg.name}-{pkg.version}-{pkg.hash}")


def write_v2(out, pkgs, args, gpg, untrusted):
    db = {}
    for pkg in pkgs:
        make_tarball(pkg, "v2")
        tsha = sha256_bytes(pkg.tarball)
        pkg.blob_path = (
            f"build_cache/{PLATFORM}-{OS}-{pkg.target_name}/"
            f"{COMPILER['name']}-{COMPILER['version']}/"
            f"{pkg.name}-{pkg.version}/{v2_name(pkg)}.spack")
        data = pkg.tarball
        if args.flip_blob == pkg.name and pkg is first_named(pkgs, pkg.name):
            data = flip(data)
        write(out, pkg.blob_path, data)
        sd = pkg.spec_dict("v2")
        sd["buildcache_layout_version"] = 2
        sd["binary_cache_checksum"] = {"hash_algorithm": "sha256",
                                       "hash": tsha}
        text = finish_text(pkg, manifest_text(sd), args, gpg, untrusted,
                           tsha)
        signed = bool(sign_for(pkg, args, untrusted))
        write(out, f"build_cache/{v2_name(pkg)}.spec.json"
              + (".sig" if signed else ""), text)
        db[pkg.hash] = {"spec": pkg.node("v2"), "ref_count": 0,
                        "in_buildcache": True}
    index = compact({"database": {"version": "7", "installs": db}})
    write(out, "build_cache/index.json", index)
    write(out, "build_cache/index.json.hash",
          sha256_bytes(index.encode("utf-8")))
    keys = signing_keys(args)
    for fpr in keys:
        write(out, f"build_cache/_pgp/{fpr}.pub", gpg.export(fpr))
    if keys:
        write(out, "build_cache/_pgp/index.json",
              compact({"keys": {f: {} for f in sorted(keys)}}))


# ---- a real mirror's database and names (--from-spack) ----

class SpackPackage(Package):
    """A package of a real mirror's database: its node and the names its
    files have in that mirror, with the fixture's src files."""

    def __init__(self, src, key, installs, files, layout):
        node = installs[key]["spec"]
        self.src, self.name = src, node["name"]
        self.version, self.hash = node["version"], key
        t = node["arch"]["target"]
        self.target_name = t if isinstance(t, str) else t["name"]
        self.nodes = closure(key, installs)
        self.tarball, self.blob_path = b"", ""
        self.v2_spack = one_of(files, f"-{key}.spack")
        self.v2_spec = one_of(files, f"-{key}.spec.json")
        # build_cache/<arch>/<compiler>/<name>-<ver>/<file>.spack
        parts = self.v2_spack.split("/")
        self.relative_prefix = (f"{parts[1]}/{parts[2]}/"
                                f"{self.name}-{self.version}-{key}")
        if layout == "v3":
            self.relative_prefix = (f"{parts[1]}/"
                                    f"{self.name}-{self.version}-{key}")
        self.prefix = f"{PLACEHOLDER_ROOT}/{self.relative_prefix}"
        self.files, self.reloc = src.files, None

    def node(self, layout):
        return self.nodes[0]

    def spec_dict(self, layout):
        return {"spec": {"_meta": {"version": 5}, "nodes": self.nodes}}


def closure(key, installs):
    """The nodes of key's DAG in the index: key first, then each
    dependency once, breadth first."""
    order, seen = [key], {key}
    i = 0
    while i < len(order):
        for dep in installs[order[i]]["spec"].get("dependencies", []):
            if dep["hash"] in installs and dep["hash"] not in seen:
                seen.add(dep["hash"])
                order.append(dep["hash"])
        i += 1
    return [installs[h]["spec"] for h in order]


def one_of(files, suffix):
    hits = [f for f in files if f.endswith(suffix)]
    if len(hits) != 1:
        die(f"--from-spack: {len(hits)} files end in {suffix}")
    return hits[0]


def spack_packages(mirror, sources, layout):
    """(the index text, the packages) of the real mirror copy."""
    with open(os.path.join(mirror, "build_cache/index.json")) as f:
        index = f.read()
    with open(os.path.join(mirror, "FILES")) as f:
        files = [line.strip() for line in f if line.strip()]
    installs = json.loads(index)["database"]["installs"]
    small = [s for s in sources if s.name != "slurm"] or sources
    pkgs = []
    for key, rec in installs.items():
        if rec.get("in_buildcache", True):
            src = small[len(pkgs) % len(small)]
            pkgs.append(SpackPackage(src, key, installs, files, layout))
    return index, pkgs


def write_spack_v2(out, index, pkgs, args, gpg):
    for pkg in pkgs:
        make_tarball(pkg, "v2")
        pkg.blob_path = pkg.v2_spack
        write(out, pkg.blob_path, pkg.tarball)
        sd = pkg.spec_dict("v2")
        sd["buildcache_layout_version"] = 2
        sd["binary_cache_checksum"] = {
            "hash_algorithm": "sha256", "hash": sha256_bytes(pkg.tarball)}
        text = manifest_text(sd)
        if args.sign_with:  # Spack's signed name: the same plus ".sig"
            text = gpg.clearsign(args.sign_with, text)
        write(out, pkg.v2_spec + (".sig" if args.sign_with else ""), text)
    write(out, "build_cache/index.json", index)
    write(out, "build_cache/index.json.hash",
          sha256_bytes(index.encode("utf-8")))
    if args.sign_with:
        fpr = args.sign_with
        write(out, f"build_cache/_pgp/{fpr}.pub", gpg.export(fpr))
        write(out, "build_cache/_pgp/index.json",
              compact({"keys": {fpr: {}}}))


def write_spack_v3(out, index, pkgs, args, gpg):
    write(out, "v3/layout.json", json.dumps({"signing": "gpg"}))
    for pkg in pkgs:
        tsha, man = v3_blobs(out, pkg)
        text = manifest_text(man)
        if args.sign_with:
            text = gpg.clearsign(args.sign_with, text)
        write(out, f"v3/manifests/spec/{pkg.name}/{pkg.name}-"
              f"{pkg.version}-{pkg.hash}.spec.manifest.json", text)
    raw = index.encode("utf-8")
    isha = put_blob(out, raw)
    write(out, "v3/manifests/index/index.manifest.json", manifest_text(
        {"version": 3, "data": [record(len(raw), MT_INDEX, "none", isha)]}))
    if args.sign_with:
        key = gpg.export(args.sign_with)
        ksha = put_blob(out, key)
        write(out, f"v3/manifests/key/{args.sign_with}.key.manifest.json",
              manifest_text({"version": 3, "data": [
                  record(len(key), MT_KEY, "none", ksha)]}))


def signing_keys(args):
    """The keys a mirror publishes: the one it was pushed with. An
    untrusted signer's key is not published (trust comes from configured
    fingerprints anyway)."""
    return [args.sign_with] if args.sign_with else []


def main():
    ap = argparse.ArgumentParser(
        description="a Spack buildcache from the fixture's real files")
    ap.add_argument("--fixture", required=True,
                    help="the fixture's extract directory (has view/)")
    ap.add_argument("--out", required=True, help="the mirror root to make")
    ap.add_argument("--layout", choices=("v3", "v2"), required=True)
    ap.add_argument("--sign-with", metavar="FPR")
    ap.add_argument("--gnupghome", metavar="DIR")
    ap.add_argument("--packages", type=int, default=0, metavar="N")
    ap.add_argument("--arch-twice", action="store_true")
    ap.add_argument("--tamper-manifest", metavar="NAME")
    ap.add_argument("--flip-blob", metavar="NAME")
    ap.add_argument("--sign-with-untrusted", metavar="FPR")
    ap.add_argument("--untrusted-name", metavar="NAME")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--from-spack", metavar="MIRROR")
    ap.add_argument("--writable-dir", metavar="REL")
    ap.add_argument("--spack-rpath", action="store_true")
    args = ap.parse_args()
    global WRITABLE_DIR, ROOT
    WRITABLE_DIR = (args.writable_dir or "").strip("/")
    if args.spack_rpath:
        if args.from_spack:
            die("--spack-rpath does not go with --from-spack")
        ROOT = padded_root()

    if args.packages < 0:
        die("--packages must be positive")
    if args.tamper_manifest and not (args.sign_with or
                                     args.sign_with_untrusted):
        die("--tamper-manifest needs a signature to break (--sign-with)")
    sources = fixture_sources(args.fixture)
    if args.from_spack:
        from_spack(args, sources)
        return
    pkgs = make_packages(sources, args.packages, args.arch_twice,
                         args.layout)
    args.pkgs = pkgs
    for opt in ("tamper_manifest", "flip_blob", "untrusted_name"):
        name = getattr(args, opt)
        if name and not first_named(pkgs, name):
            die(f"--{opt.replace('_', '-')}: no package {name}")
    untrusted = None
    if args.sign_with_untrusted:
        untrusted = (first_named(pkgs, args.untrusted_name)
                     if args.untrusted_name else pkgs[-1])
    gpg = Gpg(args.gnupghome)
    if os.path.exists(args.out) and os.listdir(args.out):
        die(f"{args.out} exists and is not empty")
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="make-buildcache.") as stage:
        if args.spack_rpath:
            spackify_all(pkgs, stage, args.fixture)
        if args.layout == "v3":
            write_v3(args.out, pkgs, args, gpg, untrusted)
        else:
            write_v2(args.out, pkgs, args, gpg, untrusted)

    if args.list:
        for p in pkgs:
            print("\t".join([p.dirname, p.blob_path, p.prefix, p.name,
                             p.version, p.hash, p.target_name]))
    total = sum(len(p.tarball) for p in pkgs)
    print(f"make-buildcache: {args.layout} cache in {args.out}: "
          f"{len(pkgs)} packages, {total} tarball bytes, "
          f"{'signed by ' + args.sign_with if args.sign_with else 'unsigned'}"
          + (f", {untrusted.name} signed by {args.sign_with_untrusted}"
             if untrusted else "")
          + (f", {args.tamper_manifest} tampered" if args.tamper_manifest
             else "")
          + (f", {args.flip_blob} blob flipped" if args.flip_blob else ""),
          file=sys.stderr if args.list else sys.stdout)


def from_spack(args, sources):
    """--from-spack (with --sign-with: signed, the key published)."""
    index, pkgs = spack_packages(args.from_spack, sources, args.layout)
    gpg = Gpg(args.gnupghome)
    if os.path.exists(args.out) and os.listdir(args.out):
        die(f"{args.out} exists and is not empty")
    os.makedirs(args.out, exist_ok=True)
    if args.layout == "v3":
        write_spack_v3(args.out, index, pkgs, args, gpg)
    else:
        write_spack_v2(args.out, index, pkgs, args, gpg)
    if args.list:
        for p in pkgs:
            print("\t".join([p.dirname, p.blob_path, p.prefix, p.name,
                             p.version, p.hash, p.target_name]))
    print(f"make-buildcache: {args.layout} cache in {args.out} from "
          f"{args.from_spack}: {len(pkgs)} packages, "
          f"{'signed by ' + args.sign_with if args.sign_with else 'unsigned'}",
          file=sys.stderr if args.list else sys.stdout)


if __name__ == "__main__":
    main()
