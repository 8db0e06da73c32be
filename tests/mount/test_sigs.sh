#!/usr/bin/env bash
# Signatures beyond the header signature (a throwaway GnuPG keyring made
# here):
#   - an index signed the standard way, `gpg --detach-sign --armor
#     X.sfidx`, over the whole file: mounted with a warning, the tree
#     byte-identical, the tarball still read lazily; a whole-file
#     signature over other bytes is refused;
#   - the signature that verified a streamed artifact is kept beside the
#     index in the cache (0600) and checked again before that index is
#     reused: a cached index whose signer record was edited (digest redone),
#     whose kept signature was deleted, whose key is no longer trusted or
#     was revoked is not used; the artifact is indexed again (or refused).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool gpg gpgconf python3

fx=$(fixture_dir)
ref=$fx/extract
name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
tsize=$(stat -c %s "$fx/$name")

step "keys"
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
cleanup_push "gpgconf --homedir '$GNUPGHOME' --kill all"
genkey() { # uid algo: prints the new key's fingerprint
	gpg --batch --quiet --passphrase '' --quick-gen-key "$1" "$2" sign 0 2>/dev/null
	gpg --with-colons --list-keys "$1" 2>/dev/null | awk -F: '/^fpr/ { print $10; exit }'
}
RSA=$(genkey "sffs rsa <rsa@test>" rsa3072)
ED=$(genkey "sffs ed <ed@test>" ed25519)
for k in "$RSA" "$ED"; do
	[[ $k =~ ^[0-9A-F]{40}$ ]] || fail "no key made ($k)"
done
gpg --armor --export "$RSA" "$ED" >"$TEST_TMP/trusted.asc"

step "artifacts"
mkdir -p "$www/whole" "$www/badwhole" "$www/streamed"
for d in whole badwhole streamed; do cp "$fx/$name" "$www/$d/"; done
for d in whole badwhole; do
	"$SFFS_INDEX" -q "$www/$d/$name" -o "$www/$d/$name.sfidx" || fail "sffs-index failed"
	gpg --batch --yes --armor --detach-sign -u "$RSA" -o "$www/$d/$name.sfidx.asc" "$www/$d/$name.sfidx"
done
# badwhole: the last byte of the index (a window) changed after signing
python3 - "$www/badwhole/$name.sfidx" <<'PY' || fail "could not change the index"
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[-1] ^= 1
open(p, "wb").write(b)
PY
gpg --batch --yes --armor --detach-sign -u "$RSA" -o "$www/streamed/$name.asc" "$www/streamed/$name"
nginx_start "$www"

# bytes of the tarball itself (not of its siblings) served so far
tar_bytes() { # dir
	awk -v u="/$1/$name" '$4 == u { n += $2 } END { print n + 0 }' "$NGINX_LOG"
}
# refused dir pattern [opts...]: the mount fails and its log matches
refused() {
	local d=$1 pat=$2 logf=$TEST_TMP/$1.refused.log
	shift 2
	mkdir -p "$TEST_TMP/m-$d"
	if timeout 120 "$SFFS_BIN" "$@" "$NGINX_URL/$d/$name" "$TEST_TMP/m-$d" 2>"$logf"; then
		sffs_unmount "$TEST_TMP/m-$d"
		fail "$d: mounted without a valid signature"
	fi
	grep -q "refused: not verified" "$logf" || fail "$d: no refusal: $(cat "$logf")"
	grep -qE "$pat" "$logf" || fail "$d: refusal does not say '$pat': $(cat "$logf")"
	log "$d: $(grep -m1 'refused' "$logf")"
}

step "an index signed over the whole file"
mnt=$TEST_TMP/mw
mount_fg "$NGINX_URL/whole/$name" "$mnt" "$TEST_TMP/mw.log" \
	-o allow_insecure,cache_dir=none,keyring="$TEST_TMP/trusted.asc"
grep -q "(published index, signed by $RSA)" "$TEST_TMP/mw.log" ||
	fail "not verified by its whole-file signature: $(cat "$TEST_TMP/mw.log")"
grep -q "is signed over the whole file: [0-9]* bytes fetched to verify it; .sffs-index --sign-with KEY. signs the header" \
	"$TEST_TMP/mw.log" || fail "no warning about the whole-file signature: $(cat "$TEST_TMP/mw.log")"
