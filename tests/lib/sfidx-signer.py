#!/usr/bin/env python3
"""Rewrites the signer field of an .sfidx header (docs/index-format.md) and
its self-digest, so that only a signature can tell:

    sfidx-signer.py FILE NEW_SIGNER

NEW_SIGNER must have the length of the field it replaces (an
"openpgp:<fingerprint>" for another): the header keeps its length and every
section its offset. Prints the old signer."""
import hashlib
import struct
import sys


def main():
    path, new = sys.argv[1], sys.argv[2].encode()
    b = bytearray(open(path, "rb").read())
    if b[:8] != b"SFFSIDX\n":
        sys.exit(f"{path}: not an index")
    hlen = struct.unpack_from("<I", b, 12)[0]
    if hlen > 4096 or hlen > len(b):
        sys.exit(f"{path}: header length {hlen}")
    at = 394 + struct.unpack_from("<H", b, 392)[0]
    if at + 2 > hlen - 32:
        sys.exit(f"{path}: no signer field")
    slen = struct.unpack_from("<H", b, at)[0]
    if slen != len(new) or at + 2 + slen > hlen - 32:
        sys.exit(f"{path}: signer of {slen} bytes, new one {len(new)}")
    print(b[at + 2:at + 2 + slen].decode())
    b[at + 2:at + 2 + slen] = new
    b[hlen - 32:hlen] = hashlib.sha256(b[:hlen - 32]).digest()
    open(path, "wb").write(b)


main()
