#!/usr/bin/env bash
# The backup pod's script (the CronJob's and the entry point backup's Job): a physical backup of one Galera member,
# streamed, gzipped and stored on the backup volume, then the oldest of this cluster's backups beyond the newest
# KUBESS_BACKUP_KEEP deleted.
#
# The pod runs on the member's node with the member's data volume mounted read-only at the same path: the backup
# tool reads the data files there, and takes its locks and the Galera position over a connection to the member, as
# the backup user from any host ('<KUBESS_BACKUP_USER>'@'%', made by pxc-initdb.sh). Before anything is read, the
# member must be Synced in a Primary component, and that component must hold KUBESS_BACKUP_MEMBERS members and at
# least 2 (never the only writer) unless KUBESS_BACKUP_FORCE is 1. After the backup, this cluster's backups beyond
# the newest KUBESS_BACKUP_KEEP are deleted, and the archived binary log files no kept backup needs.
#
# The backup is written aside (.<name>.part) and renamed once the tool said "completed OK!": a backup on the volume
# is always whole. It says "stored <name>" last (kubess.stateful.stack_info reads it from the log).
#
# Inputs (environment):
#   KUBESS_BACKUP_HOST KUBESS_BACKUP_PORT   the member's stable name and client port
#   KUBESS_BACKUP_USER KUBESS_BACKUP_PASSWORD
#   KUBESS_BACKUP_TOOL [mariadb-backup]     mariadb-backup or xtrabackup
#   KUBESS_CLIENT [mariadb]                 mariadb or mysql
#   KUBESS_BACKUP_FORMAT [mbstream]         the --stream format (and the name's extension): mbstream or xbstream
#   KUBESS_DATADIR [/var/lib/mysql]         where the member's data volume is mounted
#   KUBESS_BACKUP_DIR [/backup]             the backup volume
#   KUBESS_SCRATCH [/scratch]               a writable directory for the tool's temporary files
#   KUBESS_BACKUP_PREFIX                    <namespace>_<name>: this cluster's backups
#   KUBESS_BACKUP_NAME                      the name to store under; empty: <prefix>-<UTC time>.<format>.gz
#   KUBESS_BACKUP_KEEP                      how many of this cluster's backups to keep
#   KUBESS_BACKUP_MEMBERS                   the cluster's size (pxc_replicas)
#   KUBESS_BACKUP_FORCE [0]                 1: also with fewer members in the Primary component
#   KUBESS_IMAGE_NAME                       the image, named in errors
# The password reaches the programs through MYSQL_PWD, never on a command line.
set -euo pipefail
umask 027

