#!/usr/bin/env bash
# The local Kubernetes cluster: a real control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, metrics-server) built from Go modules, with kwok playing three nodes.
#
#   cluster.sh up       build what is missing, start the cluster or reuse a healthy running one
#   cluster.sh down     stop every process the cluster started, by PID
#   cluster.sh status   say whether it runs, and what
#   cluster.sh restart-apiserver   stop kube-apiserver and start it again (tests of reconnects)
#   cluster.sh stop-component NAME    stop kube-controller-manager, kube-scheduler or kwok-controller, keeping
#                                     its command line to start it again (tests of a control plane missing one)
#   cluster.sh start-component NAME   start a component stopped with stop-component again, and wait until healthy
#   cluster.sh env      print the shell variables that point a client at it
#
# Settings (environment):
#   KUBESS_CACHE_DIR            where binaries are built and kept (default ~/.cache/kubess-stateful)
#   KUBESS_POD_READY_DELAY_MS   default delay before a simulated pod becomes Ready (default 0);
#                               a pod may set its own with the annotation pod-ready.stage.kwok.x-k8s.io/delay
#
# The state lives in .localcluster/ in the checkout (git-ignored): kubeconfig, audit.log, kwok/ (pids, pki, logs).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=$repo/.localcluster
name=kubess
export KWOK_WORKDIR=$state/kwok
kubeconfig=$state/kubeconfig
workdir=$KWOK_WORKDIR/clusters/$name

eval "$("$here/build.sh" --print)"
# shellcheck source=tools/localcluster/node.env
. "$here/node.env"
kubectl=$K8S_BIN/kubectl
kwokctl=$KWOK_BIN/kwokctl

log() { printf '[cluster] %s\n' "$*" >&2; }

kc() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

# Healthy: the apiserver answers /readyz and all three nodes are Ready.
healthy() {
  [ -f "$kubeconfig" ] || return 1
  kc get --raw /readyz --request-timeout=5s >/dev/null 2>&1 || return 1
  local ready
  ready=$(kc get nodes -l type=kwok --request-timeout=5s \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c '^True$' || true)
  [ "$ready" = 3 ]
}