[ "$(grep -c "signed over the whole file" "$TEST_TMP/mw.log")" -eq 1 ] || fail "the warning is not said once"
at_mount=$(tar_bytes whole)
cmp "$mnt/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "sinfo differs"
one_file=$(tar_bytes whole)
log "tarball bytes: $at_mount at mount, $one_file after reading sinfo, of $tsize"
[ "$at_mount" -le $((2 * 4096 + 1)) ] || fail "the mount read $at_mount bytes of the tarball"
[ "$one_file" -lt $((tsize / 2)) ] || fail "reading one file read $one_file of $tsize tarball bytes"
[ "$(nginx_requests "/whole/$name.asc")" -eq 0 ] || fail "the tarball's signature was fetched"
bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" || fail "the whole-file signed mount differs"
sffs_unmount "$mnt"
refused badwhole "bad signature.*over the index header and over the whole index" \
	-o allow_insecure,cache_dir=none,keyring="$TEST_TMP/trusted.asc"

step "the kept signature of a cached index"
cache=$TEST_TMP/cache
copts=allow_insecure,cache_dir=$cache,keyring=$TEST_TMP/trusted.asc
mount_fg "$NGINX_URL/streamed/$name" "$TEST_TMP/m1" "$TEST_TMP/m1.log" -o "$copts"
grep -q "(indexed, signed by $RSA)" "$TEST_TMP/m1.log" || fail "not verified while streaming: $(cat "$TEST_TMP/m1.log")"
sffs_unmount "$TEST_TMP/m1"
idx=$(ls "$cache"/*.sfidx)
[ -f "$idx.asc" ] || fail "no signature kept beside $idx: $(ls -la "$cache")"
[ "$(stat -c %a "$idx.asc")" = 600 ] || fail "kept signature has mode $(stat -c %a "$idx.asc")"
cmp "$idx.asc" "$www/streamed/$name.asc" || fail "the kept signature is not the artifact's"
mount_fg "$NGINX_URL/streamed/$name" "$TEST_TMP/m2" "$TEST_TMP/m2.log" -o "$copts"
grep -q "(cache, signed by $RSA)" "$TEST_TMP/m2.log" || fail "cached index not reused: $(cat "$TEST_TMP/m2.log")"
sffs_unmount "$TEST_TMP/m2"

# reindexed N pattern: the cached index is not used (the log says why),
# the artifact is indexed again and served as GNU tar extracts it
reindexed() {
	local n=$1 pat=$2 logf=$TEST_TMP/r$1.log
	mount_fg "$NGINX_URL/streamed/$name" "$TEST_TMP/r$n" "$logf" -o "$copts"
	grep -qE "$pat" "$logf" || fail "cached index used, or not saying '$pat': $(cat "$logf")"
	grep -q "(indexed, signed by $RSA)" "$logf" || fail "not indexed again: $(cat "$logf")"
	log "$(grep -m1 -E "$pat" "$logf")"
	bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$TEST_TMP/r$n" "$ref" || fail "reindexed mount $n differs"
	sffs_unmount "$TEST_TMP/r$n"
	[ -f "$idx.asc" ] || fail "no signature kept after indexing again"
}

# the record names another trusted key, its digest redone: only the kept
# signature tells
old=$(python3 "$SFFS_SRC/tests/lib/sfidx-signer.py" "$idx" "openpgp:$ED") || fail "cannot edit the signer"
[ "$old" = "openpgp:$RSA" ] || fail "the cached record was $old"
reindexed 1 "its record names key $ED, the signature kept at .* key $RSA"
[ "$(python3 "$SFFS_SRC/tests/lib/sfidx-signer.py" "$idx" "openpgp:$RSA")" = "openpgp:$RSA" ] ||
	fail "indexing again did not restore the record"
rm "$idx.asc"
reindexed 2 "no signature kept beside it"
# the kept signature a symlink: not followed
mv "$idx.asc" "$TEST_TMP/kept.asc"
ln -s "$TEST_TMP/kept.asc" "$idx.asc"
reindexed 3 "its signature .*: a symlink"
[ ! -L "$idx.asc" ] || fail "the symlink was left in place"

step "a key no longer trusted, a revoked key"
# another trusted fingerprint: the record's key is not trusted now
refused streamed "cached index: .*built from an artifact verified by openpgp:$RSA, a key not trusted now" \
	-o "$copts",trust="$ED"
# RSA revoked: its fingerprint still trusted, so only the kept
# signature's check says so (and the streaming pass refuses too)
sed 's/^:-----BEGIN/-----BEGIN/' "$GNUPGHOME/openpgp-revocs.d/$RSA.rev" >"$TEST_TMP/rsa.rev"
gpg --batch --quiet --import "$TEST_TMP/rsa.rev" 2>/dev/null
gpg --armor --export "$RSA" "$ED" >"$TEST_TMP/revoked.asc"
refused streamed "cached index: .*its signature .*: key $RSA was revoked" \
	-o allow_insecure,cache_dir="$cache",keyring="$TEST_TMP/revoked.asc"
