#!/usr/bin/env bash
# Start one Percona XtraDB Cluster member of a StatefulSet: decide whether this pod bootstraps the
# cluster or joins it, then hand over to the image's own entrypoint.
#
# Decision, re-evaluated every PXC_POLL_INTERVAL seconds until PXC_WAIT_TIMEOUT:
#   1. a peer answers on the Galera port      -> join it (never bootstrap beside a running cluster)
#   2. force-bootstrap-ordinal is set         -> that ordinal bootstraps, the others wait to join it
#   3. grastate.dat says safe_to_bootstrap: 1 -> bootstrap (Galera marks the last member to leave
#                                                a cleanly stopped cluster, and only that one)
#   4. ordinal 0, empty datadir, cluster never initialized, no peer holds data -> new cluster
#   5. otherwise (full outage): every member publishes its uuid/seqno on the recovery port; once
#      all members have answered, the most advanced one (highest seqno, lowest ordinal on a tie)
#      bootstraps and the others join it.
#
# Inputs (environment, defaults in brackets):
#   HOSTNAME                   pod name, <set>-<ordinal>
#   PXC_SET_NAME [pxc]         StatefulSet name; PXC_SERVICE [pxc] headless Service name
#   POD_NAMESPACE [default]    PXC_CLUSTER_DOMAIN [cluster.local]
#   PXC_DATADIR [/var/lib/mysql]
#   PXC_STATE_DIR [/etc/pxc-bootstrap]  files: replicas, force-bootstrap-ordinal, cluster-initialized
#                                       (a ConfigMap volume, so changes reach a waiting pod live)
#   PXC_RUN_DIR [/tmp/pxc]     phase file, published state, quiet copy of the image entrypoint
#   PXC_GALERA_PORT [4567]     PXC_RECOVERY_PORT [4569]
#   PXC_POLL_INTERVAL [5]      PXC_WAIT_TIMEOUT [600] (0: wait for ever)
#   PXC_IMAGE_ENTRYPOINT [/entrypoint.sh]  PXC_MYSQLD [mysqld]
#   PXC_DECIDE_ONLY            when set, print the decision and exit instead of starting mysqld
set -euo pipefail

SET_NAME=${PXC_SET_NAME:-pxc}
SERVICE=${PXC_SERVICE:-pxc}
NAMESPACE=${POD_NAMESPACE:-default}
DOMAIN=${PXC_CLUSTER_DOMAIN:-cluster.local}
DATADIR=${PXC_DATADIR:-/var/lib/mysql}
STATE_DIR=${PXC_STATE_DIR:-/etc/pxc-bootstrap}
RUN_DIR=${PXC_RUN_DIR:-/tmp/pxc}
GALERA_PORT=${PXC_GALERA_PORT:-4567}
RECOVERY_PORT=${PXC_RECOVERY_PORT:-4569}
POLL_INTERVAL=${PXC_POLL_INTERVAL:-5}
WAIT_TIMEOUT=${PXC_WAIT_TIMEOUT:-600}
IMAGE_ENTRYPOINT=${PXC_IMAGE_ENTRYPOINT:-/entrypoint.sh}
MYSQLD=${PXC_MYSQLD:-mysqld}

