#!/usr/bin/env bash
# Spack buildcaches as browsable, signature-checked trees (-o
# layout=buildcache), from caches made here in both layouts out of the
# fixture's real binaries (tests/lib/make-buildcache.py, signed with a
# throwaway GnuPG key):
#   - every package listed as <name>-<version>-<hash7>/, equal to its
#     install prefix in `tar -xzf` of its blob; the same package built for
#     two targets appears twice; index.json is the database;
#   - listing fetches no package tarball; opening one file of one package
#     fetches that package's blob only;
#   - a tampered manifest, an untrusted signer and an unsigned cache hide
#     the package (or every package) with a log line; a flipped byte in a
#     blob makes that package refuse to attach (its SHA-256 is not the
#     manifest's); -o verify=off lists unsigned caches;
#   - keys are taken from the cache only for trusted fingerprints;
#   - Spack 1.0's own test mirror (its real index.json and file names,
#     tests/data/spack-mirrors), laid out as v2 and v3: all 6 packages,
#     4 of them named after a compiler that is a dependency; its signed
#     copy's real signatures verify under Spack's own test keys;
#   - in a catalog (-o buildcache_base=), MNT/<v>/<tc>/buildcache/ lists
#     the packages of the artifact's three caches (the seed's deps and
#     version paths, the factory's {toolchain}/spack/, all by default), each equal to its blob, released like artifacts.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool gpg gpgconf python3 getfattr

fx=$(fixture_dir)
mk=$SFFS_SRC/tests/lib/make-buildcache.py
www=$TEST_TMP/www
mkdir -p "$www"

step "keys"
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
cleanup_push "gpgconf --homedir '$GNUPGHOME' --kill all"
genkey() {
	gpg --batch --quiet --passphrase '' --quick-gen-key "$1" ed25519 sign 0 2>/dev/null
	gpg --with-colons --list-keys "$1" 2>/dev/null | awk -F: '/^fpr/ { print $10; exit }'
}
KEY=$(genkey "bc test <bc@test>")
OTHER=$(genkey "someone else <other@test>")
[[ $KEY =~ ^[0-9A-F]{40}$ && $OTHER =~ ^[0-9A-F]{40}$ ]] || fail "no keys made"
gpg --export "$KEY" >"$TEST_TMP/key.gpg"

step "buildcaches"
make_cache() { # name layout [options...]: a cache in $www/name, its --list in name.tsv
	local name=$1 layout=$2
	shift 2
	python3 "$mk" --fixture "$fx/extract" --out "$www/$name" --layout "$layout" \
		--gnupghome "$GNUPGHOME" --list "$@" >"$TEST_TMP/$name.tsv" 2>"$TEST_TMP/$name.mk.log" ||
		fail "make-buildcache $name: $(cat "$TEST_TMP/$name.mk.log")"
	log "$name: $(tail -1 "$TEST_TMP/$name.mk.log")"
}
make_cache v3 v3 --sign-with "$KEY" --arch-twice
make_cache v2 v2 --sign-with "$KEY"
make_cache unsigned v3
make_cache bad v3 --sign-with "$KEY" --tamper-manifest zlib --flip-blob lz4 \
	--sign-with-untrusted "$OTHER" --untrusted-name xz
# Spack 1.0's own test mirror: its real database and file names
real=$SFFS_SRC/tests/data/spack-mirrors/v2_layout/unsigned
make_cache spack-v2 v2 --from-spack "$real"
make_cache spack-v3 v3 --from-spack "$real"
make_cache factory v3 --from-spack "$real" --sign-with "$KEY"
make_cache wdir v3 --sign-with "$KEY" --packages 2 --writable-dir share/enroot/enroot-data
nginx_start "$www"

mount_bc() { # url mnt log [opts...]: a buildcache mount in the foreground
	local url=$1 mnt=$2 logf=$3
	shift 3
	mount_fg "$url" "$mnt" "$logf" -o layout=buildcache,cache_dir="$TEST_TMP/cache" "$@"
}

