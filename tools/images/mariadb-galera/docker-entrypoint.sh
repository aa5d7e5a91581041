#!/usr/bin/env bash
# Entrypoint of kubess.local/mariadb-galera: the start-up contract of the official mariadb:10.11
# image (Docker Hub's library/mariadb, built from MariaDB/mariadb-docker), on Debian's MariaDB and
# Galera packages. contract.yaml in tools/images/mariadb-galera states every fact; in short:
#
# The command is mariadbd (the image's CMD); a first argument starting with '-' is an option for
# mariadbd. Only when the command is mariadbd or mysqld, and none of -? --help --print-defaults
# -V --version is among its arguments, does this script do anything before running it:
#   1. check the server's configuration (mariadbd ARGS --verbose --help) and read datadir, socket
#      and port from it;
#   2. read the MARIADB_* settings (each MYSQL_* alias and *_FILE variant resolved);
#   3. started as root: hand the data directory and the socket's directory to mysql (999), then
#      start again as mysql (setpriv), with HOME set to mysql's home;
#   4. with no DATADIR/mysql directory (a new data directory): restore the backup found in
#      /docker-entrypoint-initdb.d (*.tar.gz, *.tar.xz, *.tar.zst) if there is one; otherwise
#      insist on a root password setting, run mariadb-install-db, start a temporary server (no
#      networking, wsrep_on=OFF, no replica threads), load the time zones, set up root, the
#      health-check users, MARIADB_DATABASE, MARIADB_USER, replication, run
#      /docker-entrypoint-initdb.d/* in name order, and stop the temporary server;
#      with DATADIR/mysql present: when the system tables are older than the server (or the
#      health-check option file is missing) and MARIADB_AUTO_UPGRADE is set, back up the mysql
#      database and run mariadb-upgrade on a temporary server;
#   5. unset the password and root-host variables, and exec mariadbd with the arguments as given.
# The script adds no Galera option of its own to the final server: --wsrep-new-cluster, if wanted,
# is the caller's argument, and a Galera joiner with an empty data directory is initialised like
# any other member before it starts and receives its state transfer.
#
# Sourced (". docker-entrypoint.sh"), it only defines its functions: a sourced file in
# /docker-entrypoint-initdb.d may call docker_process_sql, "${mysql[@]}", mysql_note, mysql_warn,
# mysql_error and file_env, as with the official image.

# As in the official image: errexit and pipefail (but not nounset), and empty globs expand to
# nothing; the sourced initialisation files run under the same options.
set -eo pipefail
shopt -s nullglob

INITDB_DIR=/docker-entrypoint-initdb.d
# How long a temporary server may take to accept connections.
TEMP_SERVER_TIMEOUT=60

# --- messages --------------------------------------------------------------------------------------

mysql_log() { # mysql_log LEVEL MESSAGE...
  local level=$1
  shift
  printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$level" "$*"
}
mysql_note() { mysql_log Note "$@"; }
mysql_warn() { mysql_log Warn "$@" >&2; }
mysql_error() {
  mysql_log ERROR "$@" >&2
  exit 1
}

# --- settings from the environment -----------------------------------------------------------------

# file_env NAME [DEFAULT]: NAME keeps its value when it has one; otherwise it takes the contents of
# the file that NAME_FILE names (trailing newlines dropped), otherwise DEFAULT. NAME is exported,
# NAME_FILE unset. NAME and NAME_FILE both set is an error.
file_env() {
  local name=$1 default=${2:-}
  local file_name=${name}_FILE
  local value=${!name:-} file=${!file_name:-}
  if [ -n "$value" ] && [ -n "$file" ]; then
    mysql_error "Both $name and $file_name are set (but are exclusive)"
  fi
  if [ -z "$value" ]; then
    if [ -n "$file" ]; then
      value=$(<"$file") || mysql_error "$file_name names $file, which cannot be read"
    else
      value=$default
    fi
  fi
  export "$name=$value"
  unset "$file_name"
}

# file_env_pair NEW OLD [DEFAULT]: one setting under two names (MARIADB_... and MYSQL_...), each
# with its _FILE variant. OLD is read first (with DEFAULT), NEW falls back to it, and when NEW ends
# up non-empty OLD is made equal to it, so scripts may use either.
file_env_pair() {
  local maria=$1 mysql=$2
  file_env "$mysql" "${3:-}"
  file_env "$maria" "${!mysql}"
  if [ -n "${!maria}" ]; then
    export "$mysql=${!maria}"
  fi
}