# The PIDs of the cluster's processes that still run, each checked to be one of our binaries
# (a PID file left from a stopped machine may name a PID that something else now has).
live_pids() {
  local f pid exe
  [ -d "$workdir/pids" ] || return 0
  for f in "$workdir"/pids/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    # A zombie has exited: only its exit status is left (here PID 1 may not reap what it adopts).
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && continue
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    case "$exe" in "$K8S_BIN"/* | "$ETCD_BIN"/* | "$KWOK_BIN"/* | "$METRICS_SERVER_BIN"/*) echo "$pid" ;; esac
  done
}

# The aggregation layer's own PKI: a front-proxy CA and the client certificate the apiserver presents
# when it proxies to metrics-server. Kept apart from the cluster CA, so that no ordinary client
# certificate can set the authenticating-proxy headers.
front_proxy_pki() {
  local d=$state/front-proxy
  [ -s "$d/front-proxy-client.crt" ] && return 0
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kubess-front-proxy-ca" \
    -keyout "$d/front-proxy-ca.key" -out "$d/front-proxy-ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=front-proxy-client" \
    -keyout "$d/front-proxy-client.key" -out "$d/front-proxy-client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >"$d/client.ext"
  openssl x509 -req -in "$d/front-proxy-client.csr" -CA "$d/front-proxy-ca.crt" -CAkey "$d/front-proxy-ca.key" \
    -CAcreateserial -days 3650 -extfile "$d/client.ext" -out "$d/front-proxy-client.crt" 2>/dev/null
}

write_config() {
  local delay=${KUBESS_POD_READY_DELAY_MS:-0}
  case "$delay" in '' | *[!0-9]*) echo "KUBESS_POD_READY_DELAY_MS must be a whole number of milliseconds, not '$delay'" >&2; exit 2 ;; esac
  mkdir -p "$state"
  cat >"$state/kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  securePort: true
  kubeAuthorization: true
  kubeAdmission: true
  enableMetricsServer: true
  kubeAuditPolicy: $here/audit-policy.yaml
  kubeApiserverBinary: $K8S_BIN/kube-apiserver
  kubeControllerManagerBinary: $K8S_BIN/kube-controller-manager
  kubeSchedulerBinary: $K8S_BIN/kube-scheduler
  kubectlBinary: $K8S_BIN/kubectl
  etcdBinary: $ETCD_BIN/etcd
  kwokControllerBinary: $KWOK_BIN/kwok
  metricsServerBinary: $METRICS_SERVER_BIN/metrics-server
  metricsServerManifests:
  - $METRICS_SERVER_BIN/manifests
  nodeLeaseDurationSeconds: 40
  # Pods of the real node (node.sh) reach the apiserver through the "kubernetes" Service and the node's gateway.
  kubeApiserverCertSANs: [$KUBERNETES_SERVICE_IP, $NODE_GATEWAY_IP]
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - {key: service-cluster-ip-range, value: 10.96.0.0/16}
  - {key: requestheader-client-ca-file, value: $state/front-proxy/front-proxy-ca.crt}
  - {key: requestheader-allowed-names, value: front-proxy-client}
  - {key: proxy-client-cert-file, value: $state/front-proxy/front-proxy-client.crt}
  - {key: proxy-client-key-file, value: $state/front-proxy/front-proxy-client.key}
  - {key: requestheader-username-headers, value: X-Remote-User}
  - {key: requestheader-group-headers, value: X-Remote-Group}
  - {key: requestheader-extra-headers-prefix, value: X-Remote-Extra-}
  # The real node: the "kubernetes" Service points at the gateway its pods can reach, and the apiserver
  # authenticates to its kubelet (logs, exec, port-forward) with the cluster's admin certificate.
  - {key: advertise-address, value: $NODE_GATEWAY_IP}
  - {key: kubelet-client-certificate, value: $workdir/pki/admin.crt}
  - {key: kubelet-client-key, value: $workdir/pki/admin.key}
  - {key: kubelet-preferred-address-types, value: "InternalIP,Hostname"}
- name: kwok-controller
  extraArgs:
  # kwok plays only the simulated nodes (annotated in nodes.yaml), never the real one.
  - {key: manage-all-nodes, value: "false"}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
- name: kube-controller-manager
  extraArgs:
  # One instance of each: no leader election, so an apiserver restart cannot make it lose a lease and exit.
  - {key: leader-elect, value: "false"}
  - {key: use-service-account-credentials, value: "true"}
  - {key: service-cluster-ip-range, value: 10.96.0.0/16}
  - {key: cluster-signing-cert-file, value: $workdir/pki/ca.crt}
  - {key: cluster-signing-key-file, value: $workdir/pki/ca.key}
  - {key: horizontal-pod-autoscaler-sync-period, value: 5s}
  - {key: horizontal-pod-autoscaler-downscale-stabilization, value: 30s}
- name: kube-scheduler
  extraArgs:
  - {key: leader-elect, value: "false"}
EOF
  # kwok v0.8 ships no built-in stages: the module's own node and pod stages, plus ours
  # (pod-ready with a configurable delay, and pod-stuck for tests that need a pod never Ready).
  local s=$KWOK_BIN/stage
  cat "$s/node/fast/node-initialize.yaml" >"$state/stages.yaml"
  printf -- '\n---\n' >>"$state/stages.yaml"
  cat "$s/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" >>"$state/stages.yaml"
  for f in "$s/pod/fast/pod-complete.yaml" "$s/pod/fast/pod-delete.yaml" "$s/pod/chaos/pod-container-running-failed.yaml"; do
    printf -- '\n---\n' >>"$state/stages.yaml"
    cat "$f" >>"$state/stages.yaml"
  done
  for f in "$here/stages/pod-ready.yaml" "$here/stages/pod-stuck.yaml"; do
    printf -- '\n---\n' >>"$state/stages.yaml"
    sed "s/durationMilliseconds: 0  # set from KUBESS_POD_READY_DELAY_MS.*/durationMilliseconds: $delay/" "$f" >>"$state/stages.yaml"
  done
}