# compare MNT CACHE: every listed package equals its blob's prefix
compare_all() {
	local mnt=$1 name=$2 dir blob prefix rest n=0 x=$TEST_TMP/x
	while IFS=$'\t' read -r dir blob prefix rest; do
		rm -rf "$x" && mkdir -p "$x"
		tar -xzf "$www/$name/$blob" -C "$x"
		[ -f "$x/${prefix#/}/.spack/binary_distribution" ] || fail "$dir: no prefix in its tarball"
		diff -r --no-dereference "$mnt/$dir" "$x/${prefix#/}" >"$TEST_TMP/diff" 2>&1 ||
			fail "$dir differs from its tarball: $(head -5 "$TEST_TMP/diff")"
		cmp "$mnt/$dir/.spack/spec.json" "$x/${prefix#/}/.spack/spec.json" || fail "$dir: spec.json differs"
		n=$((n + 1))
	done <"$TEST_TMP/$name.tsv"
	log "$name: $n packages equal to tar -xzf of their blobs"
}

step "v3: listing fetches no package"
mnt=$TEST_TMP/m3
mount_bc "$NGINX_URL/v3/" "$mnt" "$TEST_TMP/m3.log" -o allow_insecure,trust="$KEY"
npk=$(wc -l <"$TEST_TMP/v3.tsv")
listed=$(ls "$mnt" | grep -vcxE "index.json|modules")
[ "$listed" -eq "$npk" ] || fail "$listed packages listed, the cache has $npk: $(cat "$TEST_TMP/m3.log")"
grep -q "buildcache layout v3, $npk packages verified (0 hidden)" "$TEST_TMP/m3.log" || fail "listing: $(cat "$TEST_TMP/m3.log")"
blobs_listed=$(nginx_requests "/v3/blobs/")
# the index blob, the key blob and (under trust) each package's small spec
# blob, which binds its manifest to its name; no package tarball
tarballs=0
while IFS=$'\t' read -r dir blob rest; do
	tarballs=$((tarballs + $(nginx_requests "/v3/$blob")))
done <"$TEST_TMP/v3.tsv"
[ "$tarballs" -eq 0 ] || fail "listing fetched $tarballs package tarballs"
[ "$blobs_listed" -le $((npk + 2)) ] || fail "listing fetched $blobs_listed blobs for $npk packages"
twice=$(ls "$mnt" | sed 's/-[a-z2-7]\{7\}$//' | sort | uniq -d | head -1)
[ -n "$twice" ] || fail "no package listed twice (two targets)"
log "listed $listed packages; $twice twice"
# index.json is the database blob
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["database"]["installs"] else 1)' "$mnt/index.json" ||
	fail "index.json is not the database"

step "v3: one file of one package fetches that package only"
IFS=$'\t' read -r dir blob prefix rest < <(grep -m1 '^slurm-' "$TEST_TMP/v3.tsv")
drop=$(nginx_requests "/v3/blobs/")
cat "$mnt/$dir/lib/libslurm.so"* >/dev/null 2>&1 || ls "$mnt/$dir/lib" >/dev/null
[ "$(($(nginx_requests "/v3/blobs/") - drop))" -eq "$(nginx_requests "/v3/$blob")" ] ||
	fail "opening one package fetched other blobs"
[ "$(nginx_requests "/v3/$blob")" -ge 1 ] || fail "the package's blob was not fetched"
[ "$(getfattr --absolute-names -n user.sffs.signer --only-values "$mnt/$dir")" = "$KEY" ] || fail "no signer xattr"
compare_all "$mnt" v3
sffs_unmount "$mnt"

step "a signed index published beside a blob is used"
cp -a "$www/v3" "$www/pub"
IFS=$'\t' read -r dir blob prefix rest < <(grep -m1 '^slurm-' "$TEST_TMP/v3.tsv")
"$SFFS_INDEX" -q "$www/pub/$blob" -o "$www/pub/$blob.sfidx" --sign-with "$KEY" 2>/dev/null ||
	fail "sffs-index --sign-with failed"
