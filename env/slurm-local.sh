#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the `slurm` tests and for trying the paper path's SLURM launcher
# without a cluster: munge + slurmctld + slurmd (Debian's packages), a partition `debug` with this machine's CPUs
# and two fake GPUs (so that jobs asking for GPUs are accepted).
#
#   env/slurm-local.sh start STATE_DIR   installs what is missing (apt, as root), starts the daemons, waits until
#                                        `sinfo` shows the node idle; their process ids go to STATE_DIR/pids
#   env/slurm-local.sh stop STATE_DIR    stops the daemons it started (by those ids), nothing else
#
# Needs root (the daemons run as root: SlurmUser=root). Times: install ~20 s once, start ~6 s.
set -euo pipefail
cmd=${1:-}; state=${2:-}
die() { echo "error: slurm-local: $*" >&2; exit 1; }
[ -n "$cmd" ] && [ -n "$state" ] || die "usage: env/slurm-local.sh start|stop STATE_DIR"
mkdir -p "$state"

if [ "$cmd" = stop ]; then
  [ -f "$state/pids" ] || exit 0
  while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$state/pids"
  for _ in $(seq 50); do
    alive=0; while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$state/pids"
    [ $alive = 0 ] && break; sleep 0.2
  done
  rm -f "$state/pids"
  exit 0
fi
[ "$cmd" = start ] || die "unknown command $cmd (start or stop)"
[ "$(id -u)" = 0 ] || die "needs root (the daemons run as SlurmUser=root); run it under sudo"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sinfo >/dev/null; then
  command -v apt-get >/dev/null || die "slurmctld, slurmd, slurm-client and munge are missing and apt-get is not here"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge \
      >/dev/null; } || die "could not install slurmctld slurmd slurm-client munge with apt-get"
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
spool=$state/spool
mkdir -p "$spool/ctld" "$spool/d" /etc/slurm /var/log/slurm
touch /dev/fakegpu0 /dev/fakegpu1
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=synscale-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=$spool/ctld
SlurmdSpoolDir=$spool/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
GresTypes=gpu
NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
echo "NodeName=$host Name=gpu File=/dev/fakegpu[0-1]" > /etc/slurm/gres.conf

if ! pgrep -x munged >/dev/null; then
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  munged --force
  for _ in $(seq 50); do pgrep -x munged >/dev/null && break; sleep 0.1; done
  pgrep -x munged >> "$state/pids" || die "munged did not start"
fi
pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 0.5
slurmctld -c -i >> "$state/slurmctld.out" 2>&1 || die "slurmctld did not start (log: $state/slurmctld.log)"
slurmd -c >> "$state/slurmd.out" 2>&1 || die "slurmd did not start (log: $state/slurmd.log)"
for _ in $(seq 100); do
  [ -s "$state/slurmctld.pid" ] && [ -s "$state/slurmd.pid" ] && break; sleep 0.1
done
cat "$state/slurmctld.pid" "$state/slurmd.pid" >> "$state/pids" 2>/dev/null \
  || die "the daemons wrote no process ids (logs: $state/slurmctld.log, $state/slurmd.log)"
for _ in $(seq 120); do
  st=$(sinfo -h -o %t 2>/dev/null | head -1)
  case "$st" in idle|idle*|mix*) echo "slurm-local: node $host idle ($cpus CPUs, 2 fake GPUs)"; exit 0;; esac
  sleep 0.5
done
die "the node is not idle after 60 s (sinfo: ${st:-nothing}; logs: $state/slurmctld.log, $state/slurmd.log)"
