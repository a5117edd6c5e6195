#!/usr/bin/env bash
# A one-node Slurm with accounting on this machine, for tests/test_slurm.py (and by hand):
#   .ci/slurm.sh install        Debian's slurm-wlm, slurmdbd, munge, mariadb-server (root)
#   .ci/slurm.sh up DIR         start munged, mariadbd, slurmdbd, slurmctld, slurmd; every
#                               config, log and pid under DIR (configs linked from /etc/slurm)
#   .ci/slurm.sh down DIR       stop them all again (also after a failed `up`)
# Cluster `circuitbench`, partitions `cpu` and `gpu` (both this node, claiming 8x its CPUs,
# 2x its memory and 4 GPUs that are not there: see below),
# account `ci` for the calling user. Without accounting (slurmdbd) the executor plugin's status
# queries find nothing and Snakemake waits forever, so accounting is part of it.
set -euo pipefail
cmd=${1:?usage: slurm.sh install | up DIR | down DIR}

if [[ $cmd == install ]]; then
    if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null \
        && command -v munged >/dev/null && command -v mariadbd >/dev/null; then
        exit 0
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurm-wlm slurmdbd munge mariadb-server >/dev/null
    exit 0
fi

dir=$(realpath -m "${2:?usage: slurm.sh $cmd DIR}")
conf=$dir/slurm.conf

stop_pid() {  # stop_pid NAME: TERM, then KILL after 10 s, the process in DIR/NAME.pid
    local f=$dir/$1.pid pid
    [[ -f $f ]] || return 0
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
}

