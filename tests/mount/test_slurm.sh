#!/usr/bin/env bash
# Slurm runs from the mount: sinfo --version, Lmod's module load, and a
# single-node cluster (munged, slurmctld, slurmd with slurmstepd and
# PluginDir in the mount) that runs srun and sbatch --wait.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$SFFS_SRC/tests/lib/slurm-cluster.sh"

[ "$(id -u)" -eq 0 ] || fail "must run as root (Slurm daemons as SlurmUser=root)"

step fixture
fx=$(fixture_dir)
nginx_start "$fx"

step mount
mnt=$TEST_TMP/mnt
sffs_mount "$NGINX_URL/$FIXTURE_NAME.tar.gz" "$mnt"
for p in view/bin/sinfo view/sbin/slurmd view/sbin/slurmstepd view/sbin/munged \
	view/lib/slurm/auth_munge.so modules/slurm/22.05-bookworm.lua \
	data/slurm_assets/slurm_install.sh; do
	[ -e "$mnt/$p" ] || fail "$p missing from the mount"
done
cmp "$mnt/view/sbin/slurmd" "$fx/extract/view/sbin/slurmd" ||
	fail "view/sbin/slurmd differs from GNU tar's extraction"

# Slurm 22.05 reads slurm.conf even for --version, and its compiled-in
# PluginDir is Debian's, so clients get a site config naming the mount's.
client_conf=$TEST_TMP/client/slurm.conf
mkdir -p "$(dirname "$client_conf")"
printf 'ClusterName=sffs\nSlurmctldHost=localhost\nPluginDir=%s\n' \
	"$mnt/view/lib/slurm" >"$client_conf"

step sinfo-version
out=$(env -i SLURM_CONF="$client_conf" timeout 30 "$mnt/view/bin/sinfo" --version 2>&1) ||
	fail "sinfo --version from the mount failed: $out"
[[ $out =~ ^slurm(-wlm)?\ 22\.05 ]] || fail "sinfo --version printed '$out'"
log "sinfo --version: $out"

step lmod
lmod_init=
for f in /usr/share/lmod/lmod/init/bash /usr/share/lmod/init/bash; do
	if [ -f "$f" ]; then
		lmod_init=$f
		break
	fi
done
[ -n "$lmod_init" ] || fail "Lmod's bash init not found (install lmod)"
# In a subshell: Lmod's init and module functions do not survive set -eu.
out=$(
	set +eu
	unset SLURM_INSTALL_PREFIX
	export SLURM_CONF=$client_conf
	# shellcheck disable=SC1090
	source "$lmod_init"
	module use "$mnt/modules" || exit 11
	module load slurm/22.05-bookworm || exit 12
	echo "which=$(command -v sinfo)"
	echo "version=$(timeout 30 sinfo --version 2>&1)"
	module unload slurm || exit 13
	echo "after_unload=$(command -v sinfo || echo none)"
	export SLURM_INSTALL_PREFIX=/nonexistent/view
	module load slurm/22.05-bookworm || exit 14
	echo "override=$(command -v sinfo || echo none)"
	echo "path=$PATH"
) || fail "module command failed (status $?): $out"
log "lmod: $(echo "$out" | grep -v '^path=' | tr '\n' ' ')"
grep -qxF "which=$mnt/view/bin/sinfo" <<<"$out" ||
	fail "after module load, sinfo is not the mount's: $out"
grep -qE '^version=slurm(-wlm)? 22\.05' <<<"$out" ||
	fail "module-loaded sinfo --version did not run: $out"
grep -qx "after_unload=none" <<<"$out" ||
	fail "module unload left sinfo on PATH: $out"
grep -q '^path=/nonexistent/view/bin:' <<<"$out" ||
	fail "modulefile ignores SLURM_INSTALL_PREFIX: $out"

step cluster
cluster_start "$mnt" "$TEST_TMP/work" || fail "cluster did not start from the mount"
step jobs
cluster_check || fail "srun/sbatch from the mount failed"
cluster_stop

log "served $(nginx_requests "$FIXTURE_NAME") requests," \
	"$(nginx_bytes_sent "$FIXTURE_NAME") bytes of the tarball"
