#!/usr/bin/env bash
# Run by the image's entrypoint at the end of a first initialisation of the data directory (both
# images run /docker-entrypoint-initdb.d/* once the users are made): it makes the users the image
# does not, then removes the mark pxc-entrypoint.sh set before the initialisation began. A data
# directory that still has the mark was never finished: pxc-entrypoint.sh moves it aside.
#
# Percona's entrypoint sources it, MariaDB's executes it: it sets no shell option, never exits, and
# names its variables kubess_*. The passwords reach the client on its standard input and through
# MYSQL_PWD, never on a command line.
#
# Inputs (environment, defaults in brackets):
#   KUBESS_FLAVOR [percona]         percona: the image made root, xtrabackup, monitor and clustercheck; make
#                                   xtrabackup from any host (backup pods);
#                                   mariadb: make monitor and the backup (State Snapshot Transfer) user, the
#                                   latter also from any host (backup pods), both with REPLICATION SLAVE for
#                                   the binlog-archive containers (pxc_backup_binlogs; 127.0.0.1 is localhost
#                                   to a server that resolves names)
#   KUBESS_DATADIR [/var/lib/mysql] KUBESS_CLIENT [mysql]
#   KUBESS_MONITOR_PASSWORD         KUBESS_MONITOR_USER [monitor]
#   KUBESS_BACKUP_USER [mariabackup] KUBESS_BACKUP_PASSWORD
#   MARIADB_ROOT_PASSWORD           exported by MariaDB's entrypoint for these files
kubess_marker=${KUBESS_DATADIR:-/var/lib/mysql}/.kubess-initialising
case ${KUBESS_FLAVOR:-percona} in
  mariadb)
    MYSQL_PWD=${MARIADB_ROOT_PASSWORD:-} "${KUBESS_CLIENT:-mariadb}" --protocol=socket --user=root <<KUBESS_SQL &&
CREATE USER '${KUBESS_MONITOR_USER:-monitor}'@'localhost' IDENTIFIED BY '${KUBESS_MONITOR_PASSWORD:-}'
  WITH MAX_USER_CONNECTIONS 10;
GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO '${KUBESS_MONITOR_USER:-monitor}'@'localhost';
CREATE USER '${KUBESS_BACKUP_USER:-mariabackup}'@'localhost' IDENTIFIED BY '${KUBESS_BACKUP_PASSWORD:-}';
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, REPLICATION SLAVE ON *.* TO '${KUBESS_BACKUP_USER:-mariabackup}'@'localhost';
CREATE USER '${KUBESS_BACKUP_USER:-mariabackup}'@'%' IDENTIFIED BY '${KUBESS_BACKUP_PASSWORD:-}';
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, REPLICATION SLAVE ON *.* TO '${KUBESS_BACKUP_USER:-mariabackup}'@'%';
KUBESS_SQL
      rm -f -- "$kubess_marker"
    ;;
  *)
    # Percona's entrypoint sources this file from process_init_file, whose local array mysql is its client as root.
    # shellcheck disable=SC2154
    "${mysql[@]}" <<KUBESS_SQL &&
CREATE USER '${KUBESS_BACKUP_USER:-xtrabackup}'@'%' IDENTIFIED BY '${KUBESS_BACKUP_PASSWORD:-}';
GRANT RELOAD, PROCESS, LOCK TABLES, REPLICATION CLIENT, BACKUP_ADMIN ON *.* TO '${KUBESS_BACKUP_USER:-xtrabackup}'@'%';
GRANT SELECT ON performance_schema.log_status TO '${KUBESS_BACKUP_USER:-xtrabackup}'@'%';
GRANT SELECT ON performance_schema.keyring_component_status TO '${KUBESS_BACKUP_USER:-xtrabackup}'@'%';
KUBESS_SQL
      rm -f -- "$kubess_marker"
    ;;
esac
