#!/usr/bin/env bash
# mysql-replication.sh: identity, initialisation, seeding and health of one pod of a MySQL or MariaDB
# primary/replica StatefulSet.
#
# The pod's identity comes from its hostname, <set>-<ordinal>: ordinal 0 is the primary, every other
# ordinal is a replica that is seeded from the PREVIOUS ordinal (<set>-<n-1>) and then replicates from
# ordinal 0 with GTID. Two flavours (KUBESS_FLAVOR):
#   mysql    the official mysql image: this script initialises ordinal 0; a replica clones ordinal n-1
#            with the clone plugin, then replicates with GTID auto-positioning.
#   mariadb  the official mariadb image (or one with its contract): the image's entrypoint initialises
#            ordinal 0 (MARIADB_* settings) and runs `initialised` last; a replica receives a backup of
#            ordinal n-1 (mariabackup --backup --stream=xbstream, served by its backup sidecar), prepares
#            it, then replicates with MariaDB GTID from the backup's position (master_use_gtid=slave_pos).
#
# Usage: mysql-replication.sh COMMAND [ARG]
#   identity      print this pod's identity as key=value lines (no server needed)
#   mycnf         print the my.cnf fragment of this pod (no server needed)
#   sql STEP      print the SQL of STEP (bootstrap, clone or replication), passwords masked (no server needed)
#   plan          identity, my.cnf fragment and every step this pod would run, passwords masked
#   init          init container: write the my.cnf fragment; on a new volume initialise the data directory
#                 (mysql: ordinal 0 bootstraps, the others clone; mariadb: the others receive a backup)
#                 and configure replication from ordinal 0
#   start         main container: exec the server (mariadb: through the image's entrypoint, after removing
#                 what an interrupted initialisation by it left)
#   initialised   mariadb: run by the image's entrypoint as its last initialisation file on ordinal 0:
#                 create the backup account, mark the data directory initialised
#   serve-backup  mariadb backup sidecar: listen on KUBESS_BACKUP_PORT, one send-backup per connection
#   send-backup   one backup request on stdin/stdout: challenge, then the backup stream (xbstream); asked
#                 for a stored backup, this pod's health first, and a last file that says the stream is whole
#   store-backup  mariadb backup Job: a backup of ordinal KUBESS_BACKUP_ORDINAL from its sidecar, gzipped onto
#                 KUBESS_BACKUP_DIR, then this set's backups beyond the newest KUBESS_BACKUP_KEEP deleted
#   restore       mariadb restore Job (as ordinal 0, on its empty volume): the data directory from the stored
#                 backup KUBESS_RESTORE_FROM, prepared, its replication reset, its binary log at the backup's GTID
#   ready         readiness probe: the primary answers a query with networking on; a replica runs both
#                 replication threads
#   alive         liveness probe: the server answers a ping
#
# Inputs (environment; the StatefulSet sets them, passwords come from a Secret through secretKeyRef):
#   HOSTNAME                      the pod's hostname, <set>-<ordinal> (a domain part is ignored)
#   KUBESS_FLAVOR                 mysql or mariadb (default mysql)
#   KUBESS_SET_NAME               StatefulSet name (required)
#   KUBESS_SERVICE                headless Service name (default: the StatefulSet name)
#   KUBESS_NAMESPACE              namespace (required)
#   KUBESS_CLUSTER_DOMAIN         cluster DNS domain (default cluster.local)
#   KUBESS_SERVER_ID_BASE         server-id of ordinal 0; ordinal n gets base + n (required, 1..4294967295)
#   KUBESS_PORT                   server port (default 3306)
#   KUBESS_BACKUP_PORT            mariadb: port of the backup sidecar (default 3307)
#   KUBESS_REPLICATION_USER       replication account (default repl)
#   KUBESS_CLONE_USER             mysql: clone donor account; mariadb: backup account (default clone)
#   KUBESS_APP_USER, KUBESS_APP_DATABASE   application account and database, created on ordinal 0 (optional)
#   KUBESS_ROOT_PASSWORD, KUBESS_REPLICATION_PASSWORD, KUBESS_CLONE_PASSWORD, KUBESS_APP_PASSWORD
#   KUBESS_DATA_ROOT              volume mount point (default /var/lib/mysql); the data directory is <root>/data
#   KUBESS_CONF_DIR               directory of the my.cnf fragment (default /etc/mysql/conf.d)
#   KUBESS_SOCKET                 socket of the running server (default /var/run/mysqld/mysqld.sock)
#   KUBESS_INIT_SOCKET            socket of the temporary server used by init (default /tmp/mysqld-init.sock)
#   KUBESS_INIT_TIMEOUT           seconds to wait for a temporary server, or for the donor's backup sidecar
#                                 to answer (default 300)
#   KUBESS_BACKUP_ORDINAL         store-backup: the ordinal whose sidecar sends the backup
#   KUBESS_BACKUP_DIR             store-backup, restore: the backup volume (default /backup)
#   KUBESS_BACKUP_PREFIX          store-backup: <namespace>_<set>, this set's backups
#   KUBESS_BACKUP_NAME            store-backup: the name to store under; empty: <prefix>-<UTC time>.mbstream.gz
#   KUBESS_BACKUP_KEEP            store-backup: how many of this set's backups to keep (default 7)
#   KUBESS_BACKUP_FORCE           store-backup: 1 takes the backup although the sidecar's pod is not healthy
#   KUBESS_RESTORE_FROM           restore: the name of the backup on KUBESS_BACKUP_DIR
#
# Passwords never appear on a command line: SQL goes to the client on stdin and the client reads its
# password from an option file passed as a pipe (--defaults-extra-file=/dev/fd/N); mariabackup reads its
# option files twice, so it gets a private file instead, removed when it ends. The backup stream is only
# sent to a requester that proves it knows KUBESS_CLONE_PASSWORD: the sidecar sends a random challenge,
# the requester answers sha256(challenge, password); the password itself never crosses the network. A requester
# that stores the backup asks for it after the proof ('backup', or 'forced-backup'): the sidecar first checks its
# own pod (a replica runs both replication threads; the primary, the only writer, is refused unless forced) and
# answers UNHEALTHY with the reason, and after the backup tool succeeded it adds a last file, COMPLETE_MARKER:
# a stored stream that does not end with it is not whole.
set -euo pipefail