up() {
  "$here/build.sh" control-plane
  if healthy; then
    log "reusing the running cluster ($kubeconfig)"
    return 0
  fi
  if [ -n "$(live_pids)" ]; then
    log "a cluster runs but is not healthy: stopping it"
    down
  fi
  rm -rf "$KWOK_WORKDIR" "$state/front-proxy"
  front_proxy_pki
  write_config
  log "starting the control plane (kwokctl, binary runtime)"
  "$kwokctl" create cluster --name "$name" --runtime binary \
    --config "$state/kwokctl.yaml" --config "$state/stages.yaml" \
    --kubeconfig "$kubeconfig" --wait 120s --quiet-pull >"$state/kwokctl-create.log" 2>&1 || {
    tail -n 20 "$state/kwokctl-create.log" >&2
    rm -rf "$state/failed-logs"
    cp -r "$workdir/logs" "$state/failed-logs" 2>/dev/null || true
    log "kwokctl could not start the cluster; the components' logs are kept in $state/failed-logs"
    down
    exit 1
  }
  ln -sf "$workdir/logs/audit.log" "$state/audit.log"
  kc apply -f "$here/nodes.yaml" >/dev/null
  local deadline=$((SECONDS + 120))
  until healthy; do
    if [ $SECONDS -ge $deadline ]; then
      log "the nodes did not become Ready in 120 s"
      kc get nodes -o wide >&2 || true
      down
      exit 1
    fi
    kc wait --for=condition=Ready node -l type=kwok --timeout=10s >/dev/null 2>&1 || true
  done
  # metrics-server is an aggregated API: wait until the apiserver serves it.
  deadline=$((SECONDS + 120))
  until kc get --raw /apis/metrics.k8s.io/v1beta1/nodes >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "metrics.k8s.io is not served after 120 s"
      # metrics-server exits when the apiserver does not answer yet at its start, and the binary runtime does not
      # start it again: stop everything this run started (a later `up` would find its ports taken) and, once, start
      # the whole control plane over.
      down
      if [ -z "${KUBESS_CLUSTER_UP_RETRIED:-}" ]; then
        log "starting the control plane again, once"
        KUBESS_CLUSTER_UP_RETRIED=1 exec "$0" up
      fi
      exit 1
    fi
    kc wait --for=condition=Available apiservice v1beta1.metrics.k8s.io --timeout=10s >/dev/null 2>&1 || true
  done
  log "ready: export KUBECONFIG=$kubeconfig"
}

