#!/usr/bin/env bash
# A tarball view whose ELF files carry RPATHs and strings under the
# factory's padded build tree (as the factory's real views do; its
# modulefile sets LD_LIBRARY_PATH "as a fallback" for that reason), served
# with -o relocate=OLD:
#   - without the option, sinfo cannot find libslurm (the RPATH points at
#     the build tree); with it, `env -i MNT/view/bin/sinfo --version` runs;
#   - every file equals an independent reference of Spack's binary
#     relocation (tests/lib/spack_relocate_ref.py, OLD -> MNT) applied to
#     GNU tar's extraction, byte for byte, after the page cache is dropped
#     (the daemon's counters show the reads reached it), and ranges read
#     at odd offsets agree too;
#   - user.sffs.relocation says what was done to a file;
#   - a build tree shorter than the mount path cannot hold it: those
#     binaries are served as archived, with a log line, and say "refused".
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool patchelf python3 getfattr tar gzip

fx=$(fixture_dir)
ref=$SFFS_SRC/tests/lib/spack_relocate_ref.py
www=$TEST_TMP/www
mkdir -p "$www"

# shellcheck source=tests/lib/spack-root.sh
source "$SFFS_SRC/tests/lib/spack-root.sh"
OLD=$(spack_padded_root)
SHORT=/opt/sf # shorter than any mount path here: must be refused

# make_view NAME ROOT: the fixture's tree with every ELF file's RPATH at
# ROOT/view/lib (and lib/slurm) and C strings under ROOT, as NAME.tar.gz.
make_view() {
	local name=$1 root=$2 src=$TEST_TMP/$1 f
	rm -rf "$src" && cp -a "$fx/extract" "$src"
	while IFS= read -r f; do
		head -c 4 "$f" | grep -q ELF || continue
		chmod u+w "$f"
		patchelf --force-rpath --set-rpath "$root/view/lib:$root/view/lib/slurm" "$f"
		printf '%s\0' "$root/view/etc/slurm/slurm.conf" "$root/view/lib" \
			"$root/view/share/doc" >>"$f"
	done < <(find "$src/view" -type f | sort)
	tar -C "$src" -czf "$www/$name.tar.gz" .
	echo "$src"
}

# Slurm 22.05 reads slurm.conf even for --version (test_slurm.sh).
conf=$TEST_TMP/slurm.conf
printf 'ClusterName=sffs\nSlurmctldHost=localhost\nPluginDir=%s\n' "$fx/extract/view/lib/slurm" >"$conf"

step "views"
src=$(make_view padded "$OLD")
short=$(make_view short "$SHORT")
nginx_start "$www"

step "unrelocated sinfo fails"
m0=$TEST_TMP/m0
sffs_mount "$NGINX_URL/padded.tar.gz" "$m0"
if env -i SLURM_CONF="$conf" "$m0/view/bin/sinfo" --version >"$TEST_TMP/out0" 2>&1; then
	fail "sinfo ran although its RPATH points at the build tree: $(cat "$TEST_TMP/out0")"
fi
grep -q "libslurm" "$TEST_TMP/out0" || fail "unexpected failure: $(cat "$TEST_TMP/out0")"
getfattr -n user.sffs.relocation "$m0/view/bin/sinfo" >/dev/null 2>&1 &&
	fail "a mount without -o relocate says it relocates"
sffs_unmount "$m0"

step "relocated mount"
mnt=$TEST_TMP/mnt
mkdir -p "$mnt"
mnt=$(cd "$mnt" && pwd)
mount_fg "$NGINX_URL/padded.tar.gz" "$mnt" "$TEST_TMP/sffs.log" \
	-o "relocate=$OLD,cache_dir=$TEST_TMP/cache"
