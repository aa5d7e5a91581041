#!/usr/bin/env bash
# Liveness of a Galera member, lenient on purpose: restarting a member that waits for its peers,
# or one in the middle of a State Snapshot Transfer, would only make things worse.
#   - the entrypoint is still deciding or waiting for peers   -> alive
#   - an SST is in progress (both images' transfer scripts keep DATADIR/sst_in_progress while
#     a joiner receives)                                      -> alive
#   - the image initialises the data directory (DATADIR/.kubess-initialising, made by
#     pxc-entrypoint.sh, removed by pxc-initdb.sh at the end; minutes on slow storage, and a
#     restart would only move the unfinished directory aside and begin again)  -> alive
#   - otherwise the server must answer a ping; the admin client's ping exits 0 whenever the server
#     runs, even when it refuses the login, so only a hung or dead server fails.
#
# Inputs (environment, defaults in brackets):
#   KUBESS_RUN_DIR [/run/kubess]   (the phase file of pxc-entrypoint.sh)   KUBESS_DATADIR [/var/lib/mysql]
#   KUBESS_MONITOR_PASSWORD        KUBESS_MONITOR_USER [monitor]
#   KUBESS_ADMIN [mysqladmin]      the admin program (mysqladmin, mariadb-admin)
#   KUBESS_PROBE_TIMEOUT [10]
set -uo pipefail

phase=$(cat "${KUBESS_RUN_DIR:-/run/kubess}/phase" 2>/dev/null || true)
case $phase in
  deciding | waiting) exit 0 ;;
esac

if [ -e "${KUBESS_DATADIR:-/var/lib/mysql}/sst_in_progress" ] ||
  [ -e "${KUBESS_DATADIR:-/var/lib/mysql}/.kubess-initialising" ]; then
  exit 0
fi

MYSQL_PWD="${KUBESS_MONITOR_PASSWORD:-}" timeout "${KUBESS_PROBE_TIMEOUT:-10}" \
  "${KUBESS_ADMIN:-mysqladmin}" --user="${KUBESS_MONITOR_USER:-monitor}" --host=localhost ping >/dev/null 2>&1
