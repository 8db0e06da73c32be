#!/usr/bin/env bash
# Build a catalog of Slurm Factory artifacts for the catalog-mode tests,
# from a fixture that scripts/make-fixture.sh made.
#
# usage: make-catalog.sh FIXTURE_DIR OUTDIR SFFS_INDEX_BIN
#
# Writes into OUTDIR:
#   seed/{25.11,24.11}/{noble,jammy}/slurm-{ver}-{tc}-software.tar.gz
#       the seed document's layout: view/ modules/ data/ from the fixture,
#       view/share/sffs-fixture/ARTIFACT ("{ver}-{tc}\n": every artifact
#       differs) and the fixture's modulefile as modules/slurm/{ver}-{tc}.lua
#       (its version and toolchain strings replaced); a published
#       TARBALL.sfidx beside each, except 24.11/jammy (the mount must build
#       that one itself)
#   factory/noble/25.11/{amd64,arm64}/slurm-25.11-noble-{arch}-software.tar.gz
#       the factory's layout: view/ only, with the same kind of marker
#       ("25.11-noble-{arch}\n") and view/assets/modules/slurm/25.11.lua
#       modelled on the factory's relocatable modulefile; published index
#       beside both. Both hold the fixture's x86_64 binaries: "arm64" is
#       only a name here.
#   extract/{seed-25.11-noble,seed-25.11-jammy,seed-24.11-noble,
#            seed-24.11-jammy,factory-25.11-noble-amd64,
#            factory-25.11-noble-arm64}/
#       GNU tar's extraction of each artifact's tar: separate trees (no hard links
#       between them), the references for byte-for-byte comparisons
#   catalog.sizes   one line per artifact: .tar.gz size, tar size, path,
#                   index size
#
# Reproducible: sorted names, fixed owner and mtime, pax headers without
# atime/ctime or a pid in their names, gzip -n -6 (one member, as the
# fixture's). The same script, fixture and sffs-index give the same bytes.
#
# Re-running does nothing when catalog.stamp (this script's sha256 and the
# fixture's stamp and sizes) matches; when only SFFS_INDEX_BIN changed
# (index.stamp holds its sha256 too) only the .sfidx files are rewritten.
# Concurrent runs on one OUTDIR serialize on a lock.
set -euo pipefail
umask 022

MTIME=1700000000
SEED_VERSIONS=(25.11 24.11)
SEED_TOOLCHAINS=(noble jammy)
FACTORY_ARCHES=(amd64 arm64)
NO_INDEX=seed-24.11-jammy
# The source of the factory modulefile this mimics (for the comment in it).
FACTORY_TEMPLATE="vantagecompute/slurm-factory data/templates/relocatable_modulefile.lua @ d44589f8e9b7"

die() {
	echo "make-catalog: $*" >&2
	exit 1
}

log() {
	echo "make-catalog: $*" >&2
}

usage() {
	echo "usage: $0 FIXTURE_DIR OUTDIR SFFS_INDEX_BIN" >&2
	exit 2
}

ubuntu_release() {
	case $1 in
	noble) echo "Ubuntu 24.04" ;;
	jammy) echo "Ubuntu 22.04" ;;
	*) echo "$1" ;;
	esac
}

# Every artifact as "ID KIND VERSION TOOLCHAIN ARCH RELPATH".
artifacts() {
	local v t a
	for v in "${SEED_VERSIONS[@]}"; do
		for t in "${SEED_TOOLCHAINS[@]}"; do
			echo "seed-$v-$t seed $v $t - seed/$v/$t/slurm-$v-$t-software.tar.gz"
		done
	done
	for a in "${FACTORY_ARCHES[@]}"; do
		echo "factory-25.11-noble-$a factory 25.11 noble $a factory/noble/25.11/$a/slurm-25.11-noble-$a-software.tar.gz"
	done
}

# write_file PATH: stdin to PATH as a new file (never through a hard link
# into the fixture: the staging trees are cp -al copies of it).
write_file() {
	rm -f "$1"
	mkdir -p "$(dirname "$1")"
	cat >"$1"
	chmod 0644 "$1"
}

# The fixture's modulefile, retargeted at VERSION and TOOLCHAIN.
seed_modulefile() {
	local v=$1 t=$2
	sed -e "s/$FIX_VER/$v/g" \
		-e "s/Debian $FIX_TC/$(ubuntu_release "$t") $t/g" \
		-e "s/Debian 12/$(ubuntu_release "$t")/g" \
		-e "s/$FIX_TC/$t/g" "$FIX_MODULE"
}

