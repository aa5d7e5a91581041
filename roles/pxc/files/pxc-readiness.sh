#!/usr/bin/env bash
# Readiness of a Galera member: Ready means "Synced with the primary component and accepting
# queries", not "port open". A Donor, Joiner or Desynced member, or one outside the primary
# component (wsrep_ready OFF), is not Ready, so the client Service stops sending it traffic.
#
# Connects as the monitor user over the local socket; the password comes from the environment
# (KUBESS_MONITOR_PASSWORD, a secretKeyRef) through MYSQL_PWD, so it never appears in the process list.
#
# Inputs (environment, defaults in brackets):
#   KUBESS_MONITOR_PASSWORD   KUBESS_MONITOR_USER [monitor]
#   KUBESS_CLIENT [mysql]     the client program (mysql, mariadb)
#   KUBESS_PROBE_TIMEOUT [10] seconds the query may take
set -uo pipefail

status=$(MYSQL_PWD="${KUBESS_MONITOR_PASSWORD:-}" timeout "${KUBESS_PROBE_TIMEOUT:-10}" \
  "${KUBESS_CLIENT:-mysql}" --user="${KUBESS_MONITOR_USER:-monitor}" --host=localhost --batch --skip-column-names \
  --execute="SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_ready')" \
  2>/dev/null) || { echo "not ready: the server does not answer" >&2; exit 1; }

state=$(awk -F'\t' 'tolower($1) == "wsrep_local_state_comment" {print $2}' <<<"$status")
ready=$(awk -F'\t' 'tolower($1) == "wsrep_ready" {print $2}' <<<"$status")

if [ "$state" = "Synced" ] && [ "$ready" = "ON" ]; then
  exit 0
fi
echo "not ready: wsrep_local_state_comment=${state:-unknown} wsrep_ready=${ready:-unknown}" >&2
exit 1
