#!/usr/bin/env bash
# mysql-replication.sh: identity, initialisation and health of one pod of a MySQL primary/replica StatefulSet.
#
# The pod's identity comes from its hostname, <set>-<ordinal>: ordinal 0 is the primary, every other
# ordinal is a replica that is seeded with the clone plugin from the PREVIOUS ordinal (<set>-<n-1>) and
# then replicates from ordinal 0 with GTID auto-positioning.
#
# Usage: mysql-replication.sh COMMAND [ARG]
#   identity     print this pod's identity as key=value lines (no server needed)
#   mycnf        print the my.cnf fragment of this pod (no server needed)
#   sql STEP     print the SQL of STEP (bootstrap, clone or replication), passwords masked (no server needed)
#   plan         identity, my.cnf fragment and every SQL step this pod would run, passwords masked
#   init         init container: write the my.cnf fragment; on a new volume initialise the data directory
#                (ordinal 0: users and application database; others: clone, then replication from ordinal 0)
#   ready        readiness probe: the primary answers a query; a replica has Replica_IO_Running and
#                Replica_SQL_Running = Yes
#   alive        liveness probe: mysqld answers a ping
#
# Inputs (environment; the StatefulSet sets them, passwords come from a Secret through secretKeyRef):
#   HOSTNAME                      the pod's hostname, <set>-<ordinal> (a domain part is ignored)
#   KUBESS_SET_NAME               StatefulSet name (required)
#   KUBESS_SERVICE                headless Service name (default: the StatefulSet name)
#   KUBESS_NAMESPACE              namespace (required)
#   KUBESS_CLUSTER_DOMAIN         cluster DNS domain (default cluster.local)
#   KUBESS_SERVER_ID_BASE         server-id of ordinal 0; ordinal n gets base + n (required, 1..4294967295)
#   KUBESS_PORT                   MySQL port (default 3306)
#   KUBESS_REPLICATION_USER       replication account (default repl)
#   KUBESS_CLONE_USER             clone donor account (default clone)
#   KUBESS_APP_USER, KUBESS_APP_DATABASE   application account and database, created on ordinal 0 (optional)
#   KUBESS_ROOT_PASSWORD, KUBESS_REPLICATION_PASSWORD, KUBESS_CLONE_PASSWORD, KUBESS_APP_PASSWORD
#   KUBESS_DATA_ROOT              volume mount point (default /var/lib/mysql); the data directory is <root>/data
#   KUBESS_CONF_DIR               directory of the my.cnf fragment (default /etc/mysql/conf.d)
#   KUBESS_SOCKET                 socket of the running server (default /var/run/mysqld/mysqld.sock)
#   KUBESS_INIT_SOCKET            socket of the temporary server used by init (default /tmp/mysqld-init.sock)
#   KUBESS_INIT_TIMEOUT           seconds to wait for the temporary server to answer (default 300)
#
# Passwords never appear on a command line: SQL goes to the client on stdin and the client reads its
# password from an option file passed as a pipe (--defaults-extra-file=/dev/fd/N).
set -euo pipefail

readonly MAX_SERVER_ID=4294967295
readonly MASK="'********'"
readonly DNS_LABEL='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'

