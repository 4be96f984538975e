#!/usr/bin/env bash
# A one-node Slurm cluster on loopback for Sluice's Slurm tests and benchmarks: Debian's
# slurm-wlm and munge, with munged, slurmctld and slurmd started as plain daemons (no systemd,
# no cgroup plugins, no accounting database). Idempotent.
#   scripts/slurm-cluster.sh up       install what is missing, (re)write the config, start what is not running
#   scripts/slurm-cluster.sh down     stop the daemons (the state folder is kept)
#   scripts/slurm-cluster.sh env      print the line that points Slurm's commands at this cluster
#   scripts/slurm-cluster.sh status   sinfo and squeue
# The cluster's files live in $SLUICE_SLURM_STATE (default /var/tmp/sluice-slurm); its config is
# $SLUICE_SLURM_STATE/slurm.conf, so Slurm's commands need SLURM_CONF set to it (`env` prints it).
# The one partition is called `debug`; MaxArraySize is 1001 as in Slurm's default.
set -euo pipefail
STATE=${SLUICE_SLURM_STATE:-/var/tmp/sluice-slurm}
CONF="$STATE/slurm.conf"
export SLURM_CONF="$CONF"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

install_packages() {
    local missing=()
    for package in slurm-wlm munge; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "slurm-cluster: installing ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

write_config() {
    local host cpus memory
    host=$(hostname -s)
    cpus=$(nproc)
    # RealMemory must not exceed what slurmd finds, or the node is drained as "Low RealMemory".
    memory=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 512))
    $sudo mkdir -p "$STATE/ctld" "$STATE/slurmd"
    $sudo tee "$CONF.new" >/dev/null <<CONF
# Written by scripts/slurm-cluster.sh: one node on loopback, for tests.
ClusterName=sluice-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
# Without these each scheduling step (a dependency met, a job ended) waits up to a minute.
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MaxArraySize=1001
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    $sudo mv "$CONF.new" "$CONF"
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_daemons() {
    # munged refuses a socket folder other users cannot enter.
    $sudo mkdir -p /run/munge
    $sudo chown munge:munge /run/munge
    $sudo chmod 0755 /run/munge
    if ! running /run/munge/munged.pid; then
        $sudo runuser -u munge -- /usr/sbin/munged
    fi
    if ! running "$STATE/slurmctld.pid"; then
        $sudo /usr/sbin/slurmctld -f "$CONF"
    fi
    if ! running "$STATE/slurmd.pid"; then
        $sudo /usr/sbin/slurmd -f "$CONF"
    fi
    # Ready once the node takes jobs.
    local tries=0
    until sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; do
        tries=$((tries + 1))
        if [ $tries -gt 60 ]; then
            echo "slurm-cluster: the node did not come up within 30 s; see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
            sinfo -R >&2 || true
            exit 1
        fi
        # A node left down or drained by an earlier run comes back.
        [ $tries -eq 10 ] && scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true
        sleep 0.5
    done
}

stop() {
    local pidfile
    for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" /run/munge/munged.pid; do
        if running "$pidfile"; then
            $sudo kill "$(cat "$pidfile")"
            for _ in $(seq 50); do running "$pidfile" || break; sleep 0.1; done
        fi
    done
}

case "${1:-}" in
up)
    install_packages
    write_config
    start_daemons
    echo "slurm-cluster: up ($(sinfo -h -o '%P %D node(s) %c cpus %T' | head -1)); export SLURM_CONF=$CONF"
    ;;
down) stop ;;
env) echo "export SLURM_CONF=$CONF" ;;
status)
    sinfo
    squeue
    ;;
*)
    echo "usage: scripts/slurm-cluster.sh up|down|env|status" >&2
    exit 2
    ;;
esac
