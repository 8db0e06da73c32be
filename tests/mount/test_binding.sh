#!/usr/bin/env bash
# Signatures bound to names (index format 3.1) and rollback refusal, under
# -o trust= with a throwaway GnuPG key:
#   - an index signed with `sffs-index --sign-with` for one version's file
#     name is accepted under that name and refused under another version's
#     name (tarball, index, index signature and a tarball .asc all copied
#     there), the log naming both names; no other way serves it;
#   - a signed index of format 3.0 (no binding) is accepted with a warning;
#   - a catalog refuses an index signed for another version (its
#     --version) under the right file name;
#   - rollback: after a build published later was attached, an older
#     signed build under the same name is refused (published index, by its
#     --published time; streaming pass, by its .asc's creation time), with
#     both times, and accepted with -o allow_rollback.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool gpg gpgconf python3 gzip

fx=$(fixture_dir)
ref=$fx/extract
www=$TEST_TMP/www
old=slurm-24.11-bookworm-software.tar.gz
new=slurm-25.05-bookworm-software.tar.gz
T_OLD=1700000000 # 2023-11-14T22:13:20Z
T_NEW=1750000000 # 2025-06-15T15:06:40Z

step "key and builds"
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
cleanup_push "gpgconf --homedir '$GNUPGHOME' --kill all"
past='--faked-system-time=20200101T000000!'
# made in 2020, so that it can sign "in 2024" below
gpg --batch --quiet --passphrase '' "$past" --quick-gen-key "sffs bind <bind@test>" ed25519 sign 0 2>/dev/null
KEY=$(gpg --with-colons --list-keys "bind@test" | awk -F: '/^fpr/ { print $10; exit }')
[[ $KEY =~ ^[0-9A-F]{40}$ ]] || fail "no key made ($KEY)"
gpg --armor --export "$KEY" >"$TEST_TMP/key.asc"
# Two builds of the same tree: B is the fixture, A (older) the same tar
# compressed again, so other bytes and another SHA-256.
builds=$TEST_TMP/builds
mkdir -p "$builds"
cp "$fx/$FIXTURE_NAME.tar.gz" "$builds/B.tar.gz"
gzip -dc "$fx/$FIXTURE_NAME.tar.gz" | gzip -1 >"$builds/A.tar.gz"
cmp -s "$builds/A.tar.gz" "$builds/B.tar.gz" && fail "the two builds are the same bytes"

# publish BUILD DIR NAME [sffs-index options...]: BUILD as DIR/NAME with an
# index signed over its header (atomically replacing what was there)
publish() {
	local build=$1 d=$www/$2 n=$3
	shift 3
	mkdir -p "$d"
	cp "$builds/$build.tar.gz" "$d/.$n.tmp"
	"$SFFS_INDEX" -q "$d/.$n.tmp" -o "$d/.$n.sfidx.tmp" --name "$n" --sign-with "$KEY" "$@" 2>/dev/null ||
		fail "sffs-index --sign-with failed ($build as $n)"
	mv "$d/.$n.sfidx.tmp.asc" "$d/$n.sfidx.asc"
	mv "$d/.$n.sfidx.tmp" "$d/$n.sfidx"
	mv "$d/.$n.tmp" "$d/$n"
}
# the tarball's own detached signature, made at gpg's time ARGS say
sign_tarball() { # path [gpg options...]
	local p=$1
	shift
	gpg --batch --yes "$@" --armor --detach-sign -u "$KEY" -o "$p.asc" "$p" 2>/dev/null ||
		fail "gpg could not sign $p"
}

publish A own "$old" --published "$T_OLD"
mkdir -p "$www/swap"
for f in "$old" "$old.sfidx" "$old.sfidx.asc"; do
	cp "$www/own/$f" "$www/swap/${f/$old/$new}"
done
sign_tarball "$www/swap/$new" # valid for those bytes, whatever their name
nginx_start "$www"

opts=allow_insecure,cache_dir=none,keyring=$TEST_TMP/key.asc
# refused_mount URL LOG [options...]: the mount fails and is not there
refused_mount() {
	local url=$1 logf=$2 m=$TEST_TMP/refused
	shift 2
	mkdir -p "$m"
	if timeout 120 "$SFFS_BIN" "$@" "$url" "$m" 2>"$logf"; then
		sffs_unmount "$m"
		fail "$url mounted: $(cat "$logf")"
	fi
	is_mounted "$m" && fail "$url: mounted"
	return 0
}