# A modulefile that behaves as the factory's relocatable one does: the
# prefix is $SLURM_INSTALL_PREFIX, else /opt/slurm/view, and loading fails
# unless prefix/bin/scontrol is a file.
factory_modulefile() {
	local v=$1 t=$2 a=$3
	cat <<EOF
-- -*- lua -*-
-- Test fixture modulefile for Slurm $v ($t, $a), written for sffs's tests.
-- Modelled on the Slurm Factory's relocatable modulefile:
--   $FACTORY_TEMPLATE
-- (same prefix rule and check; not a copy).
whatis([[Name : slurm]])
whatis([[Version : $v]])
whatis([[Toolchain : $t]])
whatis([[Target : $a]])
whatis([[Short description : Slurm workload manager]])
help([[
Slurm $v ($t, $a), relocatable. Set SLURM_INSTALL_PREFIX to the view's
path before loading when it is not /opt/slurm/view.
]])

local slurm_prefix = os.getenv("SLURM_INSTALL_PREFIX")
if not slurm_prefix then
	slurm_prefix = "/opt/slurm/view"
end

local scontrol = pathJoin(slurm_prefix, "bin", "scontrol")
if not isFile(scontrol) then
	LmodError("Slurm installation not found at: " .. slurm_prefix ..
		"\nExpected to find: " .. scontrol ..
		"\nPlease check SLURM_INSTALL_PREFIX or use default installation.")
end

prepend_path("PATH", pathJoin(slurm_prefix, "bin"))
prepend_path("PATH", pathJoin(slurm_prefix, "sbin"))
prepend_path("MANPATH", pathJoin(slurm_prefix, "share/man"))
prepend_path("CPATH", pathJoin(slurm_prefix, "include"))
prepend_path("PKG_CONFIG_PATH", pathJoin(slurm_prefix, "lib/pkgconfig"))
prepend_path("CMAKE_PREFIX_PATH", slurm_prefix)
for _, d in ipairs({"lib", "lib64", "lib/slurm"}) do
	local p = pathJoin(slurm_prefix, d)
	if isDir(p) then
		prepend_path("LD_LIBRARY_PATH", p)
	end
end
setenv("SLURM_INSTALL_PREFIX", slurm_prefix)
setenv("SLURM_ROOT", slurm_prefix)
if not os.getenv("SLURM_CONF") then
	setenv("SLURM_CONF", "/etc/slurm/slurm.conf")
end
setenv("SLURM_BUILD_TYPE", "relocatable")

conflict("slurm")
family("workloadmanager")
if mode() == "load" then
	LmodMessage("Loading Slurm $v from: " .. slurm_prefix)
end
EOF
}

# stage_artifact ID KIND VERSION TOOLCHAIN ARCH: $WORK/stage/ID, hard-linked
# from the fixture's extraction except for the files that differ.
stage_artifact() {
	local id=$1 kind=$2 v=$3 t=$4 a=$5 s=$WORK/stage/$1
	mkdir -p "$s"
	if [ "$kind" = seed ]; then
		cp -al "$FIXTURE/extract/view" "$FIXTURE/extract/modules" \
			"$FIXTURE/extract/data" "$s/"
		rm -f "$s/modules/slurm/$(basename "$FIX_MODULE")"
		seed_modulefile "$v" "$t" | write_file "$s/modules/slurm/$v-$t.lua"
		printf '%s-%s\n' "$v" "$t" |
			write_file "$s/view/share/sffs-fixture/ARTIFACT"
	else
		cp -al "$FIXTURE/extract/view" "$s/"
		factory_modulefile "$v" "$t" "$a" |
			write_file "$s/view/assets/modules/slurm/$v.lua"
		printf '%s-%s-%s\n' "$v" "$t" "$a" |
			write_file "$s/view/share/sffs-fixture/ARTIFACT"
	fi
	# The new directories, whatever umask made them.
	find "$s" -type d -exec chmod 0755 {} +
}

# build_artifact ID KIND VERSION TOOLCHAIN ARCH RELPATH: tarball, index and
# reference extraction under $WORK/out.
build_artifact() {
	local id=$1 kind=$2 rel=$6 s=$WORK/stage/$1 tarball=$WORK/out/$6
	local tops=(data modules view)
	[ "$kind" = seed ] || tops=(view)
	stage_artifact "$@"
	mkdir -p "$(dirname "$tarball")" "$WORK/out/extract/$id"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$MTIME \
		--format=pax \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$s" -cf "$WORK/$id.tar" "${tops[@]}"
	gzip -n -6 -c "$WORK/$id.tar" >"$tarball"
	# The reference: GNU tar's extraction of the same tar (the .tar.gz's
	# content; gunzipping it again would only cost time).
	tar -C "$WORK/out/extract/$id" -xf "$WORK/$id.tar"
	rm -f "$WORK/$id.tar"
	rm -rf "$s"
	[ "$id" = "$NO_INDEX" ] || make_index "$tarball"
	cmp -s "$WORK/out/extract/$id/view/share/sffs-fixture/ARTIFACT" \
		<(echo "${id#*-}") || die "$id: marker file is wrong after extraction"
	log "built $rel"
}

make_index() {
	# a fixed publication time (index 3.1): the same bytes every run
	SOURCE_DATE_EPOCH=$MTIME "$INDEX_BIN" "$1" -o "$1.sfidx.tmp" >"$1.sfidx.log" 2>&1 || {
		cat "$1.sfidx.log" >&2
		die "$INDEX_BIN $1 failed"
	}
	rm -f "$1.sfidx.log"
	mv -f "$1.sfidx.tmp" "$1.sfidx"
}

