#!/usr/bin/env bash
# The binlog-archive container of each member (pxc_backup_binlogs): copies the member's binary log, as it is written,
# into this member's directory on the backup volume, for point-in-time restore.
#
# It connects to its own member over loopback as the backup user ('<KUBESS_BACKUP_USER>'@'%', which needs
# REPLICATION SLAVE; see the role README for a cluster initialised before) and runs the image's mariadb-binlog as a
# replica would: --raw --stop-never, each binary log file written under its own name as the events arrive. When the
# member stops, or is not up yet, it connects again (every KUBESS_BINLOG_RETRY seconds) and goes on: from the file
# after the last one it archived when that one is whole, else from that one, fetched again whole.
#
# A member whose data directory was made again (a snapshot transfer from a donor, a restore) numbers its binary log
# from the start again. The files are written into a generation directory (<UTC time>/) that starts whenever the
# last archived file is no longer on the member, or the member's file of that name is another file (its first event,
# the Format_description with the time the file was made, differs): a file is never overwritten by another file of
# the same name. An empty generation directory is used again rather than a new one made.
#
# It never exits on an error (the pod would not be Ready): it says what is wrong and tries again.
#
# Inputs (environment):
#   KUBESS_BINLOG_HOST [127.0.0.1]    KUBESS_BINLOG_PORT [3306]    the member
#   KUBESS_BACKUP_USER KUBESS_BACKUP_PASSWORD
#   KUBESS_BINLOG_DIR                 this member's archive directory on the backup volume
#   KUBESS_BINLOG_TOOL [mariadb-binlog]    KUBESS_CLIENT [mariadb]
#   KUBESS_BINLOG_SERVER_ID [4000]    the server id it connects with (none of the members' own)
#   KUBESS_BINLOG_RETRY [10]          seconds between two attempts to connect
#   KUBESS_IMAGE_NAME                 the image, named in errors
# The password reaches the programs through MYSQL_PWD, never on a command line.
set -uo pipefail
umask 027

log() { printf '[pxc-binlog-archive] %s\n' "$*" >&2; }

host=${KUBESS_BINLOG_HOST:-127.0.0.1} port=${KUBESS_BINLOG_PORT:-3306} user=${KUBESS_BACKUP_USER:?}
dir=${KUBESS_BINLOG_DIR:?} tool=${KUBESS_BINLOG_TOOL:-mariadb-binlog} client=${KUBESS_CLIENT:-mariadb}
server_id=${KUBESS_BINLOG_SERVER_ID:-4000} retry=${KUBESS_BINLOG_RETRY:-10}
export MYSQL_PWD=${KUBESS_BACKUP_PASSWORD:-}

ask() {
  "$client" --host="$host" --port="$port" --user="$user" --connect-timeout=10 --batch --skip-column-names -e "$1"
}

# The newest generation directory, or nothing.
newest_generation() {
  local path newest=
  for path in "$dir"/*/; do
    path=${path%/}
    [[ ${path##*/} =~ ^[0-9]{8}T[0-9]{6}Z$ ]] && newest=$path
  done
  printf '%s' "$newest"
}

# The last binary log file archived in a generation directory, or nothing.
last_archived() {
  local path last=
  for path in "$1"/*; do
    [[ ${path##*/} =~ ^[^.][^/]*[.][0-9]{6,}$ ]] && last=${path##*/}
  done
  printf '%s' "$last"
}

# The first event of a binary log file (its Format_description: server id, version, the time the file was made), as
# mariadb-binlog prints it: of the archived file at a path, or, with the connection options first, of the member's
# file of that name. Fails when the file cannot be read.
start_of() {
  local out
  out=$("$tool" --stop-position=1000 "$@" 2>&1) || { log "cannot read the start of ${*: -1}: $(tr '\n' ' ' <<<"$out")"; return 1; }
  grep -m 1 'Start: binlog' <<<"$out"
}

# One attempt: where to start, then mariadb-binlog until the member goes away. Returns when it does.
archive_once() {
  local out logs generation last size first next archived_start member_start
  if ! out=$(ask "SHOW BINARY LOGS" 2>&1); then
    log "cannot list the binary logs of $host:$port as '$user': $(tr '\n' ' ' <<<"$out")"
    case $out in
      *"denied"* | *"privilege"*)
        log "the backup user needs REPLICATION SLAVE and BINLOG MONITOR: see the pxc role README (Backups)" ;;
      *"not using binary logging"*)
        log "the member runs without a binary log: pxc_backup_binlogs was set after it started?" ;;
    esac
    return 1
  fi
  # Name and size of each file, one per line; whatever else the client printed (a warning) is left out.
  logs=$(awk -F '\t' 'NF == 2 && $2 ~ /^[0-9]+$/' <<<"$out")
  first=$(awk 'NR == 1 { print $1 }' <<<"$logs")
  [ -n "$first" ] || { log "$host:$port lists no binary log"; return 1; }
  generation=$(newest_generation)
  last=
  [ -z "$generation" ] || last=$(last_archived "$generation")
  if [ -n "$last" ]; then
    size=$(awk -v f="$last" '$1 == f { print $2 }' <<<"$logs")
    if [ -z "$size" ]; then
      log "$last (archived) is no longer on the member, which has $first and later: a new generation"
      last=
    else
      # An archived file too short to hold its first event was cut off while it was first written: fetched again.
      archived_start=$(start_of "$generation/$last" 2>/dev/null) || archived_start=
      member_start=$(start_of --read-from-remote-server --host="$host" --port="$port" --user="$user" "$last") ||
        return 1
      if [ -z "$archived_start" ]; then
        log "$last is incomplete in the archive: fetched again"
      elif [ "$archived_start" != "$member_start" ]; then
        log "the member's $last is not the one archived (its binary log began again): a new generation"
        last=
      elif [ "$(stat -c %s -- "$generation/$last")" -ge "$size" ]; then
        # Whole in the archive: go on from the next file, so that a finished file is never fetched again.
        next=$(awk -v f="$last" 'found { print $1; exit } $1 == f { found = 1 }' <<<"$logs")
        [ -z "$next" ] || last=$next
      fi
    fi
  fi
  if [ -z "$last" ]; then
    if [ -z "$generation" ] || [ -n "$(last_archived "$generation")" ]; then
      generation=$dir/$(date -u +%Y%m%dT%H%M%SZ)
      mkdir -p -- "$generation" || { log "cannot make $generation on the backup volume"; return 1; }
    fi
    last=$first
  fi
  log "archiving the binary log of $host:$port from $last into $generation"
  "$tool" --read-from-remote-server --raw --stop-never --stop-never-slave-server-id="$server_id" \
    --host="$host" --port="$port" --user="$user" --result-file="$generation/" "$last" &
  child=$!
  wait "$child"
  log "$tool stopped (exit code $?)"
  child=
}

for program in "$tool" "$client" awk grep stat tr date mkdir sleep; do
  command -v "$program" >/dev/null || log "ERROR: $program is not in the image (${KUBESS_IMAGE_NAME:-}): see the image contract"
done
mkdir -p -- "$dir" || log "ERROR: cannot make $dir on the backup volume"
# The programs run in the background, so that the pod's stop (TERM) is handled at once: what was received is on the
# volume, and the next start fetches the last file again whole.
child=
trap 'log "stopping"; [ -z "$child" ] || kill "$child" 2>/dev/null; exit 0' TERM INT
while true; do
  archive_once
  # Backoff before connecting again: the member restarts, receives a snapshot, or is not up yet.
  sleep "$retry" &
  child=$!
  wait "$child"
  child=
done