if [[ $cmd == down ]]; then
    if [[ -f $conf && -f $dir/slurmctld.pid ]]; then  # jobs still there end first
        jobs=$(SLURM_CONF=$conf squeue -h -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            SLURM_CONF=$conf scancel $jobs 2>/dev/null || true
            for _ in $(seq 30); do
                [[ -z $(SLURM_CONF=$conf squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.5
            done
        fi
    fi
    # a cancelled job's processes that left its process group (Snakemake's own) go too
    for e in /proc/[0-9]*/environ; do
        if grep -qsz '^SLURM_CLUSTER_NAME=circuitbench$' "$e"; then
            p=${e#/proc/}; kill -9 "${p%/environ}" 2>/dev/null || true
        fi
    done
    for d in slurmd slurmctld slurmdbd mariadb munged; do stop_pid $d; done
    rm -f /run/munge/circuitbench.{key,pid,seed,log}
    for f in slurm.conf slurmdbd.conf gres.conf; do  # our links only
        [[ $(readlink "/etc/slurm/$f" 2>/dev/null) != "$dir/$f" ]] || rm -f "/etc/slurm/$f"
    done
    exit 0
fi
[[ $cmd == up ]] || { echo "slurm.sh: unknown command $cmd (install, up, down)" >&2; exit 2; }

[[ $(id -u) == 0 ]] || { echo "slurm.sh up: needs root (daemons, munge key)" >&2; exit 3; }
for b in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sacctmgr sbatch; do
    command -v $b >/dev/null || { echo "slurm.sh up: $b missing: run slurm.sh install" >&2
                                  exit 3; }
done
for f in slurm.conf slurmdbd.conf gres.conf; do
    if [[ -e /etc/slurm/$f && $(readlink "/etc/slurm/$f") != "$dir/$f" ]]; then
        echo "slurm.sh up: /etc/slurm/$f exists: this machine has a Slurm of its own" >&2
        exit 3
    fi
done
trap 'echo "slurm.sh up failed; logs in $dir" >&2; [[ -n ${SLURM_KEEP:-} ]] || "$0" down "$dir"' ERR
mkdir -p "$dir"/{db,spool/ctld,spool/d,log}
chmod 755 "$dir/log"
host=$(hostname -s)
user=$(id -un)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 2 ))

wait_for() {  # wait_for WHAT SECONDS COMMAND...: poll until COMMAND succeeds
    local what=$1 secs=$2; shift 2
    for _ in $(seq $(( secs * 5 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "slurm.sh up: $what did not come up in $secs s" >&2
    return 1
}

# munge: a key of its own, its files beside its default socket (Slurm's clients look there;
# munged runs as `munge`, which cannot enter a private DIR)
if [[ -S /run/munge/munge.socket.2 ]] && munge -n >/dev/null 2>&1; then
    echo "slurm.sh up: a munged is already running here (/run/munge); stop it first" >&2
    exit 3
fi
mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
key=/run/munge/circuitbench.key
dd if=/dev/urandom bs=1 count=1024 of="$key" status=none
chown munge:munge "$key"
chmod 400 "$key"
runuser -u munge -- munged --key-file="$key" --pid-file=/run/munge/circuitbench.pid \
    --log-file=/run/munge/circuitbench.log --seed-file=/run/munge/circuitbench.seed --force
wait_for munged 10 test -s /run/munge/circuitbench.pid
cp /run/munge/circuitbench.pid "$dir/munged.pid"

# mariadb: a private data directory; slurmdbd reaches it over loopback TCP
sock=$dir/db/mysqld.sock
mariadb-install-db --user=root --datadir="$dir/db/data" --auth-root-authentication-method=socket \
    >"$dir/log/mariadb-install.log" 2>&1
mariadbd --user=root --datadir="$dir/db/data" --socket="$sock" --bind-address=127.0.0.1 \
    --port=16820 2>>"$dir/log/mariadb.log" \
    --pid-file="$dir/mariadb.pid" --log-error="$dir/log/mariadb.log" &
wait_for mariadbd 60 mariadb --socket="$sock" -e "select 1"
mariadb --socket="$sock" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'circuitbench';
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'circuitbench';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

cat >"$dir/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=16819
SlurmUser=$user
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=16820
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=circuitbench
LogFile=$dir/log/slurmdbd.log
PidFile=$dir/slurmdbd.pid
EOF
chmod 600 "$dir/slurmdbd.conf"

cat >"$conf" <<EOF
ClusterName=circuitbench
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=16819
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=2
JobAcctGatherParams=OverMemoryKill
JobCompType=jobcomp/none
MinJobAge=300
KillWait=10
InactiveLimit=0
SchedulerParameters=sched_interval=2
GresTypes=gpu
SlurmdParameters=config_overrides
NodeName=$host CPUs=$(( cpus * 8 )) RealMemory=$mem Gres=gpu:4 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
EOF
# two GPUs that are not there: the profile's GPU requests are scheduled as on a GPU node (the
# jobs then find no CUDA and run on the CPU); the node claims 8x its cores and 2x its memory
# (config_overrides) so that the profile's 4-CPU, 10 GB discovery jobs fit four at a time (a
# cluster job spends much of its time starting Snakemake, not computing). Real use is checked
# by OverMemoryKill against what a job asked for.
touch "$dir"/gpu{0..3}
echo "Name=gpu File=$dir/gpu[0-3]" >"$dir/gres.conf"
# at the default place (as links, removed by `down`): a job's srun reads /etc/slurm/slurm.conf,
# whatever SLURM_CONF the submitting process had
mkdir -p /etc/slurm
for f in slurm.conf slurmdbd.conf gres.conf; do ln -sfn "$dir/$f" "/etc/slurm/$f"; done
export SLURM_CONF=$conf

slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
wait_for slurmdbd 60 sacctmgr -n list cluster
sacctmgr -i add cluster circuitbench >/dev/null
sacctmgr -i add account ci Description=circuitbench Organization=ci >/dev/null
sacctmgr -i add user "$user" Account=ci DefaultAccount=ci >/dev/null
slurmctld
wait_for slurmctld 60 scontrol ping
slurmd
wait_for "the node" 60 bash -c "sinfo -h -N -o %t | grep -q idle"
trap - ERR
echo "SLURM_CONF=$conf"
