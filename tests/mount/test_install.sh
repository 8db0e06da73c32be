#!/usr/bin/env bash
# Installation: `cmake --install` puts sffs, sffs-index, both man pages, the
# /sf systemd units and the example config where they belong; `man` finds
# and renders the installed pages; then the installed sffs is mounted the
# way an operator does it, through mount(8) -> mount.fuse3 -> sffs, from an
# fstab line (type fuse.sffs) and with `mount -t fuse.sffs`: the mount is
# fuse.sffs, nosuid and nodev, serves the fixture's bytes, runs sinfo, and
# `umount` leaves no mount and no daemon behind.
#
# mount(8) clears PATH before it runs its helper, so mount.fuse3's
# `/bin/sh -c 'sffs ...'` finds sffs only on the shell's default PATH
# (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), never in
# $prefix/bin. So the test runs in a private mount namespace (unshare) in
# which the installed bin directory is bind-mounted over /usr/local/sbin,
# the first directory of that PATH: the host's /usr/local/sbin and mounts
# are untouched, and anything still mounted when the test ends goes away
# with the namespace.
if [ -z "${SFFS_INSTALL_NS:-}" ]; then
	command -v unshare >/dev/null 2>&1 || {
		echo "[test_install] FAIL: unshare is needed but not installed (util-linux)" >&2
		exit 1
	}
	SFFS_INSTALL_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
require_tool cmake man mount umount findmnt cmp

fx=$(fixture_dir)
ref=$fx/extract
name=$FIXTURE_NAME.tar.gz
prefix=$TEST_TMP/prefix

step "cmake --install"
cmake --install "$SFFS_BUILD" --prefix "$prefix" >"$TEST_TMP/install.log" 2>&1 ||
	fail "cmake --install failed: $(cat "$TEST_TMP/install.log")"
for f in bin/sffs bin/sffs-index; do
	[ -x "$prefix/$f" ] || fail "$f is not installed (or not executable)"
done
for f in share/man/man8/sffs.8 share/man/man1/sffs-index.1 \
	lib/systemd/system/sf.mount lib/systemd/system/sf.automount \
	share/doc/sffs/sffs.conf.example; do
	[ -s "$prefix/$f" ] || fail "$f is not installed"
done
# (not cmp: an install may rewrite a binary's RPATH)
[ "$("$prefix/bin/sffs" --version)" = "$("$SFFS_BIN" --version)" ] ||
	fail "the installed sffs --version: $("$prefix/bin/sffs" --version 2>&1)"
"$prefix/bin/sffs-index" --help | grep -q -- '--repack' || fail "the installed sffs-index --help"
log "installed: $(cd "$prefix" && find . -type f | sort | tr '\n' ' ')"

step "units"
units=$prefix/lib/systemd/system
grep -qx 'Type=fuse.sffs' "$units/sf.mount" || fail "sf.mount: no Type=fuse.sffs"
grep -qx 'Where=/sf' "$units/sf.mount" || fail "sf.mount: no Where=/sf"
grep -qx 'Where=/sf' "$units/sf.automount" || fail "sf.automount: no Where=/sf"
grep -q '^What=.*/$' "$units/sf.mount" || fail "sf.mount: What= is not a catalog base (ending in /)"
grep -q '^Options=.*_netdev' "$units/sf.mount" || fail "sf.mount: no _netdev"
grep -qx 'Documentation=man:sffs(8)' "$units/sf.mount" || fail "sf.mount: no Documentation="

step "man"
mandir=$prefix/share/man
export MANPAGER=cat MANWIDTH=80
[ "$(man -M "$mandir" -w sffs)" = "$mandir/man8/sffs.8" ] ||
	fail "man -w sffs: $(man -M "$mandir" -w sffs 2>&1)"
[ "$(man -M "$mandir" -w sffs-index)" = "$mandir/man1/sffs-index.1" ] ||
	fail "man -w sffs-index: $(man -M "$mandir" -w sffs-index 2>&1)"
man -M "$mandir" 8 sffs >"$TEST_TMP/sffs.txt" 2>"$TEST_TMP/man.err" ||
	fail "man sffs: $(cat "$TEST_TMP/man.err")"
man -M "$mandir" 1 sffs-index >"$TEST_TMP/sffs-index.txt" 2>>"$TEST_TMP/man.err" ||
	fail "man sffs-index: $(cat "$TEST_TMP/man.err")"
[ ! -s "$TEST_TMP/man.err" ] || fail "man warned: $(cat "$TEST_TMP/man.err")"
for s in NAME SYNOPSIS DESCRIPTION OPTIONS "CONFIGURATION FILE" FSTAB SYSTEMD \
	FILES "EXTENDED ATTRIBUTES" "EXIT STATUS" EXAMPLES "SEE ALSO"; do
	grep -qx "$s" "$TEST_TMP/sffs.txt" || fail "sffs(8) has no $s section"
done
# Every option the daemon's usage names is documented.
for o in $("$prefix/bin/sffs" --help | grep -o -- '-o [a-z_]*' | awk '{ print $2 }' | sort -u); do
	grep -q -- "-o $o" "$TEST_TMP/sffs.txt" || fail "sffs(8) does not document -o $o"
done
for s in catalog user.sffs.stats /var/cache/sffs /etc/sffs/sffs.conf fuse.sffs \
	release_after module_root s3_endpoint; do
	grep -q -- "$s" "$TEST_TMP/sffs.txt" || fail "sffs(8) does not mention $s"
