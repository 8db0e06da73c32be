#!/usr/bin/env bash
# Signed end to end: with -o trust= / -o keyring=, every artifact served
# traces back to a trusted OpenPGP key (a throwaway GnuPG keyring made
# here: RSA and ed25519 keys, an untrusted one and an expired one).
#   - a signed published index: one more request (INDEX.asc) than an
#     unsigned mount, nothing of the tarball beyond what it reads;
#   - no index: the streaming pass checks the tarball's .asc, and the index
#     it keeps in the cache records the signer (reused only under a key
#     still trusted);
#   - refused, each with its message: an index signed by an untrusted key,
#     a tampered index, no signature, a tarball changed after signing, an
#     expired key; -o verify=off mounts every one of them;
#   - the signer and the verified flag as xattrs; options from a config
#     file; a catalog attaches the signed artifact and refuses the other.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool gpg gpgconf getfattr python3

fx=$(fixture_dir)
ref=$fx/extract
name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
tsize=$(stat -c %s "$fx/$name")

step "keys"
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
cleanup_push "gpgconf --homedir '$GNUPGHOME' --kill all"
genkey() { # uid algo [gpg options...]: prints the new key's fingerprint
	local uid=$1 algo=$2
	shift 2
	gpg --batch --quiet --passphrase '' "$@" --quick-gen-key "$uid" "$algo" sign "${EXPIRE:-0}" 2>/dev/null
	gpg --with-colons --list-keys "$uid" 2>/dev/null | awk -F: '/^fpr/ { print $10; exit }'
}
past='--faked-system-time=20200101T000000!'
RSA=$(genkey "sffs rsa <rsa@test>" rsa3072)
ED=$(genkey "sffs ed <ed@test>" ed25519)
OTHER=$(genkey "someone else <other@test>" ed25519)
OLD=$(EXPIRE=1y genkey "sffs expired <old@test>" ed25519 "$past")
for k in "$RSA" "$ED" "$OTHER" "$OLD"; do
	[[ $k =~ ^[0-9A-F]{40}$ ]] || fail "no key made ($k)"
done
gpg --armor --export "$RSA" "$ED" >"$TEST_TMP/trusted.asc"
gpg --export "$RSA" "$ED" "$OTHER" "$OLD" >"$TEST_TMP/all.gpg" # binary
log "keys: rsa $RSA, ed25519 $ED, untrusted $OTHER, expired $OLD"

step "artifacts"
# dir: the tarball, then what is published beside it
publish() { # dir [index-signer|-] [tarball-signer|-]
	local d=$www/$1
	mkdir -p "$d"
	cp "$fx/$name" "$d/"
	if [ "${2:--}" != - ]; then
		"$SFFS_INDEX" -q "$d/$name" -o "$d/$name.sfidx" --sign-with "$2" 2>/dev/null ||
			fail "sffs-index --sign-with $2 failed"
	fi
	if [ "${3:--}" != - ]; then
		gpg --batch --yes --armor --detach-sign -u "$3" -o "$d/$name.asc" "$d/$name"
	fi
}
publish signed "$RSA" "$RSA"
publish ed "$ED"
publish other "$OTHER"
publish streamed - "$RSA"
publish nosig
"$SFFS_INDEX" -q "$www/nosig/$name" -o "$www/nosig/$name.sfidx"
cp -r "$www/nosig" "$www/plain"
# The expired key signed in 2020, while it was valid.
publish expired
"$SFFS_INDEX" -q "$www/expired/$name" -o "$www/expired/$name.sfidx"
"$SFFS_INDEX" --header "$www/expired/$name.sfidx" |
	gpg --batch "$past" --armor --detach-sign -u "$OLD" -o "$www/expired/$name.sfidx.asc"
