#!/usr/bin/env bash
# The restore pod's script (pxc_restore_from, before the StatefulSet exists): writes the first member's data directory
# from a backup on the backup volume, so that it bootstraps a new cluster with the backup's data and the others join
# it with a snapshot of it.
#
# The backup is unpacked into DATADIR/.kubess-restoring (what an interrupted restore left there is started over),
# prepared by the backup tool (the committed transactions applied, the others rolled back), given a grastate.dat at
# the Galera position the backup recorded (xtrabackup_galera_info) with safe_to_bootstrap: 1, then moved into the data
# directory. A volume that already holds anything else is left as it is: the script stops, saying what is there.
#
# Inputs (environment):
#   KUBESS_RESTORE_FROM                      the backup's name on the backup volume
#   KUBESS_BACKUP_DIR [/backup]              KUBESS_DATADIR [/var/lib/mysql]   KUBESS_SCRATCH [/scratch]
#   KUBESS_BACKUP_TOOL [mariadb-backup]      mariadb-backup or xtrabackup
#   KUBESS_STREAM_TOOL [mbstream]            mbstream or xbstream
#   KUBESS_IMAGE_NAME                        the image, named in errors
set -euo pipefail
umask 027
shopt -s nullglob dotglob

log() { printf '[pxc-restore] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

name=${KUBESS_RESTORE_FROM:?} dir=${KUBESS_BACKUP_DIR:-/backup} datadir=${KUBESS_DATADIR:-/var/lib/mysql}
scratch=${KUBESS_SCRATCH:-/scratch} tool=${KUBESS_BACKUP_TOOL:-mariadb-backup} stream=${KUBESS_STREAM_TOOL:-mbstream}
work="$datadir/.kubess-restoring"

for program in "$tool" "$stream" gzip; do
  command -v "$program" >/dev/null || die "$program is not in the image ($KUBESS_IMAGE_NAME): see the image contract"
done
[ -f "$dir/$name" ] || die "there is no backup $name on the backup volume"
held=()
for path in "$datadir"/*; do
  case ${path##*/} in .kubess-restoring | lost+found) ;; *) held+=("${path##*/}") ;; esac
done
[ "${#held[@]}" -eq 0 ] || die "the volume already holds data (${held[*]:0:5}): it is left as it is"

rm -rf -- "$work"
mkdir -- "$work"
log "unpacking $name"
gzip -dc -- "$dir/$name" | "$stream" -x -C "$work"
log "preparing it"
"$tool" --prepare --target-dir="$work" >"$scratch/prepare.log" 2>&1 || {
  tail -n 20 "$scratch/prepare.log" >&2
  die "$tool --prepare failed: the volume keeps the unpacked backup in .kubess-restoring, started over next time"
}
[ -f "$work/xtrabackup_galera_info" ] || die "$name has no Galera position (xtrabackup_galera_info)"
read -r info <"$work/xtrabackup_galera_info" || true
[[ $info =~ ^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(-?[0-9]+) ]] ||
  die "$name has no Galera position that can be read (xtrabackup_galera_info: '$info')"
uuid=${BASH_REMATCH[1]} seqno=${BASH_REMATCH[2]}
printf '# GALERA saved state\nversion: 2.1\nuuid:    %s\nseqno:   %s\nsafe_to_bootstrap: 1\n' "$uuid" "$seqno" \
  >"$work/grastate.dat"
for path in "$work"/*; do mv -- "$path" "$datadir/"; done
rmdir -- "$work"
echo "restored $name into $datadir: cluster $uuid at seqno $seqno, safe_to_bootstrap: 1"