down() {
  # The real node first (its kubelet and pods talk to this control plane).
  if [ -d "$state/node" ]; then "$here/node.sh" down || true; fi
  # Note every live process first: kwokctl deletes the PID files with the cluster's directory, and it stops only
  # the processes it started itself (not a component that restart-apiserver started again).
  local pids pid left
  pids=$(live_pids)
  if [ -d "$workdir" ]; then
    "$kwokctl" delete cluster --name "$name" --kubeconfig "$kubeconfig" >"$state/kwokctl-delete.log" 2>&1 || true
  fi
  alive() {
    for pid in $pids; do
      if [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then echo "$pid"; fi
    done
  }
  for pid in $(alive); do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    left=$(alive)
    [ -z "$left" ] && break
    # Wait on the processes' own exit, not on a fixed sleep: tail --pid returns when the PID is gone.
    for pid in $left; do timeout 0.2 tail --pid="$pid" -f /dev/null 2>/dev/null || true; done
  done
  for pid in $(alive); do kill -9 "$pid" 2>/dev/null || true; done
  # A killed process is gone only once it leaves the kernel (slower on a loaded machine): wait for that too.
  for pid in $(alive); do timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || true; done
  rm -f "$kubeconfig" "$state/audit.log"
  log "stopped"
}

# Stop kube-apiserver and start it again with the same command line, as a control-plane restart would:
# clients see their connections drop and must reconnect. For tests of that.
# Start a component again with the command line it had, in a session of its own (like the processes kwokctl
# starts: it must outlive whoever asked for the restart), appending to its log and updating its PID file.
respawn() { # respawn NAME CWD ARGS...
  local name=$1 cwd=$2
  shift 2
  (cd "$cwd" && exec setsid nohup "$@" >>"$workdir/logs/$name.log" 2>&1 </dev/null) &
  echo $! >"$workdir/pids/$name.pid"
}

# Stop kube-apiserver and start it again with the same command line, as a control-plane restart would:
# clients see their connections drop and must reconnect. For tests of that. Like the kubelet that runs a real
# control plane's static pods, it also starts again any other component that exited meanwhile (a controller
# manager still setting up its controllers exits when the apiserver goes away).
restart_apiserver() {
  local name pid comp_pids=() names=(kube-apiserver kube-controller-manager kube-scheduler)
  declare -A cmd cwd
  for name in "${names[@]}"; do
    pid=$(cat "$workdir/pids/$name.pid")
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$K8S_BIN/$name" ] || { log "$name is not running"; exit 1; }
    cmd[$name]=$(tr '\0' '\n' <"/proc/$pid/cmdline")
    cwd[$name]=$(readlink "/proc/$pid/cwd")
    comp_pids+=("$pid")
  done
  pid=${comp_pids[0]}
  kill "$pid"
  # A graceful shutdown waits for long requests; past 10 s it is cut short, as a crash would.
  timeout 10 tail --pid="$pid" -f /dev/null || kill -9 "$pid" 2>/dev/null || true
  tail --pid="$pid" -f /dev/null
  local args=()
  mapfile -t args <<<"${cmd[kube-apiserver]}"
  respawn kube-apiserver "${cwd[kube-apiserver]}" "${args[@]}"
  local deadline=$((SECONDS + 60))
  until kc get --raw /readyz >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "kube-apiserver did not come back in 60 s"; exit 1; }
    timeout 0.5 tail --pid="$(cat "$workdir/pids/kube-apiserver.pid")" -f /dev/null 2>/dev/null || true
  done
  log "kube-apiserver restarted (PID $(cat "$workdir/pids/kube-apiserver.pid"))"
  for name in kube-controller-manager kube-scheduler; do
    pid=$(cat "$workdir/pids/$name.pid")
    if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" != "$K8S_BIN/$name" ] || [ "$(awk '{print $3}' "/proc/$pid/stat")" = Z ]; then
      mapfile -t args <<<"${cmd[$name]}"
      respawn "$name" "${cwd[$name]}" "${args[@]}"
      log "$name had exited: started again (PID $(cat "$workdir/pids/$name.pid"))"
    fi
  done
}

# The components stop-component and start-component act on, and the binary each runs.
component_exe() {
  case "${1:-}" in
    kube-controller-manager | kube-scheduler) echo "$K8S_BIN/$1" ;;
    kwok-controller) echo "$KWOK_BIN/kwok" ;;
    *)
      echo "usage: $0 stop-component|start-component kube-controller-manager|kube-scheduler|kwok-controller" >&2
      exit 2
      ;;
  esac
}

# The PID of a component if it runs (its PID file names a live process of its binary), else nothing.
component_pid() {
  local name=$1 pid
  pid=$(cat "$workdir/pids/$name.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(component_exe "$name")" ] || return 0
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
  echo "$pid"
}

# Stop one component by PID, keeping its command line (NUL-separated, as /proc has it) and working directory in
# $workdir/stopped/ so that start-component can start it again as it was.
stop_component() {
  local name=${1:-} pid saved=$workdir/stopped
  component_exe "$name" >/dev/null
  pid=$(component_pid "$name")
  if [ -z "$pid" ]; then
    if [ -f "$saved/$name.cmdline" ]; then
      log "$name is already stopped"
      return 0
    fi
    log "$name is not running, and was not stopped with stop-component"
    exit 1
  fi
  mkdir -p "$saved"
  cp "/proc/$pid/cmdline" "$saved/$name.cmdline"
  readlink "/proc/$pid/cwd" >"$saved/$name.cwd"
  kill "$pid"
  # A graceful shutdown takes a moment; past 10 s it is cut short, as a crash would.
  timeout 10 tail --pid="$pid" -f /dev/null || kill -9 "$pid" 2>/dev/null || true
  timeout 10 tail --pid="$pid" -f /dev/null || { log "$name (PID $pid) did not exit"; exit 1; }
  if [ "$name" = kwok-controller ]; then
    # Release the nodes' leases it held: a new kwok-controller has a new identity and would otherwise leave the nodes'
    # pods alone until the old leases expire (--node-lease-duration-seconds, minutes).
    local nodes=()
    mapfile -t nodes < <(kwok_nodes)
    kc -n kube-node-lease delete lease "${nodes[@]}" --ignore-not-found >/dev/null
  fi
  log "$name stopped (was PID $pid); start it again with: $0 start-component $name"
}