readonly MAX_SERVER_ID=4294967295
readonly MASK="'********'"
readonly DNS_LABEL='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
readonly GTID_LIST='^([0-9]+-[0-9]+-[0-9]+(,[0-9]+-[0-9]+-[0-9]+)*)?$'
# Seconds a backup request may take to answer the challenge, or the sidecar to send it.
readonly CHALLENGE_TIMEOUT=30
# The last file of a stream sent for a stored backup; a restore removes it from the data directory.
readonly COMPLETE_MARKER=kubess-backup-complete
readonly BACKUP_NAME='^[A-Za-z0-9][A-Za-z0-9._-]*[.]mbstream[.]gz$'

# The log goes to the stderr the script started with, also from a trap that runs while a command's stderr is
# redirected.
exec {LOG_FD}>&2
log() { printf 'mysql-replication: %s\n' "$*" >&"$LOG_FD"; }
die() {
  log "error: $*"
  exit 1
}

# --- inputs -------------------------------------------------------------------------------------------

# tcp_port VARIABLE VALUE: refuse a VALUE that is not a TCP port, naming VARIABLE.
tcp_port() {
  if [[ ! $2 =~ ^[1-9][0-9]{0,4}$ ]] || (($2 > 65535)); then
    die "$1 '$2' is not a TCP port"
  fi
}

