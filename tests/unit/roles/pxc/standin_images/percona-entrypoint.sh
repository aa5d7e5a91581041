#!/usr/bin/env bash
# Stand-in for the percona image's /entrypoint.sh (percona/percona-docker, percona-xtradb-cluster-8.0/
# dockerdir/entrypoint.sh), reduced to what the pxc role depends on or must avoid, in that order:
#  - it traces every command (set -o xtrace): the root password reaches the log unless taken out;
#  - PXC_SERVICE set: Kubernetes mode, it runs peer-list (gone from the images built after 2024-12: status 127)
#    and takes CLUSTER_JOIN from the peers it found;
#  - CLUSTER_JOIN empty and no DATADIR/mysql: it initialises (a root password setting required; whatever is in
#    DATADIR but hidden files is deleted; its temporary server runs Galera, so grastate.dat appears; the users,
#    monitor from MONITOR_PASSWORD among them; /docker-entrypoint-initdb.d/*.sh sourced while its temporary
#    server runs, with the local array mysql, its client as root);
#  - telemetry: unless PERCONA_TELEMETRY_DISABLE is non-zero it starts the telemetry agent, else it adds
#    --percona_telemetry_disable=1 to the server's options;
#  - then it execs the server with the arguments it was given.
# Test inputs: STUB_KILL_DURING_INIT (killed half-way through an initialisation), STUB_DATADIR (what the real one reads from the server's configuration), STUB_INITDB (its
# /docker-entrypoint-initdb.d), STUB_LOG_DIR.
set -eo pipefail
set -o xtrace
if [ "${1:0:1}" = '-' ]; then
	set -- mysqld "$@"
fi
if [ -n "$PXC_SERVICE" ]; then
	CLUSTER_JOIN=$(peer-list -on-start=/usr/bin/configure-pxc.sh -service="$PXC_SERVICE")
fi
DATADIR=$STUB_DATADIR
if [ -z "$CLUSTER_JOIN" ] && [ "$1" = mysqld ] && [ ! -d "$DATADIR/mysql" ]; then
	if [ -z "$MYSQL_ROOT_PASSWORD" ]; then
		echo >&2 'error: database is uninitialized and password option is not specified'
		exit 1
	fi
	rm -rf "${DATADIR:?}"/*
	mkdir "$DATADIR/mysql"
	printf 'uuid: %s\nseqno: -1\nsafe_to_bootstrap: 0\n' 00000000-0000-0000-0000-000000000001 >"$DATADIR/grastate.dat"
	# The test stops the pod here, as a kill would, before the users are made.
	if [ -n "$STUB_KILL_DURING_INIT" ]; then kill -KILL $$; fi
	mysql=(mysql -uroot -p"${MYSQL_ROOT_PASSWORD}")
	: "${mysql[@]}" "CREATE USER 'monitor'@'localhost' IDENTIFIED BY '${MONITOR_PASSWORD}'"
	printf '%s\n' "monitor $MONITOR_PASSWORD" >"$STUB_LOG_DIR/image-users"
	# Its temporary server runs while the files are sourced (process_init_file, with its local array mysql).
	printf '{"users": {"root": "%s", "xtrabackup": "%s"}}' "$MYSQL_ROOT_PASSWORD" "$XTRABACKUP_PASSWORD" >"$STUB_SERVER"
	export STUB_TEMP_SERVER=1
	for f in "$STUB_INITDB"/*; do
		case $f in *.sh) . "$f" ;; esac
	done
	unset STUB_TEMP_SERVER
	echo 'MySQL init process done. Ready for start up.'
fi
if [ "${PERCONA_TELEMETRY_DISABLE:-0}" != 0 ]; then
	exec "$@" --percona_telemetry_disable=1
fi
echo started >"$STUB_LOG_DIR/telemetry-agent"
exec "$@"