log() { printf 'mysql-replication: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- inputs -------------------------------------------------------------------------------------------

load_inputs() {
  SET_NAME=${KUBESS_SET_NAME:-}
  SERVICE=${KUBESS_SERVICE:-$SET_NAME}
  NAMESPACE=${KUBESS_NAMESPACE:-}
  CLUSTER_DOMAIN=${KUBESS_CLUSTER_DOMAIN:-cluster.local}
  SERVER_ID_BASE=${KUBESS_SERVER_ID_BASE:-}
  PORT=${KUBESS_PORT:-3306}
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

  [[ $SET_NAME =~ $DNS_LABEL ]] || die "KUBESS_SET_NAME '$SET_NAME' is not a DNS-1123 label"
  [[ $SERVICE =~ $DNS_LABEL ]] || die "KUBESS_SERVICE '$SERVICE' is not a DNS-1123 label"
  [[ $NAMESPACE =~ $DNS_LABEL ]] || die "KUBESS_NAMESPACE '$NAMESPACE' is not a DNS-1123 label"
  [[ $CLUSTER_DOMAIN =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "KUBESS_CLUSTER_DOMAIN '$CLUSTER_DOMAIN' is not a DNS name"
  if [[ ! $SERVER_ID_BASE =~ ^[1-9][0-9]{0,9}$ ]] || ((SERVER_ID_BASE > MAX_SERVER_ID)); then
    die "KUBESS_SERVER_ID_BASE '$SERVER_ID_BASE' is not an integer from 1 to $MAX_SERVER_ID"
  fi
  if [[ ! $PORT =~ ^[1-9][0-9]{0,4}$ ]] || ((PORT > 65535)); then
    die "KUBESS_PORT '$PORT' is not a TCP port"
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
  printf 'hostname=%s\nordinal=%s\nrole=%s\nserver_id=%s\nhost=%s\nclone_source=%s\nreplication_source=%s\n' \
    "$SET_NAME-$ORDINAL" "$ORDINAL" "$ROLE" "$SERVER_ID" "$SELF_HOST" "$CLONE_SOURCE" "$REPLICATION_SOURCE"
}

# --- configuration ------------------------------------------------------------------------------------

print_mycnf() {
  local read_only=OFF
  [[ $ROLE == replica ]] && read_only=ON
  cat <<EOF
# $SET_NAME-$ORDINAL: $ROLE (written by mysql-replication.sh from the hostname; do not edit)
[mysqld]
datadir = $DATADIR
port = $PORT
server_id = $SERVER_ID
report_host = $SELF_HOST
report_port = $PORT
gtid_mode = ON
enforce_gtid_consistency = ON
log_bin = binlog
log_replica_updates = ON
relay_log = relay-bin
plugin_load_add = mysql_clone.so
read_only = $read_only
super_read_only = $read_only
EOF
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

sql_bootstrap() {
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

sql_replication() {
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

# The one row of the last clone operation of the server asked: state, error number, error message.
sql_clone_status() {
  echo 'SELECT STATE, ERROR_NO, ERROR_MESSAGE FROM performance_schema.clone_status;'
}

print_sql() {
  case ${1:-} in
    bootstrap)
      [[ $ROLE == primary ]] || die "the bootstrap step runs on ordinal 0 only; this is ordinal $ORDINAL"
      sql_bootstrap
      ;;
    clone)
      [[ $ROLE == replica ]] || die "the clone step runs on replicas only; ordinal 0 is the primary"
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
  if [[ $ROLE == primary ]]; then
    echo '# sql: bootstrap (temporary server on the new data directory)'
    sql_bootstrap
  else
    echo "# sql: clone (temporary server on a scratch directory; donor $CLONE_SOURCE)"
    sql_clone
    echo "# sql: replication (temporary server on the cloned data directory; source $REPLICATION_SOURCE)"
    sql_replication
  fi
}

# --- talking to a local server ------------------------------------------------------------------------

# client_options PASSWORD: a [client] option group holding PASSWORD, read by the client from a pipe.
client_options() {
  local p=$1
  p=${p//\\/\\\\}
  p=${p//\"/\\\"}
  printf '[client]\nuser=root\npassword="%s"\n' "$p"
}

# run_sql SOCKET PASSWORD [CLIENT_OPTION...]: run the SQL on stdin as root through SOCKET; rows as
# tab-separated values without column names unless the options say otherwise.
run_sql() {
  local socket=$1 pw=$2
  shift 2
  mysql --defaults-extra-file=<(client_options "$pw") --protocol=socket --socket="$socket" --batch \
    "${@:---skip-column-names}"
}

# admin SOCKET PASSWORD ARGS...: mysqladmin as root through SOCKET.
admin() {
  local socket=$1 pw=$2
  shift 2
  mysqladmin --defaults-extra-file=<(client_options "$pw") --protocol=socket --socket="$socket" "$@"
}

require_password() {
  local var
  for var in "$@"; do
    [[ -n ${!var:-} ]] || die "$var is empty; it must come from the credentials Secret"
    [[ ${!var} != *$'\n'* ]] || die "$var contains a newline, which is not supported"
  done
}

TEMP_PID=

# On any exit, never leave a temporary server behind.
stop_leftover_server() {
  if [[ -n $TEMP_PID ]] && kill -0 "$TEMP_PID" 2>/dev/null; then
    kill "$TEMP_PID" 2>/dev/null || true
    wait "$TEMP_PID" 2>/dev/null || true
  fi
}
trap stop_leftover_server EXIT

# start_temp_server DATADIR: mysqld on DATADIR, reachable only through INIT_SOCKET.
start_temp_server() {
  log "starting a temporary server on $1"
  mysqld --datadir="$1" --skip-networking --socket="$INIT_SOCKET" --mysqlx=OFF \
    --read-only=OFF --super-read-only=OFF --skip-replica-start &
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
  require_password KUBESS_ROOT_PASSWORD KUBESS_REPLICATION_PASSWORD KUBESS_CLONE_PASSWORD
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
  log "configuring replication from $REPLICATION_SOURCE (GTID auto-positioning)"
  start_temp_server "$DATADIR"
  SHOW_PASSWORDS=1 sql_replication | run_sql "$INIT_SOCKET" "$KUBESS_ROOT_PASSWORD"
  stop_temp_server "$KUBESS_ROOT_PASSWORD"
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
    rm -rf "$DATADIR" "$SCRATCH"
  elif [[ -d $DATADIR && -n $(ls -A "$DATADIR") ]]; then
    log "$DATADIR holds data this script did not initialise; using it as it is"
    return 0
  fi
  rm -rf "$DATADIR" "$SCRATCH"
  printf 'role=%s\nserver_id=%s\n' "$ROLE" "$SERVER_ID" >"$STARTED_MARKER"
  if [[ $ROLE == primary ]]; then
    bootstrap_primary
  else
    clone_previous_ordinal
  fi
  mv "$STARTED_MARKER" "$DONE_MARKER"
  log "initialisation finished"
}

# --- probes -------------------------------------------------------------------------------------------

# replica_threads_running: read the vertical (column names on) SHOW REPLICA STATUS output on stdin;
# succeed when both replication threads run. The first line of each name counts.
replica_threads_running() {
  local key value io='' sql='' seen_io='' seen_sql=''
  while IFS=: read -r key value; do
    key=${key//[[:space:]]/}
    value=${value#"${value%%[![:space:]]*}"}
    if [[ $key == Replica_IO_Running && -z $seen_io ]]; then
      io=$value seen_io=1
    elif [[ $key == Replica_SQL_Running && -z $seen_sql ]]; then
      sql=$value seen_sql=1
    fi
  done
  if [[ -z $seen_io && -z $seen_sql ]]; then
    echo "not ready: replication is not configured"
    return 1
  fi
  if [[ $io != Yes || $sql != Yes ]]; then
    echo "not ready: Replica_IO_Running=$io Replica_SQL_Running=$sql"
    return 1
  fi
}

ready() {
  require_password KUBESS_ROOT_PASSWORD
  if [[ $ROLE == primary ]]; then
    local answer
    answer=$(echo 'SELECT 1;' | run_sql "$SOCKET" "$KUBESS_ROOT_PASSWORD") || {
      echo "not ready: the primary does not answer queries"
      return 1
    }
    [[ $answer == 1 ]] || {
      echo "not ready: unexpected answer from the primary"
      return 1
    }
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
    identity | mycnf | sql | plan | init | ready | alive) ;;
    *)
      sed -n '/^# Usage:/,/^#   alive/p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
  load_inputs
  derive_identity
  case $command in
    identity) print_identity ;;
    mycnf) print_mycnf ;;
    sql) print_sql "${2:-}" ;;
    plan) print_plan ;;
    init) init ;;
    ready) ready ;;
    alive) alive ;;
  esac
}

main "$@"
