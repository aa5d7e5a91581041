#!/usr/bin/env bash
# Start one Galera member of a StatefulSet (Percona XtraDB Cluster or MariaDB): decide whether this pod
# bootstraps the cluster or joins it, then hand over to the image's own entrypoint.
#
# Decision, re-evaluated every KUBESS_POLL_INTERVAL seconds until KUBESS_WAIT_TIMEOUT:
#   1. a peer answers on the Galera port      -> join it (never bootstrap beside a running cluster)
#   2. force-bootstrap-ordinal is set         -> that ordinal bootstraps, the others wait to join it
#   3. grastate.dat says safe_to_bootstrap: 1 -> bootstrap (Galera marks the last member to leave
#                                                a cleanly stopped cluster), unless another member that
#                                                answers claims it too with a higher seqno (or the same
#                                                seqno and a lower ordinal): then wait for that one, and
#                                                never bootstrap by this rule once one was seen; peers
#                                                that do not answer get KUBESS_SAFE_GRACE seconds first
#   4. ordinal 0, empty datadir, cluster never initialized, no peer holds data -> new cluster
#   5. otherwise (full outage): every member publishes its uuid/seqno on the recovery port; once
#      all members have answered, the most advanced one (highest seqno, lowest ordinal on a tie)
#      bootstraps and the others join it.
#
# Before deciding: a data directory whose first initialisation never finished (the pod was stopped
# while the image initialised it, so DATADIR/.kubess-initialising is still there) is moved aside,
# whole, into DATADIR/.kubess-half-initialised/<UTC time>/, and the member counts as empty. Nothing
# is deleted. After KUBESS_MAX_HALF_INITIALISED such directories the script stops instead: an
# initialisation that keeps failing must not fill the volume.
#
# Hand-over: the image's entrypoint gets the server command, the node name and, to bootstrap,
# --wsrep_cluster_address=gcomm:// or, to join, the members that answered. percona: CLUSTER_JOIN
# is exported to a joiner (its entrypoint then skips the initialisation: the snapshot brings the
# data); its xtrace is taken out. mariadb: the position --wsrep-recover found goes to the server
# as --wsrep_start_position (its entrypoint has no such step); wsrep_sst_auth is written to
# KUBESS_RUN_DIR/sst-auth.cnf.
#
# Signals: SIGTERM or SIGINT while deciding or waiting stop what runs (the announcer, a probe, the
# sleep, a --wsrep-recover) and end the script at once; the server, once started, handles them.
#
# Inputs (environment, defaults in brackets):
#   HOSTNAME                         pod name, <set>-<ordinal>
#   KUBESS_FLAVOR [percona]          percona or mariadb
#   KUBESS_SET_NAME [pxc]            StatefulSet name; KUBESS_SERVICE [pxc] headless Service name
#   KUBESS_NAMESPACE [default]       KUBESS_CLUSTER_DOMAIN [cluster.local]
#   KUBESS_DATADIR [/var/lib/mysql]
#   KUBESS_STATE_DIR [/etc/pxc-bootstrap]  files: replicas, force-bootstrap-ordinal, cluster-initialized
#                                          (a ConfigMap volume, so changes reach a waiting pod live)
#   KUBESS_RUN_DIR [/run/kubess]     phase file, published state, wsrep_sst_auth file, quiet entrypoint
#   KUBESS_GALERA_PORT [4567]        KUBESS_RECOVERY_PORT [4569]
#   KUBESS_POLL_INTERVAL [5]         KUBESS_WAIT_TIMEOUT [600] (0: wait for ever)
#   KUBESS_SAFE_GRACE [30]           seconds a member marked safe_to_bootstrap waits for peers that do not answer
#   KUBESS_SERVER [mysqld]           the server program (mysqld, mariadbd)
#   KUBESS_IMAGE_ENTRYPOINT [/entrypoint.sh]  the image's entrypoint (a path, or a name on PATH)
#   KUBESS_BACKUP_USER, KUBESS_BACKUP_PASSWORD  mariadb: the State Snapshot Transfer user
#   KUBESS_MAX_HALF_INITIALISED [3]
#   KUBESS_DECIDE_ONLY               when set, print the decision and exit instead of starting the server
set -euo pipefail