# Changed after signing: the same tar, compressed again (no index).
publish changed - "$RSA"
gzip -dc "$fx/$name" | gzip -1 >"$www/changed/$name"
# Tampered: a block digest changed and every digest over it redone, so
# only the signature can tell.
publish tampered "$RSA"
python3 - "$www/tampered/$name.sfidx" <<'PY' || fail "could not tamper with the index"
import hashlib, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
hlen = struct.unpack_from("<I", b, 12)[0]
sec = 168 + 2 * 56                      # BLOCKS
off, ln = struct.unpack_from("<QQ", b, sec)
b[off] ^= 1
b[sec + 24:sec + 56] = hashlib.sha256(b[off:off + ln]).digest()
b[hlen - 32:hlen] = hashlib.sha256(b[:hlen - 32]).digest()
open(p, "wb").write(b)
PY
nginx_start "$www"

# refused dir pattern [opts...]: the mount fails, and says why
refused() {
	local d=$1 pat=$2 logf=$TEST_TMP/$1.refused.log
	shift 2
	mkdir -p "$TEST_TMP/m-$d"
	if timeout 120 "$SFFS_BIN" -o allow_insecure,cache_dir=none,keyring="$TEST_TMP/trusted.asc" "$@" \
		"$NGINX_URL/$d/$name" "$TEST_TMP/m-$d" 2>"$logf"; then
		sffs_unmount "$TEST_TMP/m-$d"
		fail "$d: mounted without a valid signature"
	fi
	is_mounted "$TEST_TMP/m-$d" && fail "$d: mounted"
	grep -q "refused: not verified" "$logf" || fail "$d: no refusal: $(cat "$logf")"
	grep -qE "$pat" "$logf" || fail "$d: refusal does not say '$pat': $(cat "$logf")"
	log "$d: $(grep -m1 'refused' "$logf")"
}
conf=$TEST_TMP/slurm.conf
sinfo_version() {
	printf 'ClusterName=t\nSlurmctldHost=localhost\nPluginDir=%s\n' "$1/view/lib/slurm" >"$conf"
	env -i SLURM_CONF="$conf" timeout 30 "$1/view/bin/sinfo" --version
}

step "signed published index: one more request"
# unsigned, as the baseline
mount_fg "$NGINX_URL/plain/$name" "$TEST_TMP/m0" "$TEST_TMP/m0.log" -o cache_dir=none
sinfo_version "$TEST_TMP/m0" >/dev/null || fail "sinfo failed (unsigned)"
base_req=$(nginx_requests "/plain/")
base_bytes=$(nginx_bytes_sent "/plain/")
sffs_unmount "$TEST_TMP/m0"
mnt=$TEST_TMP/m1
mount_fg "$NGINX_URL/signed/$name" "$mnt" "$TEST_TMP/m1.log" \
	-o allow_insecure,cache_dir=none,trust="$RSA",keyring="$TEST_TMP/all.gpg"
grep -q "published index, signed by $RSA" "$TEST_TMP/m1.log" ||
	fail "not verified by its index: $(cat "$TEST_TMP/m1.log")"
out=$(sinfo_version "$mnt") || fail "sinfo --version failed (signed)"
log "sinfo: $out"
req=$(nginx_requests "/signed/")
bytes=$(nginx_bytes_sent "/signed/")
sig_bytes=$(nginx_bytes_sent "/signed/$name.sfidx.asc")
log "unsigned: $base_req requests, $base_bytes bytes; signed: $req requests, $bytes bytes ($sig_bytes of signature)"
[ "$(nginx_requests "/signed/$name.sfidx.asc")" -eq 1 ] || fail "the index signature was not fetched once"
[ "$(nginx_requests "/signed/$name.asc")" -eq 0 ] || fail "the tarball's signature was fetched too"
[ "$req" -eq $((base_req + 1)) ] || fail "signed mount made $req requests, unsigned $base_req"
[ "$bytes" -le $((base_bytes + sig_bytes + 4096)) ] || fail "signed mount sent $bytes bytes, unsigned $base_bytes"
[ "$(getfattr --absolute-names -n user.sffs.signer --only-values "$mnt")" = "$RSA" ] || fail "user.sffs.signer is not $RSA"
[ "$(getfattr --absolute-names -n user.sffs.verified --only-values "$mnt")" = yes ] || fail "user.sffs.verified is not yes"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" || fail "signed mount differs"
sffs_unmount "$mnt"