done
for s in --repack --block --span --identity; do
	grep -q -- "$s" "$TEST_TMP/sffs-index.txt" || fail "sffs-index(1) does not document $s"
done

step "helpers"
helper=
for d in /sbin /usr/sbin; do
	if [ -x "$d/mount.fuse3" ]; then
		helper=$d/mount.fuse3
		break
	fi
done
[ -n "$helper" ] || fail "mount.fuse3 is needed but not installed (fuse3)"
# libmount looks for mount.fuse.sffs, then drops the subtype: mount.fuse.
[ -x /sbin/mount.fuse ] || [ -x /usr/sbin/mount.fuse ] ||
	fail "no mount.fuse (fuse3 installs it as a link to mount.fuse3)"
log "mount helper: $helper"
mount --bind "$prefix/bin" /usr/local/sbin ||
	fail "cannot bind $prefix/bin over /usr/local/sbin in the test's namespace"
cleanup_push "umount /usr/local/sbin"

nginx_start "$fx"
url=$NGINX_URL/$name
conf=$TEST_TMP/slurm.conf

# Pids of the installed sffs serving MNT (zombies have no command line).
installed_pids() {
	local mnt=$1 p want
	want=$(stat -L -c %d:%i "$prefix/bin/sffs")
	for p in /proc/[0-9]*; do
		[ "$(stat -L -c %d:%i "$p/exe" 2>/dev/null)" = "$want" ] || continue
		if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF "$mnt"; then
			echo "${p#/proc/}"
		fi
	done
}

# check_mount MNT HOW: what an operator's mount must be, then umount it.
check_mount() {
	local mnt=$1 how=$2 pids out
	is_mounted "$mnt" || fail "$how: $mnt is not mounted"
	[ "$(findmnt -n -o FSTYPE "$mnt")" = fuse.sffs ] ||
		fail "$how: type $(findmnt -n -o FSTYPE "$mnt"), not fuse.sffs"
	[ "$(findmnt -n -o SOURCE "$mnt")" = "$url" ] ||
		fail "$how: source $(findmnt -n -o SOURCE "$mnt")"
	# mount.fuse3 adds dev,suid when root mounts; sffs's own options win.
	findmnt -n -o OPTIONS "$mnt" | tr ',' '\n' | grep -qx nosuid || fail "$how: not nosuid"
	findmnt -n -o OPTIONS "$mnt" | tr ',' '\n' | grep -qx nodev || fail "$how: not nodev"
	findmnt -n -o OPTIONS "$mnt" | tr ',' '\n' | grep -qx ro || fail "$how: not ro"
	pids=$(installed_pids "$mnt")
	[ -n "$pids" ] || fail "$how: no installed sffs serves $mnt"
	log "$how: pid $pids runs: $(tr '\0' ' ' <"/proc/${pids%% *}/cmdline")"
	cmp "$mnt/view/bin/sinfo" "$ref/view/bin/sinfo" || fail "$how: sinfo differs"
	bash "$SFFS_SRC/tests/lib/compare-tree.sh" "$mnt" "$ref" || fail "$how: the mount differs"
	printf 'ClusterName=t\nSlurmctldHost=localhost\nPluginDir=%s\n' "$mnt/view/lib/slurm" >"$conf"
	out=$(env -i SLURM_CONF="$conf" timeout 30 "$mnt/view/bin/sinfo" --version) ||
		fail "$how: sinfo --version failed"
	log "$how: $out"
	umount "$mnt" || fail "$how: umount $mnt failed"
	! is_mounted "$mnt" || fail "$how: still mounted after umount"
	wait_until 10 eval '[ -z "$(installed_pids "$mnt")" ]' ||
		fail "$how: sffs still running after umount: $(installed_pids "$mnt")"
}

step "fstab"
mnt=$TEST_TMP/mnt-fstab
mkdir -p "$mnt" "$TEST_TMP/cache-fstab"
printf '%s %s fuse.sffs ro,_netdev,cache_dir=%s,index=none 0 0\n' \
	"$url" "$mnt" "$TEST_TMP/cache-fstab" >"$TEST_TMP/fstab"
cleanup_push "umount '$mnt' 2>/dev/null || true"
# PATH is kept for completeness: mount(8) drops it (see the header).
PATH="$prefix/bin:$PATH" timeout 120 mount -T "$TEST_TMP/fstab" "$mnt" \
	2>"$TEST_TMP/mount-fstab.log" ||
	fail "mount -T fstab failed: $(cat "$TEST_TMP/mount-fstab.log")"
check_mount "$mnt" "fstab"
ls "$TEST_TMP/cache-fstab"/*.sfidx >/dev/null 2>&1 ||
	fail "fstab: cache_dir= did not reach sffs (no index in it)"

step "mount -t fuse.sffs"
mnt=$TEST_TMP/mnt-t
mkdir -p "$mnt"
cleanup_push "umount '$mnt' 2>/dev/null || true"
timeout 120 mount -t fuse.sffs -o "ro,_netdev,cache_dir=$TEST_TMP/cache-fstab" \
	"$url" "$mnt" 2>"$TEST_TMP/mount-t.log" ||
	fail "mount -t fuse.sffs failed: $(cat "$TEST_TMP/mount-t.log")"
check_mount "$mnt" "mount -t"