mount_bc "$NGINX_URL/pub/" "$TEST_TMP/mp" "$TEST_TMP/mp.log" -o allow_insecure,trust="$KEY",cache_dir=none
ls "$TEST_TMP/mp/$dir/lib" >/dev/null || fail "package with a published index does not attach"
grep -q "$dir attached .*(published index" "$TEST_TMP/mp.log" || fail "published index unused: $(cat "$TEST_TMP/mp.log")"
[ "$(nginx_requests "/pub/$blob.sfidx.asc")" -eq 1 ] || fail "the index signature was not fetched"
sffs_unmount "$TEST_TMP/mp"
# an index (validly signed) of another blob is refused: not the manifest's digest
IFS=$'\t' read -r dir2 blob2 rest < <(grep -m1 '^zstd-' "$TEST_TMP/v3.tsv")
cp "$www/pub/$blob.sfidx" "$www/pub/$blob2.sfidx"
cp "$www/pub/$blob.sfidx.asc" "$www/pub/$blob2.sfidx.asc"
mount_bc "$NGINX_URL/pub/" "$TEST_TMP/mp2" "$TEST_TMP/mp2.log" -o allow_insecure,trust="$KEY",cache_dir=none
ls "$TEST_TMP/mp2/$dir2/lib" >/dev/null || fail "$dir2 does not attach"
grep -q "$dir2 attached .*(indexed" "$TEST_TMP/mp2.log" || fail "a foreign index was used: $(cat "$TEST_TMP/mp2.log")"
sffs_unmount "$TEST_TMP/mp2"

step "v2"
mount_bc "$NGINX_URL/v2/" "$TEST_TMP/m2" "$TEST_TMP/m2.log" -o allow_insecure,trust="$KEY"
grep -q "buildcache layout v2, $(wc -l <"$TEST_TMP/v2.tsv") packages verified (0 hidden)" "$TEST_TMP/m2.log" ||
	fail "v2 listing: $(cat "$TEST_TMP/m2.log")"
compare_all "$TEST_TMP/m2" v2
sffs_unmount "$TEST_TMP/m2"

step "refusals"
mount_bc "$NGINX_URL/bad/" "$TEST_TMP/mb" "$TEST_TMP/mb.log" -o allow_insecure,trust="$KEY"
for pkg in zlib xz; do
	if ls "$TEST_TMP/mb" | grep -q "^$pkg-[0-9]"; then
		fail "$pkg listed: $(cat "$TEST_TMP/mb.log")"
	fi
	grep -q "package $pkg-[^ ]* hidden" "$TEST_TMP/mb.log" || fail "$pkg: no log line: $(cat "$TEST_TMP/mb.log")"
	log "$(grep -m1 "package $pkg-" "$TEST_TMP/mb.log")"
done
grep "package zlib-" "$TEST_TMP/mb.log" | grep -qi "bad signature" || fail "tampered manifest: not a bad signature"
grep "package xz-" "$TEST_TMP/mb.log" | grep -qi "unknown key\|not trusted" || fail "untrusted signer: wrong reason"
lz=$(ls "$TEST_TMP/mb" | grep -m1 '^lz4-') || fail "lz4 (flipped blob) not listed"
if ls "$TEST_TMP/mb/$lz/" >/dev/null 2>"$TEST_TMP/lz.err"; then
	fail "a package whose blob was changed attached"
fi
# a flipped byte fails gzip's check, or else the manifest's SHA-256
grep -q "Bad message\|Input/output error" "$TEST_TMP/lz.err" || fail "flipped blob: $(cat "$TEST_TMP/lz.err")"
grep -q "cannot attach $lz" "$TEST_TMP/mb.log" || fail "flipped blob: no log line: $(cat "$TEST_TMP/mb.log")"
grep -q "package $lz hidden: its tarball" "$TEST_TMP/mb.log" || fail "flipped blob: not hidden: $(cat "$TEST_TMP/mb.log")"
if ls "$TEST_TMP/mb" | grep -qx "$lz"; then
	fail "a package whose tarball failed its checks is still listed"
fi
log "flipped blob: $(grep -m1 "$lz\|lz4" "$TEST_TMP/mb.log" | grep -v hidden | head -1)"
sffs_unmount "$TEST_TMP/mb"

step "a blob replaced by another valid tarball: refused by its SHA-256"
cp -a "$www/v3" "$www/swap"
IFS=$'\t' read -r a_dir a_blob rest < <(sed -n 1p "$TEST_TMP/v3.tsv")
IFS=$'\t' read -r b_dir b_blob rest < <(sed -n 2p "$TEST_TMP/v3.tsv")
cp "$www/v3/$b_blob" "$www/swap/$a_blob"
mount_bc "$NGINX_URL/swap/" "$TEST_TMP/ms" "$TEST_TMP/ms.log" -o allow_insecure,trust="$KEY",cache_dir=none
if ls "$TEST_TMP/ms/$a_dir/" >/dev/null 2>"$TEST_TMP/ms.err"; then
	fail "a blob with another SHA-256 than its manifest's was served"
