#!/usr/bin/env bash
# Liveness of a Percona XtraDB Cluster member, lenient on purpose: restarting a member that waits
# for its peers, or one in the middle of a State Snapshot Transfer, would only make things worse.
#   - the entrypoint is still deciding or waiting for peers   -> alive
#   - an SST is in progress (the [sst] progress file exists)  -> alive
#   - otherwise mysqld must answer a ping; mysqladmin ping exits 0 whenever the server runs, even
#     when it refuses the login, so only a hung or dead server fails.
set -uo pipefail

phase=$(cat "${PXC_RUN_DIR:-/tmp/pxc}/phase" 2>/dev/null || true)
case $phase in
  deciding | waiting) exit 0 ;;
esac

if [ -e "${PXC_DATADIR:-/var/lib/mysql}/sst_in_progress" ]; then
  exit 0
fi

MYSQL_PWD="${MONITOR_PASSWORD:-}" timeout "${PXC_PROBE_TIMEOUT:-10}" \
  mysqladmin --user="${PXC_MONITOR_USER:-monitor}" --host=localhost ping >/dev/null 2>&1
