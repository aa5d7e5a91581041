#!/usr/bin/env bash
# healthcheck.sh of kubess.local/mariadb-galera: the health tests of the official mariadb image's
# /usr/local/bin/healthcheck.sh, with its options, for probes written against that image.
#
#   healthcheck.sh [OPTION | --TEST]...
#
# Arguments are taken in order; each --TEST runs when it is reached, with the options given before
# it, and the first failing test ends the run with status 1 ("healthcheck TEST failed"). Unless
# --connect passed or --no-connect was given, the connect test runs last and decides the status.
#
# Tests (and the least privilege their SQL user needs):
#   --connect                    the server accepts connections over TCP: its socket answers with
#                                skip_networking=0, or a TCP connection to localhost gets an answer
#                                (a refused login still counts: the server is there)   (none)
#   --innodb_initialized         InnoDB is available (its crash recovery is done)       (USAGE)
#   --innodb_buffer_pool_loaded  the buffer pool load at start-up has completed         (USAGE)
#   --galera_online              wsrep_local_state is 4: the Galera member is Synced    (USAGE)
#   --galera_ready               wsrep_ready is ON                                      (USAGE)
#   --replication                each replication connection checked (see below) is fine
#                                (REPLICA MONITOR); with no replication configured, passes
#   --mariadbupgrade             no mariadb-upgrade holds DATADIR/mysql_upgrade_info locked
# Options:
#   --replication_io, --replication_sql      the IO / SQL thread must run
#   --replication_seconds_behind_master=N    at most N seconds behind (implies _io)
#   --replication_sql_remaining_delay=N      at most N seconds of delay left (implies _io)
#   --replication_all, --replication_name=N  every connection, or the one named N (exclusive)
#                        (--replication_X VALUE works too; a following --option makes it 1)
#   --datadir=DIR                            where mysql_upgrade_info is (default /var/lib/mysql)
#   --defaults-file=F, --defaults-extra-file=F, --defaults-group-suffix=S
#                                            passed to the client; --no-defaults drops them all
#   --no-connect                             no connect test at the end
#   --su=USER, --su USER, --su-mysql         run the rest as USER (mysql); earlier options are
#                                            forgotten, so this comes first. As root only, or
#                                            when already that user.
# The client reads /var/lib/mysql/.my-healthcheck.cnf as extra defaults when that file exists
# (the entrypoint writes it for the healthcheck@localhost users it creates); else the client's own
# configuration decides the user (the unix user's name, without a password).
set -eo pipefail

declare -A defaults=() replication=()
no_defaults=''
connect_result=''
datadir=/var/lib/mysql
if [ -f "$datadir/.my-healthcheck.cnf" ]; then
  defaults[extra_file]=$datadir/.my-healthcheck.cnf
fi

client_options() { # the client's option-file options, in the order it requires
  CLIENT_OPTIONS=()
  if [ -n "$no_defaults" ]; then
    CLIENT_OPTIONS+=(--no-defaults)
  fi
  local key
  for key in file extra_file group_suffix; do
    if [ -n "${defaults[$key]:-}" ]; then
      CLIENT_OPTIONS+=("--defaults-${key//_/-}=${defaults[$key]}")
    fi
  done
}

sql() { # sql ARGS...: the client over the socket, batch mode
  client_options
  mariadb "${CLIENT_OPTIONS[@]}" --protocol socket -B "$@"
}

status_value() { # status_value NAME: a global status variable's value
  sql --skip-column-names -e "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '$1'"
}

# --- tests -------------------------------------------------------------------------------------------

connect() {
  local answer
  # The socket first: it answers even under require_secure_transport.
  answer=$(sql --skip-column-names -e 'SELECT @@skip_networking') || answer=''
  case $answer in
    0 | 1)
      connect_result=$answer
      return "$answer"
      ;;
  esac
  client_options
  answer=$(mariadb "${CLIENT_OPTIONS[@]}" -h localhost --protocol tcp --skip-column-names --batch \
    --skip-print-query-on-error -e 'SELECT @@skip_networking' 2>&1) || true
  case $answer in
    0 | 'ERROR 1820 (HY000)'* | 'ERROR 4151 (HY000)'* | 'ERROR 1226 (42000)'* | ERROR\ 1[0-9][0-9][0-9]\ \(28000\)*)
      # Networking on, or an answer from the server that refuses this login: it is there.
      connect_result=0
      ;;
    1 | 'ERROR 2002 (HY000)'*)
      connect_result=1
      ;;
    *)
      echo "Unknown error $answer" >&2
      connect_result=1
      ;;
  esac
  return "$connect_result"
}

innodb_initialized() {
  local answer
  answer=$(sql --skip-column-names -e "SELECT 1 FROM information_schema.ENGINES WHERE ENGINE = 'InnoDB' AND SUPPORT IN ('YES', 'DEFAULT', 'ENABLED')")
  [ "$answer" = 1 ]
}

innodb_buffer_pool_loaded() {
  local answer
  answer=$(status_value Innodb_buffer_pool_load_status)
  [[ $answer == *'load completed'* ]]
}

galera_online() {
  local answer
  answer=$(status_value WSREP_LOCAL_STATE)
  # 4: Synced.
  [ "$answer" = 4 ]
}

galera_ready() {
  local answer
  answer=$(status_value WSREP_READY)
  [ "$answer" = ON ]
}