FLAVOR=${KUBESS_FLAVOR:-percona}
SET_NAME=${KUBESS_SET_NAME:-pxc}
SERVICE=${KUBESS_SERVICE:-pxc}
NAMESPACE=${KUBESS_NAMESPACE:-default}
DOMAIN=${KUBESS_CLUSTER_DOMAIN:-cluster.local}
DATADIR=${KUBESS_DATADIR:-/var/lib/mysql}
STATE_DIR=${KUBESS_STATE_DIR:-/etc/pxc-bootstrap}
RUN_DIR=${KUBESS_RUN_DIR:-/run/kubess}
GALERA_PORT=${KUBESS_GALERA_PORT:-4567}
RECOVERY_PORT=${KUBESS_RECOVERY_PORT:-4569}
POLL_INTERVAL=${KUBESS_POLL_INTERVAL:-5}
WAIT_TIMEOUT=${KUBESS_WAIT_TIMEOUT:-600}
SAFE_GRACE=${KUBESS_SAFE_GRACE:-30}
SERVER=${KUBESS_SERVER:-mysqld}
IMAGE_ENTRYPOINT=${KUBESS_IMAGE_ENTRYPOINT:-/entrypoint.sh}
MAX_HALF_INITIALISED=${KUBESS_MAX_HALF_INITIALISED:-3}
# Written just before the image initialises a new data directory, removed by pxc-initdb.sh at its end.
MARKER=$DATADIR/.kubess-initialising
ASIDE_ROOT=$DATADIR/.kubess-half-initialised

log() { printf '[pxc-entrypoint] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_int() { [[ $1 =~ ^-?[0-9]+$ ]]; }

peer_host() { printf '%s-%s.%s.%s.svc.%s' "$SET_NAME" "$1" "$SERVICE" "$NAMESPACE" "$DOMAIN"; }

set_phase() { printf '%s\n' "$1" >"$RUN_DIR/phase"; }

case $FLAVOR in
  percona | mariadb) ;;
  *) die "KUBESS_FLAVOR is '$FLAVOR'; expected percona or mariadb" ;;
esac

# --- signals ---------------------------------------------------------------------------------------
# As PID 1, bash ignores SIGTERM unless it traps it, and runs a trap only once the foreground command
# ends: every command that may take a while runs in the background, waited for (a trapped signal
# interrupts the wait at once). in_background OUTPUT COMMAND...: its standard output goes to OUTPUT,
# its errors nowhere (the script's own stay where they are, for the trap's message).
CHILD=""
ANNOUNCER_PID=""
in_background() {
  local status=0 output=$1
  shift
  "$@" >"$output" 2>/dev/null &
  CHILD=$!
  wait "$CHILD" || status=$?
  CHILD=""
  return "$status"
}
stop_announcer() {
  if [ -n "$ANNOUNCER_PID" ]; then
    kill "$ANNOUNCER_PID" 2>/dev/null || true
    wait "$ANNOUNCER_PID" 2>/dev/null || true
    ANNOUNCER_PID=""
  fi
}
# The trap passes on the signal to what runs and ends the script without waiting for it (bash's wait
# can hang in a trap that interrupted a wait for the same process); as PID 1, its end takes the rest
# of the container with it.
terminate() {
  trap - TERM INT EXIT
  log "$1 before the server started: stopping"
  kill ${CHILD:+"$CHILD"} ${ANNOUNCER_PID:+"$ANNOUNCER_PID"} 2>/dev/null || true
  exit "$2"
}
trap stop_announcer EXIT
trap 'terminate SIGTERM 143' TERM
trap 'terminate SIGINT 130' INT

# A file of the state ConfigMap, or a default when absent or empty.
state_value() {
  local value=""
  [ -r "$STATE_DIR/$1" ] && value=$(tr -d '[:space:]' <"$STATE_DIR/$1")
  printf '%s' "${value:-$2}"
}

# Does host:port accept a TCP connection?
net_probe() { in_background /dev/null socat -u OPEN:/dev/null "TCP:$1:$2,connect-timeout=2"; }

# What host:port sends back on connect (the recovery announcer of a peer), into $RUN_DIR/fetched.
net_fetch() { in_background "$RUN_DIR/fetched" socat -T 3 -u "TCP:$1:$2,connect-timeout=2" STDOUT; }

start_announcer() {
  socat "TCP-LISTEN:$RECOVERY_PORT,reuseaddr,fork" "SYSTEM:cat $RUN_DIR/state" >/dev/null 2>&1 &
  ANNOUNCER_PID=$!
}

# Field <key> of a "key=value key=value" state line.
field() { local kv; for kv in $2; do [ "${kv%%=*}" = "$1" ] && { printf '%s' "${kv#*=}"; return 0; }; done; return 1; }