write_sizes() {
	local id kind v t a rel idx
	while read -r id kind v t a rel; do
		idx="no index"
		[ ! -f "$OUTDIR/$rel.sfidx" ] ||
			idx=".sfidx $(stat -c %s "$OUTDIR/$rel.sfidx")"
		printf '%10d %10d  %s  (%s)\n' "$(stat -c %s "$OUTDIR/$rel")" \
			"$(gzip -lq "$OUTDIR/$rel" | awk '{ print $2 }')" "$rel" "$idx"
	done < <(artifacts) >"$OUTDIR/catalog.sizes"
}

check_fixture() {
	local d
	for d in view modules data; do
		[ -d "$FIXTURE/extract/$d" ] ||
			die "no $d/ in $FIXTURE/extract (run make-fixture.sh)"
	done
	[ -f "$FIXTURE/fixture.stamp" ] || die "no fixture.stamp in $FIXTURE"
	local mods=("$FIXTURE"/extract/modules/slurm/*.lua)
	if [ ${#mods[@]} -ne 1 ] || [ ! -f "${mods[0]}" ]; then
		die "expected one modulefile in $FIXTURE/extract/modules/slurm"
	fi
	FIX_MODULE=${mods[0]}
	local name
	name=$(basename "$FIX_MODULE" .lua) # 22.05-bookworm
	FIX_VER=${name%%-*}
	FIX_TC=${name#*-}
	FIX_VER=${FIX_VER//./\\.}
	[ -e "$FIXTURE/extract/view/share/sffs-fixture" ] &&
		die "the fixture already has view/share/sffs-fixture"
	[ -e "$FIXTURE/extract/view/assets" ] &&
		die "the fixture already has view/assets"
	return 0
}

main() {
	[ $# -eq 3 ] || usage
	FIXTURE=$(cd "$1" && pwd) || die "no fixture directory $1"
	INDEX_BIN=$3
	[ -x "$INDEX_BIN" ] || die "sffs-index not executable: $INDEX_BIN"
	INDEX_BIN=$(cd "$(dirname "$INDEX_BIN")" && pwd)/$(basename "$INDEX_BIN")
	mkdir -p "$2"
	OUTDIR=$(cd "$2" && pwd)
	exec 9>"$OUTDIR/.lock"
	flock 9
	check_fixture
	local want want_index start=$SECONDS
	want="script=$(sha256sum "$0" | cut -d' ' -f1) fixture=$(cat "$FIXTURE/fixture.stamp" "$FIXTURE/fixture.sizes" | sha256sum | cut -d' ' -f1)"
	want_index="$want index=$(sha256sum "$INDEX_BIN" | cut -d' ' -f1)"
	WORK=$OUTDIR/.work
	if [ -f "$OUTDIR/catalog.stamp" ] && [ "$(cat "$OUTDIR/catalog.stamp")" = "$want" ] &&
		[ -f "$OUTDIR/catalog.sizes" ] && [ -d "$OUTDIR/extract" ]; then
		if [ "$(cat "$OUTDIR/index.stamp" 2>/dev/null)" != "$want_index" ]; then
			log "sffs-index changed: rewriting the published indexes"
			rm -f "$OUTDIR/index.stamp"
			local id kind v t a rel
			while read -r id kind v t a rel; do
				[ "$id" = "$NO_INDEX" ] || make_index "$OUTDIR/$rel"
			done < <(artifacts)
			echo "$want_index" >"$OUTDIR/index.stamp"
			write_sizes
		else
			log "up to date in $OUTDIR"
		fi
		cat "$OUTDIR/catalog.sizes"
		return 0
	fi
	rm -f "$OUTDIR/catalog.stamp" "$OUTDIR/index.stamp"
	rm -rf "$WORK"
	mkdir -p "$WORK/stage" "$WORK/out"
	# Two artifacts at a time (gzip is the cost; the machine is shared).
	local line pids=() n=0 pid
	while read -r line; do
		# shellcheck disable=SC2086
		build_artifact $line &
		pids+=($!)
		n=$((n + 1))
		if [ $((n % 2)) -eq 0 ]; then
			for pid in "${pids[@]}"; do wait "$pid" || die "an artifact failed"; done
			pids=()
		fi
	done < <(artifacts)
	for pid in "${pids[@]}"; do wait "$pid" || die "an artifact failed"; done
	rm -rf "$OUTDIR/seed" "$OUTDIR/factory" "$OUTDIR/extract"
	mv "$WORK/out/seed" "$WORK/out/factory" "$WORK/out/extract" "$OUTDIR/"
	write_sizes
	rm -rf "$WORK"
	echo "$want" >"$OUTDIR/catalog.stamp"
	echo "$want_index" >"$OUTDIR/index.stamp"
	log "done in $((SECONDS - start)) s"
	cat "$OUTDIR/catalog.sizes"
}

# On one line, so that bash never reads past it if the file is edited
# while it runs.
main "$@"; exit $?
