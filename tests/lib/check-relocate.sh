#!/bin/bash
# check-relocate.sh - the relocation engine (archive/relocate.c, driven by
# reloc_tool) byte for byte against tests/lib/spack_relocate_ref.py, an
# independent reference of Spack's relocation, on real ELF files.
#
# Each binary is given what a Spack buildcache package carries: with
# patchelf, an RPATH at its own and its dependencies' padded prefixes
# (padded_length 128, as the factory builds) and an interpreter under a
# dependency; and C strings holding those prefixes, appended to the file.
# Then both relocate it to short mount paths and must agree on every byte
# (reloc_tool writes the file range by range through reloc_apply) and on
# refusals. Text files and symlink targets are compared the same way.
# Last, a sinfo whose only way to its libraries is an RPATH at the padded
# prefix must fail to run, and run (`env -i ... sinfo --version`) once the
# engine has relocated it to where the libraries are.
#
# Environment: SFFS_RELOC_TOOL (the reloc_tool binary, required),
# SFFS_SRC, SFFS_TEST_TMP, SFFS_FIXTURE_DIR (real Slurm binaries; without
# it only the tool's own binary is used).
set -euo pipefail

SRC=${SFFS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TOOL=${SFFS_RELOC_TOOL:?set SFFS_RELOC_TOOL to the reloc_tool binary}
REF="$SRC/tests/lib/spack_relocate_ref.py"
mkdir -p "${SFFS_TEST_TMP:-${TMPDIR:-/tmp}}"
TMP=$(mktemp -d "${SFFS_TEST_TMP:-${TMPDIR:-/tmp}}/reloc.XXXXXX")
[ -n "${SFFS_KEEP_TMP:-}" ] || trap 'rm -rf "$TMP"' EXIT

log() { echo "[check-relocate] $*" >&2; }
fail() {
	echo "[check-relocate] FAIL: $*" >&2
	exit 1
}

# shellcheck source=tests/lib/spack-root.sh
source "$SRC/tests/lib/spack-root.sh"
ROOT=$(spack_padded_root)
H=abcdefghijklmnopqrstuvwxyz234567
PKG=$ROOT/linux-debian12-x86_64/gcc-12.2.0/slurm-22.05.8-$H
HWLOC=$ROOT/linux-debian12-x86_64/gcc-12.2.0/hwloc-2.9.0-${H:3}aaa
JSONC=$ROOT/linux-debian12-x86_64/gcc-12.2.0/json-c-0.16-${H:5}bbbbb
GLIBC=$ROOT/linux-debian12-x86_64/gcc-12.2.0/glibc-2.36-${H:7}ccccccc
NEW=/sf/22.05/gcc-12/buildcache
MAP=(--map "$HWLOC" "$NEW/hwloc-2.9.0-${H:3:7}"
	--map "$JSONC" "$NEW/json-c-0.16-${H:5:7}"
	--map "$GLIBC" "$NEW/glibc-2.36-${H:7:7}"
	--map "$PKG" "$NEW/slurm-22.05.8-${H:0:7}"
	--map "$ROOT" "$NEW")
WANT_RPATH="$NEW/slurm-22.05.8-${H:0:7}/lib:$NEW/hwloc-2.9.0-${H:3:7}/lib:$NEW/json-c-0.16-${H:5:7}/lib64:/usr/lib/x86_64-linux-gnu"
WANT_INTERP="$NEW/glibc-2.36-${H:7:7}/lib/ld-linux-x86-64.so.2"

# queue NAME KIND IN MAP...: runs the engine on IN now (prints its exit
# status) and queues the same job for the reference, which runs once for
# all jobs at the end (one Python start instead of hundreds).
queue() {
	local name=$1 kind=$2 in=$3 rc=0 line
	shift 3
	"$TOOL" "$kind" "$in" "$TMP/$name.c" "$@" 2>"$TMP/$name.c.err" || rc=$?
	line="$kind"$'\t'"$in"$'\t'"$TMP/$name.py"
	while [ $# -gt 0 ]; do
		line="$line"$'\t'"$2"$'\t'"$3"
		shift 3
	done
	printf '%s\n' "$line" >>"$TMP/jobs.tsv"
	printf '%s %s %s\n' "$name" "$rc" "$in" >>"$TMP/engine.txt"
	echo "$rc"
}

# Runs the reference on every queued job; both must agree on every exit
# status and every byte.
check_queue() {
	local name rc ref in k=0
	python3 "$REF" batch "$TMP/jobs.tsv" >"$TMP/ref.txt" 2>"$TMP/ref.err" ||
		fail "reference: $(cat "$TMP/ref.err")"
	while read -r name rc in <&3 && read -r ref <&4; do
		[ "$rc" = "$ref" ] ||
			fail "$name ($in): engine exit $rc ($(cat "$TMP/$name.c.err")), reference exit $ref"
		if [ "$rc" = 0 ]; then
			cmp "$TMP/$name.c" "$TMP/$name.py" >&2 ||
				fail "$name ($in): engine and reference differ"
		fi
		k=$((k + 1))
	done 3<"$TMP/engine.txt" 4<"$TMP/ref.txt"
	[ "$k" = "$(wc -l <"$TMP/jobs.tsv")" ] || fail "reference answered $k jobs"
	log "$k jobs: engine and reference agree"
	: >"$TMP/jobs.tsv"
	: >"$TMP/engine.txt"
}

# A binary as Spack's build leaves it: padded RPATH, interpreter, strings.
spackify() {
	local in=$1 out=$2
	cp "$in" "$out"
	chmod u+w "$out"
	patchelf --force-rpath --set-rpath \
		"$PKG/lib:$HWLOC/lib::$JSONC/lib64:/usr/lib/x86_64-linux-gnu" "$out"
	if patchelf --print-interpreter "$out" >/dev/null 2>&1; then
		patchelf --set-interpreter "$GLIBC/lib/ld-linux-x86-64.so.2" "$out"
	fi
	# C strings the way compilers embed prefixes: a long suffix (padded),
	# the bare prefix (cut short), a short suffix, a dependency, the root.
	printf '%s\0' "$PKG/etc/slurm/slurm.conf" "$PKG" "$PKG/lib" \
		"$HWLOC/share/hwloc/hwloc.dtd" "$ROOT/.spack-db" \
		"-I$JSONC/include" >>"$out"
}

ELFS=("$TOOL")
if [ -n "${SFFS_FIXTURE_DIR:-}" ]; then
	V=$SFFS_FIXTURE_DIR/extract/view
	[ -d "$V" ] || fail "no fixture extraction at $V"
	while IFS= read -r f; do ELFS+=("$f"); done < <(
		find "$V/bin" "$V/sbin" "$V/lib" -maxdepth 1 -type f | sort
		find "$V/lib/slurm" -maxdepth 1 -type f -name '*.so' | sort | head -20)
fi

n=0 patched=0 sys_changed=0 sys_refused=0
for f in "${ELFS[@]}"; do
	head -c 4 "$f" | grep -q ELF || continue
	n=$((n + 1))
	name=bin$n
	spackify "$f" "$TMP/$name.in"
	rc=$(queue "$name" binary "$TMP/$name.in" "${MAP[@]}")
	[ "$rc" = 0 ] || fail "$name ($f): refused: $(cat "$TMP/$name.c.err")"
	[ "$(patchelf --print-rpath "$TMP/$name.c")" = "$WANT_RPATH" ] ||
		fail "$name ($f): rpath $(patchelf --print-rpath "$TMP/$name.c")"
	if patchelf --print-interpreter "$TMP/$name.in" >/dev/null 2>&1; then
		[ "$(patchelf --print-interpreter "$TMP/$name.c")" = "$WANT_INTERP" ] ||
			fail "$name ($f): interpreter"
	fi
	# Spack leaves the tail of a string it cut short after the new NUL,
	# but no string may still hold the whole old root.
	! strings -n 20 "$TMP/$name.c" | grep -qF "$ROOT" ||
		fail "$name ($f): an old prefix is left"
	[ "$(stat -c %s "$TMP/$name.c")" = "$(stat -c %s "$TMP/$name.in")" ] ||
		fail "$name: size changed"
	patched=$((patched + 1))
	# Real strings, unpadded: system paths moved to shorter ones; the
	# engine and the reference must agree on the bytes or on refusing.
	rc=$(queue "${name}sys" binary "$f" --map /usr/lib/x86_64-linux-gnu /u/lib \
		--map /etc/slurm /s/etc --map /usr/share /u/s --map /usr /u)
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "${name}sys: exit $rc"
	if [ "$rc" = 0 ] && ! cmp -s "$f" "$TMP/${name}sys.c"; then
		sys_changed=$((sys_changed + 1))
	fi
	if [ "$rc" = 3 ]; then sys_refused=$((sys_refused + 1)); fi
done
[ "$patched" -ge 1 ] || fail "no ELF file compared"
log "$patched Spack-like binaries relocated by the engine (reference below)"
log "unpadded system paths: $sys_changed changed identically, $sys_refused refused by both"

step=refusals
log "== $step"
spackify "$TOOL" "$TMP/r.in"
# a new prefix longer than the old one (CannotGrowString / the rpath grows)
rc=$(queue grow binary "$TMP/r.in" --map "$PKG" "$PKG/and/longer")
[ "$rc" = 3 ] || fail "a longer prefix was not refused (exit $rc)"
# shorter by 3 with a different tail before a NUL (CannotShrinkCString)
rc=$(queue shrink binary "$TMP/r.in" --map "$PKG" "${PKG:0:${#PKG}-4}Z")
[ "$rc" = 3 ] || fail "a C string that cannot shrink was not refused (exit $rc)"

log "== text files"
t=0
{
	printf '#!/bin/sh %s/bin/sbang\nprefix=%s\nexec %s/bin/sinfo "$@"\n' "$ROOT" "$PKG" "$PKG"
	printf 'LDFLAGS=-L%s/lib -Wl,-rpath,%s/lib64\n' "$HWLOC" "$JSONC"
	printf 'x/%s a%s %s:%s\n' "$PKG" "$PKG" "$ROOT" "$ROOT/other-1.0-x"
} >"$TMP/t0.in"
rc=$(queue t0 text "$TMP/t0.in" "${MAP[@]}")
[ "$rc" = 0 ] && ! cmp -s "$TMP/t0.in" "$TMP/t0.c" || fail "synthetic text not relocated"
if [ -n "${SFFS_FIXTURE_DIR:-}" ]; then
	while IFS= read -r f; do
		t=$((t + 1))
		rc=$(queue "t$t" text "$f" --map /usr/lib /opt/a/much/longer/lib \
			--map /etc/slurm /E --map /usr /U --map /opt/slurm /o)
		[ "$rc" = 0 ] || fail "text $f: exit $rc"
	done < <(find "$SFFS_FIXTURE_DIR/extract" -type f -size -1000k | sort |
		while IFS= read -r f; do grep -Iq . "$f" && echo "$f"; done | head -60)
fi
log "$((t + 1)) text files queued"

check_queue

if [ -n "${SFFS_FIXTURE_DIR:-}" ]; then
	log "== a relocated sinfo runs with env -i"
	# sinfo finds libslurmfull.so only through its RPATH. Given the
	# package's padded prefix, it runs only once relocated to where the
	# libraries are.
	run=$TMP/run/p
	mkdir -p "$run/bin"
	ln -s "$V/lib" "$run/lib"
	printf 'ClusterName=sffs\nSlurmctldHost=localhost\nPluginDir=%s\n' "$V/lib/slurm" >"$TMP/run/slurm.conf"
	cp "$V/bin/sinfo" "$TMP/run/sinfo.in"
	chmod u+w "$TMP/run/sinfo.in"
	patchelf --force-rpath --set-rpath "$PKG/lib" "$TMP/run/sinfo.in"
	"$TOOL" binary "$TMP/run/sinfo.in" "$run/bin/sinfo" --map "$PKG" "$run" \
		--map "$ROOT" "$TMP/run" 2>/dev/null
	chmod +x "$run/bin/sinfo" "$TMP/run/sinfo.in"
	if env -i SLURM_CONF="$TMP/run/slurm.conf" "$TMP/run/sinfo.in" --version >/dev/null 2>&1; then
		fail "sinfo ran before relocation: the check would prove nothing"
	fi
	out=$(env -i SLURM_CONF="$TMP/run/slurm.conf" timeout 30 "$run/bin/sinfo" --version 2>&1) ||
		fail "relocated sinfo: $out"
	grep -qE '^slurm(-wlm)? 22\.05' <<<"$out" || fail "relocated sinfo --version: $out"
	log "relocated sinfo --version: $out"
fi

log "== symlinks"
for target in "$PKG/lib/libslurm.so.38" "$HWLOC/lib/libhwloc.so.15" \
	"$ROOT/x/y" "relative/$PKG" "/usr/lib/libc.so.6"; do
	a=$("$TOOL" link "$target" "${MAP[@]}")
	b=$(python3 "$REF" link "$target" "${MAP[@]}")
	[ "$a" = "$b" ] || fail "link $target: engine $a, reference $b"
done
log "PASS"
