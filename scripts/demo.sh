#!/usr/bin/env bash
# The main job, on a built-in local demo: build sffs, make a Slurm Factory
# style tarball from Debian's real Slurm 22.05, serve it with nginx on
# loopback, mount it lazily, run Slurm from the mount (sinfo, Lmod's
# `module load`, a single-node cluster running srun and sbatch), show how
# little of the tarball was fetched, and unmount. Needs root (FUSE, and the
# Slurm daemons run as root).
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }

"$src/scripts/install-deps.sh"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$src/build" -j"$(nproc)" --target sffs sffs-index

export SFFS_SRC=$src SFFS_BUILD=$src/build SFFS_BIN=$src/build/sffs
export SFFS_FIXTURE_DIR=$src/build/fixture
"$src/scripts/make-fixture.sh" "$SFFS_FIXTURE_DIR"
# common.sh: nginx_start, sffs_mount and a cleanup stack that unmounts and
# stops everything on exit, whatever happens.
source "$src/tests/lib/common.sh"
source "$src/tests/lib/slurm-cluster.sh"

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

name=$FIXTURE_NAME.tar.gz
www=$TEST_TMP/www
mkdir -p "$www"
ln -s "$SFFS_FIXTURE_DIR/$name" "$www/$name"
nginx_start "$www"
url=$NGINX_URL/$name
mnt=$TEST_TMP/opt/slurm

say "1. Mount $url at $mnt"
echo "\$ sffs $url $mnt"
sffs_mount "$url" "$mnt"
after_mount=$(nginx_bytes_sent "$name")
ls -l "$mnt" "$mnt/view"

say "2. Run sinfo straight from the mount"
conf=$TEST_TMP/slurm.conf
printf 'ClusterName=demo\nSlurmctldHost=localhost\nPluginDir=%s\n' \
	"$mnt/view/lib/slurm" >"$conf"
echo "\$ $mnt/view/bin/sinfo --version"
SLURM_CONF=$conf "$mnt/view/bin/sinfo" --version

say "3. Lmod: module use $mnt/modules; module load slurm/22.05-bookworm"
(
	set +eu
	source /usr/share/lmod/lmod/init/bash
	export SLURM_CONF=$conf
	module use "$mnt/modules"
	module load slurm/22.05-bookworm
	echo "sinfo is $(command -v sinfo): $(sinfo --version)"
)

say "4. A single-node cluster running from the mount"
cluster_start "$mnt" "$TEST_TMP/cluster"
echo "\$ srun -N1 hostname"
"$CLUSTER_VIEW/bin/srun" -N1 hostname
cluster_check
"$CLUSTER_VIEW/bin/sinfo"
cluster_stop

say "5. What crossed the network"
total=$(stat -c %s "$SFFS_FIXTURE_DIR/$name")
echo "tarball size:               $total bytes"
echo "fetched to index at mount:  $after_mount bytes (one streaming pass)"
echo "fetched to run Slurm:       $(($(nginx_bytes_sent "$name") - after_mount)) bytes" \
	"in $(nginx_requests "$name") requests in all"
echo "daemon counters (xattr user.sffs.stats on the mount root):"
python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.sffs.stats").decode().strip())' "$mnt"
sffs_unmount "$mnt"

say "6. Publish an index beside the tarball; a fresh node now reads only that and what it runs"
echo "\$ sffs-index $name -o $name.sfidx"
"$src/build/sffs-index" -q "$SFFS_FIXTURE_DIR/$name" -o "$www/$name.sfidx"
b0=$(nginx_bytes_sent "$name")
i0=$(nginx_bytes_sent "$name.sfidx")
sffs_mount "$url" "$mnt" -o cache_dir=none
SLURM_CONF=$conf "$mnt/view/bin/sinfo" --version
i1=$(($(nginx_bytes_sent "$name.sfidx") - i0))
echo "index size:                 $(stat -c %s "$www/$name.sfidx") bytes"
echo "fetched for mount + sinfo:  $(($(nginx_bytes_sent "$name") - b0 - i1)) tarball bytes + $i1 index bytes"
say "Done: unmounting and stopping nginx."