fi
grep -q "Bad message" "$TEST_TMP/ms.err" || fail "swapped blob: $(cat "$TEST_TMP/ms.err")"
grep -q "SHA-256 is not the one its manifest names" "$TEST_TMP/ms.log" || fail "swapped blob: no log line"
if ls "$TEST_TMP/ms" | grep -qx "$a_dir"; then
	fail "a package whose blob is not its manifest's is still listed"
fi
ls "$TEST_TMP/ms/$b_dir/" >/dev/null || fail "the other packages must still attach"
log "swapped blob: $(grep -m1 'manifest names' "$TEST_TMP/ms.log")"
sffs_unmount "$TEST_TMP/ms"

step "unsigned cache: hidden under trust, listed with verify=off"
mount_bc "$NGINX_URL/unsigned/" "$TEST_TMP/mu" "$TEST_TMP/mu.log" -o allow_insecure,trust="$KEY"
[ "$(ls "$TEST_TMP/mu" | grep -vcxE "index.json|modules" || true)" -eq 0 ] || fail "unsigned packages listed under trust"
grep -q "it is not signed" "$TEST_TMP/mu.log" || fail "no reason logged: $(cat "$TEST_TMP/mu.log")"
sffs_unmount "$TEST_TMP/mu"
mount_bc "$NGINX_URL/unsigned/" "$TEST_TMP/mo" "$TEST_TMP/mo.log" -o verify=off
compare_all "$TEST_TMP/mo" unsigned
[ "$(getfattr --absolute-names -n user.sffs.verified --only-values "$TEST_TMP/mo/$(head -1 "$TEST_TMP/unsigned.tsv" | cut -f1)")" = no ] ||
	fail "verify=off package claims verified"
sffs_unmount "$TEST_TMP/mo"

step "Spack 1.0's real mirror: every package listed (compiler as a dependency), equal to its tarball"
for layout in v2 v3; do
	mount_bc "$NGINX_URL/spack-$layout/" "$TEST_TMP/mr$layout" "$TEST_TMP/mr$layout.log" -o verify=off
	grep -q "buildcache layout $layout, 6 packages.* (0 hidden)" "$TEST_TMP/mr$layout.log" ||
		fail "real $layout mirror: $(cat "$TEST_TMP/mr$layout.log")"
	[ "$(ls "$TEST_TMP/mr$layout" | grep -vcxE "index.json|modules")" -eq 6 ] || fail "real $layout mirror: $(ls "$TEST_TMP/mr$layout")"
	for p in libelf-0.8.13-rqh2vuf libelf-0.8.13-jr3yipy libdwarf-20130729-u5uz3dc libdwarf-20130729-sk2gqqz \
		compiler-wrapper-1.0-qeehcxy gcc-runtime-10.2.1-izgzpze; do
		[ -d "$TEST_TMP/mr$layout/$p" ] || fail "real $layout mirror: $p not listed"
	done
	compare_all "$TEST_TMP/mr$layout" "spack-$layout"
	cmp "$TEST_TMP/mr$layout/index.json" "$real/build_cache/index.json" || fail "index.json is not the real database"
	sffs_unmount "$TEST_TMP/mr$layout"
done

step "Spack's real signed mirror: its signatures verify under its own keys"
# verbatim .spec.json.sig files and keys (the tarballs are not copied:
# listing fetches none); Spack signed one package with an older key
cp -a "$SFFS_SRC/tests/data/spack-mirrors/v2_layout/signed" "$www/spack-signed"
SPACK_KEY=CBAB2C1032C6FF5078049EC0FA61D50C12CAD37E
SPACK_OLD=E89D4971F0097B1E7A3EB57371B484802E78D7CD
mount_bc "$NGINX_URL/spack-signed/" "$TEST_TMP/mrs" "$TEST_TMP/mrs.log" -o allow_insecure,trust="$SPACK_KEY:$SPACK_OLD"
grep -q "buildcache layout v2, 6 packages verified (0 hidden)" "$TEST_TMP/mrs.log" ||
	fail "real signed mirror: $(cat "$TEST_TMP/mrs.log")"
