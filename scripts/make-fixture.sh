#!/usr/bin/env bash
# Build a test fixture in the Slurm Factory tarball layout from Debian 12's
# real Slurm 22.05 and munge packages.
#
# usage: make-fixture.sh OUTDIR [--filler SIZE]
#
# Writes into OUTDIR:
#   slurm-22.05-bookworm-software.tar      uncompressed, reproducible (pax)
#   slurm-22.05-bookworm-software.tar.gz   gzip -6 -n, one member
#   slurm-22.05-bookworm-software.tar.zst  independent zstd frames (-3), one
#                                          per 1 MiB of tar, each with its
#                                          content size
#   extract/                               GNU tar's extraction of the .tar:
#                                          the reference for byte comparisons
#   debs/                                  apt-get download cache (reused)
#
# Layout of the tarball (the seed document's):
#   view/{bin,sbin,lib,lib/slurm,lib64,include/slurm,share,etc/slurm}
#   modules/slurm/22.05-bookworm.lua
#   data/slurm_assets/{slurm_install.sh,defaults/,slurm/,mysql/}
# Binaries, plugins and every non-glibc library they need are bundled and
# given a RUNPATH relative to $ORIGIN, so the tree runs wherever it lies.
#
# --filler SIZE (default 0) adds deterministic, realistically compressible
# content (copies of this machine's shared libraries and /usr/share/doc
# files, cycled, plus about 10% pseudo-random data) under view/lib/filler,
# view/share/doc/filler and view/share/filler-data until the .tar.gz is
# roughly SIZE bytes larger. SIZE takes SI suffixes: 500M = 500*10^6,
# 1.5G = 1500M. Filler content depends on the host's files; the rest of the
# fixture depends only on the Debian package versions.
#
# Re-running with the same script and SIZE does nothing (a stamp records the
# script's sha256 and SIZE). Concurrent runs on one OUTDIR serialize on a
# lock.
set -euo pipefail

NAME=slurm-22.05-bookworm-software
MODULE=22.05-bookworm
MTIME=1700000000
ZSTD_FRAME=1M

# The packages whose files make up the tree; the libraries they need are
# found by following their ELF dependencies (see resolve_libs).
SLURM_PKGS=(slurm-client slurmctld slurmd slurmdbd slurm-wlm-basic-plugins
	libslurm38 libslurm-dev slurm-wlm-doc munge libmunge2)

# Sonames that glibc (libc6) provides: these stay on the host.
BASE_SONAMES=" ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libmvec.so.1
	libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 libutil.so.1
	libanl.so.1 libBrokenLocale.so.1 libnss_files.so.2 libnss_dns.so.2
	libthread_db.so.1 libc_malloc_debug.so.0 "

die() {
	echo "make-fixture: $*" >&2
	exit 1
}

log() {
	echo "make-fixture: $*" >&2
}

usage() {
	echo "usage: $0 OUTDIR [--filler SIZE]" >&2
	exit 2
}