log() { printf '[pxc-entrypoint] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_int() { [[ $1 =~ ^-?[0-9]+$ ]]; }

peer_host() { printf '%s-%s.%s.%s.svc.%s' "$SET_NAME" "$1" "$SERVICE" "$NAMESPACE" "$DOMAIN"; }

set_phase() { printf '%s\n' "$1" >"$RUN_DIR/phase"; }

# A file of the state ConfigMap, or a default when absent or empty.
state_value() {
  local value=""
  [ -r "$STATE_DIR/$1" ] && value=$(tr -d '[:space:]' <"$STATE_DIR/$1")
  printf '%s' "${value:-$2}"
}

# Does host:port accept a TCP connection?
net_probe() { socat -u OPEN:/dev/null "TCP:$1:$2,connect-timeout=2" >/dev/null 2>&1; }

# What host:port sends back on connect (the recovery announcer of a peer).
net_fetch() { socat -T 3 -u "TCP:$1:$2,connect-timeout=2" STDOUT 2>/dev/null; }

ANNOUNCER_PID=""
start_announcer() {
  socat "TCP-LISTEN:$RECOVERY_PORT,reuseaddr,fork" "SYSTEM:cat $RUN_DIR/state" >/dev/null 2>&1 &
  ANNOUNCER_PID=$!
}
stop_announcer() {
  if [ -n "$ANNOUNCER_PID" ]; then
    kill "$ANNOUNCER_PID" 2>/dev/null || true
    wait "$ANNOUNCER_PID" 2>/dev/null || true
    ANNOUNCER_PID=""
  fi
}
trap stop_announcer EXIT

# Field <key> of a "key=value key=value" state line.
field() { local kv; for kv in $2; do [ "${kv%%=*}" = "$1" ] && { printf '%s' "${kv#*=}"; return 0; }; done; return 1; }

# --- who am I -------------------------------------------------------------------------------------
POD=${HOSTNAME:-$(hostname)}
[[ $POD =~ -([0-9]+)$ ]] || die "hostname '$POD' does not end in -<ordinal>; this script runs in a StatefulSet pod"
ORDINAL=${BASH_REMATCH[1]}
ORDINAL=$((10#$ORDINAL))
mkdir -p "$RUN_DIR"
set_phase deciding

# --- local data -----------------------------------------------------------------------------------
EMPTY=1
UUID=00000000-0000-0000-0000-000000000000
SEQNO=-1
SAFE=0
GRASTATE=$DATADIR/grastate.dat
if [ -d "$DATADIR/mysql" ]; then
  EMPTY=0
  if [ -s "$GRASTATE" ]; then
    UUID=$(awk '$1 == "uuid:" {print $2}' "$GRASTATE")
    SEQNO=$(awk '$1 == "seqno:" {print $2}' "$GRASTATE")
    SAFE=$(awk '$1 == "safe_to_bootstrap:" {print $2}' "$GRASTATE")
    is_int "${SEQNO:-x}" || SEQNO=-1
    [ "${SAFE:-0}" = 1 ] || SAFE=0
    UUID=${UUID:-00000000-0000-0000-0000-000000000000}
  fi
  if [ "$SEQNO" -lt 0 ]; then
    # No clean shutdown recorded: ask InnoDB for the last committed Galera position.
    log "seqno unknown in grastate.dat: running $MYSQLD --wsrep-recover"
    recover_log=$(mktemp "$RUN_DIR/wsrep-recover.XXXXXX")
    "$MYSQLD" --wsrep-recover --log-error-verbosity=3 --log_error="$recover_log" >/dev/null 2>&1 || true
    position=$(sed -n 's/.*Recovered position:[[:space:]]*//p' "$recover_log" | tail -n 1)
    rm -f "$recover_log"
    if [[ $position =~ ^([0-9a-f-]+):(-?[0-9]+)$ ]]; then
      UUID=${BASH_REMATCH[1]}
      SEQNO=${BASH_REMATCH[2]}
      log "recovered position $UUID:$SEQNO"
    else
      log "wsrep-recover found no position; this member counts as seqno -1"
    fi
  fi
fi
printf 'ordinal=%s empty=%s uuid=%s seqno=%s safe_to_bootstrap=%s\n' \
  "$ORDINAL" "$EMPTY" "$UUID" "$SEQNO" "$SAFE" >"$RUN_DIR/state"
log "member $POD (ordinal $ORDINAL): empty=$EMPTY uuid=$UUID seqno=$SEQNO safe_to_bootstrap=$SAFE"
start_announcer

# --- decide ---------------------------------------------------------------------------------------
DECISION=""
JOIN_ADDRESSES=""
decide() {
  local replicas force initialized i host up="" states="" missing="" line holder=""
  replicas=$(state_value replicas 1)
  if ! is_int "$replicas" || [ "$replicas" -lt 1 ]; then replicas=1; fi
  force=$(state_value force-bootstrap-ordinal -1)
  is_int "$force" || force=-1
  initialized=$(state_value cluster-initialized false)

  # 1. a running member answers: join.
  for ((i = 0; i < replicas; i++)); do
    [ "$i" -eq "$ORDINAL" ] && continue
    host=$(peer_host "$i")
    if net_probe "$host" "$GALERA_PORT"; then up="${up:+$up,}$host"; fi
  done
  if [ -n "$up" ]; then
    DECISION="join"
    JOIN_ADDRESSES=$up
    return 0
  fi

  # 2. the operator chose the bootstrap member.
  if [ "$force" -ge 0 ]; then
    if [ "$force" -eq "$ORDINAL" ]; then
      DECISION=bootstrap
      log "force-bootstrap-ordinal is $force: this member bootstraps"
      return 0
    fi
    log "force-bootstrap-ordinal is $force: waiting for $(peer_host "$force") to bootstrap"
    return 1
  fi

  # 3. Galera's own mark of the last member of a cleanly stopped cluster.
  if [ "$EMPTY" -eq 0 ] && [ "$SAFE" -eq 1 ]; then
    DECISION=bootstrap
    log "grastate.dat has safe_to_bootstrap: 1: this member bootstraps"
    return 0
  fi

  # Ask every peer's announcer for its state.
  for ((i = 0; i < replicas; i++)); do
    [ "$i" -eq "$ORDINAL" ] && continue
    host=$(peer_host "$i")
    if line=$(net_fetch "$host" "$RECOVERY_PORT") && [ -n "$line" ] && field seqno "$line" >/dev/null; then
      states="$states$line"$'\n'
      [ "$(field empty "$line")" = 0 ] && holder="${holder:+$holder, }$host"
    else
      missing="${missing:+$missing, }$host"
    fi
  done

  # 4. first install: ordinal 0 starts a new cluster when nobody holds data.
  if [ "$EMPTY" -eq 1 ] && [ "$ORDINAL" -eq 0 ] && [ "$initialized" != true ]; then
    if [ -z "$holder" ]; then
      DECISION=bootstrap-new
      log "empty datadir, cluster not initialized, no peer holds data: this member starts a new cluster"
      return 0
    fi
    log "empty datadir but $holder hold data: waiting for the most advanced member to bootstrap"
  fi

  # 5. full outage: the most advanced member bootstraps once every member has answered.
  if [ -n "$missing" ]; then
    log "no running member; waiting for the state of: $missing" \
      "(set pxc_force_bootstrap_ordinal to bootstrap without them)"
    return 1
  fi
  local best_ordinal=-1 best_seqno=-2 best_safe=0 o s e f
  states="${states}ordinal=$ORDINAL empty=$EMPTY uuid=$UUID seqno=$SEQNO safe_to_bootstrap=$SAFE"$'\n'
  while read -r line; do
    [ -n "$line" ] || continue
    o=$(field ordinal "$line") || continue
    s=$(field seqno "$line") || continue
    e=$(field empty "$line") || e=1
    f=$(field safe_to_bootstrap "$line") || f=0
    [ "$f" = 1 ] || f=0
    if ! is_int "$o" || ! is_int "$s"; then continue; fi
    [ "$e" = 0 ] || continue
    # Order: safe_to_bootstrap first, then the highest seqno, then the lowest ordinal.
    if [ "$f" -gt "$best_safe" ] ||
      { [ "$f" -eq "$best_safe" ] && [ "$s" -gt "$best_seqno" ]; } ||
      { [ "$f" -eq "$best_safe" ] && [ "$s" -eq "$best_seqno" ] && [ "$o" -lt "$best_ordinal" ]; }; then
      best_safe=$f
      best_seqno=$s
      best_ordinal=$o
    fi
  done <<<"$states"
  if [ "$best_ordinal" -lt 0 ]; then
    if [ "$initialized" = true ]; then
      log "no member holds data although the cluster was initialized: refusing to start an empty" \
        "cluster over lost volumes; set pxc_force_bootstrap_ordinal to do so"
    else
      log "no member holds data yet: waiting for $(peer_host 0) to start a new cluster"
    fi
    return 1
  fi
  if [ "$best_ordinal" -eq "$ORDINAL" ]; then
    DECISION=bootstrap
    log "most advanced member (seqno $best_seqno) of $replicas: this member bootstraps"
    return 0
  fi
  log "waiting for the most advanced member $(peer_host "$best_ordinal") (seqno $best_seqno) to bootstrap"
  return 1
}

set_phase waiting
start=$SECONDS
until decide; do
  if [ "$WAIT_TIMEOUT" -gt 0 ] && [ $((SECONDS - start)) -ge "$WAIT_TIMEOUT" ]; then
    die "no bootstrap decision after ${WAIT_TIMEOUT}s; see the messages above"
  fi
  sleep "$POLL_INTERVAL"
done
stop_announcer

# --- act ------------------------------------------------------------------------------------------
args=(mysqld "--wsrep_node_name=$POD")
case $DECISION in
  bootstrap-new)
    args+=("--wsrep_cluster_address=gcomm://")
    unset CLUSTER_JOIN
    ;;
  bootstrap)
    if [ -s "$GRASTATE" ]; then
      sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$GRASTATE"
    fi
    args+=("--wsrep_cluster_address=gcomm://")
    unset CLUSTER_JOIN
    ;;
  join)
    args+=("--wsrep_cluster_address=gcomm://$JOIN_ADDRESSES")
    export CLUSTER_JOIN=$JOIN_ADDRESSES
    ;;
esac
log "decision: $DECISION${JOIN_ADDRESSES:+ via $JOIN_ADDRESSES}"
if [ -n "${PXC_DECIDE_ONLY:-}" ]; then
  printf '%s %s\n' "$DECISION" "$JOIN_ADDRESSES"
  exit 0
fi
set_phase mysqld

# The image's entrypoint traces every command (set -o xtrace), which would copy the root password
# into the container log; run a copy of it without the tracing.
quiet=$RUN_DIR/image-entrypoint.sh
if sed '/^[[:space:]]*set -o xtrace[[:space:]]*$/d' "$IMAGE_ENTRYPOINT" >"$quiet" 2>/dev/null; then
  chmod 0700 "$quiet"
  trap - EXIT
  exec bash "$quiet" "${args[@]}"
fi
trap - EXIT
exec "$IMAGE_ENTRYPOINT" "${args[@]}"