[ "$(ls "$TEST_TMP/mrs" | grep -vcxE "index.json|modules")" -eq 6 ] || fail "real signed mirror: $(ls "$TEST_TMP/mrs")"
[ -d "$TEST_TMP/mrs/libdwarf-20130729-sk2gqqz" ] || fail "the package Spack's older key signed is not listed"
sffs_unmount "$TEST_TMP/mrs"
# trusting only the current key hides the one the older key signed
mount_bc "$NGINX_URL/spack-signed/" "$TEST_TMP/mrs1" "$TEST_TMP/mrs1.log" -o allow_insecure,trust="$SPACK_KEY"
grep -q "buildcache layout v2, 5 packages verified (1 hidden)" "$TEST_TMP/mrs1.log" ||
	fail "one key trusted: $(cat "$TEST_TMP/mrs1.log")"
grep -q "package libdwarf-20130729-sk2gqqz hidden" "$TEST_TMP/mrs1.log" || fail "no log line for the hidden package"
[ ! -e "$TEST_TMP/mrs1/libdwarf-20130729-sk2gqqz" ] || fail "a package signed by an untrusted key is listed"
sffs_unmount "$TEST_TMP/mrs1"

step "catalog: MNT/<version>/<toolchain>/buildcache/ from the artifact's three caches"
cat=$www/catalog
mkdir -p "$cat/25.11/noble" "$www/bcbase/noble/slurm"
name=$FIXTURE_NAME.tar.gz
art=$cat/25.11/noble/slurm-25.11-noble-software.tar.gz
cp "$fx/$name" "$art"
"$SFFS_INDEX" -q "$art" -o "$art.sfidx" --sign-with "$KEY" 2>/dev/null || fail "sffs-index --sign-with failed"
# the seed's two places: deps (here the v3 cache) and the version's (v2)
mkdir -p "$www/bcbase/noble/slurm/deps" "$www/bcbase/noble/slurm/25.11"
cp -a "$www/v3" "$www/bcbase/noble/slurm/deps/buildcache"
cp -a "$www/v2" "$www/bcbase/noble/slurm/25.11/buildcache"
# and the factory's own, one per toolchain: a default template too
cp -a "$www/factory" "$www/bcbase/noble/spack"
cmnt=$TEST_TMP/cat
mkdir -p "$cmnt"
"$SFFS_BIN" -f -o allow_insecure,cache_dir="$TEST_TMP/cache",versions=25.11,toolchains=noble,trust="$KEY" \
	-o allow_insecure,keyring="$TEST_TMP/key.gpg",buildcache_base="$NGINX_URL/bcbase/",release_after=2 \
	"$NGINX_URL/catalog/" "$cmnt" 2>"$TEST_TMP/cat.log" &
cleanup_push "sffs_unmount '$cmnt'"
wait_until 60 is_mounted "$cmnt" || { cat "$TEST_TMP/cat.log" >&2; fail "no catalog mount"; }
ls "$cmnt/25.11/noble" | grep -qx buildcache || fail "no buildcache/ in the artifact's root: $(ls "$cmnt/25.11/noble")"
want=$(($(wc -l <"$TEST_TMP/v3.tsv") + $(wc -l <"$TEST_TMP/v2.tsv") + $(wc -l <"$TEST_TMP/factory.tsv")))
got=$(ls "$cmnt/25.11/noble/buildcache" | grep -vcx modules)
# a package in both caches under one name shows once
[ "$got" -ge "$(($(wc -l <"$TEST_TMP/v3.tsv") + $(wc -l <"$TEST_TMP/factory.tsv")))" ] && [ "$got" -le "$want" ] ||
	fail "buildcache/ lists $got packages, the caches have $want: $(cat "$TEST_TMP/cat.log")"
grep -q "buildcache $NGINX_URL/bcbase/noble/spack/: 6 packages (0 hidden)" "$TEST_TMP/cat.log" ||
	fail "the factory's {toolchain}/spack/ cache is not a default: $(cat "$TEST_TMP/cat.log")"
for list in v3 v2 factory; do
	IFS=$'\t' read -r dir blob prefix rest < <(grep -m1 '^zstd-\|^libdwarf-' "$TEST_TMP/$list.tsv")
	rm -rf "$TEST_TMP/x" && mkdir -p "$TEST_TMP/x"
	tar -xzf "$www/$list/$blob" -C "$TEST_TMP/x"
	diff -r --no-dereference "$cmnt/25.11/noble/buildcache/$dir" "$TEST_TMP/x/${prefix#/}" ||
		fail "catalog: $dir ($list) differs from its tarball"
