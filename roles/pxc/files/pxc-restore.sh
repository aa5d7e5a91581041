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
# With KUBESS_RESTORE_TO_TIME (point-in-time restore, the mariadb flavour), the prepared backup is then brought
# forward with the transactions of the binary log archive (pxc-binlog-archive.sh) that were committed after the
# backup's last one (its GTID, in xtrabackup_binlog_info) and before that time: a server of the Job's own (no network,
# no Galera, no binary log) applies them, as mariadb-binlog prints them, and stops. They are read from one member's
# archive, binlogs/<the backup's cluster>/<member>/<generation>/binlog.NNNNNN: the member whose archive holds them
# all, one after the other, and reaches furthest. A member's archive that lacks one of them is not used; when no
# member's archive has them all, nothing is restored, and the script says which transaction is missing. A
# transaction's time is that of its GTID event, in UTC, to the second, as mariadb-binlog --stop-datetime counts.
#
# Inputs (environment):
#   KUBESS_RESTORE_FROM                      the backup's name on the backup volume
#   KUBESS_RESTORE_TO_TIME                   empty, or YYYY-MM-DDTHH:MM:SSZ: restore what was committed before it
#   KUBESS_GTID_DOMAIN [1]                   the cluster's GTID domain (wsrep_gtid_domain_id)
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
binlog_tool=${KUBESS_BINLOG_TOOL:-mariadb-binlog}
work="$datadir/.kubess-restoring" to_time=${KUBESS_RESTORE_TO_TIME:-} domain=${KUBESS_GTID_DOMAIN:-1}
export TZ=UTC

