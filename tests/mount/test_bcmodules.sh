#!/usr/bin/env bash
# Generated Lmod modulefiles for Spack buildcache packages (issue 18), from
# caches whose ELF files carry Spack's padded RPATHs (make-buildcache.py
# --spack-rpath), signed:
#   - layout=buildcache: MNT lists modules/ beside index.json and the
#     packages; MNT/modules/<name>/<version>-<hash7>.lua exists for every
#     package of the --list output and nothing else; reading them all and
#     `module avail` fetch no package tarball (made from the listing);
#     inode numbers stay the same;
#   - `module use MNT/modules; module load slurm`: sinfo is
#     MNT/slurm-.../bin/sinfo, SLURM_ROOT and CMAKE_PREFIX_PATH are its
#     directory, `sinfo --version` runs with no LD_LIBRARY_PATH (relocated
#     RPATHs), `module unload` gives PATH back; a package loads by its full
#     name <name>/<version>-<hash7>;
#   - -o norelocate: the modulefile sets LD_LIBRARY_PATH (the default one
#     does not), and with it the unrelocated sinfo runs;
#   - a catalog (-o buildcache_base=): MNT/<v>/<tc>/buildcache/modules/
#     the same way, prefixes under buildcache/, sinfo runs after a load.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool gpg gpgconf python3
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is needed (scripts/install-deps.sh)"

fx=$(fixture_dir)
mk=$SFFS_SRC/tests/lib/make-buildcache.py
www=$TEST_TMP/www
mkdir -p "$www"
grep -q -- '--spack-rpath' "$mk" ||
	fail "make-buildcache.py has no --spack-rpath: the packages' sinfo could not run"

lmod_init=
for f in /usr/share/lmod/lmod/init/bash /usr/share/lmod/init/bash; do
	if [ -f "$f" ]; then
		lmod_init=$f
		break
	fi
done
[ -n "$lmod_init" ] || fail "Lmod's bash init not found (install lmod)"
export HOME=$TEST_TMP/home # Lmod's user cache
mkdir -p "$HOME"

step "keys and a cache"
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 700 "$GNUPGHOME"
cleanup_push "gpgconf --homedir '$GNUPGHOME' --kill all"
gpg --batch --quiet --passphrase '' --quick-gen-key "bcmod test <bcmod@test>" ed25519 sign 0 2>/dev/null
KEY=$(gpg --with-colons --list-keys bcmod@test 2>/dev/null | awk -F: '/^fpr/ { print $10; exit }')
[[ $KEY =~ ^[0-9A-F]{40}$ ]] || fail "no key made"
gpg --export "$KEY" >"$TEST_TMP/key.gpg"
python3 "$mk" --fixture "$fx/extract" --out "$www/v3" --layout v3 --gnupghome "$GNUPGHOME" \
	--spack-rpath --sign-with "$KEY" --packages 26 --list >"$TEST_TMP/v3.tsv" 2>"$TEST_TMP/mk.log" ||
	fail "make-buildcache: $(cat "$TEST_TMP/mk.log")"
npk=$(wc -l <"$TEST_TMP/v3.tsv")
# two slurm packages (22.05 and the further version --packages makes):
# `module load slurm` takes the newer, the older loads by its full name
grep '^slurm-' "$TEST_TMP/v3.tsv" | sort -t$'\t' -k5,5V >"$TEST_TMP/slurm.tsv"
[ "$(wc -l <"$TEST_TMP/slurm.tsv")" -eq 2 ] || fail "not two slurm packages: $(cat "$TEST_TMP/v3.tsv")"
IFS=$'\t' read -r odir _ _ _ over ohash _ < <(sed -n 1p "$TEST_TMP/slurm.tsv")
IFS=$'\t' read -r sdir _ _ sname sver shash _ < <(sed -n 2p "$TEST_TMP/slurm.tsv")
log "$npk packages; slurm: $sdir (default) and $odir"
nginx_start "$www"

mount_bc() { # mnt log [opts...]: the cache mounted with layout=buildcache
	local mnt=$1 logf=$2
	shift 2
	mount_fg "$NGINX_URL/v3/" "$mnt" "$logf" \
		-o layout=buildcache,cache_dir="$TEST_TMP/cache",allow_insecure,trust="$KEY" "$@"
}

# tarballs_fetched [DIR]: requests for the packages' tarball blobs so far
# (the cache under /DIR/, default v3)
tarballs_fetched() {
	local dir blob rest n=0
	while IFS=$'\t' read -r dir blob rest; do
		n=$((n + $(nginx_requests "/${1:-v3}/$blob")))
	done <"$TEST_TMP/v3.tsv"
	echo "$n"
}