done
[ "$(cd "$cmnt/25.11/noble/buildcache/$dir/.." && pwd)" = "$cmnt/25.11/noble/buildcache" ] || fail "'..' of a package"
cmp "$cmnt/25.11/noble/view/bin/sinfo" "$fx/extract/view/bin/sinfo" || fail "the artifact itself differs"
log "catalog: $got packages under 25.11/noble/buildcache/; $(grep -c 'buildcache .*packages' "$TEST_TMP/cat.log") caches listed"
# packages are released like artifacts
wait_until 30 eval "getfattr --absolute-names -n user.sffs.stats --only-values '$cmnt' | grep -q ' attached=0 '" ||
	fail "packages not released: $(getfattr --absolute-names -n user.sffs.stats --only-values "$cmnt")"
ls "$cmnt/25.11/noble/buildcache/$dir/lib" >/dev/null || fail "a released package does not attach again"
sffs_unmount "$cmnt"

step "5xx and resets during attaches hide nothing; all back within 15 s"
# A proxy before nginx whose answers $TEST_TMP/mode decides: ok (forward),
# 503 (every request), reset (every connection reset by a TCP RST).
cat >"$TEST_TMP/faulty.py" <<'PY'
import http.client, http.server, socket, struct, sys, urllib.parse
target = urllib.parse.urlsplit(sys.argv[1])
mode_file = sys.argv[2]
KEEP = ("content-length", "content-range", "content-type", "etag",
        "last-modified", "accept-ranges")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def mode(self):
        try:
            return open(mode_file).read().strip()
        except OSError:
            return "ok"
    def fwd(self, head):
        m = self.mode()
        if m == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if m == "503":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        c = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        hdr = {k: v for k, v in self.headers.items()
               if k.lower() in ("range", "if-range", "if-match")}
        c.request(self.command, self.path, headers=hdr)
        r = c.getresponse()
        body = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() in KEEP:
                self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)
        c.close()
    def do_GET(self): self.fwd(False)
    def do_HEAD(self): self.fwd(True)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
mode=$TEST_TMP/mode
echo 503 >"$mode"
python3 "$TEST_TMP/faulty.py" "$NGINX_URL" "$mode" >"$TEST_TMP/faulty.port" 2>"$TEST_TMP/faulty.log" &
fpid=$!
cleanup_push "kill_pid $fpid"
wait_until 10 test -s "$TEST_TMP/faulty.port" || fail "the faulty proxy did not start"
furl=http://127.0.0.1:$(cat "$TEST_TMP/faulty.port")
mf=$TEST_TMP/mf
# mounted while the origin answers 503: the listing fails, nothing is lost
mount_bc "$furl/v3/" "$mf" "$TEST_TMP/mf.log" -o allow_insecure,trust="$KEY",cache_dir=none
npk=$(wc -l <"$TEST_TMP/v3.tsv")
listed() { [ "$(ls "$1" | grep -vcxE "index.json|modules")" -eq "$2" ]; }
echo ok >"$mode"
t0=$(date +%s)
wait_until 15 listed "$mf" "$npk" ||
	fail "$(ls "$mf" | grep -vcxE "index.json|modules") of $npk packages listed 15 s after the origin recovered: $(tail -5 "$TEST_TMP/mf.log")"
log "listed again $(($(date +%s) - t0)) s after recovery"
readable() { # the packages' spec.json read through the mount
	local d
	for d in "$@"; do
		cat "$mf/$d/.spack/spec.json" >/dev/null 2>&1 || return 1
	done
}
first=1
for fault in 503 reset; do
	mapfile -t pk < <(sed -n "${first},$((first + 5))p" "$TEST_TMP/v3.tsv" | cut -f1)
	first=$((first + 6))
	echo "$fault" >"$mode"
	pids=()
	for d in "${pk[@]}"; do # in parallel: each waits out its retries
		cat "$mf/$d/.spack/spec.json" >/dev/null 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		if wait "$p"; then
			fail "$fault: a package was read while the origin fails"
		fi
	done
	listed "$mf" "$npk" || fail "$fault: packages hidden: $(grep hidden "$TEST_TMP/mf.log" | tail -3)"
	if grep -q "package .* hidden: its tarball" "$TEST_TMP/mf.log"; then
		fail "$fault: a network failure hid a package: $(grep hidden "$TEST_TMP/mf.log")"
	fi
	echo ok >"$mode"
	t0=$(date +%s)
	wait_until 15 readable "${pk[@]}" || fail "$fault: not readable 15 s after recovery: $(tail -5 "$TEST_TMP/mf.log")"
	listed "$mf" "$npk" || fail "$fault: packages hidden after recovery"
	log "$fault: ${#pk[@]} packages failed, none hidden, readable $(($(date +%s) - t0)) s after recovery"
