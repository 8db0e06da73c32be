# spack-root.sh - sourced: Spack's padded install root as the factory's
# builds have it (padded_length 128), for the relocation tests and bench.

# spack_padded_root [ROOT]: ROOT (default /opt/slurm/software) padded
# with /__spack_path_placeholder__ components to 128 characters, cut at
# 128, without a trailing '/'.
spack_padded_root() {
	local r=${1:-/opt/slurm/software}
	while [ ${#r} -lt 128 ]; do r="$r/__spack_path_placeholder__"; done
	r=${r:0:128}
	echo "${r%/}"
}