# --- who am I -------------------------------------------------------------------------------------
POD=${HOSTNAME:-$(hostname)}
[[ $POD =~ -([0-9]+)$ ]] || die "hostname '$POD' does not end in -<ordinal>; this script runs in a StatefulSet pod"
ORDINAL=${BASH_REMATCH[1]}
ORDINAL=$((10#$ORDINAL))
mkdir -p "$RUN_DIR"
set_phase deciding

# A data directory this member cannot read (the volume's permissions, an export that maps the uid elsewhere) must
# not count as empty: its position is unknown, and the others must wait for it instead of electing without it.
for path in "$DATADIR" "$DATADIR/grastate.dat"; do
  if [ -e "$path" ] && { [ ! -r "$path" ] || { [ -d "$path" ] && [ ! -x "$path" ]; }; }; then
    die "cannot read $path as uid $(id -u): this member's position is unknown, and the others wait for it." \
      "Give the volume back to uid $(id -u), or bootstrap without this member (pxc_force_bootstrap_ordinal)"
  fi
done

# --- a first initialisation that never finished ---------------------------------------------------
if [ -e "$MARKER" ]; then
  shopt -s nullglob dotglob
  leftovers=()
  for entry in "$DATADIR"/*; do
    case ${entry##*/} in .kubess-* | lost+found) ;; *) leftovers+=("$entry") ;; esac
  done
  earlier=("$ASIDE_ROOT"/*)
  shopt -u nullglob dotglob
  if [ "${#leftovers[@]}" -gt 0 ]; then
    [ "${#earlier[@]}" -lt "$MAX_HALF_INITIALISED" ] ||
      die "the first initialisation of $DATADIR was interrupted again, and $ASIDE_ROOT already holds" \
        "${#earlier[@]} earlier attempts: see why in the previous container's log (kubectl logs --previous)," \
        "then remove what $ASIDE_ROOT holds"
    aside=$ASIDE_ROOT/$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p "$ASIDE_ROOT"
    mkdir "$aside" 2>/dev/null || { aside=$aside-$$ && mkdir "$aside"; }
    mv -- "${leftovers[@]}" "$aside/"
    log "the first initialisation of $DATADIR never finished (the pod stopped while the image" \
      "initialised it): moved what it left (${#leftovers[@]} entries) to $aside; initialising again"
  fi
  rm -f -- "$MARKER"
fi

# --- local data -----------------------------------------------------------------------------------
EMPTY=1
UUID=00000000-0000-0000-0000-000000000000
SEQNO=-1
SAFE=0
RECOVERED=0
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
    # No clean shutdown recorded: ask InnoDB for the last committed Galera position. Percona's
    # server logs it at verbosity 3; MariaDB's has no such option, hence loose-.
    log "seqno unknown in grastate.dat: running $SERVER --wsrep-recover"
    recover_log=$(mktemp "$RUN_DIR/wsrep-recover.XXXXXX")
    in_background /dev/null "$SERVER" --wsrep-recover --loose-log-error-verbosity=3 --log-error="$recover_log" ||
      true
    position=$(sed -n 's/.*Recovered position:[[:space:]]*//p' "$recover_log" | tail -n 1)
    rm -f "$recover_log"
    if [[ $position =~ ^([0-9a-f-]+):(-?[0-9]+)$ ]]; then
      UUID=${BASH_REMATCH[1]}
      SEQNO=${BASH_REMATCH[2]}
      RECOVERED=1
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
SAFE_RIVAL=""
decide() {
  local replicas force initialized i host up="" states="" missing="" line holder="" o s
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

  # Ask every peer's announcer for its state.
  for ((i = 0; i < replicas; i++)); do
    [ "$i" -eq "$ORDINAL" ] && continue
    host=$(peer_host "$i")
    line=""
    if net_fetch "$host" "$RECOVERY_PORT"; then line=$(<"$RUN_DIR/fetched"); fi
    if [ -n "$line" ] && field seqno "$line" >/dev/null; then
      states="$states$line"$'\n'
      [ "$(field empty "$line")" = 0 ] && holder="${holder:+$holder, }$host"
    else
      missing="${missing:+$missing, }$host"
    fi
  done

  # 3. Galera's own mark of the last member of a cleanly stopped cluster. Only one member should carry it, but two
  # can (data directories restored from different times, or from two clusters): both bootstrapping would make two
  # clusters. So the claimants that answer are compared (highest seqno, then lowest ordinal) and only the first one
  # bootstraps; peers that do not answer yet get SAFE_GRACE seconds to say whether they claim it too. A claimant
  # that was once seen ahead stays ahead (SAFE_RIVAL): it stops answering on the recovery port when it starts its
  # server, before its Galera port opens, and must not be taken for a member that is gone.
  if [ "$EMPTY" -eq 0 ] && [ "$SAFE" -eq 1 ]; then
    local rival="" rival_seqno=""
    if [ -n "$SAFE_RIVAL" ]; then
      log "$SAFE_RIVAL, which claims safe_to_bootstrap too and is ahead, is starting: waiting to join it" \
        "(set pxc_force_bootstrap_ordinal to bootstrap without it)"
      return 1
    fi
    while read -r line; do
      [ -n "$line" ] || continue
      if [ "$(field safe_to_bootstrap "$line")" != 1 ] || [ "$(field empty "$line")" != 0 ]; then continue; fi
      if ! o=$(field ordinal "$line") || ! s=$(field seqno "$line"); then continue; fi
      if ! is_int "$o" || ! is_int "$s"; then continue; fi
      if [ "$s" -gt "$SEQNO" ] || { [ "$s" -eq "$SEQNO" ] && [ "$o" -lt "$ORDINAL" ]; }; then
        rival=$(peer_host "$o")
        rival_seqno=$s
        break
      fi
    done <<<"$states"
    if [ -n "$rival" ]; then
      SAFE_RIVAL=$rival
      log "$rival claims safe_to_bootstrap too, with seqno $rival_seqno (this member: $SEQNO): waiting for it to" \
        "bootstrap"
      return 1
    fi
    if [ -n "$missing" ] && [ $((SECONDS - start)) -lt "$SAFE_GRACE" ]; then
      log "grastate.dat has safe_to_bootstrap: 1; waiting up to ${SAFE_GRACE}s for the state of: $missing" \
        "(another member may claim it too)"
      return 1
    fi
    DECISION=bootstrap
    log "grastate.dat has safe_to_bootstrap: 1: this member bootstraps"
    return 0
  fi

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
  local best_ordinal=-1 best_seqno=-2 best_safe=0 e f
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
  in_background /dev/null sleep "$POLL_INTERVAL"
done
stop_announcer

# --- act ------------------------------------------------------------------------------------------
args=("$SERVER" "--wsrep_node_name=$POD")
case $DECISION in
  bootstrap-new)
    args+=("--wsrep_cluster_address=gcomm://")
    ;;
  bootstrap)
    if [ -s "$GRASTATE" ]; then
      sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$GRASTATE"
    fi
    args+=("--wsrep_cluster_address=gcomm://")
    ;;
  join)
    args+=("--wsrep_cluster_address=gcomm://$JOIN_ADDRESSES")
    ;;
