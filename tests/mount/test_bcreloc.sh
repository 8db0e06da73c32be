#!/usr/bin/env bash
# Buildcache packages relocated on the fly, as `spack install` would leave
# them (issue 18), from caches whose ELF files carry Spack's padded RPATHs
# and prefixes (tests/lib/make-buildcache.py --spack-rpath: a signed v3
# cache and an unsigned v2 one, made here from the fixture's binaries):
#   - self-check, before any mount: tests/lib/reloc-expect.py (tarfile,
#     PyYAML and the Python reference of Spack's relocation) relocated to
#     a real directory makes sinfo run with `env -i`, while the plain
#     extraction does not find libslurmfull.so: the data and the reference
#     are sound;
#   - -o norelocate: every package equals its tarball's extraction;
#   - layout=buildcache: `env -i MNT/slurm-*/bin/sinfo --version` runs (no
#     LD_LIBRARY_PATH); every package equals reloc-expect.py's tree for
#     --root MNT, byte for byte, symlink targets and stat sizes included,
#     user.sffs.relocation says "relocated"; reads at odd offsets and sizes
#     around every patch and random ranges (the page cache dropped) equal
#     the expected files;
#   - -o module_root=PATH: every package relocated to PATH instead;
#   - at a mountpoint path longer than the padded prefixes: every package
#     served as in its blob, "cannot be relocated" logged,
#     user.sffs.relocation "refused: ...";
#   - a catalog (-o buildcache_base=): sinfo runs from
#     MNT/<v>/<tc>/buildcache/, and a package equals the reference made for
#     that directory.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool gpg gpgconf python3 getfattr patchelf dd cmp
[ -w /proc/sys/vm/drop_caches ] || fail "needs root (drop_caches)"
[ -x "${SFFS_RANDREAD:-}" ] || fail "SFFS_RANDREAD (tests/lib/randread.c) is not set"
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is needed (scripts/install-deps.sh)"

fx=$(fixture_dir)
mk=$SFFS_SRC/tests/lib/make-buildcache.py
expect=$SFFS_SRC/tests/lib/reloc-expect.py
www=$TEST_TMP/www
mkdir -p "$www"
# sinfo prints "slurm-wlm 22.05.8": the fixture's version, from its library
VERSION=$(strings "$fx/extract/view/lib/libslurmfull.so" |
	awk '/^2[0-9]\.[0-9][0-9]\.[0-9]+$/ && !v { v = $0 } END { print v }')
[ -n "$VERSION" ] || fail "no Slurm version in the fixture's libslurmfull.so"

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

step "keys"
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
cleanup_push "gpgconf --homedir '$GNUPGHOME' --kill all"
gpg --batch --quiet --passphrase '' --quick-gen-key "bcreloc test <bcreloc@test>" ed25519 sign 0 2>/dev/null
KEY=$(gpg --with-colons --list-keys bcreloc@test 2>/dev/null | awk -F: '/^fpr/ { print $10; exit }')
[[ $KEY =~ ^[0-9A-F]{40}$ ]] || fail "no key made"
gpg --export "$KEY" >"$TEST_TMP/key.gpg"

step "buildcaches with Spack's padded RPATHs"
make_cache() { # name layout [options...]: a cache in $www/name, its --list in name.tsv
	local name=$1 layout=$2
	shift 2
	python3 "$mk" --fixture "$fx/extract" --out "$www/$name" --layout "$layout" \
		--gnupghome "$GNUPGHOME" --spack-rpath --list "$@" >"$TEST_TMP/$name.tsv" 2>"$TEST_TMP/$name.mk.log" ||
		fail "make-buildcache $name: $(cat "$TEST_TMP/$name.mk.log")"
	log "$name: $(tail -1 "$TEST_TMP/$name.mk.log")"
}
make_cache v3 v3 --sign-with "$KEY"
make_cache v2 v2 --packages 8
for name in v3 v2; do
	grep -q '^slurm-' "$TEST_TMP/$name.tsv" || fail "$name: no slurm package"
done

# reference NAME ROOT OUT [--norelocate]: reloc-expect.py's tree of cache
# NAME for NEWROOT=ROOT in OUT; its stdout (the refused packages) in OUT.out
reference() {
	local name=$1 root=$2 out=$3
	shift 3
	mkdir -p "$out"
	python3 "$expect" --mirror "$www/$name" --list "$TEST_TMP/$name.tsv" --root "$root" \
		--out "$out" "$@" >"$out.out" 2>"$out.err" || fail "reloc-expect.py $name: $(cat "$out.err")"
	log "$name: $(tail -1 "$out.err")"
}

