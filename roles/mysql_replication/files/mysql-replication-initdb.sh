#!/usr/bin/env bash
# Run by the mariadb image's entrypoint as an initialisation file (/docker-entrypoint-initdb.d), once it has
# initialised ordinal 0's new data directory (root, the application database and account, the replication account)
# and while its temporary server still runs: the rest is mysql-replication.sh's, mounted where the role's
# mysql_replication__scripts_dir says.
exec bash /opt/kubess/mysql-replication.sh initialised