replication() {
  local statement=SHOW
  if [ -n "${replication[all]:-}" ]; then
    statement+=' ALL REPLICAS STATUS'
  elif [ -n "${replication[name]:-}" ]; then
    statement+=" REPLICA '${replication[name]//\'/\\\'}' STATUS"
  else
    statement+=' REPLICA STATUS'
  fi
  local output line name value
  output=$(sql -e "$statement\\G")
  while IFS= read -r line; do
    [[ $line == *:* ]] || continue
    name=${line%%:*}
    name=${name#"${name%%[![:space:]]*}"}
    value=${line#*:}
    value=${value# }
    case $name in
      Slave_IO_Running)
        [ -z "${replication[io]:-}" ] || [ "$value" != No ] || return 1
        ;;
      Slave_SQL_Running)
        [ -z "${replication[sql]:-}" ] || [ "$value" != No ] || return 1
        ;;
      Seconds_Behind_Master)
        # NULL: the IO thread is not running.
        if [ -n "${replication[seconds_behind_master]:-}" ]; then
          [ "$value" != NULL ] && [ "$value" -le "${replication[seconds_behind_master]}" ] || return 1
        fi
        ;;
      SQL_Remaining_Delay)
        # NULL here means caught up.
        if [ -n "${replication[sql_remaining_delay]:-}" ] && [ "$value" != NULL ]; then
          [ "$value" -le "${replication[sql_remaining_delay]}" ] || return 1
        fi
        ;;
    esac
  done <<<"$output"
  return 0
}

mariadbupgrade() {
  local info=$datadir/mysql_upgrade_info
  [ -r "$info" ] || return 0
  flock --exclusive --nonblock 9 9<"$info"
}

# --- arguments -----------------------------------------------------------------------------------------

switch_user() { # switch_user USER ARGS...: this script again, as USER, with ARGS
  local user=$1
  shift
  if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  if [ "$(id -un)" = "$user" ] || [ "$(id -u)" = "$user" ]; then
    exec "${BASH_SOURCE[0]}" "$@"
  fi
  echo "healthcheck cannot switch from uid $(id -u) to $user" >&2
  exit 1
}

# replication_setting NAME VALUE: an option of the replication test, and what it implies.
replication_setting() {
  local name=${1,,}
  replication[$name]=$2
  case $name in
    seconds_behind_master | sql_remaining_delay)
      if [ -z "${replication[io]:-}" ]; then
        replication[io]=1
        echo "Forcing --replication_io=1, $name requires IO thread to be running" >&2
      fi
      ;;
    all)
      if [ -n "${replication[name]:-}" ]; then
        unset 'replication[name]'
        echo "Option --replication_all incompatible with specified source --replication_name, clearing replication_name" >&2
      fi
      ;;
    name)
      if [ -n "${replication[all]:-}" ]; then
        unset 'replication[all]'
        echo "Option --replication_name incompatible with --replication_all, clearing replication_all" >&2
      fi
      ;;
  esac
}

if [ $# -eq 0 ]; then
  echo "At least one argument required" >&2
  exit 1
fi

while [ $# -gt 0 ]; do
  test_name=''
  case $1 in
    --su=*) switch_user "${1#--su=}" "${@:2}" ;;
    --su) switch_user "${2:?--su needs a user}" "${@:3}" ;;
    --su-mysql) switch_user mysql "${@:2}" ;;
    --replication_*=*)
      name=${1#--replication_}
      replication_setting "${name%%=*}" "${1#*=}"
      ;;
    --replication_*)
      if [ $# -lt 2 ] || [ "${2:0:2}" = -- ]; then
        replication_setting "${1#--replication_}" 1
      else
        replication_setting "${1#--replication_}" "$2"
        shift
      fi
      ;;
    --datadir=*) datadir=${1#--datadir=} ;;
    --datadir)
      datadir=${2:-}
      shift
      ;;
    --no-defaults)
      defaults=()
      no_defaults=1
      ;;
    --defaults-file=* | --defaults-extra-file=* | --defaults-group-suffix=*)
      key=${1#--defaults-}
      key=${key%%=*}
      defaults[${key//-/_}]=${1#*=}
      no_defaults=''
      ;;
    --defaults-file | --defaults-extra-file | --defaults-group-suffix)
      key=${1#--defaults-}
      if [ $# -lt 2 ] || [ "${2:0:2}" = -- ]; then
        defaults[${key//-/_}]=''
      else
        defaults[${key//-/_}]=$2
        shift
      fi
      no_defaults=''
      ;;
    --no-connect) connect_result=0 ;;
    --*) test_name=${1#--} ;;
    *)
      echo "Unknown healthcheck option $1" >&2
      exit 1
      ;;
  esac
  if [ -n "$test_name" ]; then
    case $test_name in
      connect | innodb_initialized | innodb_buffer_pool_loaded | galera_online | galera_ready | replication | mariadbupgrade) ;;
      *)
        echo "healthcheck unknown option or test '$test_name'" >&2
        exit 1
        ;;
    esac
    if ! "$test_name"; then
      echo "healthcheck $test_name failed" >&2
      exit 1
    fi
  fi
  shift
done

if [ "$connect_result" != 0 ]; then
  # No connect test passed: the other tests' success says little without one.
  connect
  exit $?
fi