# The nodes kwok plays (nodes.yaml).
kwok_nodes() {
  kc get nodes -l type=kwok -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'
}

# True when kwok holds the lease of every node it plays (after start-component kwok-controller).
kwok_holds_leases() {
  local node holder
  for node in $(kwok_nodes); do
    holder=$(kc -n kube-node-lease get lease "$node" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null) || return 1
    [ -n "$holder" ] || return 1
  done
}

# The health endpoint a component serves, from its command line: its secure port, or kwok's server address.
health_url() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      --secure-port=*) echo "https://127.0.0.1:${arg#--secure-port=}/healthz" && return 0 ;;
      --server-address=*) echo "https://${arg#--server-address=}/healthz" && return 0 ;;
    esac
  done
}

# True when ``url`` answers "ok" (the components' serving certificates are their own: not verified on loopback).
answers_ok() {
  python3 - "$1" <<'PY'
import ssl
import sys
import urllib.request

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    with urllib.request.urlopen(sys.argv[1], context=ctx, timeout=2) as resp:
        sys.exit(0 if resp.read().strip() == b"ok" else 1)
except OSError:
    sys.exit(1)
PY
}

# Start a component stopped with stop-component again, with the command line and directory it had (see
# respawn), and wait until it answers its health check.
start_component() {
  local name=${1:-} pid saved=$workdir/stopped url deadline args=()
  component_exe "$name" >/dev/null
  pid=$(component_pid "$name")
  if [ -n "$pid" ]; then
    log "$name already runs (PID $pid)"
    rm -f "$saved/$name.cmdline" "$saved/$name.cwd"
    return 0
  fi
  [ -f "$saved/$name.cmdline" ] || { log "$name was not stopped with stop-component: no command line to start it with"; exit 1; }
  mapfile -d '' -t args <"$saved/$name.cmdline"
  respawn "$name" "$(cat "$saved/$name.cwd")" "${args[@]}"
  pid=$(cat "$workdir/pids/$name.pid")
  url=$(health_url "${args[@]}")
  [ -n "$url" ] || { log "$name started (PID $pid), but its command line names no port to check its health on"; exit 1; }
  deadline=$((SECONDS + 60))
  until answers_ok "$url" && { [ "$name" != kwok-controller ] || kwok_holds_leases; }; do
    [ -d "/proc/$pid" ] || { log "$name exited at start; see $workdir/logs/$name.log"; exit 1; }
    [ $SECONDS -lt $deadline ] || { log "$name is not healthy after 60 s; see $workdir/logs/$name.log"; exit 1; }
    # Wait on the process (returns early if it exits), not on a fixed sleep.
    timeout 0.5 tail --pid="$pid" -f /dev/null 2>/dev/null || true
  done
  rm -f "$saved/$name.cmdline" "$saved/$name.cwd"
  log "$name started again (PID $pid)"
}

status() {
  if healthy; then
    echo "running: $(kc version -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'), kubeconfig $kubeconfig"
    kc get nodes -L topology.kubernetes.io/zone
    echo "processes (PID, command):"
    for pid in $(live_pids); do printf '  %s %s\n' "$pid" "$(basename "$(readlink /proc/"$pid"/exe)")"; done
  else
    echo "not running"
    [ -z "$(live_pids)" ] || echo "(but these cluster processes are alive: $(live_pids | tr '\n' ' '))"
    return 1
  fi
}

print_env() {
  # shellcheck disable=SC2016 # $PATH is left for the shell that evaluates this output
  printf 'export KUBECONFIG=%s\nexport PATH=%s:$PATH\n' "$kubeconfig" "$K8S_BIN"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  restart-apiserver) restart_apiserver ;;
  stop-component) stop_component "${2:-}" ;;
  start-component) start_component "${2:-}" ;;
  env) print_env ;;
  *) echo "usage: $0 up|down|status|restart-apiserver|stop-component NAME|start-component NAME|env" >&2; exit 2 ;;
esac
