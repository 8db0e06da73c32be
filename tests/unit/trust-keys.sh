#!/usr/bin/env bash
# Makes the OpenPGP material test_trust checks, with real GnuPG, into OUTDIR:
#
#   tests/unit/trust-keys.sh OUTDIR [BENCH_MIB]
#
# Keys (pub-NAME.asc armoured, pub-NAME.gpg binary, fpr-NAME, keyid-NAME):
#   rsa    rsa2048 signing key, no expiry
#   ed     ed25519 signing key, no expiry
#   other  ed25519, never given to the trust set (unknown key)
#   sub    ed25519 certify-only primary with an ed25519 signing subkey
#   exp    ed25519 made in 2020 with a one-year expiry (expired now)
#   rev    ed25519 revoked after signing
# Data: data.bin (random) with data.NAME.asc / data.NAME.sig (armoured /
# binary detached signatures), data.bad (one byte changed), doc.txt
# (lines needing dash escaping) clearsigned as doc.NAME.asc, doc.bad.asc
# (signed text changed), zero.bin (BENCH_MIB MiB of zeros, default 64)
# with zero.ed.sig. The GnuPG home is a short temporary directory (the
# agent's socket path is bounded) removed at the end, agent killed.
set -euo pipefail

out=$1
mib=${2:-64}
mkdir -p "$out"
home=$(mktemp -d /tmp/sffs-gpg.XXXXXX)
cleanup() {
	gpgconf --homedir "$home" --kill all >/dev/null 2>&1 || true
	rm -rf "$home"
}
trap cleanup EXIT

g() { gpg --homedir "$home" --batch --quiet --no-tty --pinentry-mode loopback \
	--passphrase '' "$@"; }

fpr_of() { # uid -> primary fingerprint
	g --with-colons --list-keys "=$1" | awk -F: '$1 == "fpr" {print $10; exit}'
}

gen() { # name algo usage expiry [faked-time]
	local uid="sffs test $1 <$1@sffs.test>"
	g ${5:+--faked-system-time "$5"} --quick-gen-key "$uid" "$2" "$3" "$4"
	fpr_of "$uid" >"$out/fpr-$1"
	cut -c25-40 "$out/fpr-$1" >"$out/keyid-$1"
}

export_key() { # name
	g --export --armor "$(cat "$out/fpr-$1")" >"$out/pub-$1.asc"
	g --export "$(cat "$out/fpr-$1")" >"$out/pub-$1.gpg"
}

sign() { # name [faked-time]
	local f
	f=$(cat "$out/fpr-$1")
	g ${2:+--faked-system-time "$2"} -u "$f" --detach-sign --armor \
		-o "$out/data.$1.asc" "$out/data.bin"
	g ${2:+--faked-system-time "$2"} -u "$f" --detach-sign \
		-o "$out/data.$1.sig" "$out/data.bin"
	g ${2:+--faked-system-time "$2"} -u "$f" --clearsign \
		-o "$out/doc.$1.asc" "$out/doc.txt"
}

rm -f "$out"/*.asc "$out"/*.sig
head -c 300000 /dev/urandom >"$out/data.bin"
# one byte flipped (not set: a random byte may already be the value set,
# 1 time in 256, and then data.bad would verify)
python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[1000] ^= 0xff; open(sys.argv[2], "wb").write(d)' \
	"$out/data.bin" "$out/data.bad"
cmp -s "$out/data.bin" "$out/data.bad" && { echo "data.bad equals data.bin" >&2; exit 1; }
printf '%s\n' 'version: 1' '-- a line with dashes' '- one dash' \
	'From the start' '-----BEGIN PGP not really-----' 'the end' >"$out/doc.txt"

gen rsa rsa2048 sign never
gen ed ed25519 sign never
gen other ed25519 sign never
gen sub ed25519 cert never
g --quick-add-key "$(cat "$out/fpr-sub")" ed25519 sign never
gen exp ed25519 sign 1y 20200101T000000!
gen rev ed25519 sign never

for k in rsa ed other sub; do
	sign "$k"
done
sign exp 20200601T000000!
sign rev
# Revoke rev with the certificate gpg made at generation (its first
# armour line is escaped with ':' so it is not imported by accident).
sed 's/^:-----BEGIN/-----BEGIN/' \
	"$home/openpgp-revocs.d/$(cat "$out/fpr-rev").rev" >"$out/rev.cert"
g --import "$out/rev.cert" 2>/dev/null
for k in rsa ed other sub exp rev; do
	export_key "$k"
done

sed 's/^the end$/the END/' "$out/doc.rsa.asc" >"$out/doc.bad.asc"
head -c "$((mib * 1024 * 1024))" /dev/zero >"$out/zero.bin"
g -u "$(cat "$out/fpr-ed")" --detach-sign -o "$out/zero.ed.sig" "$out/zero.bin"
rm -f "$out/zero.bin"
echo "$mib" >"$out/zero.mib"