done
IFS=$'\t' read -r dir blob prefix rest < <(sed -n 1p "$TEST_TMP/v3.tsv")
rm -rf "$TEST_TMP/x" && mkdir -p "$TEST_TMP/x"
tar -xzf "$www/v3/$blob" -C "$TEST_TMP/x"
diff -r --no-dereference "$mf/$dir" "$TEST_TMP/x/${prefix#/}" || fail "$dir differs after the faults"
sffs_unmount "$mf"

step "v3: a validly signed manifest of another package under a package's name: hidden"
cp -a "$www/v3" "$www/named"
IFS=$'\t' read -r a_dir a_blob a_prefix a_name a_ver a_hash rest < <(grep -m1 '^slurm-' "$TEST_TMP/v3.tsv")
IFS=$'\t' read -r b_dir b_blob b_prefix b_name b_ver b_hash rest < <(grep -m1 '^zstd-' "$TEST_TMP/v3.tsv")
cp "$www/v3/v3/manifests/spec/$b_name/$b_name-$b_ver-$b_hash.spec.manifest.json" \
	"$www/named/v3/manifests/spec/$a_name/$a_name-$a_ver-$a_hash.spec.manifest.json"
mount_bc "$NGINX_URL/named/" "$TEST_TMP/mn" "$TEST_TMP/mn.log" -o allow_insecure,trust="$KEY",cache_dir=none
if ls "$TEST_TMP/mn" | grep -qx "$a_dir"; then
	fail "$a_dir listed with the manifest of $b_dir: $(cat "$TEST_TMP/mn.log")"
fi
# the log line names both: what the signed spec says and what was listed
grep "package $a_dir hidden" "$TEST_TMP/mn.log" |
	grep -q "no node with hash $a_hash (\"$a_name\" version \"$a_ver\"): it is the spec of \"$b_name\" version \"$b_ver\" hash $b_hash" ||
	fail "no log line naming both: $(cat "$TEST_TMP/mn.log")"
grep -q "$((npk - 1)) packages verified (1 hidden)" "$TEST_TMP/mn.log" || fail "listing: $(cat "$TEST_TMP/mn.log")"
ls "$TEST_TMP/mn/$b_dir/lib" >/dev/null || fail "$b_dir itself must still attach"
log "$(grep -m1 "package $a_dir hidden" "$TEST_TMP/mn.log")"
sffs_unmount "$TEST_TMP/mn"

step "the window spill of a streaming pass: unlinked, 0600, in the cache directory"
mkdir -m 700 "$TEST_TMP/cache-spill"
mount_fg "$NGINX_URL/v3/" "$TEST_TMP/mw" "$TEST_TMP/mw.log" \
	-o layout=buildcache,cache_dir="$TEST_TMP/cache-spill",allow_insecure,trust="$KEY"