# check_files MODDIR ROOT SOURCE: MODDIR/<name>/ holds exactly the cache's
# <version>-<hash7>.lua, each naming ROOT/<dir> as its prefix and its
# tarball under SOURCE
check_files() {
	local mods=$1 root=$2 src=$3 dir blob prefix name ver hash rest f
	diff <(cut -f4 "$TEST_TMP/v3.tsv" | sort -u) <(ls "$mods") >"$TEST_TMP/diff" ||
		fail "$mods lists other names than the cache: $(cat "$TEST_TMP/diff")"
	diff <(awk -F'\t' '{ print $4 "/" $5 "-" substr($6, 1, 7) ".lua" }' "$TEST_TMP/v3.tsv" | sort) \
		<(cd "$mods" && ls -d -- */* | sort) >"$TEST_TMP/diff" ||
		fail "$mods: the modulefiles are not the cache's packages: $(cat "$TEST_TMP/diff")"
	while IFS=$'\t' read -r dir blob prefix name ver hash rest; do
		f=$mods/$name/$ver-${hash:0:7}.lua
		grep -qxF "local prefix = \"$root/$dir\"" "$f" || fail "$f: not prefix $root/$dir: $(cat "$f")"
		grep -qxF "whatis(\"Name: $name\")" "$f" || fail "$f: no Name"
		grep -qxF "whatis(\"Version: $ver\")" "$f" || fail "$f: no Version"
		grep -qxF "whatis(\"Hash: $hash\")" "$f" || fail "$f: no Hash"
		grep -qxF "whatis(\"Source: $src$blob\")" "$f" || fail "$f: no Source $src$blob: $(cat "$f")"
		grep -qxF "setenv(\"$(tr 'a-z-' 'A-Z_' <<<"$name")_ROOT\", prefix)" "$f" || fail "$f: no <NAME>_ROOT"
		[ "$(stat -c %s "$f")" -eq "$(wc -c <"$f")" ] || fail "$f: stat size is not its length"
	done <"$TEST_TMP/v3.tsv"
}

# lmod MODDIR OLDER CACHEDIR: module avail (counting the tarballs of the
# cache under /CACHEDIR/ it fetched), loads slurm from MODDIR (then
# slurm/OLDER), prints what it saw as key=value
lmod() (
	set +eu
	unset LD_LIBRARY_PATH SLURM_ROOT CMAKE_PREFIX_PATH
	# without duplicates, which Lmod drops when it edits PATH
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	export SLURM_CONF=$TEST_TMP/slurm.conf
	# shellcheck disable=SC1090
	source "$lmod_init"
	before=$PATH
	module use "$1" || exit 11
	f0=$(tarballs_fetched "$3")
	echo "avail=$(module -t avail 2>&1 | grep -v '[:/]$' | sort | tr '\n' ' ')"
	echo "avail_fetched=$(($(tarballs_fetched "$3") - f0))"
	module load slurm || exit 12
	echo "which=$(command -v sinfo)"
	echo "root=$SLURM_ROOT"
	echo "cmake=$CMAKE_PREFIX_PATH"
	echo "ldpath=${LD_LIBRARY_PATH:-unset}"
	printf 'ClusterName=sffs\nSlurmctldHost=localhost\nPluginDir=%s\n' "$SLURM_ROOT/lib/slurm" >"$SLURM_CONF"
	echo "version=$(timeout 60 sinfo --version 2>&1)"
	module unload slurm || exit 13
	echo "after_unload=$(command -v sinfo || echo none)"
	[ "$PATH" = "$before" ] && echo "path_restored=yes" || echo "path_restored=no: $PATH"
	module load "slurm/$2" || exit 14
	echo "full=$(command -v sinfo)"
	echo "loaded=$(module -t list 2>&1 | grep -c '^slurm/')"
)

# check_lmod OUT PREFIXROOT LDPATH(yes|no): what lmod printed
check_lmod() {
	local out=$1 root=$2 ld=$3 want
	want=$(awk -F'\t' '{ print $4 "/" $5 "-" substr($6, 1, 7) }' "$TEST_TMP/v3.tsv" | sort | tr '\n' ' ')
	grep -qxF "avail=$want" <<<"$out" || fail "module avail does not list every package: $out"
	grep -qx "avail_fetched=0" <<<"$out" || fail "module avail fetched package tarballs: $out"
	grep -qxF "which=$root/$sdir/bin/sinfo" <<<"$out" || fail "after module load, sinfo is not $root/$sdir's: $out"
	grep -qxF "root=$root/$sdir" <<<"$out" || fail "SLURM_ROOT: $out"
	grep -qxF "cmake=$root/$sdir" <<<"$out" || fail "CMAKE_PREFIX_PATH: $out"
	grep -qE '^version=slurm(-wlm)? 22\.05' <<<"$out" || fail "module-loaded sinfo --version did not run: $out"
	grep -qx "after_unload=none" <<<"$out" || fail "module unload left sinfo on PATH: $out"
	grep -qx "path_restored=yes" <<<"$out" || fail "module unload did not give PATH back: $out"
	grep -qxF "full=$root/$odir/bin/sinfo" <<<"$out" || fail "module load slurm/$over-${ohash:0:7}: $out"
	grep -qx "loaded=1" <<<"$out" || fail "two slurm modules loaded at once: $out"
	if [ "$ld" = yes ]; then
		grep -qE "^ldpath=$root/$sdir/lib(64)?(:|$)" <<<"$out" || fail "norelocate: no LD_LIBRARY_PATH: $out"
	else
		grep -qx "ldpath=unset" <<<"$out" || fail "a relocated mount's module set LD_LIBRARY_PATH: $out"
	fi
	log "lmod: $(grep -v '^avail=' <<<"$out" | tr '\n' ' ')"
}

step "layout=buildcache: MNT/modules/<name>/<version>-<hash7>.lua"
mnt=$TEST_TMP/m
mount_bc "$mnt" "$TEST_TMP/m.log"
ls "$mnt" | grep -qx modules || fail "MNT does not list modules/: $(ls "$mnt")"
ls "$mnt" | grep -qx index.json || fail "MNT does not list index.json"
[ "$(ls "$mnt" | grep -vcxE 'modules|index.json')" -eq "$npk" ] || fail "MNT lists other packages: $(ls "$mnt")"
check_files "$mnt/modules" "$mnt" "$NGINX_URL/v3/"
ino1=$(stat -c %i "$mnt/modules/$sname" "$mnt/modules/$sname/$sver-${shash:0:7}.lua")
[ "$(cd "$mnt/modules/$sname/.." && pwd)" = "$mnt/modules" ] || fail "'..' of modules/$sname"
grep -q "LD_LIBRARY_PATH" "$mnt/modules/$sname/"*.lua && fail "a relocated mount's modulefile names LD_LIBRARY_PATH"
[ "$(tarballs_fetched)" -eq 0 ] || fail "the modulefiles fetched $(tarballs_fetched) package tarballs"
out=$(lmod "$mnt/modules" "$over-${ohash:0:7}" v3) || fail "module command failed (status $?): $out"
check_lmod "$out" "$mnt" no
[ "$(stat -c %i "$mnt/modules/$sname" "$mnt/modules/$sname/$sver-${shash:0:7}.lua")" = "$ino1" ] ||
	fail "inode numbers changed"
sffs_unmount "$mnt"

step "norelocate: LD_LIBRARY_PATH in the modulefile, and sinfo runs with it"
mnt=$TEST_TMP/n
mount_bc "$mnt" "$TEST_TMP/n.log" -o norelocate
check_files "$mnt/modules" "$mnt" "$NGINX_URL/v3/"
f=$mnt/modules/$sname/$sver-${shash:0:7}.lua
grep -qF 'prepend_path("LD_LIBRARY_PATH", pathJoin(prefix, "lib"))' "$f" || fail "norelocate: $(cat "$f")"
printf 'ClusterName=sffs\nSlurmctldHost=localhost\nPluginDir=%s\n' "$mnt/$sdir/lib/slurm" >"$TEST_TMP/n.conf"
if out=$(env -i SLURM_CONF="$TEST_TMP/n.conf" timeout 60 "$mnt/$sdir/bin/sinfo" --version 2>&1); then
	fail "unrelocated sinfo ran without the module, the test would prove nothing: $out"
fi
out=$(lmod "$mnt/modules" "$over-${ohash:0:7}" v3) || fail "module command failed (status $?): $out"
check_lmod "$out" "$mnt" yes
sffs_unmount "$mnt"

step "catalog: MNT/<v>/<tc>/buildcache/modules/"
cat=$www/catalog
mkdir -p "$cat/25.11/noble" "$www/bcbase/noble"
art=$cat/25.11/noble/slurm-25.11-noble-software.tar.gz
cp "$fx/$FIXTURE_NAME.tar.gz" "$art"
"$SFFS_INDEX" -q "$art" -o "$art.sfidx" --sign-with "$KEY" 2>/dev/null || fail "sffs-index --sign-with failed"
cp -a "$www/v3" "$www/bcbase/noble/spack"
cmnt=$TEST_TMP/cat
mount_fg "$NGINX_URL/catalog/" "$cmnt" "$TEST_TMP/cat.log" \
	-o "allow_insecure,cache_dir=$TEST_TMP/cache,versions=25.11,toolchains=noble,trust=$KEY" \
	-o "keyring=$TEST_TMP/key.gpg,buildcache_base=$NGINX_URL/bcbase/"
bc=$cmnt/25.11/noble/buildcache
ls "$bc" | grep -qx modules || fail "buildcache/ does not list modules/: $(ls "$bc")"
[ "$(ls "$bc" | grep -vcx modules)" -eq "$npk" ] || fail "buildcache/ lists other packages: $(ls "$bc")"
check_files "$bc/modules" "$bc" "$NGINX_URL/bcbase/noble/spack/"
[ "$(cd "$bc/modules/$sname/.." && pwd)" = "$bc/modules" ] || fail "'..' of buildcache/modules/$sname"
[ "$(cd "$bc/modules/.." && pwd)" = "$bc" ] || fail "'..' of buildcache/modules"
[ -e "$cmnt/modules/slurm/25.11-noble.lua" ] || fail "the artifact's modulefile is gone"
out=$(lmod "$bc/modules" "$over-${ohash:0:7}" bcbase/noble/spack) || fail "module command failed (status $?): $out"
check_lmod "$out" "$bc" no
sffs_unmount "$cmnt"