parse_args() {
	[ $# -ge 1 ] || usage
	OUTDIR=$1
	shift
	FILLER=0
	while [ $# -gt 0 ]; do
		case $1 in
		--filler)
			[ $# -ge 2 ] || usage
			FILLER=$2
			shift 2
			;;
		--filler=*)
			FILLER=${1#--filler=}
			shift
			;;
		*) usage ;;
		esac
	done
	FILLER_BYTES=$(numfmt --from=si "$FILLER") ||
		die "bad --filler size: $FILLER"
}

is_elf() {
	local magic=
	[ -f "$1" ] && [ ! -L "$1" ] || return 1
	LC_ALL=C read -r -N 4 magic <"$1" 2>/dev/null || true
	[ "$magic" = $'\x7fELF' ]
}

needed_of() {
	objdump -p "$1" | awk '$1 == "NEEDED" { print $2 }'
}

deb_of() {
	find "$DEBS" -maxdepth 1 -name "${1}_*.deb" | sort | tail -n 1
}

apt_download() {
	(cd "$DEBS" && apt-get download -q "$@" >"$WORK/apt.log" 2>&1)
}

# Download (into the cache, one apt-get call for all that are missing) and
# extract packages into $WORK/pkgs/<pkg>.
fetch_pkgs() {
	local pkg missing=() deb
	for pkg in "$@"; do
		[ -n "$(deb_of "$pkg")" ] || missing+=("$pkg")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "apt-get download ${missing[*]}"
		if ! apt_download "${missing[@]}"; then
			# Stale or missing package lists: refresh once (as root).
			[ "$(id -u)" -eq 0 ] && apt-get update -qq >>"$WORK/apt.log" 2>&1
			apt_download "${missing[@]}" || {
				cat "$WORK/apt.log" >&2
				die "apt-get download failed (run apt-get update?)"
			}
		fi
	fi
	for pkg in "$@"; do
		[ -d "$WORK/pkgs/$pkg" ] && continue
		deb=$(deb_of "$pkg")
		[ -n "$deb" ] || die "no .deb for $pkg after download"
		mkdir -p "$WORK/pkgs/$pkg"
		dpkg -x "$deb" "$WORK/pkgs/$pkg"
	done
}

# Direct library dependencies (first alternative of each) of the packages
# given, as lines "PKG DEP"; one apt-cache call, as each costs a second.
lib_deps_of() {
	apt-cache depends --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances "$@" 2>/dev/null |
		awk '
		/^[^ ]/ { pkg = $1; prev_or = 0; next }
		/^ *\|?(Pre)?Depends: / {
			first = !prev_or
			prev_or = ($1 ~ /^\|/)
			dep = $2
			if (first && dep !~ /^</ && dep != "libc6" &&
			    (dep ~ /^lib/ || dep == "zlib1g"))
				print pkg, dep
		}'
}

# Where a soname lives among the extracted library packages, if anywhere.
find_soname() {
	local so=$1 pkg d
	for pkg in $LIB_PKGS; do
		for d in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu; do
			if [ -e "$WORK/pkgs/$pkg/$d/$so" ]; then
				echo "$pkg $WORK/pkgs/$pkg/$d/$so"
				return 0
			fi
		done
	done
	return 1
}

# Follow DT_NEEDED from every Slurm/munge object: each soname that glibc
# does not provide must come from a library package, found among the direct
# dependencies of the package that needs it. Sets BUNDLE (soname paths).
resolve_libs() {
	local queue=() seen=" " pkg f so hit dep item round=0
	LIB_PKGS="libslurm38 libmunge2"
	for pkg in "${SLURM_PKGS[@]}"; do
		while IFS= read -r f; do
			is_elf "$f" || continue
			for so in $(needed_of "$f"); do
				queue+=("$so:$pkg")
			done
		done < <(find "$WORK/pkgs/$pkg" -type f)
	done
	BUNDLE=()
	while [ ${#queue[@]} -gt 0 ]; do
		round=$((round + 1))
		[ $round -le 20 ] || die "library closure does not converge"
		local unresolved=()
		for item in "${queue[@]}"; do
			so=${item%%:*}
			case $BASE_SONAMES in *" $so "*) continue ;; esac
			case $seen in *" $so "*) continue ;; esac
			[ "$so" = libslurmfull.so ] && continue
			if hit=$(find_soname "$so"); then
				seen="$seen$so "
				f=${hit#* }
				BUNDLE+=("$f")
				for dep in $(needed_of "$(readlink -f "$f")"); do
					unresolved+=("$dep:${hit%% *}")
				done
			else
				unresolved+=("$item")
			fi
		done
		# Fetch the dependencies of the packages that still miss a soname.
		local new=() srcs=()
		queue=()
		for item in "${unresolved[@]}"; do
			so=${item%%:*}
			case $BASE_SONAMES in *" $so "*) continue ;; esac
			case $seen in *" $so "*) continue ;; esac
			queue+=("$item")
			find_soname "$so" >/dev/null && continue
			case " ${srcs[*]} " in *" ${item#*:} "*) continue ;; esac
			srcs+=("${item#*:}")
		done
		if [ ${#srcs[@]} -gt 0 ]; then
			while read -r pkg dep; do
				case " $LIB_PKGS ${new[*]} " in *" $dep "*) continue ;; esac
				new+=("$dep")
			done < <(lib_deps_of "${srcs[@]}")
		fi
		if [ ${#new[@]} -gt 0 ]; then
			fetch_pkgs "${new[@]}"
			LIB_PKGS="$LIB_PKGS ${new[*]}"
		elif [ ${#queue[@]} -gt 0 ]; then
			for item in "${queue[@]}"; do
				find_soname "${item%%:*}" >/dev/null ||
					die "cannot find ${item%%:*} (needed by ${item#*:})"
			done
		fi
	done
}

# Copy a library's soname link and the file it points at into view/lib.
bundle_lib() {
	local path=$1 real
	real=$(readlink -f "$path")
	cp -n "$real" "$VIEW/lib/"
	if [ "$(basename "$real")" != "$(basename "$path")" ]; then
		ln -sfn "$(basename "$real")" "$VIEW/lib/$(basename "$path")"
	fi
}

copy_tree() {
	# copy_tree SRC DST: contents of SRC into DST, keeping symlinks.
	mkdir -p "$2"
	cp -a "$1/." "$2/"
}

layout_bin() {
	local p=$WORK/pkgs f b
	mkdir -p "$VIEW/bin" "$VIEW/sbin"
	for f in "$p"/slurm-client/usr/bin/* "$p"/munge/usr/bin/*; do
		cp -a "$f" "$VIEW/bin/"
	done
	for b in slurmctld slurmd slurmstepd; do
		f=$(find "$p" -path "*/usr/sbin/$b-wlm" | head -n 1)
		[ -n "$f" ] || die "no $b-wlm in the packages"
		cp "$f" "$VIEW/sbin/$b"
	done
	cp "$p/slurmdbd/usr/sbin/slurmdbd" "$p"/munge/usr/sbin/* "$VIEW/sbin/"
}

layout_lib() {
	local p=$WORK/pkgs f
	mkdir -p "$VIEW/lib/slurm" "$VIEW/include"
	for f in "$p"/slurm-wlm-basic-plugins/usr/lib/x86_64-linux-gnu/slurm-wlm/*; do
		case $(basename "$f") in
		libslurmfull.so) cp -a "$f" "$VIEW/lib/" ;;
		*) cp -a "$f" "$VIEW/lib/slurm/" ;;
		esac
	done
	cp -a "$p"/libslurm38/usr/lib/x86_64-linux-gnu/libslurm.so.* "$VIEW/lib/"
	cp -a "$p"/libslurm-dev/usr/lib/x86_64-linux-gnu/libslurm.so "$VIEW/lib/"
	cp -a "$p"/libmunge2/usr/lib/x86_64-linux-gnu/libmunge.so.* "$VIEW/lib/"
	for f in "${BUNDLE[@]}"; do
		bundle_lib "$f"
	done
	ln -s lib "$VIEW/lib64"
	copy_tree "$p/libslurm-dev/usr/include/slurm" "$VIEW/include/slurm"
}

layout_share() {
	local p=$WORK/pkgs pkg f
	local sh=$VIEW/share
	mkdir -p "$sh/man" "$sh/doc/slurm" "$sh/doc/munge" "$sh/licenses"
	for pkg in "${SLURM_PKGS[@]}" $LIB_PKGS; do
		if [ -d "$p/$pkg/usr/share/man" ]; then
			cp -a "$p/$pkg/usr/share/man/." "$sh/man/"
		fi
		f=$p/$pkg/usr/share/doc/$pkg/copyright
		if [ -f "$f" ]; then
			mkdir -p "$sh/licenses/$pkg"
			cp "$f" "$sh/licenses/$pkg/"
		fi
	done
	# Debian names the daemons' pages after its alternatives; keep both.
	copy_tree "$p/slurm-wlm-doc/usr/share/doc/slurm-wlm/html" "$sh/doc/slurm/html"
	cp -a "$p"/slurmctld/usr/share/doc/slurmctld/slurm-wlm-configurator*.html \
		"$sh/doc/slurm/"
	cp -a "$p"/munge/usr/share/doc/munge/. "$sh/doc/munge/"
	rm -f "$sh/doc/munge/copyright" "$sh/doc/munge/changelog.Debian.gz"
	copy_tree "$p/slurm-client/usr/share/bash-completion" "$sh/bash-completion"
	mkdir -p "$VIEW/etc/slurm"
	local ex=$p/slurmctld/usr/share/doc/slurmctld/examples
	gzip -dc "$ex/slurm.conf.simple.gz" >"$VIEW/etc/slurm/slurm.conf.example"
	gzip -dc "$ex/cgroup.conf.gz" >"$VIEW/etc/slurm/cgroup.conf.example"
	gzip -dc "$ex/slurmdbd.conf.simple.gz" >"$VIEW/etc/slurm/slurmdbd.conf.example"
	cp "$p/slurm-wlm-basic-plugins/etc/slurm/plugstack.conf" "$VIEW/etc/slurm/"
}

# A few hard links and symlinks, as packages (and Debian's alternatives) have.
layout_links() {
	ln "$VIEW/sbin/slurmctld" "$VIEW/sbin/slurmctld-wlm"
	ln "$VIEW/sbin/slurmd" "$VIEW/sbin/slurmd-wlm"
	ln -s slurmstepd "$VIEW/sbin/slurmstepd-wlm"
}

# RUNPATH, not RPATH (patchelf's default), relative to each object: it is
# not transitive, so every object carries its own.
# shellcheck disable=SC2016
set_runpaths() {
	local f
	while IFS= read -r f; do
		is_elf "$f" || continue
		case $f in
		"$VIEW"/bin/* | "$VIEW"/sbin/*) patchelf --set-rpath '$ORIGIN/../lib' "$f" ;;
		"$VIEW"/lib/slurm/*) patchelf --set-rpath '$ORIGIN/..' "$f" ;;
		"$VIEW"/lib/*) patchelf --set-rpath '$ORIGIN' "$f" ;;
		esac
	done < <(find "$VIEW/bin" "$VIEW/sbin" "$VIEW/lib" -type f | sort)
}

write_modulefile() {
	mkdir -p "$STAGE/modules/slurm"
	cat >"$STAGE/modules/slurm/$MODULE.lua" <<'EOF'
-- -*- lua -*-
-- Slurm 22.05 (Debian bookworm build), Slurm Factory layout.
whatis("Name: slurm")
whatis("Version: 22.05")
whatis("Toolchain: bookworm")
whatis("Description: Slurm workload manager, relocatable view")
help([[
Slurm 22.05 built for Debian 12 (bookworm).
The install prefix is $SLURM_INSTALL_PREFIX when set; otherwise the view/
directory beside this modulefile's modules/ directory, so the module works
wherever the tarball is extracted or mounted.
]])

local function prefix_from_here()
	-- <root>/modules/slurm/<ver>.lua -> <root>/view
	local here = myFileName()
	local root = here:match("^(.*)/modules/slurm/[^/]+$")
	if root == nil then
		return "/opt/slurm/view"
	end
	return pathJoin(root, "view")
end

local prefix = os.getenv("SLURM_INSTALL_PREFIX")
if prefix == nil or prefix == "" then
	prefix = prefix_from_here()
end

conflict("slurm")
prepend_path("PATH", pathJoin(prefix, "sbin"))
prepend_path("PATH", pathJoin(prefix, "bin"))
prepend_path("MANPATH", pathJoin(prefix, "share/man"))
prepend_path("CPATH", pathJoin(prefix, "include"))
prepend_path("LIBRARY_PATH", pathJoin(prefix, "lib"))
setenv("SLURM_ROOT", prefix)
EOF
}

write_units() {
	local d=$ASSETS/defaults u
	mkdir -p "$d"
	for u in slurmd slurmctld slurmdbd; do
		sed -e 's|/usr/sbin/|/opt/slurm/view/sbin/|' \
			-e 's|/etc/slurm/|/opt/slurm/view/etc/slurm/|' \
			"$WORK/pkgs/$u/lib/systemd/system/$u.service" >"$d/$u.service"
	done
}

write_templates() {
	local t=$ASSETS/slurm
	mkdir -p "$t" "$ASSETS/mysql"
	{
		echo "# slurm.conf template: slurm_install.sh substitutes @VARS@."
		sed -e 's/^ClusterName=.*/ClusterName=@CLUSTER_NAME@/' \
			-e 's/^SlurmctldHost=.*/SlurmctldHost=@CONTROLLER@/' \
			-e 's/^NodeName=.*/NodeName=@NODENAME@ CPUs=@CPUS@ RealMemory=@MEMORY@/' \
			"$VIEW/etc/slurm/slurm.conf.example"
		echo "PluginDir=@PREFIX@/lib/slurm"
	} >"$t/slurm.conf.template"
	sed -e 's/^DbdHost=.*/DbdHost=@CONTROLLER@/' \
		"$VIEW/etc/slurm/slurmdbd.conf.example" >"$t/slurmdbd.conf.template"
	cat >"$t/cgroup.conf.template" <<'EOF'
# cgroup.conf template
CgroupPlugin=autodetect
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainDevices=no
EOF
	cat >"$t/topology.conf.template" <<'EOF'
# topology.conf template: one switch with every node.
SwitchName=s0 Nodes=@NODENAME@
EOF
	cat >"$ASSETS/mysql/slurm_acct_db.sql" <<'EOF'
-- Accounting database for slurmdbd.
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'CHANGEME';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

write_install_script() {
	cat >"$ASSETS/slurm_install.sh" <<'EOF'
#!/bin/sh
# Configure this relocatable Slurm on the local machine.
# usage: slurm_install.sh [--full-init] [--cluster-name NAME]
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${SLURM_INSTALL_PREFIX:-$here/view}
cluster=cluster
full=0
while [ $# -gt 0 ]; do
	case $1 in
	--full-init) full=1; shift ;;
	--cluster-name) cluster=$2; shift 2 ;;
	*) echo "unknown option: $1" >&2; exit 2 ;;
	esac
done
assets=$here/data/slurm_assets
host=$(hostname -s)
mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
sed -e "s|@CLUSTER_NAME@|$cluster|" -e "s|@CONTROLLER@|$host|" \
	-e "s|@NODENAME@|$host|" -e "s|@CPUS@|$(nproc)|" -e "s|@MEMORY@|1000|" \
	-e "s|@PREFIX@|$prefix|" \
	"$assets/slurm/slurm.conf.template" >/etc/slurm/slurm.conf
if [ "$full" = 1 ]; then
	cp "$assets/slurm/cgroup.conf.template" /etc/slurm/cgroup.conf
	for u in slurmd slurmctld slurmdbd; do
		sed "s|/opt/slurm/view|$prefix|g" "$assets/defaults/$u.service" \
			>/etc/systemd/system/$u.service
	done
fi
echo "Slurm configured for cluster $cluster from $prefix"
EOF
}

normalize_modes() {
	find "$STAGE" -type d -exec chmod 0755 {} +
	find "$STAGE" -type f -perm /111 -exec chmod 0755 {} +
	find "$STAGE" -type f ! -perm /111 -exec chmod 0644 {} +
}

# Filler: cycle through a pool of host files (compressed size of each
# measured once with zlib level 6) and pseudo-random blobs until the
# estimated compressed total reaches the target.
add_filler() {
	[ "$FILLER_BYTES" -gt 0 ] || return 0
	log "adding filler for ~$FILLER_BYTES compressed bytes"
	python3 - "$VIEW" "$FILLER_BYTES" <<'EOF'
import os, random, shutil, sys, zlib

view, target = sys.argv[1], int(sys.argv[2])
pool = []
libdir = "/usr/lib/x86_64-linux-gnu"
for name in sorted(os.listdir(libdir)):
    p = os.path.join(libdir, name)
    if ".so" in name and os.path.isfile(p) and not os.path.islink(p):
        pool.append((p, "lib/filler", name))
for top, dirs, files in os.walk("/usr/share/doc"):
    dirs.sort()
    for name in sorted(files):
        p = os.path.join(top, name)
        if os.path.isfile(p) and not os.path.islink(p):
            pool.append((p, "share/doc/filler", os.path.relpath(p, "/usr/share/doc")))
pool = [e for e in pool if os.access(e[0], os.R_OK) and os.path.getsize(e[0]) > 0]
if not pool:
    sys.exit("no filler pool")
rng = random.Random(1700000000)
comp = {}
total = rand_total = 0
cycle = blob = 0
slack = target // 100 + (1 << 20)
while total < target:
    added = False
    for src, sub, rel in pool:
        if total >= target - slack:
            break
        if src not in comp:
            with open(src, "rb") as f:
                comp[src] = len(zlib.compress(f.read(), 6))
        if total + comp[src] > target + slack:
            continue
        dst = os.path.join(view, sub, "c%03d" % cycle, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        total += comp[src]
        added = True
        if rand_total < total // 10:
            n = min(rng.randint(1, 8) << 20, max(target - total, 1 << 16))
            dst = os.path.join(view, "share/filler-data", "c%03d" % cycle,
                               "blob-%05d.bin" % blob)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(rng.randbytes(n))
            blob += 1
            rand_total += n
            total += n
    cycle += 1
    if not added or total >= target - slack:
        break
print("filler: %d cycles, %d blobs, ~%d compressed bytes" % (cycle, blob, total),
      file=sys.stderr)
EOF
}

build_stage() {
	fetch_pkgs "${SLURM_PKGS[@]}"
	resolve_libs
	log "bundling ${#BUNDLE[@]} libraries from: $LIB_PKGS"
	layout_bin
	layout_lib
	layout_share
	set_runpaths
	layout_links
	write_modulefile
	write_units
	write_templates
	write_install_script
	add_filler
	normalize_modes
}

# Every object must find every non-glibc library inside the view.
check_closure() {
	local f so bad=0
	while IFS= read -r f; do
		is_elf "$f" || continue
		for so in $(needed_of "$f"); do
			case $BASE_SONAMES in *" $so "*) continue ;; esac
			[ -e "$VIEW/lib/$so" ] && continue
			echo "unresolved: $f needs $so" >&2
			bad=1
		done
	done < <(find "$VIEW/bin" "$VIEW/sbin" "$VIEW/lib" -path "$VIEW/lib/filler" -prune -o -type f -print)
	[ $bad -eq 0 ] || die "library closure incomplete"
	# And the dynamic loader agrees, with an empty environment.
	for f in "$VIEW/bin/sinfo" "$VIEW/sbin/slurmd" "$VIEW/sbin/munged" \
		"$VIEW/lib/slurm/auth_munge.so"; do
		if env -i ldd "$f" | grep -E '=> (not found|/)' |
			grep -v -F "$VIEW/" | grep -v -E '^\s*(libc|libm|libresolv|libpthread|libdl|librt)\.so'; then
			die "$f resolves libraries outside the view"
		fi
	done
	# Slurm 22.05 reads slurm.conf even for --version, and its compiled-in
	# PluginDir is Debian's: a site configuration names the view's.
	sinfo_runs "$VIEW" || die "sinfo --version does not run from the staged tree"
}

# sinfo_runs VIEW: sinfo --version works from VIEW with an empty environment.
sinfo_runs() {
	printf 'ClusterName=fixture\nSlurmctldHost=localhost\nPluginDir=%s\n' \
		"$1/lib/slurm" >"$WORK/probe.conf"
	env -i SLURM_CONF="$WORK/probe.conf" "$1/bin/sinfo" --version |
		grep -q -E '^slurm(-wlm)? 22\.05'
}

make_outputs() {
	local tar=$WORK/$NAME.tar
	log "writing $NAME.tar"
	tar --sort=name --mtime=@$MTIME --owner=0 --group=0 --numeric-owner \
		--format=posix \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$STAGE" -cf "$tar" data modules view
	log "writing $NAME.tar.gz"
	gzip -6 -n -c "$tar" >"$tar.gz"
	log "writing $NAME.tar.zst (one frame per $ZSTD_FRAME)"
	mkdir "$WORK/parts"
	split -b "$ZSTD_FRAME" -d -a 6 "$tar" "$WORK/parts/p"
	find "$WORK/parts" -type f -print0 | xargs -0 -n 16 -P 2 zstd -q -3 --rm
	find "$WORK/parts" -name '*.zst' | sort | xargs cat >"$tar.zst"
	rm -rf "$WORK/parts"
	mkdir "$WORK/extract"
	tar -C "$WORK/extract" -xf "$tar"
	sinfo_runs "$WORK/extract/view" ||
		die "sinfo --version does not run from the extracted tarball"
}

install_outputs() {
	rm -rf "$OUTDIR/extract" "$OUTDIR/$NAME".tar*
	mv "$WORK/extract" "$OUTDIR/extract"
	mv "$WORK/$NAME.tar" "$WORK/$NAME.tar.gz" "$WORK/$NAME.tar.zst" "$OUTDIR/"
}

# Record sizes, member and frame counts once (listing a big tar is slow).
record_sizes() {
	local f
	{
		for f in "$OUTDIR/$NAME".tar*; do
			printf '%12d  %s\n' "$(stat -c %s "$f")" "$(basename "$f")"
		done
		printf '%12d  members\n' "$(tar -tf "$OUTDIR/$NAME.tar" | wc -l)"
		printf '%12d  zstd frames\n' \
			"$(zstd -lv "$OUTDIR/$NAME.tar.zst" 2>/dev/null | awk '/^# Zstandard Frames:/ { print $4 }')"
	} >"$OUTDIR/fixture.sizes"
}

main() {
	parse_args "$@"
	mkdir -p "$OUTDIR"
	OUTDIR=$(cd "$OUTDIR" && pwd)
	exec 9>"$OUTDIR/.lock"
	flock 9
	local stamp want
	want="script=$(sha256sum "$0" | cut -d' ' -f1) filler=$FILLER_BYTES"
	stamp=$OUTDIR/fixture.stamp
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
		[ -d "$OUTDIR/extract" ] && [ -f "$OUTDIR/fixture.sizes" ]; then
		log "up to date in $OUTDIR"
		cat "$OUTDIR/fixture.sizes"
		return 0
	fi
	rm -f "$stamp"
	DEBS=$OUTDIR/debs
	WORK=$OUTDIR/.work
	STAGE=$WORK/stage
	VIEW=$STAGE/view
	ASSETS=$STAGE/data/slurm_assets
	rm -rf "$WORK"
	mkdir -p "$DEBS" "$WORK/pkgs" "$VIEW" "$ASSETS"
	build_stage
	check_closure
	make_outputs
	install_outputs
	rm -rf "$WORK"
	record_sizes
	echo "$want" >"$stamp"
	cat "$OUTDIR/fixture.sizes"
}

# On one line, so that bash never reads past it if the file is edited
# while it runs.
main "$@"; exit $?