IFS=$'\t' read -r dir blob prefix rest < <(grep -m1 '^slurm-' "$TEST_TMP/v3.tsv")
cat "$TEST_TMP/mw/$dir/.spack/spec.json" >/dev/null || fail "$dir: no spec.json: $(cat "$TEST_TMP/mw.log")"
grep -q "$dir attached .*(indexed" "$TEST_TMP/mw.log" || fail "$dir was not indexed by streaming: $(cat "$TEST_TMP/mw.log")"
spills=0
for fd in /proc/"$MOUNT_FG_PID"/fd/*; do
	t=$(readlink "$fd") || continue
	case $t in
	"$TEST_TMP/cache-spill/"*" (deleted)")
		[ "$(stat -L -c %a "$fd")" = 600 ] || fail "spill $t has mode $(stat -L -c %a "$fd")"
		spills=$((spills + 1)) ;;
	"${TMPDIR:-/tmp}/#"*) fail "the daemon holds a tmpfile open: $t" ;;
	esac
done
[ "$spills" -ge 1 ] || fail "no spill file in the cache directory: $(ls -l /proc/"$MOUNT_FG_PID"/fd)"
[ -z "$(find "$TEST_TMP/cache-spill" -name '.sffs-spill-*')" ] || fail "a spill file has a name"
log "$spills spill file(s) in the cache directory, unlinked, mode 0600"
sffs_unmount "$TEST_TMP/mw"

step "world-writable directories: named in the log once, a tmpfs bound over one is writable"
# an artifact as the factory ships it: Pyxis' share/enroot/enroot-data 0777
python3 - "$www/wdir.tar.gz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as tar:
    for name, mode in (("view", 0o755), ("view/share", 0o755),
                       ("view/share/enroot", 0o755),
                       ("view/share/enroot/enroot-data", 0o777),
                       ("view/var", 0o1777)):
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, mode
        tar.addfile(info)
    data = b"#!/bin/sh\n"
    info = tarfile.TarInfo("view/bin/enroot")
    info.size, info.mode = len(data), 0o755
    tar.addfile(info, io.BytesIO(data))
PY
wm=$TEST_TMP/mwd
mount_fg "$NGINX_URL/wdir.tar.gz" "$wm" "$TEST_TMP/mwd.log" -o cache_dir=none
grep -q "2 world-writable directories, read-only in the mount: .*view/share/enroot/enroot-data" "$TEST_TMP/mwd.log" ||
	fail "no warning naming enroot-data: $(cat "$TEST_TMP/mwd.log")"
grep -q "world-writable.*view/var" "$TEST_TMP/mwd.log" || fail "the sticky 1777 directory not named"
[ "$(grep -c world-writable "$TEST_TMP/mwd.log")" -eq 1 ] || fail "not one line: $(cat "$TEST_TMP/mwd.log")"
log "$(grep -m1 world-writable "$TEST_TMP/mwd.log")"
if touch "$wm/view/share/enroot/enroot-data/x" 2>/dev/null; then
	fail "the mount is writable"
fi
# what sffs(8) says to do: a tmpfs bound over the directory in the mount
mkdir -p "$TEST_TMP/rw"
mount -t tmpfs -o size=1m,mode=1777 tmpfs "$TEST_TMP/rw" || fail "cannot mount a tmpfs"
cleanup_push "! mountpoint -q '$TEST_TMP/rw' || umount '$TEST_TMP/rw'"
mount --bind "$TEST_TMP/rw" "$wm/view/share/enroot/enroot-data" || fail "cannot bind over the mount"
cleanup_push "! mountpoint -q '$wm/view/share/enroot/enroot-data' || umount '$wm/view/share/enroot/enroot-data'"
echo data >"$wm/view/share/enroot/enroot-data/x" || fail "the bound tmpfs is not writable"
[ "$(cat "$wm/view/share/enroot/enroot-data/x")" = data ] || fail "the bound tmpfs lost a write"
cmp "$wm/view/bin/enroot" <(printf '#!/bin/sh\n') || fail "the rest of the mount changed"
umount "$wm/view/share/enroot/enroot-data" || fail "cannot unbind"
umount "$TEST_TMP/rw"
[ ! -e "$wm/view/share/enroot/enroot-data/x" ] || fail "a write reached the mount"
sffs_unmount "$wm"
# a buildcache package: logged at its first attach only, as the mount shows it
mount_bc "$NGINX_URL/wdir/" "$TEST_TMP/mwp" "$TEST_TMP/mwp.log" -o allow_insecure,trust="$KEY",release_after=1
IFS=$'\t' read -r dir rest < <(sed -n 1p "$TEST_TMP/wdir.tsv")
ls "$TEST_TMP/mwp/$dir/share/enroot" >/dev/null || fail "$dir does not attach"
grep -q "$TEST_TMP/mwp/$dir: 1 world-writable directory, read-only in the mount: share/enroot/enroot-data" "$TEST_TMP/mwp.log" ||
	fail "package: no warning naming its directory: $(cat "$TEST_TMP/mwp.log")"
wait_until 30 grep -q "$dir.* released" "$TEST_TMP/mwp.log" || fail "$dir not released: $(cat "$TEST_TMP/mwp.log")"
ls "$TEST_TMP/mwp/$dir/share/enroot" >/dev/null || fail "$dir does not attach again"
wait_until 10 eval "[ \$(grep -c '$dir attached' '$TEST_TMP/mwp.log') -ge 2 ]" || fail "$dir: no second attach"
[ "$(grep -c "$dir: .*world-writable" "$TEST_TMP/mwp.log")" -eq 1 ] || fail "package: warned at every attach"
sffs_unmount "$TEST_TMP/mwp"