# run_sinfo PKGDIR: env -i PKGDIR/bin/sinfo --version, its plugins from
# PKGDIR/lib/slurm; prints its output, fails when it fails
run_sinfo() {
	local pkg=$1 conf
	conf=$(mktemp "$TEST_TMP/slurm.conf.XXXXXX")
	printf 'ClusterName=sffs\nSlurmctldHost=localhost\nPluginDir=%s\n' "$pkg/lib/slurm" >"$conf"
	env -i SLURM_CONF="$conf" timeout 60 "$pkg/bin/sinfo" --version 2>&1
}

# sinfo_ok PKGDIR WHAT: sinfo runs and prints the fixture's version
sinfo_ok() {
	local out
	out=$(run_sinfo "$1") || fail "$2: env -i sinfo --version failed: $out"
	grep -qx "slurm\(-wlm\)\? $VERSION" <<<"$out" || fail "$2: sinfo --version printed: $out"
	log "$2: env -i sinfo --version: $out"
}

# same_tree A B WHAT: diff -r --no-dereference (contents, symlink
# targets), and every entry's type and lstat size equal
same_tree() {
	local a=$1 b=$2 what=$3
	diff -r --no-dereference "$a" "$b" >"$TEST_TMP/diff" 2>&1 ||
		fail "$what differs: $(head -5 "$TEST_TMP/diff")"
	diff <(cd "$a" && find . -printf '%p %y %s %l\n' | grep -v ' d ' | sort) \
		<(cd "$b" && find . -printf '%p %y %s %l\n' | grep -v ' d ' | sort) >"$TEST_TMP/diff" 2>&1 ||
		fail "$what: types or sizes differ: $(head -5 "$TEST_TMP/diff")"
}

# compare_pkgs MNT REF NAME: every package of cache NAME under MNT equals
# the one under REF
compare_pkgs() {
	local mnt=$1 ref=$2 name=$3 dir rest n=0
	while IFS=$'\t' read -r dir rest; do
		same_tree "$mnt/$dir" "$ref/$dir" "$mnt/$dir"
		n=$((n + 1))
	done <"$TEST_TMP/$name.tsv"
	log "$name: $n packages under $mnt equal to $ref"
}

# relocation_xattr DIR: the package's user.sffs.relocation (or getfattr's
# error, so that the caller names it)
relocation_xattr() {
	getfattr --absolute-names -n user.sffs.relocation --only-values "$1" 2>&1 || true
}

step "self-check: the reference's tree runs, the plain extraction does not"
for name in v3 v2; do
	self=$TEST_TMP/self-$name
	reference "$name" "$self" "$self"
	[ ! -s "$self.out" ] || fail "$name: the reference refused: $(cat "$self.out")"
	reference "$name" / "$TEST_TMP/plain-$name" --norelocate
	while IFS=$'\t' read -r dir rest; do
		cmp -s "$self/$dir/bin/sinfo" "$TEST_TMP/plain-$name/$dir/bin/sinfo" &&
			fail "$name: the reference left sinfo as it was"
		sinfo_ok "$self/$dir" "$name: the reference's $dir"
		if out=$(run_sinfo "$TEST_TMP/plain-$name/$dir"); then
			fail "$name: unrelocated sinfo ran, the test would prove nothing: $out"
		fi
		grep -q "libslurmfull.so: cannot open shared object file" <<<"$out" ||
			fail "$name: unrelocated sinfo failed otherwise: $out"
	done < <(grep '^slurm-' "$TEST_TMP/$name.tsv")
	# every package changed (binaries, text, symlink), no old root left
	# in its text files
	while IFS=$'\t' read -r dir rest; do
		if diff -r --no-dereference -q "$self/$dir" "$TEST_TMP/plain-$name/$dir" >/dev/null; then
			fail "$name: $dir not relocated by the reference"
		fi
		if grep -rl __spack_path_placeholder__ "$self/$dir/lib/pkgconfig" "$self/$dir/bin/"*-config; then
			fail "$name: $dir: a text file keeps an old prefix"
		fi
		case $(readlink "$self/$dir/lib/lib"*-abs.so) in
		"$self/$dir/lib/"*) ;;
		*) fail "$name: $dir: symlink not relocated" ;;
		esac
	done <"$TEST_TMP/$name.tsv"
done
log "unrelocated: $(tail -1 <<<"$out")"
nginx_start "$www"

mount_bc() { # url mnt log [opts...]: a buildcache mount in the foreground
	local url=$1 mnt=$2 logf=$3
	shift 3
	mount_fg "$url" "$mnt" "$logf" -o layout=buildcache,cache_dir="$TEST_TMP/cache" "$@"
}
opts_of() { # cache name: the options that verify it
	if [ "$1" = v3 ]; then echo "allow_insecure,trust=$KEY"; else echo verify=off; fi
}

