#!/usr/bin/env bash
# Stand-in for the mariadb image's docker-entrypoint.sh (the official mariadb:10.11 image's contract, as
# tools/images/mariadb-galera/contract.yaml states it), reduced to what the pxc role depends on:
#  - no DATADIR/mysql: it initialises, joiners included (it has no Galera logic): a root password setting
#    required; its temporary server runs with wsrep off (no grastate.dat); root gets MARIADB_ROOT_PASSWORD;
#    /docker-entrypoint-initdb.d/* run, a *.sh executed when executable, else sourced, with the settings
#    exported;
#  - the password settings unset, it execs the command with the arguments as given.
# Test inputs: STUB_KILL_DURING_INIT (killed half-way through an initialisation), STUB_DATADIR, STUB_INITDB (its /docker-entrypoint-initdb.d), STUB_SERVER (the stand-in
# server's state, whose users it sets).
set -eo pipefail
if [ "${1:0:1}" = '-' ]; then
	set -- mariadbd "$@"
fi
DATADIR=$STUB_DATADIR
if [ "$1" = mariadbd ] && [ ! -d "$DATADIR/mysql" ]; then
	if [ -z "$MARIADB_ROOT_PASSWORD" ]; then
		echo >&2 'Database is uninitialized and password option is not specified'
		exit 1
	fi
	mkdir "$DATADIR/mysql"
	# The test stops the pod here, as a kill would, before the users are made.
	if [ -n "$STUB_KILL_DURING_INIT" ]; then kill -KILL $$; fi
	printf '{"users": {"root": "%s"}}' "$MARIADB_ROOT_PASSWORD" >"$STUB_SERVER"
	export MARIADB_ROOT_PASSWORD STUB_TEMP_SERVER=1
	for f in "$STUB_INITDB"/*; do
		case $f in
			*.sh) if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
		esac
	done
	unset STUB_TEMP_SERVER
	echo 'MariaDB init process done. Ready for start up.'
fi
unset MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD MARIADB_PASSWORD MYSQL_PASSWORD
exec "$@"