# env_pair NEW OLD: the same for a setting without a _FILE variant.
env_pair() {
  local maria=$1 mysql=$2
  if [ -z "${!maria:-}" ]; then
    printf -v "$maria" '%s' "${!mysql:-}"
  fi
  export "${maria?}" "$mysql=${!maria}"
}

read_settings() {
  file_env_pair MARIADB_ROOT_HOST MYSQL_ROOT_HOST '%'
  file_env_pair MARIADB_DATABASE MYSQL_DATABASE
  file_env_pair MARIADB_USER MYSQL_USER
  file_env_pair MARIADB_PASSWORD MYSQL_PASSWORD
  file_env_pair MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD
  # These have no MYSQL_* name.
  file_env MARIADB_PASSWORD_HASH
  file_env MARIADB_ROOT_PASSWORD_HASH
  file_env MARIADB_REPLICATION_USER
  file_env MARIADB_REPLICATION_PASSWORD
  file_env MARIADB_REPLICATION_PASSWORD_HASH
  file_env MARIADB_MASTER_HOST
  file_env MARIADB_MASTER_PORT 3306
  file_env MARIADB_USER_HOST '%'
  # Switches: any non-empty value turns them on (even "0" or "no").
  env_pair MARIADB_ALLOW_EMPTY_ROOT_PASSWORD MYSQL_ALLOW_EMPTY_PASSWORD
  env_pair MARIADB_RANDOM_ROOT_PASSWORD MYSQL_RANDOM_ROOT_PASSWORD
  env_pair MARIADB_INITDB_SKIP_TZINFO MYSQL_INITDB_SKIP_TZINFO
}

# The password settings and the root host, gone from the environment of the server this script
# becomes (the other settings stay).
forget_secrets() {
  unset MARIADB_ROOT_PASSWORD MARIADB_ROOT_PASSWORD_HASH MYSQL_ROOT_PASSWORD \
    MARIADB_PASSWORD MARIADB_PASSWORD_HASH MYSQL_PASSWORD \
    MARIADB_REPLICATION_PASSWORD MARIADB_REPLICATION_PASSWORD_HASH \
    MARIADB_ROOT_HOST MYSQL_ROOT_HOST
}

# --- the server's own view of its configuration ---------------------------------------------------

# read_server_settings COMMAND...: the server's --verbose --help listing for these arguments and
# the option files; the start stops here, with the server's errors, when it rejects them.
read_server_settings() {
  if ! SERVER_SETTINGS=$("$@" --verbose --help 2>/dev/null); then
    local errors
    errors=$("$@" --verbose --help 2>&1 >/dev/null) || true
    mysql_error $'mariadbd failed while attempting to check config\n\tcommand was: '"$* --verbose --help"$'\n\t'"$errors"
  fi
}

