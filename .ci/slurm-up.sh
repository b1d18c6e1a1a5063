#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (Debian/Ubuntu, run as root), for the tests marked `slurm`.
# Idempotent: reruns reuse the installed packages and restart the daemons. Prints the partition name (`debug`).
# No cgroups and no accounting, so it also runs inside a container.
set -euo pipefail

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; }
fi

CONF_DIR=/etc/slurm
NODE=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /etc/munge
chown -R slurm:slurm /var/spool/slurmctld /var/log/slurm 2>/dev/null || true

# munge: one key, shared by the controller and the node daemon (the same machine)
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c "munged --force" || munged --force

cat > "$CONF_DIR/slurm.conf" <<CONF
ClusterName=corpusforge-ci
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MaxArraySize=1001
SchedulerParameters=sched_interval=1
MinJobAge=300
NodeName=$NODE CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF

for daemon in slurmctld slurmd; do
  if [ -f "/run/$daemon.pid" ] && kill -0 "$(cat /run/$daemon.pid)" 2>/dev/null; then
    kill "$(cat /run/$daemon.pid)"; sleep 1
  fi
done
slurmctld
slurmd

for _ in $(seq 1 30); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
    echo debug
    exit 0
  fi
  scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "slurm-up: the node did not become idle; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo >&2 || true
exit 1
