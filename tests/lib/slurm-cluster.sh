#!/usr/bin/env bash
# A single-node Slurm cluster that runs entirely from PREFIX/view (a mounted
# or extracted Slurm Factory tarball), as root, with every file it writes in
# WORKDIR: munged on a private socket, slurmctld and slurmd on free ports,
# PluginDir and slurmstepd inside the view.
#
# Sourced:   cluster_start PREFIX WORKDIR; cluster_check; cluster_stop
# Executed:  slurm-cluster.sh PREFIX WORKDIR   (start, check, stop)
#
# cluster_start exports SLURM_CONF and CLUSTER_VIEW; the client commands
# are "$CLUSTER_VIEW/bin/<cmd>". When tests/lib/common.sh is loaded,
# cluster_start registers cluster_stop on its cleanup stack. Every wait is
# bounded; on failure the daemons' logs are printed.

CLUSTER_TIMEOUT=${CLUSTER_TIMEOUT:-60}

cluster_log() {
	echo "slurm-cluster: $*" >&2
}

cluster_free_port() {
	if declare -F free_port >/dev/null; then
		free_port
		return
	fi
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cluster_dump_logs() {
	local f
	for f in "$CLUSTER_WORK"/munged.log "$CLUSTER_WORK"/slurmctld.log \
		"$CLUSTER_WORK"/slurmd.log "$CLUSTER_WORK"/*.out; do
		[ -f "$f" ] || continue
		echo "----- $f (last 30 lines)" >&2
		tail -n 30 "$f" >&2
	done
}

cluster_write_conf() {
	local host=$1 ctld_port=$2 slurmd_port=$3
	cat >"$CLUSTER_WORK/slurm.conf" <<EOF
ClusterName=sffs
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$CLUSTER_WORK/munge/munge.socket
PluginDir=$CLUSTER_VIEW/lib/slurm
StateSaveLocation=$CLUSTER_WORK/state
SlurmdSpoolDir=$CLUSTER_WORK/spool
SlurmctldPidFile=$CLUSTER_WORK/slurmctld.pid
SlurmdPidFile=$CLUSTER_WORK/slurmd.pid
SlurmctldLogFile=$CLUSTER_WORK/slurmctld.log
SlurmdLogFile=$CLUSTER_WORK/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=100 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

cluster_start_munge() {
	local key=$CLUSTER_WORK/munge.key
	if ! timeout 10 "$CLUSTER_VIEW/sbin/mungekey" --create --keyfile="$key" \
		>/dev/null 2>&1; then
		dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
	fi
	chmod 0600 "$key"
	timeout 10 "$CLUSTER_VIEW/sbin/munged" --socket="$CLUSTER_WORK/munge/munge.socket" \
		--pid-file="$CLUSTER_WORK/munged.pid" --key-file="$key" \
		--log-file="$CLUSTER_WORK/munged.log" \
		--seed-file="$CLUSTER_WORK/munged.seed" || return 1
	# munged forks and writes its pid file once the socket is ready.
	cluster_wait_for "munged" \
		"[ -S '$CLUSTER_WORK/munge/munge.socket' ] && [ -s '$CLUSTER_WORK/munged.pid' ]" ||
		return 1
	CLUSTER_PIDS+=("$(cat "$CLUSTER_WORK/munged.pid")")
	echo hello | timeout 10 "$CLUSTER_VIEW/bin/munge" \
		--socket="$CLUSTER_WORK/munge/munge.socket" |
		timeout 10 "$CLUSTER_VIEW/bin/unmunge" \
			--socket="$CLUSTER_WORK/munge/munge.socket" >/dev/null
}

# cluster_wait_for WHAT SHELL-CONDITION: poll for up to CLUSTER_TIMEOUT s.
cluster_wait_for() {
	local what=$1 cond=$2 i
	for ((i = 0; i < CLUSTER_TIMEOUT * 5; i++)); do
		if eval "$cond"; then
			return 0
		fi
		sleep 0.2
	done
	cluster_log "timed out after ${CLUSTER_TIMEOUT}s waiting for $what"
	return 1
}

cluster_node_idle() {
	local state
	state=$(timeout 10 "$CLUSTER_VIEW/bin/sinfo" -h -N -o '%t' 2>/dev/null) ||
		return 1
	[ "$state" = idle ]
}

cluster_start() {
	local prefix=$1 work=$2 host
	[ -x "$prefix/view/sbin/slurmctld" ] ||
		{ cluster_log "no view/sbin/slurmctld under $prefix"; return 1; }
	CLUSTER_VIEW=$prefix/view
	CLUSTER_WORK=$work
	CLUSTER_PIDS=()
	export CLUSTER_VIEW
	if declare -F cleanup_push >/dev/null; then
		cleanup_push cluster_stop
	fi
	# munged wants its socket's directory searchable by everyone.
	mkdir -p "$work/state" "$work/spool" "$work/munge"
	chmod 0755 "$work" "$work/munge"
	host=$(hostname -s)
	cluster_write_conf "$host" "$(cluster_free_port)" "$(cluster_free_port)"
	export SLURM_CONF=$work/slurm.conf
	if ! cluster_start_munge; then
		cluster_log "munged did not start"
		cluster_dump_logs
		return 1
	fi
	"$CLUSTER_VIEW/sbin/slurmctld" -D -i >"$work/slurmctld.out" 2>&1 &
	CLUSTER_PIDS+=($!)
	"$CLUSTER_VIEW/sbin/slurmd" -D -d "$CLUSTER_VIEW/sbin/slurmstepd" \
		>"$work/slurmd.out" 2>&1 &
	CLUSTER_PIDS+=($!)
	if ! cluster_wait_for "node $host idle" cluster_node_idle; then
		timeout 10 "$CLUSTER_VIEW/bin/sinfo" -N -l >&2 || true
		cluster_dump_logs
		return 1
	fi
	cluster_log "node $host idle (slurmctld, slurmd and munged from $CLUSTER_VIEW)"
}

# Every daemon and job step must run from the view, not from the host.
cluster_check_exes() {
	local pid exe
	for pid in "${CLUSTER_PIDS[@]}"; do
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null) ||
			{ cluster_log "daemon $pid is gone"; return 1; }
		case $exe in
		"$CLUSTER_VIEW"/*) ;;
		*) cluster_log "daemon $pid runs $exe, not from the view"; return 1 ;;
		esac
		if grep -E '/(libslurm|libmunge|slurm-wlm/)' "/proc/$pid/maps" |
			grep -v -F "$CLUSTER_VIEW/" | grep -q .; then
			cluster_log "daemon $pid maps Slurm libraries from outside the view"
			return 1
		fi
	done
}

# srun and sbatch --wait must work; fails (returns 1) otherwise.
cluster_check() {
	local host out
	host=$(hostname -s)
	cluster_check_exes || return 1
	out=$(timeout 60 "$CLUSTER_VIEW/bin/srun" -N1 -t 1 hostname 2>&1) || {
		cluster_log "srun failed: $out"
		cluster_dump_logs
		return 1
	}
	[ "$out" = "$host" ] ||
		{ cluster_log "srun printed '$out', want '$host'"; return 1; }
	rm -f "$CLUSTER_WORK/job.txt"
	out=$(cd "$CLUSTER_WORK" && timeout 90 "$CLUSTER_VIEW/bin/sbatch" --wait \
		-N1 -t 1 -o "$CLUSTER_WORK/job-%j.out" \
		--wrap "echo sffs-job-ran-on-\$(hostname -s) > $CLUSTER_WORK/job.txt" 2>&1) || {
		cluster_log "sbatch --wait failed: $out"
		cluster_dump_logs
		return 1
	}
	[ "$(cat "$CLUSTER_WORK/job.txt" 2>/dev/null)" = "sffs-job-ran-on-$host" ] || {
		cluster_log "batch job output wrong: $(cat "$CLUSTER_WORK/job.txt" 2>&1)"
		cluster_dump_logs
		return 1
	}
	cluster_log "srun -N1 hostname and sbatch --wait succeeded"
}

# Pids of every process whose executable lies in the view (daemons, job
# steps, anything a job left behind).
cluster_view_pids() {
	local p exe
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		case $exe in "$CLUSTER_VIEW"/*) echo "${p#/proc/}" ;; esac
	done
}

cluster_stop() {
	local pid i left
	[ -n "${CLUSTER_VIEW:-}" ] || return 0
	for pid in "${CLUSTER_PIDS[@]}" $(cluster_view_pids); do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for ((i = 0; i < 50; i++)); do
		left=$(cluster_view_pids)
		[ -z "$left" ] && break
		sleep 0.2
	done
	for pid in $(cluster_view_pids); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	for ((i = 0; i < 25; i++)); do
		[ -z "$(cluster_view_pids)" ] && break
		sleep 0.2
	done
	CLUSTER_PIDS=()
	CLUSTER_VIEW=
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	[ $# -eq 2 ] || { echo "usage: $0 PREFIX WORKDIR" >&2; exit 2; }
	trap cluster_stop EXIT
	cluster_start "$1" "$2"
	cluster_check
fi