step "norelocate: every package as in its blob"
for name in v3 v2; do
	mnt=$TEST_TMP/n$name
	mount_bc "$NGINX_URL/$name/" "$mnt" "$TEST_TMP/n$name.log" -o "$(opts_of $name)",norelocate
	drop_caches
	compare_pkgs "$mnt" "$TEST_TMP/plain-$name" "$name"
	sffs_unmount "$mnt"
done

for name in v3 v2; do
	mnt=$TEST_TMP/m$name
	logf=$TEST_TMP/m$name.log
	mount_bc "$NGINX_URL/$name/" "$mnt" "$logf" -o "$(opts_of $name)"
	rmnt=$(cd "$mnt" && pwd -P)
	IFS=$'\t' read -r sdir rest < <(grep -m1 '^slurm-' "$TEST_TMP/$name.tsv")

	step "$name: env -i sinfo --version from the mount"
	drop_caches
	sinfo_ok "$mnt/$sdir" "$name: $mnt/$sdir"

	step "$name: every package as spack install would leave it at the mount"
	exp=$TEST_TMP/exp-$name
	reference "$name" "$rmnt" "$exp"
	[ ! -s "$exp.out" ] || fail "$name: the reference refused: $(cat "$exp.out")"
	drop_caches
	compare_pkgs "$mnt" "$exp" "$name"
	while IFS=$'\t' read -r dir rest; do
		x=$(relocation_xattr "$mnt/$dir")
		[[ $x == relocated* ]] || fail "$dir: user.sffs.relocation is '$x'"
	done <"$TEST_TMP/$name.tsv"
	log "$name: user.sffs.relocation of $sdir: $(relocation_xattr "$mnt/$sdir")"

	step "$name: range reads around every patch"
	# the byte runs where the relocated file differs from the blob's, and
	# reads of odd offsets and sizes across their edges, each with the
	# file's pages dropped first (dd iflag=nocache count=0:
	# POSIX_FADV_DONTNEED) so that every read reaches the daemon
	nr=0
	for rel in bin/sinfo lib/libslurmfull.so lib/slurm/auth_munge.so bin/slurm-config; do
		python3 - "$TEST_TMP/plain-$name/$sdir/$rel" "$exp/$sdir/$rel" >"$TEST_TMP/ranges" <<'PY' ||
import sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
runs, n = [], min(len(a), len(b))
for blk in range(0, n, 4096):  # byte by byte only where blocks differ
    if a[blk:blk + 4096] == b[blk:blk + 4096]:
        continue
    for i in range(blk, min(blk + 4096, n)):
        if a[i] == b[i]:
            continue
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
if len(a) != len(b):
    runs.append((n, max(len(a), len(b))))
if not runs:
    sys.exit("the relocated file equals the blob's")