step "bound to its name: accepted under it"
mount_fg "$NGINX_URL/own/$old" "$TEST_TMP/m1" "$TEST_TMP/m1.log" -o "$opts"
grep -q "published index, signed by $KEY" "$TEST_TMP/m1.log" ||
	fail "not verified by its index: $(cat "$TEST_TMP/m1.log")"
grep -q "not bound to a name" "$TEST_TMP/m1.log" && fail "a bound index said unbound"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$TEST_TMP/m1" "$ref" || fail "the bound mount differs"
sffs_unmount "$TEST_TMP/m1"

step "served under another version's name: refused, naming both"
refused_mount "$NGINX_URL/swap/$new" "$TEST_TMP/swap.log" -o "$opts"
grep -q "index signed for $old but asked for $new" "$TEST_TMP/swap.log" ||
	fail "the refusal does not name both: $(cat "$TEST_TMP/swap.log")"
grep -q "$NGINX_URL/swap/$new refused" "$TEST_TMP/swap.log" || fail "no refusal line: $(cat "$TEST_TMP/swap.log")"
# its valid tarball .asc did not open another way in
[ "$(nginx_requests "/swap/$new.asc")" -eq 0 ] || fail "the streaming pass was tried after the name mismatch"
log "swap: $(grep -m1 'index signed for' "$TEST_TMP/swap.log")"
# the same files under their own name again: accepted
mount_fg "$NGINX_URL/own/$old" "$TEST_TMP/m1b" "$TEST_TMP/m1b.log" -o "$opts"
sffs_unmount "$TEST_TMP/m1b"