load_inputs() {
  FLAVOR=${KUBESS_FLAVOR:-mysql}
  SET_NAME=${KUBESS_SET_NAME:-}
  SERVICE=${KUBESS_SERVICE:-$SET_NAME}
  NAMESPACE=${KUBESS_NAMESPACE:-}
  CLUSTER_DOMAIN=${KUBESS_CLUSTER_DOMAIN:-cluster.local}
  SERVER_ID_BASE=${KUBESS_SERVER_ID_BASE:-}
  PORT=${KUBESS_PORT:-3306}
  BACKUP_PORT=${KUBESS_BACKUP_PORT:-3307}
  REPL_USER=${KUBESS_REPLICATION_USER:-repl}
  CLONE_USER=${KUBESS_CLONE_USER:-clone}
  APP_USER=${KUBESS_APP_USER:-}
  APP_DATABASE=${KUBESS_APP_DATABASE:-}
  DATA_ROOT=${KUBESS_DATA_ROOT:-/var/lib/mysql}
  DATADIR=$DATA_ROOT/data
  SCRATCH=$DATA_ROOT/scratch
  CONF_DIR=${KUBESS_CONF_DIR:-/etc/mysql/conf.d}
  SOCKET=${KUBESS_SOCKET:-/var/run/mysqld/mysqld.sock}
  INIT_SOCKET=${KUBESS_INIT_SOCKET:-/tmp/mysqld-init.sock}
  INIT_TIMEOUT=${KUBESS_INIT_TIMEOUT:-300}
  STARTED_MARKER=$DATA_ROOT/.kubess-init-started
  DONE_MARKER=$DATA_ROOT/.kubess-init-done

  case $FLAVOR in
    mysql)
      SERVER=mysqld CLIENT=mysql ADMIN=mysqladmin CNF_GROUP=mysqld
      IO_THREAD=Replica_IO_Running SQL_THREAD=Replica_SQL_Running
      ;;
    mariadb)
      SERVER=mariadbd CLIENT=mariadb ADMIN=mariadb-admin CNF_GROUP=mariadb
      IO_THREAD=Slave_IO_Running SQL_THREAD=Slave_SQL_Running
      ;;
    *) die "KUBESS_FLAVOR '$FLAVOR' is not mysql or mariadb" ;;
  esac
  [[ $SET_NAME =~ $DNS_LABEL ]] || die "KUBESS_SET_NAME '$SET_NAME' is not a DNS-1123 label"
  [[ $SERVICE =~ $DNS_LABEL ]] || die "KUBESS_SERVICE '$SERVICE' is not a DNS-1123 label"
  [[ $NAMESPACE =~ $DNS_LABEL ]] || die "KUBESS_NAMESPACE '$NAMESPACE' is not a DNS-1123 label"
  [[ $CLUSTER_DOMAIN =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "KUBESS_CLUSTER_DOMAIN '$CLUSTER_DOMAIN' is not a DNS name"
  if [[ ! $SERVER_ID_BASE =~ ^[1-9][0-9]{0,9}$ ]] || ((SERVER_ID_BASE > MAX_SERVER_ID)); then
    die "KUBESS_SERVER_ID_BASE '$SERVER_ID_BASE' is not an integer from 1 to $MAX_SERVER_ID"
  fi
  tcp_port KUBESS_PORT "$PORT"
  if [[ $FLAVOR == mariadb ]]; then
    tcp_port KUBESS_BACKUP_PORT "$BACKUP_PORT"
    ((PORT != BACKUP_PORT)) || die "KUBESS_BACKUP_PORT is KUBESS_PORT ($PORT); they must differ"
  fi
  [[ $INIT_TIMEOUT =~ ^[1-9][0-9]{0,5}$ ]] || die "KUBESS_INIT_TIMEOUT '$INIT_TIMEOUT' is not a positive integer"
  [[ $REPL_USER =~ ^[A-Za-z0-9_]{1,32}$ ]] \
    || die "KUBESS_REPLICATION_USER '$REPL_USER' is not 1-32 letters, digits or _"
  [[ $CLONE_USER =~ ^[A-Za-z0-9_]{1,32}$ ]] || die "KUBESS_CLONE_USER '$CLONE_USER' is not 1-32 letters, digits or _"
  [[ -z $APP_USER || $APP_USER =~ ^[A-Za-z0-9_]{1,32}$ ]] \
    || die "KUBESS_APP_USER '$APP_USER' is not 1-32 letters, digits or _"
  [[ -z $APP_DATABASE || $APP_DATABASE =~ ^[A-Za-z0-9_]{1,64}$ ]] \
    || die "KUBESS_APP_DATABASE '$APP_DATABASE' is not 1-64 letters, digits or _"
  [[ -z $APP_USER || -n $APP_DATABASE ]] || die "KUBESS_APP_USER is set but KUBESS_APP_DATABASE is empty"
  return 0
}

# --- identity: everything is derived from the hostname -----------------------------------------------

fqdn() { printf '%s-%d.%s.%s.svc.%s' "$SET_NAME" "$1" "$SERVICE" "$NAMESPACE" "$CLUSTER_DOMAIN"; }

derive_identity() {
  local host=${HOSTNAME:-}
  host=${host%%.*}
  [[ -n $host ]] || die "HOSTNAME is empty; expected $SET_NAME-<ordinal>"
  local ordinal=${host#"$SET_NAME"-}
  if [[ $host != "$SET_NAME"-* || ! $ordinal =~ ^(0|[1-9][0-9]{0,8})$ ]]; then
    die "hostname '$host' is not $SET_NAME-<ordinal> (ordinal: a number without leading zeros)"
  fi
  ORDINAL=$ordinal
  SERVER_ID=$((SERVER_ID_BASE + ORDINAL))
  ((SERVER_ID <= MAX_SERVER_ID)) \
    || die "server-id $SERVER_ID_BASE + $ORDINAL exceeds $MAX_SERVER_ID; lower KUBESS_SERVER_ID_BASE"
  SELF_HOST=$(fqdn "$ORDINAL")
  if ((ORDINAL == 0)); then
    ROLE=primary
    CLONE_SOURCE=
    REPLICATION_SOURCE=
  else
    ROLE=replica
    CLONE_SOURCE=$(fqdn $((ORDINAL - 1)))
    REPLICATION_SOURCE=$(fqdn 0)
  fi
}

print_identity() {
  printf 'hostname=%s\nflavor=%s\nordinal=%s\nrole=%s\nserver_id=%s\nhost=%s\nclone_source=%s\nreplication_source=%s\n' \
    "$SET_NAME-$ORDINAL" "$FLAVOR" "$ORDINAL" "$ROLE" "$SERVER_ID" "$SELF_HOST" "$CLONE_SOURCE" "$REPLICATION_SOURCE"
}

# --- configuration ------------------------------------------------------------------------------------

print_mycnf() {
  local read_only=OFF
  [[ $ROLE == replica ]] && read_only=ON
  cat <<EOF
# $SET_NAME-$ORDINAL: $ROLE (written by mysql-replication.sh from the hostname; do not edit)
[$CNF_GROUP]
datadir = $DATADIR
port = $PORT
server_id = $SERVER_ID
report_host = $SELF_HOST
report_port = $PORT
log_bin = binlog
relay_log = relay-bin
read_only = $read_only
EOF
  if [[ $FLAVOR == mysql ]]; then
    cat <<EOF
gtid_mode = ON
enforce_gtid_consistency = ON
log_replica_updates = ON
plugin_load_add = mysql_clone.so
super_read_only = $read_only
EOF
  else
    cat <<EOF
log_slave_updates = ON
binlog_format = ROW
gtid_strict_mode = ON
EOF
  fi
}

# --- SQL ----------------------------------------------------------------------------------------------

# sql_string VALUE: VALUE as a single-quoted SQL string literal.
sql_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\'/\'\'}
  printf "'%s'" "$s"
}

# password VAR: the password held in environment variable VAR as an SQL literal, or the mask.
password() {
  if [[ ${SHOW_PASSWORDS:-0} == 1 ]]; then
    sql_string "${!1}"
  else
    printf '%s' "$MASK"
  fi
}

# The accounts and database of ordinal 0. mariadb: the image's entrypoint made root, the application
# database and account and the replication account; only the local backup account is left.
sql_bootstrap() {
  if [[ $FLAVOR == mariadb ]]; then
    cat <<EOF
CREATE USER '$CLONE_USER'@'localhost' IDENTIFIED BY $(password KUBESS_CLONE_PASSWORD);
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO '$CLONE_USER'@'localhost';
EOF
    return 0
  fi
  cat <<EOF
ALTER USER 'root'@'localhost' IDENTIFIED BY $(password KUBESS_ROOT_PASSWORD);
CREATE USER '$REPL_USER'@'%' IDENTIFIED BY $(password KUBESS_REPLICATION_PASSWORD);
GRANT REPLICATION SLAVE ON *.* TO '$REPL_USER'@'%';
CREATE USER '$CLONE_USER'@'%' IDENTIFIED BY $(password KUBESS_CLONE_PASSWORD);
GRANT BACKUP_ADMIN ON *.* TO '$CLONE_USER'@'%';
EOF
  if [[ -n $APP_DATABASE ]]; then
    printf 'CREATE DATABASE IF NOT EXISTS %s;\n' "\`$APP_DATABASE\`"
  fi
  if [[ -n $APP_USER ]]; then
    cat <<EOF
CREATE USER '$APP_USER'@'%' IDENTIFIED BY $(password KUBESS_APP_PASSWORD);
GRANT ALL PRIVILEGES ON \`$APP_DATABASE\`.* TO '$APP_USER'@'%';
EOF
  fi
}

sql_clone() {
  cat <<EOF
SET GLOBAL clone_valid_donor_list = '$CLONE_SOURCE:$PORT';
CLONE INSTANCE FROM '$CLONE_USER'@'$CLONE_SOURCE':$PORT IDENTIFIED BY $(password KUBESS_CLONE_PASSWORD)
  DATA DIRECTORY = '$DATADIR' REQUIRE SSL;
EOF
}

# The one row of the last clone operation of the server asked: state, error number, error message.
sql_clone_status() {
  echo 'SELECT STATE, ERROR_NO, ERROR_MESSAGE FROM performance_schema.clone_status;'
}

# sql_replication [GTID]: mariadb starts from GTID, the position of the backup the replica was seeded with.
sql_replication() {
  if [[ $FLAVOR == mariadb ]]; then
    local gtid
    gtid=$(if [[ -n ${1+set} ]]; then sql_string "$1"; else printf "'<GTID of the backup>'"; fi)
    cat <<EOF
RESET SLAVE ALL;
SET GLOBAL gtid_slave_pos = $gtid;
CHANGE MASTER TO
  MASTER_HOST = '$REPLICATION_SOURCE', MASTER_PORT = $PORT,
  MASTER_USER = '$REPL_USER', MASTER_PASSWORD = $(password KUBESS_REPLICATION_PASSWORD),
  MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 10;
EOF
    return 0
  fi
  cat <<EOF
RESET REPLICA ALL;
CHANGE REPLICATION SOURCE TO
  SOURCE_HOST = '$REPLICATION_SOURCE', SOURCE_PORT = $PORT,
  SOURCE_USER = '$REPL_USER', SOURCE_PASSWORD = $(password KUBESS_REPLICATION_PASSWORD),
  SOURCE_AUTO_POSITION = 1, SOURCE_SSL = 1, GET_SOURCE_PUBLIC_KEY = 1,
  SOURCE_CONNECT_RETRY = 10, SOURCE_RETRY_COUNT = 86400;
START REPLICA;
EOF
}

print_sql() {
  case ${1:-} in
    bootstrap)
      [[ $ROLE == primary ]] || die "the bootstrap step runs on ordinal 0 only; this is ordinal $ORDINAL"
      sql_bootstrap
      ;;
    clone)
      [[ $ROLE == replica ]] || die "the clone step runs on replicas only; ordinal 0 is the primary"
      [[ $FLAVOR == mysql ]] || die "the clone step is the mysql flavour's; mariadb replicas receive a backup"
      sql_clone
      ;;
    replication)
      [[ $ROLE == replica ]] || die "the replication step runs on replicas only; ordinal 0 is the primary"
      sql_replication
      ;;
    *) die "unknown SQL step '${1:-}'; expected bootstrap, clone or replication" ;;
  esac
}

print_plan() {
  echo '# identity'
  print_identity
  echo '# my.cnf'
  print_mycnf
  case $FLAVOR-$ROLE in
    mysql-primary)
      echo '# sql: bootstrap (temporary server on the new data directory)'
      sql_bootstrap
      ;;
    mariadb-primary)
      echo "# the image's entrypoint initialises the new data directory (MARIADB_* settings: root, the"
      echo '# application database and account, the replication account), then runs initialised:'
      echo '# sql: bootstrap'
      sql_bootstrap
      ;;
    mysql-replica)
      echo "# sql: clone (temporary server on a scratch directory; donor $CLONE_SOURCE)"
      sql_clone
      ;;
    mariadb-replica)
      echo "# seed: a backup of $CLONE_SOURCE from its port $BACKUP_PORT (mariabackup --backup --stream=xbstream),"
      echo '# extracted (mbstream) and prepared (mariabackup --prepare) into the data directory'
      ;;
  esac
  if [[ $ROLE == replica ]]; then
    echo "# sql: replication (temporary server on the new data directory; source $REPLICATION_SOURCE)"
    sql_replication
  fi
}

# --- talking to a local server ------------------------------------------------------------------------

# client_options USER PASSWORD: a [client] option group for USER with PASSWORD.
client_options() {
  local p=$2
  p=${p//\\/\\\\}
  p=${p//\"/\\\"}
  printf '[client]\nuser=%s\npassword="%s"\n' "$1" "$p"
}

# run_sql SOCKET PASSWORD [CLIENT_OPTION...]: run the SQL on stdin as root through SOCKET; rows as
# tab-separated values without column names unless the options say otherwise.
run_sql() {
  local socket=$1 pw=$2
  shift 2
  "$CLIENT" --defaults-extra-file=<(client_options root "$pw") --protocol=socket --socket="$socket" --batch \
    "${@:---skip-column-names}"
}

# admin SOCKET PASSWORD ARGS...: mysqladmin (mariadb-admin) as root through SOCKET.
admin() {
  local socket=$1 pw=$2
  shift 2
  "$ADMIN" --defaults-extra-file=<(client_options root "$pw") --protocol=socket --socket="$socket" "$@"
}

require_password() {
  local var
  for var in "$@"; do
    [[ -n ${!var:-} ]] || die "$var is empty; it must come from the credentials Secret"
    [[ ${!var} != *$'\n'* ]] || die "$var contains a newline, which is not supported"
  done
}

TEMP_PID=
# Options a temporary server gets besides its own (restore: --skip-grant-tables).
TEMP_SERVER_OPTIONS=()
DONOR_PID=
PRIVATE_FILE=

# On any exit, never leave a temporary server, a donor connection or a password file behind.
clean_up() {
  local pid
  for pid in "$TEMP_PID" "$DONOR_PID"; do
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  [[ -z $PRIVATE_FILE ]] || rm -f "$PRIVATE_FILE"
}
trap clean_up EXIT
# As PID 1 of an init container the shell gets no default action for SIGTERM: end, cleaning up.
trap 'log "terminated"; exit 143' TERM INT

# start_temp_server DATADIR: the server on DATADIR, reachable only through INIT_SOCKET.
start_temp_server() {
  log "starting a temporary server on $1"
  local options=(--mysqlx=OFF --read-only=OFF --super-read-only=OFF --skip-replica-start)
  [[ $FLAVOR == mysql ]] || options=(--skip-slave-start)
  "$SERVER" --datadir="$1" --skip-networking --socket="$INIT_SOCKET" "${options[@]}" "${TEMP_SERVER_OPTIONS[@]}" &
  TEMP_PID=$!
  local deadline=$((SECONDS + INIT_TIMEOUT))
  until admin "$INIT_SOCKET" "" ping >/dev/null 2>&1; do
    kill -0 "$TEMP_PID" 2>/dev/null || die "the temporary server on $1 exited before answering"
    ((SECONDS < deadline)) || die "the temporary server on $1 did not answer within ${INIT_TIMEOUT}s"
    sleep 1 # polling interval of a wait with a deadline
  done
}

# stop_temp_server PASSWORD
stop_temp_server() {
  admin "$INIT_SOCKET" "$1" shutdown
  wait "$TEMP_PID" || die "the temporary server did not shut down cleanly"
  TEMP_PID=
}

bootstrap_primary() {
  require_password KUBESS_ROOT_PASSWORD KUBESS_REPLICATION_PASSWORD KUBESS_CLONE_PASSWORD
  [[ -z $APP_USER ]] || require_password KUBESS_APP_PASSWORD
  log "initialising $DATADIR for the primary ($SET_NAME-0, server-id $SERVER_ID)"
  mysqld --initialize-insecure --datadir="$DATADIR"
  start_temp_server "$DATADIR"
  SHOW_PASSWORDS=1 sql_bootstrap | run_sql "$INIT_SOCKET" ""
  stop_temp_server "$KUBESS_ROOT_PASSWORD"
}

# A clone into a DATA DIRECTORY copies InnoDB's files (mysql.ibd holds the data dictionary); the schema
# directories appear at the first start. The scratch server's clone_status says whether it completed.
clone_previous_ordinal() {
  log "cloning $CLONE_SOURCE into $DATADIR"
  mysqld --initialize-insecure --datadir="$SCRATCH"
  start_temp_server "$SCRATCH"
  SHOW_PASSWORDS=1 sql_clone | run_sql "$INIT_SOCKET" ""
  local state error message
  IFS=$'\t' read -r state error message < <(sql_clone_status | run_sql "$INIT_SOCKET" "") || true
  stop_temp_server ""
  [[ $state == Completed ]] \
    || die "the clone from $CLONE_SOURCE did not complete (state '$state', error $error: $message)"
  [[ -f $DATADIR/mysql.ibd ]] || die "the clone from $CLONE_SOURCE left no data dictionary ($DATADIR/mysql.ibd)"
  rm -rf "$SCRATCH"
}

# backup_proof CHALLENGE: the answer to a backup sidecar's challenge, sha256 of it and the clone password.
backup_proof() {
  local sum
  sum=$(printf '%s %s' "$1" "$KUBESS_CLONE_PASSWORD" | sha256sum)
  printf '%s\n' "${sum%% *}"
}

# request_backup SOURCE [REQUEST]: connect to SOURCE's backup sidecar (retried until it answers, within
# INIT_TIMEOUT), answer its challenge, then ask for REQUEST (nothing: a seed; backup or forced-backup: a stored
# backup). Once it says OK, DONOR_IN reads the stream (DONOR_OUT stays open until the stream ends: closing it would
# end the connection).
request_backup() {
  local source=$1 request=${2:-} deadline=$((SECONDS + INIT_TIMEOUT)) greeting='' answer=''
  while :; do
    coproc DONOR_CONNECTION { exec socat - "TCP:$source:$BACKUP_PORT,connect-timeout=10"; }
    DONOR_PID=$DONOR_CONNECTION_PID
    # Copies of the connection's pipes: bash closes its own when it reaps the coprocess.
    exec {DONOR_IN}<&"${DONOR_CONNECTION[0]}" {DONOR_OUT}>&"${DONOR_CONNECTION[1]}"
    if IFS= read -r -t "$CHALLENGE_TIMEOUT" greeting <&"$DONOR_IN" && [[ $greeting == 'KUBESS-BACKUP '* ]]; then
      break
    fi
    end_request
    ((SECONDS < deadline)) \
      || die "the backup sidecar of $source (port $BACKUP_PORT) did not answer within ${INIT_TIMEOUT}s"
    sleep 2 # polling interval of a wait with a deadline
  done
  printf '%s%s\n' "$(backup_proof "${greeting#KUBESS-BACKUP }")" "${request:+ $request}" >&"$DONOR_OUT"
  IFS= read -r -t "$CHALLENGE_TIMEOUT" answer <&"$DONOR_IN" || true
  case $answer in
    OK) ;;
    'UNHEALTHY '*) die "$source cannot give a backup now: ${answer#UNHEALTHY }" ;;
    *) die "$source refused the backup request ('$answer'): do both pods have the same KUBESS_CLONE_PASSWORD?" ;;
  esac
}

# end_request: close the connection to a backup sidecar and reap it.
end_request() {
  exec {DONOR_IN}<&- {DONOR_OUT}>&-
  kill "$DONOR_PID" 2>/dev/null || true
  wait "$DONOR_PID" 2>/dev/null || true
  DONOR_PID=
}

# receive_backup DIR: a backup of ordinal n-1 (its sidecar), extracted into DIR.
receive_backup() {
  request_backup "$CLONE_SOURCE"
  log "receiving a backup of $CLONE_SOURCE into $1"
  mbstream -x -C "$1" <&"$DONOR_IN" || die "the backup stream from $CLONE_SOURCE could not be extracted"
  end_request
}

# backup_file DIR NAME: the path of the backup's NAME file (mariadb_backup_NAME, or the older xtrabackup_NAME).
backup_file() {
  local name
  for name in "$1/mariadb_backup_$2" "$1/xtrabackup_$2"; do
    [[ -f $name ]] && { printf '%s\n' "$name"; return 0; }
  done
  return 1
}

# Seeds the new data directory with a backup of ordinal n-1 and prints the GTID position it holds.
seed_previous_ordinal() {
  rm -rf "$SCRATCH"
  mkdir -p "$SCRATCH"
  receive_backup "$SCRATCH"
  local checkpoints binlog_info file position gtid
  # Written at the end of a backup: without them the stream was cut short.
  if ! checkpoints=$(backup_file "$SCRATCH" checkpoints) || ! binlog_info=$(backup_file "$SCRATCH" binlog_info); then
    die "the backup from $CLONE_SOURCE is incomplete (no checkpoints or binlog_info file); see its backup-server log"
  fi
  IFS=$'\t' read -r file position gtid <"$binlog_info" || true
  [[ $gtid =~ $GTID_LIST ]] || die "$binlog_info holds no GTID position ('$gtid')"
  log "preparing the backup (binary log $file:$position, GTID '$gtid'; $checkpoints)"
  mariabackup --prepare --target-dir="$SCRATCH" || die "mariabackup --prepare failed on the backup from $CLONE_SOURCE"
  mv "$SCRATCH" "$DATADIR"
  SEED_GTID=$gtid
}

init_replica() {
  require_password KUBESS_ROOT_PASSWORD KUBESS_REPLICATION_PASSWORD KUBESS_CLONE_PASSWORD
  SEED_GTID=
  if [[ $FLAVOR == mysql ]]; then
    clone_previous_ordinal
    log "configuring replication from $REPLICATION_SOURCE (GTID auto-positioning)"
  else
    seed_previous_ordinal
    log "configuring replication from $REPLICATION_SOURCE (GTID '$SEED_GTID')"
  fi
  start_temp_server "$DATADIR"
  SHOW_PASSWORDS=1 sql_replication "$SEED_GTID" | run_sql "$INIT_SOCKET" "$KUBESS_ROOT_PASSWORD"
  stop_temp_server "$KUBESS_ROOT_PASSWORD"
}

write_marker() {
  printf 'role=%s\nserver_id=%s\n' "$ROLE" "$SERVER_ID" >"$1"
}

init() {
  mkdir -p "$CONF_DIR"
  print_mycnf >"$CONF_DIR/replication.cnf.tmp"
  mv "$CONF_DIR/replication.cnf.tmp" "$CONF_DIR/replication.cnf"
  log "$SET_NAME-$ORDINAL is the $ROLE (server-id $SERVER_ID)"
  if [[ -e $DONE_MARKER ]]; then
    log "data directory already initialised"
    return 0
  fi
  if [[ -e $STARTED_MARKER ]]; then
    log "a previous initialisation did not finish; starting it again"
  elif [[ -d $DATADIR && -n $(ls -A "$DATADIR") ]]; then
    log "$DATADIR holds data this script did not initialise; using it as it is"
    return 0
  fi
  rm -rf "$DATADIR" "$SCRATCH"
  write_marker "$STARTED_MARKER"
  if [[ $FLAVOR-$ROLE == mariadb-primary ]]; then
    log "the image's entrypoint initialises $DATADIR when the server starts"
    return 0
  fi
  if [[ $ROLE == primary ]]; then
    bootstrap_primary
  else
    init_replica
  fi
  mv "$STARTED_MARKER" "$DONE_MARKER"
  log "initialisation finished"
}

# --- main container and backup sidecar (mariadb) ------------------------------------------------------

start() {
  if [[ $FLAVOR == mysql ]]; then
    exec "$SERVER"
  fi
  if [[ -e $STARTED_MARKER && ! -e $DONE_MARKER ]]; then
    # The entrypoint counts a data directory as initialised once it has a mysql directory.
    log "the initialisation of $DATADIR did not finish; the image's entrypoint starts it again"
    rm -rf "$DATADIR"
  fi
  exec docker-entrypoint.sh mariadbd
}

initialised() {
  [[ $FLAVOR == mariadb && $ROLE == primary ]] \
    || die "initialised is run by the mariadb image's entrypoint on ordinal 0 only"
  require_password KUBESS_ROOT_PASSWORD KUBESS_CLONE_PASSWORD
  log "creating the backup account $CLONE_USER@localhost"
  SHOW_PASSWORDS=1 sql_bootstrap | run_sql "$SOCKET" "$KUBESS_ROOT_PASSWORD"
  write_marker "$DONE_MARKER"
  rm -f "$STARTED_MARKER"
  log "initialisation finished"
}

# The backup sidecar listens where the server listens: the server's bind_address, else every address.
serve_backup() {
  [[ $FLAVOR == mariadb ]] || die "the backup sidecar belongs to the mariadb flavour"
  require_password KUBESS_CLONE_PASSWORD
  local address listen
  address=$(my_print_defaults --mysqld | sed -n 's/^--bind[-_]address=//p' | tail -n 1)
  [[ $address != '*' ]] || address=
  listen="TCP-LISTEN:$BACKUP_PORT,reuseaddr,fork,max-children=1${address:+,bind=$address}"
  log "serving backups of $DATADIR on ${address:-every address}, port $BACKUP_PORT"
  exec socat "$listen" "EXEC:bash ${BASH_SOURCE[0]} send-backup"
}

send_backup() {
  [[ $FLAVOR == mariadb ]] || die "the backup sidecar belongs to the mariadb flavour"
  require_password KUBESS_CLONE_PASSWORD
  local challenge proof request problem
  challenge=$(head -c 32 /dev/urandom | sha256sum)
  challenge=${challenge%% *}
  printf 'KUBESS-BACKUP %s\n' "$challenge"
  if ! IFS=' ' read -r -t "$CHALLENGE_TIMEOUT" proof request; then
    log "a backup request left without answering the challenge"
    return 1
  fi
  if [[ $proof != "$(backup_proof "$challenge")" ]]; then
    log "refused a backup request: wrong answer to the challenge"
    refuse DENIED
    return 0
  fi
  case $request in
    '') ;;
    backup | forced-backup)
      if problem=$(backup_problem); then
        :
      elif [[ $request == forced-backup ]]; then
        log "a forced backup, although $problem"
      else
        log "refused a backup: $problem"
        refuse "UNHEALTHY $problem (a forced backup is taken anyway)"
        return 0
      fi
      ;;
    *)
      log "refused an unknown request '$request'"
      refuse DENIED
      return 0
      ;;
  esac
  echo OK
  log "streaming a backup of $DATADIR${request:+ (a $request)}"
  PRIVATE_FILE=$(mktemp)
  client_options "$CLONE_USER" "$KUBESS_CLONE_PASSWORD" >"$PRIVATE_FILE"
  mariabackup --defaults-extra-file="$PRIVATE_FILE" --backup --stream=xbstream --socket="$SOCKET"
  [[ -z $request ]] || complete_marker
}

# refuse ANSWER: send ANSWER, and succeed once the requester has read it and gone (socat cuts a connection short
# when its program fails).
refuse() {
  echo "$1"
  read -r -t "$CHALLENGE_TIMEOUT" _ || true
}

# backup_problem: print nothing and succeed when this pod may give a backup to store, else print why and fail. A
# replica must run both replication threads; the primary is the only writer (a backup is taken from a replica).
backup_problem() {
  if [[ $ROLE == primary ]]; then
    echo "$SET_NAME-0 is the primary, the only writer: backups are taken from a replica"
    return 1
  fi
  local status
  if ! status=$(echo 'SHOW REPLICA STATUS;' | run_sql "$SOCKET" "$KUBESS_ROOT_PASSWORD" --vertical 2>&1); then
    echo "$SET_NAME-$ORDINAL does not answer queries"
    return 1
  fi
  if ! status=$(replica_threads_running <<<"$status"); then
    echo "$SET_NAME-$ORDINAL is ${status#not ready: }"
    return 1
  fi
}

# complete_marker: COMPLETE_MARKER as the stream's last file, naming this pod and the time.
complete_marker() {
  local dir
  dir=$(mktemp -d)
  printf '%s-%s %s\n' "$SET_NAME" "$ORDINAL" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$dir/$COMPLETE_MARKER"
  mbstream -c -C "$dir" "$COMPLETE_MARKER"
  rm -rf "$dir"
}

# --- backups stored on the backup volume (mariadb) ----------------------------------------------------

# whole_number VARIABLE VALUE: refuse a VALUE that is not a whole number, naming VARIABLE.
whole_number() {
  [[ $2 =~ ^(0|[1-9][0-9]{0,8})$ ]] || die "$1 '$2' is not a whole number"
}

# The backup Job: the stream of the sidecar of ordinal KUBESS_BACKUP_ORDINAL, gzipped aside (.<name>.part) and
# renamed once it ends with COMPLETE_MARKER, then this set's backups beyond the newest KUBESS_BACKUP_KEEP deleted.
# It prints "stored <name>" before any deletion (kubess.stateful.stack_info reads it from the log).
store_backup() {
  [[ $FLAVOR == mariadb ]] || die "stored backups belong to the mariadb flavour"
  require_password KUBESS_CLONE_PASSWORD
  local ordinal=${KUBESS_BACKUP_ORDINAL:-} dir=${KUBESS_BACKUP_DIR:-/backup} prefix=${KUBESS_BACKUP_PREFIX:-}
  local keep=${KUBESS_BACKUP_KEEP:-7} name=${KUBESS_BACKUP_NAME:-} request=backup source part
  umask 027
  whole_number KUBESS_BACKUP_ORDINAL "$ordinal"
  whole_number KUBESS_BACKUP_KEEP "$keep"
  ((keep > 0)) || die "KUBESS_BACKUP_KEEP is 0; at least the new backup is kept"
  [[ $prefix =~ ^[a-z0-9][-a-z0-9]*_[a-z0-9][-a-z0-9]*$ ]] || die "KUBESS_BACKUP_PREFIX '$prefix' is not <namespace>_<set>"
  [[ ${KUBESS_BACKUP_FORCE:-0} != 1 ]] || request=forced-backup
  [[ -n $name ]] || name=$prefix-$(date -u +%Y%m%dT%H%M%SZ).mbstream.gz
  [[ $name =~ $BACKUP_NAME ]] || die "KUBESS_BACKUP_NAME '$name' is not a name for a backup (<name>.mbstream.gz)"
  source=$(fqdn "$ordinal")
  part=$dir/.$name.part
  # What a backup pod killed at its deadline left (its Job's deadline is at most a day).
  find "$dir" -maxdepth 1 -type f -name ".$prefix-[0-9]*T[0-9]*Z.*.part" -mmin +1440 -delete -printf 'deleted %f\n' \
    || log "could not delete the unfinished backups of earlier pods"
  request_backup "$source" "$request"
  log "storing a backup of $source into $name"
  if ! gzip -c <&"$DONOR_IN" >"$part"; then
    rm -f -- "$part"
    die "the backup of $source could not be written to $dir: nothing stored"
  fi
  end_request
  # The whole stream, read again: gzip's check, and the last file the sidecar adds after a backup that succeeded.
  if ! gzip -dc -- "$part" | tail -c 64 | grep -a -q "$COMPLETE_MARKER\$"; then
    rm -f -- "$part"
    die "the backup stream of $source ended before the backup did (see its backup-server log): nothing stored"
  fi
  mv -- "$part" "$dir/$name"
  echo "stored $name"
  # This set's backups only, named exactly so; newest first, the first KUBESS_BACKUP_KEEP stay.
  find "$dir" -maxdepth 1 -type f -regextype posix-extended \
    -regex ".*/${prefix}-[0-9]{8}T[0-9]{6}Z[.]mbstream[.]gz" -printf '%f\n' | sort -r | tail -n "+$((keep + 1))" |
    while IFS= read -r old; do
      [[ $old != "$name" ]] || continue
      rm -f -- "${dir:?}/$old"
      echo "deleted $old"
    done || log "could not delete the oldest backups (the new one is stored)"
}

# sql_restored [GTID]: on the restored data directory (a server without grant checks), the primary of a new set:
# the role's accounts made as a new set has them, with the Secret's passwords (SET PASSWORD keeps an account's other
# ways in, such as root's unix_socket); no replication of its own (the backup may be a replica's); a new binary log
# whose state is the backup's GTID position (its replicas are seeded at that position, and ask it for what follows).
sql_restored() {
  local gtid
  gtid=$(if [[ -n ${1+set} ]]; then sql_string "$1"; else printf "'<GTID of the backup>'"; fi)
  cat <<SQL
FLUSH PRIVILEGES;
SET PASSWORD FOR 'root'@'localhost' = PASSWORD($(password KUBESS_ROOT_PASSWORD));
CREATE USER IF NOT EXISTS '$REPL_USER'@'%';
SET PASSWORD FOR '$REPL_USER'@'%' = PASSWORD($(password KUBESS_REPLICATION_PASSWORD));
GRANT REPLICATION SLAVE ON *.* TO '$REPL_USER'@'%';
CREATE USER IF NOT EXISTS '$CLONE_USER'@'localhost';
SET PASSWORD FOR '$CLONE_USER'@'localhost' = PASSWORD($(password KUBESS_CLONE_PASSWORD));
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO '$CLONE_USER'@'localhost';
SQL
  if [[ -n $APP_DATABASE ]]; then
    printf 'CREATE DATABASE IF NOT EXISTS %s;\n' "\`$APP_DATABASE\`"
  fi
  if [[ -n $APP_USER ]]; then
    cat <<SQL
CREATE USER IF NOT EXISTS '$APP_USER'@'%';
SET PASSWORD FOR '$APP_USER'@'%' = PASSWORD($(password KUBESS_APP_PASSWORD));
GRANT ALL PRIVILEGES ON \`$APP_DATABASE\`.* TO '$APP_USER'@'%';
SQL
  fi
  cat <<SQL
STOP ALL SLAVES;
RESET SLAVE ALL;
RESET MASTER;
SET GLOBAL gtid_binlog_state = $gtid;
SQL
}

# The restore Job, as ordinal 0 (its claim, before the StatefulSet exists): the backup unpacked, prepared and made
# the data directory, its replication reset (sql_restored); then it is marked initialised, so that the pod starts
# from it. It stops on a volume that holds data, unless an earlier restore left it half-way.
restore_backup() {
  [[ $FLAVOR == mariadb ]] || die "restoring a stored backup belongs to the mariadb flavour"
  [[ $ROLE == primary ]] || die "a restore writes ordinal 0's data directory; this is ordinal $ORDINAL"
  require_password KUBESS_ROOT_PASSWORD KUBESS_REPLICATION_PASSWORD KUBESS_CLONE_PASSWORD
  [[ -z $APP_USER ]] || require_password KUBESS_APP_PASSWORD
  local from=${KUBESS_RESTORE_FROM:-} dir=${KUBESS_BACKUP_DIR:-/backup} checkpoints binlog_info file position gtid
  [[ $from =~ $BACKUP_NAME ]] || die "KUBESS_RESTORE_FROM '$from' is not the name of a backup (<name>.mbstream.gz)"
  [[ -f $dir/$from ]] || die "there is no backup $from in $dir"
  if [[ -e $DONE_MARKER ]] || [[ ! -e $STARTED_MARKER && -n $(find "$DATA_ROOT" -mindepth 1 -maxdepth 1 \
    ! -name lost+found -print -quit) ]]; then
    die "$DATA_ROOT holds data: a restore writes only onto an empty volume"
  fi
  rm -rf "$DATADIR" "$SCRATCH"
  write_marker "$STARTED_MARKER"
  mkdir -p "$SCRATCH"
  log "unpacking $from into $SCRATCH"
  gzip -dc -- "$dir/$from" | mbstream -x -C "$SCRATCH" || die "$from could not be unpacked"
  [[ -f $SCRATCH/$COMPLETE_MARKER ]] || die "$from does not end with the backup's last file: it is not whole"
  if ! checkpoints=$(backup_file "$SCRATCH" checkpoints) || ! binlog_info=$(backup_file "$SCRATCH" binlog_info); then
    die "$from is incomplete (no checkpoints or binlog_info file)"
  fi
  IFS=$'\t' read -r file position gtid <"$binlog_info" || true
  [[ $gtid =~ $GTID_LIST ]] || die "$binlog_info holds no GTID position ('$gtid')"
  log "preparing $from, taken from $(cat "$SCRATCH/$COMPLETE_MARKER") (binary log $file:$position, GTID '$gtid')"
  mariabackup --prepare --target-dir="$SCRATCH" || die "mariabackup --prepare failed on $from"
  rm -f -- "$SCRATCH/$COMPLETE_MARKER"
  mv "$SCRATCH" "$DATADIR"
  mkdir -p "$CONF_DIR"
  print_mycnf >"$CONF_DIR/replication.cnf"
  TEMP_SERVER_OPTIONS=(--skip-grant-tables)
  start_temp_server "$DATADIR"
  SHOW_PASSWORDS=1 sql_restored "$gtid" | run_sql "$INIT_SOCKET" ""
  stop_temp_server "$KUBESS_ROOT_PASSWORD"
  mv "$STARTED_MARKER" "$DONE_MARKER"
  log "restored $from: $SET_NAME-0 starts from it, its binary log at GTID '$gtid'"
}

# --- probes -------------------------------------------------------------------------------------------

# replica_threads_running: read the vertical (column names on) SHOW REPLICA STATUS output on stdin;
# succeed when both replication threads run. The first line of each name counts.
replica_threads_running() {
  local key value io='' sql='' seen_io='' seen_sql=''
  while IFS=: read -r key value; do
    key=${key//[[:space:]]/}
    value=${value#"${value%%[![:space:]]*}"}
    if [[ $key == "$IO_THREAD" && -z $seen_io ]]; then
      io=$value seen_io=1
    elif [[ $key == "$SQL_THREAD" && -z $seen_sql ]]; then
      sql=$value seen_sql=1
    fi
  done
  if [[ -z $seen_io && -z $seen_sql ]]; then
    echo "not ready: replication is not configured"
    return 1
  fi
  if [[ $io != Yes || $sql != Yes ]]; then
    echo "not ready: $IO_THREAD=$io $SQL_THREAD=$sql"
    return 1
  fi
}

ready() {
  require_password KUBESS_ROOT_PASSWORD
  if [[ $ROLE == primary ]]; then
    local answer
    answer=$(echo 'SELECT @@global.skip_networking;' | run_sql "$SOCKET" "$KUBESS_ROOT_PASSWORD") || {
      echo "not ready: the primary does not answer queries"
      return 1
    }
    case $answer in
      0) ;;
      1)
        echo "not ready: the server has no networking (a temporary server of the initialisation)"
        return 1
        ;;
      *)
        echo "not ready: unexpected answer from the primary"
        return 1
        ;;
    esac
  else
    local status
    status=$(echo 'SHOW REPLICA STATUS;' | run_sql "$SOCKET" "$KUBESS_ROOT_PASSWORD" --vertical) || {
      echo "not ready: the replica does not answer queries"
      return 1
    }
    replica_threads_running <<<"$status"
  fi
}

alive() {
  require_password KUBESS_ROOT_PASSWORD
  admin "$SOCKET" "$KUBESS_ROOT_PASSWORD" ping
}

main() {
  local command=${1:-}
  case $command in
    identity | mycnf | sql | plan | init | start | initialised | serve-backup | send-backup | ready | alive) ;;
    store-backup | restore) ;;
    *)
      sed -n '/^# Usage:/,/^#   alive/p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
  load_inputs
  # The backup Job is no pod of the set: it needs no identity.
  [[ $command == store-backup ]] || derive_identity
  case $command in
    identity) print_identity ;;
    mycnf) print_mycnf ;;
    sql) print_sql "${2:-}" ;;
    plan) print_plan ;;
    init) init ;;
    start) start ;;
    initialised) initialised ;;
    serve-backup) serve_backup ;;
    send-backup) send_backup ;;
    ready) ready ;;
    alive) alive ;;
    store-backup) store_backup ;;
    restore) restore_backup ;;
  esac
}

main "$@"