log() { printf '[pxc-backup] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

host=${KUBESS_BACKUP_HOST:?} port=${KUBESS_BACKUP_PORT:-3306} user=${KUBESS_BACKUP_USER:?}
tool=${KUBESS_BACKUP_TOOL:-mariadb-backup} client=${KUBESS_CLIENT:-mariadb}
format=${KUBESS_BACKUP_FORMAT:-mbstream} datadir=${KUBESS_DATADIR:-/var/lib/mysql}
dir=${KUBESS_BACKUP_DIR:-/backup} scratch=${KUBESS_SCRATCH:-/scratch}
prefix=${KUBESS_BACKUP_PREFIX:?} keep=${KUBESS_BACKUP_KEEP:-7}
members=${KUBESS_BACKUP_MEMBERS:-1} force=${KUBESS_BACKUP_FORCE:-0}

for program in "$client" "$tool" gzip awk grep sort head tail date stat rm rmdir; do
  command -v "$program" >/dev/null || die "$program is not in the image ($KUBESS_IMAGE_NAME): see the image contract"
done

status=$(MYSQL_PWD=${KUBESS_BACKUP_PASSWORD:-} "$client" --host="$host" --port="$port" --user="$user" \
  --connect-timeout=10 --batch --skip-column-names -e "SHOW GLOBAL STATUS WHERE Variable_name IN
  ('wsrep_local_state_comment', 'wsrep_cluster_status', 'wsrep_cluster_size')" 2>"$scratch/client.err") ||
  die "cannot ask $host as '$user': $(tr '\n' ' ' <"$scratch/client.err"). A cluster first initialised before
its backup user could log in from any host needs it once (as root, on any member): CREATE USER '$user'@'%'
IDENTIFIED BY '<the Secret's xtrabackup-password>'; then the grants in the pxc role README (Backups)."
value() { awk -v k="$1" '$1 == k { print $2 }' <<<"$status"; }
state=$(value wsrep_local_state_comment) component=$(value wsrep_cluster_status) size=$(value wsrep_cluster_size)
log "$host: ${state:-no state}, ${component:-no component} component of ${size:-0} (the cluster has $members)"

[ "$state" = Synced ] || die "$host is ${state:-not a Galera member}, not Synced: no backup is taken from it"
[ "$component" = Primary ] || die "$host is in a ${component:-unknown} component, not the Primary one"
if [ "${size:-0}" -lt "$members" ] || [ "${size:-0}" -lt 2 ]; then
  [ "$force" = 1 ] || die "the Primary component has ${size:-0} of the $members members: the cluster is not healthy
(set pxc_backup_force=true to take the backup anyway, from this Synced member)"
  log "forced: the Primary component has ${size:-0} of the $members members"
fi

name=${KUBESS_BACKUP_NAME:-}
[ -n "$name" ] || name="$prefix-$(date -u +%Y%m%dT%H%M%SZ).$format.gz"
part="$dir/.$name.part"
# What a backup pod killed at its deadline left (pxc_backup_timeout is at most a day): this cluster's only, named
# <prefix>-<UTC time> (not the cluster <name>-<suffix> of the same namespace).
now=$(date +%s)
for path in "$dir/.$prefix-"[0-9]*T[0-9]*Z.*.part; do
  if [ -f "$path" ] && [ "$(stat -c %Y -- "$path")" -lt $((now - 86400)) ] && rm -f -- "$path"; then
    log "deleted ${path##*/}, left by an earlier backup pod"
  fi
done
mkdir -p "$scratch/target" "$scratch/tmp"
log "backing up $host into $name"
if ! MYSQL_PWD=${KUBESS_BACKUP_PASSWORD:-} "$tool" --backup --stream="$format" --galera-info \
     --datadir="$datadir" --host="$host" --port="$port" --user="$user" \
     --target-dir="$scratch/target" --tmpdir="$scratch/tmp" 2>"$scratch/backup.log" | gzip -c >"$part" ||
   ! grep -q 'completed OK!' "$scratch/backup.log"; then
  rm -f -- "$part"
  tail -n 20 "$scratch/backup.log" >&2
  die "$tool did not complete: nothing stored"
fi
mv -- "$part" "$dir/$name"
echo "stored $name"

# This cluster's backups only: names matched exactly, newest first; the first KUBESS_BACKUP_KEEP stay.
for path in "$dir"/*; do
  if [[ ${path##*/} =~ ^${prefix}-[0-9]{8}T[0-9]{6}Z[.]${format}[.]gz$ ]]; then printf '%s\n' "${path##*/}"; fi
done | sort -r >"$scratch/backups"
mapfile -t kept < <(head -n "$keep" "$scratch/backups")
tail -n "+$((keep + 1))" "$scratch/backups" | while read -r old; do rm -f -- "${dir:?}/$old"; echo "deleted $old"; done

# This cluster's binary log archive (pxc_backup_binlogs), binlogs/<prefix>/<pod>/<generation>/: a file last written
# more than an hour (room for clocks that differ) before the oldest backup kept was begun (the time in its name) holds
# nothing a restore from a kept backup replays, and goes; but never the last file of a member's newest generation,
# which its archive may still be writing. A generation directory left empty goes too, never a member's newest.
prune_archive() {
  local archive=$dir/binlogs/$prefix oldest=$1 cutoff member generation path
  local -a generations files r
  [ -d "$archive" ] || return 0
  [[ $oldest =~ -([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z[.] ]] || return 0
  r=("${BASH_REMATCH[@]}")
  cutoff=$(date -u -d "${r[1]}-${r[2]}-${r[3]} ${r[4]}:${r[5]}:${r[6]}" +%s) || return 1
  cutoff=$((cutoff - 3600))
  for member in "$archive"/*/; do
    generations=()
    for generation in "$member"*/; do [ -d "$generation" ] && generations+=("$generation"); done
    for generation in "${generations[@]}"; do
      files=()
      for path in "$generation"binlog.[0-9]*; do [ -f "$path" ] && files+=("$path"); done
      # The newest generation's last file stays whatever its time.
      [ "$generation" != "${generations[-1]}" ] || [ "${#files[@]}" -eq 0 ] || unset 'files[-1]'
      for path in "${files[@]}"; do
        if [ "$(stat -c %Y -- "$path")" -lt "$cutoff" ]; then
          rm -f -- "$path" || return 1
          log "pruned ${path#"$dir/"} (older than $oldest)"
        fi
      done
      [ "$generation" = "${generations[-1]}" ] || rmdir -- "$generation" 2>/dev/null || true
    done
  done
}
if [ "${#kept[@]}" -gt 0 ]; then
  prune_archive "${kept[-1]}" || log "could not prune the binary log archive (the backup is stored)"
fi