step "a signed 3.0 index (no binding): accepted, with a warning"
mkdir -p "$www/unbound"
cp "$www/own/$old" "$www/unbound/$old"
python3 - "$www/own/$old.sfidx" "$www/unbound/$old.sfidx" <<'PY' || fail "could not make a 3.0 index"
import hashlib, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
hlen = struct.unpack_from("<I", b, 12)[0]
assert struct.unpack_from("<HH", b, 8) == (3, 1)
# walk forwards over identity, signer and pages to the binding
idl = struct.unpack_from("<H", b, 392)[0]
at = 394 + idl
at += 2 + struct.unpack_from("<H", b, at)[0]
nb, bpage = struct.unpack_from("<Q", b, 96)[0], struct.unpack_from("<I", b, at)[0]
at += 4 + 32 * ((nb + bpage - 1) // bpage)
blen = hlen - 32 - at                   # the binding's bytes
nlen = hlen - blen
struct.pack_into("<HHI", b, 8, 3, 0, nlen)
for k in range(4):
    off = struct.unpack_from("<Q", b, 168 + 56 * k)[0]
    struct.pack_into("<Q", b, 168 + 56 * k, off - blen)
del b[at:at + blen]
b[nlen - 32:nlen] = hashlib.sha256(b[:nlen - 32]).digest()
open(sys.argv[2], "wb").write(b)
PY
"$SFFS_INDEX" --header "$www/unbound/$old.sfidx" |
	gpg --batch --armor --detach-sign -u "$KEY" -o "$www/unbound/$old.sfidx.asc"
mount_fg "$NGINX_URL/unbound/$old" "$TEST_TMP/m2" "$TEST_TMP/m2.log" -o "$opts"
grep -q "published index, signed by $KEY" "$TEST_TMP/m2.log" ||
	fail "3.0 signed index not used: $(cat "$TEST_TMP/m2.log")"
grep -q "signed but not bound to a name" "$TEST_TMP/m2.log" || fail "no unbound warning: $(cat "$TEST_TMP/m2.log")"
cmp "$TEST_TMP/m2/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs (3.0 index)"
sffs_unmount "$TEST_TMP/m2"

step "catalog: an index signed for another version, under the right file name"
cat_root=$TEST_TMP/catalog
for v in 25.11 26.05; do
	a=$cat_root/$v/noble/slurm-$v-noble-software.tar.gz
	mkdir -p "${a%/*}"
	cp "$builds/B.tar.gz" "$a"
	# 26.05's file, signed as 25.11's
	"$SFFS_INDEX" -q "$a" -o "$a.sfidx" --version 25.11 --toolchain noble --sign-with "$KEY" 2>/dev/null ||
		fail "sffs-index --sign-with failed ($v)"
done
cmnt=$TEST_TMP/cat
mount_fg "file://$cat_root/" "$cmnt" "$TEST_TMP/cat.log" -o "$opts",versions=25.11:26.05,toolchains=noble
cmp "$cmnt/25.11/noble/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "catalog: 25.11 differs"
if ls "$cmnt/26.05/noble/view" >/dev/null 2>"$TEST_TMP/cat.err"; then
	fail "catalog: 26.05 attached with 25.11's signed index"
fi
grep -q "index signed for version 25.11 but asked for version 26.05" "$TEST_TMP/cat.log" ||
	fail "catalog: no version refusal: $(cat "$TEST_TMP/cat.log")"
sffs_unmount "$cmnt"

step "rollback: an older signed index under the same name"
cache=$TEST_TMP/cache
ropts=allow_insecure,cache_dir=$cache,keyring=$TEST_TMP/key.asc
publish B roll "$new" --published "$T_NEW"
mount_fg "$NGINX_URL/roll/$new" "$TEST_TMP/r1" "$TEST_TMP/r1.log" -o "$ropts"
sffs_unmount "$TEST_TMP/r1"
ls "$cache"/rollback-* >/dev/null || fail "no rollback record kept"
[ "$(stat -c %a "$cache"/rollback-*)" = 600 ] || fail "the rollback record is not 0600"
publish A roll "$new" --published "$T_OLD"
refused_mount "$NGINX_URL/roll/$new" "$TEST_TMP/r2.log" -o "$ropts"
grep -q "signed 2023-11-14T22:13:20Z, older than the 2025-06-15T15:06:40Z seen before" "$TEST_TMP/r2.log" ||
	fail "no rollback refusal with both times: $(cat "$TEST_TMP/r2.log")"
grep -q "allow_rollback" "$TEST_TMP/r2.log" || fail "the refusal does not say what to do"
log "rollback: $(grep -m1 'older than' "$TEST_TMP/r2.log")"
mount_fg "$NGINX_URL/roll/$new" "$TEST_TMP/r3" "$TEST_TMP/r3.log" -o "$ropts",allow_rollback
grep -q "a rollback, allowed by -o allow_rollback" "$TEST_TMP/r3.log" || fail "allowed rollback not logged"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$TEST_TMP/r3" "$ref" || fail "the older build differs"
sffs_unmount "$TEST_TMP/r3"
# the newer build again: still accepted
publish B roll "$new" --published "$T_NEW"
mount_fg "$NGINX_URL/roll/$new" "$TEST_TMP/r4" "$TEST_TMP/r4.log" -o "$ropts"
sffs_unmount "$TEST_TMP/r4"

step "rollback: verified by the tarball's .asc alone (its creation time)"
mkdir -p "$www/stream"
cp "$builds/B.tar.gz" "$www/stream/$new"
sign_tarball "$www/stream/$new"
sopts=$ropts,index=none
mount_fg "$NGINX_URL/stream/$new" "$TEST_TMP/s1" "$TEST_TMP/s1.log" -o "$sopts"
grep -q "(indexed, signed by $KEY)" "$TEST_TMP/s1.log" || fail "not verified while streaming: $(cat "$TEST_TMP/s1.log")"
sffs_unmount "$TEST_TMP/s1"
cp "$builds/A.tar.gz" "$www/stream/.$new.tmp"
sign_tarball "$www/stream/.$new.tmp" '--faked-system-time=20240101T000000!'
mv "$www/stream/.$new.tmp.asc" "$www/stream/$new.asc"
mv "$www/stream/.$new.tmp" "$www/stream/$new"
refused_mount "$NGINX_URL/stream/$new" "$TEST_TMP/s2.log" -o "$sopts"
grep -q "signed 2024-01-01T00:00:0[0-9]Z, older than the" "$TEST_TMP/s2.log" ||
	fail "no rollback refusal of the older .asc: $(cat "$TEST_TMP/s2.log")"
mount_fg "$NGINX_URL/stream/$new" "$TEST_TMP/s3" "$TEST_TMP/s3.log" -o "$sopts",allow_rollback
cmp "$TEST_TMP/s3/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs (allowed rollback)"
sffs_unmount "$TEST_TMP/s3"