step "ed25519, trusted through the operator's keyring"
mount_fg "$NGINX_URL/ed/$name" "$TEST_TMP/m2" "$TEST_TMP/m2.log" \
	-o allow_insecure,cache_dir=none,keyring="$TEST_TMP/trusted.asc"
grep -q "signed by $ED" "$TEST_TMP/m2.log" || fail "ed25519 not verified: $(cat "$TEST_TMP/m2.log")"
cmp "$TEST_TMP/m2/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs (ed25519)"
sffs_unmount "$TEST_TMP/m2"

step "no index: the streaming pass checks the tarball's signature"
cache=$TEST_TMP/cache
mount_fg "$NGINX_URL/streamed/$name" "$TEST_TMP/m3" "$TEST_TMP/m3.log" \
	-o allow_insecure,cache_dir="$cache",keyring="$TEST_TMP/trusted.asc"
grep -q "(indexed, signed by $RSA)" "$TEST_TMP/m3.log" || fail "not verified while streaming: $(cat "$TEST_TMP/m3.log")"
[ "$(getfattr --absolute-names -n user.sffs.signer --only-values "$TEST_TMP/m3")" = "$RSA" ] || fail "no signer xattr (streamed)"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$TEST_TMP/m3" "$ref" || fail "streamed mount differs"
sffs_unmount "$TEST_TMP/m3"
python3 - "$cache"/*.sfidx "$RSA" <<'PY' || fail "the cached index does not record the signer"
import struct, sys
b = open(sys.argv[1], "rb").read(4096)
hlen, idl = struct.unpack_from("<I", b, 12)[0], struct.unpack_from("<H", b, 392)[0]
at = 394 + idl
sl = struct.unpack_from("<H", b, at)[0]
sys.exit(0 if b[at + 2:at + 2 + sl] == b"openpgp:" + sys.argv[2].encode() else 1)
PY
before=$(nginx_bytes_sent "/streamed/")
mount_fg "$NGINX_URL/streamed/$name" "$TEST_TMP/m4" "$TEST_TMP/m4.log" \
	-o allow_insecure,cache_dir="$cache",keyring="$TEST_TMP/trusted.asc"
grep -q "(cache, signed by $RSA)" "$TEST_TMP/m4.log" || fail "cached index not reused: $(cat "$TEST_TMP/m4.log")"
[ $(($(nginx_bytes_sent "/streamed/") - before)) -le $((2 * 4096 + 1)) ] || fail "the cached mount read more than the edges"
sffs_unmount "$TEST_TMP/m4"
# The same cache under another trusted key: the record does not count.
refused streamed "not trusted now" -o allow_insecure,cache_dir="$cache",trust="$ED",keyring="$TEST_TMP/all.gpg"
# Verification off: a cached index from an unverified pass...
mount_fg "$NGINX_URL/nosig/$name" "$TEST_TMP/m5" "$TEST_TMP/m5.log" -o cache_dir="$cache",index=none
sffs_unmount "$TEST_TMP/m5"
# ...is not reused under trust.
refused nosig "unverified artifact" -o cache_dir="$cache",index=none

step "refusals"
refused other "$OTHER|${OTHER: -16}" -o allow_insecure,trust="$RSA:$ED",keyring="$TEST_TMP/all.gpg"
grep -qi "not trusted" "$TEST_TMP/other.refused.log" || fail "untrusted key not named as such"
refused tampered "bad signature|BAD signature|invalid"
refused nosig "no signature at $NGINX_URL/nosig/$name.asc"
refused changed "$NGINX_URL/changed/$name.asc: .*(bad|invalid)"
refused expired "expired" -o allow_insecure,keyring="$TEST_TMP/all.gpg",trust="$OLD"
# an unknown key: signed by OTHER, whose key the node does not have
refused other "unknown key|not found|no key" -o allow_insecure,trust="$RSA"

step "verify=off mounts every one of them"
for d in other tampered nosig changed expired; do
	mount_fg "$NGINX_URL/$d/$name" "$TEST_TMP/off-$d" "$TEST_TMP/off-$d.log" \
		-o allow_insecure,cache_dir=none,keyring="$TEST_TMP/trusted.asc",verify=off
	grep -q "verify=off: serving artifacts without checking" "$TEST_TMP/off-$d.log" ||
		fail "$d: verify=off not logged"
	[ "$(getfattr --absolute-names -n user.sffs.verified --only-values "$TEST_TMP/off-$d")" = no ] || fail "$d: claims verified"
	if [ "$d" = tampered ]; then
		# unsigned, but the block digests still hold: the block whose
		# digest was changed is refused, the rest served
		[ -n "$(ls "$TEST_TMP/off-$d/view/bin")" ] || fail "tampered: nothing listed"
		eio=0
		while IFS= read -r -d '' f; do
			if ! cmp -s "$TEST_TMP/off-$d/$f" "$ref/$f" 2>/dev/null; then
				err=$(cat "$TEST_TMP/off-$d/$f" 2>&1 >/dev/null || true)
				[[ $err == *"Input/output error"* ]] ||
					fail "tampered: $f differs without an error"
				eio=$((eio + 1))
			fi
		done < <(cd "$ref" && find . -type f -print0)
		[ "$eio" -ge 1 ] || fail "tampered: the changed block digest went unnoticed"
		log "tampered, verify=off: $eio files in the changed block gave EIO, the rest served"
	else
		cmp "$TEST_TMP/off-$d/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "$d: sinfo differs (verify=off)"
	fi
	sffs_unmount "$TEST_TMP/off-$d"
done

step "keys offered by a server count only through trust="
mkdir -p "$www/keys"
cp "$TEST_TMP/all.gpg" "$www/keys/all.gpg"
mount_fg "$NGINX_URL/signed/$name" "$TEST_TMP/m7" "$TEST_TMP/m7.log" \
	-o allow_insecure,cache_dir=none,keyring="$NGINX_URL/keys/all.gpg",trust="$RSA"
grep -q "signed by $RSA" "$TEST_TMP/m7.log" || fail "URL keyring unused: $(cat "$TEST_TMP/m7.log")"
sffs_unmount "$TEST_TMP/m7"
mkdir -p "$TEST_TMP/m8"
if "$SFFS_BIN" -o allow_insecure,cache_dir=none,keyring="$NGINX_URL/keys/all.gpg" "$NGINX_URL/signed/$name" \
	"$TEST_TMP/m8" 2>"$TEST_TMP/m8.log"; then
	sffs_unmount "$TEST_TMP/m8"
	fail "keys fetched from a URL were trusted by themselves"
fi
grep -q "no key is trusted" "$TEST_TMP/m8.log" || fail "no reason given: $(cat "$TEST_TMP/m8.log")"
for bad in "trust=0123" "verify=maybe" "verify=require"; do
	if "$SFFS_BIN" -o cache_dir=none,"$bad" "$NGINX_URL/signed/$name" "$TEST_TMP/m8" 2>"$TEST_TMP/m8.log"; then
		sffs_unmount "$TEST_TMP/m8"
		fail "-o $bad accepted"
	fi
	log "-o $bad: $(head -1 "$TEST_TMP/m8.log")"
done

step "options from a config file"
printf '# trust\ntrust=%s\nkeyring=%s\ncache_dir=none\nallow_insecure\n' "$RSA" "$TEST_TMP/all.gpg" >"$TEST_TMP/sffs.conf"
mount_fg "$NGINX_URL/signed/$name" "$TEST_TMP/m6" "$TEST_TMP/m6.log" -o config="$TEST_TMP/sffs.conf"
grep -q "signed by $RSA" "$TEST_TMP/m6.log" || fail "config file trust unused: $(cat "$TEST_TMP/m6.log")"
sffs_unmount "$TEST_TMP/m6"
refused nosig "no signature" -o config="$TEST_TMP/sffs.conf"

step "catalog: the signed artifact attaches, the other is refused"
cat_root=$TEST_TMP/catalog
for v in 25.11 26.05; do mkdir -p "$cat_root/$v/noble"; done
# signed for its catalog name (index 3.1 binds it: the signed index of
# $name would be refused under this name, test_binding.sh)
cat_art=$cat_root/25.11/noble/slurm-25.11-noble-software.tar.gz
ln "$www/signed/$name" "$cat_art"
"$SFFS_INDEX" -q "$cat_art" -o "$cat_art.sfidx" --version 25.11 --toolchain noble --sign-with "$RSA" 2>/dev/null ||
	fail "sffs-index --sign-with failed (catalog)"
ln "$www/nosig/$name" "$cat_root/26.05/noble/slurm-26.05-noble-software.tar.gz"
ln "$www/nosig/$name.sfidx" "$cat_root/26.05/noble/slurm-26.05-noble-software.tar.gz.sfidx"
cmnt=$TEST_TMP/cat
mount_fg "file://$cat_root/" "$cmnt" "$TEST_TMP/cat.log" \
	-o cache_dir=none,versions=25.11:26.05,toolchains=noble,keyring="$TEST_TMP/trusted.asc"
cmp "$cmnt/25.11/noble/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "catalog: signed artifact differs"
[ "$(getfattr --absolute-names -n user.sffs.signer --only-values "$cmnt/25.11/noble")" = "$RSA" ] || fail "catalog: no signer xattr"
if ls "$cmnt/26.05/noble/view" >/dev/null 2>"$TEST_TMP/cat.err"; then
	fail "catalog: an unsigned artifact attached"
fi
grep -q "Key was rejected" "$TEST_TMP/cat.err" || fail "catalog: unexpected error: $(cat "$TEST_TMP/cat.err")"
grep -q "26.05-noble.*refused: not verified: no signature" "$TEST_TMP/cat.log" ||
	fail "catalog: no refusal logged: $(cat "$TEST_TMP/cat.log")"
log "catalog: $(grep -m1 'refused' "$TEST_TMP/cat.log")"
sffs_unmount "$cmnt"

step "transport: plain http:// and -o insecure are refused under trust; https:// is not"
plain=$NGINX_URL
mkdir -p "$TEST_TMP/m9"
for opt in "" ",insecure"; do
	if "$SFFS_BIN" -o cache_dir=none,trust="$RSA",keyring="$TEST_TMP/all.gpg$opt" \
		"$plain/signed/$name" "$TEST_TMP/m9" 2>"$TEST_TMP/m9.log"; then
		sffs_unmount "$TEST_TMP/m9"
		fail "trust over http://$opt mounted without allow_insecure"
	fi
	grep -q "trust over .*: refused" "$TEST_TMP/m9.log" || fail "no reason given: $(cat "$TEST_TMP/m9.log")"
	log "http://$opt: $(head -1 "$TEST_TMP/m9.log")"
done
mount_fg "$plain/signed/$name" "$TEST_TMP/m9" "$TEST_TMP/m9.log" \
	-o cache_dir=none,trust="$RSA",keyring="$TEST_TMP/all.gpg",verify=off
grep -q "unverified" "$TEST_TMP/m9.log" || fail "verify=off over http://: no unverified warning"
sffs_unmount "$TEST_TMP/m9"
NGINX_TLS=1 nginx_start "$www"
mount_fg "$NGINX_URL/signed/$name" "$TEST_TMP/m10" "$TEST_TMP/m10.log" \
	-o cache_dir=none,trust="$RSA",keyring="$TEST_TMP/all.gpg",cafile="$NGINX_CAFILE"
grep -q "signed by $RSA" "$TEST_TMP/m10.log" || fail "https: not verified: $(cat "$TEST_TMP/m10.log")"
if grep -q "trust over" "$TEST_TMP/m10.log"; then fail "https: a transport warning: $(cat "$TEST_TMP/m10.log")"; fi
cmp "$TEST_TMP/m10/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "https: sinfo differs"
sffs_unmount "$TEST_TMP/m10"