out=$(env -i SLURM_CONF="$conf" "$mnt/view/bin/sinfo" --version 2>&1) || fail "sinfo from the relocated view: $out"
[[ $out =~ ^slurm(-wlm)?\ 22\.05 ]] || fail "sinfo --version printed '$out'"
log "env -i sinfo --version: $out"
x=$(getfattr --only-values -n user.sffs.relocation "$mnt/view/bin/sinfo")
[[ $x =~ ^binary:\ [0-9]+\ patches$ ]] || fail "sinfo's relocation xattr: '$x'"
x=$(getfattr --only-values -n user.sffs.relocation "$mnt/modules/slurm/22.05-bookworm.lua")
[ "$x" = "not yet read" ] || [ "$x" = "unchanged" ] || fail "a modulefile's relocation xattr: '$x'"

step "reference"
exp=$TEST_TMP/expected
rm -rf "$exp" && cp -a "$src" "$exp"
n=0
: >"$TEST_TMP/jobs.tsv"
while IFS= read -r f; do
	head -c 4 "$f" | grep -q ELF || continue
	rel=${f#"$src"/}
	printf 'binary\t%s\t%s\t%s\t%s\n' "$f" "$exp/$rel" "$OLD" "$mnt" >>"$TEST_TMP/jobs.tsv"
	n=$((n + 1))
done < <(find "$src/view" -type f | sort)
python3 "$ref" batch "$TEST_TMP/jobs.tsv" >"$TEST_TMP/ref.out" || fail "reference failed"
[ "$(grep -cx 0 "$TEST_TMP/ref.out")" = "$n" ] || fail "the reference refused some of the $n binaries"
log "$n ELF files relocated by the reference"

step "compare"
echo 3 >/proc/sys/vm/drop_caches
before=$(getfattr --only-values -n user.sffs.stats "$mnt" | grep -o 'reads_cached=[0-9]*\|reads_queued=[0-9]*' | tr '\n' ' ')
diff -r --no-dereference "$exp" "$mnt" >"$TEST_TMP/diff" 2>&1 ||
	fail "the mount differs from the reference: $(head -5 "$TEST_TMP/diff")"
after=$(getfattr --only-values -n user.sffs.stats "$mnt" | grep -o 'reads_cached=[0-9]*\|reads_queued=[0-9]*' | tr '\n' ' ')
[ "$before" != "$after" ] || fail "the comparison never reached the daemon ($after)"
log "every file equals the reference (reads: $before-> $after)"
ov=$(getfattr --only-values -n user.sffs.stats "$mnt" | grep -o 'reloc_overlays=[0-9]*' | cut -d= -f2)
[ "${ov:-0}" -gt 0 ] || fail "no read went through the relocation overlay"
log "reads that overlaid patches: $ov"
# ranges at odd offsets through the overlay
for f in view/bin/sinfo view/lib/libslurmfull.so view/sbin/slurmd; do
	[ -f "$exp/$f" ] || continue
	size=$(stat -c %s "$exp/$f")
	for off in 0 1 4095 4097 $((size / 3)) $((size - 4099)) $((size - 7)); do
		[ "$off" -ge 0 ] || continue
		cmp <(tail -c +$((off + 1)) "$mnt/$f" | head -c 12345) \
			<(tail -c +$((off + 1)) "$exp/$f" | head -c 12345) ||
			fail "$f at offset $off differs"
	done
done
st=$(getfattr --only-values -n user.sffs.relocation "$mnt")
log "root: $st"
[[ $st =~ ^relocated: ]] || fail "the root's relocation xattr: '$st'"
sffs_unmount "$mnt"

step "refused"
m2=$TEST_TMP/mnt-short-tree-but-a-long-mount-path
mkdir -p "$m2"
mount_fg "$NGINX_URL/short.tar.gz" "$m2" "$TEST_TMP/sffs2.log" \
	-o "relocate=$SHORT,cache_dir=$TEST_TMP/cache2"
diff -r --no-dereference "$short" "$m2" >"$TEST_TMP/diff2" 2>&1 ||
	fail "a refused view differs from its extraction: $(head -5 "$TEST_TMP/diff2")"
x=$(getfattr --only-values -n user.sffs.relocation "$m2/view/bin/sinfo")
[[ $x =~ ^refused: ]] || fail "sinfo's relocation xattr after a refusal: '$x'"
grep -q "cannot be relocated" "$TEST_TMP/sffs2.log" || fail "no log line for the refusal"
log "refused: $x"