# server_setting NAME: NAME's value in that listing (its table of variables starts each row with
# the name in the first column).
server_setting() {
  local line
  while IFS= read -r line; do
    if [[ $line == "$1"[[:space:]]* ]]; then
      line=${line#"$1"}
      line=${line#"${line%%[![:space:]]*}"}
      printf '%s' "${line%"${line##*[![:space:]]}"}"
      return 0
    fi
  done <<<"$SERVER_SETTINGS"
}

load_server_settings() {
  read_server_settings "$@"
  DATADIR=$(server_setting datadir)
  [ "$DATADIR" = / ] || DATADIR=${DATADIR%/}
  SOCKET=$(server_setting socket)
  PORT=$(server_setting port)
  [ -n "$DATADIR" ] || mysql_error "the server reports no datadir"
  DATABASE_ALREADY_EXISTS=''
  if [ -d "$DATADIR/mysql" ]; then
    DATABASE_ALREADY_EXISTS=true
  fi
}

# --- directories and users -------------------------------------------------------------------------

describe() { stat -c 'owner %u, group %g, mode %a' "$1" 2>/dev/null || echo 'not readable'; }

# The data directory exists; as root, it and the socket's directory (unless the socket is an
# abstract one, '@name') belong to mysql, and so does this cgroup's memory.pressure, when writable.
prepare_directories() {
  mkdir -p "$DATADIR"
  [ "$(id -u)" = 0 ] || return 0
  find "$DATADIR" ! -user mysql -exec chown -h mysql:mysql {} + ||
    mysql_warn "could not give every file under $DATADIR to mysql"
  if [ "${SOCKET:0:1}" != @ ]; then
    local dir=${SOCKET%/*}
    if [ -d "$dir" ] && [ "$(stat -c %U "$dir")" != mysql ]; then
      chown mysql:mysql "$dir" || mysql_warn "could not give the socket directory $dir to mysql"
    fi
  fi
  local cgroup pressure
  cgroup=$(</proc/self/cgroup) || cgroup=''
  pressure=/sys/fs/cgroup/${cgroup#0::}/memory.pressure
  if [ -w "$pressure" ]; then
    chown mysql:mysql "$pressure" || mysql_warn "unable to change ownership of $pressure, functionality unavailable to MariaDB"
  else
    mysql_warn "$pressure not writable, functionality unavailable to MariaDB"
  fi
}

# A new data directory must be writable by this uid: say so plainly rather than through
# mariadb-install-db's errors.
check_datadir_writable() {
  local probe
  if ! probe=$(mktemp "$DATADIR/.entrypoint-write-check.XXXXXX" 2>/dev/null); then
    mysql_error "uid $(id -u) cannot write to the data directory $DATADIR ($(describe "$DATADIR")):" \
      "make the volume writable for uid $(id -u), or start the container as root"
  fi
  rm -f "$probe"
}

become_mysql() { # become_mysql COMMAND...: this script again, as mysql
  mysql_note "Switching to dedicated user 'mysql'"
  local home
  home=$(getent passwd mysql | cut -d: -f6)
  export HOME=${home:-/var/lib/mysql}
  exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
}

# --- SQL -------------------------------------------------------------------------------------------

# docker_exec_client ARGS...: the client, as root, over the socket, in MARIADB_DATABASE when set
# (an ARGS --database comes later and wins).
docker_exec_client() {
  local database=()
  if [ -n "$MYSQL_DATABASE" ]; then
    database=(--database="$MYSQL_DATABASE")
  fi
  mariadb --protocol=socket -uroot -hlocalhost --socket="$SOCKET" "${database[@]}" "$@"
}

# docker_process_sql [--dont-use-mysql-root-password] ARGS...: SQL from standard input, as root,
# with the root password unless told not to use it (before it is set).
docker_process_sql() {
  if [ "${1:-}" = --dont-use-mysql-root-password ]; then
    shift
    MYSQL_PWD='' docker_exec_client "$@"
  else
    MYSQL_PWD=$MARIADB_ROOT_PASSWORD docker_exec_client "$@"
  fi
}

# sql_string TEXT: TEXT for the inside of a '...' literal (backslash escapes on).
sql_string() {
  local text=${1//\\/\\\\}
  text=${text//$'\n'/\\n}
  printf '%s' "${text//\'/\\\'}"
}

# sql_name TEXT: TEXT for the inside of a `...` identifier.
sql_name() { printf '%s' "${1//\`/\`\`}"; }

# random_password LENGTH EXCLUDED: LENGTH characters drawn evenly from letters, digits and
# punctuation, leaving out those in EXCLUDED.
random_password() {
  local length=$1 excluded=$2
  local all='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&()*+,-./:;<=>?@[]^_{|}~'
  local alphabet='' i c
  for ((i = 0; i < ${#all}; i++)); do
    c=${all:i:1}
    [[ $excluded == *"$c"* ]] || alphabet+=$c
  done
  local size=${#alphabet} password='' byte
  # Bytes at or above the largest multiple of size are dropped: every character is as likely.
  local limit=$((256 - 256 % size))
  while [ ${#password} -lt "$length" ]; do
    for byte in $(od -An -N64 -tu1 /dev/urandom); do
      [ "$byte" -lt "$limit" ] || continue
      password+=${alphabet:byte % size:1}
      [ ${#password} -lt "$length" ] || break
    done
  done
  printf '%s' "$password"
}

# --- temporary servers -----------------------------------------------------------------------------

# docker_temp_server_start COMMAND...: the server in the background on its socket only: no
# networking, no Galera replication (wsrep_on=OFF), no replica threads, no binary log expiry, no
# buffer pool load. Returns once it answers.
docker_temp_server_start() {
  "$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --wsrep_on=OFF \
    --expire-logs-days=0 --skip-slave-start --loose-innodb_buffer_pool_load_at_startup=0 &
  TEMP_SERVER_PID=$!
  mysql_note "Waiting for server startup"
  # Before initialisation root has no password yet.
  local password=()
  if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
    password=(--dont-use-mysql-root-password)
  fi
  local deadline=$((SECONDS + TEMP_SERVER_TIMEOUT)) status
  until docker_process_sql "${password[@]}" --database=mysql <<<'SELECT 1' >/dev/null 2>&1; do
    if ! kill -0 "$TEMP_SERVER_PID" 2>/dev/null; then
      status=0
      wait "$TEMP_SERVER_PID" || status=$?
      mysql_error "Unable to start server: the temporary server exited with status $status"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      mysql_error "Unable to start server: no answer on $SOCKET within $TEMP_SERVER_TIMEOUT s"
    fi
    sleep 0.2
  done
}

# Stops the temporary server (SIGTERM: a clean shutdown) and waits for it to exit.
docker_temp_server_stop() {
  kill "$TEMP_SERVER_PID"
  wait "$TEMP_SERVER_PID"
}

# --- a new data directory --------------------------------------------------------------------------

# The settings a new data directory needs, and combinations that make no sense.
docker_verify_minimum_env() {
  local backup
  for backup in "$INITDB_DIR"/*.tar.gz "$INITDB_DIR"/*.tar.xz "$INITDB_DIR"/*.tar.zst; do
    if [ -f "$backup" ]; then
      # Restoring a backup needs no settings at all.
      DATABASE_INIT_FROM_BACKUP=true
      return 0
    fi
  done
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ROOT_PASSWORD_HASH" ] &&
    [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    mysql_error $'Database is uninitialized and password option is not specified\n\tYou need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD'
  fi
  if [ -n "$MARIADB_ROOT_PASSWORD_HASH" ] && { [ -n "$MARIADB_ROOT_PASSWORD" ] ||
    [ -n "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] || [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; }; then
    mysql_error "Cannot specify MARIADB_ROOT_PASSWORD_HASH and another MARIADB_ROOT_PASSWORD* option."
  fi
  if [ -n "$MARIADB_PASSWORD" ] && [ -n "$MARIADB_PASSWORD_HASH" ]; then
    mysql_error "Cannot specify MARIADB_PASSWORD_HASH and MARIADB_PASSWORD option."
  fi
  if [ -n "$MARIADB_REPLICATION_USER" ]; then
    if [ -z "$MARIADB_MASTER_HOST" ]; then
      # A primary: it creates the replication user.
      if [ -z "$MARIADB_REPLICATION_PASSWORD" ] && [ -z "$MARIADB_REPLICATION_PASSWORD_HASH" ]; then
        mysql_error "MARIADB_REPLICATION_PASSWORD or MARIADB_REPLICATION_PASSWORD_HASH not found to create replication user for master"
      fi
    else
      # A replica: it logs in to the primary as that user.
      if [ -z "$MARIADB_REPLICATION_PASSWORD" ]; then
        mysql_error "MARIADB_REPLICATION_PASSWORD is mandatory to specify the replication on the replica image."
      fi
      if [ -n "$MARIADB_REPLICATION_PASSWORD_HASH" ]; then
        mysql_warn "MARIADB_REPLICATION_PASSWORD_HASH cannot be specified on a replica"
      fi
    fi
  fi
  if [ -n "$MARIADB_MASTER_HOST" ] && { [ -z "$MARIADB_REPLICATION_USER" ] || [ -z "$MARIADB_REPLICATION_PASSWORD" ]; }; then
    mysql_error "For a replica, MARIADB_REPLICATION_USER and MARIADB_REPLICATION_PASSWORD are mandatory."
  fi
}

# docker_init_database_dir COMMAND...: the system tables, by mariadb-install-db, with the
# command's options (those without white space, which it cannot pass on).
docker_init_database_dir() {
  mysql_note "Initializing database files"
  local options=() option
  for option in "${@:2}"; do
    if [[ $option =~ [[:space:]] ]]; then
      mysql_warn "Not passing argument '$option' to mariadb-install-db because mariadb-install-db does not support arguments with whitespace."
    else
      options+=("$option")
    fi
  done
  mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal "${options[@]}" \
    --cross-bootstrap --skip-test-db --old-mode=UTF8_IS_UTF8MB3 --default-time-zone=SYSTEM \
    --enforce-storage-engine= --skip-log-bin --expire-logs-days=0 \
    --loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0
  mysql_note "Database files initialized"
}

# Prints the SQL for the health-check users (healthcheck@127.0.0.1, @::1 and @localhost, with a
# new random password and MARIADB_HEALTHCHECK_GRANTS, default USAGE) and writes their client
# options to DATADIR/.my-healthcheck.cnf (mode 0600), which healthcheck.sh reads.
healthcheck_users_sql() {
  local password grant=${MARIADB_HEALTHCHECK_GRANTS:-USAGE} host
  password=$(random_password 32 "=#;'\"\\\$\`")
  (
    umask 0077
    printf '[mariadb-client]\nport=%s\nsocket=%s\nuser=healthcheck\npassword=%s\n' \
      "$PORT" "$SOCKET" "$password" >"$DATADIR/.my-healthcheck.cnf"
  )
  for host in 127.0.0.1 ::1 localhost; do
    # Existing users keep their grants and get the new password.
    printf "CREATE USER IF NOT EXISTS healthcheck@'%s' IDENTIFIED BY '%s';\n" "$host" "$password"
    printf "SET PASSWORD FOR healthcheck@'%s' = PASSWORD('%s');\n" "$host" "$password"
    printf "GRANT %s ON *.* TO healthcheck@'%s';\n" "$grant" "$host"
  done
}

# Time zones, root, the health-check users, the database, the user and replication.
docker_setup_db() {
  if [ -z "$MARIADB_INITDB_SKIP_TZINFO" ]; then
    # --skip-write-binlog: the load is not binary-logged.
    mariadb-tzinfo-to-sql --skip-write-binlog /usr/share/zoneinfo |
      docker_process_sql --dont-use-mysql-root-password --database=mysql
  fi
  if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    MARIADB_ROOT_PASSWORD=$(random_password 32 "'\\\"\$\`")
    export MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD=$MARIADB_ROOT_PASSWORD
    mysql_note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
  fi

  local root_password root_host user_host
  root_password=$(sql_string "$MARIADB_ROOT_PASSWORD")
  root_host=$(sql_string "$MARIADB_ROOT_HOST")
  user_host=$(sql_string "$MARIADB_USER_HOST")

  local secure='' setup=''
  # root@localhost: the password now, or the hash once the initialisation files have run.
  if [ -z "$MARIADB_ROOT_PASSWORD_HASH" ]; then
    secure+="SET PASSWORD FOR 'root'@'localhost' = PASSWORD('$root_password');"$'\n'
  fi
  # root from MARIADB_ROOT_HOST (default '%'), unless that is localhost.
  if [ -n "$MARIADB_ROOT_HOST" ] && [ "$MARIADB_ROOT_HOST" != localhost ]; then
    if [ -n "$MARIADB_ROOT_PASSWORD_HASH" ]; then
      secure+="CREATE USER 'root'@'$root_host' IDENTIFIED BY PASSWORD '$(sql_string "$MARIADB_ROOT_PASSWORD_HASH")';"$'\n'
    else
      secure+="CREATE USER 'root'@'$root_host' IDENTIFIED BY '$root_password';"$'\n'
    fi
    secure+="GRANT ALL ON *.* TO 'root'@'$root_host' WITH GRANT OPTION;"$'\n'
    secure+="GRANT PROXY ON ''@'%' TO 'root'@'$root_host' WITH GRANT OPTION;"$'\n'
  fi
  if [ -n "$MARIADB_MYSQL_LOCALHOST_USER" ]; then
    secure+="CREATE USER mysql@localhost IDENTIFIED VIA unix_socket;"$'\n'
    if [ -n "$MARIADB_MYSQL_LOCALHOST_GRANTS" ]; then
      if [ "$MARIADB_MYSQL_LOCALHOST_GRANTS" != USAGE ]; then
        mysql_warn "Excessive privileges ON *.* TO mysql@localhost facilitates risks to the confidentiality, integrity and availability of data stored"
      fi
      secure+="GRANT $MARIADB_MYSQL_LOCALHOST_GRANTS ON *.* TO mysql@localhost;"$'\n'
    fi
  fi
  secure+=$(healthcheck_users_sql)$'\n'

  if [ -n "$MARIADB_DATABASE" ]; then
    mysql_note "Creating database ${MARIADB_DATABASE}"
    setup+="CREATE DATABASE IF NOT EXISTS \`$(sql_name "$MARIADB_DATABASE")\`;"$'\n'
  fi
  # A user only with a name and a password (or hash); all rights on MARIADB_DATABASE, whose _ are
  # taken literally rather than as wildcards.
  if [ -n "$MARIADB_USER" ] && { [ -n "$MARIADB_PASSWORD" ] || [ -n "$MARIADB_PASSWORD_HASH" ]; }; then
    mysql_note "Creating user ${MARIADB_USER}"
    local user
    user=$(sql_string "$MARIADB_USER")
    if [ -n "$MARIADB_PASSWORD_HASH" ]; then
      setup+="CREATE USER '$user'@'$user_host' IDENTIFIED BY PASSWORD '$(sql_string "$MARIADB_PASSWORD_HASH")';"$'\n'
    else
      setup+="CREATE USER '$user'@'$user_host' IDENTIFIED BY '$(sql_string "$MARIADB_PASSWORD")';"$'\n'
    fi
    if [ -n "$MARIADB_DATABASE" ]; then
      mysql_note "Giving user ${MARIADB_USER} access to schema ${MARIADB_DATABASE}"
      setup+="GRANT ALL ON \`$(sql_name "${MARIADB_DATABASE//_/\\_}")\`.* TO '$user'@'$user_host';"$'\n'
    fi
  fi
  if [ -n "$MARIADB_REPLICATION_USER" ]; then
    local replication_user
    replication_user=$(sql_string "$MARIADB_REPLICATION_USER")
    if [ -z "$MARIADB_MASTER_HOST" ]; then
      mysql_note "Creating user ${MARIADB_REPLICATION_USER}"
      if [ -n "$MARIADB_REPLICATION_PASSWORD_HASH" ]; then
        setup+="CREATE USER '$replication_user'@'%' IDENTIFIED BY PASSWORD '$(sql_string "$MARIADB_REPLICATION_PASSWORD_HASH")';"$'\n'
      else
        setup+="CREATE USER '$replication_user'@'%' IDENTIFIED BY '$(sql_string "$MARIADB_REPLICATION_PASSWORD")';"$'\n'
      fi
      setup+="GRANT REPLICATION REPLICA ON *.* TO '$replication_user'@'%';"$'\n'
    else
      # file_env gave MARIADB_MASTER_PORT its default, 3306.
      local port=${MARIADB_MASTER_PORT:-3306}
      setup+="CHANGE MASTER TO MASTER_HOST='$(sql_string "$MARIADB_MASTER_HOST")', MASTER_USER='$replication_user',"
      setup+=" MASTER_PASSWORD='$(sql_string "$MARIADB_REPLICATION_PASSWORD")', MASTER_PORT=$port, MASTER_CONNECT_RETRY=10;"$'\n'
    fi
  fi

  mysql_note "Securing system users (equivalent to running mysql_secure_installation)"
  # Securing root and the system users stays out of the binary log; what follows goes in it.
  docker_process_sql --dont-use-mysql-root-password --database=mysql --binary-mode <<EOSQL
SET @kubess_sql_log_bin = @@SESSION.SQL_LOG_BIN;
SET @@SESSION.SQL_LOG_BIN = 0;
SET @@SESSION.SQL_MODE = REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');
$secure
SET @@SESSION.SQL_LOG_BIN = @kubess_sql_log_bin;
$setup
EOSQL
}

# docker_process_init_files FILE...: each by its name: *.sh run when executable, sourced otherwise;
# *.sql, *.sql.gz, *.sql.xz, *.sql.zst through the client as root (in MARIADB_DATABASE, when set);
# anything else ignored.
docker_process_init_files() {
  # For sourced files written for older images: "${mysql[@]}" < file.sql.
  # shellcheck disable=SC2034
  mysql=(docker_process_sql)
  echo
  local f
  for f; do
    case $f in
      *.sh)
        if [ -x "$f" ]; then
          mysql_note "$0: running $f"
          "$f"
        else
          mysql_note "$0: sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql)
        mysql_note "$0: running $f"
        docker_process_sql <"$f"
        echo
        ;;
      *.sql.gz)
        mysql_note "$0: running $f"
        gunzip -c "$f" | docker_process_sql
        echo
        ;;
      *.sql.xz)
        mysql_note "$0: running $f"
        xzcat "$f" | docker_process_sql
        echo
        ;;
      *.sql.zst)
        mysql_note "$0: running $f"
        zstd -dc "$f" | docker_process_sql
        echo
        ;;
      *) mysql_warn "$0: ignoring $f" ;;
    esac
    echo
  done
}

# docker_restore_backups COMMAND...: a new data directory from each prepared mariadb-backup
# archive in /docker-entrypoint-initdb.d; the backup's backup-my.cnf becomes DATADIR/.my.cnf.
docker_restore_backups() {
  local archive
  shopt -s dotglob
  for archive in "$INITDB_DIR"/*.tar.gz "$INITDB_DIR"/*.tar.xz "$INITDB_DIR"/*.tar.zst; do
    mysql_note "Restoring $archive"
    mkdir -p "$DATADIR/.init"
    tar --auto-compress --extract --file "$archive" --directory "$DATADIR/.init"
    mariadb-backup --target-dir="$DATADIR/.init" --datadir="$DATADIR/.restore" --move-back
    mv "$DATADIR"/.restore/* "$DATADIR"/
    if [ -f "$DATADIR/.init/backup-my.cnf" ]; then
      mv "$DATADIR/.init/backup-my.cnf" "$DATADIR/.my.cnf"
      mysql_note "Adding startup configuration:"
      my_print_defaults --defaults-file="$DATADIR/.my.cnf" --mariadbd
    fi
    rm -rf "$DATADIR/.init" "$DATADIR/.restore"
  done
  shopt -u dotglob
  if upgrade_needed "$1"; then
    docker_mariadb_upgrade "$@"
  fi
}

# docker_mariadb_init COMMAND...: a new data directory, from a backup or from scratch.
docker_mariadb_init() {
  # A directory that cannot be listed would leave a half-initialised data directory behind.
  if ! ls "$INITDB_DIR/" >/dev/null; then
    mysql_error "$INITDB_DIR cannot be read by uid $(id -u)"
  fi
  check_datadir_writable
  if [ -n "$DATABASE_INIT_FROM_BACKUP" ]; then
    docker_restore_backups "$@"
    return 0
  fi
  docker_init_database_dir "$@"

  mysql_note "Starting temporary server"
  docker_temp_server_start "$@"
  mysql_note "Temporary server started."

  docker_setup_db
  docker_process_init_files "$INITDB_DIR"/*
  if [ -n "$MARIADB_ROOT_PASSWORD_HASH" ]; then
    mysql_note "Setting root@localhost password hash"
    docker_process_sql --dont-use-mysql-root-password --binary-mode <<EOSQL
SET @@SESSION.SQL_LOG_BIN = 0;
SET PASSWORD FOR 'root'@'localhost' = '$(sql_string "$MARIADB_ROOT_PASSWORD_HASH")';
EOSQL
  fi

  mysql_note "Stopping temporary server"
  docker_temp_server_stop
  mysql_note "Temporary server stopped"
  echo
  mysql_note "MariaDB init process done. Ready for start up."
  echo
}

# --- an existing data directory --------------------------------------------------------------------

# upgrade_needed SERVER: true when DATADIR's system tables come from an older major.minor than
# SERVER (or say nothing about it), or when the health-check option file is missing.
upgrade_needed() {
  local info=$DATADIR/mysql_upgrade_info
  if [ ! -f "$info" ]; then
    mysql_note "MariaDB upgrade information missing, assuming required"
    return 0
  fi
  local version old new
  version=$("$1" --version | awk '{ print $3 }')
  IFS='.-' read -r -a new <<<"$version"
  IFS='.-' read -r -a old <"$info" || true
  if [ ${#new[@]} -lt 2 ] || [ ${#old[@]} -lt 2 ] || ! [[ ${old[0]}${old[1]}${new[0]}${new[1]} =~ ^[0-9]+$ ]] ||
    [ "${old[0]}" -lt "${new[0]}" ] || { [ "${old[0]}" -eq "${new[0]}" ] && [ "${old[1]}" -lt "${new[1]}" ]; }; then
    return 0
  fi
  if [ ! -f "$DATADIR/.my-healthcheck.cnf" ]; then
    mysql_note "MariaDB healthcheck configuration file missing, assuming desirable"
    return 0
  fi
  mysql_note "MariaDB upgrade not required"
  return 1
}

# The mysql database, dumped beside the data, unless MARIADB_DISABLE_UPGRADE_BACKUP=1.
docker_mariadb_backup_system() {
  if [ "$MARIADB_DISABLE_UPGRADE_BACKUP" = 1 ]; then
    mysql_note "MariaDB upgrade backup disabled due to \$MARIADB_DISABLE_UPGRADE_BACKUP=1 setting"
    return 0
  fi
  local previous=''
  if [ -r "$DATADIR/mysql_upgrade_info" ]; then
    previous=$(<"$DATADIR/mysql_upgrade_info")
  fi
  local backup=system_mysql_backup_${previous:-unknown_version}.sql.zst
  mysql_note "Backing up system database to $backup"
  if ! mariadb-dump --skip-lock-tables --replace --databases mysql --socket="$SOCKET" | zstd >"$DATADIR/$backup"; then
    mysql_error "Unable backup system database for upgrade from ${previous:-unknown_version}."
  fi
  mysql_note "Backing up complete"
}

# docker_mariadb_upgrade COMMAND...: with MARIADB_AUTO_UPGRADE set (and not 0), on a temporary
# server without grant tables: back up the mysql database, recreate the health-check users when
# their option file is missing, and run mariadb-upgrade when the system tables are older.
docker_mariadb_upgrade() {
  if [ -z "$MARIADB_AUTO_UPGRADE" ] || [ "$MARIADB_AUTO_UPGRADE" = 0 ]; then
    mysql_note "MariaDB upgrade (mariadb-upgrade or creating healthcheck users) required, but skipped due to \$MARIADB_AUTO_UPGRADE setting"
    return 0
  fi
  mysql_note "Starting temporary server"
  docker_temp_server_start "$@" --skip-grant-tables --loose-innodb_buffer_pool_dump_at_shutdown=0
  mysql_note "Temporary server started."
  docker_mariadb_backup_system

  if [ ! -f "$DATADIR/.my-healthcheck.cnf" ]; then
    mysql_note "Creating healthcheck users"
    local users
    users=$(healthcheck_users_sql)
    # FLUSH PRIVILEGES turns the grant tables on, for the users' statements to work.
    docker_process_sql --dont-use-mysql-root-password --binary-mode <<EOSQL
SET @@SESSION.SQL_LOG_BIN = 0;
SET @@SESSION.SQL_MODE = REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
FLUSH PRIVILEGES;
$users
EOSQL
    mysql_note "Stopping temporary server"
    docker_temp_server_stop
    mysql_note "Temporary server stopped"
    upgrade_needed "$1" || return 0
    # Grant tables stay on after FLUSH PRIVILEGES: a new temporary server for mariadb-upgrade.
    mysql_note "Restarting temporary server for upgrade"
    docker_temp_server_start "$@" --skip-grant-tables --loose-innodb_buffer_pool_dump_at_shutdown=0
  fi

  mysql_note "Starting mariadb-upgrade"
  mariadb-upgrade --upgrade-system-tables --socket="$SOCKET"
  mysql_note "Finished mariadb-upgrade"
  mysql_note "Stopping temporary server"
  docker_temp_server_stop
  mysql_note "Temporary server stopped"
}

# --- main ------------------------------------------------------------------------------------------

# wants_help ARGS...: an option that makes mariadbd print something and stop.
wants_help() {
  local arg
  for arg; do
    case $arg in
      -'?' | --help | --print-defaults | -V | --version) return 0 ;;
    esac
  done
  return 1
}

_main() {
  if [ "${1:0:1}" = - ]; then
    set -- mariadbd "$@"
  fi
  if { [ "$1" = mariadbd ] || [ "$1" = mysqld ]; } && ! wants_help "$@"; then
    mysql_note "Entrypoint script for MariaDB Server ${MARIADB_VERSION:-$("$1" --version | awk '{ print $3 }')} started."
    load_server_settings "$@"
    read_settings
    prepare_directories
    if [ "$(id -u)" = 0 ]; then
      become_mysql "$@"
    fi
    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
      docker_verify_minimum_env
      docker_mariadb_init "$@"
    elif upgrade_needed "$1"; then
      docker_mariadb_upgrade "$@"
    fi
    forget_secrets
  fi
  exec "$@"
}

# Sourced: the functions only.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  return 0
fi
_main "$@"