# --- point-in-time restore (KUBESS_RESTORE_TO_TIME) -------------------------------------------------------------
# YYYY-MM-DDTHH:MM:SSZ (or a backup's YYYYMMDDTHHMMSSZ) as YYYYMMDDHHMMSS, which sorts as time does.
digits() { local t=${1//[-:TZ ]/}; printf '%s' "$t"; }
# YYYYMMDDHHMMSS moved by $2 seconds (9999... stays).
shifted() {
  [ "${1:0:4}" != 9999 ] || { printf '%s' "$1"; return; }
  date -u -d "@$(($(date -u -d "${1:0:8} ${1:8:2}:${1:10:2}:${1:12:2}" +%s) + $2))" +%Y%m%d%H%M%S
}
# YYYYMMDDHHMMSS as YYYY-MM-DDTHH:MM:SSZ.
iso() { printf '%s-%s-%sT%s:%s:%sZ' "${1:0:4}" "${1:4:2}" "${1:6:2}" "${1:8:2}" "${1:10:2}" "${1:12:2}"; }

# One line per whole transaction of the archived files given, in the order the member logged them:
# "<GTID> <sequence number> <YYYYMMDDHHMMSS> <file> <where it begins> <where it ends>" (byte positions in the file),
# for the cluster's domain. A group that mariadb-binlog opens with START TRANSACTION ends at its Xid, or at a query
# COMMIT or ROLLBACK (tables that are not transactional); any other (a DDL, FLUSH PRIVILEGES) is one statement, and
# ends with it. A file cut short, or still being written, ends with its last whole transaction.
transactions() {
  local file
  for file; do
    { "$binlog_tool" --no-defaults --skip-gtid-strict-mode -- "$file" 2>/dev/null || true; } |
      awk -v file="$file" -v domain="$domain" '
        function done_() { if (open != "") print open, end; open = "" }
        /^# at [0-9]+$/ { at = $3; next }
        /^#[0-9][0-9][0-9][0-9][0-9][0-9] / {
          for (i = 3; i < NF; i++) if ($i == "end_log_pos") end = $(i + 1)
          for (i = 3; i <= NF; i++) if ($i == "GTID") break
          query = 0
          if (i < NF) {
            split($(i + 1), id, "-")
            open = ""; group = 0; gtid_event = 1
            if (id[1] == domain) {
              split($2, hms, ":")
              open = sprintf("%s %s 20%s%02d%02d%02d %s %s", $(i + 1), id[3], substr($1, 2), hms[1], hms[2], hms[3],
                             file, at)
            }
            next
          }
          gtid_event = 0
          if (open == "") next
          if ($0 ~ /\tXid = /) done_()
          else if ($0 ~ /\tQuery\t/) { if (group) query = 1; else done_() }
          next
        }
        open != "" && gtid_event && /^START TRANSACTION$/ { group = 1 }
        open != "" && query && /^(COMMIT|ROLLBACK)$/ { done_() }'
  done
}

# The archived files of one member (its directory) that can hold the backup's last transaction or later ones, in
# the order it logged them: a file last written more than an hour (clocks that differ) before the backup began
# ($2, seconds since the epoch) holds only older transactions, and so do the files before it; the newest of those
# stays, as it may hold the backup's own last transaction (a quiet cluster).
member_files() {
  local file files=() from=0 cutoff=$(($2 - 3600))
  for file in "$1"/*/binlog.[0-9]*; do
    files+=("$file")
    [ "$(stat -c %Y -- "$file")" -ge "$cutoff" ] || from=$((${#files[@]} - 1))
  done
  [ "${#files[@]}" -eq 0 ] || printf '%s\n' "${files[@]:$from}"
}

# Reads the file of transactions() of one member (given twice) and says, on one line:
#   ok <count> <reached> <first GTID> <last GTID> <last time> <first file> <where the first begins> <last file>
#      <where the last ends>: the transactions after the backup's (sequence number from) and before to, one after the
#      other; reached is 1 when the member's archive goes on to a transaction at or after to, else 0 (it ends before);
#   gap <the sequence number missing>;
#   late <time>: the backup's own transaction, or the backup's end (ended, when its transaction is not found), is not
#      before to;
#   none: the archive holds neither the backup's transaction nor the next one (it cannot show that none was
#      committed after the backup).
# Times are YYYYMMDDHHMMSS, the time a transaction's GTID event carries (its statement's start).
#
# A cluster made again under the same name (after a teardown, or a restore) numbers its transactions from the start
# again, in a later generation directory: the same sequence number can be in several histories. The backup's
# transaction is the last one with its number not after the backup ended (ended, widened for clocks), unless the
# next one was begun before the backup began (began, an hour earlier than its name says): then it is another
# history's. Failing that (its file pruned), the run starts at the first transaction numbered next that was begun
# once the backup began. It ends where the numbers start again (the next history), or at the first transaction at or
# after to; a transaction after the backup's begun before the backup began is another history's.
chain() {
  awk -v from="$1" -v to="$2" -v ended="$3" -v began="$4" '
    NR == FNR {
      if (start && FNR == start + 1 && $2 + 0 == from + 1 && $3 < began) start = 0
      if ($2 + 0 == from && $3 <= ended) start = FNR
      else if (!next_one && $2 + 0 == from + 1 && $3 >= began) next_one = FNR
      next
    }
    FNR == 1 { found = (start > 0); first_line = found ? start : next_one; last = from }
    !first_line || stop || FNR < first_line { next }
    found && FNR == first_line { at = $3; if ($3 >= to) { late = 1; stop = 1 }; next }
    { gtid = $1; n = $2 + 0; t = $3 }
    n <= last { stop = 1; next }
    t < began { if (count == 0) wrong = 1; stop = 1; next }
    n != last + 1 { missing = last + 1; stop = 1; next }
    t >= to { reached = 1; stop = 1; next }
    {
      if (count++ == 0) { first = gtid; first_file = $4 " " $5 }
      last = n; last_gtid = gtid; at = t; last_file = $4 " " $6
    }
    END {
      if (!first_line || wrong) print "none"
      else if (late) print "late", at
      else if (!found && to <= ended) print "late", ended
      else if (missing != "") print "gap", missing
      else if (count == 0) print "ok 0", reached + 0
      else printf "ok %d %d %s %s %s %s %s\n", count, reached, first, last_gtid, at, first_file, last_file
    }' "$5" "$5"
}

# Brings the prepared backup in $work forward to $to_time with the archive's transactions.
replay_archive() {
  local info gtid prefix stamp began begun ended archive member result best='' best_rank=-1 best_result='' count
  local reached first last at first_file begin last_file end server file files=() taking=0
  [[ $name =~ ^(.+)-([0-9]{8})T([0-9]{6})Z[.][a-z]+[.]gz$ ]] ||
    die "cannot tell from the name $name which cluster's binary log archive goes with it (<namespace>_<name>-<time>)"
  prefix=${BASH_REMATCH[1]} stamp="${BASH_REMATCH[2]}${BASH_REMATCH[3]}"
  [ "$(digits "$to_time")" -gt "$stamp" ] || die "$name was begun at or after $to_time: restore from an older backup"
  # The backup's time span, from its name and the tool's xtrabackup_info: began an hour earlier (clocks that differ,
  # a statement begun before the backup and committed after it), ended 5 minutes later (clocks).
  began=$(shifted "$stamp" -3600)
  begun=$(date -u -d "${stamp:0:8} ${stamp:8:2}:${stamp:10:2}:${stamp:12:2}" +%s)
  ended=$(sed -n 's/^end_time = \([0-9-]*\) \([0-9:]*\)$/\1\2/p' "$work/xtrabackup_info" 2>/dev/null | tr -d ':-' || true)
  ended=$(shifted "${ended:-99991231235959}" 300)
  archive="$dir/binlogs/$prefix"
  [ -d "$archive" ] || die "there is no binary log archive of $prefix on the backup volume (binlogs/$prefix)"
  read -r _ _ info <"$work/xtrabackup_binlog_info" 2>/dev/null || true
  gtid=$(tr ',' '\n' <<<"${info:-}" | grep -E "^$domain-[0-9]+-[0-9]+$" || true)
  [ -n "$gtid" ] || die "$name has no GTID of the domain $domain (xtrabackup_binlog_info: '${info:-none}'): it was
taken without the binary log (pxc_backup_binlogs)"
  for member in "$archive"/*/; do
    member=${member%/}
    mapfile -t files < <(member_files "$member" "$begun")
    transactions "${files[@]}" >"$scratch/transactions"
    result=$(chain "${gtid##*-}" "$(digits "$to_time")" "$ended" "$began" "$scratch/transactions")
    case $result in
      late\ *) die "$name holds transactions up to $(iso "${result#late }"), not before $to_time: restore from an older backup" ;;
      gap\ *) log "the archive of ${member##*/} lacks the transaction $domain-*-${result#gap }: not used" ;;
      none) log "the archive of ${member##*/} holds neither the backup's last transaction nor the next one: not used" ;;
      ok\ *)
        read -r _ count reached _ <<<"$result"
        # The member whose archive goes on to the time, else the one that reaches furthest (every run starts after
        # the backup's transaction).
        if [ $((reached * 1000000000 + count)) -gt "$best_rank" ]; then
          best=$member best_rank=$((reached * 1000000000 + count)) best_result=$result
        fi ;;
    esac
  done
  [ -n "$best" ] || die "no member's archive holds every transaction after the backup's $gtid: nothing restored"
  read -r _ count reached first last at first_file begin last_file end <<<"$best_result"
  if [ "$reached" != 1 ]; then
    log "WARNING: no member's archive goes on to $to_time: a transaction after the last one archived and before" \
      "$to_time, if any, was not archived, and is not restored"
  fi
  if [ "$count" -eq 0 ]; then
    log "the archive holds no transaction after the backup's $gtid and before $to_time: nothing to apply"
    return
  fi
  files=()
  for file in "$best"/*/binlog.[0-9]*; do
    [ "$file" = "$first_file" ] && taking=1
    [ "$taking" = 1 ] && files+=("$file")
    [ "$file" = "$last_file" ] && break
  done
  log "applying $count transactions of the archive of ${best##*/}, $first to $last (the last at $(iso "$at"))"
  mkdir -p "$scratch/replay-tmp"
  mariadbd --defaults-file="$work/backup-my.cnf" --datadir="$work" --socket="$scratch/replay.sock" --skip-networking \
    --skip-grant-tables --skip-log-bin --max-allowed-packet=1G --pid-file="$scratch/replay.pid" \
    --tmpdir="$scratch/replay-tmp" --log-error="$scratch/replay.log" &
  server=$!
  for ((waited = 0; ; waited++)); do
    mariadb-admin --no-defaults --socket="$scratch/replay.sock" --connect-timeout=2 ping >/dev/null 2>&1 && break
    if ! kill -0 "$server" 2>/dev/null || [ "$waited" -ge 600 ]; then
      kill "$server" 2>/dev/null || true
      tail -n 20 "$scratch/replay.log" >&2
      die "the server that applies the archive did not start"
    fi
    sleep 1 # polling interval of a wait with a deadline
  done
  # FLUSH PRIVILEGES first: account statements among the transactions need the grant tables; this connection, made
  # without them, keeps every privilege. From the first transaction's beginning in its file to the last one's end in
  # its own, the cluster's domain only: a member's events of another domain are its own (written with wsrep off).
  if ! { echo 'FLUSH PRIVILEGES;'
         "$binlog_tool" --no-defaults --do-domain-ids="$domain" --start-position="$begin" --stop-position="$end" \
           -- "${files[@]}"; } |
       mariadb --no-defaults --binary-mode --max-allowed-packet=1G --socket="$scratch/replay.sock" \
         2>"$scratch/apply.err"; then
    kill "$server"
    wait "$server" || true
    tail -n 20 "$scratch/apply.err" >&2
    die "applying the archive failed: the volume keeps the unpacked backup in .kubess-restoring, started over next time"
  fi
  kill "$server"
  wait "$server" || die "the server that applied the archive did not stop cleanly: $(tail -n 5 "$scratch/replay.log")"
  log "applied $count transactions, up to $last at $(iso "$at")"
}

programs=("$tool" "$stream" gzip)
[ -z "$to_time" ] || programs+=("$binlog_tool" mariadbd mariadb mariadb-admin awk date grep sed stat tr)
for program in "${programs[@]}"; do
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
[ -z "$to_time" ] || replay_archive
printf '# GALERA saved state\nversion: 2.1\nuuid:    %s\nseqno:   %s\nsafe_to_bootstrap: 1\n' "$uuid" "$seqno" \
  >"$work/grastate.dat"
for path in "$work"/*; do mv -- "$path" "$datadir/"; done
rmdir -- "$work"
echo "restored $name into $datadir: cluster $uuid at seqno $seqno, safe_to_bootstrap: 1"