size = len(b)
reads = {(4095, 8193), (max(size - 13, 0), 13), (size // 3 + 1, 65537)}
for s, e in runs[:12] + runs[-4:]:
    reads |= {(max(s - 3, 0), e - s + 7), (s + 1, 5), (max(e - 1, 0), 4099),
              (max(s - 4097, 0), 4099 + e - s), (s, 1)}
for off, cnt in sorted(reads):
    if off < size:
        print(off, min(cnt, size - off))
PY
			fail "$name: $rel: no patch found"
		while read -r off cnt; do
			dd if="$mnt/$sdir/$rel" iflag=nocache count=0 2>/dev/null
			cmp <(dd if="$mnt/$sdir/$rel" iflag=skip_bytes,count_bytes bs=65536 skip="$off" count="$cnt" 2>/dev/null) \
				<(dd if="$exp/$sdir/$rel" iflag=skip_bytes,count_bytes bs=65536 skip="$off" count="$cnt" 2>/dev/null) ||
				fail "$name: $sdir/$rel: $cnt bytes at $off differ"
			nr=$((nr + 1))
		done <"$TEST_TMP/ranges"
	done
	"$SFFS_RANDREAD" "$mnt/$sdir" "$exp/$sdir" 4 300 "$RANDOM" ||
		fail "$name: random reads of $sdir differ from the reference"
	log "$name: $nr reads around patches and 1200 random reads equal the reference"
	sffs_unmount "$mnt"
done

step "-o module_root=PATH: packages relocated to PATH, not to the mountpoint"
# as when the mount is bound elsewhere (a container): PATH need not exist here
mount_bc "$NGINX_URL/v2/" "$TEST_TMP/mroot" "$TEST_TMP/mroot.log" -o "$(opts_of v2)",module_root=/sf/bcreloc
reference v2 /sf/bcreloc "$TEST_TMP/exp-root"
[ ! -s "$TEST_TMP/exp-root.out" ] || fail "module_root: the reference refused: $(cat "$TEST_TMP/exp-root.out")"
drop_caches
compare_pkgs "$TEST_TMP/mroot" "$TEST_TMP/exp-root" v2
sffs_unmount "$TEST_TMP/mroot"

step "a mountpoint longer than the padded prefixes: served unrelocated, refused"
long=$TEST_TMP/$(printf 'a%.0s' {1..60})/$(printf 'b%.0s' {1..60})/$(printf 'c%.0s' {1..60})/mnt
mount_bc "$NGINX_URL/v3/" "$long" "$TEST_TMP/mlong.log" -o "$(opts_of v3)"
rlong=$(cd "$long" && pwd -P)
[ "${#rlong}" -gt 200 ] || fail "the long mountpoint is ${#rlong} characters"
# the reference refuses every package there too
reference v3 "$rlong" "$TEST_TMP/exp-long"
[ "$(wc -l <"$TEST_TMP/exp-long.out")" -eq "$(wc -l <"$TEST_TMP/v3.tsv")" ] ||
	fail "the reference relocated packages to $rlong: $(cat "$TEST_TMP/exp-long.err")"
drop_caches
compare_pkgs "$long" "$TEST_TMP/plain-v3" v3
grep -q "cannot be relocated" "$TEST_TMP/mlong.log" || fail "no log line: $(tail -5 "$TEST_TMP/mlong.log")"
while IFS=$'\t' read -r dir rest; do
	x=$(relocation_xattr "$long/$dir")
	[[ $x == refused:* ]] || fail "$dir: user.sffs.relocation is '$x'"
done <"$TEST_TMP/v3.tsv"
log "$(grep -m1 "cannot be relocated" "$TEST_TMP/mlong.log")"
log "user.sffs.relocation: $(relocation_xattr "$long/$(head -1 "$TEST_TMP/v3.tsv" | cut -f1)")"
sffs_unmount "$long"

step "catalog: MNT/<v>/<tc>/buildcache/ relocated to its directory"
cat=$www/catalog
mkdir -p "$cat/25.11/noble" "$www/bcbase/noble"
art=$cat/25.11/noble/slurm-25.11-noble-software.tar.gz
cp "$fx/$FIXTURE_NAME.tar.gz" "$art"
"$SFFS_INDEX" -q "$art" -o "$art.sfidx" --sign-with "$KEY" 2>/dev/null || fail "sffs-index --sign-with failed"
# the factory's cache, one per toolchain ({toolchain}/spack/)
cp -a "$www/v3" "$www/bcbase/noble/spack"
cmnt=$TEST_TMP/cat
mkdir -p "$cmnt"
"$SFFS_BIN" -f -o "allow_insecure,cache_dir=$TEST_TMP/cache,versions=25.11,toolchains=noble,trust=$KEY" \
	-o "keyring=$TEST_TMP/key.gpg,buildcache_base=$NGINX_URL/bcbase/" \
	"$NGINX_URL/catalog/" "$cmnt" 2>"$TEST_TMP/cat.log" &
cleanup_push "sffs_unmount '$cmnt'"
wait_until 60 is_mounted "$cmnt" || { cat "$TEST_TMP/cat.log" >&2; fail "no catalog mount"; }
bc=$cmnt/25.11/noble/buildcache
IFS=$'\t' read -r sdir rest < <(grep -m1 '^slurm-' "$TEST_TMP/v3.tsv")
# the first look is ls's, not a test of this shell's: the lookup waits for
# the artifact's attach, and a signal to the waiting process (this shell
# gets SIGCHLD when a process substitution ends) makes the daemon answer it
# EINTR
ls -d "$bc/$sdir" >/dev/null || fail "no $sdir in $bc: $(tail -3 "$TEST_TMP/cat.log")"
rbc=$(cd "$bc" && pwd -P)
drop_caches
sinfo_ok "$bc/$sdir" "catalog: $sdir"
reference v3 "$rbc" "$TEST_TMP/exp-cat"
[ ! -s "$TEST_TMP/exp-cat.out" ] || fail "catalog: the reference refused: $(cat "$TEST_TMP/exp-cat.out")"
drop_caches
for dir in "$sdir" "$(grep -m1 '^munge-' "$TEST_TMP/v3.tsv" | cut -f1)"; do
	same_tree "$bc/$dir" "$TEST_TMP/exp-cat/$dir" "catalog: $dir"
done
log "catalog: $sdir and munge equal to the reference for $rbc"
sffs_unmount "$cmnt"