esac
log "decision: $DECISION${JOIN_ADDRESSES:+ via $JOIN_ADDRESSES}"
if [ -n "${KUBESS_DECIDE_ONLY:-}" ]; then
  printf '%s %s\n' "$DECISION" "$JOIN_ADDRESSES"
  exit 0
fi

# Does the image initialise the data directory before it starts the server? MariaDB's does whenever
# DATADIR/mysql is missing, a joiner's too (the snapshot then replaces it); Percona's not for a joiner.
initialises=0
case $FLAVOR in
  percona)
    unset CLUSTER_JOIN
    if [ "$DECISION" = join ]; then
      export CLUSTER_JOIN=$JOIN_ADDRESSES
    elif [ ! -d "$DATADIR/mysql" ]; then
      initialises=1
    fi
    ;;
  mariadb)
    [ -d "$DATADIR/mysql" ] || initialises=1
    # Percona's entrypoint recovers the position after a crash and gives it to the server; MariaDB's does
    # not, and its server would then start a new history (a new cluster uuid) or ask for a full snapshot.
    if [ "$RECOVERED" -eq 1 ]; then
      args+=("--wsrep_start_position=$UUID:$SEQNO")
    fi
    # The donor's mariabackup logs in as the backup user: wsrep_sst_auth, read through the includedir
    # of kubess.cnf; only this uid may read it.
    (umask 077 && printf '[mysqld]\nwsrep_sst_auth=%s:%s\n' "${KUBESS_BACKUP_USER:-mariabackup}" \
      "${KUBESS_BACKUP_PASSWORD:-}" >"$RUN_DIR/sst-auth.cnf")
    ;;
esac
if [ "$initialises" -eq 1 ]; then
  : >"$MARKER"
fi
set_phase server
trap - TERM INT EXIT

# An entrypoint that traces every command (set -o xtrace, as Percona's does) would copy the root
# password into the container log: run a copy of it without the tracing.
entrypoint=$(command -v "$IMAGE_ENTRYPOINT") || die "the image has no entrypoint $IMAGE_ENTRYPOINT"
if grep -Eq '^[[:space:]]*set -(o xtrace|x)[[:space:]]*$' "$entrypoint"; then
  quiet=$RUN_DIR/image-entrypoint.sh
  sed -E '/^[[:space:]]*set -(o xtrace|x)[[:space:]]*$/d' "$entrypoint" >"$quiet"
  chmod 0700 "$quiet"
  exec bash "$quiet" "${args[@]}"
fi
exec "$entrypoint" "${args[@]}"
